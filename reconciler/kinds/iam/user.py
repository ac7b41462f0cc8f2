"""IAM users for programs: path, tags, groups, managed and inline policies.

`protect: true` is kept on the user as tag `reconciler:protect=true` (as on every
taggable kind): the plan refuses to delete a user carrying it, whether it left the
manifest or the whole stack is destroyed, and with it its access keys and their
stored secret (`plan.build`: the parts of a protected resource stay with it).

A programmatic user never has a console password: `console_access` is always
false in the desired spec, so a login profile added by hand shows as a change and
apply removes it. Login profiles are not in GetAccountAuthorizationDetails, so
they cost one GetLoginProfile per owned user (AWS has no batch form).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import absent_none, absent_ok, error_code
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.iam._api import (
    USER_KIND,
    attached,
    authorization_details,
    converge_policies,
    inline_policies,
    user_owned,
)
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import PROTECT_TAG, other_owner, tag_dict, tag_list
from reconciler.pacing import fan_out
from reconciler.plan.model import Change, LiveResource

# Tags the tool itself keeps on a user (key-delivery bookkeeping); never diffed.
BOOKKEEPING_PREFIX = "reconciler:key-"


class IamUser(Kind):
    name = USER_KIND
    delete_frees = False  # identified by its name, which is its address: a deletion frees nothing

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        wanted = {d.spec["name"] for d in desired}
        users = []
        for user in authorization_details(ctx)["users"]:
            tags = tag_dict(user.get("Tags"))
            owned = user_owned(tags, ctx.stack)
            if owned or user["UserName"] in wanted:
                users.append((user, tags, owned))
        consoles = fan_out(lambda u: _has_login_profile(ctx, u[0]["UserName"]), users, name="iam-users")
        found: dict[str, LiveResource] = {}
        for (user, tags, owned), console in zip(users, consoles, strict=True):
            address = f"iam.user.{user['UserName']}"
            found[address] = LiveResource(address, self.name, user["UserName"], {
                "name": user["UserName"],
                "path": user["Path"],
                "groups": sorted(user.get("GroupList", [])),
                "managed_policies": attached(user.get("AttachedManagedPolicies", [])),
                "inline_policies": inline_policies(user.get("UserPolicyList", [])),
                "console_access": console,
                "tags": {k: v for k, v in tags.items() if not k.startswith(BOOKKEEPING_PREFIX)},
                # from the user's own tag, so a user dropped from the manifest (or `destroy`) is still refused
            }, protect=tags.get(PROTECT_TAG) == "true", owned=owned, owner=other_owner(tags, ctx.stack),
                depends_on=tuple(f"iam.group.{g}" for g in sorted(user.get("GroupList", []))),
                unmanaged=("console password",) if console else (),
                outputs={"id": user["UserId"], "name": user["UserName"], "arn": user["Arn"]})
        return ReadResult(found)

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        iam = ctx.client("iam")
        try:
            iam.create_user(UserName=spec["name"], Path=spec["path"], Tags=tag_list(spec["tags"]))
            live: dict[str, Any] = {}
        except ClientError as exc:
            if error_code(exc) != "EntityAlreadyExists":
                raise
            # a previous run died after creating it: converge from what is there
            existing = iam.get_user(UserName=spec["name"])["User"]
            if not user_owned(tag_dict(existing.get("Tags")), ctx.stack):
                raise
            live = {"path": existing["Path"], "tags": tag_dict(existing.get("Tags"))}
            self._converge(ctx, spec, {**live, "groups": _groups(ctx, spec["name"])})
            return str(spec["name"])
        self._converge(ctx, spec, live)
        return str(spec["name"])

    def update(self, ctx: Context, change: Change) -> None:
        self._converge(ctx, change.want.spec, change.have.attrs)

    def _converge(self, ctx: Context, spec: Mapping[str, Any], live: Mapping[str, Any]) -> None:
        iam = ctx.client("iam")
        name = spec["name"]
        if live and live.get("path") != spec["path"]:
            iam.update_user(UserName=name, NewPath=spec["path"])
        live_tags = live.get("tags", {})
        changed = {k: v for k, v in spec["tags"].items() if live_tags.get(k) != v}
        if live and changed:
            iam.tag_user(UserName=name, Tags=tag_list(changed))
        for group in sorted(set(spec["groups"]) - set(live.get("groups", []))):
            iam.add_user_to_group(UserName=name, GroupName=group)
        for group in sorted(set(live.get("groups", [])) - set(spec["groups"])):
            iam.remove_user_from_group(UserName=name, GroupName=group)
        converge_policies(ctx, entity="user", name=name, desired=spec, live=live)
        if live.get("console_access"):
            _delete_login_profile(ctx, name)

    def delete(self, ctx: Context, change: Change) -> None:
        iam = ctx.client("iam")
        name = change.have.id
        keys = absent_none(lambda: iam.list_access_keys(UserName=name)["AccessKeyMetadata"], "iam")
        if keys is None:
            return  # already gone (a re-run, or deleted by hand)
        _delete_login_profile(ctx, name)
        for key in keys:
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        for group in _groups(ctx, name):
            iam.remove_user_from_group(UserName=name, GroupName=group)
        converge_policies(ctx, entity="user", name=name, desired={}, live=change.have.attrs)
        with absent_ok("iam"):
            iam.delete_user(UserName=name)


def _groups(ctx: Context, name: str) -> list[str]:
    paginator = ctx.client("iam").get_paginator("list_groups_for_user")
    return sorted(g["GroupName"] for page in paginator.paginate(UserName=name) for g in page["Groups"])


def _has_login_profile(ctx: Context, name: str) -> bool:
    return absent_none(lambda: ctx.client("iam").get_login_profile(UserName=name), "iam") is not None


def _delete_login_profile(ctx: Context, name: str) -> None:
    with absent_ok("iam"):
        ctx.client("iam").delete_login_profile(UserName=name)


KIND = IamUser()
