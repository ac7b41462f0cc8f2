"""The `network` section: VPCs and the topology SPEC.md §2 derives from them, their checks and findings.

Expansion is pure: no AWS, no clock. Every piece of the network becomes an
ordinary DesiredResource with a stable address:

    vpc.main                                ec2.vpc
    vpc.main.subnet.public-a                ec2.subnet
    vpc.main.igw                            ec2.internet_gateway (its attachment is its `vpc`)
    vpc.main.eip.public-a                   ec2.elastic_ip (one per NAT, named after the NAT's subnet)
    vpc.main.nat.public-a                   ec2.nat_gateway            (nat.mode: gateway)
    vpc.main.nat_instance.public-a          ec2.nat_instance           (nat.mode: instance)
    vpc.main.nat_instance.public-a.sg       ec2.security_group (the NAT instance's own group)
    vpc.main.route_table.public             ec2.route_table
    vpc.main.route_table.private            ec2.route_table (single placement or mode none)
    vpc.main.route_table.private-<az>       ec2.route_table (per_az placement)
    vpc.main.endpoint.s3                    ec2.vpc_endpoint
    vpc.main.sg.app                         ec2.security_group
    vpc.main.sg.endpoints                   ec2.security_group (default group of interface endpoints)
    vpc.main.nacl.web                       ec2.network_acl

Choices and why:
- Routes and subnet associations live *inside* the route table's spec
  (`routes: {"0.0.0.0/0": "vpc.main.nat.public-a"}`, `subnets: {...}`), not as
  addresses of their own: one DescribeRouteTables shows both, one update
  converges a table, and the generic dict diff shows a route added by hand as an
  extra key (UNMANAGED) without any special case. AWS-managed routes (`local`,
  gateway-endpoint prefix lists, propagated) never appear on either side.
- A NAT instance has its own address prefix (`nat_instance`), so switching
  `nat.mode` plans a delete of one kind and a create of the other instead of
  asking one kind to diff another's resource. Its Elastic IP keeps the address
  `vpc.<v>.eip.<subnet>` across the switch, so the egress IP users allow-list
  survives it.
- Replacement cascades through identity: a reference to something a resource
  physically sits in carries the attributes that force that thing's
  replacement (`vpc_cidr`; a NAT's `subnet_cidr` and `az`; the `cidr`/`az` of
  every subnet an interface endpoint or a route table association names). When
  a subnet's CIDR changes, the plan therefore shows its NAT and endpoints
  REPLACED and its route table association UPDATED, honestly, before anything
  runs.
- Security-group rules are dicts keyed by a canonical rule string
  (`"tcp 8080 from 10.0.0.0/16"` -> `{"description": ...}`), so a rule added or removed by
  hand is one precise diff line. `rule_key` is shared with the kind's read.
- A user security group named `endpoints` *is* the default endpoint group
  (declare it to customise what interface endpoints allow).
- Network ACL entries are dicts keyed `"ingress 100"` -> `{protocol, ports?, cidr, action}`
  in the form of `canonical.acl_entry` (shared with the kind's read); an ACL's `subnets`
  carry their `{az, cidr}` as route tables' do, so a replaced subnet is re-associated.
  AWS's own entries (rule 32767) and the VPC's default ACL are never described: a
  subnet no named ACL lists stays on the default ACL, which the tool never edits.

Invariants: every address in any `depends_on` is produced here; security-group
peer edges never form a cycle (a cycle's closing edge is dropped: that rule is
added on the next apply).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path as FsPath
from typing import Any

from reconciler.canonical import acl_entry, acl_entry_key, acl_protocol, canonical_cidr, rule_key
from reconciler.errors import Problem
from reconciler.manifest.common import duplicates, policy_document, protected_tags
from reconciler.manifest.loader import Path, Source
from reconciler.manifest.model import DesiredResource, Manifest
from reconciler.manifest.section import RawFinding, Rule, Section
from reconciler.manifest.suggest import Suggest

GATEWAY_SERVICES = frozenset({"s3", "dynamodb"})
ALL_IPV4 = "0.0.0.0/0"
DEFAULT_NAT_INSTANCE_TYPE = "t4g.nano"
DEFAULT_NAT_AMI = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
DEFAULT_SG_DESCRIPTION = "managed by reconciler"
ENDPOINTS_GROUP = "endpoints"
# A rule maps to `{"description": ...}`, never a bare string: an empty description must not read as "no rule".
NO_DESCRIPTION = {"description": ""}


def service_name(region: str, service: str) -> str:
    """`ecr.api` -> `com.amazonaws.<region>.ecr.api`; full names are kept as written."""
    if service.startswith(("com.amazonaws.", "aws.")):
        return service
    return f"com.amazonaws.{region}.{service}"


def _manifest_rule(direction: str, rule: Mapping[str, Any], vpc_address: str) -> tuple[str, dict[str, str]]:
    peer = rule["from" if direction == "ingress" else "to"]
    if "/" not in peer:
        peer = f"{vpc_address}.sg.{peer}"
    protocol = rule["protocol"]
    low: int | None = None
    high: int | None = None
    if protocol in ("tcp", "udp"):
        first, _, last = str(rule["ports"]).partition("-")
        low, high = int(first), int(last or first)
    return rule_key(direction, protocol, low, high, peer), {"description": str(rule.get("description", ""))}


def _rules(direction: str, rules: Iterable[Mapping[str, Any]], vpc_address: str) -> dict[str, dict[str, str]]:
    return dict(sorted((_manifest_rule(direction, r, vpc_address) for r in rules), key=lambda kv: kv[0]))




def _acyclic_peer_edges(groups: list[Mapping[str, Any]]) -> dict[str, list[str]]:
    """For each group name, the peer groups it may depend on without closing a cycle (sorted, deterministic).

    Greedy, in sorted order: an edge is kept unless the edges kept so far lead back
    from the peer to the group. Only an edge inside a strongly connected component
    can close a cycle, and a path between two groups of one component never leaves
    it, so the search runs per component and every other edge is kept at once:
    linear for the acyclic graphs real manifests have (a chain of 10,000 groups
    took minutes with a search over the whole graph per edge).
    """
    wanted: dict[str, set[str]] = {}
    for group in groups:
        peers = {r.get(k) for d, k in (("ingress", "from"), ("egress", "to")) for r in group.get(d, [])}
        wanted[group["name"]] = {p for p in peers if isinstance(p, str) and "/" not in p and p != group["name"]}
    component = _components({name: sorted(p for p in peers if p in wanted) for name, peers in wanted.items()})
    kept: dict[str, list[str]] = {name: [] for name in wanted}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(kept.get(node, []))
        return False

    for name in sorted(wanted):
        for peer in sorted(wanted[name]):
            if peer in kept and (component[peer] != component[name] or not reaches(peer, name)):
                kept[name].append(peer)
    return kept


def _components(graph: Mapping[str, list[str]]) -> dict[str, int]:
    """Strongly connected component number of each node (Tarjan's algorithm, iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    component: dict[str, int] = {}
    counter = found = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            peers = graph[node]
            if child < len(peers):
                work.append((node, child + 1))
                peer = peers[child]
                if peer not in index:
                    work.append((peer, 0))
                elif peer in on_stack:
                    low[node] = min(low[node], index[peer])
                continue
            if low[node] == index[node]:
                number = found
                found += 1
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component[member] = number
                    if member == node:
                        break
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return component


class _Vpc:
    """Expansion of one VPC; methods append to `out` in a fixed order."""

    def __init__(self, manifest: Manifest, vpc: Mapping[str, Any]) -> None:
        self.m = manifest
        self.vpc = vpc
        self.name = str(vpc["name"])
        self.addr = f"vpc.{self.name}"
        self.cidr = str(vpc["cidr"])
        self.region = manifest.region
        self.subnets: list[Mapping[str, Any]] = list(vpc.get("subnets", []))
        self.public = [s for s in self.subnets if s.get("public")]
        self.private = [s for s in self.subnets if not s.get("public")]
        self.has_igw = bool(vpc.get("internet_gateway", bool(self.public)))
        self.nat: Mapping[str, Any] = vpc.get("nat", {})
        self.mode = str(self.nat.get("mode", "none"))
        self.placement = str(self.nat.get("placement", "single"))
        self.out: list[DesiredResource] = []

    # -- helpers -------------------------------------------------------------

    def common(self) -> dict[str, Any]:
        return {"vpc": self.addr, "vpc_cidr": self.cidr}

    def tags(self, address: str, suffix: str, extra: Mapping[str, str] | None = None,
             protect: bool = False) -> dict[str, str]:
        name = f"{self.m.stack}-{self.name}" + (f"-{suffix}" if suffix else "")
        return protected_tags(self.m, address, name, extra, protect)

    def subnet_addr(self, subnet: Mapping[str, Any]) -> str:
        return f"{self.addr}.subnet.{subnet['name']}"

    def placement_of(self, subnets: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
        return {self.subnet_addr(s): {"az": str(s["az"]), "cidr": str(s["cidr"])} for s in subnets}

    def azs(self, subnets: Iterable[Mapping[str, Any]]) -> list[str]:
        return list(dict.fromkeys(str(s["az"]) for s in subnets))

    def add(self, address: str, kind: str, spec: dict[str, Any], deps: Iterable[str], protect: bool = False) -> None:
        self.out.append(DesiredResource(address, kind, spec, tuple(sorted(set(deps))), protect))

    # -- the pieces ----------------------------------------------------------

    def expand(self) -> list[DesiredResource]:
        protect = bool(self.vpc.get("protect", False))
        dns = self.vpc.get("dns", {})
        self.add(self.addr, "ec2.vpc", {
            "cidr": self.cidr,
            "dns": {"hostnames": bool(dns.get("hostnames", True)), "support": bool(dns.get("support", True))},
            "tags": self.tags(self.addr, "", self.vpc.get("tags"), protect),
        }, (), protect)
        for subnet in self.subnets:
            address = self.subnet_addr(subnet)
            sprotect = bool(subnet.get("protect", False))
            spec: dict[str, Any] = {**self.common(), "cidr": subnet["cidr"], "az": subnet["az"],
                                    "tags": self.tags(address, str(subnet["name"]), subnet.get("tags"), sprotect)}
            if "map_public_ip" in subnet:
                spec["map_public_ip"] = bool(subnet["map_public_ip"])
            self.add(address, "ec2.subnet", spec, (self.addr,), sprotect)
        igw = f"{self.addr}.igw"
        if self.has_igw:
            self.add(igw, "ec2.internet_gateway", {**self.common(), "tags": self.tags(igw, "igw")}, (self.addr,))
        nat_by_az = self.expand_nat(igw)
        private_tables = self.expand_route_tables(igw, nat_by_az)
        self.expand_security_groups()
        self.expand_endpoints(private_tables)
        self.out.extend(_expand_acls(self.vpc, self.addr, self.cidr, self.tags))
        return self.out

    def nat_subnets(self) -> list[Mapping[str, Any]]:
        """The public subnets that hold a NAT: the named or first public one, or one per AZ with private subnets."""
        if self.mode == "none" or not self.public or not self.private:
            return []
        if self.placement == "per_az":
            chosen = []
            for az in self.azs(self.private):
                in_az = [s for s in self.public if s["az"] == az]
                if in_az:
                    chosen.append(in_az[0])
            return chosen
        named = self.nat.get("subnet")
        match = [s for s in self.public if s["name"] == named] if named else self.public[:1]
        return match[:1]

    def expand_nat(self, igw: str) -> dict[str, str]:
        """NATs and their Elastic IPs; returns AZ -> the NAT address private subnets of that AZ route to."""
        by_az: dict[str, str] = {}
        for subnet in self.nat_subnets():
            sname, az = str(subnet["name"]), str(subnet["az"])
            saddr = self.subnet_addr(subnet)
            eip = f"{self.addr}.eip.{sname}"
            self.add(eip, "ec2.elastic_ip", {
                "network_border_group": self.region,
                "tags": self.tags(eip, f"nat-{sname}"),
            }, [igw] if self.has_igw else [])
            located = {**self.common(), "subnet": saddr, "subnet_cidr": subnet["cidr"], "az": az}
            if self.mode == "gateway":
                nat = f"{self.addr}.nat.{sname}"
                self.add(nat, "ec2.nat_gateway", {**located, "eip": eip, "tags": self.tags(nat, f"nat-{sname}")},
                         [saddr, eip, *([igw] if self.has_igw else [])])
            else:
                nat = f"{self.addr}.nat_instance.{sname}"
                group = f"{nat}.sg"
                self.add(group, "ec2.security_group", {
                    **self.common(),
                    "group_name": f"nat-instance.{sname}",
                    "description": f"NAT instance in {sname}: all traffic from the VPC",
                    "ingress": {rule_key("ingress", "all", None, None, self.cidr): dict(NO_DESCRIPTION)},
                    "egress": {rule_key("egress", "all", None, None, ALL_IPV4): dict(NO_DESCRIPTION)},
                    "tags": self.tags(group, f"nat-instance-{sname}"),
                }, [self.addr])
                self.add(nat, "ec2.nat_instance", {
                    **located,
                    "instance_type": self.nat.get("instance_type", DEFAULT_NAT_INSTANCE_TYPE),
                    "ami": self.nat.get("ami", DEFAULT_NAT_AMI),
                    "eip": eip,
                    "security_groups": [group],
                    "source_dest_check": False,
                    "tags": self.tags(nat, f"nat-instance-{sname}"),
                }, [saddr, eip, group, *([igw] if self.has_igw else [])])
            if self.placement == "per_az":
                by_az[az] = nat
            else:
                by_az = {a: nat for a in self.azs(self.private)}
        return by_az

    def expand_route_tables(self, igw: str, nat_by_az: Mapping[str, str]) -> list[str]:
        """Public and private route tables; returns the private tables' addresses (or the public one if none)."""
        tables: list[str] = []
        if self.public:
            address = f"{self.addr}.route_table.public"
            routes = {ALL_IPV4: igw} if self.has_igw else {}
            self.add(address, "ec2.route_table", {
                **self.common(), "routes": routes, "subnets": self.placement_of(self.public),
                "tags": self.tags(address, "public"),
            }, [self.addr, *routes.values(), *self.placement_of(self.public)])
        if self.private:
            if self.mode != "none" and self.placement == "per_az":
                groups = [(f"private-{az}", [s for s in self.private if s["az"] == az], nat_by_az.get(az))
                          for az in self.azs(self.private)]
            else:
                target = next(iter(nat_by_az.values()), None)
                groups = [("private", self.private, target)]
            for suffix, members, nat in groups:
                address = f"{self.addr}.route_table.{suffix}"
                routes = {ALL_IPV4: nat} if nat else {}
                placed = self.placement_of(members)
                self.add(address, "ec2.route_table", {
                    **self.common(), "routes": routes, "subnets": placed, "tags": self.tags(address, suffix),
                }, [self.addr, *routes.values(), *placed])
                tables.append(address)
        elif self.public:
            tables.append(f"{self.addr}.route_table.public")
        return sorted(tables)

    def expand_security_groups(self) -> None:
        groups = list(self.vpc.get("security_groups", []))
        edges = _acyclic_peer_edges(groups)
        for group in groups:
            address = f"{self.addr}.sg.{group['name']}"
            gprotect = bool(group.get("protect", False))
            egress = group.get("egress")
            self.add(address, "ec2.security_group", {
                **self.common(),
                "group_name": group["name"],
                "description": group.get("description", DEFAULT_SG_DESCRIPTION),
                "ingress": _rules("ingress", group.get("ingress", []), self.addr),
                "egress": (_rules("egress", egress, self.addr) if egress is not None
                           else {rule_key("egress", "all", None, None, ALL_IPV4): dict(NO_DESCRIPTION)}),
                "tags": self.tags(address, f"sg-{group['name']}", group.get("tags"), gprotect),
            }, [self.addr, *(f"{self.addr}.sg.{p}" for p in edges[group["name"]])], gprotect)

    def expand_endpoints(self, private_tables: list[str]) -> None:
        declared = {g["name"] for g in self.vpc.get("security_groups", [])}
        need_default = False
        first_private = {az: next(s for s in self.private if s["az"] == az) for az in self.azs(self.private)}
        for endpoint in self.vpc.get("endpoints", []):
            service = str(endpoint["service"])
            kind = endpoint.get("type", "gateway" if service in GATEWAY_SERVICES else "interface")
            address = f"{self.addr}.endpoint.{service}"
            eprotect = bool(endpoint.get("protect", False))
            spec: dict[str, Any] = {**self.common(), "service": service_name(self.region, service)}
            deps: list[str] = [self.addr]
            if kind == "gateway":
                spec.update(type="Gateway", route_tables=private_tables)
                deps.extend(private_tables)
            else:
                names = endpoint.get("security_groups") or [ENDPOINTS_GROUP]
                need_default = need_default or (ENDPOINTS_GROUP in names and ENDPOINTS_GROUP not in declared)
                groups = sorted(f"{self.addr}.sg.{n}" for n in names)
                placed = self.placement_of(first_private.values())
                spec.update(type="Interface", subnets=placed, security_groups=groups,
                            private_dns=bool(endpoint.get("private_dns", True)))
                deps.extend([*placed, *groups])
            if "policy" in endpoint:
                spec["policy"] = policy_document(self.m.policies, endpoint["policy"])
            spec["tags"] = self.tags(address, f"endpoint-{service}", None, eprotect)
            self.add(address, "ec2.vpc_endpoint", spec, deps, eprotect)
        if need_default:
            address = f"{self.addr}.sg.{ENDPOINTS_GROUP}"
            self.add(address, "ec2.security_group", {
                **self.common(),
                "group_name": ENDPOINTS_GROUP,
                "description": "HTTPS from the VPC to its interface endpoints",
                "ingress": {rule_key("ingress", "tcp", 443, 443, self.cidr): dict(NO_DESCRIPTION)},
                "egress": {rule_key("egress", "all", None, None, ALL_IPV4): dict(NO_DESCRIPTION)},
                "tags": self.tags(address, f"sg-{ENDPOINTS_GROUP}"),
            }, [self.addr])


def expand(manifest: Manifest) -> list[DesiredResource]:
    """Every network resource of every VPC, with SPEC.md §2 defaults and derived topology."""
    out: list[DesiredResource] = []
    for vpc in manifest.data.get("network", {}).get("vpcs", []):
        out.extend(_Vpc(manifest, vpc).expand())
    return out


def checks(data: dict[str, Any], source: Source, base: FsPath, pol: dict[str, Any]) -> Iterator[Problem]:
    """CIDRs inside and between each other, AZs of the region, routing that can work, rules that parse."""
    region = data.get("region", "")
    vpcs = data.get("network", {}).get("vpcs", [])
    yield from duplicates(vpcs, "name", ("network", "vpcs"), source, "VPC")
    for vi, vpc in enumerate(vpcs):
        at: Path = ("network", "vpcs", vi)
        network = ipaddress.ip_network(vpc["cidr"], strict=False)
        if str(network) != vpc["cidr"]:
            yield source.problem((*at, "cidr"), f"{vpc['cidr']} has host bits set", f"did you mean {network}?")
        if not 16 <= network.prefixlen <= 28:
            yield source.problem((*at, "cidr"), f"VPC CIDR /{network.prefixlen} is outside /16../28",
                                 "AWS accepts VPC sizes from /16 to /28")
        subnets = vpc.get("subnets", [])
        yield from duplicates(subnets, "name", (*at, "subnets"), source, "subnet")
        placed: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int]] = []
        for si, subnet in enumerate(subnets):
            sat: Path = (*at, "subnets", si)
            cidr = ipaddress.ip_network(subnet["cidr"], strict=False)
            if str(cidr) != subnet["cidr"]:
                yield source.problem((*sat, "cidr"), f"{subnet['cidr']} has host bits set", f"did you mean {cidr}?")
            if not cidr.subnet_of(network):  # type: ignore[arg-type]
                yield source.problem((*sat, "cidr"), f"{subnet['cidr']} is not inside the VPC's {vpc['cidr']}",
                                     f"pick a range inside {vpc['cidr']}")
            elif not 16 <= cidr.prefixlen <= 28:
                yield source.problem((*sat, "cidr"), f"subnet CIDR /{cidr.prefixlen} is outside /16../28",
                                     "AWS accepts subnet sizes from /16 to /28")
            placed.append((cidr, si))
            az = subnet["az"]
            if not (az.startswith(region) and len(az) == len(region) + 1):
                yield source.problem((*sat, "az"), f"{az} is not an availability zone of {region}",
                                     f"use {region}a, {region}b, ...")
            if subnet.get("map_public_ip") and not subnet.get("public"):
                yield source.problem((*sat, "map_public_ip"), "map_public_ip on a private subnet",
                                     "set public: true, or remove map_public_ip")
        cidrs = {index: cidr for cidr, index in placed}
        for later, earlier in overlapping(placed):
            subnet, other = subnets[later], cidrs[earlier]
            yield source.problem((*at, "subnets", later, "cidr"),
                                 f"{subnet['cidr']} overlaps subnet {subnets[earlier]['name']!r} ({other})",
                                 "subnets of a VPC must not overlap")
        yield from _network_routing(vpc, at, source)
        yield from _security_groups(vpc, at, source)
        yield from _acl_problems(vpc, at, source)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def overlapping(placed: list[tuple[Network, int]]) -> list[tuple[int, int]]:
    """(later index, earlier index) pairs of overlapping networks, at most one per network: sort and sweep.

    CIDR blocks either nest or are disjoint, so after sorting by (first address,
    widest first), a block overlaps an earlier one exactly when it starts before
    the farthest end seen so far: one comparison per block, O(n log n) in all,
    and at most one problem per block however many blocks it overlaps. Each pair
    is reported at the block written later in the manifest, naming the other.
    """
    ordered = sorted(placed, key=lambda p: (p[0].version, int(p[0].network_address), -int(p[0].broadcast_address),
                                            p[1]))
    pairs: list[tuple[int, int]] = []
    reach: tuple[Network, int] | None = None
    for cidr, index in ordered:
        if reach is not None and reach[0].version == cidr.version and \
                int(cidr.network_address) <= int(reach[0].broadcast_address):
            pairs.append((max(index, reach[1]), min(index, reach[1])))
            if int(cidr.broadcast_address) <= int(reach[0].broadcast_address):
                continue  # nested inside the reach: the reach stays the farthest end
        reach = (cidr, index)
    return sorted(set(pairs))


