"""Expansion of `network.vpcs`: SPEC.md §2 defaults and derived topology, on literal manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.canonical import parse_rule_key, rule_key
from reconciler.manifest.expand import expand
from reconciler.manifest.model import DesiredResource
from reconciler.manifest.sections.network import service_name
from reconciler.manifest.validate import load_manifest

ROOT = Path(__file__).resolve().parents[2]

HEAD = """\
version: 1
stack: nets
region: us-east-1
network:
  vpcs:
"""


def build(tmp_path: Path, vpcs: str) -> dict[str, DesiredResource]:
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + vpcs)
    manifest, _ = load_manifest(path)
    return {r.address: r for r in expand(manifest) if r.address.startswith("vpc.")}


def test_reference_network_topology() -> None:
    manifest, _ = load_manifest(ROOT / "manifests" / "maestro.yaml")
    got = {r.address: r for r in expand(manifest) if r.address.startswith("vpc.")}
    assert sorted(got) == [
        "vpc.main", "vpc.main.eip.public-a", "vpc.main.endpoint.ecr.api", "vpc.main.endpoint.ecr.dkr",
        "vpc.main.endpoint.s3", "vpc.main.igw", "vpc.main.nat.public-a", "vpc.main.route_table.private",
        "vpc.main.route_table.public", "vpc.main.sg.app", "vpc.main.sg.endpoints", "vpc.main.subnet.private-a",
        "vpc.main.subnet.private-c", "vpc.main.subnet.public-a", "vpc.main.subnet.public-c"]
    assert got["vpc.main"].spec["dns"] == {"hostnames": True, "support": True}
    public, private = got["vpc.main.route_table.public"].spec, got["vpc.main.route_table.private"].spec
    assert public["routes"] == {"0.0.0.0/0": "vpc.main.igw"}
    assert sorted(public["subnets"]) == ["vpc.main.subnet.public-a", "vpc.main.subnet.public-c"]
    assert private["routes"] == {"0.0.0.0/0": "vpc.main.nat.public-a"}
    assert private["subnets"]["vpc.main.subnet.private-a"] == {"az": "ap-northeast-1a", "cidr": "10.0.10.0/24"}
    nat = got["vpc.main.nat.public-a"]
    assert nat.spec["eip"] == "vpc.main.eip.public-a" and nat.spec["az"] == "ap-northeast-1a"
    assert set(nat.depends_on) == {"vpc.main.eip.public-a", "vpc.main.igw", "vpc.main.subnet.public-a"}
    s3 = got["vpc.main.endpoint.s3"].spec
    assert s3["type"] == "Gateway" and s3["route_tables"] == ["vpc.main.route_table.private"]
    assert s3["service"] == "com.amazonaws.ap-northeast-1.s3"
    ecr = got["vpc.main.endpoint.ecr.api"].spec
    assert ecr["type"] == "Interface" and ecr["private_dns"] is True
    assert sorted(ecr["subnets"]) == ["vpc.main.subnet.private-a", "vpc.main.subnet.private-c"]
    assert ecr["security_groups"] == ["vpc.main.sg.endpoints"]
    assert got["vpc.main.sg.endpoints"].spec["ingress"] == {"tcp 443 from 10.0.0.0/16": {"description": ""}}
    assert got["vpc.main.sg.app"].spec["egress"] == {"all to 0.0.0.0/0": {"description": ""}}
    # the subnet carries only what was written: no map_public_ip unless the manifest says so
    assert "map_public_ip" not in got["vpc.main.subnet.public-a"].spec
    tags = got["vpc.main.subnet.public-a"].spec["tags"]
    assert tags["reconciler:address"] == "vpc.main.subnet.public-a" and tags["Name"] == "maestro-main-public-a"
    assert tags["project"] == "maestro"


def test_per_az_nat_routes_each_az_to_its_own_nat(tmp_path: Path) -> None:
    got = build(tmp_path, """\
    - name: big
      cidr: 10.1.0.0/16
      subnets:
        - {name: pub-a, cidr: 10.1.0.0/24, az: us-east-1a, public: true}
        - {name: pub-b, cidr: 10.1.1.0/24, az: us-east-1b, public: true}
        - {name: pub-c, cidr: 10.1.2.0/24, az: us-east-1c, public: true}
        - {name: app-a, cidr: 10.1.10.0/24, az: us-east-1a}
        - {name: app-b, cidr: 10.1.11.0/24, az: us-east-1b}
        - {name: app-c, cidr: 10.1.12.0/24, az: us-east-1c}
        - {name: db-a, cidr: 10.1.20.0/24, az: us-east-1a}
      nat: {mode: gateway, placement: per_az}
      endpoints: [{service: dynamodb}]
""")
    for az, letter in (("us-east-1a", "a"), ("us-east-1b", "b"), ("us-east-1c", "c")):
        table = got[f"vpc.big.route_table.private-{az}"]
        assert table.spec["routes"] == {"0.0.0.0/0": f"vpc.big.nat.pub-{letter}"}
        assert got[f"vpc.big.nat.pub-{letter}"].spec["az"] == az
        assert f"vpc.big.eip.pub-{letter}" in got
        assert all(p["az"] == az for p in table.spec["subnets"].values())
    assert sorted(got["vpc.big.route_table.private-us-east-1a"].spec["subnets"]) == [
        "vpc.big.subnet.app-a", "vpc.big.subnet.db-a"]
    assert got["vpc.big.endpoint.dynamodb"].spec["route_tables"] == [
        "vpc.big.route_table.private-us-east-1a", "vpc.big.route_table.private-us-east-1b",
        "vpc.big.route_table.private-us-east-1c"]
    assert "vpc.big.route_table.private" not in got


def test_mode_none_defaults(tmp_path: Path) -> None:
    got = build(tmp_path, """\
    - name: iso
      cidr: 10.2.0.0/16
      subnets:
        - {name: a, cidr: 10.2.0.0/24, az: us-east-1a}
        - {name: b, cidr: 10.2.1.0/24, az: us-east-1b}
