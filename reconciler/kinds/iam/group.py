"""IAM groups. Groups cannot carry tags, so the stack owns the groups under the
IAM path `/reconciler/<stack>/`; a same-named group elsewhere is not ours.

`protect: true` cannot be a tag either, so it is recorded in the same place as
ownership: a protected group lives under `/reconciler/<stack>/protected/`. The path
stays on the group when the group leaves the manifest, so a removal and `destroy`
both still see it and the plan refuses the deletion; removing `protect` moves the
group back (UpdateGroup, in place), which lifts it. Why the path and not, say, a
tagged marker elsewhere: it is atomic with the group itself (no second object to
lose or forge separately), costs no extra call, and the one read we already make
(GetAccountAuthorizationDetails) returns it.
"""

from __future__ import annotations

from collections.abc import Sequence

from botocore.exceptions import ClientError

from reconciler.aws import absent_none, absent_ok, error_code
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.iam._api import attached, authorization_details, converge_policies, inline_policies
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import group_path, group_path_stack
from reconciler.plan.model import Change, LiveResource


class IamGroup(Kind):
    name = "iam.group"
    delete_frees = False  # identified by its name, which is its address: a deletion frees nothing

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        wanted = {d.spec["name"] for d in desired}
        found: dict[str, LiveResource] = {}
        for group in authorization_details(ctx)["groups"]:
            owned = group["Path"] in (group_path(ctx.stack), group_path(ctx.stack, protect=True))
            if not owned and group["GroupName"] not in wanted:
                continue
            address = f"iam.group.{group['GroupName']}"
            found[address] = LiveResource(address, self.name, group["GroupName"], {
                "name": group["GroupName"],
                "path": group["Path"],
                "managed_policies": attached(group.get("AttachedManagedPolicies", [])),
                "inline_policies": inline_policies(group.get("GroupPolicyList", [])),
            }, protect=group["Path"] == group_path(ctx.stack, protect=True), owned=owned,
                owner=None if owned else group_path_stack(group["Path"]),
                outputs={"id": group["GroupId"], "name": group["GroupName"], "arn": group["Arn"]})
        return ReadResult(found)

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        iam = ctx.client("iam")
        try:
            iam.create_group(GroupName=spec["name"], Path=spec["path"])
        except ClientError as exc:
            if error_code(exc) != "EntityAlreadyExists":
                raise
            existing = iam.get_group(GroupName=spec["name"])["Group"]
            if existing["Path"] not in (group_path(ctx.stack), group_path(ctx.stack, protect=True)):
                raise
            if existing["Path"] != spec["path"]:  # ours, made by a run with the other `protect`
                iam.update_group(GroupName=spec["name"], NewPath=spec["path"])
        converge_policies(ctx, entity="group", name=spec["name"], desired=spec, live={})
        return str(spec["name"])

    def update(self, ctx: Context, change: Change) -> None:
        spec = change.want.spec
        if change.have.attrs["path"] != spec["path"]:
            ctx.client("iam").update_group(GroupName=spec["name"], NewPath=spec["path"])
        converge_policies(ctx, entity="group", name=spec["name"], desired=spec, live=change.have.attrs)

    def delete(self, ctx: Context, change: Change) -> None:
        iam = ctx.client("iam")
        name = change.have.id
        members = absent_none(lambda: iam.get_group(GroupName=name)["Users"], "iam")
        if members is None:
            return  # already gone (a re-run, or deleted by hand)
        for member in members:
            with absent_ok("iam"):
                iam.remove_user_from_group(GroupName=name, UserName=member["UserName"])
        converge_policies(ctx, entity="group", name=name, desired={}, live=change.have.attrs)
        with absent_ok("iam"):
            iam.delete_group(GroupName=name)


KIND = IamGroup()
