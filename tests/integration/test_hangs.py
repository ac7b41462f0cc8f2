"""An endpoint that accepts and never answers: every command ends in bounded time with one clear line.

The endpoint is a real loopback socket that accepts connections and reads nothing back;
`reconcile` runs as a separate process pointed at it, exactly as at a hung AWS endpoint.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAKE_KEY, ROOT, run_cli
from tests.integration.hung import describe_hung

MANIFEST = """\
version: 1
stack: hangtest
region: us-east-1
iam:
  users: [{name: svc}]
"""


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """http://127.0.0.1:PORT that accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def env(endpoint: str, **extra: str) -> dict[str, str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update(AWS_ACCESS_KEY_ID=FAKE_KEY, AWS_SECRET_ACCESS_KEY=FAKE_KEY, AWS_DEFAULT_REGION="us-east-1",
                AWS_ENDPOINT_URL=endpoint, NO_COLOR="1")
    base.update(extra)
    return base


def test_read_timeouts_bound_each_call(silent_endpoint: str, tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    started = time.monotonic()
    result = run_cli(["plan", str(path)], env(silent_endpoint, RECONCILER_READ_TIMEOUT="1",
                                              RECONCILER_MAX_ATTEMPTS="2"))
    assert time.monotonic() - started < 30
    assert result.code == 1 and "Traceback" not in result.all, result.all
    assert "Read timeout" in result.err and len(result.err.strip().splitlines()) == 1, result.err


@pytest.mark.parametrize("command", ["plan", "drift"])
def test_the_run_deadline_ends_a_hung_read_only_run(silent_endpoint: str, tmp_path: Path, command: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    started = time.monotonic()
    result = run_cli([command, str(path), "--timeout", "2"], env(silent_endpoint))  # default 30 s read timeout
    assert time.monotonic() - started < 20
    assert result.code == 1 and "Traceback" not in result.all, result.all
    assert f"error: {command} did not finish within --timeout 2 s" in result.err, result.err


def test_ctrl_c_while_waiting_on_aws_exits_130(silent_endpoint: str, tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "apply", str(path), "--auto-approve"],
                            env=env(silent_endpoint), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(3)  # importing, then blocked in the first call
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        state = describe_hung(proc.pid)
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"no exit 30 s after SIGINT:\n{state}\nstdout: {out}\nstderr: {err}") from None
    assert proc.returncode == 130 and "Traceback" not in err, (out, err)


def test_sigterm_while_waiting_on_aws_exits_143(silent_endpoint: str, tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "plan", str(path)],
                            env=env(silent_endpoint), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "interrupted by SIGTERM" in err and "Traceback" not in err, (out, err)
