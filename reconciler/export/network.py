"""One VPC, read live (read-only calls) and mapped back onto the manifest's derived topology.

The manifest does not list route tables or NAT placement: `manifest/sections/network.py` derives
them (one `public` table routing 0.0.0.0/0 to the internet gateway; one `private` table, or one per
AZ with `per_az` NAT, routing 0.0.0.0/0 to the NAT; gateway endpoints on every private table;
interface endpoints in the first private subnet of each AZ). This module reads what is there and
writes the VPC entry whose derivation matches it; whatever the derivation would not make (a route
to a peering connection, two route tables for the private subnets of one AZ, a subnet on the main
table, a NAT in a private subnet, a rule peer outside the VPC) is said in a `# ` comment at the
place it concerns and in a warning, never dropped silently. Named network ACLs are exported with
their numbered entries and subnets; the VPC's default ACL and default security group are never the
manifest's (a default group that lets CIDRs in is said, for review).

Names: the VPC from its Name tag minus a `<stack>-` prefix (else `main`); subnets and security
groups from their Name tag (a group: its GroupName first, which the manifest sets as the group's
name) minus a `<stack>-<vpc>-` prefix, else `public-<az letter>` / `private-<az letter>` and
`sg-<n>`, made unique with `-2`, `-3`, ... in CIDR / id order, so a re-export names them alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import absent_none, error_code
from reconciler.canonical import acl_entry
from reconciler.errors import AwsError
from reconciler.export.model import Export, manifest_name, put, unique, user_tags
from reconciler.ownership import tag_dict

ALL_IPV4 = "0.0.0.0/0"
GATEWAY_SERVICES = ("s3", "dynamodb")
DEFAULT_SG_DESCRIPTION = "managed by reconciler"
# what AWS sets on an endpoint created without a policy: the same as writing none
FULL_ACCESS = {"Statement": [{"Action": "*", "Effect": "Allow", "Principal": "*", "Resource": "*"}]}
NAT_ALIVE = ("pending", "available")
ENDPOINT_ALIVE = ("pending", "available", "pendingacceptance")


@dataclass
class Live:
    """What the describe calls returned for one VPC (the mapping is pure over this)."""

    vpc: dict[str, Any]
    dns: dict[str, bool]
    subnets: list[dict[str, Any]] = field(default_factory=list)
    route_tables: list[dict[str, Any]] = field(default_factory=list)
    internet_gateways: list[dict[str, Any]] = field(default_factory=list)
    nat_gateways: list[dict[str, Any]] = field(default_factory=list)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    security_groups: list[dict[str, Any]] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)
    network_acls: list[dict[str, Any]] = field(default_factory=list)


def _tags(item: Mapping[str, Any]) -> dict[str, str]:
    return tag_dict(item.get("Tags"))


def _filter(name: str, value: str) -> list[dict[str, Any]]:
    return [{"Name": name, "Values": [value]}]


def _pages(ec2: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [i for page in ec2.get_paginator(operation).paginate(**kwargs) for i in page.get(key, [])]


def read_vpc(ec2: Any, vpc_id: str) -> Live:
    """Everything of one VPC the mapping needs; an unknown id is an AwsError (exit 1) naming it."""
    try:
        found = absent_none(lambda: ec2.describe_vpcs(VpcIds=[vpc_id]), "ec2")
    except ClientError as exc:  # e.g. a malformed id
        raise AwsError(f"cannot read VPC {vpc_id}: {error_code(exc)}; check the id (vpc-...) and the credentials' "
                       "permissions") from None
    vpcs = (found or {}).get("Vpcs", [])
    if not vpcs:
        raise AwsError(f"no VPC {vpc_id} in this account and region; check the id and --region")
    support = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
    hostnames = ec2.describe_vpc_attribute(VpcId=vpc_id,
                                           Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    in_vpc = _filter("vpc-id", vpc_id)
    live = Live(vpcs[0], {"hostnames": bool(hostnames), "support": bool(support)})
    live.subnets = _pages(ec2, "describe_subnets", "Subnets", Filters=in_vpc)
    live.route_tables = _pages(ec2, "describe_route_tables", "RouteTables", Filters=in_vpc)
    live.internet_gateways = _pages(ec2, "describe_internet_gateways", "InternetGateways",
                                    Filters=_filter("attachment.vpc-id", vpc_id))
    live.nat_gateways = [n for n in _pages(ec2, "describe_nat_gateways", "NatGateways", Filter=in_vpc)
                         if str(n.get("State", "")).lower() in NAT_ALIVE]
    live.endpoints = [e for e in _pages(ec2, "describe_vpc_endpoints", "VpcEndpoints", Filters=in_vpc)
                      if str(e.get("State", "")).lower() in ENDPOINT_ALIVE]
    live.security_groups = _pages(ec2, "describe_security_groups", "SecurityGroups", Filters=in_vpc)
    live.network_acls = _pages(ec2, "describe_network_acls", "NetworkAcls", Filters=in_vpc)
    live.instances = [i for r in _pages(ec2, "describe_instances", "Reservations", Filters=in_vpc)
                      for i in r.get("Instances", []) if i.get("State", {}).get("Name") not in
                      ("shutting-down", "terminated")]
    return live


class _Mapper:
    def __init__(self, export: Export, live: Live, index: int, taken_vpc_names: set[str]) -> None:
        self.x = export
        self.live = live
        self.at: tuple[str | int, ...] = ("network", "vpcs", index)
        vpc_tags = _tags(live.vpc)
        self.name = unique(manifest_name(vpc_tags.get("Name", ""), (f"{export.stack}-",)) or "main",
                           taken_vpc_names)
        self.vpc_id = str(live.vpc["VpcId"])
        self.cidr = str(live.vpc["CidrBlock"])
        self.table_of: dict[str, dict[str, Any]] = {}  # subnet id -> its route table
        self.main_table: dict[str, Any] | None = None
        for table in live.route_tables:
            for assoc in table.get("Associations", []):
                if assoc.get("Main"):
                    self.main_table = table
                elif assoc.get("SubnetId"):
                    self.table_of[assoc["SubnetId"]] = table
        self.igw_ids = {g["InternetGatewayId"] for g in live.internet_gateways}
        self.subnet_names: dict[str, str] = {}
        self.public: dict[str, bool] = {}
        self.sg_names: dict[str, str] = {}

    def note(self, path: tuple[str | int, ...], text: str) -> None:
        self.x.note((*self.at, *path), f"vpc {self.name}: {text}")

    # -- subnets ---------------------------------------------------------------

    def table(self, subnet_id: str) -> dict[str, Any] | None:
        return self.table_of.get(subnet_id, self.main_table)

    def routes_to_igw(self, table: Mapping[str, Any] | None) -> bool:
        return any(r.get("DestinationCidrBlock") == ALL_IPV4 and r.get("GatewayId") in self.igw_ids
                   for r in (table or {}).get("Routes", []))

    def subnets(self) -> list[dict[str, Any]]:
        prefixes = (f"{self.x.stack}-{self.name}-", f"{self.name}-")
        taken: set[str] = set()
        out: list[dict[str, Any]] = []
        ordered = sorted(self.live.subnets, key=lambda s: _cidr_key(s["CidrBlock"]))
        for subnet in ordered:
            self.public[subnet["SubnetId"]] = self.routes_to_igw(self.table(subnet["SubnetId"]))
        for subnet in ordered:
            sid = subnet["SubnetId"]
            kind = "public" if self.public[sid] else "private"
            tag = _tags(subnet).get("Name", "")
            name = manifest_name(tag, prefixes) if tag else None
            chosen = unique(name or f"{kind}-{subnet['AvailabilityZone'][-1:]}", taken)
            self.subnet_names[sid] = chosen
            entry: dict[str, Any] = {"name": chosen, "cidr": subnet["CidrBlock"], "az": subnet["AvailabilityZone"]}
            if self.public[sid]:
                entry["public"] = True
            if subnet.get("MapPublicIpOnLaunch"):
                entry["map_public_ip"] = True
            put(entry, "tags", user_tags(_tags(subnet)))
            index = len(out)
            if not tag:
                self.x.comment((*self.at, "subnets", index), f"{sid}: no Name tag; named {chosen} ({kind}, by AZ)")
            elif chosen != tag:
                self.x.comment((*self.at, "subnets", index), f"{sid}: Name tag {tag!r}")
            if sid not in self.table_of:
                self.note(("subnets", index), f"subnet {chosen} ({sid}) uses the VPC's main route table; the "
                          "manifest never uses the main table: adopting associates it with the derived "
                          f"{kind} route table")
            out.append(entry)
        return out

    # -- NAT -------------------------------------------------------------------

    def nat(self, subnets: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        by_id = {s["SubnetId"]: s for s in self.live.subnets}
        gateways = sorted(self.live.nat_gateways, key=lambda n: n["NatGatewayId"])
        nat_instances = {r.get("InstanceId") for t in self.live.route_tables for r in t.get("Routes", [])
                         if r.get("InstanceId") and r.get("DestinationCidrBlock") == ALL_IPV4}
        private_azs = sorted({s["az"] for s in subnets if not s.get("public")})
        if gateways:
            for nat in gateways:
                if nat.get("ConnectivityType", "public") != "public":
                    self.note(("nat",), f"NAT gateway {nat['NatGatewayId']} is private (no Elastic IP); the "
                              "manifest makes public NAT gateways only")
                if not self.public.get(nat["SubnetId"], False):
                    self.note(("nat",), f"NAT gateway {nat['NatGatewayId']} sits in subnet "
                              f"{self.subnet_names.get(nat['SubnetId'], nat['SubnetId'])}, which is not public "
                              "(not routed to the internet gateway)")
            azs = {by_id[n["SubnetId"]]["AvailabilityZone"] for n in gateways if n["SubnetId"] in by_id}
            if len(gateways) > 1 and len(azs) == len(gateways):
                if sorted(azs) != private_azs:
                    self.note(("nat",), f"NAT gateways in {', '.join(sorted(azs))}, private subnets in "
                              f"{', '.join(private_azs)}: per_az placement puts one NAT in each AZ with "
                              "private subnets")
                return {"mode": "gateway", "placement": "per_az"}
            if len(gateways) > 1:
                self.note(("nat",), f"{len(gateways)} NAT gateways; the manifest has one per VPC (single) or one "
                          f"per AZ: only {gateways[0]['NatGatewayId']} is described, the others would be unmanaged")
            first = gateways[0]
            return {"mode": "gateway", "placement": "single",
                    "subnet": self.subnet_names.get(first["SubnetId"], first["SubnetId"])}
        if nat_instances:
            instances = [i for i in self.live.instances if i.get("InstanceId") in nat_instances]
            if instances:
                inst = sorted(instances, key=lambda i: i["InstanceId"])[0]
                self.note(("nat",), f"NAT instance {inst['InstanceId']} ({inst.get('InstanceType')}, "
                          f"{inst.get('ImageId')}): written with its type and AMI")
                out: dict[str, Any] = {"mode": "instance", "placement": "single",
                                       "subnet": self.subnet_names.get(inst.get("SubnetId", ""), "")}
                if inst.get("InstanceType"):
                    out["instance_type"] = inst["InstanceType"]
                if inst.get("ImageId"):
                    out["ami"] = inst["ImageId"]
                return out
        return None

    # -- route tables: compared with what the derivation makes ------------------

    def check_routes(self, nat: Mapping[str, Any] | None) -> None:
        used = {t["RouteTableId"] for t in self.table_of.values()}
        public_tables = {self.table_of[s]["RouteTableId"] for s, p in self.public.items() if p and s in self.table_of}
        private_tables: dict[str, set[str]] = {}
        by_id = {s["SubnetId"]: s for s in self.live.subnets}
        for sid, is_public in self.public.items():
            if not is_public and sid in self.table_of:
                private_tables.setdefault(self.table_of[sid]["RouteTableId"], set()).add(by_id[sid]["AvailabilityZone"])
        if len(public_tables) > 1:
            self.note(("subnets",), f"public subnets use {len(public_tables)} route tables "
                      f"({', '.join(sorted(public_tables))}); the manifest derives one `public` table for them all")
        per_az = bool(nat and nat.get("placement") == "per_az")
        if per_az:
            for table_id, azs in private_tables.items():
                if len(azs) > 1:
                    self.note(("nat",), f"route table {table_id} serves private subnets of {', '.join(sorted(azs))}; "
                              "per_az derives one private table per AZ")
            for az in {a for azs in private_tables.values() for a in azs}:
                tables = [t for t, azs in private_tables.items() if az in azs]
                if len(tables) > 1:
                    self.note(("nat",), f"a second route table per AZ: {', '.join(sorted(tables))} both serve "
                              f"private subnets in {az}; the manifest derives one")
        elif len(private_tables) > 1:
            self.note(("subnets",), f"private subnets use {len(private_tables)} route tables "
                      f"({', '.join(sorted(private_tables))}); the manifest derives one `private` table")
        nat_targets = {n["NatGatewayId"] for n in self.live.nat_gateways} | {
            i["InstanceId"] for i in self.live.instances}
        for table in sorted(self.live.route_tables, key=lambda t: t["RouteTableId"]):
            tid = table["RouteTableId"]
            if tid not in used:
                if table is not self.main_table:
                    self.note((), f"route table {tid} has no subnet; the manifest does not describe it (unmanaged)")
                continue
            public = tid in public_tables
            for route in table.get("Routes", []):
                if route.get("Origin") in ("CreateRouteTable", "EnableVgwRoutePropagation"):
                    continue  # `local`, and propagated routes: AWS's, never the manifest's
                if route.get("DestinationPrefixListId") and str(route.get("GatewayId", "")).startswith("vpce-"):
                    continue  # a gateway endpoint's route, made by the endpoint
                dest = route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock") or \
                    route.get("DestinationPrefixListId")
                target = next((route[k] for k in ("GatewayId", "NatGatewayId", "InstanceId", "VpcPeeringConnectionId",
                                                  "TransitGatewayId", "NetworkInterfaceId") if route.get(k)), "?")
                expected = dest == ALL_IPV4 and (target in self.igw_ids if public else target in nat_targets)
                if not expected:
                    self.note(("subnets",), f"route table {tid} has a route the derived topology would not make: "
                              f"{dest} -> {target}; adopting keeps the table's subnets on the derived table, and "
                              "the route is not described (add it by hand or drop it)")

    # -- security groups ---------------------------------------------------------

    def groups(self) -> list[dict[str, Any]]:
        prefixes = (f"{self.x.stack}-{self.name}-", f"{self.name}-", "sg-")
        taken: set[str] = set()
        chosen: list[tuple[dict[str, Any], str]] = []
        for n, group in enumerate(sorted((g for g in self.live.security_groups if g.get("GroupName") != "default"),
                                         key=lambda g: g["GroupId"]), start=1):
            name = (manifest_name(group["GroupName"]) if manifest_name(group["GroupName"]) == group["GroupName"]
                    else None) or manifest_name(_tags(group).get("Name", ""), prefixes) or \
                manifest_name(group["GroupName"], prefixes) or f"sg-{n}"
            self.sg_names[group["GroupId"]] = unique(name, taken)
            chosen.append((group, self.sg_names[group["GroupId"]]))
        for group in self.live.security_groups:
            if group.get("GroupName") == "default" and (
                    any(p.get("IpRanges") or p.get("Ipv6Ranges") for p in group.get("IpPermissions", []))):
                self.note(("security_groups",), f"the VPC's default security group {group['GroupId']} lets traffic "
                          "in from CIDRs; the manifest never manages the default group: review it by hand")
        out = []
        for index, (group, name) in enumerate(chosen):
            path = ("security_groups", index)
            entry: dict[str, Any] = {"name": name}
            if group["GroupName"] != name:
                self.note(path, f"security group {group['GroupId']} is named {group['GroupName']!r}, which is not a "
                          f"manifest name; written as {name}: its group name cannot change in place, so apply "
                          "would replace it")
            if group.get("Description", "") != DEFAULT_SG_DESCRIPTION:
                entry["description"] = group.get("Description", "")
            put(entry, "ingress", self.rules(group.get("IpPermissions", []), "from", (*path, "ingress")))
            egress = self.rules(group.get("IpPermissionsEgress", []), "to", (*path, "egress"))
            if egress != [{"protocol": "all", "to": ALL_IPV4}]:
                entry["egress"] = egress  # [] too: no egress at all is not the default (all out)
            put(entry, "tags", user_tags(_tags(group)))
            out.append(entry)
        return out

    def rules(self, permissions: Sequence[Mapping[str, Any]], peer_key: str,
              path: tuple[str | int, ...]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for perm in permissions:
            proto = str(perm.get("IpProtocol", "-1"))
            rule: dict[str, Any] = {}
            if proto in ("-1", "all"):
                rule["protocol"] = "all"
            elif proto in ("tcp", "udp", "6", "17"):
                rule["protocol"] = {"6": "tcp", "17": "udp"}.get(proto, proto)
                low, high = perm.get("FromPort", 0), perm.get("ToPort", 65535)
                rule["ports"] = str(low) if low == high else f"{low}-{high}"
            elif proto in ("icmp", "1"):
                rule["protocol"] = "icmp"
                if perm.get("FromPort", -1) not in (-1, None):
                    self.note(path, f"an icmp rule for type {perm.get('FromPort')} only: the manifest's icmp is "
                              "every type; written as icmp")
            else:
                self.note(path, f"a rule of IP protocol {proto} has no manifest spelling; not described")
                continue
            peers: list[tuple[str, str]] = []
            for r in perm.get("IpRanges", []):
                peers.append((r["CidrIp"], r.get("Description", "")))
            for r in perm.get("Ipv6Ranges", []):
                peers.append((r["CidrIpv6"], r.get("Description", "")))
            for pair in perm.get("UserIdGroupPairs", []):
                gid = pair.get("GroupId", "")
                if gid in self.sg_names:
                    peers.append((self.sg_names[gid], pair.get("Description", "")))
                else:
                    self.note(path, f"a rule with peer group {gid}, outside this VPC's export; not described")
            for pl in perm.get("PrefixListIds", []):
                self.note(path, f"a rule with peer prefix list {pl.get('PrefixListId')}; the manifest names CIDRs "
                          "and groups only: not described")
            for peer, description in peers:
                item = {**rule, peer_key: peer}
                if description:
                    item["description"] = description
                out.append(item)
        return sorted(out, key=lambda r: (r.get("protocol", ""), r.get("ports", ""), r.get(peer_key, "")))

    # -- endpoints -------------------------------------------------------------

    def endpoints(self, subnets: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        prefix = f"com.amazonaws.{self.x.region}."
        private_tables = {self.table_of[s]["RouteTableId"] for s, p in self.public.items()
                          if not p and s in self.table_of}
        first_private: dict[str, str] = {}
        for s in subnets:
            if not s.get("public"):
                first_private.setdefault(str(s["az"]), str(s["name"]))
        out: list[dict[str, Any]] = []
        for index, ep in enumerate(sorted(self.live.endpoints, key=lambda e: e["ServiceName"])):
            path = ("endpoints", index)
            service = str(ep["ServiceName"])
            short = service[len(prefix):] if service.startswith(prefix) else service
            entry: dict[str, Any] = {"service": short}
            kind = str(ep.get("VpcEndpointType", "Gateway")).lower()
            if kind != ("gateway" if short in GATEWAY_SERVICES else "interface"):
                entry["type"] = kind
            if kind == "gateway":
                tables = set(ep.get("RouteTableIds", []))
                if tables != private_tables:
                    self.note(path, f"endpoint {short} is on route tables {', '.join(sorted(tables)) or 'none'}; "
                              "the manifest attaches gateway endpoints to every private route table "
                              f"({', '.join(sorted(private_tables)) or 'none'})")
            else:
                if not ep.get("PrivateDnsEnabled", True):
                    entry["private_dns"] = False
                in_subnets = {self.subnet_names.get(s, s) for s in ep.get("SubnetIds", [])}
                if in_subnets != set(first_private.values()):
                    self.note(path, f"endpoint {short} is in subnets {', '.join(sorted(in_subnets)) or 'none'}; the "
                              "manifest puts interface endpoints in the first private subnet of each AZ "
                              f"({', '.join(sorted(first_private.values())) or 'none'})")
                groups = sorted(self.sg_names.get(g["GroupId"], g["GroupId"]) for g in ep.get("Groups", []))
                unknown = [g for g in groups if g.startswith("sg-") and g not in self.sg_names.values()]
                if unknown:
                    self.note(path, f"endpoint {short} uses security groups outside the export: {', '.join(unknown)}")
                put(entry, "security_groups", [g for g in groups if g not in unknown])
            policy = ep.get("PolicyDocument")
            if isinstance(policy, str) and policy:
                try:
                    doc = json.loads(policy)
                except ValueError:
                    doc = None
                    self.note(path, f"endpoint {short}: its policy is not JSON; not described")
                if doc is not None and _strip_version(doc) != FULL_ACCESS:
                    entry["policy"] = doc
            out.append(entry)
        return out

    # -- the VPC ---------------------------------------------------------------

    def vpc(self) -> dict[str, Any]:
        tag = _tags(self.live.vpc).get("Name", "")
        want_tag = f"{self.x.stack}-{self.name}"
        entry: dict[str, Any] = {"name": self.name, "cidr": self.cidr}
        if tag != want_tag:
            self.note((), f"{self.vpc_id} has Name tag {tag!r}; adopting finds a VPC by the Name tag "
                      f"{want_tag!r}: set it by hand first (aws ec2 create-tags --resources {self.vpc_id} "
                      f"--tags Key=Name,Value={want_tag}), or adopting plans a new VPC")
        else:
            self.x.comment((*self.at, "name"), f"{self.vpc_id} (Name tag {tag!r})")
        if self.live.dns != {"hostnames": True, "support": True}:
            entry["dns"] = dict(self.live.dns)
        subnets = self.subnets()
        put(entry, "subnets", subnets)
        has_public = any(s.get("public") for s in subnets)
        if bool(self.igw_ids) != has_public:
            entry["internet_gateway"] = bool(self.igw_ids)
        if len(self.igw_ids) > 1:
            self.note(("internet_gateway",), f"{len(self.igw_ids)} internet gateways attached; AWS allows one")
        nat = self.nat(subnets)
        if nat is not None:
            entry["nat"] = nat
        self.check_routes(nat)
        groups = self.groups()  # before endpoints and rules: they refer to groups by name
        put(entry, "endpoints", self.endpoints(subnets))
        put(entry, "security_groups", groups)
        put(entry, "network_acls", self.acls())
        put(entry, "tags", user_tags(_tags(self.live.vpc)))
        return entry

    # -- network ACLs: the named ones; the VPC's default ACL is never the manifest's ----

    def acls(self) -> list[dict[str, Any]]:
        prefixes = (f"{self.x.stack}-{self.name}-nacl-", f"{self.x.stack}-{self.name}-", f"{self.name}-")
        taken: set[str] = set()
        out: list[dict[str, Any]] = []
        for n, acl in enumerate(sorted((a for a in self.live.network_acls if not a.get("IsDefault")),
                                       key=lambda a: a["NetworkAclId"]), start=1):
            path = ("network_acls", len(out))
            name = unique(manifest_name(_tags(acl).get("Name", ""), prefixes) or f"acl-{n}", taken)
            entry: dict[str, Any] = {"name": name}
            put(entry, "subnets", sorted(self.subnet_names[a["SubnetId"]] for a in acl.get("Associations", [])
                                         if a.get("SubnetId") in self.subnet_names))
            for direction, egress in (("ingress", False), ("egress", True)):
                entries = []
                for item in sorted(acl.get("Entries", []), key=lambda e: e["RuleNumber"]):
                    if bool(item.get("Egress")) != egress or item["RuleNumber"] >= 32767:
                        continue  # AWS's own final deny
                    ports = item.get("PortRange") or {}
                    cidr = item.get("CidrBlock") or item.get("Ipv6CidrBlock") or ""
                    mapped = acl_entry(item.get("Protocol", "-1"), ports.get("From"), ports.get("To"), cidr,
                                       item.get("RuleAction", "deny"))
                    if mapped["protocol"] == "icmp" and item.get("IcmpTypeCode", {}).get("Type", -1) != -1:
                        self.note(path, f"network ACL {name}: rule {item['RuleNumber']} allows one ICMP type only; "
                                  "the manifest's icmp is every type")
                    entries.append({"rule": int(item["RuleNumber"]), "protocol": mapped["protocol"],
                                    **({"ports": mapped["ports"]} if "ports" in mapped else {}),
                                    "cidr": mapped["cidr"], "action": mapped["action"]})
                put(entry, direction, entries)
            put(entry, "tags", user_tags(_tags(acl)))
            out.append(entry)
        return out


def _strip_version(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: v for k, v in doc.items() if k not in ("Version", "Id")}
    return doc


def _cidr_key(cidr: str) -> tuple[int, ...]:
    address, _, bits = cidr.partition("/")
    return (*(int(p) for p in address.split(".")), int(bits or 0))


def vpc_entry(export: Export, live: Live, index: int = 0, taken: set[str] | None = None) -> dict[str, Any]:
    """`network.vpcs[index]` for one VPC's describe results (pure: no AWS call)."""
    return _Mapper(export, live, index, taken if taken is not None else set()).vpc()


def export_network(export: Export, ec2: Any, vpc_ids: Sequence[str]) -> dict[str, Any]:
    taken: set[str] = set()
    vpcs = [vpc_entry(export, read_vpc(ec2, vpc_id), i, taken) for i, vpc_id in enumerate(dict.fromkeys(vpc_ids))]
    return {"vpcs": vpcs} if vpcs else {}
