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
  to its address, so kinds normalise references to addresses; ids offered for
  adoption (below) map too, so a hand-made network diffs clean once adopted.

Adoption (`adoptable`): inside the VPCs being adopted -- a desired VPC found by
its Name without the stack tag, or, with --adopt, any desired VPC the stack owns
-- each type's untagged resources are matched to desired addresses by identity,
one rule per type (the `identity` / `wanted` pair of its row): subnet = (VPC,
CIDR); internet gateway = attached to the VPC; NAT gateway = its subnet; Elastic
IP = the allocation on an adopted or owned NAT gateway the manifest gives that
address; route table = (VPC, its associated subnets), the main table never;
endpoint = (VPC, service, type); security group = (VPC, name), the `default`
group never; network ACL = (VPC, its associated subnets), the default ACL never.
NAT instances are not matched (no identity a hand-made one reliably carries: an
instance's subnet holds other instances too); a hand-made one stays a create.
One describe per type filtered by the adopted VPC ids, never by resource; what
carries this stack's tag is never a candidate (`describe` has it), what carries
another stack's is offered with its owner (the plan blocks it, never adopts it).
Candidates keep their AWS tags; `ADOPT_KEY` carries the address they match.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.aws import absent_none
from reconciler.kinds.base import Context
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import ADDRESS_TAG, STACK_TAG, of_kind, other_owner, owned_by, tag_dict

# id -> address of what the identity rules may name: VPCs, subnets, NAT gateways, Elastic IPs
Names = Mapping[str, str]
Key = Hashable | None


def _vpc_of(item: Mapping[str, Any], names: Names) -> str | None:
    return names.get(str(item.get("VpcId", "")))


def _subnet_set(ids: Iterable[str], names: Names) -> frozenset[str] | None:
    """A set of subnet addresses, or None (no identity) when empty or naming a subnet not known."""
    found = [names.get(i) for i in ids]
    return frozenset(str(f) for f in found) if found and all(found) else None


def _table_key(item: Mapping[str, Any], names: Names) -> Key:
    associations = item.get("Associations", [])
    if any(a.get("Main") for a in associations):
        return None  # the main route table is never adopted
    return (_vpc_of(item, names), _subnet_set(sorted(a["SubnetId"] for a in associations if a.get("SubnetId")),
                                              names))


def _acl_key(item: Mapping[str, Any], names: Names) -> Key:
    if item.get("IsDefault"):
        return None  # nor the default network ACL
    return (_vpc_of(item, names), _subnet_set(sorted(a["SubnetId"] for a in item.get("Associations", [])
                                                     if a.get("SubnetId")), names))


def _group_key(item: Mapping[str, Any], names: Names) -> Key:
    # the default group: a manifest cannot declare it
    return None if item.get("GroupName") == "default" else (_vpc_of(item, names), item.get("GroupName"))


def _gateway_key(item: Mapping[str, Any], names: Names) -> Key:
    vpcs = [a.get("VpcId") for a in item.get("Attachments", [])]
    return (names.get(str(vpcs[0])),) if len(vpcs) == 1 else None


def _endpoint_type(item: Mapping[str, Any]) -> str:
    return str(item.get("VpcEndpointType") or ("Interface" if item.get("SubnetIds") else "Gateway"))


def _subnets_wanted(d: DesiredResource) -> frozenset[str] | None:
    return frozenset(d.spec.get("subnets") or {}) or None


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
    # adoption (see the module docstring): the filter that finds a type inside given VPCs ("" : not by VPC),
    # a live item's identity and a desired resource's; a key holding None never matches
    vpc_filter: str = "vpc-id"
    identity: Callable[[Mapping[str, Any], Names], Key] | None = None
    wanted: Callable[[DesiredResource], Key] | None = None

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
    "subnets": Ec2Type("describe_subnets", "Subnets", "SubnetId", "ec2.subnet",
                       identity=lambda i, n: (_vpc_of(i, n), i.get("CidrBlock")),
                       wanted=lambda d: (d.spec.get("vpc"), d.spec.get("cidr"))),
    "internet_gateways": Ec2Type("describe_internet_gateways", "InternetGateways", "InternetGatewayId",
                                 "ec2.internet_gateway", vpc_filter="attachment.vpc-id",
                                 identity=_gateway_key, wanted=lambda d: (d.spec.get("vpc"),)),
    # no paginator: AWS returns every address in one page; found by the allocation ids on the NAT gateways
    "addresses": Ec2Type("describe_addresses", "Addresses", "AllocationId", "ec2.elastic_ip", paginated=False,
                         vpc_filter="", identity=lambda i, n: (n.get(str(i.get("AllocationId"))),),
                         wanted=lambda d: (d.address,)),
    "nat_gateways": Ec2Type("describe_nat_gateways", "NatGateways", "NatGatewayId", "ec2.nat_gateway",
                            filter_param="Filter", ghosts=NAT_GHOSTS,
                            identity=lambda i, n: (n.get(str(i.get("SubnetId"))),),
                            wanted=lambda d: (d.spec.get("subnet"),)),
    "route_tables": Ec2Type("describe_route_tables", "RouteTables", "RouteTableId", "ec2.route_table",
                            identity=_table_key, wanted=lambda d: (d.spec.get("vpc"), _subnets_wanted(d))),
    "vpc_endpoints": Ec2Type("describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId", "ec2.vpc_endpoint",
                             ghosts=ENDPOINT_GHOSTS,
                             identity=lambda i, n: (_vpc_of(i, n), i.get("ServiceName"), _endpoint_type(i)),
                             wanted=lambda d: (d.spec.get("vpc"), d.spec.get("service"), d.spec.get("type"))),
    "security_groups": Ec2Type("describe_security_groups", "SecurityGroups", "GroupId", "ec2.security_group",
                               identity=_group_key, wanted=lambda d: (d.spec.get("vpc"), d.spec.get("group_name"))),
    # NAT instances: no identity rule (see the module docstring)
    "instances": Ec2Type("describe_instances", "Reservations", "InstanceId", "ec2.nat_instance",
                         nested="Instances", state=("State", "Name"), ghosts=INSTANCE_GHOSTS),
    "network_acls": Ec2Type("describe_network_acls", "NetworkAcls", "NetworkAclId", "ec2.network_acl",
                            identity=_acl_key, wanted=lambda d: (d.spec.get("vpc"), _subnets_wanted(d))),
}

