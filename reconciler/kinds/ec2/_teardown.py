"""Moving the stack's own resources out of a subnet or VPC that is about to be replaced.

The engine runs a replacement as one step (delete, then create) *before* the
replacements of what sits inside (they depend on it). AWS refuses to delete a
subnet or VPC that still holds network interfaces, so the replaced container
first removes its stack-owned occupants, in AWS's teardown order, each waited
until gone. Expansion guarantees those occupants are themselves planned for
replacement (they carry the container's identity), so their own step finds them
gone and only creates. Only stack-tagged resources are touched; anything else in
the way makes the container's delete fail at the deadline, naming it.
"""

from __future__ import annotations

from typing import Any

from reconciler.aws import absent_none
from reconciler.kinds.base import Context
from reconciler.kinds.ec2 import _api as _ec2


def _stack(ctx: Context, name: str, value: str) -> list[dict[str, Any]]:
    return [*_ec2.stack_filter(ctx), {"Name": name, "Values": [value]}]


def _in(ctx: Context, items: list[dict[str, Any]], key: str, value: str) -> list[dict[str, Any]]:
    """Ours and really in that subnet/VPC: the server-side filters are only a saving."""
    return [i for i in _ec2.mine(ctx, items) if i.get(key) == value]


def _endpoints(ctx: Context, vpc_id: str) -> list[dict[str, Any]]:
    paginator = ctx.client("ec2").get_paginator("describe_vpc_endpoints")
    found = _in(ctx, [e for page in paginator.paginate(Filters=_stack(ctx, "vpc-id", vpc_id))
                      for e in page.get("VpcEndpoints", [])], "VpcId", vpc_id)
    return [e for e in found if str(e.get("State", "")).lower() not in _ec2.ENDPOINT_GHOSTS]


def _nat_gateways(ctx: Context, name: str, key: str, value: str) -> list[str]:
    paginator = ctx.client("ec2").get_paginator("describe_nat_gateways")
    found = [n for page in paginator.paginate(Filter=_stack(ctx, name, value)) for n in page.get("NatGateways", [])]
    return [n["NatGatewayId"] for n in _in(ctx, found, key, value)
            if str(n.get("State", "")).lower() not in _ec2.NAT_GHOSTS]


def _instances(ctx: Context, name: str, key: str, value: str) -> list[str]:
    paginator = ctx.client("ec2").get_paginator("describe_instances")
    found = [i for page in paginator.paginate(Filters=_stack(ctx, name, value))
             for r in page.get("Reservations", []) for i in r.get("Instances", [])]
    return [i["InstanceId"] for i in _in(ctx, found, key, value)
            if i.get("State", {}).get("Name") not in _ec2.INSTANCE_GHOSTS]


def vacate_subnet(ctx: Context, subnet_id: str) -> None:
    """Delete the stack's interface endpoints, NAT gateways and NAT instances that sit in the subnet."""
    from reconciler.kinds.ec2.nat_gateway import delete_nat_gateway
    from reconciler.kinds.ec2.nat_instance import terminate
    from reconciler.kinds.ec2.vpc_endpoint import delete_endpoint

    found = absent_none(lambda: ctx.client("ec2").describe_subnets(SubnetIds=[subnet_id]),
                              "InvalidSubnetID.NotFound")
    subnets = found["Subnets"] if found else []  # already gone (its VPC was vacated): nothing to move
    for endpoint in (_endpoints(ctx, subnets[0]["VpcId"]) if subnets else []):
        if subnet_id in endpoint.get("SubnetIds", []):
            delete_endpoint(ctx, endpoint["VpcEndpointId"], _ec2.address_of(endpoint, endpoint["VpcEndpointId"]))
    for nat_id in _nat_gateways(ctx, "subnet-id", "SubnetId", subnet_id):
        delete_nat_gateway(ctx, nat_id)
    for instance_id in _instances(ctx, "subnet-id", "SubnetId", subnet_id):
        terminate(ctx, instance_id)


def vacate_vpc(ctx: Context, vpc_id: str) -> None:
    """Delete every stack resource inside the VPC, in AWS's order (Elastic IPs stay: they are not in it)."""
    from reconciler.kinds.ec2.internet_gateway import detach_and_delete
    from reconciler.kinds.ec2.nat_gateway import delete_nat_gateway
    from reconciler.kinds.ec2.nat_instance import terminate
    from reconciler.kinds.ec2.route_table import delete_route_table
    from reconciler.kinds.ec2.security_group import delete_group
    from reconciler.kinds.ec2.subnet import delete_subnet
    from reconciler.kinds.ec2.vpc_endpoint import delete_endpoint

    ec2 = ctx.client("ec2")
    for endpoint in _endpoints(ctx, vpc_id):
        delete_endpoint(ctx, endpoint["VpcEndpointId"], _ec2.address_of(endpoint, endpoint["VpcEndpointId"]))
    for nat_id in _nat_gateways(ctx, "vpc-id", "VpcId", vpc_id):
        delete_nat_gateway(ctx, nat_id)
    for instance_id in _instances(ctx, "vpc-id", "VpcId", vpc_id):
        terminate(ctx, instance_id)
    tables = ec2.describe_route_tables(Filters=_stack(ctx, "vpc-id", vpc_id))["RouteTables"]
    for table in _in(ctx, tables, "VpcId", vpc_id):
        delete_route_table(ctx, table["RouteTableId"], _ec2.address_of(table, table["RouteTableId"]))
    groups = ec2.describe_security_groups(Filters=_stack(ctx, "vpc-id", vpc_id))["SecurityGroups"]
    for group in _in(ctx, groups, "VpcId", vpc_id):
        delete_group(ctx, group["GroupId"], _ec2.address_of(group, group["GroupId"]))
    for subnet in _in(ctx, ec2.describe_subnets(Filters=_stack(ctx, "vpc-id", vpc_id))["Subnets"], "VpcId", vpc_id):
        delete_subnet(ctx, subnet["SubnetId"], _ec2.address_of(subnet, subnet["SubnetId"]))
    gateways = ec2.describe_internet_gateways(Filters=_stack(ctx, "attachment.vpc-id", vpc_id))["InternetGateways"]
    for gateway in _ec2.mine(ctx, gateways):
        if vpc_id not in [a.get("VpcId") for a in gateway.get("Attachments", [])]:
            continue
        detach_and_delete(ctx, gateway["InternetGatewayId"], [vpc_id],
                          _ec2.address_of(gateway, gateway["InternetGatewayId"]))
