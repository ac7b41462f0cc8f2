"""The fleet report: many stacks' outcomes in one document, shards, and merging shard reports.

Pure: no I/O, no clock (the caller passes times in). The JSON shape is the contract of
`--format json`, `--report FILE` and `reconcile report merge` (schemas/fleet-report.schema.json).

Invariants:
- stacks are listed sorted by (account, region, stack), so a report does not depend on
  file order, on `--jobs`, or on which shard ran a stack;
- shard membership is a function of the set of stack identities alone: stacks are ranked
  by sha256("account/region/stack") and rank r goes to shard r % N, so shards are stable
  for the same set, their sizes differ by at most one, and file order plays no part;
- the exit code is the worst of the stacks': 1 (could not tell / failed) over 2 (changes or
  drift) over 0; 3 is never a stack's code (invalid manifests stop the run before it starts);
- merging N shard reports gives the report of the unsharded run, apart from timings
  (`seconds`, `started_at`): one command, every shard 0..N-1 exactly once, no stack twice.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.errors import UsageError

FORMAT = "reconciler-fleet-report"
FORMAT_VERSION = 1
COMMANDS = ("plan", "drift", "apply")
# status -> exit code, per command; "error" is every command's failure
STATUSES: Mapping[str, Mapping[str, int]] = {
    "plan": {"no_changes": 0, "changes": 2, "error": 1},
    "drift": {"in_sync": 0, "drift": 2, "error": 1},
    "apply": {"no_changes": 0, "applied": 0, "error": 1},
}
# worst first: the fleet's exit code is the first of these any stack has
_SEVERITY = (1, 2, 0)
# the environment variables `--shard auto/N` reads its index from, first found wins
SHARD_INDEX_VARIABLES = ("JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX")


@dataclass(frozen=True, order=True)
class StackIdentity:
    """Who a stack is: the order fields are the report's sort key."""

    account: str  # "" when the manifest names no `account:`
    region: str
    stack: str
    manifest: str  # the path as given on the command line

    @property
    def key(self) -> str:
        return f"{self.account}/{self.region}/{self.stack}"


@dataclass(frozen=True)
class StackOutcome:
    """One stack's result in a fleet run; `report` is that stack's own JSON (plan, drift or apply)."""

    identity: StackIdentity
    status: str
    exit_code: int
    started_at: str  # ISO 8601, UTC
    seconds: float
    error: str | None = None
    report: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def _whole_number(text: str) -> bool:
    # ASCII digits only: str.isdigit() also accepts "²", which int() then refuses with a traceback
    return text.isascii() and text.isdigit()


def parse_shard(text: str, environ: Mapping[str, str]) -> Shard:
    """`--shard I/N` or `--shard auto/N` (I from JOB_COMPLETION_INDEX, else AWS_BATCH_JOB_ARRAY_INDEX)."""
    index_text, sep, count_text = text.partition("/")
    if not sep or not _whole_number(count_text) or int(count_text) < 1:
        raise UsageError(f"--shard {text!r}: write I/N with N >= 1 (e.g. 0/4, I from 0 to N-1), or auto/N")
    count = int(count_text)
    if index_text == "auto":
        found = [(name, environ[name]) for name in SHARD_INDEX_VARIABLES if environ.get(name, "") != ""]
        if not found:
            raise UsageError(f"--shard auto/{count}: neither {' nor '.join(SHARD_INDEX_VARIABLES)} is set; run it "
                             f"as a Kubernetes indexed job or an AWS Batch array job, or pass the index: --shard "
                             f"0/{count}")
        name, index_text = found[0]
        where = f"{name}={index_text!r}"
    else:
        where = f"--shard {text!r}"
    if not _whole_number(index_text) or int(index_text) >= count:
        raise UsageError(f"{where}: the shard index must be a whole number from 0 to {count - 1}; fix it, or "
                         f"change N in --shard I/{count}")
    return Shard(int(index_text), count)


def _rank_key(identity: StackIdentity) -> tuple[str, StackIdentity]:
    return hashlib.sha256(identity.key.encode()).hexdigest(), identity


def shard_members(identities: Sequence[StackIdentity], shard: Shard) -> list[StackIdentity]:
    """The stacks of `shard`, in report order. See the module invariants."""
    ranked = sorted(identities, key=_rank_key)
    return sorted(identity for rank, identity in enumerate(ranked) if rank % shard.count == shard.index)


def duplicate_stacks(identities: Sequence[StackIdentity]) -> list[str]:
    """account/region/stack keys named by more than one manifest: two manifests must not fight over a stack."""
    counts = Counter(identity.key for identity in identities)
    return sorted(key for key, n in counts.items() if n > 1)


