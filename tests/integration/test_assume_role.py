"""Credentials per account: `assume_role:` and `--assume-role` against moto, through the real CLI.

moto lands the calls made with AssumeRole's credentials in the role's account (any 12 digits;
EMULATOR-NOTES §8), while the runner's own credentials stay in 123456789012: a resource in the
wrong account shows. moto assumes any role, so a role AWS would refuse is refused by the fault
proxy (tests/faults/proxy.py) in front of it, with the error AWS sends.
"""

from __future__ import annotations

import datetime
import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import botocore.credentials
import pytest

from tests.conftest import FAKE_KEY, CliResult, Moto, run_cli
from tests.faults.plugin import Faulty
from tests.faults.proxy import Fault, rule

ACCOUNT = "111111111111"
OTHER = "222222222222"
DEFAULT = "123456789012"  # moto's account for the runner's own credentials
EXTERNAL_ID = "ext-id-7d1c2f-q9"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/reconciler"

BODY = """\
iam:
  users:
    - name: app
      access_keys: {count: 1, store: {secretsmanager: roles/app/key}}
ecr:
  repositories:
    - name: roles-app
"""


def write(tmp_path: Path, head: str) -> Path:
    path = tmp_path / "roles.yaml"
    path.write_text(f"version: 1\nstack: roles\nregion: us-east-1\n{head}{BODY}")
    return path


def with_role(tmp_path: Path) -> Path:
    return write(tmp_path, f'account: "{ACCOUNT}"\nassume_role: {{role_name: reconciler, external_id: '
                           f'"{EXTERNAL_ID}", duration: 900}}\n')


