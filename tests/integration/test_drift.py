"""`reconcile drift` against moto server: every status from a real by-hand change, in every format.

The by-hand changes are made with a plain boto3 client, as a person would; drift
runs through the real CLI, read-only (the moto recorder proves it sent no write).
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import jsonschema
import requests

from tests.conftest import ROOT, Moto
from tests.faults.proxy import Fault, rule

APPLIED = """\
version: 1
stack: drifttest
region: us-east-1
iam:
  groups:
    - name: pushers
      inline_policies:
        describe:
          Version: "2012-10-17"
          Statement: [{Sid: Describe, Effect: Allow, Action: ["ecr:DescribeRepositories"], Resource: "*"}]
  users:
    - name: app-dev
      groups: [pushers]
      access_keys:
        count: 1
        store: {secretsmanager: drifttest/app-dev}
    - name: svc-b
    - name: svc-c
"""
# the same manifest plus a repository whose kind the drift job is told not to read
WITH_REPOSITORY = APPLIED + """\
ecr:
  repositories:
    - name: drifttest-web
"""
STATUSES = {"IN_SYNC", "MODIFIED", "DELETED", "UNMANAGED", "ORPHANED", "NOT_CHECKED"}
DRIFT_SCHEMA = json.loads((ROOT / "schemas" / "drift.schema.json").read_text())


def manifests(tmp_path: Path) -> tuple[Path, Path]:
    applied, drifted = tmp_path / "applied.yaml", tmp_path / "drift.yaml"
    applied.write_text(APPLIED)
    drifted.write_text(WITH_REPOSITORY)
    return applied, drifted


def operations(moto: Moto) -> list[str]:
    """Operations the moto recorder saw (query protocol Action=..., or JSON X-Amz-Target)."""
    log = requests.get(f"{moto.endpoint}/moto-api/recorder/download-recording", timeout=10).text
    ops = []
    for line in filter(str.strip, log.splitlines()):
        entry = json.loads(line)
        target = (entry.get("headers") or {}).get("X-Amz-Target")
        body = entry.get("body") or ""
        if target:
            ops.append(str(target).split(".")[-1])
        elif isinstance(body, dict) and body.get("Action"):
            ops.append(str(body["Action"]))
        elif isinstance(body, str) and "Action=" in body:
            ops.append(urllib.parse.parse_qs(body)["Action"][0])
    return ops


def recorded(moto: Moto, run: Any) -> tuple[Any, list[str]]:
    requests.post(f"{moto.endpoint}/moto-api/recorder/reset-recording", timeout=10)
    requests.post(f"{moto.endpoint}/moto-api/recorder/start-recording", timeout=10)
    try:
        result = run()
    finally:
        requests.post(f"{moto.endpoint}/moto-api/recorder/stop-recording", timeout=10)
    return result, operations(moto)


def change_by_hand(moto: Moto) -> None:
    iam: Any = moto.client("iam")
    iam.attach_user_policy(UserName="app-dev", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.put_group_policy(GroupName="pushers", PolicyName="describe", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "Describe", "Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}))
    iam.delete_user(UserName="svc-b")
    iam.create_user(UserName="stray", Tags=[{"Key": "reconciler:stack", "Value": "drifttest"},
                                            {"Key": "reconciler:address", "Value": "iam.user.stray"}])
    iam.create_login_profile(UserName="svc-c", Password="Not-a-real-password-1!")
    iam.create_access_key(UserName="app-dev")


def test_every_drift_status_from_real_changes_in_every_format(cli: Any, moto: Moto, tmp_path: Path) -> None:
    applied, drifted = manifests(tmp_path)
    assert cli("apply", str(applied), "--auto-approve").code == 0
    clean = cli("drift", str(drifted), "--skip-kind", "ecr.repository")
    assert clean.code == 0, clean.all
    assert "No drift" in clean.out and "NOT_CHECKED" in clean.out

    change_by_hand(moto)
    report_file = tmp_path / "drift-report.json"
    results = {}
    for fmt in ("text", "json", "markdown"):
        results[fmt], ops = recorded(moto, lambda fmt=fmt: cli("drift", str(drifted), "--format", fmt,
                                                               "--skip-kind", "ecr.repository",
                                                               "--report", str(report_file)))
        assert results[fmt].code == 2, results[fmt].all
        from reconciler.engine.clients import is_read

        assert ops and all(is_read(op) for op in ops), ops

    report = json.loads(results["json"].out)
    jsonschema.Draft202012Validator(DRIFT_SCHEMA).validate(report)
    assert json.loads(report_file.read_text()) == report
    by_address = {r["address"]: r for r in report["resources"]}
    expected = {
        "iam.group.pushers": "MODIFIED",
        "iam.user.app-dev": "UNMANAGED",              # an attached policy
        "iam.user.app-dev.access_keys": "UNMANAGED",  # a key the store does not know
        "iam.user.svc-c": "UNMANAGED",                # a console password
        "iam.user.svc-b": "DELETED",
        "iam.user.stray": "ORPHANED",
        "ecr.repository.drifttest-web": "NOT_CHECKED",
    }
    assert {a: by_address[a]["status"] for a in expected} == expected
    assert {r["status"] for r in report["resources"]} == STATUSES - {"IN_SYNC"}
    assert report["drift"] is True
    assert "console password" in by_address["iam.user.svc-c"]["unmanaged"]
    assert by_address["iam.user.app-dev"]["unmanaged"] == [
        "managed_policies: arn:aws:iam::aws:policy/ReadOnlyAccess"]
    assert any(".Statement[Describe]" in d["path"] for d in by_address["iam.group.pushers"]["diff"])
    assert [h["rule"] for h in report["hygiene"]] == ["KEY_ACTIVE_COUNT"]
    for fmt in ("text", "markdown"):
        for address, status in expected.items():
            assert address in results[fmt].out and status in results[fmt].out, (fmt, address)
        assert "KEY_ACTIVE_COUNT" in results[fmt].out
    # no secret in any output or the report
    sm: Any = moto.client("secretsmanager")
    secret = json.loads(sm.get_secret_value(SecretId="drifttest/app-dev")["SecretString"])["SecretAccessKey"]
    for result in results.values():
        assert secret not in result.all
    assert secret not in report_file.read_text()

    # apply reverts the drift; the next drift is clean (IN_SYNC everywhere it checked)
    assert cli("apply", str(applied), "--auto-approve").code == 0
    healed = cli("drift", str(drifted), "--format", "json", "--skip-kind", "ecr.repository")
    assert healed.code == 0, healed.all
    assert {r["status"] for r in json.loads(healed.out)["resources"]} == {"IN_SYNC", "NOT_CHECKED"}


def test_drift_on_a_clean_account_exits_0_and_never_writes(cli: Any, moto: Moto, tmp_path: Path) -> None:
    applied, _ = manifests(tmp_path)
    assert cli("apply", str(applied), "--auto-approve").code == 0
    result, ops = recorded(moto, lambda: cli("drift", str(applied), "--format", "markdown"))
    assert result.code == 0, result.all
    assert "**No drift: 5 in sync.**" in result.out
    from reconciler.engine.clients import is_read

    assert ops and all(is_read(op) for op in ops), ops


def test_drift_that_cannot_read_the_account_exits_1_and_writes_no_report(moto: Moto, faulty: Any,
                                                                         tmp_path: Path) -> None:
    from tests.conftest import run_cli

    applied, _ = manifests(tmp_path)
    assert run_cli(["apply", str(applied), "--auto-approve"], moto.env()).code == 0
    faulty.add(rule(Fault.HTTP_500, "GetAccountAuthorizationDetails"))
    report_file = tmp_path / "report.json"
    result = run_cli(["drift", str(applied), "--report", str(report_file)], faulty.env(RECONCILER_MAX_ATTEMPTS="2"))
    assert result.code == 1, result.all
    assert "GetAccountAuthorizationDetails" in result.err or "iam" in result.err
    assert not report_file.exists()
    assert "No drift" not in result.out


def test_unknown_skip_kind_is_a_usage_error(cli: Any, tmp_path: Path) -> None:
    applied, _ = manifests(tmp_path)
    result = cli("drift", str(applied), "--skip-kind", "nope")
    assert result.code == 3 and "nope" in result.err