# the order adoption matches in: each type's identity names only what an earlier one adopted
ADOPT_ORDER = ("subnets", "internet_gateways", "nat_gateways", "addresses", "route_tables", "vpc_endpoints",
               "security_groups", "network_acls")

# Set by `describe` on the extra copies a retried create left behind (see `_dedupe`).
DUPLICATE_KEY = "ReconcilerDuplicateOf"
# Set by `adoptable` on an unowned resource: the desired address it matches by identity.
ADOPT_KEY = "ReconcilerAdoptAs"


def stack_filter(ctx: Context) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{STACK_TAG}", "Values": [ctx.stack]}]


def tags_of(item: Mapping[str, Any]) -> dict[str, str]:
    return tag_dict(item.get("Tags") or item.get("TagSet"))


def address_of(item: Mapping[str, Any], fallback_id: str) -> str:
    """The address a resource carries in its tag (or was given as a duplicate by `describe`); an owned
    resource without one gets a unique stand-in."""
    return str(item.get(ADOPT_KEY) or item.get(DUPLICATE_KEY) or tags_of(item).get(ADDRESS_TAG)
               or f"ec2.untagged.{fallback_id}")


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


def desired_of(ctx: Context, kind: str) -> list[DesiredResource]:
    """The desired resources of one kind, as the engine left them in `ctx.options["desired"]` before reading
    (a kind's `read` sees only its own; adoption needs the others' too)."""
    return [d for d in ctx.options.get("desired", ()) if d.kind == kind]


