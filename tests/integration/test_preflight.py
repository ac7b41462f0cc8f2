"""Apply's checks before it asks or changes anything (engine/preflight.py), against moto server.

No Docker Engine is needed: each run stops before any build.
- against an emulator (AWS_ENDPOINT_URL is moto) without --registry, images to build are refused
  at plan time, exit 3, naming the ECR registry host and --registry; nothing is created (not even
  the repositories, which come first in the plan's order);
- with --registry but no Docker Engine answering (DOCKER_HOST=unix:///nonexistent), one line names
  DOCKER_HOST and how to start the engine, once for two images, exit 1, no traceback; nothing created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, Moto

MANIFEST = """\
version: 1
stack: preflight
region: us-east-1
ecr:
  repositories:
    - {name: app}
    - {name: web}
images:
  - {repository: app, context: ctx, tags: ["1"]}
  - {repository: web, context: ctx, tags: ["1"]}
"""


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /app.txt\n")
    (tmp_path / "ctx" / "app.txt").write_text("one\n")
    path = tmp_path / "stack.yaml"
    path.write_text(MANIFEST)
    return path


def repositories(moto: Moto) -> list[str]:
    ecr: Any = moto.client("ecr")
    return [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]


def test_images_against_an_emulator_need_registry(cli: Any, moto: Moto, manifest: Path) -> None:
    result: CliResult = cli("apply", str(manifest), "--auto-approve")
    assert result.code == 3, result.all
    assert "error: the registry host is not mapped" in result.err
    assert ".dkr.ecr.us-east-1.amazonaws.com" in result.err and "pass --registry HOST:PORT" in result.err
    assert "Traceback" not in result.all
    assert repositories(moto) == []  # stopped before the first change, not only before the build


def test_the_registry_check_passes_with_registry(cli: Any, moto: Moto, manifest: Path) -> None:
    # with --registry the same plan gets past the registry check and stops at the Docker one
    result: CliResult = cli("apply", str(manifest), "--auto-approve", "--registry", "127.0.0.1:9",
                            DOCKER_HOST="unix:///nonexistent")
    assert "registry host is not mapped" not in result.err
    assert result.code == 1, result.all


def test_docker_unreachable_is_one_line_once(cli: Any, moto: Moto, manifest: Path) -> None:
    result: CliResult = cli("apply", str(manifest), "--auto-approve", "--registry", "127.0.0.1:9",
                            DOCKER_HOST="unix:///nonexistent")
    assert result.code == 1, result.all
    lines = [line for line in result.err.splitlines() if "Docker Engine" in line]
    assert lines == ["error: cannot reach the Docker Engine at DOCKER_HOST=unix:///nonexistent; start it (dockerd, "
                     "or systemctl start docker) or set DOCKER_HOST to one that runs, and re-run"], result.err
    assert "Traceback" not in result.all and "FileNotFoundError" not in result.all
    assert repositories(moto) == []


def test_a_plan_without_builds_needs_neither(cli: Any, moto: Moto, tmp_path: Path) -> None:
    path = tmp_path / "repos.yaml"
    path.write_text(MANIFEST.split("images:")[0])
    result: CliResult = cli("apply", str(path), "--auto-approve", DOCKER_HOST="unix:///nonexistent")
    assert result.code == 0, result.all
    assert sorted(repositories(moto)) == ["app", "web"]
