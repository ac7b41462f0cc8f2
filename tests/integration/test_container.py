"""The tool's container image, built with the real Docker Engine, running validate and a plan against moto.

No image can be pulled here, so the Dockerfile's BASE is a small Debian image made from Debian's
packages by scripts/make-base-image.sh (once per machine), and the wheels it installs come from a
wheelhouse built on the host into the build context (PIP_ARGS), so the build needs no network.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, Moto
from tests.integration.conftest import ensure_docker

BASE = "reconciler-base:bookworm"
IMAGE = "reconciler-test:latest"
# what the image needs from the checkout; everything else is left out by .dockerignore anyway
CONTEXT = ("reconciler", "pyproject.toml", "README.md", "Dockerfile", ".dockerignore")
pytestmark = pytest.mark.docker


def _run(cmd: list[str], timeout: int = 900, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    ensure_docker()
    base = _run(["bash", str(ROOT / "scripts" / "make-base-image.sh"), BASE], timeout=1200)
    assert base.returncode == 0, base.stderr[-3000:]
    context = Path(tempfile.mkdtemp(prefix="reconciler-image-"))
    try:
        for name in CONTEXT:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(source, context / name)
        wheels = context / "wheelhouse"
        built = _run([sys.executable, "-m", "pip", "wheel", "--quiet", "-w", str(wheels), str(ROOT)])
        assert built.returncode == 0, built.stderr[-3000:]
        tools = _run([sys.executable, "-m", "pip", "download", "--quiet", "-d", str(wheels), "setuptools>=68"])
        assert tools.returncode == 0, tools.stderr[-3000:]
        build = _run(["docker", "build", "--quiet", "--network", "host", "--build-arg", f"BASE={BASE}",
                      "--build-arg", "PIP_ARGS=--no-index --find-links /src/wheelhouse", "-t", IMAGE, str(context)],
                     timeout=1200)
        assert build.returncode == 0, (build.stdout + build.stderr)[-3000:]
        yield IMAGE
    finally:
        shutil.rmtree(context, ignore_errors=True)


def test_image_runs_as_non_root_with_the_tool_as_entrypoint(image: str) -> None:
    inspected = json.loads(_run(["docker", "image", "inspect", image]).stdout)[0]["Config"]
    assert inspected["User"] == "reconciler"
    assert inspected["Entrypoint"] == ["reconcile"]
    assert not [e for e in inspected.get("Env") or [] if e.startswith("AWS_")], "no credentials baked in"
    version = _run(["docker", "run", "--rm", image, "--version"], timeout=120)
    assert version.returncode == 0 and "reconcile" in version.stdout, version.stderr


def test_validate_and_plan_from_inside_the_container(image: str, moto: Moto, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(ROOT / "manifests", work, ignore=shutil.ignore_patterns("maestro.yaml"))
    work.chmod(0o755)
    mount = ["-v", f"{work}:/work:ro"]
    valid = _run(["docker", "run", "--rm", *mount, image, "validate", "minimal.yaml", "ha-network.yaml"],
                 timeout=120)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    bad = _run(["docker", "run", "--rm", "-v", f"{ROOT / 'tests' / 'unit' / 'bad'}:/work:ro", image, "validate",
                "aws-region-unknown.yaml"], timeout=120)
    assert bad.returncode == 3 and "aws-region-unknown.yaml:5:9" in bad.stderr, bad.stdout + bad.stderr
    env = ["-e", f"AWS_ENDPOINT_URL={moto.endpoint}", "-e", "AWS_ACCESS_KEY_ID=testing",
           "-e", "AWS_SECRET_ACCESS_KEY=testing", "-e", "NO_COLOR=1"]
    plan = _run(["docker", "run", "--rm", "--network", "host", *mount, *env, image, "plan", "minimal.yaml",
                 "--detailed-exitcode"], timeout=300)
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "iam.user.ci-bot" in plan.stdout
