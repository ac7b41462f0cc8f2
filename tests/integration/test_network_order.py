"""Teardown and replacement order, proven independently of moto's leniency.

moto deletes subnets that still hold NAT gateways, security groups still used by
endpoints, and detaches gateways while public addresses are mapped (EMULATOR-NOTES
§3). `StrictAws` plays AWS's rules in front of the real client path: a botocore
`before-call` hook on the engine's own EC2 client checks moto's state (through a
separate, unhooked client) and answers `DependencyViolation` the way AWS would.
Nothing is mocked: every call that passes goes to the moto server.

The engine runs in-process here (same code as the CLI: plan_run + apply_plan) so
the hook can sit on its client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.apply import apply_plan
from reconciler.engine.clients import Clients, is_read
from reconciler.engine.run import Options, Run, plan_run
from reconciler.kinds import all_kinds
from reconciler.plan.model import Outcome, Result
from tests.conftest import FAKE_KEY, Moto

REGION = "us-east-1"
LIVE_NAT = ["pending", "available", "deleting"]
DEAD_INSTANCE = ("terminated", "shutting-down")

MANIFEST = """\
version: 1
stack: order
region: us-east-1
network:
  vpcs:
    - name: main
      cidr: 10.8.0.0/16
      subnets:
        - {name: pub-a, cidr: 10.8.0.0/24, az: us-east-1a, public: true}
        - {name: pub-b, cidr: 10.8.1.0/24, az: us-east-1b, public: true}
        - {name: priv-a, cidr: 10.8.10.0/24, az: us-east-1a}
        - {name: priv-b, cidr: 10.8.11.0/24, az: us-east-1b}
      nat: {mode: gateway, placement: per_az}
      endpoints: [{service: s3}, {service: sts}]
      security_groups:
        - name: app
          ingress: [{protocol: tcp, ports: "8080", from: web}]
        - name: web
          ingress: [{protocol: tcp, ports: "443", from: 0.0.0.0/0}]
    - name: edge
      cidr: 10.9.0.0/16
      subnets:
        - {name: pub, cidr: 10.9.0.0/24, az: us-east-1a, public: true}
        - {name: priv, cidr: 10.9.10.0/24, az: us-east-1a}
      nat: {mode: instance}