""")
    assert sorted(got) == ["vpc.iso", "vpc.iso.route_table.private", "vpc.iso.subnet.a", "vpc.iso.subnet.b"]
    assert got["vpc.iso.route_table.private"].spec["routes"] == {}  # no default route, no IGW, no NAT


def test_nat_instance_mode(tmp_path: Path) -> None:
    got = build(tmp_path, """\
    - name: main
      cidr: 10.3.0.0/16
      subnets:
        - {name: pub, cidr: 10.3.0.0/24, az: us-east-1a, public: true}
        - {name: priv, cidr: 10.3.1.0/24, az: us-east-1a}
      nat: {mode: instance}
""")
    nat = got["vpc.main.nat_instance.pub"]
    assert nat.kind == "ec2.nat_instance"
    assert nat.spec["instance_type"] == "t4g.nano" and nat.spec["ami"].startswith("ssm:/aws/service/")
    assert nat.spec["source_dest_check"] is False and nat.spec["eip"] == "vpc.main.eip.pub"
    assert nat.spec["security_groups"] == ["vpc.main.nat_instance.pub.sg"]
    group = got["vpc.main.nat_instance.pub.sg"].spec
    assert group["ingress"] == {"all from 10.3.0.0/16": {"description": ""}}
    assert got["vpc.main.route_table.private"].spec["routes"] == {"0.0.0.0/0": "vpc.main.nat_instance.pub"}
    assert "vpc.main.nat.pub" not in got


def test_user_group_named_endpoints_is_the_default_and_cycles_are_broken(tmp_path: Path) -> None:
    got = build(tmp_path, """\
    - name: main
      cidr: 10.4.0.0/16
      subnets: [{name: priv, cidr: 10.4.1.0/24, az: us-east-1a}]
      endpoints: [{service: sts}, {service: logs, security_groups: [web]}]
      security_groups:
        - name: endpoints
          ingress: [{protocol: tcp, ports: "443", from: web}]
        - name: web
          ingress: [{protocol: tcp, ports: "80", from: endpoints, description: from endpoints}]
          egress: []
""")
    assert got["vpc.main.endpoint.sts"].spec["security_groups"] == ["vpc.main.sg.endpoints"]
    assert got["vpc.main.endpoint.logs"].spec["security_groups"] == ["vpc.main.sg.web"]
    assert got["vpc.main.sg.endpoints"].spec["ingress"] == {"tcp 443 from vpc.main.sg.web": {"description": ""}}
    assert got["vpc.main.sg.web"].spec["ingress"] == {
        "tcp 80 from vpc.main.sg.endpoints": {"description": "from endpoints"}}
    assert got["vpc.main.sg.web"].spec["egress"] == {}
    deps = {a: set(got[a].depends_on) for a in ("vpc.main.sg.endpoints", "vpc.main.sg.web")}
    # exactly one direction of the mutual reference is kept, so the graph stays acyclic
    assert ("vpc.main.sg.web" in deps["vpc.main.sg.endpoints"]) != ("vpc.main.sg.endpoints" in deps["vpc.main.sg.web"])
    assert "vpc.main.igw" not in got  # no public subnet: no internet gateway by default


def test_every_dependency_is_desired_and_addresses_are_stable(tmp_path: Path) -> None:
    manifest, _ = load_manifest(ROOT / "manifests" / "maestro.yaml")
    first, second = expand(manifest), expand(manifest)
    assert first == second
    known = {r.address for r in first}
    assert all(set(r.depends_on) <= known for r in first)


@pytest.mark.parametrize("direction, protocol, low, high, peer, text", [
    ("ingress", "tcp", 8080, 8080, "10.0.0.0/16", "tcp 8080 from 10.0.0.0/16"),
    ("ingress", "udp", 1000, 2000, "vpc.main.sg.app", "udp 1000-2000 from vpc.main.sg.app"),
    ("egress", "all", None, None, "0.0.0.0/0", "all to 0.0.0.0/0"),
    ("ingress", "icmp", -1, -1, "::/0", "icmp from ::/0"),
    ("ingress", "icmp", 8, 0, "1.2.3.4/32", "icmp 8/0 from 1.2.3.4/32"),
    ("egress", "50", None, None, "pl-123", "50 to pl-123"),
])
def test_rule_keys_round_trip(direction: str, protocol: str, low: int | None, high: int | None, peer: str,
                              text: str) -> None:
    assert rule_key(direction, protocol, low, high, peer) == text
    assert parse_rule_key(text) == (protocol, low, high, peer)


def test_service_names() -> None:
    assert service_name("eu-west-1", "ecr.dkr") == "com.amazonaws.eu-west-1.ecr.dkr"
    assert service_name("eu-west-1", "com.amazonaws.vpce.eu-west-1.vpce-svc-1") == \
        "com.amazonaws.vpce.eu-west-1.vpce-svc-1"