def unowned_vpcs(ctx: Context, desired: Sequence[DesiredResource] | None = None) -> dict[str, dict[str, Any]]:
    """Desired VPC address -> the VPC with that Name tag and without this stack's tag (the lowest id when
    several): the candidates for --adopt. `desired` defaults to the engine's desired VPCs."""

    def read() -> dict[str, dict[str, Any]]:
        wanted = desired_of(ctx, "ec2.vpc") if desired is None else desired
        owned = {address_of(v, v["VpcId"]) for v in describe(ctx, "vpcs")}
        missing = {d.spec["tags"]["Name"]: d.address for d in wanted if d.address not in owned}
        if not missing:
            return {}
        others = ctx.client("ec2").describe_vpcs(
            Filters=[{"Name": "tag:Name", "Values": sorted(missing)}]).get("Vpcs", [])
        out: dict[str, dict[str, Any]] = {}
        for vpc in sorted(others, key=lambda v: v["VpcId"]):
            address = missing.get(tags_of(vpc).get("Name", ""))
            if address and address not in out and not owned_by(tags_of(vpc), ctx.stack):
                out[address] = {**vpc, ADOPT_KEY: address}
        return out

    return ctx.memo("ec2:unowned-vpcs", read)


def adopted_vpcs(ctx: Context) -> dict[str, str]:
    """VPC id -> address of the VPCs whose insides are matched for adoption: the unowned candidates nobody
    else owns, and, with --adopt, the desired VPCs the stack owns (a subnet made by hand in one)."""
    out = {v["VpcId"]: a for a, v in unowned_vpcs(ctx).items() if other_owner(tags_of(v), ctx.stack) is None}
    if ctx.options.get("adopt"):
        wanted = {d.address for d in desired_of(ctx, "ec2.vpc")}
        out.update({v["VpcId"]: address_of(v, v["VpcId"]) for v in describe(ctx, "vpcs")
                    if address_of(v, v["VpcId"]) in wanted})
    return out


def _candidates(ctx: Context, what: str, names: dict[str, str], vpc_ids: list[str]) -> list[dict[str, Any]]:
    """One type's unowned resources in the adopted VPCs that match a desired address no owned one holds."""
    row = TYPES[what]
    if row.identity is None or row.wanted is None:
        return []  # a type without an identity rule is never matched
    if row.vpc_filter:
        filters = [{"Name": row.vpc_filter, "Values": vpc_ids}]
    else:  # Elastic IPs: the allocations on the NAT gateways, named in `names` by the NAT step
        allocations = sorted(i for i, a in names.items() if i.startswith("eipalloc-"))
        if not allocations:
            return []
        filters = [{"Name": "allocation-id", "Values": allocations}]
    owned = {address_of(i, i[row.id_key]) for i in describe(ctx, what)}
    wanted: dict[Key, str] = {}
    for d in sorted(desired_of(ctx, row.kind), key=lambda d: d.address):
        key = row.wanted(d)
        if d.address not in owned and isinstance(key, tuple) and None not in key:
            wanted.setdefault(key, d.address)
    out = []
    for item in sorted(list_type(ctx, what, filters), key=lambda i: str(i[row.id_key])):
        tags = tags_of(item)
        if owned_by(tags, ctx.stack) or (row.vpc_filter == "vpc-id" and item.get("VpcId") not in vpc_ids):
            continue  # ours already (`describe`), or outside the adopted VPCs (a filter is never the proof)
        key = row.identity(item, names)
        address = wanted.pop(key, None) if isinstance(key, tuple) and None not in key else None
        if address is not None:
            out.append({**item, ADOPT_KEY: address})
    return out


