"""The bad-input corpus: every file in tests/unit/bad/ is an invalid manifest.

Each case file names, in its leading comment lines, every problem `reconcile
validate` must report for it:

    # expect: LINE:COL: TEXT    one problem at exactly LINE:COL whose
                                `$.path: message (hint)` contains TEXT

The reported problems are exactly the expected ones: a case fails on a missing,
a misplaced, and an extra (knock-on) problem alike.
Every case runs through the real command-line entry point (exit code 3); a few
also run as a separate process with no AWS configuration at all.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.cli import main
from tests.conftest import run_cli

BAD = Path(__file__).resolve().parent / "bad"
CASES = sorted(BAD.glob("*.yaml"))
_EXPECT = re.compile(r"^# expect: (\d+):(\d+): (.+)$")
_PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<rest>.*)$")


@dataclass(frozen=True)
class Expected:
    line: int
    col: int
    text: str


def expectations(case: Path) -> list[Expected]:
    """The `# expect:` lines at the top of a case (read leniently: some cases are not UTF-8)."""
    text = case.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    expected = []
    for line in text.split("\n"):
        if not line.startswith("#"):
            break
        if match := _EXPECT.match(line):
            expected.append(Expected(int(match[1]), int(match[2]), match[3]))
    return expected


def reported(stderr: str, file: str) -> list[tuple[int, int, str]]:
    """(line, col, `$.path: message (hint)`) of every problem line in stderr that names `file`."""
    out = []
    for line in stderr.splitlines():
        match = _PROBLEM.match(line)
        if match and match["file"] == file:
            out.append((int(match["line"]), int(match["col"]), match["rest"]))
    return out


def assert_matches(case: Path, problems: list[tuple[int, int, str]]) -> None:
    expected = expectations(case)
    assert expected, f"{case.name} has no `# expect:` line"
    unmatched = list(problems)
    for want in expected:
        hit = next((p for p in unmatched if (p[0], p[1]) == (want.line, want.col) and want.text in p[2]), None)
        assert hit is not None, f"{case.name}: expected {want.line}:{want.col}: {want.text}\n got: {problems}"
        unmatched.remove(hit)
    assert not unmatched, f"{case.name}: unexpected extra problems {unmatched}"



def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 45
    yaml_cases = [c for c in CASES if c.name.startswith("yaml-")]
    semantic = [c for c in CASES if c.name.startswith("sem-")]
    assert len(yaml_cases) >= 15 and len(semantic) >= 20


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_bad_manifest(case: Path, capsys: pytest.CaptureFixture[str], keep_logging: None,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BAD)
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", case.name])
    err = capsys.readouterr().err
    assert exit_info.value.code == 3, err
    assert_matches(case, reported(err, case.name))


def test_oversized_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str], keep_logging: None) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("version: 1\nstack: demo\nregion: eu-west-1\n" + "# padding\n" * 110_000, encoding="utf-8")
    assert big.stat().st_size > 1024 * 1024
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(big)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 3
    assert reported(err, str(big)) == [(1, 1, f"$: file is {big.stat().st_size} bytes, over the 1 MiB limit "
                                              "(split the stack into several manifests)")]


def test_zero_byte_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str], keep_logging: None) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(empty)])
    assert exit_info.value.code == 3
    assert [p[:2] for p in reported(capsys.readouterr().err, str(empty))] == [(1, 1)]


def test_several_manifests_report_every_problem(capsys: pytest.CaptureFixture[str], keep_logging: None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BAD)
    names = ["yaml-duplicate-key.yaml", "sem-unknown-group.yaml", "schema-version.yaml"]
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", *names])
    err = capsys.readouterr().err
    assert exit_info.value.code == 3
    for name in names:
        assert_matches(BAD / name, reported(err, name))


SUBPROCESS_CASES = ["yaml-alias-bomb", "schema-unknown-key", "sem-subnets-overlap", "finding-ssh-open",
                    "sem-policy-grammar"]


@pytest.mark.parametrize("stem", SUBPROCESS_CASES)
def test_bad_manifest_as_a_process_without_aws(stem: str, tmp_path: Path) -> None:
    """A real `reconcile validate` process: exit 3, and no AWS configuration or network needed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # no credentials or config anywhere: an AWS call would fail (or hang on the metadata service)
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true",
               NO_COLOR="1")
    case = BAD / f"{stem}.yaml"
    result = run_cli(["validate", case.name], env=env, cwd=BAD)
    assert result.code == 3, result.all
    assert "Traceback" not in result.all
    assert_matches(case, reported(result.err, case.name))
