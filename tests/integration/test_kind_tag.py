"""`reconciler:kind` on resources made before the tag existed, through the real CLI against moto server.

Such a resource is still ours (reads accept the tag's absence): the plan shows a tag
update, never a create or a conflict; apply adds the tag; the next plan is empty.
The tag is stripped by hand here with boto3, as an older version of the tool left it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Moto

KIND_TAG = "reconciler:kind"

MANIFEST = """\
version: 1
stack: kindtest
region: us-east-1
iam:
  users:
    - name: app-sm
      access_keys:
        store: {secretsmanager: kindtest/app-sm}
    - name: app-ssm
      access_keys:
        store: {ssm: /kindtest/app-ssm/key}
ecr:
  repositories:
    - name: kindtest-repo
"""

NETWORK = """\
version: 1
stack: kindnet
region: us-east-1
network:
  vpcs:
    - name: main
      cidr: 10.9.0.0/16
      subnets:
        - {name: priv, cidr: 10.9.1.0/24, az: us-east-1a}
      nat: {mode: none}
"""


def plan_changes(cli: Any, manifest: Path) -> dict[str, dict[str, Any]]:
    """The plan's non-noop changes by address (exit 0 or 2, never a failure)."""
    result = cli("plan", str(manifest), "--format", "json", "--detailed-exitcode")
    assert result.code in (0, 2), result.all
    return {c["address"]: c for c in json.loads(result.out)["changes"] if c["action"] != "noop"}


def assert_tag_update_only(changes: dict[str, dict[str, Any]], want: dict[str, str]) -> None:
    """Each address in `want` (address -> kind) is an unblocked update adding exactly its kind tag."""
    assert set(changes) == set(want), changes
    for address, kind in want.items():
        change = changes[address]
        assert change["action"] == "update", change
        assert not change.get("blocked"), change
        assert [(d["before"], d["after"]) for d in change["diff"]] == [(None, kind)], change
        assert all(d["path"].endswith(f"tags.{KIND_TAG}") for d in change["diff"]), change


def test_resources_made_before_the_kind_tag_get_it_on_the_next_apply(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "kind.yaml"
    manifest.write_text(MANIFEST)
    first = cli("apply", str(manifest), "--auto-approve")
    assert first.code == 0, first.all
    assert plan_changes(cli, manifest) == {}
    iam: Any = moto.client("iam")
    ecr: Any = moto.client("ecr")
    sm: Any = moto.client("secretsmanager")
    ssm: Any = moto.client("ssm")
    assert {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="app-sm")["Tags"]}[KIND_TAG] == "iam.user"
    repo_arn = ecr.describe_repositories(repositoryNames=["kindtest-repo"])["repositories"][0]["repositoryArn"]

    # as an older version left them: no kind tag on the user, the repository and both key stores
    iam.untag_user(UserName="app-sm", TagKeys=[KIND_TAG])
    ecr.untag_resource(resourceArn=repo_arn, tagKeys=[KIND_TAG])
    sm.untag_resource(SecretId="kindtest/app-sm", TagKeys=[KIND_TAG])
    ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId="/kindtest/app-ssm/key", TagKeys=[KIND_TAG])

    # nobody changed anything by hand: drift stays quiet (a scheduled drift job right after an upgrade)
    quiet = cli("drift", str(manifest), "--format", "json")
    assert quiet.code == 0, quiet.all
    entries = {e["address"]: e for e in json.loads(quiet.out)["resources"]}
    assert {e["status"] for e in entries.values()} == {"IN_SYNC"}, entries
    assert KIND_TAG in entries["iam.user.app-sm.access_keys"]["detail"]

    assert_tag_update_only(plan_changes(cli, manifest), {
        "iam.user.app-sm": "iam.user",
        "ecr.repository.kindtest-repo": "ecr.repository",
        "iam.user.app-sm.access_keys": "iam.access_key",
        "iam.user.app-ssm.access_keys": "iam.access_key",
    })
    keys_before = {u: iam.list_access_keys(UserName=u)["AccessKeyMetadata"] for u in ("app-sm", "app-ssm")}
    second = cli("apply", str(manifest), "--auto-approve")
    assert second.code == 0, second.all
    assert plan_changes(cli, manifest) == {}
    # the tags came back; no key was rotated or rewritten for it
    assert {u: iam.list_access_keys(UserName=u)["AccessKeyMetadata"] for u in ("app-sm", "app-ssm")} == keys_before
    sm_tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId="kindtest/app-sm")["Tags"]}
    ssm_tags = {t["Key"]: t["Value"] for t in ssm.list_tags_for_resource(
        ResourceType="Parameter", ResourceId="/kindtest/app-ssm/key")["TagList"]}
    assert sm_tags[KIND_TAG] == ssm_tags[KIND_TAG] == "iam.access_key"
    assert {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=repo_arn)["tags"]}[KIND_TAG] \
        == "ecr.repository"


def test_a_store_of_another_kind_is_not_this_kinds(cli: Any, moto: Moto, tmp_path: Path) -> None:
    """A stack-tagged store whose kind tag names another kind is a conflict, never written or deleted."""
    manifest = tmp_path / "kind.yaml"
    manifest.write_text(MANIFEST)
    sm: Any = moto.client("secretsmanager")
    sm.create_secret(Name="kindtest/app-sm", SecretString="someone else's", Tags=[
        {"Key": "reconciler:stack", "Value": "kindtest"},
        {"Key": "reconciler:address", "Value": "iam.user.app-sm.access_keys"},
        {"Key": KIND_TAG, "Value": "ssm.parameter"}])
    changes = plan_changes(cli, manifest)
    assert changes["iam.user.app-sm.access_keys"].get("blocked"), changes["iam.user.app-sm.access_keys"]
    assert "ssm.parameter" in changes["iam.user.app-sm.access_keys"]["blocked"]
    refused = cli("apply", str(manifest), "--auto-approve")
    assert refused.code != 0, refused.all
    assert sm.get_secret_value(SecretId="kindtest/app-sm")["SecretString"] == "someone else's"


def test_a_vpc_made_before_the_kind_tag_gets_it_on_the_next_apply(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "net.yaml"
    manifest.write_text(NETWORK)
    first = cli("apply", str(manifest), "--auto-approve")
    assert first.code == 0, first.all
    assert plan_changes(cli, manifest) == {}
    ec2: Any = moto.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:reconciler:stack", "Values": ["kindnet"]}])["Vpcs"]
    assert len(vpcs) == 1
    ec2.delete_tags(Resources=[vpcs[0]["VpcId"]], Tags=[{"Key": KIND_TAG}])
    assert_tag_update_only(plan_changes(cli, manifest), {"vpc.main": "ec2.vpc"})
    assert cli("drift", str(manifest)).code == 0
    second = cli("apply", str(manifest), "--auto-approve")
    assert second.code == 0, second.all
    assert plan_changes(cli, manifest) == {}
