"""Adopting a hand-made VPC's insides, on literal describe results: each type's identity rule, one
describe per type, never outside the adopted VPC, never the main table, default ACL or default group,
another stack's resource offered with its owner (kinds.ec2._read `adoptable`)."""

from __future__ import annotations

import datetime
from collections import Counter
from typing import Any

from reconciler.kinds import all_kinds
from reconciler.kinds.base import Context
from reconciler.kinds.ec2._read import adoptable, id_map
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import STACK_TAG

STACK = "maestro"
A, B = "vpc-a", "vpc-b"  # A: the hand-made VPC the manifest names; B: a look-alike nobody asked for


def _tag(name: str) -> list[dict[str, str]]:
    return [{"Key": "Name", "Value": name}]


LIVE: dict[str, list[dict[str, Any]]] = {
    "describe_vpcs": [{"VpcId": A, "CidrBlock": "10.0.0.0/16", "Tags": _tag("maestro-main")},
                      {"VpcId": B, "CidrBlock": "10.0.0.0/16"}],
    "describe_subnets": [
        {"SubnetId": "subnet-pub", "VpcId": A, "CidrBlock": "10.0.0.0/24", "AvailabilityZone": "r-1a"},
        {"SubnetId": "subnet-priv", "VpcId": A, "CidrBlock": "10.0.10.0/24", "AvailabilityZone": "r-1a"},
        {"SubnetId": "subnet-b", "VpcId": B, "CidrBlock": "10.0.0.0/24", "AvailabilityZone": "r-1a"}],
    "describe_internet_gateways": [
        {"InternetGatewayId": "igw-b", "Attachments": [{"VpcId": B, "State": "available"}]},
        {"InternetGatewayId": "igw-a", "Attachments": [{"VpcId": A, "State": "available"}]}],
    "describe_nat_gateways": [
        {"NatGatewayId": "nat-a", "VpcId": A, "SubnetId": "subnet-pub", "State": "available",
         "NatGatewayAddresses": [{"AllocationId": "eipalloc-a", "IsPrimary": True}]},
        {"NatGatewayId": "nat-b", "VpcId": B, "SubnetId": "subnet-b", "State": "available",
         "NatGatewayAddresses": [{"AllocationId": "eipalloc-b", "IsPrimary": True}]}],
    "describe_addresses": [{"AllocationId": "eipalloc-a", "PublicIp": "1.2.3.4"},
                           {"AllocationId": "eipalloc-b", "PublicIp": "1.2.3.5"},
                           {"AllocationId": "eipalloc-loose", "PublicIp": "1.2.3.6"}],
    "describe_route_tables": [
        {"RouteTableId": "rtb-main", "VpcId": A, "Associations": [{"Main": True}], "Routes": []},
        {"RouteTableId": "rtb-pub", "VpcId": A, "Associations": [{"SubnetId": "subnet-pub"}], "Routes": []},
        {"RouteTableId": "rtb-priv", "VpcId": A, "Associations": [{"SubnetId": "subnet-priv"}], "Routes": []},
        {"RouteTableId": "rtb-b", "VpcId": B, "Associations": [{"SubnetId": "subnet-b"}], "Routes": []}],
    "describe_vpc_endpoints": [
        {"VpcEndpointId": "vpce-b", "VpcId": B, "ServiceName": "com.amazonaws.r.s3", "VpcEndpointType": "Gateway",
         "State": "available"},
        {"VpcEndpointId": "vpce-s3", "VpcId": A, "ServiceName": "com.amazonaws.r.s3", "VpcEndpointType": "Gateway",
         "State": "available", "RouteTableIds": ["rtb-priv"]},
        {"VpcEndpointId": "vpce-gone", "VpcId": A, "ServiceName": "com.amazonaws.r.ecr.api",
         "VpcEndpointType": "Interface", "State": "deleted"}],
    "describe_security_groups": [
        {"GroupId": "sg-default", "VpcId": A, "GroupName": "default", "Description": "default"},
        {"GroupId": "sg-app", "VpcId": A, "GroupName": "app", "Description": "app servers"},
        {"GroupId": "sg-app-b", "VpcId": B, "GroupName": "app", "Description": "app servers"},
        {"GroupId": "sg-db", "VpcId": A, "GroupName": "db", "Description": "db",
         "Tags": [{"Key": STACK_TAG, "Value": "other"}]}],
    "describe_network_acls": [
        {"NetworkAclId": "acl-default", "VpcId": A, "IsDefault": True,
         "Associations": [{"SubnetId": "subnet-pub"}], "Entries": []},
        {"NetworkAclId": "acl-priv", "VpcId": A, "IsDefault": False,
         "Associations": [{"SubnetId": "subnet-priv"}], "Entries": []}],
    "describe_instances": [],
    "describe_security_group_rules": [],
}
RESULT_KEYS = {"describe_vpcs": "Vpcs", "describe_subnets": "Subnets", "describe_internet_gateways": "InternetGateways",
               "describe_nat_gateways": "NatGateways", "describe_addresses": "Addresses",
               "describe_route_tables": "RouteTables", "describe_vpc_endpoints": "VpcEndpoints",
               "describe_security_groups": "SecurityGroups", "describe_network_acls": "NetworkAcls",
               "describe_instances": "Reservations", "describe_security_group_rules": "SecurityGroupRules"}


