"""Expansion: a validated Manifest -> the flat list of desired resources.

Pure: no AWS, no clock. Defaults of SPEC.md are applied here and nowhere else, and
derived resources (route tables, routes, Elastic IPs, endpoint security groups)
become ordinary DesiredResources, so nothing downstream special-cases them.
Each section lives in its own module; this one orders and checks the whole.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from typing import Any

from reconciler.canonical import canonical_lifecycle_rules
from reconciler.manifest.model import DesiredResource, Manifest
from reconciler.ownership import ADDRESS_TAG, KIND_TAG, PROTECT_TAG, STACK_TAG, group_path


def ownership_tags(manifest: Manifest, address: str, name: str,
                   extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags every created resource carries: manifest tags, its own, Name, stack, address."""
    tags = dict(manifest.data.get("tags", {}))
    tags.update(extra or {})
    tags["Name"] = name
    tags[STACK_TAG] = manifest.stack
    tags[ADDRESS_TAG] = address
    return tags


def _policy(manifest: Manifest, ref: Mapping[str, Any]) -> Any:
    return manifest.policies[ref["file"]] if "file" in ref else dict(ref)


def expand_iam(manifest: Manifest) -> list[DesiredResource]:
    iam = manifest.data.get("iam", {})
    out: list[DesiredResource] = []
    for group in iam.get("groups", []):
        address = f"iam.group.{group['name']}"
        out.append(DesiredResource(address, "iam.group", {
            "name": group["name"],
            "path": group_path(manifest.stack, bool(group.get("protect", False))),
            "managed_policies": sorted(group.get("managed_policies", [])),
            "inline_policies": {k: _policy(manifest, v) for k, v in sorted(group.get("inline_policies", {}).items())},
        }, protect=group.get("protect", False)))
    for user in iam.get("users", []):
        address = f"iam.user.{user['name']}"
        groups = sorted(user.get("groups", []))
        user_tags = ownership_tags(manifest, address, user["name"], user.get("tags"))
        # kept on the user, so a deletion is refused even once it leaves the manifest; always written
        # ("false" too) so that removing `protect` from the manifest lifts it again
        user_tags[PROTECT_TAG] = "true" if user.get("protect") else "false"
        out.append(DesiredResource(address, "iam.user", {
            "name": user["name"],
            "path": user.get("path", "/"),
            "groups": groups,
            "managed_policies": sorted(user.get("managed_policies", [])),
            "inline_policies": {k: _policy(manifest, v) for k, v in sorted(user.get("inline_policies", {}).items())},
            "console_access": False,
            "tags": user_tags,
        }, depends_on=tuple(f"iam.group.{g}" for g in groups), protect=user.get("protect", False)))
        keys = user.get("access_keys")
        if keys is not None:
            store = dict(keys["store"])
            out.append(DesiredResource(f"{address}.access_keys", "iam.access_key", {
                "user": user["name"],
                "count": keys.get("count", 1),
                "rotate_after_days": keys.get("rotate_after_days", 90),
                "grace_days": keys.get("grace_days", 7),
                "store": store,
                "tags": ownership_tags(manifest, f"{address}.access_keys", user["name"] + " access key"),
            }, depends_on=(address,), protect=user.get("protect", False)))
    return out


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


def expand_ecr(manifest: Manifest) -> list[DesiredResource]:
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
            "tags": ownership_tags(manifest, address, repo["name"], repo.get("tags")),
        }
        if "policy" in repo:
            spec["policy"] = _policy(manifest, repo["policy"])
        # kept on the repository, so a deletion is refused even once it leaves the manifest; always
        # written ("false" too) so that removing `protect` from the manifest lifts it again
        spec["tags"][PROTECT_TAG] = "true" if repo.get("protect") else "false"
        out.append(DesiredResource(address, "ecr.repository", spec, protect=repo.get("protect", False)))
    return out


def expand_images(manifest: Manifest) -> list[DesiredResource]:
    """One resource per repository tag; `inputs` is the digest of the build inputs (files read, no build).

    `context` stays as written, relative to the manifest's directory (`Context.base_dir`).

    `immutable` is the repository's desired tag mutability: it decides whether a tag
    holding another build is a `push` (mutable) or a `conflict` (immutable).
    """
    from reconciler.errors import ManifestError
    from reconciler.manifest.image_inputs import inputs_digest

    repos = {r["name"]: r for r in manifest.data.get("ecr", {}).get("repositories", [])}
    out: list[DesiredResource] = []
    for index, image in enumerate(manifest.data.get("images", [])):
        repo = image["repository"]
        # as written (relative to the manifest), so a plan file made in one checkout applies in another
        context = image["context"]
        dockerfile = image.get("dockerfile", "Dockerfile")
        build_args = dict(sorted(image.get("build_args", {}).items()))
        target = image.get("target")
        platform = image.get("platform", "linux/amd64")
        try:
            inputs = inputs_digest((manifest.base_dir / context).resolve(), dockerfile, build_args, target, platform)
        except OSError as exc:
            raise ManifestError([manifest.source.problem(
                ("images", index, "context"), f"cannot read the build context: {exc.strerror or type(exc).__name__}",
                "the context and its Dockerfile must be readable")]) from None
        except ValueError as exc:  # PathRefused, DockerignoreError: their messages never quote a file
            raise ManifestError([manifest.source.problem(
                ("images", index, "context"), f"build context {context!r}: {exc}",
                "the context, its Dockerfile and .dockerignore must be regular files inside the tree")]) from None
        immutable = repos.get(repo, {}).get("tag_mutability", "immutable") == "immutable"
        for tag in image["tags"]:
            out.append(DesiredResource(f"image.{repo}:{tag}", "ecr.image", {
                "repository": repo,
                "tag": tag,
                "context": context,
                "dockerfile": dockerfile,
                "build_args": build_args,
                "target": target,
                "platform": platform,
                "immutable": immutable,
                "inputs": inputs,
            }, depends_on=(f"ecr.repository.{repo}",)))
    return out


def _with_kind_tag(resource: DesiredResource) -> DesiredResource:
    """Every resource that carries the stack tag also says its kind (one place, so no kind forgets it)."""
    tags = resource.spec.get("tags")
    if not isinstance(tags, dict) or STACK_TAG not in tags:
        return resource
    return dataclasses.replace(resource, spec={**resource.spec, "tags": {**tags, KIND_TAG: resource.kind}})


def expand(manifest: Manifest) -> list[DesiredResource]:
    """Every desired resource, sorted by address; addresses are unique, deps resolve."""
    from reconciler.manifest.expand_network import expand_network

    resources = [*expand_iam(manifest), *expand_ecr(manifest), *expand_images(manifest),
                 *expand_network(manifest)]
    resources = [_with_kind_tag(r) for r in resources]
    resources.sort(key=lambda r: r.address)
    addresses = [r.address for r in resources]
    if len(set(addresses)) != len(addresses):
        dupes = sorted(a for a, n in Counter(addresses).items() if n > 1)  # linear, even on a hostile manifest
        raise AssertionError(f"expansion produced duplicate addresses: {dupes}")
    known = set(addresses)
    for resource in resources:
        missing = [d for d in resource.depends_on if d not in known]
        if missing:
            raise AssertionError(f"{resource.address} depends on unknown {missing}")
    return resources