def _network_routing(vpc: dict[str, Any], at: Path, source: Source) -> Iterator[Problem]:
    subnets = vpc.get("subnets", [])
    by_name = {s["name"]: s for s in subnets}
    public = [s for s in subnets if s.get("public")]
    private = [s for s in subnets if not s.get("public")]
    igw = vpc.get("internet_gateway", bool(public))
    if public and not igw:
        yield source.problem((*at, "internet_gateway"), "public subnets need an internet gateway",
                             "set internet_gateway: true, or make the subnets private")
    nat = vpc.get("nat", {})
    mode = nat.get("mode", "none")
    if mode != "none":
        if not private:
            yield source.problem((*at, "nat"), "NAT without private subnets has nothing to serve",
                                 "add a private subnet or remove nat")
        placement = nat.get("placement", "single")
        if "subnet" in nat:
            target = by_name.get(nat["subnet"])
            if target is None:
                yield source.problem((*at, "nat", "subnet"), f"unknown subnet {nat['subnet']!r}",
                                     "name a public subnet of this VPC")
            elif not target.get("public"):
                yield source.problem((*at, "nat", "subnet"), f"subnet {nat['subnet']!r} is not public",
                                     "a NAT must sit in a public subnet (public: true)")
            if placement == "per_az":
                yield source.problem((*at, "nat", "subnet"), "subnet is only for placement: single",
                                     "remove subnet; per_az places one NAT in a public subnet of each AZ")
        elif not public:
            yield source.problem((*at, "nat"), "NAT needs a public subnet", "add a subnet with public: true")
        if placement == "per_az":
            public_azs = {s["az"] for s in public}
            for si, subnet in enumerate(subnets):
                if not subnet.get("public") and subnet["az"] not in public_azs:
                    yield source.problem((*at, "subnets", si, "az"),
                                         f"no public subnet in {subnet['az']} for its per-AZ NAT",
                                         f"add a public subnet in {subnet['az']}")
        if mode != "instance":
            for key in ("instance_type", "ami"):
                if key in nat:
                    yield source.problem((*at, "nat", key), f"{key} is only for mode: instance",
                                         "remove it or set mode: instance")
    else:
        for key in ("placement", "subnet", "instance_type", "ami"):
            if key in nat:
                yield source.problem((*at, "nat", key), f"{key} has no effect with mode: none",
                                     "set mode: gateway or instance, or remove it")
    sg_names = {g["name"] for g in vpc.get("security_groups", [])}
    seen: dict[str, int] = {}
    for ei, endpoint in enumerate(vpc.get("endpoints", [])):
        service = endpoint["service"]
        kind = endpoint.get("type", "gateway" if service in GATEWAY_SERVICES else "interface")
        if service in seen:
            yield source.problem((*at, "endpoints", ei, "service"), f"duplicate endpoint {service!r}",
                                 "one endpoint per service")
        seen[service] = ei
        if kind == "gateway":
            if service not in GATEWAY_SERVICES:
                yield source.problem((*at, "endpoints", ei, "service"), f"{service} has no gateway endpoint",
                                     "only s3 and dynamodb are gateway endpoints; use type: interface")
            for key in ("private_dns", "security_groups"):
                if key in endpoint:
                    yield source.problem((*at, "endpoints", ei, key), f"{key} applies to interface endpoints only",
                                         "remove it")
        elif not private:
            yield source.problem((*at, "endpoints", ei), "interface endpoints go in private subnets; there are none",
                                 "add a private subnet")
        for gi, group in enumerate(endpoint.get("security_groups", [])):
            if group not in sg_names:
                yield source.problem((*at, "endpoints", ei, "security_groups", gi), f"unknown security group {group!r}",
                                     "declare it under security_groups of this VPC")


