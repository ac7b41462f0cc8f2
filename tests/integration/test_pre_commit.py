"""The pre-commit hook, run by pre-commit itself (`try-repo`) on a good and a bad manifest.

pre-commit builds the hook's own environment from this repository (`pip install .`),
so this also proves the package installs and runs outside the checkout's venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

GOOD = (ROOT / "manifests" / "minimal.yaml").read_text()
BAD = "version: 1\nstack: demo\nregion: us-east-1\niam:\n  users:\n    - name: bot\n      grops: [x]\n"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def test_reconcile_validate_hook_passes_good_and_fails_bad(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "manifests").mkdir(parents=True)
    (project / "manifests" / "good.yaml").write_text(GOOD)
    (project / "manifests" / "bad.yaml").write_text(BAD)
    (project / "notes.yaml").write_text("not: a manifest\n")  # outside manifests/: not the hook's business
    _git(project, "init", "-q")
    _git(project, "add", ".")
    pre_commit = [str(Path(sys.executable).parent / "pre-commit"), "try-repo", str(ROOT), "reconcile-validate"]
    # one hook environment per machine, kept between runs (building it installs the package and its deps)
    env = {**os.environ, "PRE_COMMIT_HOME": str(Path.home() / ".cache" / "reconciler-pre-commit")}
    env.pop("VIRTUAL_ENV", None)

    def run(*files: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*pre_commit, "--files", *files], cwd=project, env=env, capture_output=True,
                              text=True, timeout=900)

    good = run("manifests/good.yaml", "notes.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout
    bad = run("manifests/good.yaml", "manifests/bad.yaml")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "manifests/bad.yaml:7:7" in bad.stdout and "did you mean 'groups'" in bad.stdout, bad.stdout
    shutil.rmtree(project)
