"""Terraform-like text: deletions first and loud, `+ ~ - -/+` with attribute diffs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.plan.model import Action, Change, NoteKind, Plan
from reconciler.render.lines import SYMBOL, flatten, note_text, summary_line, value_text

VERB = {Action.CREATE: "will be created", Action.UPDATE: "will be updated in place",
        Action.REPLACE: "must be REPLACED", Action.DELETE: "will be DELETED",
        Action.ADOPT: "will be adopted (stack tags added, nothing re-created)", Action.NOOP: "is in sync"}
COLOR = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.REPLACE: "magenta", Action.DELETE: "red",
         Action.ADOPT: "bold"}
NOTE_COLOR = {NoteKind.SECURITY: "red", NoteKind.COST: "yellow"}


def _paint(text: str, color: str | None, enabled: bool) -> str:
    if not enabled or not color:
        return text
    codes = {"red": "31", "green": "32", "yellow": "33", "magenta": "35", "bold": "1"}
    return f"\033[{codes[color]}m{text}\033[0m"


def _scheduled(change: Change) -> bool:
    """An in-sync change with something dated to say (a hand-made key's retirement): shown, never silent."""
    return any(n.kind is NoteKind.SCHEDULED for n in change.notes)


def format_plan_text(plan: Plan, color: bool = False, verbose: bool = False) -> str:
    lines: list[str] = [f"Plan for stack {plan.stack} in {plan.account}/{plan.region}:", ""]
    deletions = [c for c in plan.pending if c.action in (Action.DELETE, Action.REPLACE)]
    if deletions:
        lines.append(_paint(f"!! {len(deletions)} resource(s) will be DELETED or REPLACED:", "red", color))
        lines.extend(_paint(f"!!   {SYMBOL[c.action]} {c.address}", "red", color) for c in deletions)
        lines.append("")
    for change in plan.changes:
        if change.action is Action.NOOP and not verbose and not _scheduled(change):
            continue
        head = f"{SYMBOL[change.action]} {change.address} ({change.kind}) {VERB[change.action]}"
        lines.append(_paint(head, COLOR.get(change.action), color) + f"  # {change.reason}")
        for attr in change.diff:
            marker = "  # forces replacement" if attr.forces_replacement else ""
            if attr.sensitive:
                lines.append(f"    ~ {attr.path}: (sensitive){marker}")
            elif change.action is Action.CREATE or attr.before is None:
                leaves = flatten(attr.path, attr.after)
                lines.extend(f"    + {path} = {value_text(value)}{marker}" for path, value in leaves)
            elif attr.after is None:
                leaves = flatten(attr.path, attr.before)
                lines.extend(f"    - {path} = {value_text(value)}{marker}" for path, value in leaves)
            else:
                lines.append(f"    ~ {attr.path}: {value_text(attr.before)} -> {value_text(attr.after)}{marker}")
        for note in change.notes:
            lines.append(_paint(f"    ! {note_text(note)}", NOTE_COLOR.get(note.kind), color))
        if change.blocked:
            lines.append(_paint(f"    X BLOCKED: {change.blocked}", "red", color))
    if plan.not_checked:
        lines.append("")
        lines.append("Not checked:")
        lines.extend(f"  ? {address}: {why}" for address, why in sorted(plan.not_checked.items()))
    lines.append("")
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def format_results_text(results: Sequence[Any]) -> str:
    lines = []
    for result in results:
        status = {"done": "ok", "failed": "FAILED", "skipped": "skipped"}[result.outcome.value]
        detail = f": {result.message}" if result.message else ""
        lines.append(f"{status:8} {result.action.value:8} {result.address}{detail}")
    done = sum(1 for r in results if r.outcome.value == "done")
    failed = sum(1 for r in results if r.outcome.value == "failed")
    skipped = sum(1 for r in results if r.outcome.value == "skipped")
    lines.append(f"Apply: {done} done, {failed} failed, {skipped} skipped.")
    return "\n".join(lines) + "\n"
