"""The `iam` section: groups, users and their access keys.

Addresses: `iam.group.NAME` (iam.group), `iam.user.NAME` (iam.user),
`iam.user.NAME.access_keys` (iam.access_key). A group's IAM path says the stack
(and `protect`), since IAM groups take no tags; a user records `protect` in a tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path as FsPath
from typing import Any

from reconciler.errors import Problem
from reconciler.manifest.common import duplicates, ownership_tags, policy_document, protected_tags
from reconciler.manifest.loader import Path, Source
from reconciler.manifest.model import DesiredResource, Manifest
from reconciler.manifest.section import RawFinding, Rule, Section
from reconciler.manifest.suggest import Suggest
from reconciler.ownership import group_path

# Names the tool keeps for itself (its apply lease lives at /reconciler/locks/<stack>...), and the SSM
# hierarchies AWS reserves (/aws/ holds the public parameters). Compared case-insensitively: a store one
# letter-case away from the lease is refused too, rather than explained later.
RESERVED_SSM_PREFIXES = ("/reconciler/",)
RESERVED_SECRET_PREFIXES = ("reconciler/",)
_AWS_SSM_RESERVED = re.compile(r"^/(aws|ssm)(/|$)", re.IGNORECASE)
# the same AWS-managed policy in every partition (arn:aws-cn:, arn:aws-us-gov:, ...)
_ADMIN_POLICY = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/AdministratorAccess$")


def expand(manifest: Manifest) -> list[DesiredResource]:
    """Groups, users, and an access-key set for each user with `access_keys`, defaults applied."""
    iam = manifest.data.get("iam", {})
    policies = manifest.policies
    out: list[DesiredResource] = []
    for group in iam.get("groups", []):
        address = f"iam.group.{group['name']}"
        out.append(DesiredResource(address, "iam.group", {
            "name": group["name"],
            "path": group_path(manifest.stack, bool(group.get("protect", False))),
            "managed_policies": sorted(group.get("managed_policies", [])),
            "inline_policies": {k: policy_document(policies, v)
                                for k, v in sorted(group.get("inline_policies", {}).items())},
        }, protect=group.get("protect", False)))
    for user in iam.get("users", []):
        address = f"iam.user.{user['name']}"
        groups = sorted(user.get("groups", []))
        out.append(DesiredResource(address, "iam.user", {
            "name": user["name"],
            "path": user.get("path", "/"),
            "groups": groups,
            "managed_policies": sorted(user.get("managed_policies", [])),
            "inline_policies": {k: policy_document(policies, v)
                                for k, v in sorted(user.get("inline_policies", {}).items())},
            "console_access": False,
            "tags": protected_tags(manifest, address, user["name"], user.get("tags"), bool(user.get("protect"))),
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


def checks(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    """Unique names, known groups, one usable key store per user."""
    iam = data.get("iam", {})
    groups = iam.get("groups", [])
    users = iam.get("users", [])
    yield from duplicates(groups, "name", ("iam", "groups"), source, "IAM group", fold=True)
    yield from duplicates(users, "name", ("iam", "users"), source, "IAM user", fold=True)
    group_names = {g["name"] for g in groups}
    suggest_group = Suggest(group_names)
    stores: dict[str, Path] = {}
    for ui, user in enumerate(users):
        for gi, group in enumerate(user.get("groups", [])):
            if group not in group_names:
                close = suggest_group(group)
                hint = f"did you mean {close[0]!r}?" if close else "declare it under iam.groups"
                yield source.problem(("iam", "users", ui, "groups", gi), f"unknown group {group!r}", hint)
        store = user.get("access_keys", {}).get("store", {})
        for kind in ("secretsmanager", "ssm"):
            if kind in store:
                where: Path = ("iam", "users", ui, "access_keys", "store", kind)
                reserved = reserved_store_name(kind, store[kind])
                if reserved:
                    yield source.problem(where, reserved, "name the store after your stack, e.g. "
                                         + ("/STACK/USER/access-key" if kind == "ssm" else "STACK/USER/access-key"))
                ident = f"{kind}:{store[kind]}"
                if ident in stores:
                    yield source.problem(where, f"store {store[kind]!r} is used by two users",
                                         "give each user its own secret or parameter")
                stores[ident] = where
        if "access_keys" in user:
            where = ("iam", "users", ui, "access_keys", "store")
            if "secretsmanager" in store and "ssm" in store:
                yield source.problem(where, "store names two destinations", "keep either secretsmanager or ssm")
            elif "secretsmanager" not in store and "ssm" not in store:
                yield source.problem(where, "store names no destination", "add `secretsmanager: NAME` or `ssm: /NAME`")


def reserved_store_name(kind: str, name: str) -> str | None:
    """Why `name` cannot be a key store of `kind` ("ssm" or "secretsmanager"), or None when it can."""
    folded = name.lower()
    if kind == "ssm":
        if (folded + "/").startswith(RESERVED_SSM_PREFIXES):
            return (f"store {name!r} is under /reconciler/, which is reserved for the tool's own parameters "
                    "(the apply lease /reconciler/locks/...)")
        if _AWS_SSM_RESERVED.match(name):
            return f"store {name!r}: SSM parameter names under /aws/ or /ssm/ are reserved by AWS"
    elif (folded + "/").startswith(RESERVED_SECRET_PREFIXES):
        return f"store {name!r} is under reconciler/, which is reserved for the tool's own use"
    return None


def is_admin_policy(arn: object) -> bool:
    return isinstance(arn, str) and _ADMIN_POLICY.match(arn) is not None


def _statements(document: Any) -> list[dict[str, Any]]:
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    return [statements] if isinstance(statements, dict) else list(statements)


def _allows_everything(document: Any) -> bool:
    for statement in _statements(document):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if statement.get("Effect") == "Allow" and "*" in actions:
            return True
    return False


def findings(data: dict[str, Any], policies: dict[str, Any]) -> Iterator[RawFinding]:
    """Administrator users, policies on users instead of groups, policies that allow every action."""
    iam = data.get("iam", {})
    for kind in ("users", "groups"):
        for index, item in enumerate(iam.get(kind, [])):
            at: Path = ("iam", kind, index)
            for pi, arn in enumerate(item.get("managed_policies", [])):
                if is_admin_policy(arn) and kind == "users":
                    yield "RC-IAM-001", (*at, "managed_policies", pi), f"user {item['name']} gets AdministratorAccess"
                elif kind == "users":
                    yield "RC-IAM-002", (*at, "managed_policies", pi), f"attach {arn} through a group"
            for name, ref in item.get("inline_policies", {}).items():
                if _allows_everything(policy_document(policies, ref)):
                    yield "RC-IAM-003", (*at, "inline_policies", name), f"inline policy {name} allows Action \"*\""
                elif kind == "users":
                    yield "RC-IAM-002", (*at, "inline_policies", name), f"move inline policy {name} to a group"
    groups = {g["name"]: g for g in iam.get("groups", [])}
    for index, user in enumerate(iam.get("users", [])):
        for gi, group in enumerate(user.get("groups", [])):
            if any(map(is_admin_policy, groups.get(group, {}).get("managed_policies", []))):
                yield ("RC-IAM-001", ("iam", "users", index, "groups", gi),
                       f"user {user['name']} gets AdministratorAccess through group {group}")


def address_of(data: dict[str, Any], path: Path) -> str | None:
    """`iam.user.NAME` or `iam.group.NAME` for a path inside a user or a group."""
    if len(path) < 3 or path[0] != "iam" or path[1] not in ("users", "groups"):
        return None
    return f"iam.{str(path[1])[:-1]}.{data['iam'][path[1]][path[2]]['name']}"


SECTION = Section(
    key="iam",
    kinds=("iam.group", "iam.user", "iam.access_key"),
    expand=expand,
    checks=checks,
    findings=findings,
    rules=(
        Rule("RC-IAM-001", "high", "AdministratorAccess on a programmatic user",
             "CIS AWS 1.16 / Security Hub IAM.1"),
        Rule("RC-IAM-002", "low", "policy attached to a user instead of a group",
             "CIS AWS 1.15 / Security Hub IAM.2"),
        Rule("RC-IAM-003", "medium", "policy allows every action (\"*\")",
             "CIS AWS 1.16 / Security Hub IAM.21"),
    ),
    address_of=address_of,
)
