"""Engine seams against moto server: the read-only guard, the stack lock, secrets at --verbose."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.clients import Clients
from reconciler.errors import ReadOnlyViolation
from tests.conftest import Moto

MANIFEST = """\
version: 1
stack: enginetest
region: us-east-1
iam:
  users:
    - name: svc
      access_keys: {store: {secretsmanager: enginetest/svc}}
"""


def test_read_only_clients_refuse_writes_before_sending(moto: Moto, monkeypatch: Any) -> None:
    for key, value in moto.env().items():
        monkeypatch.setenv(key, value)
    clients = Clients("us-east-1", endpoint_url=moto.endpoint, read_only=True)
    clients.client("iam").list_users()
    with pytest.raises(ReadOnlyViolation):
        clients.client("iam").create_user(UserName="nope")
    iam: Any = moto.client("iam")
    assert iam.list_users()["Users"] == []
    assert clients.calls == [("iam", "ListUsers")]


def test_a_held_lock_refuses_a_second_apply_and_unlock_frees_it(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MANIFEST)
    ssm: Any = moto.client("ssm")
    ssm.put_parameter(Name="/reconciler/locks/enginetest/1", Type="String",
                      Value=json.dumps({"owner": "someone@else pid 1", "token": "t", "lifetime": 60}))
    held = cli("apply", str(manifest), "--auto-approve", "--lock-timeout", "0")
    assert held.code == 1 and "locked by someone@else" in held.err, held.all
    iam: Any = moto.client("iam")
    assert iam.list_users()["Users"] == []
    assert cli("unlock", str(manifest), "--force").out == "lock removed\n"
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    # the lock is released after a successful apply
    assert ssm.describe_parameters()["Parameters"] == [] or all(
        not p["Name"].startswith("/reconciler/locks/enginetest") for p in ssm.describe_parameters()["Parameters"])


def test_no_secret_in_any_output_even_verbose(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MANIFEST)
    outputs = [cli("apply", str(manifest), "--auto-approve", "-v")]
    sm: Any = moto.client("secretsmanager")
    secret = json.loads(sm.get_secret_value(SecretId="enginetest/svc")["SecretString"])["SecretAccessKey"]
    plan_file = tmp_path / "plan.json"
    outputs += [cli("plan", str(manifest), "-v", "--format", "json"),
                cli("plan", str(manifest), "-v", "--out", str(plan_file)),
                cli("destroy", str(manifest), "--auto-approve", "-v")]
    for result in outputs:
        assert result.code == 0, result.all
        assert secret not in result.all
    assert secret not in plan_file.read_text()


def test_account_guard_refuses_the_wrong_account(cli: Any, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MANIFEST.replace("region: us-east-1", 'region: us-east-1\naccount: "999999999999"'))
    result = cli("plan", str(manifest))
    assert result.code == 1 and "999999999999" in result.err


def test_region_flag_that_contradicts_the_manifest_is_refused(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MANIFEST)
    result = cli("plan", str(manifest), "--region", "eu-west-1")
    assert result.code == 3 and "differs from the manifest's region" in result.err


def test_a_plan_file_for_another_stack_is_invalid_not_stale(cli: Any, moto: Moto, tmp_path: Path) -> None:
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(MANIFEST)
    two.write_text(MANIFEST.replace("stack: enginetest", "stack: othertest"))
    plan_file = tmp_path / "p.json"
    assert cli("plan", str(one), "--out", str(plan_file)).code == 0
    result = cli("apply", str(two), "--plan", str(plan_file))
    assert result.code == 3 and "stack 'enginetest'" in result.err


def test_an_unreadable_lock_is_a_clear_error(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MANIFEST)
    ssm: Any = moto.client("ssm")
    ssm.put_parameter(Name="/reconciler/locks/enginetest/1", Type="String", Value="someone else")
    result = cli("apply", str(manifest), "--auto-approve", "--lock-timeout", "0")
    assert result.code == 1 and "reconcile unlock" in result.err and "Traceback" not in result.err


def test_zero_keys_settles(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MANIFEST.replace("access_keys: {", "access_keys: {count: 0, "))
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    again = cli("plan", str(manifest), "--detailed-exitcode")
    assert again.code == 0, again.all
    iam: Any = moto.client("iam")
    assert iam.list_access_keys(UserName="svc")["AccessKeyMetadata"] == []


def test_adopting_a_user_shows_its_hand_made_key_and_keeps_it_working_through_the_hand_over(
        cli: Any, moto: Moto, tmp_path: Path) -> None:
    iam: Any = moto.client("iam")
    iam.create_user(UserName="svc")
    hand = iam.create_access_key(UserName="svc")["AccessKey"]["AccessKeyId"]
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MANIFEST)
    planned = cli("plan", str(manifest), "--adopt")
    assert hand in planned.out and "created by hand" in planned.out, planned.all
    assert cli("apply", str(manifest), "--auto-approve", "--adopt").code == 0
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="svc")["AccessKeyMetadata"]}
    # issue 12: the secret of a key made by hand is unknown to the tool, so adopting never cuts it off at
    # once: a new key goes into the store and the old one stays active for grace_days (test_adopt_key.py
    # follows the hand-over to its deactivation and deletion)
    assert keys[hand] == "Active" and len(keys) == 2, keys
