"""The habits users expect of a CLI: help with no arguments, --version, python -m, shell completion."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reconciler import __version__
from tests.conftest import ROOT, run_cli


def test_bare_command_prints_help_and_exits_0() -> None:
    result = run_cli([])
    assert result.code == 0, result.all
    assert "Usage: reconcile" in result.out and "completion" in result.out


def test_version() -> None:
    result = run_cli(["--version"])
    assert result.code == 0 and __version__ in result.out, result.all


def test_python_dash_m_reconciler() -> None:
    proc = subprocess.run([sys.executable, "-m", "reconciler", "--version"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and __version__ in proc.stdout, proc.stderr


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o nosort -F"), ("zsh", "compdef"),
                                                ("fish", "complete --no-files --command reconcile")])
def test_completion_scripts(shell: str, marker: str) -> None:
    result = run_cli(["completion", shell])
    assert result.code == 0, result.all
    assert marker in result.out and "_RECONCILE_COMPLETE" in result.out


def test_completion_protocol_completes_commands_and_options() -> None:
    """What the bash script asks the program at each <TAB>, answered by the program itself."""
    def ask(words: str, cword: int) -> str:
        env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword), "_RECONCILE_COMPLETE": "bash_complete"}
        proc = subprocess.run([sys.executable, "-m", "reconciler"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert "plain,plan" in ask("reconcile pl", 1)
    assert "plain,--detailed-exitcode" in ask("reconcile plan m.yaml --det", 3)


def test_unknown_shell_is_exit_3() -> None:
    result = run_cli(["completion", "powershell"])
    assert result.code == 3 and "powershell" in result.err, result.all
