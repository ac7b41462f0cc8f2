"""The `ecr` section: repositories, with secure defaults (immutable tags, scan on push, a lifecycle).

Address: `ecr.repository.NAME` (ecr.repository). The images pushed into a
repository belong to the `images` section.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path as FsPath
from typing import Any

from reconciler.canonical import canonical_lifecycle_rules
from reconciler.errors import Problem
from reconciler.manifest.common import duplicates, policy_document, protected_tags
from reconciler.manifest.loader import Path, Source
from reconciler.manifest.model import DesiredResource, Manifest
from reconciler.manifest.section import RawFinding, Rule, Section


def lifecycle_rules(lifecycle: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The ECR lifecycle rules for a repository; secure default: untagged expire in 7 days."""
    if lifecycle is None:
        lifecycle = {"untagged_expire_days": 7}
    if "rules" in lifecycle:
        return canonical_lifecycle_rules(lifecycle["rules"])
    rules: list[dict[str, Any]] = []
    if "untagged_expire_days" in lifecycle:
        rules.append({"rulePriority": len(rules) + 1,
                      "description": f"expire untagged images after {lifecycle['untagged_expire_days']} days",
                      "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                    "countUnit": "days", "countNumber": lifecycle["untagged_expire_days"]},
                      "action": {"type": "expire"}})
    if "keep_last" in lifecycle:
        rules.append({"rulePriority": len(rules) + 1,
                      "description": f"keep the last {lifecycle['keep_last']} images",
                      "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                    "countNumber": lifecycle["keep_last"]},
                      "action": {"type": "expire"}})
    return canonical_lifecycle_rules(rules)


def expand(manifest: Manifest) -> list[DesiredResource]:
    """One resource per repository, defaults applied."""
    out: list[DesiredResource] = []
    for repo in manifest.data.get("ecr", {}).get("repositories", []):
        address = f"ecr.repository.{repo['name']}"
        encryption = dict(repo.get("encryption", {"type": "AES256"}))
        spec: dict[str, Any] = {
            "name": repo["name"],
            "tag_mutability": repo.get("tag_mutability", "immutable"),
            "scan_on_push": repo.get("scan_on_push", True),
            "encryption": encryption,
            "lifecycle_rules": lifecycle_rules(repo.get("lifecycle")),
            "policy": None,  # no policy written means none: a policy added by hand is drift
            "force_delete": repo.get("force_delete", False),
            "tags": protected_tags(manifest, address, repo["name"], repo.get("tags"), bool(repo.get("protect"))),
        }
        if "policy" in repo:
            spec["policy"] = policy_document(manifest.policies, repo["policy"])
        out.append(DesiredResource(address, "ecr.repository", spec, protect=repo.get("protect", False)))
    return out


def checks(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    """Unique repository names; a KMS key only with KMS encryption."""
    repos = data.get("ecr", {}).get("repositories", [])
    yield from duplicates(repos, "name", ("ecr", "repositories"), source, "repository")
    for ri, repo in enumerate(repos):
        enc = repo.get("encryption", {})
        if enc.get("type") == "AES256" and "kms_key" in enc:
            yield source.problem(("ecr", "repositories", ri, "encryption", "kms_key"),
                                 "kms_key is only valid with type: KMS", "remove kms_key or set type: KMS")


def findings(data: dict[str, Any], policies: dict[str, Any]) -> Iterator[RawFinding]:
    """Repositories that skip the scan, let tags move, or expire nothing."""
    for index, repo in enumerate(data.get("ecr", {}).get("repositories", [])):
        at = ("ecr", "repositories", index)
        if repo.get("scan_on_push") is False:
            yield "RC-ECR-001", (*at, "scan_on_push"), f"{repo['name']}: scan_on_push is false"
        if repo.get("tag_mutability") == "mutable":
            yield "RC-ECR-002", (*at, "tag_mutability"), f"{repo['name']}: tags can be overwritten"
        if repo.get("lifecycle") == {}:
            yield "RC-ECR-003", (*at, "lifecycle"), f"{repo['name']}: an empty lifecycle expires nothing"


def address_of(data: dict[str, Any], path: Path) -> str | None:
    """`ecr.repository.NAME` for a path inside a repository."""
    if len(path) < 3 or tuple(path[:2]) != ("ecr", "repositories"):
        return None
    return f"ecr.repository.{data['ecr']['repositories'][path[2]]['name']}"


SECTION = Section(
    key="ecr",
    kinds=("ecr.repository",),
    expand=expand,
    checks=checks,
    findings=findings,
    rules=(
        Rule("RC-ECR-001", "medium", "image scanning on push is off", "Security Hub ECR.1"),
        Rule("RC-ECR-002", "low", "repository tags are mutable", "Security Hub ECR.2"),
        Rule("RC-ECR-003", "medium", "repository has no lifecycle policy", "Security Hub ECR.3"),
    ),
    address_of=address_of,
)
