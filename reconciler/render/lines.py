"""What every renderer says the same way: action symbols, the plan's summary line, note
labels, and attribute diffs as `+ / - / ~` lines. Pure.

Invariants: a sensitive entry prints only `(sensitive)`; nested mappings print one
dotted line per leaf; every value is cut at `MAX_VALUE` characters, so one huge
document never floods a report; the same diff always gives the same lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from reconciler.plan.model import Action, AttrChange, Note, NoteKind, Plan

MAX_VALUE = 200
# `&`: an adoption joins what exists to the stack (tags written, nothing re-created)
SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.REPLACE: "-/+", Action.DELETE: "-", Action.ADOPT: "&",
          Action.NOOP: " "}
NOTE_LABEL = {NoteKind.SECURITY: "SECURITY: ", NoteKind.COST: "cost: ", NoteKind.INFO: "",
              NoteKind.SCHEDULED: "scheduled: "}


def summary_line(plan: Plan) -> str:
    """`Plan: 1 to create, ...` or `No changes. ...`: the last line of every plan rendering."""
    s = plan.summary()
    if not plan.pending:
        return f"No changes. {s['unchanged']} resource(s) in sync."
    # adoptions are counted only when there are some: the usual line stays as it always was
    adopt = f"{s['adopt']} to adopt, " if s.get("adopt") else ""
    return (f"Plan: {s['create']} to create, {s['update']} to update, {s['replace']} to replace, "
            f"{s['delete']} to delete, {adopt}{s['unchanged']} unchanged.")


def note_text(note: Note) -> str:
    """A note with its label (`SECURITY: ...`, `cost: ...`), as the text renderers print it."""
    return NOTE_LABEL[note.kind] + note.text


def value_text(value: Any) -> str:
    if value is None:
        return "(none)"
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 3] + "..."


def flatten(path: str, value: Any) -> list[tuple[str, Any]]:
    """Nested mappings as one dotted path per leaf."""
    if isinstance(value, dict) and value:
        out: list[tuple[str, Any]] = []
        for key in sorted(value):
            out.extend(flatten(f"{path}.{key}", value[key]))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [pair for i, item in enumerate(value) for pair in flatten(f"{path}[{i}]", item)]
    return [(path, value)]


def diff_lines(diff: Iterable[AttrChange]) -> list[str]:
    """`+ path = value` (added), `- path = value` (removed), `- / +` pairs (changed)."""
    lines: list[str] = []
    for attr in diff:
        marker = "  # forces replacement" if attr.forces_replacement else ""
        if attr.sensitive:
            lines.append(f"~ {attr.path} = (sensitive){marker}")
        elif attr.before is None:
            lines.extend(f"+ {p} = {value_text(v)}{marker}" for p, v in flatten(attr.path, attr.after))
        elif attr.after is None:
            lines.extend(f"- {p} = {value_text(v)}{marker}" for p, v in flatten(attr.path, attr.before))
        else:
            lines.append(f"- {attr.path} = {value_text(attr.before)}{marker}")
            lines.append(f"+ {attr.path} = {value_text(attr.after)}{marker}")
    return lines
