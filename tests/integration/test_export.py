"""`reconcile export` against moto: the seed's manual steps by hand with boto3, then export -> validate ->
plan --adopt -> apply --adopt -> plan (tests/integration/conftest.py starts the moto server).

The network half checks export and validate, and that plan --adopt adopts the VPC and everything in
it (found by identity inside the adopted VPC) and creates, deletes and replaces nothing; this seed has
a route that does not fit the topology, so it stops at the plan: test_adopt_network.py applies a
network that fits, to an empty plan, drift and destroy. The IAM and ECR half goes the whole way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import Moto

REGION = "ap-northeast-1"
STACK = "maestro"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
LIFECYCLE = {"rules": [
    {"rulePriority": 1, "description": "expire untagged images after 7 days",
     "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
     "action": {"type": "expire"}},
    {"rulePriority": 2, "description": "keep the last 30 images",
     "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30},
     "action": {"type": "expire"}}]}
LONG_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": f"Read{n}", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::bucket-{n}/*"}
    for n in range(4)]}


def seed_iam_ecr(moto: Moto) -> tuple[str, str]:
    """The seed's IAM and ECR steps; returns the hand-made access key's id and secret."""
    iam: Any = moto.client("iam", REGION)
    iam.create_user(UserName="my-app-developer")
    iam.attach_user_policy(UserName="my-app-developer", PolicyArn=ADMIN)
    iam.put_user_policy(UserName="my-app-developer", PolicyName="read-buckets", PolicyDocument=json.dumps(LONG_POLICY))
    key = iam.create_access_key(UserName="my-app-developer")["AccessKey"]
    iam.create_group(GroupName="ecr-pushers")
    iam.add_user_to_group(GroupName="ecr-pushers", UserName="my-app-developer")
    ecr: Any = moto.client("ecr", REGION)
    ecr.create_repository(repositoryName="maestro-java-backend")
    ecr.put_lifecycle_policy(repositoryName="maestro-java-backend", lifecyclePolicyText=json.dumps(LIFECYCLE))
    ecr.create_repository(repositoryName="python-nlp-service", imageTagMutability="IMMUTABLE",
                          imageScanningConfiguration={"scanOnPush": True})
    ecr.put_lifecycle_policy(repositoryName="python-nlp-service", lifecyclePolicyText=json.dumps(
        {"rules": [{**LIFECYCLE["rules"][0], "description": "hand-written"}]}))
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


def seed_network(moto: Moto) -> str:
    """The seed's VPC steps with the AWS CLI's calls; returns the VPC id."""
    ec2: Any = moto.client("ec2", REGION)

    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": f"{STACK}-main"}])
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.10.0/24",
                                AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    ec2.create_tags(Resources=[public], Tags=[{"Key": "Name", "Value": f"{STACK}-main-public-a"}])
    ec2.create_tags(Resources=[private], Tags=[{"Key": "Name", "Value": "private-a"}])
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=public_rt, SubnetId=public)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip)["NatGateway"]["NatGatewayId"]
    private_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=private_rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    ec2.create_route(RouteTableId=private_rt, DestinationCidrBlock="172.16.0.0/12", NatGatewayId=nat)
    ec2.associate_route_table(RouteTableId=private_rt, SubnetId=private)
    sg = ec2.create_security_group(GroupName="app", Description="app servers", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}])
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3", RouteTableIds=[private_rt])
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.ecr.api", VpcEndpointType="Interface",
                            SubnetIds=[private], SecurityGroupIds=[sg], PrivateDnsEnabled=True)
    return str(vpc)


def actions(plan_json: str) -> dict[str, str]:
    return {c["address"]: c["action"] for c in json.loads(plan_json)["changes"]}


def test_iam_and_ecr_export_validates_and_adopts_without_recreating(cli: Any, moto: Moto, tmp_path: Path) -> None:
    key_id, secret = seed_iam_ecr(moto)
    out = tmp_path / "manifest.yaml"
    exported = cli("export", "--region", REGION, "--stack", STACK, "--user", "my-app-developer",
                   "--repository", "maestro-java-backend", "--repository", "python-nlp-service", "--out", str(out))
    assert exported.code == 0, exported.all
    # the export never writes the hand-made key's id (plans show key ids; the export has no use for them)
    assert key_id not in exported.all and key_id not in out.read_text()
    assert secret not in exported.all + out.read_text()
    text = out.read_text()
    data = yaml.safe_load(text)
    user = data["iam"]["users"][0]
    assert user["groups"] == ["ecr-pushers"] and user["managed_policies"] == [ADMIN]
    assert user["inline_policies"]["read-buckets"] == {"file": "policies/my-app-developer-read-buckets.json"}
    assert json.loads((tmp_path / "policies" / "my-app-developer-read-buckets.json").read_text()) == LONG_POLICY
    assert user["access_keys"]["store"] == {"secretsmanager": f"{STACK}/my-app-developer/access-key"}
    assert "RC-IAM-001" in data["waivers"] and "# review: RC-IAM-001" in text
    repos = {r["name"]: r for r in data["ecr"]["repositories"]}
    assert repos["maestro-java-backend"]["lifecycle"] == {"untagged_expire_days": 7, "keep_last": 30}
    assert repos["maestro-java-backend"]["tag_mutability"] == "mutable"
    assert repos["python-nlp-service"]["lifecycle"]["rules"][0]["description"] == "hand-written"
    assert "tag_mutability" not in repos["python-nlp-service"]

    valid = cli("validate", str(out))
    assert valid.code == 0, valid.all
    plan = cli("plan", str(out), "--adopt", "--format", "json")
    assert plan.code == 0, plan.all
    found = actions(plan.out)
    creates = sorted(a for a, act in found.items() if act == "create")
    # nothing is created but the new key into the store, which the access-key kind plans as part of the key
    # set's adoption (an update today; the dated retirement of the hand-made key is its own part of issue 12)
    assert set(creates) <= {"iam.user.my-app-developer.access_keys"}, found
    assert found["iam.user.my-app-developer.access_keys"] in ("create", "update", "adopt"), found
    assert {act for a, act in found.items() if not a.endswith(".access_keys")} <= {"update", "adopt"}, found
    assert not [a for a, act in found.items() if act in ("replace", "delete")], found

    applied = cli("apply", str(out), "--adopt", "--auto-approve")
    assert applied.code == 0, applied.all
    assert secret not in applied.all
    again = cli("plan", str(out), "--format", "json")
    assert again.code == 0, again.all
    pending = {a: act for a, act in actions(again.out).items() if act != "noop"}
    iam: Any = moto.client("iam", REGION)
    if iam.get_group(GroupName="ecr-pushers")["Group"]["Path"] == "/":
        # moto's UpdateGroup ignores NewPath (AWS moves the group under /reconciler/maestro/, which is how a
        # group is owned: groups take no tags), so against moto the group still reads as not adopted
        pending.pop("iam.group.ecr-pushers", None)
    assert set(pending) <= {"iam.user.my-app-developer.access_keys"}, pending


def test_network_export_maps_the_topology_says_what_does_not_fit_and_validates(cli: Any, moto: Moto,
                                                                               tmp_path: Path) -> None:
    vpc = seed_network(moto)
    out = tmp_path / "net.yaml"
    exported = cli("export", "--region", REGION, "--stack", STACK, "--vpc", vpc, "--out", str(out))
    assert exported.code == 0, exported.all
    text = out.read_text()
    data = yaml.safe_load(text)
    (entry,) = data["network"]["vpcs"]
    assert entry["name"] == "main" and entry["cidr"] == "10.0.0.0/16"
    subnets = {s["name"]: s for s in entry["subnets"]}
    assert subnets["public-a"]["public"] is True and "public" not in subnets["private-a"]
    assert entry["nat"] == {"mode": "gateway", "placement": "single", "subnet": "public-a"}
    endpoints = {e["service"]: e for e in entry["endpoints"]}
    assert set(endpoints) == {"s3", "ecr.api"} and endpoints["ecr.api"]["security_groups"] == ["app"]
    (group,) = entry["security_groups"]
    assert group["name"] == "app" and group["description"] == "app servers"
    assert {"protocol": "tcp", "ports": "22", "from": "0.0.0.0/0"} in group["ingress"]
    # the extra route is said, in the YAML and on stderr
    assert "172.16.0.0/12" in text and "172.16.0.0/12" in exported.err
    assert "RC-NET-001" in data["waivers"] and "# review: RC-NET-001" in text

    valid = cli("validate", str(out))
    assert valid.code == 0, valid.all
    plan = cli("plan", str(out), "--adopt", "--format", "json")
    assert plan.code == 0, plan.all
    found = actions(plan.out)
    assert found["vpc.main"] in ("update", "adopt"), found
    assert not [a for a, act in found.items() if act in ("replace", "delete")], found
    # the insides are adopted too (kinds.ec2._read `adoptable`): nothing is created
    assert set(found.values()) <= {"update", "adopt"}, found
    assert len(found) == 11, sorted(found)
    # the one change beyond tags: the route the export said does not fit the topology (the manifest
    # describes the derived topology, so adopting it removes that route; the export's comment and
    # stderr warning are where the reviewer learns it, and the plan's diff shows it)
    untagged = {c["address"]: {d["path"] for d in c["diff"] if not d["path"].startswith("tags.")}
                for c in json.loads(plan.out)["changes"]}
    assert {a: p for a, p in untagged.items() if p} == {"vpc.main.route_table.private": {"routes.172.16.0.0/12"}}


def test_unknown_names_are_one_line_exit_1_and_all_tagged_finds_what_carries_the_tag(cli: Any, moto: Moto,
                                                                                    tmp_path: Path) -> None:
    missing = cli("export", "--region", REGION, "--stack", STACK, "--vpc", "vpc-0123456789abcdef0")
    assert missing.code == 1 and missing.err.strip().count("\n") == 0 and "vpc-0123456789abcdef0" in missing.err
    nobody = cli("export", "--region", REGION, "--stack", STACK, "--user", "nobody")
    assert nobody.code == 1 and "nobody" in nobody.err and "Traceback" not in nobody.err
    bad = cli("export", "--region", REGION, "--stack", STACK, "--all-tagged", "novalue")
    assert bad.code == 3
    ecr: Any = moto.client("ecr", REGION)
    ecr.create_repository(repositoryName="tagged-repo", tags=[{"Key": "team", "Value": "x"}])
    ecr.create_repository(repositoryName="other-repo")
    tagged = cli("export", "--region", REGION, "--stack", STACK, "--all-tagged", "team=x", "-v")
    assert tagged.code == 0, tagged.all
    assert "AWS calls, all reads" in tagged.err  # the read-only guard refuses anything else before it is sent
    names = [r["name"] for r in yaml.safe_load(tagged.out)["ecr"]["repositories"]]
    assert names == ["tagged-repo"]
