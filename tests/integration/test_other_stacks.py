"""--adopt takes over what nobody owns, never what another stack owns (its user, group, repository).

Adopting another stack's user would re-tag it, strip its groups, and let the adopter's destroy
delete it with the other stack's access key: found by a new-user test, fixed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Moto

OWNER = """\
version: 1
stack: owner
region: us-east-1
iam:
  groups:
    - name: readers
  users:
    - name: ci-bot
      groups: [readers]
      access_keys:
        store: {secretsmanager: owner/ci-bot/access-key}
ecr:
  repositories:
    - name: shared-repo
"""

TAKER = """\
version: 1
stack: taker
region: us-east-1
iam:
  groups:
    - name: readers
  users:
    - name: ci-bot
ecr:
  repositories:
    - name: shared-repo
"""


def test_adopt_never_takes_another_stacks_resources(cli: Any, moto: Moto, tmp_path: Path) -> None:
    owner, taker = tmp_path / "owner.yaml", tmp_path / "taker.yaml"
    owner.write_text(OWNER)
    taker.write_text(TAKER)
    assert cli("apply", str(owner), "--auto-approve").code == 0
    iam: Any = moto.client("iam")
    key_before = iam.list_access_keys(UserName="ci-bot")["AccessKeyMetadata"]

    plan = cli("plan", str(taker), "--adopt")
    for address in ("iam.user.ci-bot", "iam.group.readers", "ecr.repository.shared-repo"):
        assert address in plan.out, plan.all
    assert plan.out.count("belongs to stack owner") == 3, plan.out
    assert "--adopt never takes another stack's resource" in plan.out

    applied = cli("apply", str(taker), "--adopt", "--auto-approve")
    assert applied.code == 1 and "blocked" in applied.err, applied.all
    destroyed = cli("destroy", str(taker), "--auto-approve")
    assert destroyed.code == 0, destroyed.all

    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="ci-bot")["Tags"]}
    assert tags["reconciler:stack"] == "owner"
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="ci-bot")["Groups"]] == ["readers"]
    assert iam.list_access_keys(UserName="ci-bot")["AccessKeyMetadata"] == key_before
    ecr: Any = moto.client("ecr")
    arn = ecr.describe_repositories(repositoryNames=["shared-repo"])["repositories"][0]["repositoryArn"]
    repo_tags = {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=arn)["tags"]}
    assert repo_tags["reconciler:stack"] == "owner"
    drift = cli("drift", str(owner))
    assert drift.code == 0, drift.all


def test_adopt_still_takes_what_nobody_owns(cli: Any, moto: Moto, tmp_path: Path) -> None:
    iam: Any = moto.client("iam")
    iam.create_user(UserName="ci-bot")
    moto.client("ecr").create_repository(repositoryName="shared-repo")  # type: ignore[attr-defined]
    taker = tmp_path / "taker.yaml"
    taker.write_text(TAKER.replace("  groups:\n    - name: readers\n", ""))
    blocked = cli("plan", str(taker))
    assert "exists without the stack tag" in blocked.out, blocked.all
    adopted = cli("apply", str(taker), "--adopt", "--auto-approve")
    assert adopted.code == 0, adopted.all
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="ci-bot")["Tags"]}
    assert tags["reconciler:stack"] == "taker"
