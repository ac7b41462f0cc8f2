"""Fleet reports rendered: text and markdown tables loudest first, each stack's own report read back
from its JSON exactly as its own renderers print it, and every report plan.fleet makes valid against
schemas/fleet-report.schema.json (merged ones too)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconciler.plan.fleet import Shard, StackIdentity, StackOutcome, fleet_report, merge_reports, shard_members
from reconciler.render.drift import drift_to_json, format_drift_markdown, format_drift_text
from reconciler.render.fleet import (
    drift_from_json,
    format_fleet_json,
    format_fleet_markdown,
    format_fleet_text,
    plan_from_json,
)
from reconciler.render.lines import Style, summary_line
from reconciler.render.markdown import format_plan_markdown
from reconciler.render.registry import FLEET_RENDERERS, FORMATS

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
SCHEMA = json.loads((ROOT / "schemas" / "fleet-report.schema.json").read_text())
STARTED = "2026-12-01T18:00:00+00:00"
ASSUME_DENIED = ("could not assume role arn:aws:iam::333333333333:role/reconciler (AccessDenied); check the role's "
                 "trust policy\nsecond line")


def golden(case: str, name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / case / name).read_text())  # type: ignore[no-any-return]


def outcome(account: str, stack: str, status: str, code: int, report: dict[str, Any] | None = None,
            error: str | None = None) -> StackOutcome:
    return StackOutcome(StackIdentity(account, "eu-west-1", stack, f"fleet/{stack}.yaml"), status, code, STARTED,
                        1.25, error, report)


def three() -> dict[str, Any]:
    """The issue's example: one stack drifted, one in sync, one whose role cannot be assumed."""
    return fleet_report("drift", [
        outcome("111111111111", "dev", "drift", 2, golden("iam-drift", "drift.json")),
        outcome("222222222222", "stg", "in_sync", 0, golden("iam-in-sync", "drift.json")),
        outcome("333333333333", "prod", "error", 1, error=ASSUME_DENIED),
    ], None, 3.0)


@pytest.mark.parametrize("case", CASES)
def test_a_drift_report_read_back_from_its_json_renders_as_the_stack_itself_rendered_it(case: str) -> None:
    doc = golden(case, "drift.json")
    report = drift_from_json(doc)
    assert drift_to_json(report) == doc
    assert format_drift_markdown(report) == (GOLDEN / case / "drift.md").read_text()
    assert format_drift_text(report) == (GOLDEN / case / "drift.txt").read_text()


@pytest.mark.parametrize("case", CASES)
def test_a_plan_read_back_from_its_plan_file_keeps_its_summary_and_its_table(case: str) -> None:
    plan = plan_from_json(golden(case, "plan.json"))
    text = (GOLDEN / case / "plan.txt").read_text()
    assert summary_line(plan) == text.rstrip("\n").splitlines()[-1]
    rebuilt = format_plan_markdown(plan)
    rows = [line for line in (GOLDEN / case / "plan.md").read_text().splitlines() if line.startswith("| ")]
    assert all(row in rebuilt.splitlines() for row in rows)


def test_a_create_read_back_from_a_plan_file_leaves_its_bookkeeping_out() -> None:
    doc = golden("iam-drift", "plan.json")
    create = next(c for c in doc["changes"] if c["action"] == "create" and c["detail"])
    assert any(d["path"] == "tags" and "reconciler:stack" in d["after"] for d in create["diff"])
    rebuilt = next(c for c in plan_from_json(doc).changes if c.address == create["address"])
    # its tags are all bookkeeping (Name and the ownership tags): gone, everything else kept
    assert [d.path for d in rebuilt.diff] == [d["path"] for d in create["diff"] if d["path"] != "tags"]


