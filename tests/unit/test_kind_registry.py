"""Every kind is wired through: one section expands it, a test applies it, the docs name it; sections stay apart.

For every kind of `reconciler.kinds.all_kinds()`: exactly one section lists it
in `kinds`; that section's expansion of the example manifests (`manifests/*.yaml`,
`tests/unit/good/*.yaml`) produces it; its name appears as a string in a file
under `tests/integration/` (e.g. the per-kind tables of test_protect.py); and
docs/manifest.md's "Kinds" table has its row, naming the same section. And the
other way round: every kind a section lists exists. To add a kind, see
`reconciler/manifest/sections/__init__.py`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

import pytest

from reconciler.kinds import all_kinds
from reconciler.manifest.findings import RULES
from reconciler.manifest.schema import manifest_schema
from reconciler.manifest.section import Section
from reconciler.manifest.sections import SECTIONS
from reconciler.manifest.validate import load_manifest
from tests.conftest import ROOT

KINDS = sorted(all_kinds())
EXAMPLES = sorted([*(ROOT / "manifests").glob("*.yaml"), *(ROOT / "tests" / "unit" / "good").glob("*.yaml")])
INTEGRATION = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests" / "integration").rglob("*.py")))
DOC = (ROOT / "docs" / "manifest.md").read_text(encoding="utf-8")


def owners(kind: str, sections: Iterable[Section]) -> list[str]:
    return [s.key for s in sections if kind in s.kinds]


def doc_rows(doc: str) -> dict[str, str]:
    """kind -> section, from the rows of the Kinds table: | `kind` | `section` | ..."""
    return dict(re.findall(r"^\| `([a-z0-9]+\.[a-z0-9_]+)` \| `([a-z_]+)` \|", doc, flags=re.M))


def in_integration_tests(kind: str, text: str) -> bool:
    """The kind's name as a quoted string: `"ec2.subnet"`, not a prefix of an address such as `iam.user.bot`."""
    return re.search(rf"""["']{re.escape(kind)}["']""", text) is not None


@cache
def produced() -> Mapping[str, frozenset[str]]:
    """Section key -> the kinds its own expansion makes from the example manifests."""
    found: dict[str, set[str]] = {s.key: set() for s in SECTIONS}
    for path in EXAMPLES:
        manifest, _ = load_manifest(path)
        for section in SECTIONS:
            found[section.key].update(r.kind for r in section.expand(manifest))
    return {key: frozenset(kinds) for key, kinds in found.items()}


def test_there_is_something_to_check() -> None:
    assert len(KINDS) >= 14 and len(EXAMPLES) >= 3
    assert [s.key for s in SECTIONS] == ["iam", "ecr", "images", "network"]


@pytest.mark.parametrize("kind", KINDS)
def test_exactly_one_section_lists_the_kind(kind: str) -> None:
    assert len(owners(kind, SECTIONS)) == 1, f"{kind} is listed by sections {owners(kind, SECTIONS)}"


@pytest.mark.parametrize("kind", KINDS)
def test_its_section_expands_the_kind_from_an_example(kind: str) -> None:
    [key] = owners(kind, SECTIONS)
    assert kind in produced()[key], f"no example manifest makes section {key} produce a {kind}"


@pytest.mark.parametrize("kind", KINDS)
def test_the_kind_has_an_integration_test(kind: str) -> None:
    assert in_integration_tests(kind, INTEGRATION), f'no file under tests/integration/ names "{kind}"'


@pytest.mark.parametrize("kind", KINDS)
def test_the_kind_has_a_docs_row(kind: str) -> None:
    rows = doc_rows(DOC)
    assert kind in rows, f"docs/manifest.md's Kinds table has no row for {kind}"
    assert [rows[kind]] == owners(kind, SECTIONS), f"docs/manifest.md says {kind} is in section {rows[kind]}"


def test_every_listed_kind_exists_and_every_row_is_a_kind() -> None:
    listed = {kind for section in SECTIONS for kind in section.kinds}
    assert sorted(listed - set(KINDS)) == []
    assert sorted(set(doc_rows(DOC)) - set(KINDS)) == []


def test_sections_are_schema_keys_with_unique_rules() -> None:
    keys = [s.key for s in SECTIONS]
    assert len(set(keys)) == len(keys)
    assert set(keys) <= set(manifest_schema()["properties"])
    assert all(set(s.needs) <= set(manifest_schema()["properties"]) for s in SECTIONS)
    rule_ids = [rule.id for s in SECTIONS for rule in s.rules]
    assert len(rule_ids) == len(set(rule_ids)) == len(RULES)


SECTION_FILES = sorted(p for p in (ROOT / "reconciler" / "manifest" / "sections").glob("*.py") if p.stem != "__init__")
LOOPS = ("reconciler.manifest.sections", "reconciler.manifest.expand", "reconciler.manifest.checks",
         "reconciler.manifest.findings", "reconciler.manifest.validate")


@pytest.mark.parametrize("path", SECTION_FILES, ids=lambda p: p.stem)
def test_a_section_imports_no_other_section_nor_the_loops(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    names += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    bad = [n for n in names if any(n == loop or n.startswith(loop + ".") for loop in LOOPS)]
    assert not bad, f"{path.name} imports {bad}: sections share helpers through manifest/common.py"
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree)), "no relative imports"


def test_the_checks_can_fail() -> None:
    """Each check above, fed a world with the thing missing, says so."""
    doc = "| `ec2.vpc` | `network` | `vpc.NAME` | the VPC |\n| `iam.user` | `iam` | `iam.user.NAME` | a user |\n"
    assert doc_rows(doc) == {"ec2.vpc": "network", "iam.user": "iam"}
    assert "ec2.subnet" not in doc_rows(doc)
    assert in_integration_tests("ec2.subnet", 'KINDS = {"ec2.subnet": 1}')
    assert not in_integration_tests("iam.user", 'address = "iam.user.bot"')
    network = next(s for s in SECTIONS if s.key == "network")
    assert owners("ec2.subnet", [network, network]) == ["network", "network"]
    assert owners("ec2.nothing", SECTIONS) == []
    assert "ec2.nothing" not in produced()["network"]

