"""`reconcile report merge`: shard reports in (globs expanded by the tool), one fleet report out, the
merged report's exit code; every bad input a one-line exit 3 naming the file, never a traceback.

Real `reconcile` processes on plain files (no AWS configuration at all: merging makes no AWS call).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.plan.fleet import Shard, StackIdentity, StackOutcome, fleet_report, shard_members
from reconciler.secret import Secret
from tests.unit.test_cli_inputs import assert_one_line_exit_3, reconcile

ROOT = Path(__file__).resolve().parents[2]
DRIFTED = json.loads((ROOT / "tests" / "golden" / "iam-drift" / "drift.json").read_text())
IN_SYNC = json.loads((ROOT / "tests" / "golden" / "iam-in-sync" / "drift.json").read_text())
SCHEMA = json.loads((ROOT / "schemas" / "fleet-report.schema.json").read_text())
IDS = [StackIdentity(f"{100000000000 + i}", "eu-west-1", f"s{i}", f"fleet/s{i}.yaml") for i in range(7)]


def outcomes(drifted: int | None = 3, failed: int | None = None) -> dict[StackIdentity, StackOutcome]:
    out = {}
    for i, x in enumerate(IDS):
        if i == failed:
            out[x] = StackOutcome(x, "error", 1, "2026-12-01T18:00:00+00:00", 0.5, "AccessDenied; check the role",
                                  None)
        else:
            out[x] = StackOutcome(x, "drift" if i == drifted else "in_sync", 2 if i == drifted else 0,
                                  "2026-12-01T18:00:00+00:00", 1.0 + i, None, DRIFTED if i == drifted else IN_SYNC)
    return out


def write_shards(where: Path, found: dict[StackIdentity, StackOutcome], count: int = 3) -> list[dict[str, Any]]:
    docs = []
    for i in range(count):
        doc = fleet_report("drift", [found[x] for x in shard_members(IDS, Shard(i, count))], Shard(i, count), 2.0 + i)
        (where / f"shard-{i}.json").write_text(json.dumps(doc))
        docs.append(doc)
    return docs


def without_timings(doc: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in doc.items() if k != "seconds"},
            "stacks": [{k: v for k, v in s.items() if k not in ("seconds", "started_at")} for s in doc["stacks"]]}


def test_shards_merged_through_a_quoted_glob_equal_the_unsharded_report_and_exit_2_on_drift(tmp_path: Path) -> None:
    found = outcomes()
    write_shards(tmp_path, found)
    result = reconcile(["report", "merge", "shard-*.json", "--out", "merged.json"], tmp_path)
    assert result.returncode == 2, result.stderr
    merged = json.loads((tmp_path / "merged.json").read_text())
    jsonschema.validate(merged, SCHEMA)
    whole = fleet_report("drift", list(found.values()), None, 9.0)
    assert without_timings(merged) == without_timings(whole)
    lines = result.stdout.splitlines()
    assert lines[1].split()[:2] == ["drift", "s3"] and lines[-1] == "7 stacks: 1 drift, 6 in sync, 0 error."
    assert "merged report of 7 stack(s) from 3 file(s) written to merged.json" in result.stderr
    # the merged report merges again (alone: it is no shard), and as JSON on stdout it is the same document
    again = reconcile(["report", "merge", "merged.json", "--format", "json"], tmp_path)
    assert again.returncode == 2 and json.loads(again.stdout) == merged


def test_markdown_for_a_job_summary_and_exit_1_when_a_stack_failed(tmp_path: Path) -> None:
    write_shards(tmp_path, outcomes(drifted=3, failed=5), count=2)
    result = reconcile(["report", "merge", str(tmp_path / "shard-0.json"), str(tmp_path / "shard-1.json"),
                        "--format", "markdown"], tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("### reconcile drift: 1 stack failed, drift found (exit 1)")
    assert "#### Errors (1)" in result.stdout and "<code>s3</code>" in result.stdout


def test_all_in_sync_exits_0(tmp_path: Path) -> None:
    write_shards(tmp_path, outcomes(drifted=None), count=2)
    result = reconcile(["report", "merge", "shard-0.json", "shard-1.json", "-q"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "7 stacks: 0 drift, 7 in sync, 0 error."


def _bad(tmp_path: Path, name: str, body: str) -> str:
    (tmp_path / name).write_text(body)
    return name


@pytest.mark.parametrize(("files", "text"), [
    (lambda d: ["nowhere.json"], "nowhere.json: not a readable fleet report: No such file or directory; check"),
    (lambda d: ["none-*.json"], "'none-*.json' matches no file; check the pattern"),
    (lambda d: [_bad(d, "x.json", "{")], "x.json: not a readable fleet report: Expecting property name"),
    (lambda d: [_bad(d, "d.json", json.dumps(DRIFTED))], "d.json: not a fleet report"),
    (lambda d: [_bad(d, "deep.json", "[" * 200 + "]" * 200)], "deep.json: invalid fleet report: nested deeper"),
    (lambda d: ["shard-0.json", "shard-2.json"], "shard(s) 1/3 missing"),
    (lambda d: ["shard-*.json", _bad(d, "v.json", json.dumps({**json.loads((d / "shard-1.json").read_text()),
                                                               "format_version": 9}))], "v.json: a fleet report of "
     "format_version 9"),
])
def test_bad_inputs_are_one_line_exit_3_naming_the_file(tmp_path: Path, files: Any, text: str) -> None:
    write_shards(tmp_path, outcomes())
    assert_one_line_exit_3(reconcile(["report", "merge", *files(tmp_path)], tmp_path), text)


def test_an_invalid_report_names_the_file_and_the_place(tmp_path: Path) -> None:
    docs = write_shards(tmp_path, outcomes())
    docs[1]["stacks"][0]["exit_code"] = 0 if docs[1]["stacks"][0]["status"] == "drift" else 2
    (tmp_path / "shard-1.json").write_text(json.dumps(docs[1]))
    result = reconcile(["report", "merge", "shard-*.json"], tmp_path)
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "shard-1.json: invalid fleet report (re-run that shard with --report FILE):" in result.stderr
    assert "stacks/0/exit_code" in result.stderr


def test_output_is_redacted_like_the_drift_report(tmp_path: Path) -> None:
    secret = Secret("wJalrXUtnFEMI-merge-test-secret")  # registered with the redaction, as a run's secrets are
    found = outcomes(drifted=None, failed=2)
    failed = found[IDS[2]]
    found[IDS[2]] = StackOutcome(failed.identity, "error", 1, failed.started_at, 0.5,
                                 f"leaked {secret.reveal()}; check it", None)
    write_shards(tmp_path, found, count=1)
    result = CliRunner().invoke(cli,
                                ["report", "merge", str(tmp_path / "shard-0.json"), "--out",
                                 str(tmp_path / "m.json"), "-v", "--format", "markdown"])
    assert result.exit_code == 1, result.output
    assert "leaked (sensitive)" in result.output and secret.reveal() not in result.output
    written = (tmp_path / "m.json").read_text()
    assert "leaked (sensitive)" in written and secret.reveal() not in written


def test_report_alone_prints_its_help(tmp_path: Path) -> None:
    result = reconcile(["report"], tmp_path)
    assert result.returncode == 0 and "merge  Merge shard reports" in result.stdout and not result.stderr


def test_out_naming_one_of_the_inputs_is_refused_and_the_shard_kept(tmp_path: Path) -> None:
    write_shards(tmp_path, outcomes())
    before = (tmp_path / "shard-0.json").read_text()
    result = reconcile(["report", "merge", "shard-*.json", "--out", "shard-0.json"], tmp_path)
    assert_one_line_exit_3(result, "--out shard-0.json is one of the reports being merged")
    assert (tmp_path / "shard-0.json").read_text() == before
