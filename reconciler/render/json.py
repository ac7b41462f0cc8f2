"""The plan file (SPEC.md §5, `schemas/plan.schema.json`): stable, deterministic JSON.

format_version 2: notes are objects `{"kind": "security" | "cost" | "info", "text": ...}`
(they were strings, their category guessed from the wording), and the image kind is
`ecr.image` (it was `image`). Additive within version 2 (a reader of older version-2
files never meets them, a strict reader of new ones needs the new values only): the
action `adopt` (an existing resource taken over with --adopt; it was an `update` with
reason "adopt: ..."), the summary count `adopt`, and the note kind `scheduled` (a dated
step of a later apply, as a hand-made key's deactivation), the summary count `blocked` (a
blocked change counts there and no longer under its action), a change's `detail` (the desired
spec's bookkeeping paths, `DesiredResource.detail`: shown here always, in the text plan only
with -v), a cost note's `monthly_usd` and `prices_as_of`, and the keys `destroy`, `targets`
and `replace` (how a narrowed plan was asked for; absent from a full plan).
"""

from __future__ import annotations

import json
from typing import Any

from reconciler import __version__
from reconciler.plan.model import Change, Plan

FORMAT_VERSION = 2


def change_to_json(change: Change) -> dict[str, Any]:
    out: dict[str, Any] = {
        "address": change.address,
        "kind": change.kind,
        "action": change.action.value,
        "reason": change.reason,
        "diff": [d.to_json() for d in change.diff],
        "depends_on": list(change.depends_on),
    }
    if change.notes:
        out["notes"] = [note.to_json() for note in change.notes]
    if change.blocked:
        out["blocked"] = change.blocked
    if change.live is not None:
        out["id"] = change.live.id
    if change.desired is not None and change.desired.detail:
        out["detail"] = sorted(change.desired.detail)
    return out


def plan_to_json(plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        # the tool that made the plan: `apply --plan` refuses a plan made by another version
        "reconciler_version": __version__,
        "stack": plan.stack,
        "region": plan.region,
        "account": plan.account,
        "manifest_sha256": plan.manifest_sha256,
        "live_sha256": plan.live_sha256,
        "summary": plan.summary(),
        "changes": [change_to_json(c) for c in plan.changes],
        "fingerprints": dict(sorted(plan.fingerprints.items())),
        "not_checked": dict(sorted(plan.not_checked.items())),
    }
    # how the plan was asked for, only when narrowed: a full plan's file keeps its bytes
    if plan.destroy:
        out["destroy"] = True
    if plan.targets:
        out["targets"] = list(plan.targets)
    if plan.replace:
        out["replace"] = list(plan.replace)
    return out


def format_plan_json(plan: Plan) -> str:
    """Deterministic: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(plan_to_json(plan), indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
