"""Expansion of the `network` section: VPCs and the topology SPEC.md §2 derives from them.

Pure: no AWS, no clock. Every piece of the network becomes an ordinary
DesiredResource with a stable address:

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
  runs; the replaced subnet first moves its stack-owned occupants out
  (see `kinds/subnet.py`).
- Security-group rules are dicts keyed by a canonical rule string
  (`"tcp 8080 from 10.0.0.0/16"` -> `{"description": ...}`), so a rule added or removed by
  hand is one precise diff line. `rule_key` is shared with the kind's read.
- A user security group named `endpoints` *is* the default endpoint group
  (declare it to customise what interface endpoints allow).

Invariants: every address in any `depends_on` is produced here; security-group
peer edges never form a cycle (a cycle's closing edge is dropped: that rule is
added on the next apply).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.canonical import rule_key
from reconciler.manifest.expand import ownership_tags
from reconciler.manifest.model import DesiredResource, Manifest
from reconciler.ownership import PROTECT_TAG

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


def _tags(manifest: Manifest, address: str, name: str, extra: Mapping[str, str] | None,
          protect: bool) -> dict[str, str]:
    tags = ownership_tags(manifest, address, name, extra)
    # always written ("false" too), so removing `protect` from the manifest lifts it again
    tags[PROTECT_TAG] = "true" if protect else "false"
    return tags


def _policy(manifest: Manifest, ref: Mapping[str, Any]) -> Any:
    return manifest.policies[ref["file"]] if "file" in ref else dict(ref)


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
        return _tags(self.m, address, name, extra, protect)

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
                spec["policy"] = _policy(self.m, endpoint["policy"])
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


def expand_network(manifest: Manifest) -> list[DesiredResource]:
    """Every network resource of every VPC, with SPEC.md §2 defaults and derived topology."""
    out: list[DesiredResource] = []
    for vpc in manifest.data.get("network", {}).get("vpcs", []):
        out.extend(_Vpc(manifest, vpc).expand())
    return out
