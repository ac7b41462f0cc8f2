"""IAM users and groups, read live (read-only calls) and mapped to the manifest's `iam` section.

Mapping (the inverse of `manifest/sections/iam.py`'s expansion): name, path (when not `/`),
groups, managed policy ARNs and inline policies as they are; an inline document longer than
`LONG_POLICY_LINES` goes to `policies/<user>-<name>.json` (groups: `policies/group-<group>-<name>.json`)
referenced as `{file: ...}`. A user with access keys gets `access_keys` with a Secrets Manager
store `<stack>/<user>/access-key`: the keys made by hand have no secret the tool knows, so adopting
plans a new key into that store. Key ids and secrets are never written anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import error_code
from reconciler.errors import AwsError
from reconciler.export.model import Export, put, user_tags
from reconciler.kinds.iam._api import attached, inline_policies
from reconciler.ownership import tag_dict

LONG_POLICY_LINES = 20


def policy_ref(export: Export, owner: str, name: str, document: Any) -> Any:
    """The document inline, or `{file: policies/<owner>-<name>.json}` when it is long."""
    text = json.dumps(document, indent=2) + "\n"
    if not export.policy_files or text.count("\n") <= LONG_POLICY_LINES:
        return document
    path = f"policies/{owner}-{name}.json"
    export.files[path] = text
    return {"file": path}


def group_entry(export: Export, detail: Mapping[str, Any]) -> dict[str, Any]:
    """One `iam.groups[]` entry from a GroupDetail of GetAccountAuthorizationDetails."""
    name = str(detail["GroupName"])
    entry: dict[str, Any] = {"name": name}
    put(entry, "managed_policies", attached(detail.get("AttachedManagedPolicies", [])))
    docs = inline_policies(detail.get("GroupPolicyList", []))
    put(entry, "inline_policies", {k: policy_ref(export, f"group-{name}", k, v) for k, v in docs.items()})
    return entry


def user_entry(export: Export, detail: Mapping[str, Any], keys: Iterable[Mapping[str, Any]],
               index: int = 0) -> dict[str, Any]:
    """`iam.users[index]` from a UserDetail and the user's ListAccessKeys metadata."""
    name = str(detail["UserName"])
    entry: dict[str, Any] = {"name": name}
    if detail.get("Path", "/") != "/":
        entry["path"] = detail["Path"]
    put(entry, "groups", sorted(detail.get("GroupList", [])))
    put(entry, "managed_policies", attached(detail.get("AttachedManagedPolicies", [])))
    docs = inline_policies(detail.get("UserPolicyList", []))
    put(entry, "inline_policies", {k: policy_ref(export, name, k, v) for k, v in docs.items()})
    put(entry, "tags", user_tags(tag_dict(detail.get("Tags"))))
    keys = list(keys)
    if keys:
        active = sum(1 for k in keys if k.get("Status") == "Active")
        store = f"{export.stack}/{name}/access-key"
        entry["access_keys"] = {"count": min(max(active, 1), 2), "store": {"secretsmanager": store}}
        export.note(("iam", "users", index, "access_keys"),
                    f"review: user {name} has {len(keys)} access key(s) made by hand ({active} active); their "
                    f"secrets are unknown to the tool: adopting creates a new key into secretsmanager:{store} "
                    "and retires the old one after grace_days")
    return entry


def read_iam(iam: Any, users: Iterable[str], groups: Iterable[str]) -> tuple[list[dict[str, Any]],
                                                                           list[dict[str, Any]],
                                                                           dict[str, list[dict[str, Any]]]]:
    """(user details, group details, access key metadata by user) for the named users and groups and the
    groups those users are in. An unknown name is an AwsError (exit 1) naming it."""
    paginator = iam.get_paginator("get_account_authorization_details")
    all_users: dict[str, dict[str, Any]] = {}
    all_groups: dict[str, dict[str, Any]] = {}
    for page in paginator.paginate(Filter=["User", "Group"]):
        all_users.update({u["UserName"]: u for u in page.get("UserDetailList", [])})
        all_groups.update({g["GroupName"]: g for g in page.get("GroupDetailList", [])})
    wanted_users = list(dict.fromkeys(users))
    missing = [u for u in wanted_users if u not in all_users]
    if missing:
        raise AwsError(f"no IAM user named {', '.join(missing)} in this account; check the names (aws iam list-users)")
    wanted_groups = list(dict.fromkeys(groups))
    missing = [g for g in wanted_groups if g not in all_groups]
    if missing:
        raise AwsError(f"no IAM group named {', '.join(missing)} in this account; check the names (aws iam "
                       "list-groups)")
    for user in wanted_users:
        wanted_groups.extend(g for g in all_groups_of(all_users[user]) if g not in wanted_groups)
    keys: dict[str, list[dict[str, Any]]] = {}
    for user in wanted_users:
        try:
            found = [k for page in iam.get_paginator("list_access_keys").paginate(UserName=user)
                     for k in page.get("AccessKeyMetadata", [])]
        except ClientError as exc:
            raise AwsError(f"cannot list the access keys of {user}: {error_code(exc)}; check the credentials' "
                           "iam:ListAccessKeys permission") from None
        # only what the mapping needs: never the key id, so it cannot reach any output
        keys[user] = [{"Status": k.get("Status")} for k in found]
    return ([all_users[u] for u in wanted_users], [all_groups[g] for g in wanted_groups if g in all_groups], keys)


def all_groups_of(detail: Mapping[str, Any]) -> list[str]:
    return sorted(detail.get("GroupList", []))


def export_iam(export: Export, iam: Any, users: Iterable[str], groups: Iterable[str]) -> dict[str, Any]:
    """The `iam` section for the named users and groups (and the groups of those users)."""
    user_details, group_details, keys = read_iam(iam, users, groups)
    out: dict[str, Any] = {}
    put(out, "groups", [group_entry(export, g) for g in sorted(group_details, key=lambda g: g["GroupName"])])
    put(out, "users", [user_entry(export, u, keys[u["UserName"]], i)
                       for i, u in enumerate(sorted(user_details, key=lambda u: u["UserName"]))])
    return out
