"""Real Docker Engine and a real registry for the image tests, one of each per test session.

- `docker_engine`: runs `scripts/ensure-docker.sh` (installs and starts dockerd when
  missing; never assumed), then a Docker SDK client. A failure fails the tests: CI
  starts from nothing and must not skip them.
- `registry`: Debian's `docker-registry serve` with its own config on a free
  127.0.0.1 port, storage in a temp dir, deletes enabled, bcrypt htpasswd user `AWS`
  with the password moto's GetAuthorizationToken decodes to. Stopped at the end;
  only the images tagged for it (`127.0.0.1:<port>/...`) are removed from the daemon.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ROOT, free_port

REGISTRY_USER = "AWS"
REGISTRY_PASSWORD = "123456789012-auth-token"  # what moto's authorization token decodes to
SECRETS = (REGISTRY_PASSWORD, base64.b64encode(f"{REGISTRY_USER}:{REGISTRY_PASSWORD}".encode()).decode())
ACCEPT = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
))


def ensure_docker() -> None:
    """Run scripts/ensure-docker.sh once at a time across xdist workers (apt and dockerd must not race)."""
    import fcntl

    with open(Path(tempfile.gettempdir()) / "reconciler-ensure-docker.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(["bash", str(ROOT / "scripts" / "ensure-docker.sh")], capture_output=True,
                                text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"no Docker Engine or docker-registry: {result.stderr.strip()}")


@pytest.fixture(scope="session")
def docker_engine() -> Any:
    ensure_docker()
    import docker

    client = docker.from_env(timeout=300)
    client.ping()
    return client


@dataclass
class LocalRegistry:
    """A running registry; `host` is what `--registry` gets."""

    host: str
    process: subprocess.Popen[bytes]
    root: Path

    def _get(self, path: str, **headers: str) -> requests.Response:
        return requests.get(f"http://{self.host}{path}", auth=(REGISTRY_USER, REGISTRY_PASSWORD), headers=headers,
                            timeout=30)

    def tags(self, repository: str) -> list[str]:
        response = self._get(f"/v2/{repository}/tags/list")
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get("tags") or [])

    def digest(self, repository: str, tag: str) -> str | None:
        response = self._get(f"/v2/{repository}/manifests/{tag}", Accept=ACCEPT)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return "sha256:" + hashlib.sha256(response.content).hexdigest()

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        response = self._get(f"/v2/{repository}/manifests/{reference}", Accept=ACCEPT)
        response.raise_for_status()
        return response.content, response.headers["Content-Type"]

    def config(self, repository: str, tag: str) -> dict[str, Any]:
        body, _ = self.manifest(repository, tag)
        blob = self._get(f"/v2/{repository}/blobs/{json.loads(body)['config']['digest']}")
        blob.raise_for_status()
        return blob.json()  # type: ignore[no-any-return]

    def auth(self) -> dict[str, str]:
        return {"username": REGISTRY_USER, "password": REGISTRY_PASSWORD}


@pytest.fixture(scope="session")
def registry() -> Iterator[LocalRegistry]:
    import bcrypt

    if shutil.which("docker-registry") is None:
        ensure_docker()
    root = Path(tempfile.mkdtemp(prefix="reconciler-registry-"))
    port = free_port()
    hashed = bcrypt.hashpw(REGISTRY_PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
    (root / "htpasswd").write_text(f"{REGISTRY_USER}:{hashed}\n")
    (root / "config.yml").write_text(f"""\
version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {root / "data"}}}
  delete: {{enabled: true}}
http:
  addr: 127.0.0.1:{port}
auth:
  htpasswd: {{realm: reconciler-tests, path: {root / "htpasswd"}}}
""")
    log = (root / "registry.log").open("wb")
    process = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")], stdout=log,
                               stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"http://{host}/v2/", timeout=1).status_code == 401:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"docker-registry did not start: {(root / 'registry.log').read_text()[-2000:]}")
        time.sleep(0.05)
    try:
        yield LocalRegistry(host, process, root)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        _remove_images_tagged_for(host)
        shutil.rmtree(root, ignore_errors=True)


def _remove_images_tagged_for(host: str) -> None:
    """Untag only what was tagged for this registry; images stay when something else still uses them."""
    try:
        import docker

        client = docker.from_env(timeout=60)
        for image in client.images.list():
            for tag in image.tags:
                if tag.startswith(f"{host}/"):
                    with contextlib.suppress(docker.errors.APIError):
                        client.images.remove(tag)
    except Exception:  # the daemon went away: nothing of ours is left to remove
        pass
