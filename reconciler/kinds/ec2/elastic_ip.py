"""Elastic IPs (one per NAT gateway or NAT instance); the plan shows their monthly cost.

An Elastic IP is released only after whatever uses it is gone: its NAT depends on
it, so the engine deletes the NAT first; AWS's `InvalidIPAddress.InUse` is still
retried to the deadline. A live address depends on its VPC's internet gateway so
that it is released before the gateway is detached (AWS refuses the detach while
the VPC maps public addresses).

Adoption identity (`_read.adoptable`): the allocation on the NAT gateway the manifest gives
this address (an address on no adopted or owned NAT gateway is never matched).
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.aws import absent_none
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.ec2 import _ops
from reconciler.kinds.ec2._prices import cost_note
from reconciler.kinds.ec2._read import address_of, find_owned, igw_of, live_items, ownership, tags_of
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import protected
from reconciler.plan.model import Action, Change, LiveResource, Note


def release(ctx: Context, allocation_id: str, address: str) -> None:
    ec2 = ctx.client("ec2")

    def users() -> list[str]:
        found = ec2.describe_addresses(AllocationIds=[allocation_id]).get("Addresses", [])
        return [f"{a.get('PublicIp')} associated with {a.get('InstanceId') or a.get('NetworkInterfaceId')}"
                for a in found if a.get("AssociationId")]

    _ops.until_free(ctx, f"{address} ({allocation_id})",
                    lambda: absent_none(lambda: ec2.release_address(AllocationId=allocation_id), "ec2"),
                    users)


class ElasticIp(Kind):
    name = "ec2.elastic_ip"
    replace_on = frozenset({"network_border_group"})

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        found: dict[str, LiveResource] = {}
        for item in live_items(ctx, "addresses"):
            address = address_of(item, item["AllocationId"])
            tags = tags_of(item)
            igw = igw_of(address)
            found[address] = LiveResource(address, self.name, item["AllocationId"], {
                # AWS reports it; an emulator may not (then it is the region, AWS's default)
                "network_border_group": item.get("NetworkBorderGroup") or ctx.region,
                "public_ip": item.get("PublicIp"),
                "tags": tags,
            }, protect=protected(tags), **ownership(ctx, item), depends_on=(igw,) if igw else (),
                outputs={"id": item["AllocationId"], "arn": ctx.arn("ec2", f"elastic-ip/{item['AllocationId']}"),
                         **({"public_ip": item["PublicIp"]} if item.get("PublicIp") else {})})
        return ReadResult(found)

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> list[Note]:
        if action not in (Action.CREATE, Action.DELETE):
            return []
        source = desired.spec if desired is not None else live.attrs if live is not None else {}
        region = str(source.get("network_border_group", ""))
        return [cost_note(region, "public_ipv4", "public IPv4 address", action=action.value)]

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        existing = find_owned(ctx, "addresses", change.address)
        if existing:
            _ops.converge_tags(ctx, existing[0]["AllocationId"], spec["tags"], tags_of(existing[0]))
            return str(existing[0]["AllocationId"])
        made = ctx.client("ec2").allocate_address(
            Domain="vpc", NetworkBorderGroup=spec["network_border_group"],
            TagSpecifications=_ops.tag_specs("elastic-ip", spec["tags"]))
        return str(made["AllocationId"])

    def update(self, ctx: Context, change: Change) -> None:
        _ops.converge_tags(ctx, change.have.id, change.want.spec["tags"], change.have.attrs.get("tags", {}))

    def delete(self, ctx: Context, change: Change) -> None:
        release(ctx, change.have.id, change.address)


KIND = ElasticIp()