def test_text_lists_errors_then_drift_then_the_rest_and_ends_with_the_counts() -> None:
    text = format_fleet_text(three(), Style())
    lines = text.splitlines()
    assert lines[0].split() == ["STATUS", "STACK", "ACCOUNT", "REGION", "EXIT", "SECONDS", "DETAIL"]
    assert [line.split()[1] for line in lines[1:4]] == ["prod", "dev", "stg"]
    assert lines[1].split()[:6] == ["error", "prod", "333333333333", "eu-west-1", "1", "1.2"]
    assert lines[1].endswith("trust policy")  # the error's first line only: one line per stack
    assert "Drift found: 1 orphaned, 1 deleted, 2 modified" in lines[2]
    assert lines[3].startswith("in_sync ") and lines[3].endswith("No drift: 3 in sync.")
    assert lines[-1] == "3 stacks: 1 drift, 1 in sync, 1 error."
    assert "\033[" not in text and "second line" not in text


def test_text_in_colour_colours_the_status_only_and_verbose_adds_each_loud_stacks_own_report() -> None:
    report = three()
    coloured = format_fleet_text(report, Style(color=True))
    assert re.sub(r"\033\[[0-9;]*m", "", coloured) == format_fleet_text(report, Style())
    assert "\033[31merror" in coloured
    verbose = format_fleet_text(report, Style(verbose=True))
    own = format_drift_text(drift_from_json(golden("iam-drift", "drift.json"))).rstrip("\n")
    assert own in verbose and "second line" in verbose  # the whole error
    assert "Drift for stack golden" in verbose and verbose.count("Drift for stack") == 1  # not the in-sync one


def test_a_shard_says_which_and_an_empty_one_still_renders() -> None:
    empty = fleet_report("plan", [], Shard(3, 4), 0.1)
    assert format_fleet_text(empty, Style()) == "0 stacks (shard 3/4): 0 changes, 0 no changes, 0 error.\n"
    assert "No stacks" in format_fleet_markdown(empty)
    shard = fleet_report("drift", [outcome("111111111111", "dev", "in_sync", 0)], Shard(1, 2), 1.0)
    assert format_fleet_text(shard, Style()).endswith("1 stacks (shard 1/2): 0 drift, 1 in sync, 0 error.\n")


def test_markdown_lists_drift_first_then_errors_with_each_drifted_stacks_own_report() -> None:
    md = format_fleet_markdown(three())
    assert md.startswith("### reconcile drift: 1 stack failed, drift found (exit 1)\n")
    rows = [line for line in md.splitlines() if line.startswith("| ") and "`eu-west-1`" in line]
    assert [re.findall(r"`([a-z]+)`", row)[0] for row in rows] == ["dev", "prod", "stg"]
    opened = md.index("<details><summary><code>dev</code>")
    own = format_drift_markdown(drift_from_json(golden("iam-drift", "drift.json")), limit=20_000 - 300)
    assert md[opened:].split("\n\n", 1)[1].startswith(own)
    assert "<code>stg</code>" not in md  # in sync: a row, no section
    errors = md.index("#### Errors (1)")
    assert errors > opened and "AccessDenied" in md[errors:]
    assert md.count("<details>") == md.count("</details>")


def test_markdown_stays_under_its_limit_and_says_what_it_left_out() -> None:
    big = golden("iam-drift", "drift.json")
    outcomes = [outcome(f"{100000000000 + i}", f"s{i:03d}", "drift", 2, copy.deepcopy(big)) for i in range(400)]
    report = fleet_report("drift", outcomes, None, 9.0)
    md = format_fleet_markdown(report, limit=40_000)
    assert len(md) <= 40_000
    assert "more stack(s) not listed" in md or "stack(s) are left out" in md
    assert md.count("<details>") == md.count("</details>")
    assert md.rstrip().endswith("</sub>")


