"""`reconcile credentials` through the real CLI against moto, and the AWS CLI (from PyPI) using it.

The secret is printed only into a pipe (a terminal is refused unless --show); --write-profile
writes a credential_process line and no secret; `aws sts get-caller-identity` with that profile
answers as the programmatic user.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, Moto, run_cli

MANIFEST = """\
version: 1
stack: creds
region: us-east-1
iam:
  users:
    - name: app-ci
      access_keys:
        count: 1
        store: {ssm: /creds/app-ci/key}
    - name: app-sm
      access_keys:
        count: 1
        store: {secretsmanager: creds/app-sm/key}
    - name: no-keys
"""


@pytest.fixture
def applied(moto: Moto, tmp_path: Path) -> Path:
    manifest = tmp_path / "creds.yaml"
    manifest.write_text(MANIFEST)
    result = run_cli(["apply", str(manifest), "--auto-approve"], moto.env())
    assert result.code == 0, result.all
    return manifest


def stored(moto: Moto, user: str) -> dict[str, str]:
    if user == "app-sm":
        sm: Any = moto.client("secretsmanager")
        return json.loads(sm.get_secret_value(SecretId="creds/app-sm/key")["SecretString"])  # type: ignore[no-any-return]
    ssm: Any = moto.client("ssm")
    value = ssm.get_parameter(Name="/creds/app-ci/key", WithDecryption=True)["Parameter"]["Value"]
    return json.loads(value)  # type: ignore[no-any-return]


def on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run `reconcile ARGS` with stdout on a pseudo-terminal; (exit code, what the terminal got, stderr)."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", *args], env=env, cwd=ROOT,
                                stdout=follower, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        _, err = proc.communicate(timeout=120)
    finally:
        os.close(leader)
    return proc.returncode, b"".join(chunks).decode(errors="replace"), err


@pytest.mark.parametrize("user", ["app-ci", "app-sm"])
def test_the_key_is_printed_into_a_pipe_and_refused_on_a_terminal(moto: Moto, applied: Path, user: str) -> None:
    key = stored(moto, user)
    piped = run_cli(["credentials", str(applied), "--user", user], moto.env())
    assert piped.code == 0, piped.err
    assert json.loads(piped.out) == {"Version": 1, "AccessKeyId": key["AccessKeyId"],
                                     "SecretAccessKey": key["SecretAccessKey"]}
    assert key["SecretAccessKey"] not in piped.err
    iam: Any = moto.client("iam")
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]] == [key["AccessKeyId"]]

    code, shown, err = on_a_terminal(["credentials", str(applied), "--user", user], moto.env())
    assert code == 3, err
    assert key["SecretAccessKey"] not in shown + err
    assert "--show" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err

    code, shown, err = on_a_terminal(["credentials", str(applied), "--user", user, "--show"], moto.env())
    assert code == 0, err
    assert key["SecretAccessKey"] in shown and key["SecretAccessKey"] not in err


def test_users_without_a_key_and_stores_not_yet_made_are_clear_errors(moto: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "creds.yaml"
    manifest.write_text(MANIFEST)
    unknown = run_cli(["credentials", str(manifest), "--user", "nobody"], moto.env())
    assert unknown.code == 3 and "no such user" in unknown.err and "app-ci" in unknown.err, unknown.all
    keyless = run_cli(["credentials", str(manifest), "--user", "no-keys"], moto.env())
    assert keyless.code == 3 and "no access key store" in keyless.err, keyless.all
    missing = run_cli(["credentials", str(manifest), "--user", "app-ci"], moto.env())  # not applied yet
    assert missing.code == 1 and "does not exist" in missing.err and missing.out == "", missing.all
    ssm: Any = moto.client("ssm")
    ssm.put_parameter(Name="/creds/app-ci/key", Value="not json at all", Type="SecureString")
    broken = run_cli(["credentials", str(manifest), "--user", "app-ci"], moto.env())
    assert broken.code == 1 and "does not hold an access key" in broken.err and broken.out == "", broken.all
    assert "not json" not in broken.all
    for result in (unknown, keyless, missing, broken):
        assert "Traceback" not in result.all


def test_write_profile_then_the_aws_cli_is_the_programmatic_user(moto: Moto, applied: Path, tmp_path: Path) -> None:
    config = tmp_path / "aws-config"
    config.write_text("# my settings\n[profile other]\nregion = eu-west-1\n")
    env = moto.env(AWS_CONFIG_FILE=str(config))
    written = run_cli(["credentials", str(applied), "--user", "app-ci", "--write-profile", "ci",
                       "--endpoint-url", moto.endpoint], env)
    assert written.code == 0, written.all
    text = config.read_text()
    assert text.startswith("# my settings\n[profile other]\nregion = eu-west-1\n")  # kept as it was
    added = text.split("[profile ci]\n", 1)[1]
    # those two lines, nothing else: the region is the manifest's, so the AWS CLI needs no --region
    assert added.startswith("credential_process = ") and added.count("\n") == 2
    assert added.endswith(f"\nregion = {yaml.safe_load(applied.read_text())['region']}\n")
    assert f"credentials {applied.resolve()} --user app-ci --endpoint-url {moto.endpoint}" in added
    key = stored(moto, "app-ci")
    assert key["SecretAccessKey"] not in text and key["AccessKeyId"] not in text

    again = run_cli(["credentials", str(applied), "--user", "app-ci", "--write-profile", "ci",
                     "--endpoint-url", moto.endpoint], env)
    assert again.code == 0 and config.read_text() == text, again.all  # idempotent
    itself = run_cli(["credentials", str(applied), "--user", "app-ci", "--write-profile", "ci2", "--profile", "ci2"],
                     env)
    assert itself.code == 3 and "call itself" in itself.err and config.read_text() == text, itself.all
    taken = run_cli(["credentials", str(applied), "--user", "app-ci", "--write-profile", "other"], env)
    assert taken.code == 3 and "exists already" in taken.err and config.read_text() == text, taken.all

    aws = Path(sys.executable).parent / "aws"
    regionless = {k: v for k, v in env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    identity = subprocess.run([str(aws), "sts", "get-caller-identity", "--profile", "ci", "--endpoint-url",
                               moto.endpoint, "--output", "json"], env=regionless, capture_output=True, text=True,
                              timeout=180, cwd=tmp_path)  # not the checkout: the profile must not need it
    assert identity.returncode == 0, identity.stderr
    iam: Any = moto.client("iam")
    assert json.loads(identity.stdout)["Arn"] == iam.get_user(UserName="app-ci")["User"]["Arn"]
    assert key["SecretAccessKey"] not in identity.stdout + identity.stderr

    # no credentials of the caller's own but AWS_PROFILE naming the profile itself: the nested
    # credential_process refuses, never recurses
    bare = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    looping = subprocess.run([str(aws), "sts", "get-caller-identity", "--profile", "ci", "--endpoint-url",
                              moto.endpoint], env={**bare, "AWS_PROFILE": "ci"}, capture_output=True, text=True,
                             timeout=180, cwd=tmp_path)
    assert looping.returncode != 0
    assert "custom-process" in looping.stderr, looping.stderr  # one nested run, refused (details hidden)
    assert key["SecretAccessKey"] not in looping.stdout + looping.stderr
