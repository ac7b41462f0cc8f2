"""Managed NAT gateways (`nat.mode: gateway`), each with its own Elastic IP; the plan shows the cost.

Creation waits until the gateway is `available` (routes must not point at a
pending one); deletion waits until it is `deleted` (its Elastic IP and subnet can
only go afterwards). A replacement is delete-then-create (the new gateway needs the
Elastic IP the old one holds); the route tables that route to it are planned as
updates ("follows the replacement of ..."), which run after the create and point
their routes at the new gateway's id.

Adoption identity (`_read.adoptable`): its subnet (an adopted or owned one in the adopted VPC).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.ec2 import _ops
from reconciler.kinds.ec2._pacing import pace
from reconciler.kinds.ec2._prices import cost_note
from reconciler.kinds.ec2._read import (
    address_of,
    find_owned,
    igw_of,
    live_items,
    ownership,
    ref,
    subnet_placement,
    tags_of,
    vpc_cidr,
)
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import protected
from reconciler.plan.model import Action, Change, LiveResource, Note


class NatGateway(Kind):
    name = "ec2.nat_gateway"
    replace_on = frozenset({"vpc", "vpc_cidr", "subnet", "subnet_cidr", "az", "eip"})

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        found: dict[str, LiveResource] = {}
        for nat in live_items(ctx, "nat_gateways"):
            address = address_of(nat, nat["NatGatewayId"])
            tags = tags_of(nat)
            placement = subnet_placement(ctx, nat["SubnetId"])
            addresses = nat.get("NatGatewayAddresses") or [{}]
            primary = next((a for a in addresses if a.get("IsPrimary")), addresses[0])
            subnet, eip, vpc = ref(ctx, nat["SubnetId"]), ref(ctx, primary.get("AllocationId")), ref(ctx, nat["VpcId"])
            found[address] = LiveResource(address, self.name, nat["NatGatewayId"], {
                "vpc": vpc,
                "vpc_cidr": vpc_cidr(ctx, nat["VpcId"]),
                "subnet": subnet,
                "subnet_cidr": placement.get("cidr"),
                "az": placement.get("az"),
                "eip": eip,
                "tags": tags,
            }, protect=protected(tags), **ownership(ctx, nat),
                depends_on=tuple(sorted({str(x) for x in (subnet, eip, vpc, igw_of(address)) if x})),
                outputs={"id": nat["NatGatewayId"], "arn": ctx.arn("ec2", f"natgateway/{nat['NatGatewayId']}"),
                         **({"public_ip": primary["PublicIp"]} if primary.get("PublicIp") else {}),
                         **({"private_ip": primary["PrivateIp"]} if primary.get("PrivateIp") else {})})
        return ReadResult(found)

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> list[Note]:
        if action not in (Action.CREATE, Action.DELETE):
            return []
        source = desired.spec if desired is not None else live.attrs if live is not None else {}
        region = str(source.get("az") or "")[:-1]
        return [cost_note(region, "nat_gateway", "NAT gateway, hourly charge; data processing extra",
                               action=action.value)]

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        ec2 = ctx.client("ec2")
        existing = find_owned(ctx, "nat_gateways", change.address)
        if existing:
            nat_id = str(existing[0]["NatGatewayId"])
        else:
            subnet_id, allocation_id = ctx.resolve(spec["subnet"]), ctx.resolve(spec["eip"])

            def attempt() -> Any:
                _ops.free_stale_association(ctx, allocation_id)
                pace(ctx, "CreateNatGateway")  # each attempt spends a token of AWS's bucket
                return ec2.create_nat_gateway(
                    SubnetId=subnet_id, AllocationId=allocation_id, ConnectivityType="public",
                    ClientToken=_ops.client_token(ctx, change.address, subnet_id, allocation_id),
                    TagSpecifications=_ops.tag_specs("natgateway", spec["tags"]))

            # the Elastic IP may still be held by what is being deleted (a replacement, a mode switch)
            made = _ops.until_free(ctx, f"{change.address}: Elastic IP {spec['eip']}", attempt,
                                   lambda: [f"Elastic IP {allocation_id} is still associated"])
            nat_id = str(made["NatGateway"]["NatGatewayId"])
        ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat_id], WaiterConfig=_ops.NAT_WAIT)
        return nat_id

    def update(self, ctx: Context, change: Change) -> None:
        _ops.converge_tags(ctx, change.have.id, change.want.spec["tags"], change.have.attrs.get("tags", {}))

    def delete(self, ctx: Context, change: Change) -> None:
        _ops.delete_nat_gateway(ctx, change.have.id)


KIND = NatGateway()