def test_an_apply_says_what_it_did_and_shows_the_plan_it_applied() -> None:
    plan = golden("iam-drift", "plan.json")
    results = [{"address": "iam.user.svc-b", "action": "create", "outcome": "done", "seconds": 0.4},
               {"address": "iam.user.svc-c", "action": "update", "outcome": "failed", "seconds": 0.1}]
    report = fleet_report("apply", [
        outcome("111111111111", "dev", "applied", 0, {"plan": plan, "results": results}),
        outcome("222222222222", "stg", "no_changes", 0, {"plan": golden("iam-in-sync", "plan.json"), "results": []}),
    ], None, 2.0)
    text = format_fleet_text(report, Style())
    assert "Apply incomplete: 1 done, 1 failed, 0 skipped." in text and "No changes." in text
    assert text.splitlines()[-1] == "2 stacks: 1 applied, 1 no changes, 0 error."
    md = format_fleet_markdown(report)
    assert md.startswith("### reconcile apply: changes applied (exit 0)") and "#### Changed stacks (1)" in md
    assert "**Apply incomplete: 1 done, 1 failed, 0 skipped.**\n\n### reconcile plan: stack `golden`" in md


def test_a_stack_report_that_cannot_be_read_back_is_listed_without_detail() -> None:
    report = fleet_report("drift", [
        outcome("111111111111", "odd", "drift", 2, {"resources": "not a list", "drift": True}),
        outcome("222222222222", "other", "drift", 2, {"summary": {"changed": 3}}),
    ], None, 1.0)
    text = format_fleet_text(report, Style(verbose=True))
    assert "odd" in text and "3 changed" in text
    md = format_fleet_markdown(report)
    assert "`odd`" in md and "```json" in md


def test_json_is_deterministic_and_reads_back_equal() -> None:
    report = three()
    text = format_fleet_json(report)
    assert json.loads(text) == report
    assert format_fleet_json(dict(reversed(list(report.items())))) == text
    assert text.endswith("\n") and text.startswith('{\n  "command": "drift"')


def test_the_registry_offers_the_fleet_in_every_format() -> None:
    assert tuple(FLEET_RENDERERS) == FORMATS
    assert FLEET_RENDERERS["json"](three(), Style()) == format_fleet_json(three())


# -- the schema -------------------------------------------------------------------------

VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_reports_plan_fleet_makes_validate_against_the_schema_merged_ones_too() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    VALIDATOR.validate(three())
    ids = [StackIdentity(f"{100000000000 + i}", "eu-west-1", f"s{i}", f"fleet/s{i}.yaml") for i in range(9)]
    outcomes = {x: outcome(x.account, x.stack, "changes" if i % 3 else "no_changes", 2 if i % 3 else 0,
                           golden("iam-drift", "plan.json")) for i, x in enumerate(ids)}
    shards = [fleet_report("plan", [outcomes[x] for x in shard_members(ids, Shard(i, 3))], Shard(i, 3), 1.0)
              for i in range(3)]
    for doc in [*shards, merge_reports(shards, ["a", "b", "c"]), fleet_report("apply", [], Shard(0, 1), 0.0)]:
        VALIDATOR.validate(doc)


@pytest.mark.parametrize(("change", "where"), [
    (lambda d: d["stacks"][0].update(status="changes"), "status"),  # a plan status in a drift report
    (lambda d: d["stacks"][0].update(exit_code=0), "exit_code"),  # drift exits 2
    (lambda d: d["stacks"][2].update(error=None), "error"),  # an error says why
    (lambda d: d.update(shard="1 of 4"), "shard"),
    (lambda d: d["stacks"][1].update(account="12"), "account"),
    (lambda d: d["stacks"][1].update(extra=1), "extra"),
    (lambda d: d.update(format_version=2), "format_version"),
])
def test_the_schema_refuses_what_plan_fleet_never_writes(change: Any, where: str) -> None:
    doc = three()
    change(doc)
    errors = list(VALIDATOR.iter_errors(doc))
    assert errors and any(where in "/".join(map(str, e.absolute_path)) + e.message for e in errors)
