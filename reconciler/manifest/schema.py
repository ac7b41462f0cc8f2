"""JSON Schema validation of loaded manifest data, mapped back to file:line:col."""

from __future__ import annotations

import datetime
import difflib
import functools
import itertools
import json
import math
from collections.abc import Callable, Iterator
from importlib import resources
from typing import TYPE_CHECKING, Any

from reconciler.errors import Problem
from reconciler.manifest.fastschema import compile_schema
from reconciler.manifest.loader import MAX_PROBLEMS, Path, Source

if TYPE_CHECKING:  # jsonschema is imported only to explain an invalid document: a valid one never needs it
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError


@functools.cache
def shipped_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped inside the package (`reconciler/schemas/NAME.schema.json`).

    Read through importlib.resources so the wheel, a zipapp and the checkout behave alike;
    the top-level `schemas/` holds links to these files for editors and CI files.
    """
    text = resources.files("reconciler").joinpath(f"schemas/{name}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def manifest_schema() -> dict[str, Any]:
    """The manifest JSON Schema (draft 2020-12)."""
    return shipped_schema("manifest")


@functools.cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(manifest_schema())


@functools.cache
def _fast_check() -> Callable[[Any], bool] | None:
    return compile_schema(manifest_schema())


def schema_problems(data: Any, source: Source) -> list[Problem]:
    """Every schema violation in `data`, one Problem each, with hints."""
    return check_schema(data, source)[0]


def check_schema(data: Any, source: Source) -> tuple[list[Problem], set[Path]]:
    """Every schema violation, and the paths they concern (to keep later checks off broken data).

    `()` among the paths means the listing was cut short (MAX_PROBLEMS): nothing is known to be clean.

    Violations at or under a path the loader damaged are not reported: the loader
    already said what is wrong there, and the null it left is not the user's doing.
    """
    fast = _fast_check()
    if fast is not None and fast(data):
        # valid (the common case): skip jsonschema's slower walk, look only for values JSON cannot hold
        problems: list[Problem] = []
        broken = set(_non_json(data, source, set(), problems))
        return problems, broken
    found: list[tuple[Path, bool, Problem]] = []
    for error in _validator().iter_errors(data):
        for leaf in leaf_errors(error):
            explained = itertools.islice(_explain(leaf, source), MAX_PROBLEMS + 1 - len(found))
            found.extend((path, leaf.validator == "type", problem) for path, problem in explained)
        if len(found) >= MAX_PROBLEMS:
            # enough to act on; `()` marks every section as unchecked, so no later check trusts any of it
            found.append(((), False, source.problem((), f"more than {MAX_PROBLEMS} schema problems; "
                                                    "the rest are not listed", "fix the ones above first")))
            break
    # a value of the wrong type fails its enum or pattern too: say only what matters
    mistyped = {path for path, is_type, _ in found if is_type}
    problems = [problem for path, is_type, problem in found
                if (is_type or path not in mistyped) and not source.is_damaged(path)]
    broken = {path for path, _, _ in found}
    broken.update(_non_json(data, source, broken, problems))
    return problems, broken


def _non_json(data: Any, source: Source, broken: set[Path], problems: list[Problem]) -> Iterator[Path]:
    """Dates and non-finite numbers that the schema let through (where any value is accepted).

    Such values cannot be sent to AWS nor written in a plan; a date where text is
    meant is already a schema error, so only paths not yet reported are added.
    """
    try:
        json.dumps(data, allow_nan=False)  # C speed; raises only if such a value exists somewhere
        return
    except (TypeError, ValueError):
        pass
    stack: list[tuple[Path, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in enumerate(value))
        elif isinstance(value, datetime.date | float) and path not in broken and not source.is_damaged(path):
            if isinstance(value, float) and math.isfinite(value):
                continue
            raw = source.raw.get(path, str(value))
            word = "a date" if isinstance(value, datetime.date) else "a non-finite number"
            problems.append(source.problem(path, f"{raw} is read by YAML as {word}", f'quote it: "{raw}"'))
            yield path


def leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    """Descend anyOf/oneOf into the alternative that got furthest."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        deepest = max(len(e.absolute_path) for e in error.context)
        candidates = [e for e in error.context if len(e.absolute_path) == deepest]
        # prefer a branch whose error is not a plain type mismatch
        non_type = [e for e in candidates if e.validator != "type"]
        yield from leaf_errors((non_type or candidates)[0])
        return
    yield error


def _did_you_mean(word: str, choices: list[str], cutoff: float = 0.6) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    if not close:
        folded = [c for c in choices if c.lower() == word.lower()]
        close = folded[:1]
    return close[0] if close else None


