"""The network through the real CLI against moto server: topology, convergence, drift, replacement, destroy."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import ROOT, CliResult, Moto

AP = "ap-northeast-1"


def write(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def reference_network(tmp_path: Path) -> Path:
    """The network of manifests/maestro.yaml, alone (no IAM, ECR or images)."""
    full = yaml.safe_load((ROOT / "manifests" / "maestro.yaml").read_text())
    only = {k: full[k] for k in ("version", "stack", "region", "tags", "network")}
    return write(tmp_path, yaml.safe_dump(only, sort_keys=False), "maestro-network.yaml")


def tag(item: dict[str, Any], key: str) -> str | None:
    return {t["Key"]: t["Value"] for t in item.get("Tags") or item.get("TagSet") or []}.get(key)


class Account:
    """Stack-tagged network resources, read straight from moto by address."""

    def __init__(self, moto: Moto, stack: str, region: str) -> None:
        self.ec2: Any = moto.client("ec2", region)
        self.stack = stack
        self.filters = [{"Name": "tag:reconciler:stack", "Values": [stack]}]

    def by_address(self, operation: str, key: str, **kw: Any) -> dict[str, dict[str, Any]]:
        kw.setdefault("Filter" if operation == "describe_nat_gateways" else "Filters", self.filters)
        items = getattr(self.ec2, operation)(**kw)[key]
        # moto ignores the tag filter on NAT gateways: check the tag here too
        return {str(tag(i, "reconciler:address")): i for i in items if tag(i, "reconciler:stack") == self.stack}

    def subnets(self) -> dict[str, dict[str, Any]]:
        return self.by_address("describe_subnets", "Subnets")

    def route_tables(self) -> dict[str, dict[str, Any]]:
        return self.by_address("describe_route_tables", "RouteTables")

    def nats(self) -> dict[str, dict[str, Any]]:
        return {a: n for a, n in self.by_address("describe_nat_gateways", "NatGateways").items()
                if n["State"] == "available"}

    def instances(self) -> dict[str, dict[str, Any]]:
        found = self.ec2.describe_instances(Filters=self.filters)["Reservations"]
        return {str(tag(i, "reconciler:address")): i for r in found for i in r["Instances"]
                if i["State"]["Name"] not in ("terminated", "shutting-down")}

    def default_route_of(self, subnet_id: str) -> dict[str, Any] | None:
        """The 0.0.0.0/0 route a subnet uses (through its explicit association), or None."""
        for table in self.route_tables().values():
            if any(a.get("SubnetId") == subnet_id for a in table["Associations"]):
                return next((r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"), None)
        raise AssertionError(f"{subnet_id} has no explicit route table association")


def recorded_operations(moto: Moto, run: Any) -> tuple[Any, list[str]]:
    """Run `run()` with moto's recorder on; return its result and the operations the server saw."""
    requests.post(f"{moto.endpoint}/moto-api/recorder/reset-recording", timeout=5)
    requests.post(f"{moto.endpoint}/moto-api/recorder/start-recording", timeout=5)
    try:
        result = run()
    finally:
        requests.post(f"{moto.endpoint}/moto-api/recorder/stop-recording", timeout=5)
    log = requests.get(f"{moto.endpoint}/moto-api/recorder/download-recording", timeout=5).text
    ops = []
    for line in log.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        target = (entry.get("headers") or {}).get("X-Amz-Target")
        body = entry.get("body") or ""
        action = target.split(".")[-1] if target else (
            body.get("Action") if isinstance(body, dict) else urllib.parse.parse_qs(str(body)).get("Action", [None])[0])
        if action:
            ops.append(str(action))
    return result, ops


def assert_converged(cli: Any, manifest: Path) -> None:
    again = cli("plan", str(manifest), "--detailed-exitcode")
    assert again.code == 0, again.all
    assert "No changes" in again.out


