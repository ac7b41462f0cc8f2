"""The prompts of apply and destroy, typed at a real pseudo-terminal (pexpect), against moto server.

What an operator sees: a plan that only adds asks for the word `yes` (`y` refuses); a plan that
deletes anything, and every destroy, asks for the stack's name (a wrong name refuses and nothing
is deleted); the question goes to the terminal (stderr), never into a piped stdout.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.conftest import ROOT, Moto
from tests.integration.hung import describe_hung

STACK = "prompted"
BOTH = f"""\
version: 1
stack: {STACK}
region: us-east-1
iam:
  groups:
    - {{name: alpha}}
    - {{name: beta}}
"""
ONE = BOTH.replace("    - {name: beta}\n", "")


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(BOTH)
    return path


def spawn(moto: Moto, *args: str, shell: str | None = None) -> Any:
    """`reconcile ARGS` on a pseudo-terminal (stdin, stdout and stderr all the tty), or `shell` via sh -c."""
    env = moto.env(TERM="dumb")
    if shell is not None:
        child = pexpect.spawn("/bin/sh", ["-c", shell], env=env, cwd=str(ROOT), encoding="utf-8", timeout=120)
    else:
        child = pexpect.spawn(sys.executable, ["-m", "reconciler.cli", *args], env=env, cwd=str(ROOT),
                              encoding="utf-8", timeout=120)
    return child


def finish(child: Any) -> tuple[int, str]:
    try:
        child.expect(pexpect.EOF)
    except pexpect.TIMEOUT:
        state = describe_hung(child.pid)
        child.terminate(force=True)
        last = str(child.before)[-300:]
        raise AssertionError(f"no exit within {child.timeout} s; last output {last!r}:\n{state}") from None
    child.close()
    return int(child.exitstatus), str(child.before)


def answer(moto: Moto, args: tuple[str, ...], question: str, reply: str) -> tuple[int, str]:
    """Run `reconcile ARGS` on a pseudo-terminal, wait for `question` (a regex), type `reply`: exit code, text."""
    child = spawn(moto, *args)
    child.expect(question)
    child.sendline(reply)
    return finish(child)


def groups(moto: Moto) -> set[str]:
    iam: Any = moto.client("iam")
    return {g["GroupName"] for g in iam.list_groups()["Groups"]}


@pytest.fixture
def applied(moto: Moto, manifest: Path) -> Iterator[Path]:
    code, _ = answer(moto, ("apply", str(manifest)), "Only 'yes' approves: ", "yes")
    assert code == 0 and groups(moto) == {"alpha", "beta"}
    yield manifest


def test_apply_takes_only_the_word_yes(moto: Moto, manifest: Path) -> None:
    asked = rf"Apply these changes \(2 resources\) to stack {STACK}\? Only 'yes' approves: "
    code, text = answer(moto, ("apply", str(manifest)), asked, "y")
    assert code == 3, text
    assert "cancelled (only 'yes' approves); nothing was changed" in text
    assert groups(moto) == set()

    code, text = answer(moto, ("apply", str(manifest)), "Only 'yes' approves: ", "yes")
    assert code == 0, text
    assert groups(moto) == {"alpha", "beta"}


def test_a_plan_that_deletes_asks_for_the_stack_name(moto: Moto, applied: Path) -> None:
    applied.write_text(ONE)
    asked = rf"Type the stack name \({STACK}\) to confirm deleting 1 resource: "
    code, text = answer(moto, ("apply", str(applied)), asked, "yes")  # the reflex answer is not the stack's name
    assert code == 3, text
    assert f"'yes' is not the stack name '{STACK}'" in text and "nothing was changed" in text
    assert groups(moto) == {"alpha", "beta"}

    code, text = answer(moto, ("apply", str(applied)), "to confirm deleting 1 resource: ", STACK)
    assert code == 0, text
    assert groups(moto) == {"alpha"}


def test_destroy_asks_for_the_stack_name(moto: Moto, applied: Path) -> None:
    asked = rf"Type the stack name \({STACK}\) to confirm destroying stack {STACK} \(deleting 2 resources\): "
    code, text = answer(moto, ("destroy", str(applied)), asked, "yes")
    assert code == 3, text
    assert groups(moto) == {"alpha", "beta"}

    code, text = answer(moto, ("destroy", str(applied)), "to confirm destroying stack", STACK)
    assert code == 0, text
    assert groups(moto) == set()


def test_a_reviewed_destroy_plan_still_asks_for_the_stack_name_at_a_terminal(moto: Moto, applied: Path,
                                                                             tmp_path: Path) -> None:
    reviewed = tmp_path / "destroy.json"
    code, text = finish(spawn(moto, "plan", str(applied), "--destroy", "--out", str(reviewed)))
    assert code == 0 and reviewed.exists(), text
    code, text = answer(moto, ("apply", str(applied), "--plan", str(reviewed)),
                        "to confirm destroying stack", "yes")
    assert code == 3 and "nothing was changed" in text, text
    assert groups(moto) == {"alpha", "beta"}
    code, text = answer(moto, ("apply", str(applied), "--plan", str(reviewed)), "to confirm destroying stack", STACK)
    assert code == 0, text
    assert groups(moto) == set()


def test_end_of_input_at_the_prompt_refuses_and_ctrl_c_interrupts(moto: Moto, manifest: Path) -> None:
    child = spawn(moto, "apply", str(manifest))
    child.expect("Only 'yes' approves: ")
    child.sendeof()
    code, text = finish(child)
    assert code == 3, text
    assert "cancelled (no answer); nothing was changed" in text

    child = spawn(moto, "apply", str(manifest))
    child.expect("Only 'yes' approves: ")
    child.sendintr()
    code, text = finish(child)
    assert code == 130 and "interrupted" in text and "Traceback" not in text, text
    assert groups(moto) == set()


def test_the_question_goes_to_the_terminal_not_into_a_piped_stdout(moto: Moto, manifest: Path,
                                                                    tmp_path: Path) -> None:
    piped = tmp_path / "plan.txt"
    child = spawn(moto, shell=f"{sys.executable} -m reconciler.cli apply {manifest} > {piped}")
    child.expect("Only 'yes' approves: ")  # on the terminal (stderr), while stdout goes to the file
    child.sendline("no")
    code, _ = finish(child)
    assert code == 3
    text = piped.read_text()
    assert "iam.group.alpha" in text  # the plan is there
    assert "approves" not in text and "cancelled" not in text
