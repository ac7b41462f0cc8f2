"""Start the local stand-ins the demo and benchmarks use: moto server and a registry.

Both bind 127.0.0.1 on free ports and stop when the context exits. The registry
is Debian's `docker-registry` with a bcrypt htpasswd user `AWS` whose password is
what moto's ECR authorization token decodes to, so `--registry` can map the ECR
host to it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MOTO_ACCOUNT = "123456789012"
REGISTRY_PASSWORD = f"{MOTO_ACCOUNT}-auth-token"  # what moto's get_authorization_token decodes to


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, ok: tuple[int, ...], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {seconds}s")


@contextmanager
def moto_server() -> Iterator[str]:
    """Yield the endpoint URL of a fresh moto server."""
    port = free_port()
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    binary = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}/moto-api/", ok=(200,))
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def registry(port: int | None = None) -> Iterator[str]:
    """Yield HOST:PORT of a private registry with htpasswd auth (user AWS), on `port` or a free one."""
    import bcrypt

    if shutil.which("docker-registry") is None:
        raise RuntimeError("docker-registry is not installed: run `make services` (root on Debian)")
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="reconciler-registry-") as tmp:
        root = Path(tmp)
        hashed = bcrypt.hashpw(REGISTRY_PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
        (root / "htpasswd").write_text(f"AWS:{hashed}\n")
        (root / "config.yml").write_text(
            "version: 0.1\n"
            "log: {level: error}\n"
            f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: 127.0.0.1:{port}}}\n"
            f"auth: {{htpasswd: {{realm: reconciler, path: {root / 'htpasswd'}}}}}\n")
        proc = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait(f"http://127.0.0.1:{port}/v2/", ok=(401,))
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