def test_reference_network_applies_converges_and_a_second_apply_writes_nothing(cli: Any, moto: Moto,
                                                                               tmp_path: Path) -> None:
    manifest = reference_network(tmp_path)
    first: CliResult = cli("apply", str(manifest), "--auto-approve")
    assert first.code == 0, first.all
    # the plan shown before applying flagged what costs money
    assert "cost: ~$45/month (NAT gateway" in first.out
    assert "cost: ~$20/month (interface endpoint in 2 AZs" in first.out
    assert "cost: ~$4/month (public IPv4 address" in first.out
    account = Account(moto, "maestro", AP)
    subnets, nats = account.subnets(), account.nats()
    assert list(nats) == ["vpc.main.nat.public-a"]
    nat = nats["vpc.main.nat.public-a"]
    assert nat["SubnetId"] == subnets["vpc.main.subnet.public-a"]["SubnetId"]
    for name in ("private-a", "private-c"):
        route = account.default_route_of(subnets[f"vpc.main.subnet.{name}"]["SubnetId"])
        assert route is not None and route.get("NatGatewayId") == nat["NatGatewayId"]
    for name in ("public-a", "public-c"):
        route = account.default_route_of(subnets[f"vpc.main.subnet.{name}"]["SubnetId"])
        assert route is not None and route["GatewayId"].startswith("igw-")
    endpoints = account.by_address("describe_vpc_endpoints", "VpcEndpoints")
    private_table = account.route_tables()["vpc.main.route_table.private"]["RouteTableId"]
    assert endpoints["vpc.main.endpoint.s3"]["RouteTableIds"] == [private_table]
    assert sorted(endpoints["vpc.main.endpoint.ecr.api"]["SubnetIds"]) == sorted(
        subnets[f"vpc.main.subnet.{n}"]["SubnetId"] for n in ("private-a", "private-c"))
    # the main route table is never used or changed
    main = account.ec2.describe_route_tables(Filters=[{"Name": "association.main", "Values": ["true"]},
                                                      {"Name": "vpc-id", "Values": [nat["VpcId"]]}])["RouteTables"]
    assert [r["DestinationCidrBlock"] for r in main[0]["Routes"]] == ["10.0.0.0/16"]
    assert_converged(cli, manifest)
    second, ops = recorded_operations(moto, lambda: cli("apply", str(manifest), "--auto-approve"))
    assert second.code == 0 and "No changes" in second.out, second.all
    from reconciler.engine.clients import is_read

    # the only writes: taking and releasing the stack's lease (taken before the read, even when nothing changes)
    writes = [op for op in ops if not is_read(op)]
    assert ops and set(writes) <= {"PutParameter", "DeleteParameter"}, writes
    ec2_reads = [op for op in ops if op.startswith("Describe") and op != "DescribeRepositories"]
    assert len(ec2_reads) <= 14, ec2_reads  # one batched read per type, plus 2 DNS attributes per VPC


THREE_AZ = """\
version: 1
stack: threeaz
region: ap-northeast-1
network:
  vpcs:
    - name: big
      cidr: 10.1.0.0/16
      subnets:
        - {name: pub-a, cidr: 10.1.0.0/24, az: ap-northeast-1a, public: true}
        - {name: pub-c, cidr: 10.1.1.0/24, az: ap-northeast-1c, public: true}
        - {name: pub-d, cidr: 10.1.2.0/24, az: ap-northeast-1d, public: true}
        - {name: app-a, cidr: 10.1.10.0/24, az: ap-northeast-1a}
        - {name: app-c, cidr: 10.1.11.0/24, az: ap-northeast-1c}
        - {name: app-d, cidr: 10.1.12.0/24, az: ap-northeast-1d}
        - {name: db-a, cidr: 10.1.20.0/24, az: ap-northeast-1a}
      nat: {mode: gateway, placement: per_az}
      endpoints: [{service: s3}, {service: sts}]
    - name: iso
      cidr: 10.2.0.0/16
      subnets:
        - {name: a, cidr: 10.2.0.0/24, az: ap-northeast-1a}
        - {name: c, cidr: 10.2.1.0/24, az: ap-northeast-1c}
"""


def test_three_az_per_az_nat_and_a_mode_none_vpc(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path, THREE_AZ)
    result = cli("apply", str(manifest), "--auto-approve")
    assert result.code == 0, result.all
    account = Account(moto, "threeaz", AP)
    subnets, nats = account.subnets(), account.nats()
    assert len(nats) == 3
    nat_az = {n["NatGatewayId"]: next(s["AvailabilityZone"] for s in subnets.values() if s["SubnetId"] == n["SubnetId"])
              for n in nats.values()}
    for address, subnet in subnets.items():
        route = account.default_route_of(subnet["SubnetId"])
        name = address.rsplit(".", 1)[1]
        if address.startswith("vpc.iso."):
            assert route is None, f"{address} must have no default route (nat mode none)"
        elif name.startswith("pub-"):
            assert route is not None and route["GatewayId"].startswith("igw-"), address
        else:
            assert route is not None and nat_az[route["NatGatewayId"]] == subnet["AvailabilityZone"], address
    assert "vpc.iso.igw" not in account.by_address("describe_internet_gateways", "InternetGateways")
    assert_converged(cli, manifest)


