"""Subnets: VPC, CIDR and AZ force replacement; `map_public_ip` is managed only where written.

Replacement (a new CIDR or AZ) is delete-then-create (the default replace order),
because the new range may overlap the old one. AWS refuses to delete a subnet that
still holds network interfaces; the plan shows the stack's own occupants (interface
endpoints, NAT gateways, NAT instances) as REPLACED too (their specs carry the
subnet's CIDR and AZ), and the apply graph deletes them before the subnet and
creates them after it. Route table associations are re-made by the route table's
UPDATE. Anything else in the subnet (not ours) makes the delete fail at the
deadline, naming its network interfaces.

Adoption identity (`_read.adoptable`): (VPC, CIDR), inside an adopted VPC only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import error_code
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.ec2 import _ops
from reconciler.kinds.ec2._read import address_of, find_owned, live_items, ownership, ref, tags_of, vpc_cidr
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import protected
from reconciler.plan.model import Action, Change, LiveResource, Note, security


class Subnet(Kind):
    name = "ec2.subnet"
    replace_on = frozenset({"vpc", "vpc_cidr", "cidr", "az"})

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        found: dict[str, LiveResource] = {}
        for subnet in live_items(ctx, "subnets"):
            address = address_of(subnet, subnet["SubnetId"])
            tags = tags_of(subnet)
            vpc = ref(ctx, subnet["VpcId"])
            found[address] = LiveResource(address, self.name, subnet["SubnetId"], {
                "vpc": vpc,
                "vpc_cidr": vpc_cidr(ctx, subnet["VpcId"]),
                "cidr": subnet["CidrBlock"],
                "az": subnet["AvailabilityZone"],
                "map_public_ip": bool(subnet.get("MapPublicIpOnLaunch", False)),
                "tags": tags,
            }, protect=protected(tags), **ownership(ctx, subnet), depends_on=(str(vpc),),
                outputs={"id": subnet["SubnetId"], "cidr": subnet["CidrBlock"], "az": subnet["AvailabilityZone"],
                         "arn": subnet.get("SubnetArn") or ctx.arn("ec2", f"subnet/{subnet['SubnetId']}")})
        return ReadResult(found)

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> list[Note]:
        if desired is None or action not in (Action.CREATE, Action.UPDATE, Action.ADOPT, Action.REPLACE):
            return []
        existing = live is not None and action in (Action.UPDATE, Action.ADOPT)
        was = bool(live.attrs.get("map_public_ip")) if live is not None and existing else False
        if desired.spec.get("map_public_ip") and not was:
            return [security("instances launched here get a public IPv4 address automatically (RC-NET-002)")]
        return []

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        ec2 = ctx.client("ec2")
        existing = find_owned(ctx, "subnets", change.address)
        if existing:
            subnet_id = str(existing[0]["SubnetId"])
            live = {"map_public_ip": bool(existing[0].get("MapPublicIpOnLaunch")), "tags": tags_of(existing[0])}
            self._converge(ctx, subnet_id, spec, live)
            return subnet_id
        try:
            subnet_id = str(ec2.create_subnet(
                VpcId=ctx.resolve(spec["vpc"]), CidrBlock=spec["cidr"], AvailabilityZone=spec["az"],
                TagSpecifications=_ops.tag_specs("subnet", spec["tags"]))["Subnet"]["SubnetId"])
        except ClientError as exc:
            retried = find_owned(ctx, "subnets", change.address) \
                if error_code(exc) == "InvalidSubnet.Conflict" else []
            if not retried:
                raise
            subnet_id = str(retried[0]["SubnetId"])  # our own create, retried after a lost response
        ec2.get_waiter("subnet_available").wait(SubnetIds=[subnet_id], WaiterConfig={"Delay": 2, "MaxAttempts": 60})
        self._converge(ctx, subnet_id, spec, {"map_public_ip": False, "tags": spec["tags"]})
        return subnet_id

    def _converge(self, ctx: Context, subnet_id: str, spec: Mapping[str, Any], live: Mapping[str, Any]) -> None:
        if "map_public_ip" in spec and bool(spec["map_public_ip"]) != bool(live.get("map_public_ip")):
            ctx.client("ec2").modify_subnet_attribute(SubnetId=subnet_id,
                                                      MapPublicIpOnLaunch={"Value": bool(spec["map_public_ip"])})
        _ops.converge_tags(ctx, subnet_id, spec["tags"], live.get("tags", {}))

    def update(self, ctx: Context, change: Change) -> None:
        self._converge(ctx, change.have.id, change.want.spec, change.have.attrs)

    def delete(self, ctx: Context, change: Change) -> None:
        _ops.delete_subnet(ctx, change.have.id, change.address)


KIND = Subnet()
