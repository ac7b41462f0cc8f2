"""docs/manifest.md stays true to the schema and the rule table: every key, enum value and rule is there."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.manifest.findings import RULES
from reconciler.manifest.schema import manifest_schema
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "manifest.md").read_text(encoding="utf-8")
# every word written as code: `name`, `iam.users`, `{file: path}`, and the yaml examples
CODE_WORDS = {word for span in re.findall(r"`([^`]+)`|```yaml\n(.*?)```", DOC, flags=re.S)
              for text in span for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)}


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


SCHEMA_NODES = list(_walk(manifest_schema()))
PROPERTIES = sorted({name for node in SCHEMA_NODES for name in node.get("properties", {})})
ENUM_VALUES = sorted({str(v) for node in SCHEMA_NODES for v in node.get("enum", []) if isinstance(v, str)})


def test_the_schema_has_many_properties() -> None:
    assert len(PROPERTIES) > 60


@pytest.mark.parametrize("name", PROPERTIES)
def test_every_schema_key_is_documented(name: str) -> None:
    assert name in CODE_WORDS, f"`{name}` is not in docs/manifest.md"


@pytest.mark.parametrize("value", ENUM_VALUES)
def test_every_enum_value_is_documented(value: str) -> None:
    assert value in DOC


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_every_rule_is_in_the_table_with_its_severity_and_reference(rule_id: str) -> None:
    rule = RULES[rule_id]
    rows = [line for line in DOC.splitlines() if line.startswith(f"| {rule_id} |")]
    assert len(rows) == 1, f"{rule_id} needs one row in the rule table"
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] == rule.severity and cells[3] == rule.reference


def test_the_table_names_no_rule_that_does_not_exist() -> None:
    assert set(re.findall(r"^\| (RC-[A-Z]+-\d{3}) \|", DOC, flags=re.M)) == set(RULES)
