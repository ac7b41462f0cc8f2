"""No caught AWS exception is turned into text except through `describe_error`.

botocore's own exception strings carry what must never be shown: a
`ResponseParserError` holds the whole response body (a CreateAccessKey answer with its
SecretAccessKey), a `ParamValidationError` the parameter values (a SecretString). So
every `except` handler in reconciler/ that can catch one (a bare `Exception`, a
botocore class, `aws_exceptions()`) must not format the caught exception itself:
no `f"{exc}"`, `str(exc)`, `repr(exc)`, `exc.args`, `"%s" % exc` or `.format(exc)`.
Parsed, never imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent.parent / "reconciler"
# handlers whose type can be an AWS error
BROAD = frozenset({"Exception", "BaseException", "BotoCoreError", "ClientError", "ResponseParserError",
                   "ParamValidationError", "aws_exceptions"})
# Docker SDK and urllib errors, never botocore's: their text names an endpoint or a daemon's
# explanation (bounded by the build-output rules of the files slice), never an AWS body
ALLOWED = {"kinds/ecr/_docker.py"}


def _names(node: ast.expr | None) -> set[str]:
    if node is None:
        return {"BaseException"}  # a bare `except:`
    if isinstance(node, ast.Tuple):
        return set().union(*(_names(e) for e in node.elts))
    if isinstance(node, ast.Call):
        return _names(node.func)
    if isinstance(node, ast.Attribute):
        return {node.attr}
    if isinstance(node, ast.Name):
        return {node.id}
    return set()


def _formats(node: ast.AST, name: str) -> bool:
    """True when `node` turns the exception bound to `name` into text."""

    def is_exc(item: ast.AST) -> bool:
        return isinstance(item, ast.Name) and item.id == name

    if isinstance(node, ast.FormattedValue):
        return is_exc(node.value)
    if isinstance(node, ast.Call):
        called = node.func
        as_text = (isinstance(called, ast.Name) and called.id in ("str", "repr")) or \
            (isinstance(called, ast.Attribute) and called.attr == "format")
        return as_text and any(is_exc(a) for a in node.args)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        items = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
        return any(is_exc(e) for e in items)
    return isinstance(node, ast.Attribute) and node.attr == "args" and is_exc(node.value)


def _raw_uses(handler: ast.ExceptHandler) -> list[int]:
    """Lines where the caught exception itself becomes text."""
    name = handler.name or ""
    return [node.lineno for node in ast.walk(ast.Module(body=handler.body, type_ignores=[]))
            if isinstance(node, ast.expr) and _formats(node, name)]


def modules() -> list[Path]:
    """Every module of the package but the allow-listed ones (they make no botocore call)."""
    return sorted(p for p in PACKAGE.rglob("*.py") if str(p.relative_to(PACKAGE)) not in ALLOWED)


def test_the_scan_finds_what_it_looks_for() -> None:
    tree = ast.parse("try:\n    pass\nexcept Exception as exc:\n    print(f'failed: {exc}', str(exc))\n")
    handler = next(n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler))
    assert _raw_uses(handler) == [4, 4]


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_handler_that_can_catch_an_aws_error_formats_it_raw(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [f"{path.relative_to(PACKAGE)}:{line}" for node in ast.walk(tree)
           if isinstance(node, ast.ExceptHandler) and node.name and _names(node.type) & BROAD
           for line in _raw_uses(node)]
    assert not bad, f"format the error with reconciler.error_text.describe_error instead: {bad}"
