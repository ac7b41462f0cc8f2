"""docs/safety.md names the test that proves each guarantee: every name it gives must exist.

A reference is `tests/PATH.py::test_name` or, after one in the same bullet, `::test_name` (same
file) or `test_file.py::test_name` (a file named before in full); `[case]` suffixes are ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "safety.md"
_REF = re.compile(r"`((?:tests/[\w/]+\.py)|(?:test_\w+\.py))?(::(\w+))?[^`]*`")


def references() -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    known: dict[str, str] = {}
    for bullet in DOC.read_text(encoding="utf-8").split("\n- "):
        current: str | None = None
        for match in _REF.finditer(bullet):
            path, name = match.group(1), match.group(3)
            if path and path.startswith("tests/"):
                known[Path(path).name] = path
                current = path
            elif path:
                current = known.get(path, path)
            if current and (path or name):
                found.append((current, name))
    return found


def test_the_doc_names_tests() -> None:
    assert len(references()) > 40


def test_every_named_test_exists() -> None:
    missing = []
    for path, name in references():
        file = ROOT / path
        if not file.is_file():
            missing.append(path)
        elif name and not re.search(rf"^(async )?def {name}\b", file.read_text(encoding="utf-8"), re.M):
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/safety.md names tests that do not exist: {sorted(set(missing))}"
