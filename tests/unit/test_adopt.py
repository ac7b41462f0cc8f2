"""Adoption as its own action, and the hand-over of a key made by hand: literal data, no AWS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from reconciler.engine.apply import _parts
from reconciler.kinds import all_kinds
from reconciler.kinds.iam.access_key import KIND as KEYS
from reconciler.kinds.iam.access_key import key_steps
from reconciler.manifest.model import DesiredResource
from reconciler.plan.build import build_plan
from reconciler.plan.drift import build_drift
from reconciler.plan.model import Action, Change, LiveResource, NoteKind, Plan
from reconciler.render.json import format_plan_json
from reconciler.render.lines import summary_line
from reconciler.render.markdown import format_plan_markdown
from reconciler.render.text import format_plan_text

ROOT = Path(__file__).resolve().parents[2] / "reconciler"
SPEC = {"user": "dev", "count": 1, "rotate_after_days": 90, "grace_days": 7, "store": {"ssm": "/keys/dev"},
        "tags": {"reconciler:stack": "s"}}
USER_SPEC = {"name": "dev", "path": "/", "groups": [], "managed_policies": [], "inline_policies": {},
             "console_access": False, "tags": {"reconciler:stack": "s", "Name": "dev"}}


def key(ident: str, age: int, role: str = "unknown", status: str = "Active", **extra: Any) -> dict[str, Any]:
    return {"id": ident, "age_days": age, "role": role, "status": status, "last_used_days": 1, **extra}


def desired() -> list[DesiredResource]:
    return [DesiredResource("iam.user.dev", "iam.user", USER_SPEC),
            DesiredResource("iam.user.dev.access_keys", "iam.access_key", SPEC, depends_on=("iam.user.dev",))]


def live(keys: list[dict[str, Any]], *, owned: bool, store: bool = False) -> list[LiveResource]:
    user_tags = {"Name": "dev", **({"reconciler:stack": "s"} if owned else {})}
    attrs: dict[str, Any] = {"user": "dev", "keys": keys, "today": "2026-12-01",
                             "store": {"ssm": "/keys/dev"} if store else {}}
    if store:
        attrs["store_tags"] = {"reconciler:stack": "s"}
    else:
        attrs["store_missing"] = True
    return [LiveResource("iam.user.dev", "iam.user", "dev", {**USER_SPEC, "tags": user_tags}, owned=owned),
            LiveResource("iam.user.dev.access_keys", "iam.access_key", "dev", attrs, owned=owned,
                         depends_on=("iam.user.dev",))]


def plan(live_resources: list[LiveResource], *, adopt: bool) -> Plan:
    return build_plan(stack="s", region="us-east-1", account="123456789012", manifest_sha256="0" * 64,
                      desired=desired(), live={r.address: r for r in live_resources}, kinds=all_kinds(),
                      adopt=adopt)


def change(result: Plan, address: str) -> Change:
    return next(c for c in result.changes if c.address == address)


# -- adopt, the action ---------------------------------------------------------

def test_adoption_is_its_own_action_counted_in_the_summary() -> None:
    result = plan(live([key("AKIAHAND", 400)], owned=False), adopt=True)
    assert {c.address: c.action for c in result.changes} == {"iam.user.dev": Action.ADOPT,
                                                             "iam.user.dev.access_keys": Action.ADOPT}
    assert not result.blocked
    assert result.summary()["adopt"] == 2
    assert summary_line(result) == "Plan: 0 to add, 0 to change, 0 to replace, 0 to destroy, 2 to adopt."
    assert change(result, "iam.user.dev").reason == "adopt: add the stack tags"
    assert change(result, "iam.user.dev.access_keys").reason == "adopt: add the stack tags; change keys"


def test_without_adopt_it_stays_a_blocked_conflict() -> None:
    result = plan(live([key("AKIAHAND", 400)], owned=False), adopt=False)
    assert all(c.blocked and "--adopt" in c.blocked for c in result.changes)
    assert result.summary()["adopt"] == 0


def test_an_adoption_that_would_force_a_replacement_is_blocked() -> None:
    moved = LiveResource("iam.user.dev.access_keys", "iam.access_key", "dev",
                         {"user": "dev", "keys": [], "store": {"ssm": "/elsewhere"}, "store_tags": {},
                          "today": "2026-12-01"}, owned=False)
    result = plan([live([], owned=False)[0], moved], adopt=True)
    keys = change(result, "iam.user.dev.access_keys")
    assert keys.action is Action.ADOPT
    assert keys.blocked and "adopting never re-creates what exists" in keys.blocked and "store" in keys.blocked


def test_apply_runs_an_adoption_through_the_kinds_update() -> None:
    result = plan(live([], owned=False), adopt=True)
    assert _parts(change(result, "iam.user.dev"), all_kinds()["iam.user"]) == ("update",)  # type: ignore[arg-type]


def test_renderers_show_the_adoption() -> None:
    result = plan(live([key("AKIAHAND", 400)], owned=False), adopt=True)
    text = format_plan_text(result)
    assert "& iam.user.dev (iam.user) will be adopted (stack tags added, nothing re-created)" in text
    assert "2 to adopt" in text
    md = format_plan_markdown(result)
    assert "| adopt | `iam.user.dev` |" in md and "2 to adopt" in md
    body = json.loads(format_plan_json(result))
    assert body["summary"]["adopt"] == 2 and {c["action"] for c in body["changes"]} == {"adopt"}
    schema = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(body)


def test_drift_reports_an_adoption_pending_as_not_owned() -> None:
    result = plan(live([key("AKIAHAND", 400)], owned=False), adopt=True)
    report = build_drift(result, all_kinds())  # type: ignore[arg-type]
    schema = json.loads((ROOT / "schemas" / "drift.schema.json").read_text())
    from reconciler.render.drift import format_drift_json
    body = json.loads(format_drift_json(report))
    jsonschema.Draft202012Validator(schema).validate(body)
    assert {r["action"] for r in body["resources"]} == {"adopt"}


# -- the key made by hand ------------------------------------------------------

def ops(keys: list[dict[str, Any]], *, adopting: bool, **spec: Any) -> list[tuple[str, str | None]]:
    attrs = {"keys": keys, "store": {"ssm": "/keys/dev"}}
    return [(s.op, s.key) for s in key_steps({**SPEC, **spec}, attrs, adopting=adopting)]


def test_adopting_hands_the_key_over_before_the_new_key_is_made() -> None:
    assert ops([key("H", 400)], adopting=True) == [("handover", "H"), ("create", None)]
    # an owned user's key made by hand later is still deactivated at once (unchanged)
    assert ops([key("H", 400)], adopting=False) == [("create", None), ("retire", "H")]


def test_a_handed_over_key_stays_active_for_grace_days_then_is_retired_then_deleted() -> None:
    stored = key("NEW", 3, role="delivered")
    within = key("H", 400, role="handover", handover_since="2026-12-01", handover_days=3)
    assert ops([stored, within], adopting=False) == []
    due = {**within, "handover_days": 7}
    assert ops([stored, due], adopting=False) == [("retire", "H")]
    retired = key("H", 407, role="retired", status="Inactive", handover_since="2026-12-01", retired_days=3)
    assert ops([stored, retired], adopting=False) == []
    assert ops([stored, {**retired, "retired_days": 7}], adopting=False) == [("delete", "H")]


def test_a_handed_over_key_is_never_deactivated_while_it_is_the_only_active_key() -> None:
    due = key("H", 400, role="handover", handover_since="2026-12-01", handover_days=30)
    # no stored key and none can be made (count 1, but the store write failed and... two keys already)
    other = key("X", 50, role="retired", status="Inactive", retired_days=1)
    assert ("retire", "H") not in ops([due, other], adopting=False)


def test_the_adopt_plan_says_every_step_with_its_date() -> None:
    result = plan(live([key("AKIAHAND", 400)], owned=False), adopt=True)
    keys = change(result, "iam.user.dev.access_keys")
    by_path = {d.path: d for d in keys.diff}
    assert by_path["keys.AKIAHAND"].after.startswith("Active until 2026-12-08, then Inactive; deleted from 2026-12-15")
    assert "keys.new" in by_path
    texts = [n.text for n in keys.notes]
    assert any("step 1, this apply (2026-12-01): a new key is created into ssm:/keys/dev" in t for t in texts)
    assert any("step 2, 2026-12-01 to 2026-12-08: key AKIAHAND stays active (grace_days: 7)" in t for t in texts)
    assert any("step 3, on the first apply from 2026-12-08: key AKIAHAND is deactivated" in t for t in texts)
    assert any("step 4, on the first apply from 2026-12-15" in t and "is deleted" in t for t in texts)
    assert [n.kind for n in keys.notes if n.text.startswith("step")][1:] == [NoteKind.SCHEDULED] * 3
    text = format_plan_text(result)
    assert "! scheduled: step 3, on the first apply from 2026-12-08: key AKIAHAND is deactivated" in text


def test_the_next_plan_is_empty_apart_from_the_dated_retirement() -> None:
    handed = key("AKIAHAND", 401, role="handover", handover_since="2026-12-01", handover_days=1)
    stored = key("AKIANEW", 1, role="delivered")
    result = plan(live([stored, handed], owned=True, store=True), adopt=False)
    assert not result.pending and not result.blocked
    keys = change(result, "iam.user.dev.access_keys")
    assert keys.action is Action.NOOP and not keys.diff
    assert [n.kind for n in keys.notes] == [NoteKind.SCHEDULED]
    assert "stays active until 2026-12-08" in keys.notes[0].text and "from 2026-12-15" in keys.notes[0].text
    text = format_plan_text(result)
    assert "iam.user.dev.access_keys" in text and "No changes." in text  # shown although in sync
    assert "scheduled for later applies" in format_plan_markdown(result)
    report = build_drift(result, all_kinds())  # type: ignore[arg-type]
    assert {e.address: e.status.value for e in report.entries}["iam.user.dev.access_keys"] == "IN_SYNC"


def test_once_due_the_retirement_is_a_scheduled_change_and_the_deletion_stays_dated() -> None:
    handed = key("AKIAHAND", 408, role="handover", handover_since="2026-12-01", handover_days=8)
    stored = key("AKIANEW", 8, role="delivered")
    attrs_live = live([stored, handed], owned=True, store=True)
    result = plan(attrs_live, adopt=False)
    keys = change(result, "iam.user.dev.access_keys")
    assert keys.action is Action.UPDATE and [d.path for d in keys.diff] == ["keys.AKIAHAND"]
    report = build_drift(result, all_kinds())  # type: ignore[arg-type]
    assert {e.address: e.status.value for e in report.entries}["iam.user.dev.access_keys"] == "IN_SYNC"
    retired = key("AKIAHAND", 409, role="retired", status="Inactive", handover_since="2026-12-01", retired_days=1)
    later = change(plan(live([stored, retired], owned=True, store=True), adopt=False), "iam.user.dev.access_keys")
    assert later.action is Action.NOOP
    assert later.notes and "deactivated on 2026-11-30; it is deleted on the first apply from 2026-12-07" \
        in later.notes[0].text


def test_notes_never_hold_a_secret_and_the_kind_diff_is_pure() -> None:
    live_keys = live([key("AKIAHAND", 400)], owned=False)[1]
    first = KEYS.diff(desired()[1], live_keys)
    assert first == KEYS.diff(desired()[1], live_keys)
    assert all("Secret" not in str(c.after) for c in first)


def test_adopting_an_image_that_holds_its_build_pushes_nothing() -> None:
    from reconciler.kinds.ecr.image import KIND as IMAGE

    spec = {"repository": "r", "tag": "v1", "inputs": "sha256:" + "a" * 64}
    image = Change("ecr.image.r:v1", "ecr.image", Action.ADOPT, "adopt: add the stack tags", (), (),
                   DesiredResource("ecr.image.r:v1", "ecr.image", spec),
                   LiveResource("ecr.image.r:v1", "ecr.image", "r:v1", {**spec, "digest": "sha256:" + "b" * 64},
                                owned=False))
    IMAGE.update(None, image)  # type: ignore[arg-type]  # no context: any registry call would fail
