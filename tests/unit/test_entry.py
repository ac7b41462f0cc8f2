"""The `reconcile` entry point leaves with os._exit once main() is done: exit codes and output intact.

Each test runs the command as a user does (a separate process, `python -m reconciler`), because
the entry point ends the process; in-process callers use `main`, which raises SystemExit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_exit_codes_are_main_s(tmp_path: Path) -> None:
    assert run("validate", str(ROOT / "manifests" / "minimal.yaml")).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nstack: x\nregion: us-east-1\nbogus: true\n")
    failed = run("validate", str(bad))
    assert failed.returncode == 3, failed.stderr
    assert f"{bad}:4:1" in failed.stderr  # the message was flushed before the process left


def test_a_long_output_to_a_pipe_arrives_whole() -> None:
    """stdout to a pipe is block-buffered: whatever is still in the buffer must be flushed before os._exit."""
    printed = run("schema")
    assert printed.returncode == 0
    schema = json.loads(printed.stdout)  # the whole document, or it would not parse
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert len(printed.stdout) > 8192  # more than one buffer's worth


def test_a_reader_that_goes_away_is_no_traceback() -> None:
    """`| true` closes the pipe before the schema is written: click exits 1 quietly, and the exit's own
    flush must not turn that into a traceback (0 when the write won the race with `true`)."""
    gone = subprocess.run(f"{sys.executable} -m reconciler schema | true; echo ${{PIPESTATUS[0]}} >&2", shell=True,
                          executable="/bin/bash", cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in gone.stderr and "BrokenPipe" not in gone.stderr, gone.stderr
    assert gone.stderr.strip() in ("0", "1"), gone.stderr


def test_the_teardown_is_skipped() -> None:
    """An atexit handler of the process never runs: the interpreter's teardown is what os._exit skips."""
    code = ("import atexit, sys; atexit.register(lambda: print('torn down', file=sys.stderr)); "
            "sys.argv = ['reconcile', '--version']; from reconciler.cli import entry; entry()")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "version" in proc.stdout
    assert "torn down" not in proc.stderr