"""


def _first(body: dict[str, Any], *keys: str) -> str:
    return next((str(body[k]) for k in keys if k in body), "")


class StrictAws:
    """AWS's DependencyViolation rules for deletes, enforced before each call reaches moto."""

    def __init__(self, moto: Moto) -> None:
        self.ec2: Any = moto.client("ec2", REGION)  # unhooked: its reads are the referee's, not the engine's
        self.log: list[tuple[str, dict[str, Any]]] = []  # every write that went through, in order
        self.refused: list[tuple[str, str, str]] = []
        self.foreign_enis: set[str] = set()
        self.inject: dict[tuple[str, str], int] = {}  # (operation, id) -> DependencyViolations still to play
        self._lock = threading.Lock()

    def install(self, clients: Clients) -> None:
        clients.client("ec2").meta.events.register("before-call.ec2.*", self.before_call)

    def before_call(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        operation = model.name
        if is_read(operation):
            return None
        body = dict(params.get("body") or {})
        target = _first(body, "SubnetId", "GroupId", "AllocationId", "NatGatewayId", "RouteTableId",
                        "VpcEndpointId.1", "InstanceId.1", "InternetGatewayId", "VpcId")
        with self._lock:
            code, why = "", ""
            if self.inject.get((operation, target), 0) > 0:
                self.inject[(operation, target)] -= 1
                code, why = "DependencyViolation", "injected"
            else:
                why = self.violation(operation, body)
                code = "InvalidIPAddress.InUse" if operation == "ReleaseAddress" else "DependencyViolation"
            if why:
                self.refused.append((operation, target, why))
                return _error(code, f"{target}: {why}")
            self.log.append((operation, body))
        return None

    # -- AWS's rules, checked on moto's state ----------------------------------------

    def _live_nats(self, name: str, value: str) -> list[dict[str, Any]]:
        found = self.ec2.describe_nat_gateways(Filter=[{"Name": name, "Values": [value]},
                                                       {"Name": "state", "Values": LIVE_NAT}])["NatGateways"]
        return list(found)

    def _live_endpoints(self) -> list[dict[str, Any]]:
        return [e for e in self.ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["State"] not in ("deleted",)]

    def _live_instances(self, name: str, value: str) -> list[dict[str, Any]]:
        found = self.ec2.describe_instances(Filters=[{"Name": name, "Values": [value]}])["Reservations"]
        return [i for r in found for i in r["Instances"] if i["State"]["Name"] not in DEAD_INSTANCE]

    def violation(self, operation: str, body: dict[str, Any]) -> str:
        if operation == "DeleteSubnet":
            subnet = body["SubnetId"]
            if self._live_nats("subnet-id", subnet):
                return "a NAT gateway is in the subnet"
            if any(subnet in e.get("SubnetIds", []) for e in self._live_endpoints()):
                return "an interface endpoint is in the subnet"
            if self._live_instances("subnet-id", subnet):
                return "an instance is in the subnet"
            enis = self.ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet]}])
            if self.foreign_enis & {e["NetworkInterfaceId"] for e in enis["NetworkInterfaces"]}:
                return "a network interface is in the subnet"
        elif operation == "DeleteSecurityGroup":
            group = body["GroupId"]
            if any(group in [g["GroupId"] for g in e.get("Groups", [])] for e in self._live_endpoints()):
                return "an endpoint uses the group"
            users = self.ec2.describe_instances(Filters=[{"Name": "instance.group-id", "Values": [group]}])
            if any(i["State"]["Name"] not in DEAD_INSTANCE for r in users["Reservations"] for i in r["Instances"]):
                return "an instance uses the group"
            rules = self.ec2.describe_security_group_rules()["SecurityGroupRules"]
            if any((r.get("ReferencedGroupInfo") or {}).get("GroupId") == group and r["GroupId"] != group
                   for r in rules):
                return "another group's rule references the group"
        elif operation == "DetachInternetGateway":
            vpc = body["VpcId"]
            if self._live_nats("vpc-id", vpc):
                return "the VPC has mapped public addresses (NAT gateway)"
            held = {a.get("InstanceId") for a in self.ec2.describe_addresses()["Addresses"]}
            if any(i["InstanceId"] in held for i in self._live_instances("vpc-id", vpc)):
                return "the VPC has mapped public addresses (instance)"
        elif operation == "ReleaseAddress":
            allocation = body["AllocationId"]
            nats = self.ec2.describe_nat_gateways(Filter=[{"Name": "state", "Values": LIVE_NAT}])["NatGateways"]
            if any(a.get("AllocationId") == allocation for n in nats for a in n["NatGatewayAddresses"]):
                return "a NAT gateway holds the address"
            address = self.ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
            if address.get("InstanceId") and self._live_instances("instance-id", address["InstanceId"]):
                return "an instance holds the address"
        elif operation == "DeleteInternetGateway":
            gateway = self.ec2.describe_internet_gateways(InternetGatewayIds=[body["InternetGatewayId"]])
            if gateway["InternetGateways"][0].get("Attachments"):
                return "the gateway is still attached"
        elif operation == "DeleteRouteTable":
            table = body["RouteTableId"]
            if any(table in e.get("RouteTableIds", []) for e in self._live_endpoints()):
                return "a gateway endpoint uses the table"
        elif operation == "DeleteVpc":
            vpc = [{"Name": "vpc-id", "Values": [body["VpcId"]]}]
            groups = self.ec2.describe_security_groups(Filters=vpc)["SecurityGroups"]
            gateways = self.ec2.describe_internet_gateways(Filters=[
                {"Name": "attachment.vpc-id", "Values": [body["VpcId"]]}])["InternetGateways"]
            if [g for g in groups if g["GroupName"] != "default"] or gateways:
                return "the VPC still has security groups or an attached gateway"
            if any(e["VpcId"] == body["VpcId"] for e in self._live_endpoints()):
                return "the VPC still has endpoints"
        return ""

    # -- reading the log -------------------------------------------------------------

    def position(self, operation: str, match: Callable[[dict[str, Any]], bool]) -> int:
        found = [i for i, (op, body) in enumerate(self.log) if op == operation and match(body)]
        assert found, f"{operation} matching was never sent"
        return found[0]


