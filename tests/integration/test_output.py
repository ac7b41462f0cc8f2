"""`reconcile output` through the real CLI against moto: the ids and ARNs it prints are the live ones."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from tests.conftest import Moto, run_cli
from tests.faults.plugin import Faulty
from tests.faults.proxy import Fault, rule

MANIFEST = """\
version: 1
stack: outs
region: us-east-1
iam:
  groups:
    - name: pushers
  users:
    - name: app-ci
      groups: [pushers]
      access_keys:
        count: 1
        store: {ssm: /outs/app-ci/key}
ecr:
  repositories:
    - name: app
network:
  vpcs:
    - name: main
      cidr: 10.1.0.0/16
      subnets:
        - {name: public-a, cidr: 10.1.0.0/24, az: us-east-1a, public: true}
        - {name: private-a, cidr: 10.1.10.0/24, az: us-east-1a}
      internet_gateway: true
      nat: {mode: gateway, placement: single, subnet: public-a}
      endpoints:
        - service: s3
      security_groups:
        - name: app
          ingress: [{protocol: tcp, ports: "8080", from: "10.1.0.0/16"}]
"""


def tag(item: dict[str, Any], key: str) -> str | None:
    return {t["Key"]: t["Value"] for t in item.get("Tags") or []}.get(key)


def by_address(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(tag(i, "reconciler:address")): i for i in items if tag(i, "reconciler:stack") == "outs"}


def test_output_json_is_what_boto3_reads_after_an_apply(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "outs.yaml"
    manifest.write_text(MANIFEST)

    before = cli("output", str(manifest), "--format", "json")
    assert before.code == 0, before.all
    nothing = json.loads(before.out)
    assert nothing["resources"]["vpc.main"] is None and nothing["resources"]["ecr.repository.app"] is None
    assert "(not created)" in cli("output", str(manifest)).out
    assert cli("output", str(manifest), "--format", "env").out == ""

    applied = cli("apply", str(manifest), "--auto-approve")
    assert applied.code == 0, applied.all

    result = cli("output", str(manifest), "--format", "json")
    assert result.code == 0, result.all
    doc = json.loads(result.out)
    assert (doc["stack"], doc["region"], doc["account"]) == ("outs", "us-east-1", "123456789012")
    out = {address: (entry or {}).get("outputs") for address, entry in doc["resources"].items()}
    assert all(out.values()), [a for a, v in out.items() if not v]

    ec2: Any = moto.client("ec2")
    vpc = by_address(ec2.describe_vpcs()["Vpcs"])["vpc.main"]
    assert out["vpc.main"]["id"] == vpc["VpcId"]
    assert out["vpc.main"]["arn"] == f"arn:aws:ec2:us-east-1:123456789012:vpc/{vpc['VpcId']}"
    subnets = by_address(ec2.describe_subnets()["Subnets"])
    for name in ("public-a", "private-a"):
        address = f"vpc.main.subnet.{name}"
        assert out[address]["id"] == subnets[address]["SubnetId"]
        if subnets[address].get("SubnetArn"):
            assert out[address]["arn"] == subnets[address]["SubnetArn"]
    groups = by_address(ec2.describe_security_groups()["SecurityGroups"])
    assert out["vpc.main.sg.app"]["id"] == groups["vpc.main.sg.app"]["GroupId"]
    nats = [n for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] == "available"]
    assert len(nats) == 1
    assert out["vpc.main.nat.public-a"]["id"] == nats[0]["NatGatewayId"]
    assert out["vpc.main.nat.public-a"]["public_ip"] == nats[0]["NatGatewayAddresses"][0]["PublicIp"]
    eip = ec2.describe_addresses()["Addresses"][0]
    eip_arn = f"arn:aws:ec2:us-east-1:123456789012:elastic-ip/{eip['AllocationId']}"
    assert out["vpc.main.eip.public-a"] == {"id": eip["AllocationId"], "public_ip": eip["PublicIp"], "arn": eip_arn}

    endpoints = [e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["VpcId"] == vpc["VpcId"]]
    endpoint = next(a for a in out if ".endpoint." in a)
    assert out[endpoint]["id"] == endpoints[0]["VpcEndpointId"]
    assert out[endpoint]["service"] == "com.amazonaws.us-east-1.s3"

    iam: Any = moto.client("iam")
    user = iam.get_user(UserName="app-ci")["User"]
    assert out["iam.user.app-ci"]["arn"] == user["Arn"] and out["iam.user.app-ci"]["id"] == user["UserId"]
    assert out["iam.group.pushers"]["arn"] == iam.get_group(GroupName="pushers")["Group"]["Arn"]
    key_id = iam.list_access_keys(UserName="app-ci")["AccessKeyMetadata"][0]["AccessKeyId"]
    keys = out["iam.user.app-ci.access_keys"]
    assert keys["store"] == "/outs/app-ci/key" and keys["store_type"] == "ssm" and keys["access_key_id"] == key_id

    ecr: Any = moto.client("ecr")
    repo = ecr.describe_repositories(repositoryNames=["app"])["repositories"][0]
    assert out["ecr.repository.app"]["arn"] == repo["repositoryArn"]
    assert out["ecr.repository.app"]["uri"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"

    # never a secret: the stored secret access key appears in no format
    ssm: Any = moto.client("ssm")
    secret = json.loads(ssm.get_parameter(Name="/outs/app-ci/key", WithDecryption=True)["Parameter"]["Value"])
    env = cli("output", str(manifest), "--format", "env")
    text = cli("output", str(manifest))
    for shown in (result, env, text):
        assert shown.code == 0, shown.all
        assert secret["SecretAccessKey"] not in shown.all

    assigned = dict(line.split("=", 1) for line in env.out.splitlines() if not line.startswith("#"))
    assert shlex.split(assigned["RECONCILE_VPC_MAIN_ID"]) == [vpc["VpcId"]]
    assert shlex.split(assigned["RECONCILE_ECR_REPOSITORY_APP_URI"]) == [out["ecr.repository.app"]["uri"]]
    assert shlex.split(assigned["RECONCILE_IAM_USER_APP_CI_ACCESS_KEYS_STORE"]) == ["/outs/app-ci/key"]
    assert "vpc.main.subnet.public-a\n" in text.out and subnets["vpc.main.subnet.public-a"]["SubnetId"] in text.out


def test_a_denied_read_is_exit_1_as_for_plan(moto: Moto, faulty: Faulty, tmp_path: Path) -> None:
    manifest = tmp_path / "outs.yaml"
    manifest.write_text(MANIFEST)
    faulty.add(rule(Fault.DENIED, "DescribeRepositories"))
    result = run_cli(["output", str(manifest), "--format", "json"], faulty.env())
    assert result.code == 1, result.all
    assert result.out == "" and "Traceback" not in result.all
    assert faulty.faults()["DescribeRepositories:denied"] >= 1
