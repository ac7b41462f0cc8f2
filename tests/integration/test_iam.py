"""IAM through the real CLI against moto server: the reconcile contract."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, Moto

MANIFEST = """\
version: 1
stack: iamtest
region: us-east-1
tags: {env: test}
iam:
  groups:
    - name: pushers
      managed_policies: [arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser]
      inline_policies:
        describe:
          Version: "2012-10-17"
          Statement: [{Effect: Allow, Action: ["ecr:DescribeRepositories"], Resource: "*"}]
  users:
    - name: app-dev
      groups: [pushers]
      inline_policies:
        read-config: {file: read-config.json}
      access_keys:
        count: 1
        rotate_after_days: 90
        grace_days: 7
        store: {%(store)s}
"""

POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Read", "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "arn:aws:ssm:*:*:parameter/x"}]}


def write(tmp_path: Path, store: str = "secretsmanager: iamtest/app-dev") -> Path:
    (tmp_path / "read-config.json").write_text(json.dumps(POLICY))
    path = tmp_path / "iam.yaml"
    path.write_text(MANIFEST % {"store": store})
    return path


def stored(moto: Moto, name: str = "iamtest/app-dev") -> dict[str, Any]:
    sm: Any = moto.client("secretsmanager")
    return json.loads(sm.get_secret_value(SecretId=name)["SecretString"])  # type: ignore[no-any-return]


def test_apply_then_plan_is_empty_and_second_apply_writes_nothing(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path)
    first = cli("apply", str(manifest), "--auto-approve")
    assert first.code == 0, first.all
    assert "3 done, 0 failed" in first.out
    again = cli("plan", str(manifest), "--detailed-exitcode")
    assert again.code == 0, again.all
    assert "No changes" in again.out
    second = cli("apply", str(manifest), "--auto-approve", "-v")
    assert second.code == 0 and "No changes" in second.out
    iam: Any = moto.client("iam")
    user = iam.get_user(UserName="app-dev")["User"]
    tags = {t["Key"]: t["Value"] for t in user["Tags"]}
    assert tags["reconciler:stack"] == "iamtest" and tags["reconciler:address"] == "iam.user.app-dev"
    assert tags["env"] == "test"
    keys = iam.list_access_keys(UserName="app-dev")["AccessKeyMetadata"]
    assert len(keys) == 1
    secret = stored(moto)
    assert secret["AccessKeyId"] == keys[0]["AccessKeyId"]
    assert set(secret) == {"AccessKeyId", "SecretAccessKey", "UserName", "CreateDate"}
    # the secret never reached any output
    for result in (first, again, second):
        assert secret["SecretAccessKey"] not in result.all


def test_plan_sends_only_reads(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path)
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    iam: Any = moto.client("iam")
    iam.attach_user_policy(UserName="app-dev", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    import requests

    requests.post(f"{moto.endpoint}/moto-api/recorder/reset-recording", timeout=5)
    requests.post(f"{moto.endpoint}/moto-api/recorder/start-recording", timeout=5)
    try:
        result = cli("plan", str(manifest), "--detailed-exitcode")
    finally:
        requests.post(f"{moto.endpoint}/moto-api/recorder/stop-recording", timeout=5)
    assert result.code == 2, result.all
    log = requests.get(f"{moto.endpoint}/moto-api/recorder/download-recording", timeout=5).text
    operations = _operations(log)
    assert operations, "the recorder saw no calls"
    from reconciler.engine.clients import is_read

    assert all(is_read(op) for op in operations), operations


def _operations(log: str) -> list[str]:
    import urllib.parse

    ops = []
    for line in log.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        target = (entry.get("headers") or {}).get("X-Amz-Target")
        if target:
            ops.append(target.split(".")[-1])
            continue
        body = entry.get("body") or ""
        if isinstance(body, dict):
            action = body.get("Action")
        else:
            action = urllib.parse.parse_qs(str(body)).get("Action", [None])[0]
        if action:
            ops.append(str(action))
    return ops


@pytest.mark.parametrize("change, expect", [
    ("attach", "managed_policies"),
    ("delete_inline", "inline_policies.read-config"),
    ("delete_user", "iam.user.app-dev (iam.user) will be created"),
    ("create_key", "unknown to the store"),
    ("console", "console_access"),
    ("group_member", "groups"),
])
def test_by_hand_changes_are_found_and_healed(cli: Any, moto: Moto, tmp_path: Path, change: str,
                                             expect: str) -> None:
    manifest = write(tmp_path)
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    iam: Any = moto.client("iam")
    if change == "attach":
        iam.attach_user_policy(UserName="app-dev", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    elif change == "delete_inline":
        iam.delete_user_policy(UserName="app-dev", PolicyName="read-config")
    elif change == "delete_user":
        for key in iam.list_access_keys(UserName="app-dev")["AccessKeyMetadata"]:
            iam.delete_access_key(UserName="app-dev", AccessKeyId=key["AccessKeyId"])
        iam.remove_user_from_group(UserName="app-dev", GroupName="pushers")
        iam.delete_user_policy(UserName="app-dev", PolicyName="read-config")
        iam.delete_user(UserName="app-dev")
    elif change == "create_key":
        iam.create_access_key(UserName="app-dev")
    elif change == "console":
        iam.create_login_profile(UserName="app-dev", Password="Not-a-real-pw-123!")
    elif change == "group_member":
        iam.create_group(GroupName="extra")
        iam.add_user_to_group(UserName="app-dev", GroupName="extra")
    found = cli("plan", str(manifest), "--detailed-exitcode")
    assert found.code == 2, found.all
    assert expect in found.out
    healed = cli("apply", str(manifest), "--auto-approve")
    assert healed.code == 0, healed.all
    after = cli("plan", str(manifest), "--detailed-exitcode")
    assert after.code == 0, after.all
    active = [k for k in iam.list_access_keys(UserName="app-dev")["AccessKeyMetadata"] if k["Status"] == "Active"]
    assert len(active) == 1
    assert stored(moto)["AccessKeyId"] == active[0]["AccessKeyId"]


def test_rotation_keeps_a_working_key_within_two_keys(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path, store="ssm: /iamtest/app-dev/key")
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    ssm: Any = moto.client("ssm")
    iam: Any = moto.client("iam")

    def current() -> dict[str, Any]:
        value = ssm.get_parameter(Name="/iamtest/app-dev/key", WithDecryption=True)["Parameter"]["Value"]
        return json.loads(value)  # type: ignore[no-any-return]

    first = current()["AccessKeyId"]
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=100)).isoformat()
    plan = cli("plan", str(manifest), "--detailed-exitcode", RECONCILER_NOW=later)
    assert plan.code == 2 and "rotated" in plan.out, plan.all
    assert cli("apply", str(manifest), "--auto-approve", RECONCILER_NOW=later).code == 0
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="app-dev")["AccessKeyMetadata"]}
    second = current()["AccessKeyId"]
    assert second != first and keys == {first: "Inactive", second: "Active"}
    # moto stamps keys with the real time, so the new key is young only on the real clock
    assert cli("plan", str(manifest), "--detailed-exitcode").code == 0
    # after the grace period the old key goes; at the next rotation we never exceed two
    much_later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=200)).isoformat()
    assert cli("apply", str(manifest), "--auto-approve", RECONCILER_NOW=much_later).code == 0
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="app-dev")["AccessKeyMetadata"]}
    assert len(keys) == 2 and keys[current()["AccessKeyId"]] == "Active" and first not in keys


def test_destroy_removes_owned_and_never_touches_foreign(cli: Any, moto: Moto, tmp_path: Path) -> None:
    iam: Any = moto.client("iam")
    iam.create_user(UserName="bystander")
    manifest = write(tmp_path)
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    gone = cli("destroy", str(manifest), "--auto-approve")
    assert gone.code == 0, gone.all
    users = [u["UserName"] for u in iam.list_users()["Users"]]
    assert users == ["bystander"]
    assert [g for g in iam.list_groups()["Groups"] if g["GroupName"] == "pushers"] == []
    sm: Any = moto.client("secretsmanager")
    assert sm.list_secrets()["SecretList"] == []


def test_same_named_untagged_user_is_a_conflict_unless_adopted(cli: Any, moto: Moto, tmp_path: Path) -> None:
    iam: Any = moto.client("iam")
    iam.create_user(UserName="app-dev")
    manifest = write(tmp_path)
    refused = cli("apply", str(manifest), "--auto-approve")
    assert refused.code == 1 and "--adopt" in refused.all
    assert not iam.get_user(UserName="app-dev")["User"].get("Tags")
    adopted = cli("apply", str(manifest), "--auto-approve", "--adopt")
    assert adopted.code == 0, adopted.all
    assert cli("plan", str(manifest), "--detailed-exitcode").code == 0


def test_apply_without_terminal_or_approval_refuses(cli: Any, tmp_path: Path) -> None:
    result: CliResult = cli("apply", str(write(tmp_path)))
    assert result.code == 3 and "--auto-approve" in result.err
