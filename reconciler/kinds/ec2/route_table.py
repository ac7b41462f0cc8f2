"""Route tables with their routes and subnet associations (both inside the spec).

`routes` maps a destination to a target address (`{"0.0.0.0/0": "vpc.main.igw"}`);
`subnets` maps each associated subnet's address to its `{az, cidr}` identity, so
a replaced subnet shows here as an association to re-make.

Never touched, on either side of the diff: the main route table (the stack never
tags it), the `local` route, routes AWS adds for gateway endpoints (prefix-list
routes via `vpce-`), and propagated routes. Everything else in a managed table
is ours: a route added by hand shows as an extra key and apply removes it.

`update` re-reads the one table it converges and compares AWS ids, not the plan's
addresses: a NAT or subnet replaced earlier in the same apply has a new id behind
the same address. That is how a replacement reaches its referrers: the planner
turns a table that routes to (or associates) a replaced address into an UPDATE
("follows the replacement of ..."), which runs after the new resource exists and
re-resolves every reference through `ctx.ids`.

Adoption identity (`_read.adoptable`): (VPC, the subnets associated with it); the main table never.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import absent_none, error_code, is_absent
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.ec2 import _ops
from reconciler.kinds.ec2._read import (
    address_of,
    find_owned,
    live_items,
    ownership,
    placements,
    ref,
    tags_of,
    vpc_cidr,
)
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import protected
from reconciler.plan.model import Change, LiveResource

TARGET_KEYS = ("GatewayId", "NatGatewayId", "NetworkInterfaceId", "InstanceId", "VpcPeeringConnectionId",
               "TransitGatewayId", "LocalGatewayId", "CarrierGatewayId", "EgressOnlyInternetGatewayId",
               "CoreNetworkArn")
TARGET_BY_PREFIX = {"igw-": "GatewayId", "vgw-": "GatewayId", "nat-": "NatGatewayId",
                    "eni-": "NetworkInterfaceId", "pcx-": "VpcPeeringConnectionId", "tgw-": "TransitGatewayId",
                    "eigw-": "EgressOnlyInternetGatewayId"}


def managed_by_aws(route: Mapping[str, Any]) -> bool:
    """Routes the tool must never prune: local, gateway-endpoint prefix lists, propagated."""
    gateway = str(route.get("GatewayId", ""))
    return (gateway == "local" or gateway.startswith("vpce-")
            or route.get("Origin") in ("CreateRouteTable", "EnableVgwRoutePropagation"))


def destination(route: Mapping[str, Any]) -> str:
    return str(route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock")
               or route.get("DestinationPrefixListId"))


def destination_param(dest: str) -> dict[str, str]:
    if dest.startswith("pl-"):
        return {"DestinationPrefixListId": dest}
    if ":" in dest:
        return {"DestinationIpv6CidrBlock": dest}
    return {"DestinationCidrBlock": dest}


def target_of(route: Mapping[str, Any]) -> str | None:
    # a NAT instance route reports both the interface and the instance: the interface is what we set
    for key in TARGET_KEYS:
        if route.get(key):
            return str(route[key])
    return None


def target_param(ctx: Context, target_id: str) -> tuple[str, str]:
    """The create_route keyword for a target id (an instance is routed to by its primary interface)."""
    if target_id.startswith("i-"):
        return "NetworkInterfaceId", _ops.primary_interface(ctx, target_id)
    for prefix, key in TARGET_BY_PREFIX.items():
        if target_id.startswith(prefix):
            return key, target_id
    raise ValueError(f"cannot route to {target_id}")


def associate(ctx: Context, table_id: str, subnet_id: str) -> None:
    """Associate a subnet, moving it from another table if it has an explicit association there."""
    ec2 = ctx.client("ec2")
    elsewhere = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])["RouteTables"]
    for table in elsewhere:
        for assoc in table.get("Associations", []):
            if assoc.get("SubnetId") == subnet_id and not assoc.get("Main") and table["RouteTableId"] != table_id:
                try:
                    ec2.replace_route_table_association(AssociationId=assoc["RouteTableAssociationId"],
                                                        RouteTableId=table_id)
                    return
                except ClientError as exc:  # that table let go of it meanwhile (being deleted): associate afresh
                    if not is_absent(exc, "ec2"):
                        raise
    try:
        ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id)
    except ClientError as exc:  # a retried associate after a lost response is fine if it is ours now
        if error_code(exc) != "Resource.AlreadyAssociated":
            raise
        now = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]
        if not any(a.get("SubnetId") == subnet_id for a in now.get("Associations", [])):
            raise


def converge(ctx: Context, table_id: str, spec: Mapping[str, Any]) -> None:
    """Make one table's routes and associations exactly the spec's (AWS-managed routes aside)."""
    ec2 = ctx.client("ec2")
    table = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]
    current = {destination(r): r for r in table.get("Routes", []) if not managed_by_aws(r)}
    for dest, target in sorted(spec["routes"].items()):
        key, value = target_param(ctx, ctx.resolve(target))
        route = current.get(dest)
        if route is None:
            try:
                ec2.create_route(RouteTableId=table_id, **destination_param(dest), **{key: value})
            except ClientError as exc:  # a retried create after a lost response: make sure it points right
                if error_code(exc) != "RouteAlreadyExists":
                    raise
                ec2.replace_route(RouteTableId=table_id, **destination_param(dest), **{key: value})
        elif route.get(key) != value or route.get("State") == "blackhole":
            ec2.replace_route(RouteTableId=table_id, **destination_param(dest), **{key: value})
    for dest in sorted(set(current) - set(spec["routes"])):
        absent_none(lambda d=dest: ec2.delete_route(  # type: ignore[misc]
            RouteTableId=table_id, **destination_param(d)), "ec2")
    have = {a["SubnetId"]: a["RouteTableAssociationId"] for a in table.get("Associations", [])
            if a.get("SubnetId") and not a.get("Main")}
    want = {ctx.resolve(address) for address in spec["subnets"]}
    for subnet_id in sorted(want - set(have)):
        associate(ctx, table_id, subnet_id)
    for subnet_id in sorted(set(have) - want):
        absent_none(lambda s=subnet_id: ec2.disassociate_route_table(  # type: ignore[misc]
            AssociationId=have[s]), "ec2")


class RouteTable(Kind):
    name = "ec2.route_table"
    replace_on = frozenset({"vpc", "vpc_cidr"})

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        found: dict[str, LiveResource] = {}
        for table in live_items(ctx, "route_tables"):
            address = address_of(table, table["RouteTableId"])
            tags = tags_of(table)
            routes = {destination(r): ref(ctx, target_of(r)) for r in table.get("Routes", []) if not managed_by_aws(r)}
            subnet_ids = sorted(a["SubnetId"] for a in table.get("Associations", [])
                                if a.get("SubnetId") and not a.get("Main")
                                and a.get("AssociationState", {}).get("State", "associated") in
                                ("associated", "associating"))
            subnets = placements(ctx, subnet_ids)
            vpc = ref(ctx, table["VpcId"])
            deps = {str(vpc), *subnets, *(str(t) for t in routes.values() if t and str(t).startswith("vpc."))}
            found[address] = LiveResource(address, self.name, table["RouteTableId"], {
                "vpc": vpc,
                "vpc_cidr": vpc_cidr(ctx, table["VpcId"]),
                "routes": dict(sorted(routes.items())),
                "subnets": dict(sorted(subnets.items())),
                "tags": tags,
            }, protect=protected(tags), **ownership(ctx, table), depends_on=tuple(sorted(deps)),
                outputs={"id": table["RouteTableId"], "arn": ctx.arn("ec2", f"route-table/{table['RouteTableId']}")})
        return ReadResult(found)

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        existing = find_owned(ctx, "route_tables", change.address)
        if existing:
            table_id = str(existing[0]["RouteTableId"])
            _ops.converge_tags(ctx, table_id, spec["tags"], tags_of(existing[0]))
        else:
            vpc_id = ctx.resolve(spec["vpc"])
            table_id = str(ctx.client("ec2").create_route_table(
                VpcId=vpc_id, ClientToken=_ops.client_token(ctx, change.address, vpc_id),
                TagSpecifications=_ops.tag_specs("route-table", spec["tags"]))["RouteTable"]["RouteTableId"])
        converge(ctx, table_id, spec)
        return table_id

    def update(self, ctx: Context, change: Change) -> None:
        converge(ctx, change.have.id, change.want.spec)
        _ops.converge_tags(ctx, change.have.id, change.want.spec["tags"], change.have.attrs.get("tags", {}))

    def delete(self, ctx: Context, change: Change) -> None:
        _ops.delete_route_table(ctx, change.have.id, change.address)


KIND = RouteTable()