NAT_INSTANCES = """\
version: 1
stack: natinst
region: us-east-1
network:
  vpcs:
    - name: main
      cidr: 10.5.0.0/16
      subnets:
        - {name: pub-a, cidr: 10.5.0.0/24, az: us-east-1a, public: true}
        - {name: pub-b, cidr: 10.5.1.0/24, az: us-east-1b, public: true}
        - {name: priv-a, cidr: 10.5.10.0/24, az: us-east-1a}
        - {name: priv-b, cidr: 10.5.11.0/24, az: us-east-1b}
      nat: {mode: instance, placement: per_az}
"""


def test_nat_instance_mode_reaches_the_same_shape(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path, NAT_INSTANCES)
    result = cli("apply", str(manifest), "--auto-approve")
    assert result.code == 0, result.all
    assert "cost: ~$3/month (NAT instance t4g.nano" in result.out
    account = Account(moto, "natinst", "us-east-1")
    subnets, instances = account.subnets(), account.instances()
    assert sorted(instances) == ["vpc.main.nat_instance.pub-a", "vpc.main.nat_instance.pub-b"]
    addresses = {a.get("InstanceId"): a for a in account.ec2.describe_addresses(Filters=account.filters)["Addresses"]}
    ssm: Any = moto.client("ssm", "us-east-1")
    ami = ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64")
    for letter in ("a", "b"):
        instance = instances[f"vpc.main.nat_instance.pub-{letter}"]
        assert instance["SubnetId"] == subnets[f"vpc.main.subnet.pub-{letter}"]["SubnetId"]
        assert instance["SourceDestCheck"] is False
        assert instance["ImageId"] == ami["Parameter"]["Value"] and instance["InstanceType"] == "t4g.nano"
        assert instance["InstanceId"] in addresses, "every NAT instance has its own Elastic IP"
        eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
        route = account.default_route_of(subnets[f"vpc.main.subnet.priv-{letter}"]["SubnetId"])
        assert route is not None and route["NetworkInterfaceId"] == eni
        group = account.ec2.describe_security_groups(GroupIds=[instance["SecurityGroups"][0]["GroupId"]])
        assert group["SecurityGroups"][0]["IpPermissions"][0]["IpRanges"] == [{"CidrIp": "10.5.0.0/16"}]
    assert_converged(cli, manifest)


SMALL = """\
version: 1
stack: small
region: us-east-1
network:
  vpcs:
    - name: main
      cidr: 10.7.0.0/16
      subnets:
        - {name: pub, cidr: 10.7.0.0/24, az: us-east-1a, public: true}
        - {name: priv, cidr: 10.7.10.0/24, az: us-east-1a}
        - {name: priv-b, cidr: 10.7.11.0/24, az: us-east-1b}
      nat: {mode: gateway}
      endpoints: [{service: s3}, {service: sts}]
      security_groups:
        - name: app
          ingress: [{protocol: tcp, ports: "8080", from: 10.7.0.0/16, description: app port}]
"""


def _by_hand(account: Account, change: str) -> None:
    ec2 = account.ec2
    tables = account.route_tables()
    if change == "route_added":
        igw = account.by_address("describe_internet_gateways", "InternetGateways")["vpc.main.igw"]
        ec2.create_route(RouteTableId=tables["vpc.main.route_table.private"]["RouteTableId"],
                         DestinationCidrBlock="192.168.0.0/16", GatewayId=igw["InternetGatewayId"])
    elif change == "route_removed":
        ec2.delete_route(RouteTableId=tables["vpc.main.route_table.private"]["RouteTableId"],
                         DestinationCidrBlock="0.0.0.0/0")
    elif change == "sg_rule_added":
        group = account.by_address("describe_security_groups", "SecurityGroups")["vpc.main.sg.app"]
        ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    elif change == "endpoint_deleted":
        endpoint = account.by_address("describe_vpc_endpoints", "VpcEndpoints")["vpc.main.endpoint.sts"]
        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
    elif change == "subnet_tags":
        subnet = account.subnets()["vpc.main.subnet.priv"]
        ec2.create_tags(Resources=[subnet["SubnetId"]], Tags=[{"Key": "Name", "Value": "renamed-by-hand"}])