def worst_exit(codes: Sequence[int]) -> int:
    """1 over 2 over 0 (see the module invariants); 0 for no stacks."""
    for code in _SEVERITY:
        if code in codes:
            return code
    return max(codes, default=0)


def outcome_to_json(outcome: StackOutcome) -> dict[str, Any]:
    identity = outcome.identity
    return {"manifest": identity.manifest, "stack": identity.stack, "account": identity.account,
            "region": identity.region, "status": outcome.status, "exit_code": outcome.exit_code,
            "started_at": outcome.started_at, "seconds": round(outcome.seconds, 3), "error": outcome.error,
            "report": dict(outcome.report) if outcome.report is not None else None}


def _summary(stacks: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = Counter(str(stack["status"]) for stack in stacks)
    return {"stacks": len(stacks), **{status: counts[status] for status in sorted(counts)}}


def fleet_report(command: str, outcomes: Sequence[StackOutcome], shard: Shard | None, seconds: float) -> dict[str, Any]:
    """The JSON-ready fleet report of one run (one shard, or all stacks)."""
    stacks = [outcome_to_json(o) for o in sorted(outcomes, key=lambda o: o.identity)]
    return _document(command, stacks, str(shard) if shard else None, seconds)


def _document(command: str, stacks: list[dict[str, Any]], shard: str | None, seconds: float) -> dict[str, Any]:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "command": command, "shard": shard,
            "exit_code": worst_exit([int(s["exit_code"]) for s in stacks]), "seconds": round(seconds, 3),
            "summary": _summary(stacks), "stacks": stacks}


def _sort_key(stack: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return str(stack["account"]), str(stack["region"]), str(stack["stack"]), str(stack["manifest"])


def merge_reports(reports: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """One fleet report from shard reports (`names` label them in errors). Raises UsageError on a mismatch.

    Already-merged or unsharded reports merge too, as long as no stack appears twice; shard reports must
    cover one N completely (a missing shard would silently drop its stacks from the fleet's answer).
    """
    if not reports:
        raise UsageError("report merge: no reports given; pass the shard reports, e.g. shard-*.json")
    for report, name in zip(reports, names, strict=True):
        if report.get("format") != FORMAT or report.get("format_version") != FORMAT_VERSION:
            raise UsageError(f"{name}: not a fleet report (format {FORMAT!r} version {FORMAT_VERSION}); pass the "
                             "files written by --report or --format json with several manifests or --shard")
    commands = sorted({str(r["command"]) for r in reports})
    if len(commands) > 1:
        raise UsageError(f"report merge: the reports are of different commands ({', '.join(commands)}); merge "
                         "the reports of one command at a time")
    shards = [(str(r["shard"]), name) for r, name in zip(reports, names, strict=True) if r.get("shard")]
    if shards:
        whole = [name for report, name in zip(reports, names, strict=True) if not report.get("shard")]
        if whole:  # typically an earlier merge's output caught by the shards' glob
            raise UsageError(f"report merge: {', '.join(whole)} is not a shard report (it is merged or unsharded: "
                             "\"shard\": null) while the others are shards; leave it out, and name --out outside "
                             "the shards' glob")
        counts = {text.partition("/")[2] for text, _ in shards}
        if len(counts) > 1:
            raise UsageError("report merge: the reports come from different shardings ("
                             + ", ".join(f"{n}: {t}" for t, n in shards) + "); merge the shards of one run")
        count = int(counts.pop())
        seen = Counter(int(text.partition("/")[0]) for text, _ in shards)
        missing = [i for i in range(count) if i not in seen]
        twice = sorted(i for i, n in seen.items() if n > 1)
        if missing or twice:
            what = (f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing" if missing else
                    f"shard(s) {', '.join(f'{i}/{count}' for i in twice)} given twice")
            raise UsageError(f"report merge: {what}; pass every shard report of the run exactly once")
    stacks = [dict(stack) for report in reports for stack in report["stacks"]]
    keys = Counter("/".join(_sort_key(stack)[:3]) for stack in stacks)
    doubled = sorted(key for key, n in keys.items() if n > 1)
    if doubled:
        raise UsageError(f"report merge: stack(s) {', '.join(doubled)} appear in more than one report; pass each "
                         "shard's report once")
    seconds = max(float(r.get("seconds", 0.0)) for r in reports)  # shards run side by side
    return _document(commands[0], sorted(stacks, key=_sort_key), None, seconds)
