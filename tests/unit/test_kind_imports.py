"""Kinds never import a sibling kind (DESIGN.md): what they share lives in their service's floor.

Parsed, never imported: a kind module may import its service's `_*.py` floor, `kinds/base.py`
and anything outside `reconciler/kinds/`, but no other kind module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

KINDS = Path(__file__).resolve().parents[2] / "reconciler" / "kinds"


def kind_modules() -> list[Path]:
    return sorted(p for p in KINDS.glob("*/*.py") if not p.name.startswith("_"))


def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def is_kind(name: str) -> bool:
    parts = name.split(".")
    return (len(parts) == 4 and parts[:2] == ["reconciler", "kinds"] and not parts[3].startswith("_")
            and (KINDS / parts[2] / f"{parts[3]}.py").is_file())


def test_there_are_kinds_to_check() -> None:
    assert {p.stem for p in kind_modules()} >= {"vpc", "subnet", "route_table", "nat_instance", "nat_gateway"}


@pytest.mark.parametrize("path", kind_modules(), ids=lambda p: f"{p.parent.name}.{p.stem}")
def test_a_kind_imports_no_sibling_kind(path: Path) -> None:
    siblings = sorted(name for name in imports(path) if is_kind(name))
    assert not siblings, f"{path.parent.name}.{path.stem} imports kinds {siblings}: move what they share to a floor"
