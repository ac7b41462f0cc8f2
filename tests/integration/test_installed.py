"""The artifact users install is the one tested: the wheel, in a fresh virtualenv outside the checkout.

Nothing of the source tree is on the path: the venv lives in a temp dir, commands run
with that dir as the working directory, and `reconciler` must import from the venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, Moto

EXAMPLES = sorted((ROOT / "manifests").glob("*.yaml"))


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
         timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """The bin/ dir of a fresh venv holding the wheel built from this checkout (and its pinned deps)."""
    work = Path(tempfile.mkdtemp(prefix="reconciler-wheel-"))
    try:
        built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(work / "dist"),
                      str(ROOT)], cwd=work)
        assert built.returncode == 0, built.stderr[-3000:]
        wheels = list((work / "dist").glob("reconciler-*.whl"))
        assert len(wheels) == 1, wheels
        made = _run([sys.executable, "-m", "venv", str(work / "venv")], cwd=work)
        assert made.returncode == 0, made.stderr
        pip = _run([str(work / "venv" / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    str(wheels[0])], cwd=work)
        assert pip.returncode == 0, pip.stderr[-3000:]
        yield work / "venv" / "bin"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(extra or {})
    return env


def test_imports_from_the_venv_not_the_checkout(installed: Path) -> None:
    where = _run([str(installed / "python"), "-c", "import reconciler; print(reconciler.__file__)"],
                 cwd=installed, env=_env())
    assert where.returncode == 0, where.stderr
    assert str(installed.parent) in where.stdout and str(ROOT) not in where.stdout


def test_version_help_and_module_entry(installed: Path) -> None:
    from reconciler import __version__

    version = _run([str(installed / "reconcile"), "--version"], cwd=installed, env=_env())
    assert version.returncode == 0 and __version__ in version.stdout, version.stderr
    module = _run([str(installed / "python"), "-m", "reconciler", "--version"], cwd=installed, env=_env())
    assert module.returncode == 0 and __version__ in module.stdout, module.stderr
    bare = _run([str(installed / "reconcile")], cwd=installed, env=_env())
    assert bare.returncode == 0 and "validate" in bare.stdout and "Usage" in bare.stdout, bare.stderr


def test_schema_is_the_shipped_one(installed: Path) -> None:
    printed = _run([str(installed / "reconcile"), "schema"], cwd=installed, env=_env())
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())


@pytest.mark.parametrize("manifest", EXAMPLES, ids=[m.name for m in EXAMPLES])
def test_validates_every_example(installed: Path, manifest: Path) -> None:
    result = _run([str(installed / "reconcile"), "validate", str(manifest)], cwd=installed, env=_env())
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stderr


def test_bad_manifest_is_exit_3(installed: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nstack: x\nregion: us-east-1\nim: {}\n")
    result = _run([str(installed / "reconcile"), "validate", str(bad)], cwd=tmp_path, env=_env())
    assert result.returncode == 3, result.stderr
    assert f"{bad}:4:1" in result.stderr and "Traceback" not in result.stderr


def test_plan_apply_drift_round_against_moto(installed: Path, moto: Moto, tmp_path: Path) -> None:
    manifest = tmp_path / "minimal.yaml"
    shutil.copy(ROOT / "manifests" / "minimal.yaml", manifest)
    env = _env(moto.env())
    reconcile = str(installed / "reconcile")
    plan = _run([reconcile, "plan", str(manifest), "--detailed-exitcode"], cwd=tmp_path, env=env, timeout=300)
    assert plan.returncode == 2, plan.stdout + plan.stderr
    apply = _run([reconcile, "apply", str(manifest), "--auto-approve"], cwd=tmp_path, env=env, timeout=300)
    assert apply.returncode == 0, apply.stdout + apply.stderr
    again = _run([reconcile, "plan", str(manifest), "--detailed-exitcode"], cwd=tmp_path, env=env, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    drift = _run([reconcile, "drift", str(manifest)], cwd=tmp_path, env=env, timeout=300)
    assert drift.returncode == 0, drift.stdout + drift.stderr
    destroy = _run([reconcile, "destroy", str(manifest), "--auto-approve"], cwd=tmp_path, env=env, timeout=300)
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr
