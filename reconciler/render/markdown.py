"""Markdown plans for pull-request comments. Pure: Plan -> str.

Layout, loudest first: a title and summary line; call-outs for blocked changes,
deletions and replacements, security-widening changes, cost-bearing changes and
anything not checked; for large plans a count per kind and action; a table of
every pending change (action, address, reason; deletions and replacements first,
as the plan orders them); then each resource's attribute diff in a collapsible
`<details>` section; a footer with the digests.

Invariants: the result is never longer than `limit` characters (GitHub rejects a
comment over 65,536): the call-outs keep at most `MAX_LIST` items each, the table
keeps every row it can and then says how many it left out, by action, and the
per-resource diffs come in plan order until the budget is spent, followed by a
line that says how many were left out. The same plan always gives the same text.
No secret can appear: plans never hold one, and sensitive entries print masked.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from reconciler.plan.model import Action, Change, NoteKind, Plan
from reconciler.render.lines import SYMBOL, change_lines, flatten, hidden_line, note_text, summary_line, value_text

GITHUB_LIMIT = 65_536
# Room left under GitHub's limit for whatever a CI step puts around the comment.
DEFAULT_LIMIT = 60_000
MAX_LIST = 30
MAX_DIFF_LINES = 60
BY_KIND_FROM = 20  # plans with more pending changes than this open with counts per kind
ACTION_LABEL = {Action.DELETE: "**delete**", Action.REPLACE: "**replace**", Action.UPDATE: "update",
                Action.CREATE: "create", Action.ADOPT: "adopt", Action.NOOP: "no-op"}


class Budget:
    """Appends parts while the total stays within `limit` characters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def fits(self, text: str, reserve: int = 0) -> bool:
        return self.size + len(text) + reserve <= self.limit

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def add_while_fits(self, parts: Iterable[str], reserve: int = 0) -> int:
        """Adds `parts` in order until one does not fit with `reserve` to spare; how many it added."""
        added = 0
        for part in parts:
            if not self.fits(part, reserve):
                break
            self.add(part)
            added += 1
        return added

    def text(self) -> str:
        return "".join(self.parts)


def cell(text: str) -> str:
    """Safe inside a table cell: no pipes, no line breaks, no raw HTML."""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def clip(text: str, size: int = 300) -> str:
    return text if len(text) <= size else text[:size - 3] + "..."


def code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def fenced(lines: Sequence[str], language: str = "diff") -> str:
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n" + "\n".join(lines) + f"\n{fence}\n"


def callout(kind: str, title: str, items: Sequence[str]) -> str:
    """A GitHub alert block with at most MAX_LIST items."""
    lines = [f"> [!{kind}]", f"> **{title}**"]
    lines.extend(f"> - {clip(item)}" for item in items[:MAX_LIST])
    if len(items) > MAX_LIST:
        lines.append(f"> - ... and {len(items) - MAX_LIST} more")
    return "\n".join(lines) + "\n\n"


def count_by_action(changes: Iterable[Change]) -> str:
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.action.value] = counts.get(change.action.value, 0) + 1
    return ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))


def _callouts(plan: Plan) -> str:
    pending = plan.pending
    out = []
    blocked = [c for c in plan.changes if c.blocked]
    if blocked:
        out.append(callout("CAUTION", f"{len(blocked)} change(s) are blocked; apply refuses this plan:",
                           [f"{code(c.address)}: {cell(c.blocked or '')}" for c in blocked]))
    # a blocked change will not happen: it is in the CAUTION above, not among what will go
    destructive = [c for c in pending if c.action in (Action.DELETE, Action.REPLACE) and not c.blocked]
    if destructive:
        out.append(callout("WARNING", f"{len(destructive)} resource(s) will be DELETED or REPLACED:",
                           [f"{code(SYMBOL[c.action])} {code(c.address)} ({cell(c.kind)}): {cell(c.reason)}"
                            for c in destructive]))
    security = [(c, n) for c in pending for n in c.notes if n.kind is NoteKind.SECURITY]
    if security:
        out.append(callout("WARNING", f"{len(security)} security-widening change(s):",
                           [f"{code(c.address)}: {cell(n.text)}" for c, n in security]))
    cost = [(c, n) for c in pending for n in c.notes if n.kind is NoteKind.COST]
    if cost:
        out.append(callout("NOTE", f"{len(cost)} cost-bearing change(s):",
                           [f"{code(c.address)}: {cell(note_text(n))}" for c, n in cost]))
    # dated steps of later applies (a hand-made key's retirement), even where nothing changes today
    later = [(c, n) for c in plan.changes for n in c.notes if n.kind is NoteKind.SCHEDULED]
    if later:
        out.append(callout("NOTE", f"{len(later)} step(s) scheduled for later applies:",
                           [f"{code(c.address)}: {cell(n.text)}" for c, n in later]))
    if plan.not_checked:
        out.append(callout("IMPORTANT", f"{len(plan.not_checked)} address(es) not checked; "
                           "the plan may be incomplete there:",
                           [f"{code(a)}: {cell(why)}" for a, why in sorted(plan.not_checked.items())]))
    return "".join(out)


