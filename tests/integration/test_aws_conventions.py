"""The AWS CLI's conventions: shared config and credentials files, profiles, per-service endpoints."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import ROOT, Moto, run_cli

MANIFEST = str(ROOT / "manifests" / "minimal.yaml")


def _bare_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any AWS_ variable, so only what the test sets is seen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(NO_COLOR="1", RECONCILER_MAX_ATTEMPTS="2", **extra)
    return env


def test_profile_from_shared_files_with_endpoint_in_config(moto: Moto, tmp_path: Path) -> None:
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text(f"[profile team]\nregion = us-east-1\nendpoint_url = {moto.endpoint}\n")
    credentials.write_text("[team]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    env = _bare_env(AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    by_flag = run_cli(["plan", MANIFEST, "--profile", "team"], env)
    assert by_flag.code == 0, by_flag.all
    by_env = run_cli(["plan", MANIFEST], {**env, "AWS_PROFILE": "team"})
    assert by_env.code == 0, by_env.all
    missing = run_cli(["plan", MANIFEST, "--profile", "nobody"], env)
    assert missing.code == 1 and "profile" in missing.err and "Traceback" not in missing.err, missing.all


def test_assume_role_profile_goes_through_sts(moto: Moto, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(f"[profile base]\nregion = us-east-1\nendpoint_url = {moto.endpoint}\n"
                      "aws_access_key_id = testing\naws_secret_access_key = testing\n"
                      f"[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/deployer\nsource_profile = base\n"
                      f"endpoint_url = {moto.endpoint}\n")
    result = run_cli(["plan", MANIFEST, "--profile", "deploy"], _bare_env(AWS_CONFIG_FILE=str(config)))
    assert result.code == 0, result.all


def test_per_service_endpoint_beats_the_global_one(moto: Moto) -> None:
    env = moto.env()
    assert run_cli(["plan", MANIFEST], env).code == 0
    # IAM alone sent to a closed loopback port: the run must fail on IAM, proving the variable was used
    redirected = run_cli(["plan", MANIFEST], {**env, "AWS_ENDPOINT_URL_IAM": "http://127.0.0.1:9"})
    assert redirected.code == 1, redirected.all
    assert "Traceback" not in redirected.err


def test_endpoint_url_without_scheme_is_one_line_exit_3(moto: Moto) -> None:
    for extra, flag in (({}, ["--endpoint-url", "127.0.0.1:4566"]),
                        ({"AWS_ENDPOINT_URL": "127.0.0.1:4566"}, []),
                        ({"AWS_ENDPOINT_URL_SSM": "localhost:4566"}, [])):
        result = run_cli(["plan", MANIFEST, *flag], moto.env(**extra))
        assert result.code == 3, (extra, flag, result.all)
        assert "is not an http(s) URL" in result.err and "http://" in result.err and "Traceback" not in result.err
        assert len(result.err.strip().splitlines()) == 1, result.err


def test_region_flag_help_says_what_it_is_for() -> None:
    result = run_cli(["plan", "--help"])
    assert result.code == 0 and "manifest's region" in result.out, result.all


def test_malformed_endpoint_urls_are_one_line_exit_3_wherever_they_come_from(moto: Moto, tmp_path: Path) -> None:
    """Found by a new-user test: these gave botocore tracebacks (config file, bad port, bad IPv6)."""
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text("[profile bad]\nregion = us-east-1\nendpoint_url = 127.0.0.1:4566\n"
                      "[profile port]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:99999\n"
                      "[profile svc]\nregion = us-east-1\nservices = svc\n[services svc]\nsts =\n"
                      "  endpoint_url = localhost:4566\n")
    credentials.write_text("".join(f"[{p}]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
                                   for p in ("bad", "port", "svc")))
    files = _bare_env(AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    cases = [(["--profile", "bad"], files), (["--profile", "port"], files), (["--profile", "svc"], files),
             (["--endpoint-url", "http://127.0.0.1:99999"], moto.env()),
             (["--endpoint-url", "http://[::1"], moto.env())]
    for args, env in cases:
        result = run_cli(["plan", MANIFEST, *args], env)
        assert result.code == 3, (args, result.all)
        assert "endpoint URL" in result.err and "Traceback" not in result.err, (args, result.err)
        assert len(result.err.strip().splitlines()) == 1, (args, result.err)