def _error(code: str, message: str) -> tuple[Any, dict[str, Any]]:
    class Http:
        status_code = 400
        headers: dict[str, str] = {}  # noqa: RUF012
        content = b""

    return Http(), {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}


@pytest.fixture
def aws(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    for key, value in moto.env().items():
        if key.startswith(("AWS_", "RECONCILER_")):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("RECONCILER_DEPENDENCY_TIMEOUT", "60")
    yield moto


def converge(manifest: Path, moto: Moto, *, destroy: bool = False,
             strict: StrictAws | None = None) -> tuple[Run, list[Result]]:
    """What `reconcile apply|destroy --auto-approve` does, in-process so a hook can sit on the client."""
    run = plan_run(manifest, Options(endpoint_url=moto.endpoint), destroy=destroy)
    run.clients.read_only = False
    if strict is not None:
        strict.install(run.clients)
    return run, apply_plan(run.plan, run.ctx, all_kinds(), parallelism=10)


def assert_done(results: list[Result]) -> None:
    failed = [(r.address, r.outcome.value, r.message) for r in results if r.outcome is not Outcome.DONE]
    assert failed == [], failed


def test_teardown_runs_in_aws_order_whatever_moto_allows(aws: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "order.yaml"
    manifest.write_text(MANIFEST)
    _, created = converge(manifest, aws, strict=StrictAws(aws))
    assert_done(created)
    ec2: Any = aws.client("ec2", REGION)
    stack = [{"Name": "tag:reconciler:stack", "Values": ["order"]}]
    nats = ec2.describe_nat_gateways(Filter=stack)["NatGateways"]
    endpoints = ec2.describe_vpc_endpoints(Filters=stack)["VpcEndpoints"]
    instances = [i for r in ec2.describe_instances(Filters=stack)["Reservations"] for i in r["Instances"]]
    tables = ec2.describe_route_tables(Filters=stack)["RouteTables"]
    vpcs = [v["VpcId"] for v in ec2.describe_vpcs(Filters=stack)["Vpcs"]]
    assert len(nats) == 2 and len(endpoints) == 2 and len(instances) == 1

    strict = StrictAws(aws)
    _, destroyed = converge(manifest, aws, destroy=True, strict=strict)
    assert_done(destroyed)
    assert strict.refused == [], "a delete was sent before what blocks it was gone"
    at = strict.position
    for nat in nats:
        gone = at("DeleteNatGateway", lambda b, n=nat: b["NatGatewayId"] == n["NatGatewayId"])
        allocation = nat["NatGatewayAddresses"][0]["AllocationId"]
        assert gone < at("ReleaseAddress", lambda b, a=allocation: b["AllocationId"] == a)
        assert gone < at("DeleteSubnet", lambda b, n=nat: b["SubnetId"] == n["SubnetId"])
        assert gone < at("DetachInternetGateway", lambda b, n=nat: b["VpcId"] == n["VpcId"])
    for endpoint in endpoints:
        gone = at("DeleteVpcEndpoints", lambda b, e=endpoint: b["VpcEndpointId.1"] == e["VpcEndpointId"])
        for subnet in endpoint["SubnetIds"]:
            assert gone < at("DeleteSubnet", lambda b, s=subnet: b["SubnetId"] == s)
        for group in endpoint["Groups"]:
            assert gone < at("DeleteSecurityGroup", lambda b, g=group: b["GroupId"] == g["GroupId"])
        for table in endpoint["RouteTableIds"]:
            assert gone < at("DeleteRouteTable", lambda b, t=table: b["RouteTableId"] == t)
    instance = instances[0]
    gone = at("TerminateInstances", lambda b: b["InstanceId.1"] == instance["InstanceId"])
    assert gone < at("DeleteSubnet", lambda b: b["SubnetId"] == instance["SubnetId"])
    assert gone < at("DeleteSecurityGroup", lambda b: b["GroupId"] == instance["SecurityGroups"][0]["GroupId"])
    assert gone < at("DetachInternetGateway", lambda b: b["VpcId"] == instance["VpcId"])
    for table in tables:
        gone = at("DeleteRouteTable", lambda b, t=table: b["RouteTableId"] == t["RouteTableId"])
        for assoc in table["Associations"]:
            assert gone < at("DeleteSubnet", lambda b, a=assoc: b["SubnetId"] == a["SubnetId"])
        assert gone < at("DeleteVpc", lambda b, t=table: b["VpcId"] == t["VpcId"])
    for vpc in vpcs:
        last = at("DeleteVpc", lambda b, v=vpc: b["VpcId"] == v)
        assert at("DetachInternetGateway", lambda b, v=vpc: b["VpcId"] == v) < last
        assert at("DeleteInternetGateway", lambda b: True) < len(strict.log)
    assert ec2.describe_vpcs(Filters=stack)["Vpcs"] == []
    assert ec2.describe_addresses()["Addresses"] == []


SMALL = """\
version: 1
stack: order
region: us-east-1
network:
  vpcs:
    - name: main
      cidr: 10.8.0.0/16
      subnets:
        - {name: pub, cidr: 10.8.0.0/24, az: us-east-1a, public: true}
        - {name: priv, cidr: 10.8.10.0/24, az: us-east-1a}
      nat: {mode: gateway}
      endpoints: [{service: sts}]
"""


def _subnet_id(aws: Moto, address: str) -> str:
    ec2: Any = aws.client("ec2", REGION)
    found = ec2.describe_subnets(Filters=[{"Name": "tag:reconciler:address", "Values": [address]}])["Subnets"]
    return str(found[0]["SubnetId"])


def test_dependency_violation_is_retried_until_it_clears(aws: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "small.yaml"
    manifest.write_text(SMALL)
    assert_done(converge(manifest, aws)[1])
    subnet = _subnet_id(aws, "vpc.main.subnet.priv")
    strict = StrictAws(aws)
    strict.inject[("DeleteSubnet", subnet)] = 2  # AWS releasing an interface slowly, say
    run, results = converge(manifest, aws, destroy=True, strict=strict)
    assert_done(results)
    assert [r for r in strict.refused if r[1] == subnet] == [("DeleteSubnet", subnet, "injected")] * 2
    assert ("ec2", "DeleteSubnet") in run.clients.calls
    assert sum(1 for op, body in strict.log if op == "DeleteSubnet" and body["SubnetId"] == subnet) == 1


def test_dependency_violation_past_the_deadline_names_the_network_interfaces(aws: Moto, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = tmp_path / "small.yaml"
    manifest.write_text(SMALL)
    assert_done(converge(manifest, aws)[1])
    subnet = _subnet_id(aws, "vpc.main.subnet.priv")
    ec2: Any = aws.client("ec2", REGION)
    eni = ec2.create_network_interface(SubnetId=subnet, Description="someone's lambda")["NetworkInterface"]
    strict = StrictAws(aws)
    strict.foreign_enis.add(eni["NetworkInterfaceId"])
    monkeypatch.setenv("RECONCILER_DEPENDENCY_TIMEOUT", "3")
    _, results = converge(manifest, aws, destroy=True, strict=strict)
    by_address = {r.address: r for r in results}
    failed = by_address["vpc.main.subnet.priv"]
    assert failed.outcome is Outcome.FAILED
    assert "still in use" in failed.message and eni["NetworkInterfaceId"] in failed.message
    assert "someone's lambda" in failed.message
    assert by_address["vpc.main"].outcome is Outcome.SKIPPED  # never deleted around what blocks it
    assert by_address["vpc.main.nat.pub"].outcome is Outcome.DONE
    assert ec2.describe_subnets(SubnetIds=[subnet])["Subnets"], "the blocked subnet is still there"


def test_subnet_replacement_moves_its_occupants_out_first(aws: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "small.yaml"
    manifest.write_text(SMALL)
    assert_done(converge(manifest, aws)[1])
    old_pub, old_priv = _subnet_id(aws, "vpc.main.subnet.pub"), _subnet_id(aws, "vpc.main.subnet.priv")
    manifest.write_text(SMALL.replace("10.8.0.0/24", "10.8.2.0/24").replace("10.8.10.0/24", "10.8.12.0/24"))
    strict = StrictAws(aws)
    run, results = converge(manifest, aws, strict=strict)
    assert {c.address: c.action.value for c in run.plan.pending} == {
        "vpc.main.subnet.pub": "replace", "vpc.main.subnet.priv": "replace", "vpc.main.nat.pub": "replace",
        "vpc.main.endpoint.sts": "replace", "vpc.main.route_table.public": "update",
        "vpc.main.route_table.private": "update"}
    assert_done(results)
    assert strict.refused == []
    at = strict.position
    assert at("DeleteNatGateway", lambda b: True) < at("DeleteSubnet", lambda b: b["SubnetId"] == old_pub)
    assert at("DeleteVpcEndpoints", lambda b: True) < at("DeleteSubnet", lambda b: b["SubnetId"] == old_priv)
    assert at("DeleteSubnet", lambda b: b["SubnetId"] == old_pub) < at(
        "CreateSubnet", lambda b: b["CidrBlock"] == "10.8.2.0/24") < at("CreateNatGateway", lambda b: True)
    new_priv = _subnet_id(aws, "vpc.main.subnet.priv")
    assert at("CreateVpcEndpoint", lambda b: True) > at("CreateSubnet", lambda b: b["CidrBlock"] == "10.8.12.0/24")
    assert at("AssociateRouteTable", lambda b: b["SubnetId"] == new_priv) > at(
        "CreateSubnet", lambda b: b["CidrBlock"] == "10.8.12.0/24")
    again = plan_run(manifest, Options(endpoint_url=aws.endpoint))
    assert again.plan.pending == ()
    assert FAKE_KEY  # credentials came from the fixture's environment, never from a file


def test_nat_mode_switch_and_vpc_replacement_keep_aws_order(aws: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "small.yaml"
    manifest.write_text(SMALL)
    assert_done(converge(manifest, aws)[1])
    ec2: Any = aws.client("ec2", REGION)
    before = ec2.describe_addresses()["Addresses"]
    # gateway -> instance: the Elastic IP (the egress address people allow-list) survives the switch
    manifest.write_text(SMALL.replace("mode: gateway", "mode: instance"))
    strict = StrictAws(aws)
    run, results = converge(manifest, aws, strict=strict)
    assert_done(results)
    assert strict.refused == []
    after = ec2.describe_addresses()["Addresses"]
    assert [a["AllocationId"] for a in after] == [a["AllocationId"] for a in before]
    assert after[0]["InstanceId"].startswith("i-")
    # a new VPC CIDR replaces the VPC and everything in it; the graph deletes the children first
    manifest.write_text(SMALL.replace("mode: gateway", "mode: instance").replace("10.8.", "10.18."))
    strict = StrictAws(aws)
    run, results = converge(manifest, aws, strict=strict)
    # everything in the VPC is replaced; the Elastic IP survives and only follows the new internet gateway
    assert {c.address: c.action.value for c in run.plan.pending if c.action.value != "replace"} == {
        "vpc.main.eip.pub": "update"}
    assert len(run.plan.pending) == len(run.plan.changes)
    assert_done(results)
    assert strict.refused == []
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:reconciler:stack", "Values": ["order"]}])["Vpcs"]
    assert [v["CidrBlock"] for v in vpcs] == ["10.18.0.0/16"]
    assert plan_run(manifest, Options(endpoint_url=aws.endpoint)).plan.pending == ()
