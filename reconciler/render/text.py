"""Terraform-like text: deletions first and loud, `+ ~ - -/+` with attribute diffs.

Signal first: a create shows what the manifest declares; the bookkeeping expansion marks
(`DesiredResource.detail`: ownership and stack tags, derived references) is left out unless
`verbose` and counted once, above the summary line. Every change of an existing resource is
shown, with its live id beside the address. Colour carries meaning (green add, yellow change,
magenta replace, red delete, blocked and security, yellow cost), never alone: the symbols stay,
and `color=False` writes no escape code.
"""

from __future__ import annotations

from reconciler.plan.model import Action, Change, NoteKind, Plan
from reconciler.render.lines import SYMBOL, change_lines, hidden_line, note_text, summary_line

VERB = {Action.CREATE: "will be created", Action.UPDATE: "will be updated in place",
        Action.REPLACE: "must be REPLACED", Action.DELETE: "will be DELETED",
        Action.ADOPT: "will be adopted (stack tags added, nothing re-created)", Action.NOOP: "is in sync"}
COLOR = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.REPLACE: "magenta", Action.DELETE: "red",
         Action.ADOPT: "bold"}
NOTE_COLOR = {NoteKind.SECURITY: "red", NoteKind.COST: "yellow"}
SIGN_COLOR = {"+": "green", "-": "red", "~": "yellow"}


def _paint(text: str, color: str | None, enabled: bool) -> str:
    if not enabled or not color:
        return text
    codes = {"red": "31", "green": "32", "yellow": "33", "magenta": "35", "bold": "1"}
    return f"\033[{codes[color]}m{text}\033[0m"


def _scheduled(change: Change) -> bool:
    """An in-sync change with something dated to say (a hand-made key's retirement): shown, never silent."""
    return any(n.kind is NoteKind.SCHEDULED for n in change.notes)


def head(change: Change) -> str:
    """`~ vpc.main (vpc-0abc, ec2.vpc) will be updated in place`: the live id beside the address when
    there is a live resource and the address does not already say it (an IAM user's id is its name),
    the kind always."""
    live = change.live
    shown = live is not None and live.id and live.id not in change.address
    where = f"{live.id}, {change.kind}" if live is not None and shown else change.kind
    return f"{SYMBOL[change.action]} {change.address} ({where}) {VERB[change.action]}"


def format_plan_text(plan: Plan, color: bool = False, verbose: bool = False) -> str:
    lines: list[str] = [f"Plan for stack {plan.stack} in {plan.account}/{plan.region}:", ""]
    # a blocked change will not happen: it says BLOCKED where it is listed, never among what will go
    deletions = [c for c in plan.pending if c.action in (Action.DELETE, Action.REPLACE) and not c.blocked]
    if deletions:
        if len(deletions) == len(plan.pending) and all(c.action is Action.DELETE for c in deletions):
            # a destroy (or a plan of deletions only): every line below is one, listing them twice hides nothing
            lines.append(_paint(f"!! all {len(deletions)} pending change(s) are DELETIONS:", "red", color))
        else:
            lines.append(_paint(f"!! {len(deletions)} resource(s) will be DELETED or REPLACED:", "red", color))
            lines.extend(_paint(f"!!   {SYMBOL[c.action]} {c.address}", "red", color) for c in deletions)
        lines.append("")
    hidden = 0
    for change in plan.changes:
        if change.action is Action.NOOP and not verbose and not _scheduled(change):
            continue
        lines.append(_paint(head(change), COLOR.get(change.action), color) + f"  # {change.reason}")
        attrs = change_lines(change, verbose)
        hidden += attrs.hidden
        lines.extend("    " + _paint(line, SIGN_COLOR.get(line[:1]), color) for line in attrs.lines)
        for note in change.notes:
            lines.append(_paint(f"    ! {note_text(note)}", NOTE_COLOR.get(note.kind), color))
        if change.blocked:
            lines.append(_paint(f"    X BLOCKED: {change.blocked}", "red", color))
    if plan.not_checked:
        lines.append("")
        lines.append("Not checked:")
        lines.extend(f"  ? {address}: {why}" for address, why in sorted(plan.not_checked.items()))
    lines.append("")
    if hidden:
        lines.append(hidden_line(hidden))
    summary = summary_line(plan)
    lines.append(_paint(summary, "red", color) if plan.blocked else summary)
    return "\n".join(lines) + "\n"