@pytest.mark.parametrize("change, status, address, detail", [
    ("route_added", "UNMANAGED", "vpc.main.route_table.private", "routes.192.168.0.0/16"),
    ("route_removed", "MODIFIED", "vpc.main.route_table.private", "routes.0.0.0.0/0"),
    ("sg_rule_added", "UNMANAGED", "vpc.main.sg.app", "ingress.tcp 22 from 0.0.0.0/0"),
    ("endpoint_deleted", "DELETED", "vpc.main.endpoint.sts", ""),
    ("subnet_tags", "MODIFIED", "vpc.main.subnet.priv", "tags.Name"),
])
def test_by_hand_changes_are_found_by_drift_and_healed_by_apply(cli: Any, moto: Moto, tmp_path: Path, change: str,
                                                               status: str, address: str, detail: str) -> None:
    manifest = write(tmp_path, SMALL)
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    account = Account(moto, "small", "us-east-1")
    _by_hand(account, change)
    found = cli("drift", str(manifest), "--format", "json")
    assert found.code == 2, found.all
    report = {r["address"]: r for r in json.loads(found.out)["resources"]}
    assert report[address]["status"] == status, report[address]
    assert detail in json.dumps(report[address]["diff"]) + report[address]["detail"]
    drifted = sorted(a for a, r in report.items() if r["status"] != "IN_SYNC")
    assert drifted == [address]
    healed = cli("apply", str(manifest), "--auto-approve")
    assert healed.code == 0, healed.all
    assert cli("drift", str(manifest)).code == 0
    route = account.default_route_of(account.subnets()["vpc.main.subnet.priv"]["SubnetId"])
    assert route is not None and route["NatGatewayId"] == account.nats()["vpc.main.nat.pub"]["NatGatewayId"]


def test_subnet_cidr_change_plans_replacement_and_applies_safely(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path, SMALL)
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    account = Account(moto, "small", "us-east-1")
    old = account.subnets()
    # the NAT's public subnet and an endpoint's private subnet both move
    manifest.write_text(SMALL.replace("10.7.0.0/24", "10.7.2.0/24").replace("10.7.10.0/24", "10.7.12.0/24"))
    plan = cli("plan", str(manifest), "--format", "json", "--detailed-exitcode")
    assert plan.code == 2, plan.all
    actions = {c["address"]: c["action"] for c in json.loads(plan.out)["changes"] if c["action"] != "noop"}
    assert actions == {
        "vpc.main.subnet.pub": "replace", "vpc.main.subnet.priv": "replace",
        "vpc.main.nat.pub": "replace", "vpc.main.endpoint.sts": "replace",
        "vpc.main.route_table.public": "update", "vpc.main.route_table.private": "update",
    }
    applied = cli("apply", str(manifest), "--auto-approve")
    assert applied.code == 0, applied.all
    subnets, nats = account.subnets(), account.nats()
    assert subnets["vpc.main.subnet.priv"]["CidrBlock"] == "10.7.12.0/24"
    assert subnets["vpc.main.subnet.priv"]["SubnetId"] != old["vpc.main.subnet.priv"]["SubnetId"]
    assert nats["vpc.main.nat.pub"]["SubnetId"] == subnets["vpc.main.subnet.pub"]["SubnetId"]
    for name in ("priv", "priv-b"):
        route = account.default_route_of(subnets[f"vpc.main.subnet.{name}"]["SubnetId"])
        assert route is not None and route["NatGatewayId"] == nats["vpc.main.nat.pub"]["NatGatewayId"]
    endpoint = account.by_address("describe_vpc_endpoints", "VpcEndpoints", Filters=[
        *account.filters, {"Name": "vpc-endpoint-state", "Values": ["available"]}])["vpc.main.endpoint.sts"]
    assert subnets["vpc.main.subnet.priv"]["SubnetId"] in endpoint["SubnetIds"]
    assert_converged(cli, manifest)


