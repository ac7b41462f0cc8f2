"""Managed NAT gateways (`nat.mode: gateway`), each with its own Elastic IP; the plan shows the cost.

Creation waits until the gateway is `available` (routes must not point at a
pending one); deletion waits until it is `deleted` (its Elastic IP and subnet can
only go afterwards). A replaced gateway takes its routes with it: every stack
route that targeted the old gateway is pointed at the new one, because AWS would
otherwise leave a blackhole behind an address that did not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.aws import absent_none, error_code
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.ec2 import _api as _ec2
from reconciler.kinds.ec2._api import address_of, describe, ref, tags_of
from reconciler.manifest.model import DesiredResource
from reconciler.plan.model import Action, Change, LiveResource, Note

WAIT = {"Delay": 5, "MaxAttempts": 180}
ROUTE_DESTINATIONS = ("DestinationCidrBlock", "DestinationIpv6CidrBlock", "DestinationPrefixListId")


def _state(ctx: Context, nat_id: str) -> str | None:
    try:
        found = ctx.client("ec2").describe_nat_gateways(NatGatewayIds=[nat_id]).get("NatGateways", [])
    except Exception as exc:
        if error_code(exc) == "NatGatewayNotFound":
            return None
        raise
    return str(found[0]["State"]).lower() if found else None


def delete_nat_gateway(ctx: Context, nat_id: str) -> None:
    """Delete and wait until gone; a gateway already gone is fine."""
    if _state(ctx, nat_id) in (None, "deleted"):
        return
    ec2 = ctx.client("ec2")
    absent_none(lambda: ec2.delete_nat_gateway(NatGatewayId=nat_id), "NatGatewayNotFound")
    ec2.get_waiter("nat_gateway_deleted").wait(NatGatewayIds=[nat_id], WaiterConfig=WAIT)


def repoint_routes(ctx: Context, target_key: str, old: str, new: str) -> None:
    """Point every stack route whose `target_key` (NatGatewayId, NetworkInterfaceId) is `old` at `new`."""
    ec2 = ctx.client("ec2")
    tables = _ec2.mine(ctx, ec2.describe_route_tables(Filters=_ec2.stack_filter(ctx))["RouteTables"])
    for table in tables:
        for route in table.get("Routes", []):
            if route.get(target_key) != old:
                continue
            destination = {k: route[k] for k in ROUTE_DESTINATIONS if k in route}
            ec2.replace_route(RouteTableId=table["RouteTableId"], **destination, **{target_key: new})


class NatGateway(Kind):
    name = "ec2.nat_gateway"
    replace_on = frozenset({"vpc", "vpc_cidr", "subnet", "subnet_cidr", "az", "eip"})
    services = ("ec2",)

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        found: dict[str, LiveResource] = {}
        for nat in describe(ctx, "nat_gateways"):
            address = address_of(nat, nat["NatGatewayId"])
            tags = tags_of(nat)
            placement = _ec2.subnet_placement(ctx, nat["SubnetId"])
            addresses = nat.get("NatGatewayAddresses") or [{}]
            primary = next((a for a in addresses if a.get("IsPrimary")), addresses[0])
            subnet, eip, vpc = ref(ctx, nat["SubnetId"]), ref(ctx, primary.get("AllocationId")), ref(ctx, nat["VpcId"])
            found[address] = LiveResource(address, self.name, nat["NatGatewayId"], {
                "vpc": vpc,
                "vpc_cidr": _ec2.vpc_cidr(ctx, nat["VpcId"]),
                "subnet": subnet,
                "subnet_cidr": placement.get("cidr"),
                "az": placement.get("az"),
                "eip": eip,
                "tags": tags,
            }, protect=_ec2.protected(tags),
                depends_on=tuple(sorted({str(x) for x in (subnet, eip, vpc, _ec2.igw_of(address)) if x})))
        return ReadResult(found)

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> list[Note]:
        if action not in (Action.CREATE, Action.DELETE):
            return []
        source = desired.spec if desired is not None else live.attrs if live is not None else {}
        region = str(source.get("az") or "")[:-1]
        return [_ec2.cost_note(region, "nat_gateway", "NAT gateway, hourly charge; data processing extra",
                               action=action.value)]

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        ec2 = ctx.client("ec2")
        existing = _ec2.find_owned(ctx, "nat_gateways", change.address)
        if existing:
            nat_id = str(existing[0]["NatGatewayId"])
        else:
            subnet_id, allocation_id = ctx.resolve(spec["subnet"]), ctx.resolve(spec["eip"])

            def attempt() -> Any:
                _ec2.free_stale_association(ctx, allocation_id)
                return ec2.create_nat_gateway(
                    SubnetId=subnet_id, AllocationId=allocation_id, ConnectivityType="public",
                    ClientToken=_ec2.client_token(ctx, change.address, subnet_id, allocation_id),
                    TagSpecifications=_ec2.tag_specs("natgateway", spec["tags"]))

            # the Elastic IP may still be held by what is being deleted (a replacement, a mode switch)
            made = _ec2.until_free(ctx, f"{change.address}: Elastic IP {spec['eip']}", attempt,
                                   lambda: [f"Elastic IP {allocation_id} is still associated"])
            nat_id = str(made["NatGateway"]["NatGatewayId"])
        ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat_id], WaiterConfig=WAIT)
        return nat_id

    def update(self, ctx: Context, change: Change) -> None:
        _ec2.converge_tags(ctx, change.have.id, change.want.spec["tags"], change.have.attrs.get("tags", {}))

    def delete(self, ctx: Context, change: Change) -> None:
        delete_nat_gateway(ctx, change.have.id)

    def replace(self, ctx: Context, change: Change) -> str:
        delete_nat_gateway(ctx, change.have.id)
        new_id = self.create(ctx, change)
        repoint_routes(ctx, "NatGatewayId", change.have.id, new_id)
        return new_id


KIND = NatGateway()