def _security_groups(vpc: dict[str, Any], at: Path, source: Source) -> Iterator[Problem]:
    groups = vpc.get("security_groups", [])
    yield from duplicates(groups, "name", (*at, "security_groups"), source, "security group")
    names = {g["name"] for g in groups}
    suggest_group = Suggest(names)
    for gi, group in enumerate(groups):
        for direction, peer_key in (("ingress", "from"), ("egress", "to")):
            for ri, rule in enumerate(group.get(direction, [])):
                rat: Path = (*at, "security_groups", gi, direction, ri)
                wrong = "to" if peer_key == "from" else "from"
                if wrong in rule:
                    yield source.problem((*rat, wrong), f"{direction} rules name their peer with `{peer_key}`",
                                         f"rename `{wrong}` to `{peer_key}`", key=True)
                peer = rule.get(peer_key)
                if peer is None:
                    yield source.problem(rat, f"missing `{peer_key}`", f"add `{peer_key}: CIDR or group name`")
                elif "/" in peer:
                    try:
                        ipaddress.ip_network(peer, strict=True)
                    except ValueError:
                        yield source.problem((*rat, peer_key), f"{peer!r} is not a valid CIDR",
                                             "write a network such as 10.0.0.0/16")
                elif re.fullmatch(r"[0-9.:]+", peer):
                    yield source.problem((*rat, peer_key), f"{peer!r} is an address, not a network",
                                         f"write it as a CIDR: {peer}/{32 if '.' in peer else 128}")
                elif peer not in names:
                    close = suggest_group(peer)
                    yield source.problem((*rat, peer_key), f"unknown security group {peer!r}",
                                         f"did you mean {close[0]!r}?" if close else
                                         "use a CIDR or the name of a security group in this VPC")
                protocol = rule["protocol"]
                ports = rule.get("ports")
                if protocol in ("tcp", "udp"):
                    if ports is None:
                        yield source.problem(rat, f"{protocol} rules need `ports`", 'add ports: "443" or "8000-8100"')
                    else:
                        low, _, high = ports.partition("-")
                        lo, hi = int(low), int(high or low)
                        if not (0 <= lo <= hi <= 65535):
                            yield source.problem((*rat, "ports"), f"port range {ports} is invalid",
                                                 "ports run from 0 to 65535, low-high")
                elif ports is not None:
                    yield source.problem((*rat, "ports"), f"protocol {protocol} takes no ports", "remove ports")