def test_destroy_leaves_no_network_and_never_touches_a_same_named_untagged_vpc(cli: Any, moto: Moto,
                                                                             tmp_path: Path) -> None:
    manifest = write(tmp_path, SMALL)
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    account = Account(moto, "small", "us-east-1")
    bystander = account.ec2.create_vpc(CidrBlock="10.7.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "small-main"}]}])["Vpc"]["VpcId"]
    gone = cli("destroy", str(manifest), "--auto-approve")
    assert gone.code == 0, gone.all
    for operation, key in (("describe_vpcs", "Vpcs"), ("describe_subnets", "Subnets"),
                           ("describe_internet_gateways", "InternetGateways"), ("describe_route_tables", "RouteTables"),
                           ("describe_security_groups", "SecurityGroups"), ("describe_addresses", "Addresses")):
        assert getattr(account.ec2, operation)(Filters=account.filters)[key] == [], operation
    assert account.nats() == {}
    endpoints = account.ec2.describe_vpc_endpoints(Filters=account.filters)["VpcEndpoints"]
    assert all(e["State"] == "deleted" for e in endpoints)
    assert account.ec2.describe_addresses()["Addresses"] == [], "no Elastic IP may stay allocated"
    assert [v["VpcId"] for v in account.ec2.describe_vpcs(VpcIds=[bystander])["Vpcs"]] == [bystander]


def test_an_untagged_vpc_with_the_manifest_name_is_a_conflict_not_a_target(cli: Any, moto: Moto,
                                                                          tmp_path: Path) -> None:
    account = Account(moto, "small", "us-east-1")
    foreign = account.ec2.create_vpc(CidrBlock="10.7.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "small-main"}]}])["Vpc"]["VpcId"]
    manifest = write(tmp_path, SMALL)
    refused = cli("apply", str(manifest), "--auto-approve")
    assert refused.code == 1 and "--adopt" in refused.all and foreign in refused.all, refused.all
    vpc = account.ec2.describe_vpcs(VpcIds=[foreign])["Vpcs"][0]
    assert {t["Key"] for t in vpc["Tags"]} == {"Name"}
    assert account.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [foreign]}])["Subnets"] == []
    assert cli("destroy", str(manifest), "--auto-approve").code == 0
    assert account.ec2.describe_vpcs(VpcIds=[foreign])["Vpcs"][0]["VpcId"] == foreign


def test_two_stacks_in_one_account_never_touch_each_other(cli: Any, moto: Moto, tmp_path: Path) -> None:
    ours = write(tmp_path, SMALL)
    theirs = write(tmp_path, SMALL.replace("stack: small", "stack: other").replace("10.7.", "10.17."), "other.yaml")
    assert cli("apply", str(theirs), "--auto-approve").code == 0
    assert cli("apply", str(ours), "--auto-approve").code == 0
    # neither plan sees the other's resources as orphans (a server-side tag filter is not trusted alone)
    assert_converged(cli, ours)
    assert_converged(cli, theirs)
    other = Account(moto, "other", "us-east-1")
    before = {k: sorted(getattr(other, k)()) for k in ("subnets", "route_tables", "nats")}
    assert cli("destroy", str(ours), "--auto-approve").code == 0
    assert {k: sorted(getattr(other, k)()) for k in ("subnets", "route_tables", "nats")} == before
    assert_converged(cli, theirs)


def test_a_duplicate_left_by_a_retried_create_is_planned_for_deletion(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path, SMALL)
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    account = Account(moto, "small", "us-east-1")

    def tags(address: str) -> list[dict[str, Any]]:
        return [{"Key": "reconciler:stack", "Value": "small"}, {"Key": "reconciler:address", "Value": address}]

    # what a CreateVpc / AllocateAddress whose response was lost and that botocore retried leaves behind
    extra_vpc = account.ec2.create_vpc(CidrBlock="10.7.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": tags("vpc.main")}])["Vpc"]["VpcId"]
    extra_eip = account.ec2.allocate_address(Domain="vpc", TagSpecifications=[
        {"ResourceType": "elastic-ip", "Tags": tags("vpc.main.eip.pub")}])["AllocationId"]
    plan = cli("plan", str(manifest), "--format", "json")
    assert plan.code == 0, plan.all
    pending = {c["address"]: (c["action"], c.get("id")) for c in json.loads(plan.out)["changes"]
               if c["action"] != "noop"}
    assert pending == {f"vpc.main#duplicate-{extra_vpc}": ("delete", extra_vpc),
                       f"vpc.main.eip.pub#duplicate-{extra_eip}": ("delete", extra_eip)}
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    assert_converged(cli, manifest)
    assert extra_vpc not in [v["VpcId"] for v in account.ec2.describe_vpcs()["Vpcs"]]