def in_account(moto: Moto, account: str, service: str) -> Any:
    """A client whose calls land in `account` (moto's own multi-account: assume any role there)."""
    sts: Any = moto.client("sts")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/test-reader", RoleSessionName="test")["Credentials"]
    return boto3.client(service, endpoint_url=moto.endpoint, region_name="us-east-1",
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def holdings(moto: Moto, account: str | None) -> dict[str, list[str]]:
    """The stack's things in `account` (None: the runner's own, moto's default account)."""
    def client(service: str) -> Any:
        return moto.client(service) if account is None else in_account(moto, account, service)

    return {"users": sorted(u["UserName"] for u in client("iam").list_users()["Users"]),
            "repositories": sorted(r["repositoryName"] for r in client("ecr").describe_repositories()["repositories"]),
            "secrets": sorted(s["Name"] for s in client("secretsmanager").list_secrets()["SecretList"]),
            "parameters": sorted(p["Name"] for p in client("ssm").describe_parameters()["Parameters"])}


THE_STACK = {"users": ["app"], "repositories": ["roles-app"], "secrets": ["roles/app/key"], "parameters": []}
NOTHING = {"users": [], "repositories": [], "secrets": [], "parameters": []}


def reconcile(faulty: Faulty, *args: str) -> CliResult:
    return run_cli([*args, "-v"], faulty.env())


def test_apply_with_a_role_name_lands_in_the_manifests_account(faulty: Faulty, moto: Moto, tmp_path: Path) -> None:
    manifest = with_role(tmp_path)
    applied = reconcile(faulty, "apply", str(manifest), "--auto-approve")
    assert applied.code == 0, applied.all
    # the account guard passed: it checked the assumed identity (the runner's own is 123456789012)
    assert holdings(moto, ACCOUNT) == THE_STACK
    assert holdings(moto, None) == NOTHING
    assert faulty.operations()["AssumeRole"] == 1, faulty.operations()  # the lease shares the run's role
    faulty.clear()
    planned = reconcile(faulty, "plan", str(manifest), "--detailed-exitcode")
    assert planned.code == 0, planned.all
    assert faulty.writes() == [], faulty.writes()
    drifted = reconcile(faulty, "drift", str(manifest))
    assert drifted.code == 0, drifted.all
    shown = reconcile(faulty, "output", str(manifest), "--format", "json")
    assert shown.code == 0 and f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/roles-app" in shown.out, shown.all
    # the key store is read in the role's account too (the one command that prints a secret, into a pipe)
    key = reconcile(faulty, "credentials", str(manifest), "--user", "app")
    assert key.code == 0, key.all
    stored = json.loads(in_account(moto, ACCOUNT, "secretsmanager").get_secret_value(
        SecretId="roles/app/key")["SecretString"])
    assert json.loads(key.out)["AccessKeyId"] == stored["AccessKeyId"]
    for result in (applied, planned, drifted, shown, key):
        assert EXTERNAL_ID not in result.all
    destroyed = reconcile(faulty, "destroy", str(manifest), "--auto-approve")
    assert destroyed.code == 0, destroyed.all
    assert holdings(moto, ACCOUNT) == NOTHING


def test_the_flag_assumes_a_role_for_a_manifest_without_one(moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path, "")
    role = f"arn:aws:iam::{OTHER}:role/reconciler"
    applied = run_cli(["apply", str(manifest), "--auto-approve", "--assume-role", role], moto.env())
    assert applied.code == 0, applied.all
    assert holdings(moto, OTHER) == THE_STACK
    assert holdings(moto, None) == NOTHING
    planned = run_cli(["plan", str(manifest), "--detailed-exitcode", "--assume-role", role], moto.env())
    assert planned.code == 0, planned.all
    # without the flag the same manifest is the runner's own account, where nothing exists yet
    plain = run_cli(["plan", str(manifest), "--detailed-exitcode"], moto.env())
    assert plain.code == 2, plain.all
    held = run_cli(["unlock", str(manifest), "--force", "--assume-role", role], moto.env())
    assert held.code == 0 and "no lock was held" in held.out, held.all


def test_export_reads_the_account_of_the_flags_role(moto: Moto) -> None:
    in_account(moto, OTHER, "iam").create_user(UserName="legacy")
    exported = run_cli(["export", "--stack", "legacy", "--region", "us-east-1", "--user", "legacy",
                        "--assume-role", f"arn:aws:iam::{OTHER}:role/reconciler"], moto.env())
    assert exported.code == 0, exported.all
    assert f'account: "{OTHER}"' in exported.out and "- {name: legacy}" in exported.out, exported.out
    # the runner's own account has no such user: without the flag, export does not find it
    plain = run_cli(["export", "--stack", "legacy", "--region", "us-east-1", "--user", "legacy"], moto.env())
    assert "{name: legacy}" not in plain.out and OTHER not in plain.out, plain.all


def test_the_flag_overrides_the_manifests_role(moto: Moto, tmp_path: Path) -> None:
    """Same account, another role: the stack is where `account:` says, reached through the flag's role."""
    manifest = with_role(tmp_path)
    applied = run_cli(["apply", str(manifest), "--auto-approve", "--assume-role",
                       f"arn:aws:iam::{ACCOUNT}:role/break-glass"], moto.env())
    assert applied.code == 0, applied.all
    assert holdings(moto, ACCOUNT) == THE_STACK


def test_the_guard_refuses_a_role_of_another_account(moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path, f'account: "{ACCOUNT}"\n')
    refused = run_cli(["plan", str(manifest), "--assume-role", f"arn:aws:iam::{OTHER}:role/reconciler"], moto.env())
    assert refused.code == 3, refused.all
    assert f"but the manifest says account: '{ACCOUNT}'" in refused.err, refused.err
    # and without a role, the runner's own account is refused as before
    guarded = run_cli(["plan", str(manifest)], moto.env())
    assert guarded.code == 1 and f"the credentials are for account {DEFAULT}" in guarded.err, guarded.all


@pytest.mark.parametrize("command", ["plan", "drift", "apply"])
def test_a_role_that_cannot_be_assumed_fails_before_any_other_call(faulty: Faulty, tmp_path: Path,
                                                                   command: str) -> None:
    manifest = with_role(tmp_path)
    faulty.add(rule(Fault.DENIED, "AssumeRole"))
    result = reconcile(faulty, command, str(manifest), *(["--auto-approve"] if command == "apply" else []))
    assert result.code == 1, result.all
    assert faulty.operations() == Counter({"AssumeRole": 1}), faulty.operations()  # AccessDenied is not retried
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.err
    assert f"cannot assume the role {ROLE}: sts:AssumeRole failed: AccessDenied" in errors[0]
    assert "trust policy" in errors[0] and "external id" in errors[0], errors[0]
    assert "Traceback" not in result.all and EXTERNAL_ID not in result.all


def test_a_throttled_assume_role_is_retried_then_named(faulty: Faulty, tmp_path: Path) -> None:
    manifest = with_role(tmp_path)
    faulty.add(rule(Fault.THROTTLE, "AssumeRole"))
    result = reconcile(faulty, "drift", str(manifest))
    assert result.code == 1, result.all
    assert faulty.operations() == Counter({"AssumeRole": 3}), faulty.operations()  # RECONCILER_MAX_ATTEMPTS=3
    assert f"cannot assume the role {ROLE}: sts:AssumeRole failed: Throttling" in result.err, result.err


def test_without_a_role_nothing_is_assumed(faulty: Faulty, tmp_path: Path) -> None:
    manifest = write(tmp_path, "")
    planned = reconcile(faulty, "plan", str(manifest))
    assert planned.code == 0, planned.all
    assert "AssumeRole" not in faulty.operations() and faulty.operations()["GetCallerIdentity"] == 1


def test_the_assumed_credentials_are_botocores_refreshing_ones(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.engine.clients import Clients, RoleToAssume

    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    clients = Clients("us-east-1", endpoint_url=moto.endpoint, role=RoleToAssume(ROLE, "refresh-test", 900))
    assert clients.account_id() == ACCOUNT
    creds = clients.role_credentials()
    assert isinstance(creds, botocore.credentials.RefreshableCredentials) and creds.method == "assume-role"
    # 900 s credentials are inside botocore's default 15-minute refresh window from the start: the windows
    # are scaled to the duration, or every call would assume the role again
    assert not creds.refresh_needed()
    iam: Any = clients.client("iam")
    iam.create_user(UserName="before-expiry")
    iam.list_users()
    assert Counter(op for _, op in clients.calls)["AssumeRole"] == 1, clients.calls
    first = creds.get_frozen_credentials()
    # expire them, as time would (moto does not enforce expiry, so the clock is moved on the object itself)
    creds._expiry_time = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["before-expiry"]  # still the role's account
    assert Counter(op for _, op in clients.calls)["AssumeRole"] == 2, clients.calls
    second = creds.get_frozen_credentials()
    assert second.access_key != first.access_key and second.token != first.token
    assert (creds._expiry_time - datetime.datetime.now(datetime.UTC)).total_seconds() > 800
    assert FAKE_KEY not in (second.access_key, second.secret_key)
