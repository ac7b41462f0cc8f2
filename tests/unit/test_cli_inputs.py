"""Hostile command-line inputs get a one-line error and exit 3, never a traceback, a hang or an AWS call.

Each case is a real `reconcile` process with no AWS configuration (an AWS call
would fail or hang on the metadata service) and a timeout (a read that blocks
fails the test instead of hanging it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

MANIFEST = "version: 1\nstack: demo\nregion: eu-west-1\niam:\n  groups: [{name: readers}]\n"
TIMEOUT = 30


def reconcile(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(HOME=str(cwd), AWS_CONFIG_FILE=str(cwd / "none"), AWS_SHARED_CREDENTIALS_FILE=str(cwd / "none"),
                 AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1", PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=cwd, env=clean, capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def assert_one_line_exit_3(result: subprocess.CompletedProcess[str], text: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 3, out
    assert "Traceback" not in out
    assert result.stderr.count("\n") == 1, result.stderr
    assert text in result.stderr, result.stderr


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("shape", "text"), [
    ("[" * 100_000 + "]" * 100_000, "invalid plan file: nested deeper than 100 levels"),
    ('{"a": ' * 150 + "1" + "}" * 150, "invalid plan file: nested deeper than 100 levels"),
    ("\xff\xfe", "not a readable plan file: not UTF-8 text"),
    ("{", "not a readable plan file: Expecting property name"),
])
def test_a_hostile_plan_file_is_invalid(workdir: Path, shape: str, text: str) -> None:
    (workdir / "plan.json").write_bytes(shape.encode("latin-1"))
    result = reconcile(["apply", "m.yaml", "--plan", "plan.json"], workdir)
    assert_one_line_exit_3(result, f"error: plan.json: {text}")


def test_a_fifo_plan_file_is_refused_at_once(workdir: Path) -> None:
    os.mkfifo(workdir / "plan.json")  # no writer: reading it would block forever
    result = reconcile(["apply", "m.yaml", "--plan", "plan.json"], workdir)
    assert_one_line_exit_3(result, "error: plan.json: not a readable plan file: it is a named pipe (FIFO), not a "
                                   "regular file")


@pytest.mark.parametrize("how", ["flag", "env"])
@pytest.mark.parametrize("url", ["127.0.0.1:5000", "localhost", "ftp://127.0.0.1:5000"])
def test_an_endpoint_url_without_a_scheme_is_a_usage_error(workdir: Path, how: str, url: str) -> None:
    args, env = (["--endpoint-url", url], {}) if how == "flag" else ([], {"AWS_ENDPOINT_URL": url})
    result = reconcile(["plan", "m.yaml", *args], workdir, **env)
    assert_one_line_exit_3(result, "is not an http(s) URL; write it with its scheme, e.g. http://127.0.0.1:5000")


@pytest.mark.parametrize("command,option", [("plan", "--out"), ("drift", "--report")])
@pytest.mark.parametrize("target", ["missing-dir/out.json", "fifo", "/dev/null"])
def test_an_output_path_that_cannot_be_written_is_refused_before_any_aws_call(
        workdir: Path, command: str, option: str, target: str) -> None:
    """Found by a new-user test: a traceback after all the reads. Now exit 3 before anything is read
    (no AWS is configured here at all: a read would fail with exit 1 instead)."""
    if target == "fifo":
        os.mkfifo(workdir / "fifo")
    result = reconcile([command, "m.yaml", option, target], workdir)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and option in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_export_says_its_region_is_the_one_to_read_not_a_guard() -> None:
    from click.testing import CliRunner

    from reconciler.cli import cli

    shown = CliRunner().invoke(cli, ["export", "--help"]).output
    assert "The region to read" in shown and "A guard" not in shown
    assert "A guard" in CliRunner().invoke(cli, ["plan", "--help"]).output  # the common option elsewhere
