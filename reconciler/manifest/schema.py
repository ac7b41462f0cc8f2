"""JSON Schema validation of loaded manifest data, mapped back to file:line:col."""

from __future__ import annotations

import datetime
import difflib
import functools
import json
from collections.abc import Iterator
from pathlib import Path as FsPath
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from reconciler.errors import Problem
from reconciler.manifest.loader import Path, Source

SCHEMA_DIR = FsPath(__file__).resolve().parent.parent.parent / "schemas"


@functools.cache
def manifest_schema() -> dict[str, Any]:
    """The manifest JSON Schema (draft 2020-12), shipped in `schemas/`."""
    with (_schema_dir() / "manifest.schema.json").open(encoding="utf-8") as fh:
        return json.load(fh)  # type: ignore[no-any-return]


def _schema_dir() -> FsPath:
    if SCHEMA_DIR.is_dir():
        return SCHEMA_DIR
    # installed as a wheel: schemas are shipped inside the package
    return FsPath(__file__).resolve().parent.parent / "schemas"


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(manifest_schema())


def schema_problems(data: Any, source: Source) -> list[Problem]:
    """Every schema violation in `data`, one Problem each, with hints."""
    problems: list[Problem] = []
    for error in _validator().iter_errors(data):
        problems.extend(_explain(error, source))
    return problems


def _leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    """Descend anyOf/oneOf into the alternative that got furthest."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        deepest = max(len(e.absolute_path) for e in error.context)
        candidates = [e for e in error.context if len(e.absolute_path) == deepest]
        # prefer a branch whose error is not a plain type mismatch
        non_type = [e for e in candidates if e.validator != "type"]
        yield from _leaf_errors((non_type or candidates)[0])
        return
    yield error


def _explain(error: ValidationError, source: Source) -> Iterator[Problem]:
    for leaf in _leaf_errors(error):
        path: Path = tuple(leaf.absolute_path)
        validator = leaf.validator
        schema = leaf.schema if isinstance(leaf.schema, dict) else {}
        if validator == "additionalProperties" and isinstance(leaf.instance, dict):
            known = sorted(schema.get("properties", {}))
            for key in sorted(k for k in leaf.instance if k not in schema.get("properties", {})):
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(known)}"
                yield source.problem((*path, key), f"unknown key {key!r}", hint, key=True)
        elif validator == "required":
            missing = [k for k in leaf.validator_value if k not in leaf.instance]
            for key in missing:
                yield source.problem(path, f"missing required key {key!r}", f"add `{key}:`")
        elif validator == "type":
            yield _type_problem(leaf, path, source)
        elif validator in ("enum", "const"):
            allowed = leaf.validator_value if validator == "enum" else [leaf.validator_value]
            shown = source.raw.get(path, json.dumps(leaf.instance, default=str))
            close = difflib.get_close_matches(str(leaf.instance), [str(a) for a in allowed], n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else "use one of: " + ", ".join(map(str, allowed))
            if isinstance(leaf.instance, bool | int | float) and any(isinstance(a, str) for a in allowed):
                hint += f' (quote it: "{shown}")'
            yield source.problem(path, f"{shown} is not one of {', '.join(map(str, allowed))}", hint)
        elif validator == "pattern":
            desc = schema.get("description", "")
            yield source.problem(path, f"{leaf.instance!r} is not a valid value here",
                                 desc or f"it must match {leaf.validator_value}")
        elif validator == "propertyNames":
            yield source.problem(path, leaf.message, "rename the key")
        elif validator == "not":
            yield source.problem(path, "`rules` cannot be combined with keep_last or untagged_expire_days",
                                 "write either raw rules or the shorthand")
        else:
            yield source.problem(path, leaf.message, _generic_hint(validator))


def _type_problem(error: ValidationError, path: Path, source: Source) -> Problem:
    expected = error.validator_value
    value = error.instance
    raw = source.raw.get(path)
    if expected == "string" and raw is not None and not isinstance(value, str):
        kind = ("a date" if isinstance(value, datetime.date) else
                "a boolean" if isinstance(value, bool) else
                "a number" if isinstance(value, int | float) else "null")
        return source.problem(path, f"{raw} is read by YAML as {kind}, but text is expected",
                              f'quote it: "{raw}"')
    shown = raw if raw is not None else type(value).__name__
    word = {"object": "a mapping", "array": "a list", "string": "text", "integer": "a whole number",
            "boolean": "true or false"}.get(str(expected), str(expected))
    return source.problem(path, f"expected {word}, got {shown}", f"write {word} here")


def _generic_hint(validator: str) -> str:
    return {
        "minimum": "use a larger value", "maximum": "use a smaller value",
        "minLength": "the value is too short", "maxLength": "shorten it",
        "minItems": "add at least one item", "uniqueItems": "remove the duplicate",
        "maxProperties": "remove some entries", "minProperties": "add one entry",
    }.get(validator, "see `reconcile schema`")


@functools.cache
def _plan_validator() -> Draft202012Validator:
    with (_schema_dir() / "plan.schema.json").open(encoding="utf-8") as fh:
        return Draft202012Validator(json.load(fh))


def plan_file_problems(data: Any) -> list[str]:
    """Every way `data` fails `schemas/plan.schema.json`."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in _plan_validator().iter_errors(data)]