def adoptable(ctx: Context, what: str) -> list[dict[str, Any]]:
    """The unowned resources of one type offered for adoption (each carries `ADOPT_KEY`); [] when no VPC is
    being adopted. All types are matched at once, in `ADOPT_ORDER`, one describe per type."""

    def read() -> dict[str, list[dict[str, Any]]]:
        vpcs = adopted_vpcs(ctx)
        if not vpcs:
            return {}
        names: dict[str, str] = dict(vpcs)
        for kind in ("subnets", "nat_gateways", "addresses"):
            names.update({i[TYPES[kind].id_key]: address_of(i, i[TYPES[kind].id_key]) for i in describe(ctx, kind)})
        wanted_eips = {d.address: str(d.spec.get("eip")) for d in desired_of(ctx, "ec2.nat_gateway")}
        for nat in describe(ctx, "nat_gateways"):
            _name_allocation(names, nat, wanted_eips.get(address_of(nat, nat["NatGatewayId"])))
        out: dict[str, list[dict[str, Any]]] = {}
        for what_ in ADOPT_ORDER:
            out[what_] = _candidates(ctx, what_, names, sorted(vpcs))
            row = TYPES[what_]
            for item in out[what_]:
                names[item[row.id_key]] = item[ADOPT_KEY]
                if what_ == "nat_gateways":
                    _name_allocation(names, item, wanted_eips.get(item[ADOPT_KEY]))
        return out

    return ctx.memo("ec2:adoptable", read).get(what, [])


def _name_allocation(names: dict[str, str], nat: Mapping[str, Any], eip: str | None) -> None:
    """Name the allocation on a NAT gateway after the Elastic IP address the manifest gives that NAT."""
    allocations = [a.get("AllocationId") for a in nat.get("NatGatewayAddresses", []) if a.get("AllocationId")]
    if eip and allocations and allocations[0] not in names:
        names[str(allocations[0])] = eip


def live_items(ctx: Context, what: str) -> list[dict[str, Any]]:
    """What a kind reads: the stack's own resources of one type, then those offered for adoption."""
    return [*describe(ctx, what), *adoptable(ctx, what)]


def ownership(ctx: Context, item: Mapping[str, Any]) -> dict[str, Any]:
    """`owned` / `owner` for a LiveResource made from `live_items`: an adoption candidate is not owned, and
    names the other stack whose tag it carries (never adopted)."""
    if ADOPT_KEY not in item:
        return {"owned": True, "owner": None}
    return {"owned": False, "owner": other_owner(tags_of(item), ctx.stack)}


def security_group_rules(ctx: Context) -> list[dict[str, Any]]:
    """Every rule of every stack security group (rules carry no tags: read by group id, 200 at a time)."""

    def read() -> list[dict[str, Any]]:
        ids = sorted(g["GroupId"] for g in live_items(ctx, "security_groups"))
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
    """AWS id -> address for everything the stack owns or is offered for adoption, the candidate VPCs too
    (a NAT instance's ENI maps to the instance)."""

    def build() -> dict[str, str]:
        out: dict[str, str] = {}
        for what, row in TYPES.items():
            for item in live_items(ctx, what):
                out[item[row.id_key]] = address_of(item, item[row.id_key])
        for address, vpc in unowned_vpcs(ctx).items():
            out.setdefault(vpc["VpcId"], address)
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
    cidrs = ctx.memo("ec2:vpc-cidrs", lambda: {
        v["VpcId"]: v["CidrBlock"] for v in [*describe(ctx, "vpcs"), *unowned_vpcs(ctx).values()]})
    return cidrs.get(vpc_id or "")


def subnet_placement(ctx: Context, subnet_id: str) -> dict[str, str]:
    """`{"az", "cidr"}` of a stack subnet or one offered for adoption (the identity a reference to it carries),
    or {} if neither."""
    subnets = ctx.memo("ec2:subnet-by-id", lambda: {s["SubnetId"]: s for s in live_items(ctx, "subnets")})
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
