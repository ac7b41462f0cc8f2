"""The pure fleet report: shard membership, the worst exit code, merging shard reports."""

from __future__ import annotations

import pytest

from reconciler.errors import UsageError
from reconciler.plan.fleet import (
    Shard,
    StackIdentity,
    StackOutcome,
    duplicate_stacks,
    fleet_report,
    merge_reports,
    parse_shard,
    shard_members,
    worst_exit,
)


def _ids(n: int) -> list[StackIdentity]:
    return [StackIdentity(f"{100000000000 + i}", "eu-west-1", f"s{i}", f"fleet/s{i}.yaml") for i in range(n)]


def test_shards_partition_the_stacks_evenly_and_ignore_file_order() -> None:
    ids = _ids(101)
    shards = [shard_members(ids, Shard(i, 4)) for i in range(4)]
    assert sorted(x for s in shards for x in s) == sorted(ids)
    assert {len(s) for s in shards} <= {25, 26}
    assert shard_members(list(reversed(ids)), Shard(2, 4)) == shards[2]
    # not simply file order: the first four files do not land one per shard in order
    assert [next(i for i, s in enumerate(shards) if x in s) for x in ids[:8]] != [0, 1, 2, 3, 0, 1, 2, 3]


@pytest.mark.parametrize(("text", "env", "want"), [
    ("0/4", {}, Shard(0, 4)), ("3/4", {}, Shard(3, 4)),
    ("auto/3", {"JOB_COMPLETION_INDEX": "2"}, Shard(2, 3)),
    ("auto/3", {"AWS_BATCH_JOB_ARRAY_INDEX": "1"}, Shard(1, 3)),
    ("auto/3", {"JOB_COMPLETION_INDEX": "0", "AWS_BATCH_JOB_ARRAY_INDEX": "2"}, Shard(0, 3)),
])
def test_parse_shard(text: str, env: dict[str, str], want: Shard) -> None:
    assert parse_shard(text, env) == want


@pytest.mark.parametrize(("text", "env", "needle"), [
    ("4/4", {}, "from 0 to 3"), ("1", {}, "write I/N"), ("a/2", {}, "whole number"), ("0/0", {}, "N >= 1"),
    ("auto/2", {}, "JOB_COMPLETION_INDEX"), ("auto/2", {"JOB_COMPLETION_INDEX": "7"}, "JOB_COMPLETION_INDEX='7'"),
    ("0/\u00b2", {}, "write I/N"), ("\u00b2/4", {}, "whole number"),  # digits to str.isdigit, not to int()
])
def test_bad_shards_are_usage_errors(text: str, env: dict[str, str], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        parse_shard(text, env)


def test_worst_exit_is_error_then_drift_then_ok() -> None:
    assert worst_exit([0, 2, 1, 0]) == 1
    assert worst_exit([0, 2]) == 2
    assert worst_exit([0, 0]) == 0
    assert worst_exit([]) == 0


def _outcome(identity: StackIdentity, status: str, code: int) -> StackOutcome:
    return StackOutcome(identity, status, code, "2026-12-01T00:00:00+00:00", 1.5, report={"drift": code == 2})


def test_merged_shards_equal_the_unsharded_report_apart_from_timings() -> None:
    ids = _ids(10)
    outcomes = {x: _outcome(x, "drift" if i == 3 else "in_sync", 2 if i == 3 else 0) for i, x in enumerate(ids)}
    whole = fleet_report("drift", list(outcomes.values()), None, 9.0)
    parts = [fleet_report("drift", [outcomes[x] for x in shard_members(ids, Shard(i, 3))], Shard(i, 3), 3.0)
             for i in range(3)]
    merged = merge_reports(parts, ["a", "b", "c"])
    for doc in (whole, merged):
        doc.pop("seconds")
    assert merged == whole
    assert whole["exit_code"] == 2 and whole["summary"] == {"stacks": 10, "drift": 1, "in_sync": 9}
    with pytest.raises(UsageError, match="1/3 missing"):
        merge_reports([parts[0], parts[2]], ["a", "c"])
    with pytest.raises(UsageError, match=r"given twice|more than one report"):
        merge_reports([parts[0], parts[0], parts[1], parts[2]], list("abcd"))
    with pytest.raises(UsageError, match="not a fleet report"):
        merge_reports([{"format": "x"}], ["x.json"])


def test_duplicate_stacks_are_found() -> None:
    a = StackIdentity("1", "r", "s", "a.yaml")
    assert duplicate_stacks([a, StackIdentity("1", "r", "s", "b.yaml"), StackIdentity("2", "r", "s", "c.yaml")]) \
        == ["1/r/s"]


def test_a_merged_report_among_shards_is_named() -> None:
    ids = _ids(4)
    parts = [fleet_report("drift", [_outcome(x, "in_sync", 0) for x in shard_members(ids, Shard(i, 2))],
                          Shard(i, 2), 1.0) for i in range(2)]
    merged = merge_reports(parts, ["shard-0.json", "shard-1.json"])
    with pytest.raises(UsageError, match=r"shard-all\.json is not a shard report"):
        merge_reports([*parts, merged], ["shard-0.json", "shard-1.json", "shard-all.json"])