def _explain(leaf: ValidationError, source: Source) -> Iterator[tuple[Path, Problem]]:
    """One (path, Problem) per thing wrong in `leaf`; the path is where the fix goes."""
    path: Path = tuple(leaf.absolute_path)
    validator = leaf.validator
    schema = leaf.schema if isinstance(leaf.schema, dict) else {}
    desc = str(schema.get("description", ""))
    if "propertyNames" in leaf.absolute_schema_path and isinstance(leaf.instance, str):
        # the error is about a key, not a value: point at the key itself
        key_path: Path = (*path, leaf.instance)
        yield key_path, source.problem(key_path, _key_message(leaf), desc or "rename the key", key=True)
    elif validator == "additionalProperties" and isinstance(leaf.instance, dict):
        known = sorted(schema.get("properties", {}))
        for key in sorted(k for k in leaf.instance if k not in schema.get("properties", {})):
            close = _did_you_mean(key, known)
            hint = f"did you mean {close!r}?" if close else f"allowed keys: {', '.join(known)}"
            yield (*path, key), source.problem((*path, key), f"unknown key {key!r}", hint, key=True)
    elif validator == "required" and isinstance(leaf.instance, dict):
        for key in [k for k in leaf.validator_value if k not in leaf.instance]:
            yield (*path, key), source.problem(path, f"missing required key {key!r}", f"add `{key}:`")
    elif validator == "type":
        yield path, _type_problem(leaf, path, source)
    elif validator == "const":
        shown = source.raw.get(path) or json.dumps(leaf.instance, default=str)  # "1" must look quoted
        want = json.dumps(leaf.validator_value)
        yield path, source.problem(path, f"{shown} is not allowed here: it must be {want}", f"write {want}")
    elif validator == "enum":
        allowed = [str(a) for a in leaf.validator_value]
        shown = _shown(leaf.instance, path, source)
        close = _did_you_mean(str(leaf.instance), allowed, cutoff=0.5)
        hint = f"did you mean {close!r}?" if close else "use one of: " + ", ".join(allowed)
        if not isinstance(leaf.instance, str) and path in source.raw:
            hint += f' (quote it: "{shown}")'
        yield path, source.problem(path, f"{shown} is not one of {', '.join(allowed)}", hint)
    elif validator == "pattern":
        yield path, source.problem(path, f"invalid value {leaf.instance!r}",
                                   desc or f"it must match {leaf.validator_value}")
    elif validator == "not" and isinstance(leaf.instance, dict) and "rules" in leaf.instance:
        yield path, source.problem(path, "`rules` cannot be combined with keep_last or untagged_expire_days",
                                   "write either raw rules or the shorthand")
    elif validator in ("minLength", "maxLength") and isinstance(leaf.instance, str):
        limit = leaf.validator_value
        word = "at least" if validator == "minLength" else "at most"
        yield path, source.problem(path, f"{leaf.instance[:40]!r}{'...' if len(leaf.instance) > 40 else ''} is "
                                         f"{len(leaf.instance)} characters; {word} {limit} allowed",
                                   desc or _generic_hint(validator))
    else:
        yield path, source.problem(path, leaf.message, _generic_hint(validator))


def _shown(value: Any, path: Path, source: Source) -> str:
    """A value as the user wrote it: the source text of a plain scalar, else text as is, else JSON."""
    if path in source.raw:
        return source.raw[path]
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _key_message(leaf: ValidationError) -> str:
    key = str(leaf.instance)
    shown = f"{key[:40]!r}{'...' if len(key) > 40 else ''}"
    if leaf.validator == "maxLength":
        return f"key {shown} is {len(key)} characters; at most {leaf.validator_value} allowed"
    if leaf.validator == "minLength":
        return "empty key"
    if leaf.validator == "enum":
        return f"key {shown} is not one of {', '.join(map(str, leaf.validator_value))}"
    return f"key {shown} is not allowed here"


def _type_problem(error: ValidationError, path: Path, source: Source) -> Problem:
    expected = error.validator_value
    value = error.instance
    raw = source.raw.get(path)
    word = {"object": "a mapping", "array": "a list", "string": "text", "integer": "a whole number",
            "boolean": "true or false", "number": "a number"}.get(str(expected), str(expected))
    if value is None:
        what = "no value" if raw in (None, "") else f"{raw} (null)"
        return source.problem(path, f"{what} given, but {word} is expected", f"write {word} here")
    if expected == "string" and raw is not None and not isinstance(value, str):
        kind = ("a date" if isinstance(value, datetime.date) else
                "a boolean" if isinstance(value, bool) else "a number")
        return source.problem(path, f"{raw} is read by YAML as {kind}, but text is expected",
                              f'quote it: "{raw}"')
    if isinstance(value, str):
        shown = f"text {value[:40]!r}"
    elif raw is not None:
        shown = raw
    else:
        shown = "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else "a value"
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
    from jsonschema import Draft202012Validator

    return Draft202012Validator(shipped_schema("plan"))


def plan_file_problems(data: Any) -> list[str]:
    """Every way `data` fails `schemas/plan.schema.json`."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in _plan_validator().iter_errors(data)]
