"""VPCs: CIDR (forces replacement), DNS support and hostnames, tags.

DNS attributes are not in DescribeVpcs: they cost two DescribeVpcAttribute calls
per VPC (AWS has no batch form), all run at once (`_dns_of`). A VPC without the stack tag
but with a desired VPC's Name tag is reported as a conflict (blocked unless
--adopt) and never touched otherwise; its insides are then matched for adoption
too (`_read.adoptable`). Identity: the Name tag.

Replacing a VPC replaces everything in it (the expansion makes every child's
`vpc_cidr` force its own replacement). The apply graph deletes the children's old
halves before the old VPC (destroy edges run in reverse dependency order) and
creates them after the new one; nothing here vacates the VPC by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from reconciler.aws import absent_none
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.ec2 import _ops
from reconciler.kinds.ec2._read import address_of, describe, find_owned, network_interfaces, tags_of, unowned_vpcs
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import other_owner, protected
from reconciler.pacing import fan_out
from reconciler.plan.model import Action, Change, LiveResource, Note, info

# manifest name -> (the attribute DescribeVpcAttribute reads, one per call: AWS has no batch form; its answer's key)
_DNS_ATTRIBUTES = {"support": ("enableDnsSupport", "EnableDnsSupport"),
                   "hostnames": ("enableDnsHostnames", "EnableDnsHostnames")}


def _dns_attribute(ctx: Context, vpc_id: str, name: str) -> bool:
    attribute, key = _DNS_ATTRIBUTES[name]
    return bool(ctx.client("ec2").describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)[key]["Value"])


def _dns_of(ctx: Context, vpc_ids: Sequence[str]) -> list[dict[str, bool]]:
    """The DNS attributes of each VPC, in order: every (VPC, attribute) read at once, not one after another."""
    pairs = [(vpc_id, name) for vpc_id in vpc_ids for name in sorted(_DNS_ATTRIBUTES)]
    values = dict(zip(pairs, fan_out(lambda pair: _dns_attribute(ctx, *pair), pairs, name="vpc-dns"), strict=True))
    return [{name: values[(vpc_id, name)] for name in sorted(_DNS_ATTRIBUTES)} for vpc_id in vpc_ids]


def _dns(ctx: Context, vpc_id: str) -> dict[str, bool]:
    return _dns_of(ctx, [vpc_id])[0]


def set_dns(ctx: Context, vpc_id: str, want: Mapping[str, bool], have: Mapping[str, bool]) -> None:
    """One attribute per call (AWS refuses two); support goes on before hostnames and off after them."""
    ec2 = ctx.client("ec2")
    order = ["support", "hostnames"] if want["support"] else ["hostnames", "support"]
    for attribute in order:
        if want[attribute] != have.get(attribute):
            key = "EnableDnsSupport" if attribute == "support" else "EnableDnsHostnames"
            ec2.modify_vpc_attribute(VpcId=vpc_id, **{key: {"Value": want[attribute]}})


def vpc_blockers(ctx: Context, vpc_id: str) -> list[str]:
    """What keeps a VPC alive: network interfaces, and the subnets, gateways and tables still in it."""
    ec2 = ctx.client("ec2")
    found = network_interfaces(ctx, "vpc-id", vpc_id)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]]
    gateways = [g["InternetGatewayId"] for g in ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]]
    if subnets:
        found.append("subnets " + ", ".join(sorted(subnets)))
    if gateways:
        found.append("internet gateways " + ", ".join(sorted(gateways)))
    return found


def delete_vpc(ctx: Context, vpc_id: str, address: str) -> None:
    ec2 = ctx.client("ec2")
    _ops.until_free(ctx, f"{address} ({vpc_id})", lambda: absent_none(lambda: ec2.delete_vpc(VpcId=vpc_id), "ec2"),
                    lambda: vpc_blockers(ctx, vpc_id))


class Vpc(Kind):
    name = "ec2.vpc"
    replace_on = frozenset({"cidr"})

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        vpcs = [(v, True) for v in describe(ctx, "vpcs")]
        # same Name, no stack tag: a conflict to report (or, with --adopt, to take over), never to touch
        vpcs.extend((v, False) for v in unowned_vpcs(ctx, desired).values())
        dns = _dns_of(ctx, [vpc["VpcId"] for vpc, _ in vpcs])
        found: dict[str, LiveResource] = {}
        for (vpc, owned), attrs_dns in zip(vpcs, dns, strict=True):
            tags = tags_of(vpc)
            address = address_of(vpc, vpc["VpcId"])
            found[address] = LiveResource(address, self.name, vpc["VpcId"], {
                "cidr": vpc["CidrBlock"], "dns": attrs_dns, "tags": tags,
            }, protect=protected(tags), owned=owned, owner=other_owner(tags, ctx.stack),
                outputs={"id": vpc["VpcId"], "cidr": vpc["CidrBlock"], "arn": ctx.arn("ec2", f"vpc/{vpc['VpcId']}")})
        return ReadResult(found)

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> list[Note]:
        if action is Action.REPLACE:
            return [info("replacing a VPC deletes and re-creates everything in it (a full network outage)")]
        return []

    def create(self, ctx: Context, change: Change) -> str:
        spec = change.want.spec
        ec2 = ctx.client("ec2")
        existing = find_owned(ctx, "vpcs", change.address)
        if existing:
            vpc_id = str(existing[0]["VpcId"])
            set_dns(ctx, vpc_id, spec["dns"], _dns(ctx, vpc_id))
            _ops.converge_tags(ctx, vpc_id, spec["tags"], tags_of(existing[0]))
            return vpc_id
        vpc_id = str(ec2.create_vpc(CidrBlock=spec["cidr"],
                                    TagSpecifications=_ops.tag_specs("vpc", spec["tags"]))["Vpc"]["VpcId"])
        ec2.get_waiter("vpc_available").wait(VpcIds=[vpc_id], WaiterConfig={"Delay": 2, "MaxAttempts": 60})
        # AWS's defaults for a new VPC: support on, hostnames off
        set_dns(ctx, vpc_id, spec["dns"], {"support": True, "hostnames": False})
        return vpc_id

    def update(self, ctx: Context, change: Change) -> None:
        spec, live = change.want.spec, change.have.attrs
        set_dns(ctx, change.have.id, spec["dns"], live.get("dns", {}))
        _ops.converge_tags(ctx, change.have.id, spec["tags"], live.get("tags", {}))

    def delete(self, ctx: Context, change: Change) -> None:
        delete_vpc(ctx, change.have.id, change.address)


KIND = Vpc()
