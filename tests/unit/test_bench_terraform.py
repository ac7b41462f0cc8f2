"""`make bench COMPARE=terraform`'s configuration: the same account as the manifest, in Terraform's terms.

Pure (bench/terraform.py makes no call): what is checked is that each desired resource becomes
its Terraform resources, wired by references (so Terraform orders its own graph), with the same
names, CIDRs and settings, and that a kind with no translation is refused, never dropped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.terraform import SERVICES, Untranslated, configuration, tf_name
from reconciler.manifest.expand import expand
from reconciler.manifest.model import DesiredResource
from reconciler.manifest.validate import load_manifest

MANIFEST = """\
version: 1
stack: bench
region: us-east-1
iam:
  groups:
    - name: team-0
      inline_policies:
        describe:
          {Version: "2012-10-17", Statement: [{Effect: Allow, Action: ["ecr:DescribeRepositories"], Resource: "*"}]}
  users:
    - {name: svc-0, groups: [team-0], access_keys: {count: 1, store: {ssm: /bench/svc-0/key}}}
    - {name: svc-1, groups: [team-0], access_keys: {count: 1, store: {secretsmanager: bench/svc-1}}}
ecr:
  repositories:
    - name: bench/repo-0
network:
  vpcs:
    - name: net
      cidr: 10.0.0.0/16
      subnets:
        - {name: public-a, cidr: 10.0.0.0/24, az: us-east-1a, public: true}
        - {name: private-a, cidr: 10.0.10.0/24, az: us-east-1a}
      nat: {mode: gateway, placement: per_az}
      endpoints:
        - service: s3
      security_groups:
        - name: app
          ingress: [{protocol: tcp, ports: "8080", from: "10.0.0.0/16"}]
"""


@pytest.fixture()
def tf(tmp_path: Path) -> dict[str, dict[str, dict[str, object]]]:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    config = configuration(list(expand(load_manifest(path)[0])), "http://127.0.0.1:9", "us-east-1")
    assert set(config["provider"]["aws"]["endpoints"][0]) == set(SERVICES)
    assert set(config["provider"]["aws"]["endpoints"][0].values()) == {"http://127.0.0.1:9"}
    assert config["provider"]["aws"]["skip_requesting_account_id"] is True
    resources: dict[str, dict[str, dict[str, object]]] = config["resource"]
    return resources


def test_every_desired_resource_becomes_its_terraform_resources(tf: dict[str, dict[str, dict[str, object]]]) -> None:
    counts = {rtype: len(named) for rtype, named in tf.items()}
    assert counts == {
        "aws_iam_group": 1, "aws_iam_group_policy": 1, "aws_iam_user": 2, "aws_iam_user_group_membership": 2,
        "aws_iam_access_key": 2, "aws_ssm_parameter": 1, "aws_secretsmanager_secret": 1,
        "aws_secretsmanager_secret_version": 1, "aws_ecr_repository": 1, "aws_ecr_lifecycle_policy": 1,
        "aws_vpc": 1, "aws_subnet": 2, "aws_internet_gateway": 1, "aws_eip": 1, "aws_nat_gateway": 1,
        "aws_route_table": 2, "aws_route_table_association": 2, "aws_vpc_endpoint": 1, "aws_security_group": 1}


def test_resources_are_wired_by_references_with_the_manifests_values(
        tf: dict[str, dict[str, dict[str, object]]]) -> None:
    vpc = tf_name("vpc.net")
    assert tf["aws_vpc"][vpc]["cidr_block"] == "10.0.0.0/16"
    assert {s["vpc_id"] for s in tf["aws_subnet"].values()} == {f"${{aws_vpc.{vpc}.id}}"}
    nat = tf["aws_nat_gateway"][tf_name("vpc.net.nat.public-a")]
    assert nat["depends_on"] == [f"aws_internet_gateway.{tf_name('vpc.net.igw')}"]  # AWS wants the IGW first
    eip = tf["aws_eip"][tf_name("vpc.net.eip.public-a")]
    assert "network_border_group" not in eip  # moto omits it: the provider would replace the EIP on every plan
    private = tf["aws_route_table"][tf_name("vpc.net.route_table.private-us-east-1a")]
    [route] = private["route"]  # type: ignore[misc]
    assert route["cidr_block"] == "0.0.0.0/0" and route["gateway_id"] is None
    assert route["nat_gateway_id"] == f"${{aws_nat_gateway.{tf_name('vpc.net.nat.public-a')}.id}}"
    group = tf["aws_security_group"][tf_name("vpc.net.sg.app")]
    assert [(r["protocol"], r["from_port"], r["to_port"], r["cidr_blocks"]) for r in group["ingress"]] == [  # type: ignore[attr-defined]
        ("tcp", 8080, 8080, ["10.0.0.0/16"])]
    assert [(r["protocol"], r["cidr_blocks"]) for r in group["egress"]] == [("-1", ["0.0.0.0/0"])]  # type: ignore[attr-defined]
    repo = tf["aws_ecr_repository"][tf_name("ecr.repository.bench/repo-0")]
    assert repo["name"] == "bench/repo-0" and repo["image_tag_mutability"] == "IMMUTABLE"
    assert [p["name"] for p in tf["aws_ssm_parameter"].values()] == ["/bench/svc-0/key"]
    assert "aws_iam_access_key." in str(next(iter(tf["aws_ssm_parameter"].values()))["value"])


def test_a_kind_with_no_translation_is_refused_not_dropped() -> None:
    acl = DesiredResource("vpc.net.acl.main", "ec2.network_acl", {"vpc": "vpc.net"})
    with pytest.raises(Untranslated, match=r"ec2\.network_acl"):
        configuration([acl], "http://127.0.0.1:9", "us-east-1")
