"""Hostile or hopeless manifests get a bounded answer: at most MAX_PROBLEMS problems, quickly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reconciler.errors import ManifestError
from reconciler.manifest.loader import MAX_PROBLEMS, Source, load_yaml
from reconciler.manifest.validate import load_manifest

HEAD = "version: 1\nstack: s\nregion: eu-west-1\n"


@pytest.mark.parametrize(("shape", "body", "last"), [
    ("duplicate keys", "stack: s\n" * 20_000, "more than 100 problems; reading stopped here"),
    ("keys read as booleans", "iam:\n  users:\n" + "".join(f"    - {{name: u{i}, yes: 1}}\n" for i in range(5000)),
     "more than 100 problems; reading stopped here"),
    ("unknown keys", "".join(f"k{i}: 1\n" for i in range(20_000)), "more than 100 schema problems"),
    ("bad names", "iam:\n  users:\n" + "".join(f"    - {{name: 'u {i}'}}\n" for i in range(5000)),
     "more than 100 schema problems"),
    ("unknown groups", "iam:\n  users:\n" + "".join(f"    - {{name: u{i}, groups: [g{i}]}}\n" for i in range(5000)),
     "... and 4900 more problems"),
])
def test_problems_are_capped(shape: str, body: str, last: str, tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(ManifestError) as error:
        load_manifest(path)
    assert time.perf_counter() - started < 5.0
    problems = error.value.problems
    assert len(problems) == MAX_PROBLEMS + 1, shape
    assert any(last in p.message for p in problems), [str(p) for p in problems[-3:]]


def test_damage_is_seen_from_above_and_below() -> None:
    source = Source("f", damaged={("iam", "users", 3, "tags")})
    assert source.is_damaged(("iam", "users", 3, "tags"))
    assert source.is_damaged(("iam", "users", 3, "tags", "team"))  # inside
    assert source.is_damaged(("iam", "users", 3))  # above
    assert not source.is_damaged(("iam", "users", 2))
    assert not source.is_damaged(("ecr",))
    source.damaged.add(("ecr",))
    assert source.is_damaged(("ecr", "repositories", 0))


def test_a_refused_value_leaves_no_knock_on_schema_error(tmp_path: Path) -> None:
    # the alias becomes null in the data; "null where text is expected" would only repeat the problem
    path = tmp_path / "alias.yaml"
    path.write_text(HEAD + "tags: {team: *x}\n", encoding="utf-8")
    with pytest.raises(ManifestError) as error:
        load_manifest(path)
    assert [(p.line, p.col, p.path, p.message) for p in error.value.problems] == [
        (4, 14, "$.tags.team", "alias *x is not allowed")]
    data, source, _ = load_yaml(path.read_bytes(), str(path))
    assert data["tags"] == {"team": None} and source.is_damaged(("tags", "team"))
