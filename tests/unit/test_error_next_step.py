"""Every error the tool raises says what to do next (issue 13: "Errors end with what to do next").

The rule, checked on the source (parsed, never imported): each `<OurError>(message)` (raised, or
returned by a helper) whose message is written here, and each `error: ...` line printed with
click.echo or sys.stderr.write (a string, an f-string, or a concatenation of them) contains, in its
literal text, one of the verbs of a next step (NEXT_STEP): re-run, retry, pass, give, set, unset,
run, check, fix, add, remove, rename, change, choose, use, make, drop, wait, start, write, push,
report, see (`see reconcile plan --help`). Honest rather than clever: a message that only
describes ("X is gone") fails; a clause like "; nothing was changed" alone does not count. A
message built elsewhere (a variable, a helper's result) is checked where it is built:
`unreachable()` has its own test.

ManifestError is not scanned: its problems carry a located hint each (tests of the manifest layer).
A refusal at a prompt ("cancelled ...") is the operator's own choice, not a failure: it has no next
step to give, and is exempt (CHOICES).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from reconciler import errors

PACKAGE = Path(__file__).resolve().parent.parent.parent / "reconciler"
OURS = {name for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.ReconcilerError) and name != "ManifestError"}
CHOICES = ("cancelled",)
NEXT_STEP = re.compile(r"\b(re-run|rerun|retry|pass|give|set|unset|run|check|fix|add|remove|rename|change|choose|"
                       r"use|make|drop|wait|start|write|push|report|see)\b", re.IGNORECASE)


def literal_text(node: ast.expr) -> str | None:
    """The text written in `node` (constants of an f-string or concatenation), or None if none is."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = [literal_text(node.left), literal_text(node.right)]
        return None if all(p is None for p in parts) else "".join(p or "" for p in parts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "redact" and node.args:
        return literal_text(node.args[0])
    return None


def _error_line(node: ast.Call) -> str | None:
    """The literal text of `click.echo(f"error: ...")` / `sys.stderr.write("error: ...")`, else None.

    Only the words after "error:" that are written here count; `f"error: {text}"` shows a message
    built elsewhere (an exception's, checked where it is raised) and is skipped.
    """
    called = node.func
    if not (isinstance(called, ast.Attribute) and called.attr in ("echo", "write") and node.args):
        return None
    text = literal_text(node.args[0])
    if text is None or not text.startswith("error:") or not text[len("error:"):].strip():
        return None
    return text


def messages(path: Path) -> list[tuple[int, str]]:
    """(line, literal text) of each of our errors made in `path` with a message written there (raised or
    returned: a helper that builds one counts too), and of each `error:` line printed there."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        called = node.func
        name = called.id if isinstance(called, ast.Name) else called.attr if isinstance(called, ast.Attribute) else ""
        text: str | None = None
        if name in OURS and node.args:
            text = literal_text(node.args[-1] if name == "Interrupted" else node.args[0])
        elif name in ("echo", "write"):
            text = _error_line(node)
        if text is not None:
            found.append((node.lineno, text))
    return found


def test_the_scan_finds_what_it_looks_for() -> None:
    tree = ast.parse('raise UsageError(f"{x} is gone")\nraise AwsError("x" + f"{y}; re-run apply")\n')
    texts = [literal_text(n.exc.args[0]) for n in ast.walk(tree) if isinstance(n, ast.Raise)
             and isinstance(n.exc, ast.Call)]
    assert sorted(t or "" for t in texts) == [" is gone", "x; re-run apply"]
    assert not NEXT_STEP.search(" is gone") and NEXT_STEP.search("x; re-run apply")


def test_the_scan_sees_the_package() -> None:
    assert len([m for p in PACKAGE.rglob("*.py") for m in messages(p)]) > 50


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_error_message_names_a_next_step(path: Path) -> None:
    bad = [f"{path.relative_to(PACKAGE)}:{line}: {' '.join(text.split())}" for line, text in messages(path)
           if not NEXT_STEP.search(text) and not text.startswith(CHOICES)]
    assert not bad, "end these errors with what to do next (a next step the user can take):\n" + "\n".join(bad)


def test_docker_unreachable_names_the_host_and_the_way_to_start_it() -> None:
    from reconciler.kinds.ecr._docker import unreachable

    line = unreachable({"DOCKER_HOST": "unix:///nonexistent"})
    assert "DOCKER_HOST=unix:///nonexistent" in line and "systemctl start docker" in line and "\n" not in line
    assert "/var/run/docker.sock" in unreachable({})
