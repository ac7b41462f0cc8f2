"""`reconcile export`'s pure mapping, on literal describe-call results (no AWS, no moto)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from reconciler.export.ecr import lifecycle_spelling, repository_entry
from reconciler.export.iam import group_entry, user_entry
from reconciler.export.model import Export, manifest_name
from reconciler.export.network import Live, vpc_entry
from reconciler.export.writer import to_yaml
from reconciler.manifest.loader import load_yaml
from reconciler.manifest.sections.ecr import lifecycle_rules

REGION = "ap-northeast-1"


def export() -> Export:
    return Export("maestro", REGION)


# -- writer --------------------------------------------------------------------

def test_the_yaml_reads_back_as_the_same_data_with_the_strict_loader() -> None:
    data = {"version": 1, "stack": "maestro", "tricky": ["no", "yes", "1.10", "0755", "2012-10-17", "on", "null",
                                                        "a: b", "#x", "", "10.0.0.0/16", "*", "it's"],
            "nested": {"list": [{"a": 1, "b": [1, 2]}, {"c": {"d": "e"}}], "empty": {}, "none": []},
            "Version": "2012-10-17"}
    text = to_yaml(data, {("nested", "list", 1): ["a comment", "two lines"], ("stack",): ["the stack"]},
                   header=["top"])
    assert yaml.safe_load(text) == data
    loaded, _, problems = load_yaml(text.encode(), "m.yaml")
    assert problems == [] and loaded == data
    assert "# top" in text and "  # a comment" in text and "# the stack\nstack: maestro" in text


def test_names_drop_the_stack_prefix_and_refuse_what_is_no_manifest_name() -> None:
    assert manifest_name("maestro-main-public-a", ("maestro-main-",)) == "public-a"
    assert manifest_name("My Subnet_1") == "my-subnet-1"
    assert manifest_name("123") is None and manifest_name("") is None


# -- ECR -----------------------------------------------------------------------

def test_lifecycle_is_spelled_as_the_manifest_when_its_expansion_is_exactly_the_live_rules() -> None:
    assert lifecycle_spelling(lifecycle_rules(None)) is None  # the default: no `lifecycle` at all
    both = {"untagged_expire_days": 3, "keep_last": 30}
    assert lifecycle_spelling(lifecycle_rules(both)) == both
    assert lifecycle_spelling(lifecycle_rules({"keep_last": 5})) == {"keep_last": 5}
    assert lifecycle_spelling([]) == {}  # none live: `{}`, since leaving it out would add the default rule
    hand = [{**lifecycle_rules(None)[0], "description": "mine"}]
    assert lifecycle_spelling(hand) == {"rules": hand}


def test_a_repository_writes_only_what_differs_from_the_defaults() -> None:
    x = export()
    repo = {"repositoryName": "app", "imageTagMutability": "MUTABLE",
            "imageScanningConfiguration": {"scanOnPush": False},
            "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "arn:aws:kms:ap-northeast-1:1:key/k"}}
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]}
    entry = repository_entry(x, repo, [], policy, {"team": "a", "aws:x": "y", "Name": "n"})
    assert entry == {"name": "app", "tag_mutability": "mutable", "scan_on_push": False,
                     "encryption": {"type": "KMS", "kms_key": "arn:aws:kms:ap-northeast-1:1:key/k"},
                     "lifecycle": {}, "policy": policy, "tags": {"team": "a"}}
    plain = repository_entry(x, {"repositoryName": "b", "imageTagMutability": "IMMUTABLE",
                                 "imageScanningConfiguration": {"scanOnPush": True}}, lifecycle_rules(None), None, {})
    assert plain == {"name": "b"}


# -- IAM -----------------------------------------------------------------------

LONG = {"Version": "2012-10-17", "Statement": [{"Sid": f"S{n}", "Effect": "Allow", "Action": "s3:GetObject",
                                                "Resource": f"arn:aws:s3:::b{n}/*"} for n in range(4)]}
SHORT = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity",
                                                 "Resource": "*"}]}


def test_a_user_keeps_its_policies_long_ones_in_files_and_gets_a_store_for_its_hand_made_key() -> None:
    x = export()
    detail: dict[str, Any] = {
        "UserName": "dev", "Path": "/", "GroupList": ["b", "a"],
        "AttachedManagedPolicies": [{"PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}],
        "UserPolicyList": [{"PolicyName": "long", "PolicyDocument": json.dumps(LONG)},
                           {"PolicyName": "short", "PolicyDocument": SHORT}],
        "Tags": [{"Key": "team", "Value": "x"}]}
    entry = user_entry(x, detail, [{"Status": "Active"}], 0)
    assert entry == {"name": "dev", "groups": ["a", "b"],
                     "managed_policies": ["arn:aws:iam::aws:policy/AdministratorAccess"],
                     "inline_policies": {"long": {"file": "policies/dev-long.json"}, "short": SHORT},
                     "tags": {"team": "x"},
                     "access_keys": {"count": 1, "store": {"secretsmanager": "maestro/dev/access-key"}}}
    assert json.loads(x.files["policies/dev-long.json"]) == LONG
    assert any("made by hand" in w for w in x.warnings)
    assert ("iam", "users", 0, "access_keys") in x.comments


def test_a_user_without_keys_declares_none_and_stdout_export_keeps_documents_inline() -> None:
    x = Export("maestro", REGION, policy_files=False)
    entry = user_entry(x, {"UserName": "ci", "Path": "/ci/", "UserPolicyList": [
        {"PolicyName": "long", "PolicyDocument": LONG}]}, [], 0)
    assert entry == {"name": "ci", "path": "/ci/", "inline_policies": {"long": LONG}} and x.files == {}
    assert group_entry(x, {"GroupName": "g", "AttachedManagedPolicies": [{"PolicyArn": "arn:aws:iam::aws:policy/R"}]}) \
        == {"name": "g", "managed_policies": ["arn:aws:iam::aws:policy/R"]}


# -- network -------------------------------------------------------------------

def _name(value: str) -> list[dict[str, str]]:
    return [{"Key": "Name", "Value": value}]


def seed_like(**extra: Any) -> Live:
    """A VPC as the seed makes it: a public and a private subnet, IGW, one NAT, two tables, two endpoints, a group."""
    live = Live({"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16", "Tags": _name("maestro-main")},
                {"hostnames": True, "support": True})
    live.subnets = [
        {"SubnetId": "subnet-pub", "CidrBlock": "10.0.0.0/24", "AvailabilityZone": f"{REGION}a",
         "Tags": _name("maestro-main-public-a")},
        {"SubnetId": "subnet-priv", "CidrBlock": "10.0.10.0/24", "AvailabilityZone": f"{REGION}a"},
    ]
    live.internet_gateways = [{"InternetGatewayId": "igw-1"}]
    live.nat_gateways = [{"NatGatewayId": "nat-1", "SubnetId": "subnet-pub", "State": "available"}]
    local = {"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "Origin": "CreateRouteTable"}
    live.route_tables = [
        {"RouteTableId": "rtb-main", "Associations": [{"Main": True}], "Routes": [local]},
        {"RouteTableId": "rtb-pub", "Associations": [{"SubnetId": "subnet-pub"}], "Routes": [
            local, {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "Origin": "CreateRoute"}]},
        {"RouteTableId": "rtb-priv", "Associations": [{"SubnetId": "subnet-priv"}], "Routes": [
            local, {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1", "Origin": "CreateRoute"},
            {"DestinationPrefixListId": "pl-s3", "GatewayId": "vpce-s3", "Origin": "CreateRoute"}]},
    ]
    live.security_groups = [
        {"GroupId": "sg-default", "GroupName": "default", "Description": "default VPC security group"},
        {"GroupId": "sg-app", "GroupName": "app", "Description": "app servers",
         "IpPermissions": [
             {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
             {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
              "UserIdGroupPairs": [{"GroupId": "sg-app", "Description": "itself"}]}],
         "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]},
    ]
    live.endpoints = [
        {"ServiceName": f"com.amazonaws.{REGION}.s3", "VpcEndpointType": "Gateway", "RouteTableIds": ["rtb-priv"],
         "PolicyDocument": json.dumps({"Version": "2008-10-17", "Statement": [
             {"Action": "*", "Effect": "Allow", "Principal": "*", "Resource": "*"}]})},
        {"ServiceName": f"com.amazonaws.{REGION}.ecr.api", "VpcEndpointType": "Interface",
         "SubnetIds": ["subnet-priv"], "Groups": [{"GroupId": "sg-app"}], "PrivateDnsEnabled": True},
    ]
    for key, value in extra.items():
        setattr(live, key, value)
    return live


def test_the_seed_network_maps_onto_the_derived_topology_without_a_single_note() -> None:
    x = export()
    entry = vpc_entry(x, seed_like())
    assert entry == {
        "name": "main", "cidr": "10.0.0.0/16",
        "subnets": [{"name": "public-a", "cidr": "10.0.0.0/24", "az": f"{REGION}a", "public": True},
                    {"name": "private-a", "cidr": "10.0.10.0/24", "az": f"{REGION}a"}],
        "nat": {"mode": "gateway", "placement": "single", "subnet": "public-a"},
        "endpoints": [{"service": "ecr.api", "security_groups": ["app"]}, {"service": "s3"}],
        "security_groups": [{"name": "app", "description": "app servers", "ingress": [
            {"protocol": "tcp", "ports": "22", "from": "0.0.0.0/0"},
            {"protocol": "tcp", "ports": "8080", "from": "app", "description": "itself"}]}],
    }
    assert x.warnings == []
    assert any("no Name tag" in c for c in x.comments[("network", "vpcs", 0, "subnets", 1)])


def test_what_the_topology_would_not_make_is_a_comment_and_a_warning() -> None:
    live = seed_like()
    live.route_tables[2]["Routes"].append({"DestinationCidrBlock": "172.16.0.0/12",
                                           "VpcPeeringConnectionId": "pcx-1", "Origin": "CreateRoute"})
    live.subnets.append({"SubnetId": "subnet-orphan", "CidrBlock": "10.0.20.0/24", "AvailabilityZone": f"{REGION}c"})
    live.vpc["Tags"] = _name("hand-made")
    x = export()
    entry = vpc_entry(x, live)
    text = "\n".join(x.warnings)
    assert "172.16.0.0/12 -> pcx-1" in text
    assert "subnet-orphan" in text and "main route table" in text
    assert "Name tag 'hand-made'" in text and entry["name"] == "hand-made"
    for warning in x.warnings:  # every warning is also in the YAML, at its place
        assert any(warning in c for cs in x.comments.values() for c in cs)
    yaml_text = to_yaml({"network": {"vpcs": [entry]}}, x.comments)
    assert "# vpc hand-made: route table rtb-priv has a route" in yaml_text


def test_a_nat_per_az_and_a_second_private_table_in_one_az_are_said() -> None:
    live = seed_like()
    live.subnets += [
        {"SubnetId": "subnet-pub-c", "CidrBlock": "10.0.1.0/24", "AvailabilityZone": f"{REGION}c",
         "Tags": _name("public-c")},
        {"SubnetId": "subnet-priv-c", "CidrBlock": "10.0.11.0/24", "AvailabilityZone": f"{REGION}c"},
        {"SubnetId": "subnet-priv-c2", "CidrBlock": "10.0.12.0/24", "AvailabilityZone": f"{REGION}c"},
    ]
    live.nat_gateways.append({"NatGatewayId": "nat-2", "SubnetId": "subnet-pub-c", "State": "available"})
    live.route_tables[1]["Associations"].append({"SubnetId": "subnet-pub-c"})
    local = live.route_tables[0]["Routes"][0]
    for rtb, subnet in (("rtb-c", "subnet-priv-c"), ("rtb-c2", "subnet-priv-c2")):
        live.route_tables.append({"RouteTableId": rtb, "Associations": [{"SubnetId": subnet}], "Routes": [
            local, {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-2", "Origin": "CreateRoute"}]})
    x = export()
    entry = vpc_entry(x, live)
    assert entry["nat"] == {"mode": "gateway", "placement": "per_az"}
    assert [s["name"] for s in entry["subnets"]] == ["public-a", "public-c", "private-a", "private-c", "private-c-2"]
    assert any("a second route table per AZ" in w and f"{REGION}c" in w for w in x.warnings)
    assert any("endpoint s3 is on route tables rtb-priv" in w for w in x.warnings)  # not on rtb-c, rtb-c2


def test_security_group_rules_map_protocols_and_say_what_they_cannot() -> None:
    live = seed_like()
    live.security_groups[1]["IpPermissions"] = [
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.0/16"}]},
        {"IpProtocol": "udp", "FromPort": 1000, "ToPort": 2000, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": "sg-elsewhere"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": "pl-1"}]},
        {"IpProtocol": "50", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
    ]
    live.security_groups[1]["IpPermissionsEgress"] = []
    x = export()
    (group,) = vpc_entry(x, live)["security_groups"]
    assert group["ingress"] == [{"protocol": "all", "from": "10.0.0.0/16"},
                                {"protocol": "udp", "ports": "1000-2000", "from": "::/0"}]
    assert group["egress"] == []  # none at all is not the default (all out): written
    text = "\n".join(x.warnings)
    assert "sg-elsewhere" in text and "pl-1" in text and "IP protocol 50" in text


def test_named_network_acls_are_exported_and_the_default_acl_is_not() -> None:
    live = seed_like()
    live.network_acls = [
        {"NetworkAclId": "acl-default", "IsDefault": True, "Entries": [], "Associations": []},
        {"NetworkAclId": "acl-1", "IsDefault": False, "Tags": _name("maestro-main-nacl-web"),
         "Associations": [{"SubnetId": "subnet-pub"}],
         "Entries": [
             {"RuleNumber": 100, "Protocol": "6", "RuleAction": "allow", "Egress": False, "CidrBlock": "0.0.0.0/0",
              "PortRange": {"From": 443, "To": 443}},
             {"RuleNumber": 32767, "Protocol": "-1", "RuleAction": "deny", "Egress": False, "CidrBlock": "0.0.0.0/0"},
             {"RuleNumber": 100, "Protocol": "-1", "RuleAction": "allow", "Egress": True, "CidrBlock": "0.0.0.0/0"},
         ]},
    ]
    x = export()
    assert vpc_entry(x, live)["network_acls"] == [{
        "name": "web", "subnets": ["public-a"],
        "ingress": [{"rule": 100, "protocol": "tcp", "ports": "443", "cidr": "0.0.0.0/0", "action": "allow"}],
        "egress": [{"rule": 100, "protocol": "all", "cidr": "0.0.0.0/0", "action": "allow"}]}]
