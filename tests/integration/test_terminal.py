"""Apply in a pseudo-terminal (pexpect) against moto: the live progress an operator sees, and what a log gets.

On a terminal: an `N/M` bar, each action in flight with its elapsed time, each finished
resource printed once, colour; with NO_COLOR=1, or stdout / stderr a pipe: no colour
codes on that stream. With the real Docker Engine and registry: an image push shows
bytes per layer with a total. Each test stays within a few seconds (one slowed call).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.conftest import ROOT, Moto
from tests.faults.plugin import Faulty
from tests.faults.proxy import Fault, rule
from tests.integration.conftest import SECRETS, LocalRegistry

CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MANIFEST = """\
version: 1
stack: ttytest
region: us-east-1
iam:
  groups:
    - name: readers
  users:
    - name: slow
      groups: [readers]
    - name: quick
"""
ADDRESSES = ("iam.group.readers", "iam.user.slow", "iam.user.quick")


def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    return path


def terminal_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    """The test env as a 256-colour terminal; moto's env sets NO_COLOR for the piped tests: not here."""
    made = {k: v for k, v in env.items() if k != "NO_COLOR"}
    made.update(TERM="xterm-256color", COLUMNS="120", LINES="40", **extra)
    return made


def in_pty(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run `reconcile ARGS` on a pseudo-terminal (stdin, stdout, stderr); its exit code and every byte shown."""
    child = pexpect.spawn(sys.executable, ["-m", "reconciler.cli", *args], env=env, cwd=str(ROOT),
                          dimensions=(40, 120), encoding="utf-8", codec_errors="replace", timeout=timeout)
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus if child.exitstatus is not None else 128 + (child.signalstatus or 0)), \
        str(child.before)


def test_apply_on_a_terminal_shows_live_progress_and_prints_each_resource_once(faulty: Faulty,
                                                                               tmp_path: Path) -> None:
    faulty.add(rule(Fault.LATENCY, "CreateUser", delay=2.0))  # both users' creates are in flight a while
    code, shown = in_pty(["apply", str(manifest(tmp_path)), "--auto-approve"], terminal_env(faulty.env()))
    text = CSI.sub("", shown)
    assert code == 0, text
    assert re.search(r"\b[0-3]/3\b", text) and "3/3" in text, text  # the overall bar's N/M
    assert re.search(r"iam\.user\.slow: creating… [12]s", text), text  # in flight, with its elapsed time
    for address in ADDRESSES:
        # a line printed above the live area starts after the area's erase (a `\r` once the codes are gone)
        finished = re.findall(rf"(?:^|\r)\+ {re.escape(address)} created \d+\.\ds", text, re.M)
        assert len(finished) == 1, (address, text)  # printed once, when it finished
    assert "Apply complete: 3 done, 0 failed, 0 skipped." in text, text
    assert "\x1b[32m" in shown or "\x1b[38;5;2m" in shown, shown  # green additions on the terminal
    faulty.clear()
    code, shown = in_pty(["destroy", str(manifest(tmp_path)), "--auto-approve"], terminal_env(faulty.env()))
    text = CSI.sub("", shown)
    assert code == 0, text
    for address in ADDRESSES:  # deletions: `-` and red, once each
        assert len(re.findall(rf"(?:^|\r)- {re.escape(address)} destroyed \d+\.\ds", text, re.M)) == 1, text
    assert "\x1b[31m- iam.user.slow destroyed" in shown, shown


def test_no_color_on_a_terminal_gives_plain_timestamped_lines(moto: Moto, tmp_path: Path) -> None:
    code, shown = in_pty(["apply", str(manifest(tmp_path)), "--auto-approve"], terminal_env(moto.env(),
                                                                                            NO_COLOR="1"))
    assert code == 0, shown
    assert "\x1b[" not in shown, repr(shown)
    applied = shown[shown.index("\nPlan: "):].split("\n", 2)[2]  # what apply printed after the plan
    for address in ADDRESSES:
        assert len(re.findall(rf"\b{re.escape(address)}\b", applied)) == 1, applied  # once: when it finished
        assert len(re.findall(rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ {re.escape(address)} created \(\d+\.\ds\)\r?$",
                              shown, re.M)) == 1, shown
    assert shown.rstrip().endswith("Apply complete: 3 done, 0 failed, 0 skipped."), shown


def test_a_piped_stream_gets_no_colour_while_the_terminal_keeps_its_own(moto: Moto, tmp_path: Path) -> None:
    path = manifest(tmp_path)
    # stdout through a pipe (`| cat > file`), stderr the terminal: the summary is plain, the progress live
    out_file = tmp_path / "out.txt"
    script = f"{sys.executable} -m reconciler.cli apply {path} --auto-approve | cat > {out_file}"
    child = pexpect.spawn("sh", ["-c", script], env=terminal_env(moto.env()), cwd=str(ROOT), dimensions=(40, 120),
                          encoding="utf-8", timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    piped = out_file.read_text()
    assert "\x1b[" not in piped and "Apply complete: 3 done, 0 failed, 0 skipped." in piped, repr(piped)
    assert "\x1b[" in str(child.before) and "3/3" in CSI.sub("", str(child.before)), child.before
    # both streams pipes (a CI log): plain lines on stderr, no colour anywhere
    moto.reset()
    env = terminal_env(moto.env())
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli", "apply", str(path), "--auto-approve"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stdout + proc.stderr, repr(proc.stderr)
    assert re.search(r"Z iam\.user\.slow created \(\d+\.\ds\)$", proc.stderr, re.M), proc.stderr


def test_quiet_prints_only_failures_and_the_summary(faulty: Faulty, tmp_path: Path) -> None:
    faulty.add(rule(Fault.HTTP_500, "CreateUser"))  # every user fails (after the retries), the group is done
    code, shown = in_pty(["apply", str(manifest(tmp_path)), "--auto-approve", "-q"],
                         terminal_env(faulty.env(RECONCILER_MAX_ATTEMPTS="1")))
    assert code == 1, shown
    text = CSI.sub("", shown)
    lines = text[text.index("\nPlan: "):].splitlines()[1:]  # what apply printed after the plan
    assert not any("iam.group.readers" in line for line in lines), shown  # done: not a word with -q
    assert len([line for line in lines if re.search(r"Z iam\.user\.slow FAILED \(create\) after", line)]) == 1, shown
    summary = text[text.index("Failed:"):]
    assert "x create iam.user.slow: " in summary and "x create iam.user.quick: " in summary, summary
    assert "Apply incomplete: 1 done, 2 failed, 0 skipped." in summary, summary


DOCKERFILE = """\
FROM scratch
COPY blob.bin /blob.bin
"""


@pytest.mark.docker
def test_an_image_push_on_a_terminal_shows_bytes_per_layer(tmp_path: Path, moto: Moto, registry: LocalRegistry,
                                                           docker_engine: Any) -> None:
    repo = f"tty-{uuid.uuid4().hex[:8]}"
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "blob.bin").write_bytes(os.urandom(16 * 1024 * 1024))  # incompressible: the push takes a moment
    path = tmp_path / "img.yaml"
    path.write_text(f"version: 1\nstack: ttyimg\nregion: us-east-1\necr:\n  repositories:\n    - name: {repo}\n"
                    f"      force_delete: true\nimages:\n  - repository: {repo}\n    context: ctx\n    tags: [v1]\n")
    code, shown = in_pty(["apply", str(path), "--auto-approve", "--registry", registry.host],
                         terminal_env(moto.env()), timeout=180)
    text = CSI.sub("", shown)
    for secret in SECRETS:
        assert secret not in shown
    assert code == 0, text
    assert re.search(r"Step \d/\d: COPY blob.bin", text), text  # the build's steps, live
    # the push live: bytes of the layer in flight out of its size, and the image's total
    assert re.search(r"layer [0-9a-f]{12} .*[\d.]+ [kM]?B / 16\.8 MB", text), text
    assert re.search(r"\d/1 layers, [\d.]+ [kM]?B / 16\.8 MB", text), text
    (line,) = re.findall(rf"(?:^|\r)(\+ image\.{repo}:v1 created .*)$", text, re.M)  # once
    assert "created" in line and "(1 layer, 16.8 MB pushed)" in line, line