def by_kind_table(changes: Sequence[Change]) -> str:
    """Counts per kind and action: the overview of a large plan."""
    # an adopt column only when something is adopted: the usual table stays as it was
    adopting = any(c.action is Action.ADOPT for c in changes)
    actions = (Action.DELETE, Action.REPLACE, Action.UPDATE, *((Action.ADOPT,) if adopting else ()), Action.CREATE)
    counts: dict[str, dict[Action, int]] = {}
    for change in changes:
        row = counts.setdefault(change.kind, dict.fromkeys(actions, 0))
        row[change.action] += 1
    lines = ["| Kind | " + " | ".join(a.value for a in actions) + " |", "|---|" + "---:|" * len(actions)]
    for kind, row in sorted(counts.items())[:MAX_LIST * 2]:
        lines.append(f"| {cell(kind)} | " + " | ".join(str(row[a]) for a in actions) + " |")
    return "\n".join(lines) + "\n\n"


def _flags(change: Change) -> str:
    flags = []
    if change.blocked:
        flags.append("**blocked**")
    kinds = {n.kind for n in change.notes}
    if NoteKind.SECURITY in kinds:
        flags.append("security")
    if NoteKind.COST in kinds:
        flags.append("cost")
    return f" ({', '.join(flags)})" if flags else ""


def _row(change: Change) -> str:
    # the live id beside the address, as the text plan has it
    have = change.live
    live = f" ({code(have.id)})" if have is not None and have.id and have.id not in change.address else ""
    return f"| {ACTION_LABEL[change.action]} | {code(change.address)}{live} | {cell(change.reason)}{_flags(change)} |\n"


def details_block(title: str, lines: Sequence[str]) -> str:
    """A collapsible section holding a diff; long diffs keep their first MAX_DIFF_LINES lines."""
    shown = list(lines[:MAX_DIFF_LINES])
    if len(lines) > MAX_DIFF_LINES:
        shown.append(f"# ... {len(lines) - MAX_DIFF_LINES} more line(s)")
    return f"<details><summary>{title}</summary>\n\n{fenced(shown)}\n</details>\n"


def _details(change: Change, verbose: bool = False) -> tuple[str, int]:
    """The collapsible diff of one change, and how many bookkeeping attributes it left out."""
    attrs = change_lines(change, verbose)
    lines = attrs.lines
    if change.action is Action.DELETE and change.live is not None:
        # what goes away, so a reviewer can tell what this orphan is
        lines = [f"- id = {value_text(change.live.id)}",
                 *(f"- {p} = {value_text(v)}" for k in sorted(change.live.attrs)
                   for p, v in flatten(k, change.live.attrs[k]))]
    lines.extend(f"! {note_text(note)}" for note in change.notes)
    if change.blocked:
        lines.append(f"X BLOCKED: {change.blocked}")
    if not lines:
        lines = [f"# {change.reason}"]
    title = (f"<code>{html.escape(SYMBOL[change.action])} {html.escape(change.address)}</code> "
             f"{html.escape(change.kind)}: {html.escape(change.reason)}")
    return details_block(title, lines), attrs.hidden


def footer(manifest_sha256: str, live_sha256: str, hint: str) -> str:
    return (f"\n<sub>manifest sha256 {code(manifest_sha256[:16])} · live sha256 {code(live_sha256[:16])}"
            f" · {hint}</sub>\n")


def format_plan_markdown(plan: Plan, limit: int = DEFAULT_LIMIT, verbose: bool = False) -> str:
    """The pull-request comment for `plan`, at most `limit` characters; a create's bookkeeping
    (ownership and stack tags, derived references) only with `verbose`, as in the text plan."""
    out = Budget(limit)
    out.add(f"### reconcile plan: stack {code(plan.stack)} in {code(plan.account)} / {code(plan.region)}\n\n")
    out.add(f"**{summary_line(plan)}**\n\n")
    out.add(_callouts(plan))
    end = footer(plan.manifest_sha256, plan.live_sha256,
                 "apply exactly this plan with `reconcile apply MANIFEST --plan PLAN.json`")
    pending = plan.pending
    reserve = len(end) + 300  # the footer and one "left out" line always fit
    if len(pending) > BY_KIND_FROM:
        out.add(by_kind_table(pending))
    if pending:
        out.add("| Action | Address | Reason |\n|---|---|---|\n")
        listed = out.add_while_fits((_row(change) for change in pending), reserve)
        if listed < len(pending):
            rest = pending[listed:]
            out.add(f"| ... | *{len(rest)} more change(s) not listed ({count_by_action(rest)})* "
                    "| see the plan file or `reconcile plan` |\n")
        out.add("\n")
        details = [_details(c, verbose) for c in pending]
        blocks = [block for block, _ in details]
        hidden = sum(n for _, n in details)
        heading = "#### Attribute changes\n\n"
        shown = 0
        if blocks and out.fits(heading + blocks[0], reserve):
            out.add(heading)
            shown = out.add_while_fits(blocks, reserve)
            if hidden and out.fits(hidden_line(hidden), reserve):
                out.add(f"\n<sub>{hidden_line(hidden)}</sub>\n")
        if shown < len(blocks):
            out.add(f"\n*The attribute diffs of {len(blocks) - shown} resource(s) are left out to stay under "
                    "GitHub's comment limit; the plan file and `reconcile plan` show every one.*\n")
    out.add(end)
    return out.text()[:limit]
