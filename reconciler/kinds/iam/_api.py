"""IAM reads and helpers shared by the IAM kinds."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from reconciler.aws import absent_ok
from reconciler.canonical import canonical_policy
from reconciler.errors import AwsError
from reconciler.kinds.base import Context
from reconciler.ownership import of_kind, owned_by

USER_KIND = "iam.user"  # named here too: the access-key kind's ownership follows its user's


def authorization_details(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    """Users and groups of the whole account in one paginated call, shared by all IAM kinds."""

    def fetch() -> dict[str, list[dict[str, Any]]]:
        paginator = ctx.client("iam").get_paginator("get_account_authorization_details")
        users: list[dict[str, Any]] = []
        groups: list[dict[str, Any]] = []
        for page in paginator.paginate(Filter=["User", "Group"]):
            users.extend(page.get("UserDetailList", []))
            groups.extend(page.get("GroupDetailList", []))
        return {"users": users, "groups": groups}

    return ctx.memo("iam:authorization-details", fetch)


def user_owned(tags: Mapping[str, str], stack: str) -> bool:
    """A user of this stack and of the user kind (no kind tag: made before the tag, still ours)."""
    return owned_by(tags, stack) and of_kind(tags, USER_KIND)


def document(value: Any) -> Any:
    """A policy document as data, whether AWS returned it parsed or URL-encoded.

    A text that is not JSON is a failed read (exit 1), never a diff and never a traceback.
    """
    if isinstance(value, str):
        try:
            return json.loads(urllib.parse.unquote(value))
        except ValueError:
            raise AwsError("IAM returned a policy document that is not JSON; cannot compare it with the "
                           "manifest, nothing was planned; fix the policy in IAM, then re-run") from None
    return value


def inline_policies(entries: list[Mapping[str, Any]]) -> dict[str, Any]:
    return {p["PolicyName"]: document(p["PolicyDocument"]) for p in sorted(entries, key=lambda p: p["PolicyName"])}


def attached(entries: list[Mapping[str, Any]]) -> list[str]:
    return sorted(p["PolicyArn"] for p in entries)


def policy_json(doc: Any) -> str:
    """The author's document as JSON text (key order as written)."""
    return json.dumps(doc, indent=2)


def converge_policies(ctx: Context, *, entity: str, name: str, desired: Mapping[str, Any],
                      live: Mapping[str, Any]) -> None:
    """Attach/detach managed and put/delete inline policies of a user or group to match."""
    iam = ctx.client("iam")
    key = {"user": "UserName", "group": "GroupName"}[entity]
    want_arns = set(desired.get("managed_policies", []))
    have_arns = set(live.get("managed_policies", []))
    for arn in sorted(want_arns - have_arns):
        getattr(iam, f"attach_{entity}_policy")(**{key: name, "PolicyArn": arn})
    for arn in sorted(have_arns - want_arns):
        with absent_ok("iam"):
            getattr(iam, f"detach_{entity}_policy")(**{key: name, "PolicyArn": arn})
    want = desired.get("inline_policies", {})
    have = live.get("inline_policies", {})
    for policy_name, doc in sorted(want.items()):
        if policy_name not in have or canonical_policy(have[policy_name]) != canonical_policy(doc):
            getattr(iam, f"put_{entity}_policy")(**{key: name, "PolicyName": policy_name,
                                                     "PolicyDocument": policy_json(doc)})
    for policy_name in sorted(set(have) - set(want)):
        with absent_ok("iam"):
            getattr(iam, f"delete_{entity}_policy")(**{key: name, "PolicyName": policy_name})