class FakeEc2:
    """Answers every describe with everything, ignoring filters (as an emulator was seen to): what the
    reads keep must be proven client-side. Counts the calls."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def _answer(self, operation: str) -> dict[str, Any]:
        self.calls[operation] += 1
        return {RESULT_KEYS[operation]: [dict(i) for i in LIVE[operation]]}

    def get_paginator(self, operation: str) -> Any:
        fake = self

        class Paginator:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                return [fake._answer(operation)]

        return Paginator()

    def describe_vpcs(self, **_: Any) -> dict[str, Any]:
        return self._answer("describe_vpcs")

    def describe_addresses(self, **_: Any) -> dict[str, Any]:
        return self._answer("describe_addresses")

    def describe_vpc_attribute(self, VpcId: str, Attribute: str) -> dict[str, Any]:
        key = "EnableDnsSupport" if Attribute == "enableDnsSupport" else "EnableDnsHostnames"
        return {key: {"Value": True}}


class Clients:
    def __init__(self) -> None:
        self.ec2 = FakeEc2()

    def client(self, service: str) -> Any:
        assert service == "ec2"
        return self.ec2


V = "vpc.main"
PUB, PRIV = f"{V}.subnet.public-a", f"{V}.subnet.private-a"


def _d(address: str, kind: str, **spec: Any) -> DesiredResource:
    return DesiredResource(address, kind, {"vpc": V, "vpc_cidr": "10.0.0.0/16", **spec, "tags": {}})


DESIRED = [
    DesiredResource(V, "ec2.vpc", {"cidr": "10.0.0.0/16", "dns": {"hostnames": True, "support": True},
                                   "tags": {"Name": "maestro-main"}}),
    _d(PUB, "ec2.subnet", cidr="10.0.0.0/24", az="r-1a"),
    _d(PRIV, "ec2.subnet", cidr="10.0.10.0/24", az="r-1a"),
    _d(f"{V}.igw", "ec2.internet_gateway"),
    _d(f"{V}.nat.public-a", "ec2.nat_gateway", subnet=PUB, eip=f"{V}.eip.public-a"),
    DesiredResource(f"{V}.eip.public-a", "ec2.elastic_ip", {"network_border_group": "r", "tags": {}}),
    _d(f"{V}.route_table.public", "ec2.route_table", routes={}, subnets={PUB: {}}),
    _d(f"{V}.route_table.private", "ec2.route_table", routes={}, subnets={PRIV: {}}),
    _d(f"{V}.route_table.spare", "ec2.route_table", routes={}, subnets={}),  # no subnets: no identity
    _d(f"{V}.endpoint.s3", "ec2.vpc_endpoint", service="com.amazonaws.r.s3", type="Gateway"),
    _d(f"{V}.endpoint.ecr.api", "ec2.vpc_endpoint", service="com.amazonaws.r.ecr.api", type="Interface"),
    _d(f"{V}.sg.app", "ec2.security_group", group_name="app"),
    _d(f"{V}.sg.default", "ec2.security_group", group_name="default"),
    _d(f"{V}.sg.db", "ec2.security_group", group_name="db"),
    _d(f"{V}.acl.private", "ec2.network_acl", subnets={PRIV: {}}),
    _d(f"{V}.acl.public", "ec2.network_acl", subnets={PUB: {}}),
]


def _ctx(desired: list[DesiredResource] = DESIRED) -> tuple[Context, FakeEc2]:
    clients = Clients()
    ctx = Context(clients, STACK, "r", "1", datetime.datetime.now(datetime.UTC),  # type: ignore[arg-type]
                  options={"desired": tuple(desired), "adopt": False})
    return ctx, clients.ec2


def _matched(ctx: Context, what: str, id_key: str) -> dict[str, str]:
    return {i[id_key]: i["ReconcilerAdoptAs"] for i in adoptable(ctx, what)}


def test_each_type_is_matched_by_its_identity_inside_the_adopted_vpc_only() -> None:
    ctx, ec2 = _ctx()
    assert _matched(ctx, "subnets", "SubnetId") == {"subnet-pub": PUB, "subnet-priv": PRIV}
    assert _matched(ctx, "internet_gateways", "InternetGatewayId") == {"igw-a": f"{V}.igw"}
    assert _matched(ctx, "nat_gateways", "NatGatewayId") == {"nat-a": f"{V}.nat.public-a"}
    # the allocation on the adopted NAT, nothing else (B's, a loose one)
    assert _matched(ctx, "addresses", "AllocationId") == {"eipalloc-a": f"{V}.eip.public-a"}
    # the main table never; a table without subnets has no identity
    assert _matched(ctx, "route_tables", "RouteTableId") == {"rtb-pub": f"{V}.route_table.public",
                                                             "rtb-priv": f"{V}.route_table.private"}
    # ghosts are never offered
    assert _matched(ctx, "vpc_endpoints", "VpcEndpointId") == {"vpce-s3": f"{V}.endpoint.s3"}
    # the default group never; another stack's group is offered (so the plan can block it)
    assert _matched(ctx, "security_groups", "GroupId") == {"sg-app": f"{V}.sg.app", "sg-db": f"{V}.sg.db"}
    # the default ACL never, even where its subnets match
    assert _matched(ctx, "network_acls", "NetworkAclId") == {"acl-priv": f"{V}.acl.private"}
    assert adoptable(ctx, "instances") == []  # NAT instances: no identity rule
    # batched: one describe per type, however many kinds ask
    assert max(ec2.calls.values()) <= 2 and ec2.calls["describe_subnets"] == 2  # owned read + the candidates
    ids = id_map(ctx)
    assert ids[A] == V and ids["subnet-priv"] == PRIV and ids["eipalloc-a"] == f"{V}.eip.public-a"
    assert B not in ids and "subnet-b" not in ids and "sg-app-b" not in ids and "rtb-main" not in ids


def test_kinds_offer_candidates_unowned_with_the_other_owner_and_references_as_addresses() -> None:
    ctx, _ = _ctx()
    kinds = all_kinds()
    groups = kinds["ec2.security_group"].read(ctx, []).resources
    assert not groups[f"{V}.sg.app"].owned and groups[f"{V}.sg.app"].owner is None
    assert groups[f"{V}.sg.db"].owner == "other"
    assert groups[f"{V}.sg.app"].attrs["vpc"] == V and groups[f"{V}.sg.app"].attrs["vpc_cidr"] == "10.0.0.0/16"
    tables = kinds["ec2.route_table"].read(ctx, []).resources
    assert tables[f"{V}.route_table.private"].attrs["subnets"] == {PRIV: {"az": "r-1a", "cidr": "10.0.10.0/24"}}
    endpoint = kinds["ec2.vpc_endpoint"].read(ctx, []).resources[f"{V}.endpoint.s3"]
    assert endpoint.attrs["route_tables"] == [f"{V}.route_table.private"] and not endpoint.owned
    nat = kinds["ec2.nat_gateway"].read(ctx, []).resources[f"{V}.nat.public-a"]
    assert (nat.attrs["subnet"], nat.attrs["eip"]) == (PUB, f"{V}.eip.public-a")


def test_nothing_is_matched_when_no_vpc_is_being_adopted() -> None:
    # the manifest's VPC has another Name: nothing unowned is looked for inside any VPC
    renamed = [DesiredResource(V, "ec2.vpc", {"cidr": "10.0.0.0/16", "tags": {"Name": "elsewhere"}}), *DESIRED[1:]]
    ctx, ec2 = _ctx(renamed)
    assert all(adoptable(ctx, what) == [] for what in ("subnets", "security_groups", "route_tables"))
    assert "describe_subnets" not in ec2.calls


def test_with_adopt_a_hand_made_subnet_in_an_owned_vpc_is_offered_and_without_it_is_not(monkeypatch: Any) -> None:
    owned = [{"VpcId": A, "CidrBlock": "10.0.0.0/16",
              "Tags": [{"Key": STACK_TAG, "Value": STACK}, {"Key": "reconciler:address", "Value": V}]},
             LIVE["describe_vpcs"][1]]
    monkeypatch.setitem(LIVE, "describe_vpcs", owned)
    ctx, _ = _ctx()
    assert adoptable(ctx, "subnets") == []
    ctx, _ = _ctx()
    ctx.options["adopt"] = True
    assert _matched(ctx, "subnets", "SubnetId") == {"subnet-pub": PUB, "subnet-priv": PRIV}
