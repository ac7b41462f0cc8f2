"""The CI examples call only real `reconcile` commands and options, and branch only on its exit codes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from reconciler.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ci"
WORKFLOWS = sorted(EXAMPLES.glob("*.yml"))


def run_steps(workflow: dict[str, Any]) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def reconcile_calls(script: str) -> list[list[str]]:
    calls = []
    for line in script.replace("\\\n", " ").splitlines():
        line = line.split(">", 1)[0].strip()  # drop redirections
        if line.startswith("reconcile "):
            calls.append(shlex.split(line)[1:])
    return calls


def test_there_are_the_two_workflows() -> None:
    assert {p.name for p in WORKFLOWS} == {"reconcile-pr.yml", "reconcile-drift.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_reconcile_call_is_a_real_command_with_real_options(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert workflow.get("on") or workflow.get(True), "no trigger"
    calls = [call for script in run_steps(workflow) for call in reconcile_calls(script)]
    assert calls, "the workflow never runs reconcile"
    for args in calls:
        command = cli.commands.get(args[0])
        assert isinstance(command, click.Command), args
        known = {opt for param in command.params for opt in getattr(param, "opts", [])}
        used = [a for a in args[1:] if a.startswith("--")]
        assert set(used) <= known, (args, set(used) - known)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_exit_codes_tested_are_the_documented_ones(path: Path) -> None:
    text = path.read_text()
    found = re.findall(r"-(?:eq|ne) (\d+)|code [!=]= '(\d+)'|^\s+(\d+)\)", text, flags=re.M)
    codes = {int(n) for groups in found for n in groups if n}
    assert codes, "no exit code is looked at"
    assert codes <= {0, 1, 2, 3, 4}, codes