def findings(data: dict[str, Any], policies: dict[str, Any]) -> Iterator[RawFinding]:
    """Public IPs by default, and ingress from anywhere on SSH/RDP (security groups, network ACLs) or on every port."""
    for vi, vpc in enumerate(data.get("network", {}).get("vpcs", [])):
        yield from _acl_findings(vpc, vi)
        for si, subnet in enumerate(vpc.get("subnets", [])):
            if subnet.get("map_public_ip"):
                yield ("RC-NET-002", ("network", "vpcs", vi, "subnets", si, "map_public_ip"),
                       f"subnet {subnet['name']} gives every instance a public IP")
        for gi, group in enumerate(vpc.get("security_groups", [])):
            for ri, rule in enumerate(group.get("ingress", [])):
                if rule.get("from") not in ("0.0.0.0/0", "::/0"):
                    continue
                at = ("network", "vpcs", vi, "security_groups", gi, "ingress", ri)
                ports = rule.get("ports")
                if rule["protocol"] == "all":
                    yield "RC-NET-003", at, f"group {group['name']} accepts all traffic from anywhere"
                    yield "RC-NET-001", at, f"group {group['name']} opens SSH/RDP to anywhere"
                elif rule["protocol"] in ("tcp", "udp") and ports:
                    low, _, high = ports.partition("-")
                    lo, hi = int(low), int(high or low)
                    if lo <= 1 and hi >= 65535:
                        yield "RC-NET-003", at, f"group {group['name']} accepts every {rule['protocol']} port " \
                                                "from anywhere"
                    if rule["protocol"] == "tcp" and (lo <= 22 <= hi or lo <= 3389 <= hi):
                        yield "RC-NET-001", at, f"group {group['name']} opens SSH/RDP ({ports}) to anywhere"


