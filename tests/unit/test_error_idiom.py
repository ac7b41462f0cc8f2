"""The one AWS-error idiom and the one error tree, enforced on the source (parsed, never imported).

- In `reconciler/kinds/**` and `reconciler/engine/**` no `except Exception`, `except
  BaseException` or bare `except` catches everything, except in the few places named in
  `BROAD_CATCH`, each with its reason: an AWS failure is a `ClientError` (or narrower),
  so a bug or a connection error is never mistaken for "not found".
- No string literal anywhere in the package spells a NotFound code of `aws.NOT_FOUND`
  outside `reconciler/aws.py`: a kind names the family (`absent_ok("iam")`).
- Every exception class of the package is defined in `reconciler/errors.py` and drawn
  in its docstring under its real parent; the only others are the private control-flow
  signals of `CONTROL_FLOW`, which never leave their module.
"""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import pytest

from reconciler.aws import NOT_FOUND

PACKAGE = Path(__file__).resolve().parent.parent.parent / "reconciler"
ROOT = PACKAGE.parent
BROAD_SCOPE = ("reconciler/kinds/", "reconciler/engine/")

# Where catching everything is the point. Key: (module, enclosing function), or (module, None) for the module.
BROAD_CATCH: dict[tuple[str, str | None], str] = {
    ("reconciler/engine/fleet.py", "work"):
        "the fleet's catch-all: any failure of one stack becomes that stack's outcome (status error, its type "
        "named), so the other stacks still run and the report lists every stack",
    ("reconciler/engine/apply.py", None):
        "the walk's catch-all: any failure of one action becomes its FAILED result (described without its "
        "text), so the other branches of the graph still run and the run reports every failure",
    ("reconciler/kinds/ecr/_docker.py", "client"):
        "the Docker SDK raises DockerException, requests and urllib3 errors and OSError for an unreachable "
        "engine; all of them become one DockerError naming DOCKER_HOST",
    ("reconciler/kinds/ecr/_docker.py", "build"):
        "the Docker SDK and its HTTP stack raise unrelated classes mid-stream; all become a DockerError",
    ("reconciler/kinds/ecr/_docker.py", "push"):
        "the Docker SDK and its HTTP stack raise unrelated classes mid-stream; all become a DockerError",
}

# Private exceptions used as control flow inside one module; never raised past it, so not in the tree.
CONTROL_FLOW: dict[tuple[str, str], str] = {
    ("reconciler/cli.py", "_Terminated"):
        "SIGTERM unwinds like Ctrl-C: a BaseException so that no `except Exception` swallows it",
    ("reconciler/manifest/loader.py", "_StopReading"):
        "stops the YAML builder from inside (alias bomb, too many problems); the reason is recorded",
    ("reconciler/manifest/fastschema.py", "_Unsupported"):
        "a schema keyword the fast checker does not handle: fall back to the full validator",
}

