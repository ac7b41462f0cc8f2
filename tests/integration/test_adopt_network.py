"""Adopting a VPC made by hand, insides and all: the seed's network steps with boto3 against moto, then
`export --vpc` -> `validate` -> `plan --adopt` (only adoptions) -> `apply --adopt` -> `plan` (empty) ->
`drift` (in sync) -> `destroy` (everything, since it is the stack's now).

The hand-made network fits the derived topology exactly (no extra route): what does not fit is
test_export.py's business. Besides: the main route table, the default ACL and the default security
group are never adopted (nor deleted by destroy), and nothing outside the adopted VPC is matched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from reconciler.ownership import STACK_TAG
from tests.conftest import Moto

REGION = "ap-northeast-1"
STACK = "maestro"


def seed(moto: Moto) -> dict[str, str]:
    """The seed's VPC steps with the AWS CLI's calls; returns the ids by role."""
    ec2: Any = moto.client("ec2", REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": f"{STACK}-main"}])
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.10.0/24",
                                AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    ec2.create_tags(Resources=[public], Tags=[{"Key": "Name", "Value": "public-a"}])
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
    ec2.associate_route_table(RouteTableId=private_rt, SubnetId=private)
    sg = ec2.create_security_group(GroupName="app", Description="app servers", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}])
    # the seed omits the type (AWS defaults to Gateway); moto leaves it unset then, and answers the later
    # DeleteVpcEndpoints with HTTP 500 (`None.lower()`), so destroy could not finish: say Gateway, as AWS would
    s3 = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3", VpcEndpointType="Gateway",
                                 RouteTableIds=[private_rt])["VpcEndpoint"]["VpcEndpointId"]
    ecr = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.ecr.api",
                                  VpcEndpointType="Interface", SubnetIds=[private], SecurityGroupIds=[sg],
                                  PrivateDnsEnabled=True)["VpcEndpoint"]["VpcEndpointId"]
    # a network ACL on the private subnet (moved off the default ACL), HTTPS in from the VPC
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    ec2.create_tags(Resources=[acl], Tags=[{"Key": "Name", "Value": "private"}])
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Protocol="6", RuleAction="allow", Egress=False,
                                 CidrBlock="10.0.0.0/16", PortRange={"From": 443, "To": 443})
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Protocol="-1", RuleAction="allow", Egress=True,
                                 CidrBlock="0.0.0.0/0")
    default_acl = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                     {"Name": "default", "Values": ["true"]}])["NetworkAcls"][0]
    (association,) = [a for a in default_acl["Associations"] if a["SubnetId"] == private]
    ec2.replace_network_acl_association(AssociationId=association["NetworkAclAssociationId"], NetworkAclId=acl)
    return {"vpc": vpc, "public": public, "private": private, "igw": igw, "public_rt": public_rt,
            "private_rt": private_rt, "eip": eip, "nat": nat, "sg": sg, "s3": s3, "ecr": ecr, "acl": acl}


def lookalike(moto: Moto) -> dict[str, str]:
    """Another hand-made VPC with the same insides (same CIDRs, group name, services): never to be matched."""
    ec2: Any = moto.client("ec2", REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    sg = ec2.create_security_group(GroupName="app", Description="app servers", VpcId=vpc)["GroupId"]
    return {"vpc": vpc, "subnet": subnet, "igw": igw, "sg": sg}


def changes(plan_json: str) -> dict[str, dict[str, Any]]:
    return {c["address"]: c for c in json.loads(plan_json)["changes"]}


def test_a_hand_made_vpc_is_adopted_whole_applies_to_an_empty_plan_and_destroys(cli: Any, moto: Moto,
                                                                                tmp_path: Path) -> None:
    ids = seed(moto)
    other = lookalike(moto)
    out = tmp_path / "net.yaml"
    exported = cli("export", "--region", REGION, "--stack", STACK, "--vpc", ids["vpc"], "--out", str(out))
    assert exported.code == 0, exported.all
    assert cli("validate", str(out)).code == 0

    # without --adopt: every hand-made resource is a blocked conflict, never a create
    blocked = cli("plan", str(out), "--format", "json")
    found = changes(blocked.out)
    assert all(c.get("blocked") and "without the stack tag" in c["reason"] for c in found.values()), found

    plan = cli("plan", str(out), "--adopt", "--format", "json")
    assert plan.code == 0, plan.all
    found = changes(plan.out)
    want = {
        "vpc.main": ids["vpc"], "vpc.main.subnet.public-a": ids["public"], "vpc.main.subnet.private-a": ids["private"],
        "vpc.main.igw": ids["igw"], "vpc.main.eip.public-a": ids["eip"], "vpc.main.nat.public-a": ids["nat"],
        "vpc.main.route_table.public": ids["public_rt"], "vpc.main.route_table.private": ids["private_rt"],
        "vpc.main.sg.app": ids["sg"], "vpc.main.endpoint.s3": ids["s3"], "vpc.main.endpoint.ecr.api": ids["ecr"],
        "vpc.main.nacl.private": ids["acl"],
    }
    assert set(found) == set(want), sorted(found)
    for address, change in found.items():
        # an adoption (its own action, or today's update "adopt: ...") of exactly the hand-made resource
        assert change["action"] in ("adopt", "update"), change
        assert change["action"] == "adopt" or change["reason"].startswith("adopt"), change
        assert change["id"] == want[address], change
        assert not change.get("blocked"), change
        # only tags change: every reference (vpc, subnet, eip, route tables, groups) normalised to an address
        assert {d["path"].split(".")[0] for d in change["diff"]} <= {"tags"}, change

    applied = cli("apply", str(out), "--adopt", "--auto-approve")
    assert applied.code == 0, applied.all
    again = cli("plan", str(out), "--format", "json", "--detailed-exitcode")
    assert again.code == 0, again.all
    assert {c["action"] for c in changes(again.out).values()} == {"noop"}, again.out
    drift = cli("drift", str(out))
    assert drift.code == 0, drift.all

    ec2: Any = moto.client("ec2", REGION)
    tagged = ec2.describe_tags(Filters=[{"Name": "key", "Values": [STACK_TAG]}])["Tags"]
    assert {t["ResourceId"] for t in tagged} == set(want.values())  # the main table, default ACL/SG: untouched
    assert not set(other.values()) & {t["ResourceId"] for t in tagged}

    gone = cli("destroy", str(out), "--auto-approve")
    assert gone.code == 0, gone.all
    left = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    assert ids["vpc"] not in left and other["vpc"] in left
    assert {s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]} >= {other["subnet"]}
    assert other["sg"] in {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}


def test_another_stacks_group_inside_is_never_adopted_and_a_subnet_added_by_hand_is_with_adopt(
        cli: Any, moto: Moto, tmp_path: Path) -> None:
    ids = seed(moto)
    out = tmp_path / "net.yaml"
    assert cli("export", "--region", REGION, "--stack", STACK, "--vpc", ids["vpc"], "--out", str(out)).code == 0
    ec2: Any = moto.client("ec2", REGION)
    ec2.create_tags(Resources=[ids["sg"]], Tags=[{"Key": STACK_TAG, "Value": "other"}])
    plan = cli("plan", str(out), "--adopt", "--format", "json")
    found = changes(plan.out)
    assert "belongs to stack other" in found["vpc.main.sg.app"]["blocked"], found["vpc.main.sg.app"]
    assert not found["vpc.main.subnet.private-a"].get("blocked")
    refused = cli("apply", str(out), "--adopt", "--auto-approve")
    assert refused.code != 0
    assert ids["sg"] not in {t["ResourceId"] for t in ec2.describe_tags(
        Filters=[{"Name": "value", "Values": [STACK]}])["Tags"]}  # apply refused the whole plan: nothing tagged

    ec2.delete_tags(Resources=[ids["sg"]], Tags=[{"Key": STACK_TAG}])
    assert cli("apply", str(out), "--adopt", "--auto-approve").code == 0
    # the VPC is the stack's now; a subnet made by hand in it, then declared, is looked for only with --adopt
    # (without it the plan says create, and AWS would refuse the overlapping CIDR at apply)
    extra = ec2.create_subnet(VpcId=ids["vpc"], CidrBlock="10.0.20.0/24",
                              AvailabilityZone=f"{REGION}c")["Subnet"]["SubnetId"]
    data = yaml.safe_load(out.read_text())
    data["network"]["vpcs"][0]["subnets"].append({"name": "private-c", "cidr": "10.0.20.0/24", "az": f"{REGION}c"})
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    address = "vpc.main.subnet.private-c"
    plain = changes(cli("plan", str(out), "--format", "json").out)[address]
    assert plain["action"] == "create", plain
    adopted = changes(cli("plan", str(out), "--adopt", "--format", "json").out)
    assert adopted[address]["id"] == extra and not adopted[address].get("blocked"), adopted[address]
    assert adopted[address]["action"] in ("adopt", "update")
    assert cli("apply", str(out), "--adopt", "--auto-approve").code == 0
    assert {c["action"] for c in changes(cli("plan", str(out), "--format", "json").out).values()} == {"noop"}
