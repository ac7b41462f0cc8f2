"""The pure parts of the network kinds: pacing, prices and cost notes, diffs, route filtering."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from reconciler.kinds import all_kinds
from reconciler.kinds.ec2 import _prices
from reconciler.kinds.ec2.route_table import managed_by_aws
from reconciler.manifest.model import DesiredResource
from reconciler.pacing import TokenBucket
from reconciler.plan.model import Action, LiveResource, cost, security

ROOT = Path(__file__).resolve().parents[2]


def test_token_bucket_allows_a_burst_of_four_then_paces() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(capacity=4, rate=0.3, clock=lambda: now[0], sleep=sleep)
    assert [bucket.take() for _ in range(4)] == [0.0] * 4
    waited = bucket.take()
    assert abs(waited - 1 / 0.3) < 1e-9
    now[0] += 100  # a long pause refills, but never beyond the capacity
    assert [bucket.take() for _ in range(4)] == [0.0] * 4
    assert bucket.take() > 3


def test_price_table_is_dated_sourced_and_shipped() -> None:
    table = _prices.prices()
    assert table["as_of"] and table["source"].startswith("AWS public price pages")
    for region in ("us-east-1", "ap-northeast-1"):
        prices = table["regions"][region]
        assert {"nat_gateway", "interface_endpoint_az", "public_ipv4", "instances"} <= set(prices)
        assert "t4g.nano" in prices["instances"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "data/*.json" in pyproject["tool"]["setuptools"]["package-data"]["reconciler"]


def _desired(address: str, kind: str, spec: dict[str, Any]) -> DesiredResource:
    return DesiredResource(address, kind, spec)


def test_cost_notes_on_create_and_savings_on_delete() -> None:
    kinds = all_kinds()
    nat = _desired("vpc.main.nat.public-a", "ec2.nat_gateway", {"az": "ap-northeast-1a"})
    note = kinds["ec2.nat_gateway"].notes(nat, None, Action.CREATE)
    # the number and the table's date ride on the note; the plan totals them and names the date once
    hourly = _prices.prices()["regions"]["ap-northeast-1"]["nat_gateway"]
    assert note == [cost("~$45/month (NAT gateway, hourly charge; data processing extra, ap-northeast-1)",
                         monthly_usd=hourly * _prices.HOURS_PER_MONTH, prices_as_of=_prices.prices()["as_of"])]
    assert kinds["ec2.nat_gateway"].notes(None, LiveResource("n", "ec2.nat_gateway", "nat-1", {
        "az": "ap-northeast-1a"}), Action.DELETE)[0].monthly_usd == -hourly * _prices.HOURS_PER_MONTH
    live = LiveResource("vpc.main.nat.public-a", "ec2.nat_gateway", "nat-1", {"az": "ap-northeast-1a"})
    assert kinds["ec2.nat_gateway"].notes(None, live, Action.DELETE)[0].text.startswith("saves ~$45/month")
    assert kinds["ec2.nat_gateway"].notes(nat, live, Action.NOOP) == []
    eip = _desired("vpc.main.eip.public-a", "ec2.elastic_ip", {"network_border_group": "us-east-1"})
    assert "~$4/month (public IPv4 address" in kinds["ec2.elastic_ip"].notes(eip, None, Action.CREATE)[0].text
    endpoint = _desired("vpc.main.endpoint.ecr.api", "ec2.vpc_endpoint", {
        "type": "Interface", "service": "com.amazonaws.us-east-1.ecr.api",
        "subnets": {"vpc.main.subnet.a": {"az": "us-east-1a", "cidr": "10.0.0.0/24"},
                    "vpc.main.subnet.b": {"az": "us-east-1b", "cidr": "10.0.1.0/24"}}})
    assert "~$15/month (interface endpoint in 2 AZs" in kinds["ec2.vpc_endpoint"].notes(
        endpoint, None, Action.CREATE)[0].text
    gateway = _desired("vpc.main.endpoint.s3", "ec2.vpc_endpoint", {"type": "Gateway"})
    assert kinds["ec2.vpc_endpoint"].notes(gateway, None, Action.CREATE) == []  # gateway endpoints are free
    instance = _desired("vpc.main.nat_instance.a", "ec2.nat_instance", {"az": "us-east-1a",
                                                                        "instance_type": "t4g.nano"})
    assert "~$3/month (NAT instance t4g.nano" in kinds["ec2.nat_instance"].notes(instance, None, Action.CREATE)[0].text
    unknown = _desired("vpc.main.nat.x", "ec2.nat_gateway", {"az": "xx-nowhere-1a"})
    assert "unknown" in kinds["ec2.nat_gateway"].notes(unknown, None, Action.CREATE)[0].text


def test_replaced_subnet_forces_its_interface_endpoint_to_be_replaced() -> None:
    kind = all_kinds()["ec2.vpc_endpoint"]
    placed = {"vpc.main.subnet.a": {"az": "us-east-1a", "cidr": "10.0.0.0/24"}}
    spec = {"type": "Interface", "subnets": placed}
    live = LiveResource("vpc.main.endpoint.sts", "ec2.vpc_endpoint", "vpce-1", {
        "type": "Interface", "subnets": {"vpc.main.subnet.a": {"az": "us-east-1a", "cidr": "10.0.9.0/24"}}})
    changes = kind.diff(_desired("vpc.main.endpoint.sts", "ec2.vpc_endpoint", spec), live)
    assert [(c.path, c.forces_replacement) for c in changes] == [("subnets.vpc.main.subnet.a.cidr", True)]
    more = {**placed, "vpc.main.subnet.b": {"az": "us-east-1b", "cidr": "10.0.1.0/24"}}
    live_same = LiveResource("vpc.main.endpoint.sts", "ec2.vpc_endpoint", "vpce-1", spec)
    changes = kind.diff(_desired("vpc.main.endpoint.sts", "ec2.vpc_endpoint", {**spec, "subnets": more}), live_same)
    assert [(c.path, c.forces_replacement) for c in changes] == [("subnets.vpc.main.subnet.b", False)]


def test_security_group_flags_new_internet_ingress_only() -> None:
    kind = all_kinds()["ec2.security_group"]
    spec = {"ingress": {"tcp 22 from 0.0.0.0/0": {"description": ""}, "tcp 443 from 10.0.0.0/8": {"description": ""},
                        "all from ::/0": {"description": ""}}}
    desired = _desired("vpc.main.sg.app", "ec2.security_group", spec)
    assert kind.notes(desired, None, Action.CREATE) == [
        security("opens all ports to the internet (::/0)"), security("opens tcp 22 to the internet (0.0.0.0/0)")]
    live = LiveResource("vpc.main.sg.app", "ec2.security_group", "sg-1", spec)
    assert kind.notes(desired, live, Action.UPDATE) == []


def test_aws_managed_routes_are_never_ours() -> None:
    assert managed_by_aws({"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "Origin": "CreateRouteTable"})
    assert managed_by_aws({"DestinationPrefixListId": "pl-1", "GatewayId": "vpce-1", "Origin": "CreateRoute"})
    assert managed_by_aws({"DestinationCidrBlock": "10.9.0.0/16", "GatewayId": "vgw-1",
                           "Origin": "EnableVgwRoutePropagation"})
    assert not managed_by_aws({"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "Origin": "CreateRoute"})


def test_every_network_kind_is_registered() -> None:
    names = set(all_kinds())
    assert {"ec2.vpc", "ec2.subnet", "ec2.internet_gateway", "ec2.elastic_ip", "ec2.nat_gateway",
            "ec2.nat_instance", "ec2.route_table", "ec2.vpc_endpoint", "ec2.security_group"} <= names
