"""The `reconcile output` renderers (pure): text, JSON and shell assignments."""

from __future__ import annotations

import json
import shlex
import subprocess

from reconciler.plan.model import LiveResource
from reconciler.render.outputs import (
    OUTPUT_RENDERERS,
    OutputReport,
    OutputRow,
    env_name,
    format_outputs_env,
    format_outputs_json,
    format_outputs_text,
)

REPORT = OutputReport("shop", "eu-west-1", "123456789012", (
    OutputRow("vpc.main", "ec2.vpc", {"id": "vpc-0abc", "arn": "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-0abc"}),
    OutputRow("vpc.main.subnet.public-a", "ec2.subnet", {"id": "subnet-1"}),
    OutputRow("vpc.main.nat.public-a", "ec2.nat_gateway", None),
    OutputRow("ecr.repository.app", "ecr.repository",
              {"uri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app", "id": "app"}),
    OutputRow("iam.user.ci", "iam.user", {"id": "AIDA1", "arn": "arn:aws:iam::123456789012:user/ci"},
              managed=False),
    OutputRow("iam.user.ci.access_keys", "iam.access_key", None, not_read="kind not supported"),
    OutputRow("iam.group.odd", "iam.group", {"note": "it's $(rm -rf /) `x` \"y\""}),
))


def test_env_names_are_the_address_upper_cased_with_the_output_name() -> None:
    assert env_name("vpc.main", "id") == "RECONCILE_VPC_MAIN_ID"
    assert env_name("ecr.repository.app", "uri") == "RECONCILE_ECR_REPOSITORY_APP_URI"
    assert env_name("vpc.main.subnet.public-a", "id") == "RECONCILE_VPC_MAIN_SUBNET_PUBLIC_A_ID"
    assert env_name("iam.user.my-app.access_keys", "store") == "RECONCILE_IAM_USER_MY_APP_ACCESS_KEYS_STORE"


def test_env_omits_what_is_not_created_not_read_or_not_managed() -> None:
    text = format_outputs_env(REPORT)
    names = [line.split("=", 1)[0] for line in text.splitlines()]
    assert "RECONCILE_VPC_MAIN_ID" in names
    assert not any(n.startswith(("RECONCILE_VPC_MAIN_NAT_", "RECONCILE_IAM_USER_CI_")) for n in names)


def test_env_values_survive_a_real_shell_unchanged() -> None:
    text = format_outputs_env(REPORT)
    script = text + 'printf "%s\\n" "$RECONCILE_IAM_GROUP_ODD_NOTE" "$RECONCILE_ECR_REPOSITORY_APP_URI"'
    shown = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert shown.splitlines() == ["it's $(rm -rf /) `x` \"y\"", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app"]
    for line in text.splitlines():
        _name, value = line.split("=", 1)
        assert len(shlex.split(value)) == 1


def test_env_says_when_two_addresses_map_to_one_name() -> None:
    report = OutputReport("s", "r", "a", (OutputRow("ecr.repository.a-b", "ecr.repository", {"id": "a-b"}),
                                          OutputRow("ecr.repository.a.b", "ecr.repository", {"id": "a.b"})))
    lines = format_outputs_env(report).splitlines()
    assert lines[0] == "RECONCILE_ECR_REPOSITORY_A_B_ID=a-b"
    assert lines[1].startswith("# RECONCILE_ECR_REPOSITORY_A_B_ID of ecr.repository.a.b left out")


def test_json_has_null_for_an_address_not_created_and_outputs_ordered() -> None:
    doc = json.loads(format_outputs_json(REPORT))
    assert (doc["format_version"], doc["stack"], doc["region"], doc["account"]) == (
        1, "shop", "eu-west-1", "123456789012")
    assert list(doc["resources"]) == [row.address for row in REPORT.rows]  # the manifest's order
    assert doc["resources"]["vpc.main.nat.public-a"] is None
    assert doc["resources"]["iam.user.ci.access_keys"] is None
    assert doc["resources"]["ecr.repository.app"] == {
        "kind": "ecr.repository", "managed": True,
        "outputs": {"id": "app", "uri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app"}}
    assert doc["resources"]["iam.user.ci"]["managed"] is False
    assert list(doc["resources"]["vpc.main"]["outputs"]) == ["id", "arn"]  # id, name, arn, uri first


def test_text_shows_each_address_and_says_not_created() -> None:
    text = format_outputs_text(REPORT)
    assert text.startswith("stack shop in account 123456789012, eu-west-1\n")
    assert "vpc.main.nat.public-a  (not created)\n" in text
    assert "iam.user.ci.access_keys  (not read: kind not supported)\n" in text
    assert "iam.user.ci  (not managed by this stack" in text
    assert "\n  id   vpc-0abc\n  arn  arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-0abc\n" in text


def test_an_empty_stack_renders_in_every_format() -> None:
    empty = OutputReport("s", "r", "a", ())
    assert format_outputs_env(empty) == ""
    assert json.loads(format_outputs_json(empty))["resources"] == {}
    assert set(OUTPUT_RENDERERS) == {"text", "json", "env"}


def test_outputs_are_never_in_the_fingerprint() -> None:
    plain = LiveResource("vpc.main", "ec2.vpc", "vpc-1", {"cidr": "10.0.0.0/16"})
    with_outputs = LiveResource("vpc.main", "ec2.vpc", "vpc-1", {"cidr": "10.0.0.0/16"},
                                outputs={"id": "vpc-1", "arn": "arn:aws:ec2:r:a:vpc/vpc-1"})
    assert plain.fingerprint() == with_outputs.fingerprint()
