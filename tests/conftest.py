"""Shared fixtures: a real moto server on a free loopback port, and a CLI runner.

Integration tests reach moto over HTTP exactly as users reach AWS
(`AWS_ENDPOINT_URL`), through the same `reconcile` entry point users run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

# `faulty`: the fault-injecting proxy in front of `moto` (tests/faults/)
pytest_plugins = ("tests.faults.plugin",)

ROOT = Path(__file__).resolve().parent.parent
FAKE_KEY = "testing"  # moto accepts any credentials

# A suite started in the background of a script (`make test &`, `nohup ... &`) inherits SIGINT ignored:
# POSIX shells ignore SIGINT and SIGQUIT in asynchronous commands. The tests that press Ctrl-C would then
# send it to children that ignore it (Python installs no handler for a signal ignored at start), and the
# in-process ones would never see KeyboardInterrupt. Ctrl-C is restored here, for the suite and every
# child it starts; a user's `reconcile ... &` keeps ignoring it, as POSIX means it to.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Moto:
    endpoint: str
    process: subprocess.Popen[bytes]

    def reset(self) -> None:
        # an account other than the default costs seconds to reset (moto rebuilds its IAM backend with the
        # managed policies), more on a busy machine: bounded, but not by 10 s
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=60).raise_for_status()

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=FAKE_KEY, AWS_SECRET_ACCESS_KEY=FAKE_KEY, AWS_DEFAULT_REGION="us-east-1",
                   AWS_ENDPOINT_URL=self.endpoint, NO_COLOR="1", RECONCILER_MAX_ATTEMPTS="3")
        env.update(extra)
        return env

    def client(self, service: str, region: str = "us-east-1") -> object:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=region,
                            aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_KEY)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Moto]:
    port = free_port()
    import tempfile

    workdir = tempfile.mkdtemp(prefix="reconciler-moto-")
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "AWS_ACCESS_KEY_ID": FAKE_KEY,
           "AWS_SECRET_ACCESS_KEY": FAKE_KEY, "MOTO_RECORDER_FILEPATH": os.path.join(workdir, "moto_recording")}
    process = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                               env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"{endpoint}/moto-api/", timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("moto server did not start")
    yield Moto(endpoint, process)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # a busy machine: do not fail a green run on teardown
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def moto(moto_server: Moto) -> Moto:
    """A moto server with an empty account for this test."""
    moto_server.reset()
    return moto_server


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def all(self) -> str:
        return self.out + self.err


def run_cli(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
            stdin: str | None = None) -> CliResult:
    """Run `reconcile ARGS` as a user would: a separate process."""
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli", *args], env=env, cwd=cwd or ROOT,
                          capture_output=True, text=True, input=stdin, timeout=300)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(moto: Moto) -> object:
    def run(*args: str, **env: str) -> CliResult:
        return run_cli(list(args), moto.env(**env))

    return run
