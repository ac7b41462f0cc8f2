"""What every renderer says the same way: action symbols, the plan's summary line, note
labels, and attribute diffs as `+ / - / ~` lines. Pure.

Invariants: a sensitive entry prints only `(sensitive)`; nested mappings print one
dotted line per leaf, except that a list of mappings (lifecycle rules, policy
statements) prints one compact line per item and a changed document prints a
structured diff (items matched by Sid / rulePriority / position, only what differs);
every scalar value is cut at `MAX_VALUE` characters, so one huge document never floods
a report; the same diff always gives the same lines. On a create, what expansion marked
as bookkeeping (`DesiredResource.detail`) is left out unless `verbose`, and counted;
nothing that changes on an existing resource is ever left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.plan.model import Action, AttrChange, Change, Note, NoteKind, Plan


@dataclass(frozen=True)
class Style:
    """How the terminal wants text: ANSI colours, and every address rather than only the pending ones."""

    color: bool = False
    verbose: bool = False

MAX_VALUE = 200
MAX_ITEM = 320  # one item of a list of mappings on one line up to this; longer ones print per leaf
# `&`: an adoption joins what exists to the stack (tags written, nothing re-created)
SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.REPLACE: "-/+", Action.DELETE: "-", Action.ADOPT: "&",
          Action.NOOP: " "}
NOTE_LABEL = {NoteKind.SECURITY: "SECURITY: ", NoteKind.COST: "cost: ", NoteKind.INFO: "",
              NoteKind.SCHEDULED: "scheduled: "}


def money(monthly: float) -> str:
    """`~$142/month more`, `~$45/month less`, `no change to the monthly bill`."""
    if round(monthly) == 0:
        return "~$0/month change"
    return f"~${abs(monthly):,.0f}/month {'more' if monthly > 0 else 'less'}"


def summary_line(plan: Plan) -> str:
    """`Plan: 2 to add, 1 to change, 1 to replace, 0 to destroy, 3 to adopt, 1 blocked; ~$142/month more
    (prices as of ...).` or `No changes. ...`: the last line of every plan rendering.

    The four Terraform counts are always there; `to adopt` and `blocked` only when not 0 (the
    usual line stays short); a blocked change counts under `blocked` only. The cost delta and the
    price table's date appear once, here, when anything priced changes.
    """
    s = plan.summary()
    if not plan.pending and not s.get("blocked"):
        return f"No changes. {s['unchanged']} resource(s) in sync."
    parts = [f"{s['create']} to add", f"{s['update']} to change", f"{s['replace']} to replace",
             f"{s['delete']} to destroy"]
    if s.get("adopt"):
        parts.append(f"{s['adopt']} to adopt")
    if s.get("blocked"):
        parts.append(f"{s['blocked']} blocked")
    line = "Plan: " + ", ".join(parts)
    priced = plan.monthly_cost()
    if priced is not None:
        total, as_of = priced
        line += f"; {money(total)}" + (f" (prices as of {as_of})" if as_of else "")
    return line + "."


def note_text(note: Note) -> str:
    """A note with its label (`SECURITY: ...`, `cost: ...`), as the text renderers print it."""
    return NOTE_LABEL[note.kind] + note.text


def value_text(value: Any) -> str:
    if value is None:
        return "(none)"
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 3] + "..."


def compact(value: Any) -> str:
    """One item of a list of mappings as one line of JSON (never cut: callers check its length)."""
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


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


def _mappings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def item_key(item: Mapping[str, Any]) -> str:
    """What identifies one item of a list of mappings across two versions: a statement's Sid, a
    lifecycle rule's priority, else its whole content (an item without a name is the same item
    only if nothing in it changed: matching by position would show an insertion as a change)."""
    if item.get("Sid"):
        return f"Sid {item['Sid']}"
    if "rulePriority" in item:
        return f"priority {item['rulePriority']}"
    return compact(item)


def _label(item: Mapping[str, Any], index: int) -> str:
    return str(item["Sid"]) if item.get("Sid") else str(index)


@dataclass
class Lines:
    """Diff lines being built (each starts with its sign: `+`, `-` or `~`) and how many bookkeeping
    leaves were left out."""

    lines: list[str] = field(default_factory=list)
    hidden: int = 0


def _leaves(value: Any) -> int:
    return len(flatten("", value))


def _hidden(path: str, value: Any, detail: frozenset[str]) -> bool:
    """Whether everything at `path` is bookkeeping."""
    if path in detail:
        return True
    return isinstance(value, Mapping) and bool(value) and all(
        _hidden(f"{path}.{k}", v, detail) for k, v in value.items())


def _whole(out: Lines, sign: str, path: str, value: Any, detail: frozenset[str] = frozenset()) -> None:
    """A value that appears or goes as a whole: one line per leaf, one per item of a list of
    mappings; bookkeeping (`detail`) left out and counted; a mapping whose entries are all
    mappings of bookkeeping (a table's subnets with their copied az/cidr) as the list of its keys."""
    if detail and _hidden(path, value, detail):
        out.hidden += _leaves(value)
        keyed = isinstance(value, Mapping) and value and all(isinstance(v, Mapping) and v for v in value.values())
        if keyed and path not in detail:  # the keys are the signal, their values the bookkeeping
            out.lines.append(f"{sign} {path} = {value_text(sorted(value))}")
        return
    if bare(value):
        out.lines.append(f"{sign} {path}")
        return
    if isinstance(value, Mapping) and value:
        if path.endswith("]") and len(compact(value)) <= MAX_ITEM:  # one statement or rule: one line
            out.lines.append(f"{sign} {path} = {compact(value)}")
            return
        for key in sorted(value):
            _whole(out, sign, f"{path}.{key}", value[key], detail)
        return
    if _mappings(value):
        for index, item in enumerate(value):
            _whole(out, sign, f"{path}[{_label(item, index)}]", item, detail)
        return
    out.lines.append(f"{sign} {path} = {value_text(value)}")


def _document(out: Lines, path: str, before: Any, after: Any) -> None:
    """A structured diff of two versions of a document: only what differs, item by item."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after)):
            child = f"{path}.{key}"
            if key not in before:
                _whole(out, "+", child, after[key])
            elif key not in after:
                _whole(out, "-", child, before[key])
            else:
                _document(out, child, before[key], after[key])
        return
    if _mappings(before) and _mappings(after):
        old = {item_key(item): (i, item) for i, item in enumerate(before)}
        new = {item_key(item): (i, item) for i, item in enumerate(after)}
        for key in sorted(old.keys() - new.keys(), key=lambda k: old[k][0]):
            _whole(out, "-", f"{path}[{_label(old[key][1], old[key][0])}]", old[key][1])
        for key in sorted(new, key=lambda k: new[k][0]):
            index, item = new[key]
            if key not in old:
                _whole(out, "+", f"{path}[{_label(item, index)}]", item)
            else:
                _document(out, f"{path}[{_label(item, index)}]", old[key][1], item)
        return
    if before != after:
        out.lines.append(f"~ {path}: {value_text(before)} -> {value_text(after)}")


def _paired(diff: Iterable[AttrChange]) -> list[AttrChange]:
    """A removed and an added entry at the same path (a policy statement whose body changed, as
    plan.diff reports it) as one change, so it prints as a structured diff."""
    entries = list(diff)
    gone = {a.path: a for a in entries if a.after is None and a.before is not None and not a.sensitive}
    came = {a.path: a for a in entries if a.before is None and a.after is not None and not a.sensitive}
    both = gone.keys() & came.keys()
    out: list[AttrChange] = []
    for attr in entries:
        if attr.path in both:
            if attr.after is None:
                continue
            old = gone[attr.path]
            attr = AttrChange(attr.path, old.before, attr.after, attr.forces_replacement or old.forces_replacement)
        out.append(attr)
    return out


def attr_lines(diff: Iterable[AttrChange], detail: frozenset[str] = frozenset()) -> Lines:
    """Every attribute change as signed lines; `detail` (a create's bookkeeping) left out and counted."""
    out = Lines()
    for attr in _paired(diff):
        marker = "  # forces replacement" if attr.forces_replacement else ""
        start = len(out.lines)
        if attr.sensitive:
            out.lines.append(f"~ {attr.path}: (sensitive)")
        elif attr.before is None:
            _whole(out, "+", attr.path, attr.after, detail)
        elif attr.after is None:
            _whole(out, "-", attr.path, attr.before)
        elif (isinstance(attr.before, Mapping) and isinstance(attr.after, Mapping)) or (
                _mappings(attr.before) and _mappings(attr.after)):
            _document(out, attr.path, attr.before, attr.after)  # documents: only what differs
        else:
            out.lines.append(f"~ {attr.path}: {value_text(attr.before)} -> {value_text(attr.after)}")
        if marker:
            out.lines[start:] = [line + marker for line in out.lines[start:]]
    return out


def change_lines(change: Change, verbose: bool = False) -> Lines:
    """The attribute lines of one change: on a create, bookkeeping is left out unless `verbose`
    (an update, replacement or adoption shows every difference: a change is never hidden)."""
    detail: frozenset[str] = frozenset()
    if change.action is Action.CREATE and change.desired is not None and not verbose:
        detail = change.desired.detail
    return attr_lines(change.diff, detail)


def hidden_line(hidden: int) -> str:
    """Said once per plan, so a reviewer knows that more is there and how to see it."""
    return f"({hidden} bookkeeping attribute(s) hidden: ownership and stack tags, derived references; -v shows them)"


def bare(value: Any) -> bool:
    """An entry whose whole content is empty text (a security-group rule without a description):
    the entry's key is all it says, so it prints as `- ingress.tcp 22 from 0.0.0.0/0`, never as a
    `.description = ""` that reads like a changed description."""
    return isinstance(value, Mapping) and bool(value) and all(v in ("", None) for v in value.values())


def _entry(sign: str, path: str, value: Any, marker: str) -> list[str]:
    if bare(value):
        return [f"{sign} {path}{marker}"]
    return [f"{sign} {p} = {value_text(v)}{marker}" for p, v in flatten(path, value)]


def diff_lines(diff: Iterable[AttrChange]) -> list[str]:
    """`+ path = value` (added), `- path = value` (removed), `- / +` pairs (changed)."""
    lines: list[str] = []
    for attr in diff:
        marker = "  # forces replacement" if attr.forces_replacement else ""
        if attr.sensitive:
            lines.append(f"~ {attr.path} = (sensitive){marker}")
        elif attr.before is None:
            lines.extend(_entry("+", attr.path, attr.after, marker))
        elif attr.after is None:
            lines.extend(_entry("-", attr.path, attr.before, marker))
        else:
            lines.append(f"- {attr.path} = {value_text(attr.before)}{marker}")
            lines.append(f"+ {attr.path} = {value_text(attr.after)}{marker}")
    return lines
