"""Narrow-operation flags that cannot go together are refused before any AWS call (exit 3, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_cli_inputs import assert_one_line_exit_3, reconcile, workdir  # noqa: F401  (a fixture)


@pytest.mark.parametrize(("extra", "text"), [
    (["--destroy", "--replace", "iam.group.readers"], "--destroy with --replace: a destroy plan only deletes"),
    (["--destroy", "--adopt"], "--destroy with --adopt: a destroy plan only deletes"),
])
def test_plan_destroy_refuses_what_a_destroy_cannot_do(workdir: Path, extra: list[str],  # noqa: F811
                                                       text: str) -> None:
    assert_one_line_exit_3(reconcile(["plan", "m.yaml", *extra], workdir), text)


def test_apply_plan_takes_its_targets_from_the_file(workdir: Path) -> None:  # noqa: F811
    (workdir / "p.json").write_text(json.dumps({"format_version": 2}))
    result = reconcile(["apply", "m.yaml", "--plan", "p.json", "--target", "iam.group.readers"], workdir)
    assert_one_line_exit_3(result, "--plan: the plan file records its own --target and --replace; give neither")


def test_the_flags_are_documented_in_help(workdir: Path) -> None:  # noqa: F811
    for command, flags in (("plan", ("--destroy", "--target", "--replace")), ("apply", ("--target", "--replace")),
                           ("destroy", ("--target",))):
        text = reconcile([command, "--help"], workdir).stdout
        for flag in flags:
            assert flag in text, (command, flag)


@pytest.mark.parametrize("option", ["--target", "--replace"])
def test_a_huge_pattern_is_refused_without_echoing_it(workdir: Path, option: str) -> None:  # noqa: F811
    result = reconcile(["plan", "m.yaml", option, "x" * 100_000], workdir)
    assert_one_line_exit_3(result, "an address or glob of 1 to 256 characters")
    assert "x" * 300 not in result.stderr + result.stdout