# -- network ACLs ---------------------------------------------------------------

ACL_KIND = "ec2.network_acl"
# how an ACL gets its tags: (address, name suffix, extra tags, protect) -> tags (`_Vpc.tags`)
AclTags = Callable[[str, str, Mapping[str, str] | None, bool], dict[str, str]]
ACL_DIRECTIONS = ("ingress", "egress")
MAX_ACL_RULE = 32766  # 32767 is AWS's own default deny
ANYWHERE = ("0.0.0.0/0", "::/0")
REMOTE_ADMIN = ((22, "SSH"), (3389, "RDP"))

def _acl_ports(entry: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(from, to) of an entry's `ports` ("443", "1024-65535"), or (None, None)."""
    if "ports" not in entry:
        return None, None
    low, _, high = str(entry["ports"]).partition("-")
    return int(low), int(high or low)


def _acl_entries(acl: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    out = {}
    for direction in ACL_DIRECTIONS:
        for entry in acl.get(direction, []):
            low, high = _acl_ports(entry)
            out[acl_entry_key(direction, entry["rule"])] = acl_entry(
                entry["protocol"], low, high, entry["cidr"], entry["action"])
    return dict(sorted(out.items()))


def _expand_acls(vpc: Mapping[str, Any], vpc_address: str, vpc_cidr: str, tags: AclTags) -> list[DesiredResource]:
    """One `ec2.network_acl` per named ACL of one VPC; `tags(address, name suffix, extra, protect)`."""
    subnets = {s["name"]: s for s in vpc.get("subnets", [])}
    out = []
    for acl in vpc.get("network_acls", []):
        address = f"{vpc_address}.nacl.{acl['name']}"
        protect = bool(acl.get("protect", False))
        placed = {f"{vpc_address}.subnet.{n}": {"az": str(subnets[n]["az"]), "cidr": str(subnets[n]["cidr"])}
                  for n in sorted(set(acl.get("subnets", [])))}
        spec = {"vpc": vpc_address, "vpc_cidr": vpc_cidr, "entries": _acl_entries(acl), "subnets": placed,
                "tags": tags(address, f"nacl-{acl['name']}", acl.get("tags"), protect)}
        out.append(DesiredResource(address, ACL_KIND, spec, tuple(sorted({vpc_address, *placed})), protect))
    return out


def _acl_problems(vpc: Mapping[str, Any], at: Path, source: Source) -> Iterator[Problem]:
    """Bad input in one VPC's `network_acls` (the schema has checked its shape)."""
    acls = vpc.get("network_acls", [])
    subnet_names = {s["name"] for s in vpc.get("subnets", [])}
    named: dict[str, int] = {}
    placed: dict[str, str] = {}
    for ai, acl in enumerate(acls):
        aat: Path = (*at, "network_acls", ai)
        if acl["name"] in named:
            yield source.problem((*aat, "name"), f"duplicate network ACL {acl['name']!r} (also at index "
                                 f"{named[acl['name']]})", "network ACL names must be unique in the VPC")
        named.setdefault(acl["name"], ai)
        for direction in ACL_DIRECTIONS:
            rules: dict[int, int] = {}
            for ei, entry in enumerate(acl.get(direction, [])):
                yield from _acl_entry_problems(entry, (*aat, direction, ei), source, direction, rules, ei)
        for si, subnet in enumerate(acl.get("subnets", [])):
            where: Path = (*aat, "subnets", si)
            if subnet not in subnet_names:
                yield source.problem(where, f"unknown subnet {subnet!r}", "name a subnet of this VPC")
            elif subnet in placed and placed[subnet] != acl["name"]:
                yield source.problem(where, f"subnet {subnet!r} is already in network ACL {placed[subnet]!r}",
                                     "a subnet is associated with exactly one network ACL")
            else:
                placed[subnet] = acl["name"]


def _acl_entry_problems(entry: Mapping[str, Any], eat: Path, source: Source, direction: str,
                    rules: dict[int, int], index: int) -> Iterator[Problem]:
    rule = entry["rule"]
    if not 1 <= rule <= MAX_ACL_RULE:
        yield source.problem((*eat, "rule"), f"rule number {rule} is outside 1..{MAX_ACL_RULE}",
                             "32767 and above belong to AWS's own default entry" if rule > MAX_ACL_RULE
                             else "rule numbers start at 1")
    elif rule in rules:
        yield source.problem((*eat, "rule"), f"duplicate {direction} rule {rule} (also at index {rules[rule]})",
                             "rule numbers are unique per direction; AWS evaluates them in order")
    else:
        rules[rule] = index
    try:
        ipaddress.ip_network(entry["cidr"], strict=True)
    except ValueError:
        yield source.problem((*eat, "cidr"), f"{entry['cidr']!r} is not a valid CIDR",
                             "write a network such as 10.0.0.0/16 or ::/0, without host bits")
    protocol = acl_protocol(entry["protocol"])
    if protocol not in ("tcp", "udp", "icmp", "all") and not 0 <= int(protocol) <= 255:
        yield source.problem((*eat, "protocol"), f"protocol {protocol} is not an IP protocol number",
                             "use tcp, udp, icmp, all, or a number 0-255")
    ports = entry.get("ports")
    if protocol in ("tcp", "udp"):
        if ports is None:
            yield source.problem(eat, f"{protocol} entries need `ports`", 'add ports: "443" or "1024-65535"')
        else:
            low, high = _acl_ports(entry)
            if low is None or high is None or not 0 <= low <= high <= 65535:
                yield source.problem((*eat, "ports"), f"port range {ports} is invalid",
                                     "ports run from 0 to 65535, low-high")
    elif ports is not None:
        yield source.problem((*eat, "ports"), f"protocol {entry['protocol']} takes no ports", "remove ports")


def _acl_covers(entry: Mapping[str, Any], port: int) -> bool:
    protocol = acl_protocol(entry["protocol"])
    if protocol == "all":
        return True
    low, high = _acl_ports(entry)
    return protocol == "tcp" and low is not None and high is not None and low <= port <= high


def _acl_findings(vpc: Mapping[str, Any], vi: int) -> Iterator[tuple[str, Path, str]]:
    """RC-NET-001 for an ingress entry that lets SSH or RDP in from anywhere (`0.0.0.0/0`, `::/0`).

    AWS evaluates entries lowest number first and the first match decides, so an allow
    shadowed by a lower-numbered deny of the same whole-internet CIDR is not a finding.
    """
    for ai, acl in enumerate(vpc.get("network_acls", [])):
        ingress = sorted(enumerate(acl.get("ingress", [])), key=lambda item: item[1]["rule"])
        flagged: dict[int, list[str]] = {}
        for cidr in ANYWHERE:
            for port, label in REMOTE_ADMIN:
                for ei, entry in ingress:
                    if canonical_cidr(entry["cidr"]) == cidr and _acl_covers(entry, port):
                        if entry["action"] == "allow":
                            flagged.setdefault(ei, []).append(label)
                        break
        for ei, labels in sorted(flagged.items()):
            entry = acl["ingress"][ei]
            what = f"{entry['protocol']} {entry['ports']}" if "ports" in entry else str(entry["protocol"])
            yield ("RC-NET-001", ("network", "vpcs", vi, "network_acls", ai, "ingress", ei),
                   f"network ACL {acl['name']} lets {'/'.join(dict.fromkeys(labels))} in from {entry['cidr']} "
                   f"(rule {entry['rule']}: {what})")


# the list of a VPC's parts a finding's path can lie in, and their address segment
_FINDING_PARTS = {"subnets": "subnet", "security_groups": "sg", "network_acls": "nacl"}


def address_of(data: dict[str, Any], path: Path) -> str | None:
    """`vpc.NAME`, or the subnet, security group or network ACL `path` lies in."""
    if len(path) < 3 or tuple(path[:2]) != ("network", "vpcs"):
        return None
    vpc = data["network"]["vpcs"][path[2]]
    base = f"vpc.{vpc['name']}"
    if len(path) >= 5 and path[3] in _FINDING_PARTS:
        return f"{base}.{_FINDING_PARTS[str(path[3])]}.{vpc[path[3]][path[4]]['name']}"
    return base


SECTION = Section(
    key="network",
    kinds=("ec2.vpc", "ec2.subnet", "ec2.internet_gateway", "ec2.elastic_ip", "ec2.nat_gateway",
           "ec2.nat_instance", "ec2.route_table", "ec2.vpc_endpoint", "ec2.security_group", "ec2.network_acl"),
    expand=expand,
    checks=checks,
    findings=findings,
    rules=(
        Rule("RC-NET-001", "high", "SSH (22) or RDP (3389) open to the internet",
             "CIS AWS 5.2 / Security Hub EC2.13, EC2.14"),
        Rule("RC-NET-002", "medium", "public subnet assigns public IPv4 addresses automatically",
             "Security Hub EC2.15"),
        Rule("RC-NET-003", "medium", "ingress open to the internet on all ports", "CIS AWS 5.2 / Security Hub EC2.18"),
    ),
    needs=("region",),  # availability zones are checked against the region
    address_of=address_of,
)
