"""The import graph of `reconciler/`, built from the source (parsed, never imported).

DESIGN.md's layering, enforced on every import, including those inside functions
(an import hidden in a function to dodge a circle is still a circle):
- no circle anywhere in the package;
- each part imports only parts listed before it (ground floor, manifest, plan,
  kinds, engine, export, render, terminal, cli), and render sees only the plan model
  (terminal/ is the I/O twin of render/: apply's progress on the terminal);
- kinds never import a sibling kind: a kind module imports its service's floor
  (`kinds/<service>/_*.py`), `kinds/base.py` and earlier parts, never another
  kind module; a floor module never imports a kind module either.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent.parent / "reconciler"
GROUND = ("reconciler.errors", "reconciler.secret", "reconciler.aws", "reconciler.ownership", "reconciler.pacing",
          "reconciler.threads", "reconciler.canonical", "reconciler.error_text", "reconciler.data", "reconciler")
LAYERS = ("ground", "manifest", "plan", "kinds", "engine", "export", "render", "terminal", "cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `name` imports (anywhere in its body), resolved to modules."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("reconciler") and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def layer(name: str) -> str:
    if name in GROUND or name.startswith("reconciler.data."):
        return "ground"
    if name == "reconciler.__main__":
        return "cli"
    return name.split(".")[1]


def kind_module(name: str) -> bool:
    """`reconciler.kinds.<service>.<type>`: a kind (a service's `_floor` modules are not)."""
    parts = name.split(".")
    return len(parts) == 4 and parts[1] == "kinds" and not parts[3].startswith("_")


def test_the_graph_is_complete() -> None:
    found = graph()
    assert "reconciler.kinds.ec2.subnet" in found and "reconciler.kinds.base" in found["reconciler.kinds.ec2.subnet"]
    assert all(layer(m) in LAYERS for m in found), sorted(m for m in found if layer(m) not in LAYERS)


def test_no_circle_in_the_package() -> None:
    try:
        tuple(graphlib.TopologicalSorter(graph()).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import circle: {' -> '.join(exc.args[1])}")


def test_each_part_imports_only_earlier_parts() -> None:
    bad = []
    for name, targets in graph().items():
        for target in targets:
            if LAYERS.index(layer(target)) > LAYERS.index(layer(name)):
                bad.append(f"{name} -> {target}")
            if layer(name) == "render" and layer(target) not in ("ground", "render", "plan"):
                bad.append(f"{name} -> {target} (render sees only the plan model)")
    assert not bad, "imports against DESIGN.md's layering:\n" + "\n".join(sorted(bad))


def test_kinds_never_import_a_sibling_kind() -> None:
    bad = [f"{name} -> {target}" for name, targets in graph().items() if name.startswith("reconciler.kinds.")
           for target in targets if kind_module(target)]
    assert not bad, "a kind (or a service floor) imports a kind module:\n" + "\n".join(sorted(bad))


def test_the_checks_catch_a_circle_and_a_sibling_import(tmp_path: Path) -> None:
    src = tmp_path / "reconciler"
    (src / "kinds" / "ec2").mkdir(parents=True)
    for rel in ("__init__.py", "kinds/__init__.py", "kinds/ec2/__init__.py"):
        (src / rel).write_text("")
    (src / "kinds/ec2/vpc.py").write_text("from reconciler.kinds.ec2 import subnet\n")
    (src / "kinds/ec2/subnet.py").write_text("def f():\n    from reconciler.kinds.ec2.vpc import X\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, src
    try:
        found = graph()
        assert found["reconciler.kinds.ec2.vpc"] == {"reconciler.kinds.ec2.subnet"}
        assert found["reconciler.kinds.ec2.subnet"] == {"reconciler.kinds.ec2.vpc"}
        with pytest.raises(graphlib.CycleError):
            tuple(graphlib.TopologicalSorter(found).static_order())
        assert kind_module("reconciler.kinds.ec2.subnet") and not kind_module("reconciler.kinds.ec2._read")
    finally:
        PACKAGE = saved
