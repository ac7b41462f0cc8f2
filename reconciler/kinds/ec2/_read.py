"""The EC2 read floor: one table of the EC2 types, driving every read the network kinds make.

Why one table: the batched describe, the look-up by owner before a create and the
id map all need the same four facts per type (operation, result key, id key,
filter parameter) plus its ghost states; listed once here, a new EC2 kind is one
row, not four edits.

Reads: ONE stack-tag-filtered, paginated Describe per type for the whole stack,
memoised in the Context, so nine kinds reading at once cost nine calls, not nine
per kind. Ghosts (NAT gateways and endpoints `deleting`/`deleted`/`failed`,
instances `shutting-down`/`terminated`) are dropped here, once.

Invariants:
- every read is complete or raises (paginators; no swallowed errors);
- ownership is proven client-side (`mine`): the stack tag, and the kind tag when
  present (a resource whose `reconciler:kind` names another kind is not this
  type's kind's; one made before the tag existed is accepted);
- `id_map` maps every stack-owned id (and a NAT instance's network interface)
  to its address, so kinds normalise references to addresses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.aws import absent_none
from reconciler.kinds.base import Context
from reconciler.ownership import ADDRESS_TAG, STACK_TAG, of_kind, tag_dict


@dataclass(frozen=True)
class Ec2Type:
    """One EC2 resource type as the reads see it.

    `kind` is the kind that owns resources of this type (checked against the kind tag);
    `filter_param` is the describe call's filter keyword (DescribeNatGateways says `Filter`);
    `nested` names the inner list when results come grouped (instances in reservations);
    `state` is the path to the state whose values in `ghosts` mean "already going or gone".
    """

    operation: str
    result: str
    id_key: str
    kind: str
    filter_param: str = "Filters"
    paginated: bool = True
    nested: str = ""
    state: tuple[str, ...] = ("State",)
    ghosts: frozenset[str] = frozenset()

    def alive(self, item: Mapping[str, Any]) -> bool:
        value: Any = item
        for key in self.state:
            value = value.get(key, {}) if isinstance(value, Mapping) else {}
        return not self.ghosts or str(value or "").lower() not in self.ghosts


NAT_GHOSTS = frozenset({"deleting", "deleted", "failed"})
ENDPOINT_GHOSTS = frozenset({"deleting", "deleted", "failed", "rejected", "expired"})
INSTANCE_GHOSTS = frozenset({"shutting-down", "terminated"})

TYPES: dict[str, Ec2Type] = {
    "vpcs": Ec2Type("describe_vpcs", "Vpcs", "VpcId", "ec2.vpc"),
    "subnets": Ec2Type("describe_subnets", "Subnets", "SubnetId", "ec2.subnet"),
    "internet_gateways": Ec2Type("describe_internet_gateways", "InternetGateways", "InternetGatewayId",
                                 "ec2.internet_gateway"),
    # no paginator: AWS returns every address in one page
    "addresses": Ec2Type("describe_addresses", "Addresses", "AllocationId", "ec2.elastic_ip", paginated=False),
    "nat_gateways": Ec2Type("describe_nat_gateways", "NatGateways", "NatGatewayId", "ec2.nat_gateway",
                            filter_param="Filter", ghosts=NAT_GHOSTS),
    "route_tables": Ec2Type("describe_route_tables", "RouteTables", "RouteTableId", "ec2.route_table"),
    "vpc_endpoints": Ec2Type("describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId", "ec2.vpc_endpoint",
                             ghosts=ENDPOINT_GHOSTS),
    "security_groups": Ec2Type("describe_security_groups", "SecurityGroups", "GroupId", "ec2.security_group"),
    "instances": Ec2Type("describe_instances", "Reservations", "InstanceId", "ec2.nat_instance",
                         nested="Instances", state=("State", "Name"), ghosts=INSTANCE_GHOSTS),
    "network_acls": Ec2Type("describe_network_acls", "NetworkAcls", "NetworkAclId", "ec2.network_acl"),
}

# Set by `describe` on the extra copies a retried create left behind (see `_dedupe`).
DUPLICATE_KEY = "ReconcilerDuplicateOf"


def stack_filter(ctx: Context) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{STACK_TAG}", "Values": [ctx.stack]}]


def tags_of(item: Mapping[str, Any]) -> dict[str, str]:
    return tag_dict(item.get("Tags") or item.get("TagSet"))


def address_of(item: Mapping[str, Any], fallback_id: str) -> str:
    """The address a resource carries in its tag (or was given as a duplicate by `describe`); an owned
    resource without one gets a unique stand-in."""
    return str(item.get(DUPLICATE_KEY) or tags_of(item).get(ADDRESS_TAG) or f"ec2.untagged.{fallback_id}")


def paginate(ctx: Context, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    paginator = ctx.client("ec2").get_paginator(operation)
    return [item for page in paginator.paginate(**kwargs) for item in page.get(key, [])]


def mine(ctx: Context, items: Iterable[dict[str, Any]], kind: str | None = None) -> list[dict[str, Any]]:
    """Only what carries this stack's tag (and, given a kind, no other kind's tag). Every read passes
    through here: a server-side tag filter is a saving, never the proof of ownership (an emulator was
    seen to ignore it and return other stacks')."""
    return [i for i in items if tags_of(i).get(STACK_TAG) == ctx.stack
            and (kind is None or of_kind(tags_of(i), kind))]


def list_type(ctx: Context, what: str, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every live (non-ghost) item of one type matching `filters`, complete or raising."""
    row = TYPES[what]
    if row.paginated:
        found = paginate(ctx, row.operation, row.result, **{row.filter_param: filters})
    else:
        found = list(getattr(ctx.client("ec2"), row.operation)(**{row.filter_param: filters}).get(row.result, []))
    if row.nested:
        found = [i for group in found for i in group.get(row.nested, [])]
    return [i for i in found if row.alive(i)]


def _dedupe(ctx: Context, what: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two owned resources under one address: a create whose response was lost and that botocore retried
    (CreateVpc, CreateInternetGateway and AllocateAddress take no ClientToken). The one in use keeps the
    address (the VPC that holds subnets, the attached gateway, the associated address; else the lowest id);
    the others get `<address>#duplicate-<id>`, which no manifest declares, so the plan deletes them, loudly."""
    key = TYPES[what].id_key
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        groups.setdefault(address_of(item, item[key]), []).append(item)
    if all(len(group) == 1 for group in groups.values()):
        return items
    in_use: set[str] = set()
    if what == "vpcs":
        in_use = {s["VpcId"] for s in describe(ctx, "subnets")}
    elif what == "internet_gateways":
        in_use = {i[key] for i in items if i.get("Attachments")}
    elif what == "addresses":
        in_use = {i[key] for i in items if i.get("AssociationId")}
    out = []
    for address, group in groups.items():
        group.sort(key=lambda i: (i[key] not in in_use, i[key]))
        out.append(group[0])
        for extra in group[1:]:
            out.append({**extra, DUPLICATE_KEY: f"{address}#duplicate-{extra[key]}"})
    return out


def describe(ctx: Context, what: str) -> list[dict[str, Any]]:
    """Every live, stack-owned resource of one EC2 type; one batched read per stack and run."""
    return ctx.memo(f"ec2:{what}", lambda: _dedupe(
        ctx, what, mine(ctx, list_type(ctx, what, stack_filter(ctx)), TYPES[what].kind)))


def security_group_rules(ctx: Context) -> list[dict[str, Any]]:
    """Every rule of every stack security group (rules carry no tags: read by group id, 200 at a time)."""

    def read() -> list[dict[str, Any]]:
        ids = sorted(g["GroupId"] for g in describe(ctx, "security_groups"))
        rules: list[dict[str, Any]] = []
        for start in range(0, len(ids), 200):  # AWS takes at most 200 filter values
            rules.extend(paginate(ctx, "describe_security_group_rules", "SecurityGroupRules",
                                  Filters=[{"Name": "group-id", "Values": ids[start:start + 200]}]))
        return rules

    return ctx.memo("ec2:security_group_rules", read)


def find_owned(ctx: Context, what: str, address: str) -> list[dict[str, Any]]:
    """A fresh look-up by stack and address tags (before a create: a crashed run may have made it)."""
    filters = [*stack_filter(ctx), {"Name": f"tag:{ADDRESS_TAG}", "Values": [address]}]
    return [i for i in mine(ctx, list_type(ctx, what, filters), TYPES[what].kind)
            if tags_of(i).get(ADDRESS_TAG) == address]


def id_map(ctx: Context) -> dict[str, str]:
    """AWS id -> address for everything the stack owns (a NAT instance's ENI maps to the instance)."""

    def build() -> dict[str, str]:
        out: dict[str, str] = {}
        for what, row in TYPES.items():
            for item in describe(ctx, what):
                out[item[row.id_key]] = address_of(item, item[row.id_key])
        for instance in describe(ctx, "instances"):
            for eni in instance.get("NetworkInterfaces", []):
                out[eni["NetworkInterfaceId"]] = address_of(instance, instance["InstanceId"])
        return out

    return ctx.memo("ec2:id-map", build)


def ref(ctx: Context, ident: str | None) -> str | None:
    """An id as its address when the stack owns it, else the raw id (so foreign targets still show)."""
    if not ident:
        return None
    return id_map(ctx).get(ident, ident)


def vpc_cidr(ctx: Context, vpc_id: str | None) -> str | None:
    cidrs = ctx.memo("ec2:vpc-cidrs", lambda: {v["VpcId"]: v["CidrBlock"] for v in describe(ctx, "vpcs")})
    return cidrs.get(vpc_id or "")


def subnet_placement(ctx: Context, subnet_id: str) -> dict[str, str]:
    """`{"az", "cidr"}` of a stack subnet (the identity a reference to it carries), or {} if not ours."""
    subnets = ctx.memo("ec2:subnet-by-id", lambda: {s["SubnetId"]: s for s in describe(ctx, "subnets")})
    subnet = subnets.get(subnet_id)
    if subnet is None:
        return {}
    return {"az": subnet["AvailabilityZone"], "cidr": subnet["CidrBlock"]}


def placements(ctx: Context, subnet_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    return {str(ref(ctx, s)): subnet_placement(ctx, s) for s in subnet_ids}


def igw_of(address: str) -> str:
    """The internet gateway address of the VPC an address lives in (`vpc.main.x.y` -> `vpc.main.igw`)."""
    parts = address.split(".")
    return ".".join(parts[:2]) + ".igw" if len(parts) > 2 and parts[0] == "vpc" else ""


# -- one resource, fresh (apply-time reads) -------------------------------------


def nat_gateway_state(ctx: Context, nat_id: str) -> str | None:
    """The gateway's state, lower-case, or None when AWS no longer knows it."""
    found = absent_none(lambda: ctx.client("ec2").describe_nat_gateways(NatGatewayIds=[nat_id]), "ec2")
    gateways = (found or {}).get("NatGateways", [])
    return str(gateways[0]["State"]).lower() if gateways else None


def describe_endpoint(ctx: Context, endpoint_id: str) -> dict[str, Any] | None:
    found = absent_none(lambda: ctx.client("ec2").describe_vpc_endpoints(VpcEndpointIds=[endpoint_id]), "ec2")
    endpoints = (found or {}).get("VpcEndpoints", [])
    return dict(endpoints[0]) if endpoints else None


def endpoint_state(ctx: Context, endpoint_id: str) -> str | None:
    found = describe_endpoint(ctx, endpoint_id)
    return str(found.get("State", "")).lower() if found else None


def instance_states(ctx: Context, instance_id: str) -> list[str]:
    """The states AWS reports for one instance id ([] when it no longer knows it)."""
    found = absent_none(lambda: ctx.client("ec2").describe_instances(InstanceIds=[instance_id]), "ec2")
    return [i["State"]["Name"] for r in (found or {}).get("Reservations", []) for i in r.get("Instances", [])]


def network_interfaces(ctx: Context, filter_name: str, value: str) -> list[str]:
    """Human descriptions of the network interfaces matching one filter (subnet-id, vpc-id, group-id)."""
    found = paginate(ctx, "describe_network_interfaces", "NetworkInterfaces",
                     Filters=[{"Name": filter_name, "Values": [value]}])
    out = []
    for eni in sorted(found, key=lambda e: e["NetworkInterfaceId"]):
        owner = eni.get("Attachment", {}).get("InstanceId") or eni.get("RequesterId") or ""
        text = eni["NetworkInterfaceId"]
        details = [d for d in (eni.get("Description"), eni.get("InterfaceType"), owner) if d]
        out.append(f"{text} ({', '.join(details)})" if details else text)
    return out


def first_interface(instance: Mapping[str, Any]) -> str | None:
    """An instance's primary network interface (device index 0), the one routes point at."""
    interfaces = sorted(instance.get("NetworkInterfaces", []),
                        key=lambda e: e.get("Attachment", {}).get("DeviceIndex", 0))
    return str(interfaces[0]["NetworkInterfaceId"]) if interfaces else None
