"""The layering of DESIGN.md, enforced: plan/ and render/ are pure.

Every module under `reconciler/plan/` and `reconciler/render/` is parsed (never
imported) and its imports checked: no AWS SDK, no Docker, no engine or kinds, and
nothing that reaches the clock, the network, processes or the file system. Calls
to `open`, `print` and `input` are refused too: renderers return strings.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent.parent / "reconciler"
PURE = ("plan", "render")
FORBIDDEN = (
    "boto3", "botocore", "docker", "requests", "urllib3", "click", "rich",
    "reconciler.engine", "reconciler.kinds", "reconciler.cli",
    # clock, randomness, I/O
    "time", "datetime", "random", "uuid", "os", "sys", "io", "pathlib", "shutil", "tempfile",
    "socket", "subprocess", "threading", "concurrent", "logging", "http", "urllib",
)
FORBIDDEN_CALLS = frozenset({"open", "print", "input", "exec", "eval", "__import__"})


def modules() -> list[Path]:
    return sorted(p for layer in PURE for p in (PACKAGE / layer).rglob("*.py"))


def imported(tree: ast.AST, module: str) -> list[str]:
    names = []
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.append(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.append(node.module)
    return names


def banned(name: str) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)


def test_there_is_something_to_check() -> None:
    found = {p.name for p in modules()}
    assert {"build.py", "drift.py", "security.py", "markdown.py", "json.py", "text.py"} <= found


@pytest.mark.parametrize("path", modules(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_layers_import_nothing_impure(path: Path) -> None:
    module = "reconciler." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [name for name in imported(tree, module) if banned(name)]
    assert not bad, f"{module} imports {bad}: plan/ and render/ must stay pure (DESIGN.md, layering)"
    calls = sorted({node.func.id for node in ast.walk(tree)
                    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in FORBIDDEN_CALLS})
    assert not calls, f"{module} calls {calls}: renderers and planners return values, they do no I/O"


def test_the_checker_catches_a_bad_import() -> None:
    tree = ast.parse("import boto3\nfrom reconciler.engine.run import plan_run\nfrom datetime import datetime\n")
    assert [n for n in imported(tree, "reconciler.plan.x") if banned(n)] == [
        "boto3", "reconciler.engine.run", "datetime"]
    assert not banned("reconciler.plan.model") and not banned("json")
