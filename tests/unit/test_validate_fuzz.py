"""`validate` never crashes: mutated manifests give a valid result or a ManifestError, nothing else.

The mutations are the mistakes people and tools make in YAML: characters and
lines deleted, duplicated or swapped, YAML's special characters dropped in, and
scalars replaced by YAML 1.1 look-alikes, anchors, aliases and tags.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import ManifestError
from reconciler.manifest.expand import expand
from reconciler.manifest.validate import load_manifest
from tests.conftest import ROOT

SEEDS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "manifests").glob("*.yaml"))] + [
    p.read_text(encoding="utf-8") for p in sorted((Path(__file__).resolve().parent / "good").glob("*.yaml"))]
SPECIAL = [":", "-", " ", "\t", "&", "*", "!", "{", "}", "[", "]", "'", '"', "#", "\n", "|", ">", "%", "@", "`",
           ",", "?", "<<", "\x00", "\x07", "é", "\ufeff", "\r", "\\"]
SCALARS = ["yes", "no", "on", "1.10", "0755", "~", "null", "2024-01-01", "2024-13-45", "*a", "&a x",
           "!!python/object x", "!Ref x", '""', "[]", "{}", "0x1F", ".inf", "1_000", "=", "- a", "{a: *b}",
           "AKIAFAKEFAKEFAKEFAKE",
           "10.0.0.0/8", "0.0.0.0/0", "latest", "eu-west-1z", "true", "-1", "99999999999999999999"]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        kind = draw(st.sampled_from(["delete_chars", "insert_char", "dup_line", "del_line", "swap_lines",
                                     "scalar", "indent"]))
        if kind == "delete_chars" and text:
            start = draw(st.integers(0, len(text) - 1))
            text = text[:start] + text[start + draw(st.integers(1, 12)):]
        elif kind == "insert_char":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.sampled_from(SPECIAL)) + text[at:]
        elif kind in ("dup_line", "del_line", "swap_lines", "indent") and lines:
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if kind == "dup_line":
                lines.insert(j, lines[i])
            elif kind == "del_line":
                del lines[i]
            elif kind == "swap_lines":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines[i] = " " * draw(st.integers(0, 6)) + lines[i].lstrip(" ")
            text = "\n".join(lines)
        elif kind == "scalar":
            # replace the value after some `key: ` (or a list item) with a tricky scalar
            spots = [i for i, line in enumerate(lines) if ": " in line or line.lstrip().startswith("- ")]
            if spots:
                i = draw(st.sampled_from(spots))
                head, sep, _ = lines[i].partition(": ")
                if not sep:
                    head, sep = lines[i].split("- ", 1)[0], "- "
                lines[i] = head + sep + draw(st.sampled_from(SCALARS))
                text = "\n".join(lines)
    return text


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """A copy of manifests/ (policies included) so relative paths in mutants still resolve."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "manifests"
        shutil.copytree(ROOT / "manifests", base)
        shutil.copytree(ROOT / "tests" / "unit" / "bad", Path(tmp) / "bad")
        (Path(tmp) / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
        yield base


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated())
def test_validate_never_crashes(text: str, workdir: Path) -> None:
    path = workdir / "mutant.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        manifest, _ = load_manifest(path)
        expand(manifest)  # `validate` expands a valid manifest too: that must not crash either
    except ManifestError as exc:
        assert exc.problems, "a ManifestError always names at least one problem"
        for problem in exc.problems:
            assert problem.file == str(path)
            assert problem.line >= 1 and problem.col >= 1 and problem.path.startswith("$")
            assert problem.message
        str(exc)