# TEMPORARY: the EC2 kinds are converted by another branch; this entry goes when it is merged.
NOT_FOUND_CODES = frozenset(code for codes in NOT_FOUND.values() for code in codes)
BUILTIN_EXCEPTIONS = {name for name in dir(builtins)
                      if isinstance(getattr(builtins, name), type) and issubclass(getattr(builtins, name),
                                                                                  BaseException)}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _catches_everything(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(t is None or (isinstance(t, ast.Name) and t.id in ("Exception", "BaseException")) for t in kinds)


def broad_catches(tree: ast.Module) -> list[tuple[int, str | None]]:
    """(line, enclosing function or None) of every handler that catches everything."""
    found: list[tuple[int, str | None]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if isinstance(child, ast.ExceptHandler) and _catches_everything(child):
                found.append((child.lineno, function))
            visit(child, inner)

    visit(tree, None)
    return found


def test_no_catch_all_in_kinds_and_engine() -> None:
    bad = []
    for path in modules():
        name = rel(path)
        if not name.startswith(BROAD_SCOPE):
            continue
        for line, function in broad_catches(parse(path)):
            if (name, None) not in BROAD_CATCH and (name, function) not in BROAD_CATCH:
                bad.append(f"{name}:{line} (in {function or 'module'})")
    assert not bad, ("catch botocore's ClientError (or narrower), never everything; or name the place in "
                     f"BROAD_CATCH with its reason: {bad}")


def test_every_justified_catch_all_still_exists() -> None:
    """A stale allow-list entry would let a new catch-all in silently."""
    seen = set()
    for path in modules():
        for _, function in broad_catches(parse(path)):
            seen |= {(rel(path), function), (rel(path), None)}
    assert set(BROAD_CATCH) <= seen, sorted(set(BROAD_CATCH) - seen)


def test_not_found_codes_are_spelled_only_in_aws_py() -> None:
    bad = []
    for path in modules():
        name = rel(path)
        if name == "reconciler/aws.py":
            continue
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NOT_FOUND_CODES:
                bad.append(f"{name}:{node.lineno}: {node.value!r}")
    assert not bad, f"name the API family instead (absent_ok('iam'), is_absent(exc, 'ecr')): {bad}"


def exception_classes() -> dict[str, tuple[str, str]]:
    """Every exception class of the package: name -> (module, first base), resolved through the package."""
    defined: dict[str, tuple[str, list[str]]] = {}
    for path in modules():
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.ClassDef):
                bases = [b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else ""
                         for b in node.bases]
                assert node.name not in defined or not bases, f"two classes named {node.name}"
                defined[node.name] = (rel(path), bases)
    known = set(BUILTIN_EXCEPTIONS)
    changed = True
    while changed:  # a class whose base is an exception is one; to a fixed point
        changed = False
        for name, (_, bases) in defined.items():
            if name not in known and any(b in known for b in bases):
                known.add(name)
                changed = True
    return {name: (module, bases[0]) for name, (module, bases) in defined.items() if name in known}


def drawn_parents(docstring: str) -> dict[str, str | None]:
    """The tree drawn in errors.py's docstring: class -> its parent in the drawing (None for a root)."""
    exceptions = set(exception_classes()) | BUILTIN_EXCEPTIONS
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in docstring.splitlines():
        found = re.match(r"^([ │├└─]*)([A-Za-z_]\w*)\b", line)
        if not found or found.group(2) not in exceptions:
            continue
        depth, name = len(found.group(1)), found.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def test_every_exception_class_is_in_the_tree() -> None:
    strays = sorted(f"{module}: {name}" for name, (module, _) in exception_classes().items()
                    if module != "reconciler/errors.py" and (module, name) not in CONTROL_FLOW)
    assert not strays, f"define these in reconciler/errors.py and draw them in its docstring: {strays}"


def test_the_drawing_in_errors_py_is_complete_and_true() -> None:
    tree = parse(PACKAGE / "errors.py")
    drawing = drawn_parents(ast.get_docstring(tree) or "")
    for name, (module, base) in sorted(exception_classes().items()):
        if module != "reconciler/errors.py":
            continue
        assert name in drawing, f"{name} is missing from the drawing in errors.py's docstring"
        want = None if base == "Exception" else base
        assert drawing[name] == want, f"{name} is drawn under {drawing[name]}, but its base is {base}"


def test_control_flow_exceptions_stay_private() -> None:
    classes = exception_classes()
    for (module, name), reason in CONTROL_FLOW.items():
        assert name.startswith("_") and reason, name
        assert classes.get(name, ("",))[0] == module, f"{module}: {name} no longer exists; drop its entry"


@pytest.mark.parametrize("code", sorted(NOT_FOUND_CODES))
def test_not_found_codes_have_one_family(code: str) -> None:
    """A code in two families would make `absent_ok('a')` swallow b's absence too, unnoticed."""
    assert sum(code in codes for codes in NOT_FOUND.values()) == 1
