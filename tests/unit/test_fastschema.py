"""The compiled fast check agrees with jsonschema exactly, so skipping jsonschema on valid data is safe."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from jsonschema import Draft202012Validator

from reconciler.manifest.fastschema import compile_schema
from reconciler.manifest.loader import load_yaml
from reconciler.manifest.schema import manifest_schema
from tests.unit.test_validate_fuzz import mutated

SCHEMA = manifest_schema()
FAST = compile_schema(SCHEMA)
SLOW = Draft202012Validator(SCHEMA)
BAD = sorted((Path(__file__).resolve().parent / "bad").glob("*.yaml"))


def test_the_manifest_schema_compiles() -> None:
    assert FAST is not None


@settings(max_examples=300, deadline=None)
@given(text=mutated())
def test_agrees_with_jsonschema_on_mutated_manifests(text: str) -> None:
    assert FAST is not None
    data, _, _ = load_yaml(text.encode("utf-8", "surrogatepass"), "m.yaml")
    if data is not None:
        assert FAST(data) == SLOW.is_valid(data)


@pytest.mark.parametrize("case", BAD, ids=lambda p: p.stem)
def test_agrees_with_jsonschema_on_the_bad_corpus(case: Path) -> None:
    assert FAST is not None
    data, _, _ = load_yaml(case.read_bytes(), case.name)
    if data is not None:
        assert FAST(data) == SLOW.is_valid(data)


BASE: dict[str, Any] = {"version": 1, "stack": "s", "region": "eu-west-1"}


@pytest.mark.parametrize("extra", [
    {}, {"version": True}, {"version": 1.0}, {"version": "1"}, {"tags": {"a": datetime.date(2024, 1, 1)}},
    {"tags": {"k" * 129: "v"}}, {"tags": {"aws:x": "v"}}, {"iam": {"users": [{"name": "u", "groups": ["a", "a"]}]}},
    {"iam": {"users": [{"name": "u", "groups": [1, True]}]}},
    {"iam": {"users": [{"name": "u", "access_keys": {"count": 2.0, "store": {"ssm": "/x"}}}]}},
    {"iam": {"users": [{"name": "u", "access_keys": {"count": 2.5, "store": {"ssm": "/x"}}}]}},
    {"ecr": {"repositories": [{"name": "r", "lifecycle": {"rules": [{}], "keep_last": 3}}]}},
    {"ecr": {"repositories": [{"name": "r", "policy": {"file": "p.json"}}]}},
    {"ecr": {"repositories": [{"name": "r", "policy": {"file": "p.json", "Version": "2012-10-17"}}]}},
    {"ecr": {"repositories": [{"name": "r", "policy": {"Version": "2012-10-17", "Statement": {"Effect": "Allow"}}}]}},
    {"ecr": {"repositories": [{"name": "r", "policy": {"Version": "2012-10-17", "Statement": []}}]}},
])
def test_agrees_with_jsonschema_on_edge_cases(extra: dict[str, Any]) -> None:
    assert FAST is not None
    data = {**BASE, **extra}
    assert FAST(data) == SLOW.is_valid(data)


def test_an_unknown_keyword_disables_the_fast_path() -> None:
    assert compile_schema({"type": "string", "format": "email"}) is None
    assert compile_schema({"$ref": "https://example.invalid/other.json"}) is None
    assert compile_schema({"type": "object", "description": "annotations are fine"}) is not None
