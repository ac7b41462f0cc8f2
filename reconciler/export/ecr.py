"""ECR repositories, read live (read-only calls) and mapped to the manifest's `ecr` section.

Mapping (the inverse of `manifest/sections/ecr.py`): tag mutability and scan on push written only
where they differ from the manifest's defaults (immutable, true); encryption only when KMS; the
lifecycle in the manifest's spelling (`keep_last`, `untagged_expire_days`) when that spelling
expands to exactly the live rules, else the raw `rules`; no live policy is `lifecycle: {}` (the
default would add a rule); the repository policy as its document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import absent_none, error_code
from reconciler.canonical import canonical_lifecycle_rules
from reconciler.errors import AwsError
from reconciler.export.model import Export, put, user_tags
from reconciler.manifest.sections.ecr import lifecycle_rules
from reconciler.ownership import tag_dict

DEFAULT_LIFECYCLE = {"untagged_expire_days": 7}


def lifecycle_spelling(rules: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The manifest's `lifecycle` for live rules, or None when the default (no `lifecycle`) makes them."""
    live = canonical_lifecycle_rules(rules)
    guess: dict[str, Any] = {}
    for rule in live:
        selection = rule.get("selection", {})
        if selection.get("tagStatus") == "untagged" and selection.get("countType") == "sinceImagePushed":
            guess.setdefault("untagged_expire_days", selection.get("countNumber"))
        elif selection.get("tagStatus") == "any" and selection.get("countType") == "imageCountMoreThan":
            guess.setdefault("keep_last", selection.get("countNumber"))
    if guess and lifecycle_rules(guess) == live:
        return None if guess == DEFAULT_LIFECYCLE else guess
    if not live:
        return {}
    return {"rules": live}


def repository_entry(export: Export, repo: Mapping[str, Any], lifecycle: list[dict[str, Any]] | None,
                     policy: Any, tags: Mapping[str, str], index: int = 0) -> dict[str, Any]:
    """`ecr.repositories[index]` from DescribeRepositories, the lifecycle rules, the policy and the tags."""
    name = str(repo["repositoryName"])
    entry: dict[str, Any] = {"name": name}
    mutability = str(repo.get("imageTagMutability", "MUTABLE"))
    if mutability not in ("MUTABLE", "IMMUTABLE"):
        export.note(("ecr", "repositories", index), f"repository {name}: tag mutability {mutability} has no "
                    "manifest spelling; written as immutable, which apply would set")
    if mutability == "MUTABLE":
        entry["tag_mutability"] = "mutable"
    if not repo.get("imageScanningConfiguration", {}).get("scanOnPush", False):
        entry["scan_on_push"] = False
    config = repo.get("encryptionConfiguration", {})
    if config.get("encryptionType", "AES256") != "AES256":
        entry["encryption"] = {"type": "KMS", **({"kms_key": config["kmsKey"]} if config.get("kmsKey") else {})}
    spelled = lifecycle_spelling(lifecycle or [])
    if spelled is not None:
        entry["lifecycle"] = spelled
        if spelled == {}:
            export.comment(("ecr", "repositories", index, "lifecycle"),
                           "no lifecycle policy live: `{}` keeps it so (leaving lifecycle out would add "
                           "the default rule: untagged images expire after 7 days)")
    if policy is not None:
        entry["policy"] = policy
    put(entry, "tags", user_tags(dict(tags)))
    return entry


def _json(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise AwsError(f"ECR returned a {what} that is not JSON; fix it in ECR, or leave the repository out") from None


def read_repository(ecr: Any, repo: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Any, dict[str, str]]:
    name = repo["repositoryName"]
    text = absent_none(lambda: ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"], "ecr")
    doc = _json(text, f"lifecycle policy of {name}")
    rules = canonical_lifecycle_rules(doc.get("rules") if isinstance(doc, dict) else None)
    policy = _json(absent_none(lambda: ecr.get_repository_policy(repositoryName=name)["policyText"], "ecr"),
                   f"repository policy of {name}")
    tags = tag_dict(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", []))
    return rules, policy, tags


def export_ecr(export: Export, ecr: Any, names: Iterable[str]) -> dict[str, Any]:
    """The `ecr` section for the named repositories; an unknown name is an AwsError (exit 1)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    repos: dict[str, dict[str, Any]] = {}
    try:
        for page in ecr.get_paginator("describe_repositories").paginate():
            repos.update({r["repositoryName"]: r for r in page.get("repositories", [])})
    except ClientError as exc:
        raise AwsError(f"cannot list the ECR repositories: {error_code(exc)}; check the credentials' "
                       "ecr:DescribeRepositories permission") from None
    missing = [n for n in wanted if n not in repos]
    if missing:
        raise AwsError(f"no ECR repository named {', '.join(missing)} in {export.region}; check the names and --region")
    entries = []
    for index, name in enumerate(wanted):
        rules, policy, tags = read_repository(ecr, repos[name])
        entries.append(repository_entry(export, repos[name], rules, policy, tags, index))
    return {"repositories": entries}
