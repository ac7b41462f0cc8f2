"""Fleet reports (the JSON document of plan/fleet.py) as text, markdown and JSON. Pure: Mapping -> str.

A fleet report is a document, not a domain object: it is what `--report FILE` wrote and
`reconcile report merge` read back, possibly from another machine. Each stack's own report in
it is rebuilt into the domain object its renderer takes (`drift_from_json`, `plan_from_json`),
so a stack's details read exactly as that stack's own `drift`/`plan --format markdown` would.

Invariants:
- every format lists every stack (the markdown table keeps every row that fits under `limit`,
  then says how many it left out), loudest first: text puts errors first, then drift or
  changes, then the rest; markdown (a job summary, read for the drift) puts drift or changes
  first, then errors, then the rest; within a group the report's own order (account,
  region, stack);
- the same report always gives the same text: no clock, JSON with sorted keys;
- the markdown is never longer than `limit` (GitHub's job summary and comment limits);
- a per-stack report that cannot be rebuilt (another tool's, or damaged) never fails the
  rendering: its stack is still listed, with its status and exit code, and no detail;
- no secret can appear: per-stack reports never hold one (sensitive diffs are masked there),
  and nothing here adds any. The CLI still runs the output through secret.redact.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.plan.drift import DriftEntry, DriftReport, DriftStatus
from reconciler.plan.fleet import STATUSES, StackOutcome
from reconciler.plan.model import Action, AttrChange, Change, HygieneFinding, LiveResource, Note, NoteKind, Plan
from reconciler.render.drift import format_drift_markdown, format_drift_text
from reconciler.render.drift import summary_line as drift_summary_line
from reconciler.render.lines import Style, summary_line
from reconciler.render.markdown import DEFAULT_LIMIT, MAX_LIST, Budget, cell, clip, code, fenced, format_plan_markdown
from reconciler.render.text import format_plan_text
from reconciler.secret import MASK

# statuses whose stacks changed or would change something: shown right after (text) or before
# (markdown) the errors
LOUD = frozenset({"drift", "changes", "applied"})
LABEL = {"in_sync": "in sync", "no_changes": "no changes"}
COLOR = {"error": "31", "drift": "33", "changes": "33", "applied": "32"}
MAX_DETAIL = 160  # one table cell: the stack's summary line, or the first line of its error
MAX_ERROR = 500  # an error in the markdown's error list
STACK_SHARE = (2_500, 20_000)  # a stack's own markdown gets its share of what is left, within these


def label(status: str) -> str:
    return LABEL.get(status, status)


def _stacks(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(report.get("stacks") or [])


def _ordered(stacks: Sequence[Mapping[str, Any]], errors_first: bool) -> list[Mapping[str, Any]]:
    def group(stack: Mapping[str, Any]) -> int:
        status = str(stack.get("status"))
        if status == "error":
            return 0 if errors_first else 1
        if status in LOUD:
            return 1 if errors_first else 0
        return 2

    return sorted(stacks, key=group)  # stable: the report's order within a group


def summary_text(report: Mapping[str, Any]) -> str:
    """`3 stacks: 1 drift, 1 in sync, 1 error` (every status the command has, zeros too; loud first),
    and for a shard `(shard 0/4)`."""
    summary = report.get("summary") or {}
    known = STATUSES.get(str(report.get("command")), {})
    order = sorted(known, key=lambda s: (s == "error", known[s] == 0, s))
    order += sorted(s for s in summary if s != "stacks" and s not in known)
    parts = ", ".join(f"{summary.get(s, 0)} {label(s)}" for s in order)
    shard = f" (shard {report['shard']})" if report.get("shard") else ""
    return f"{summary.get('stacks', len(_stacks(report)))} stacks{shard}: {parts}"


def _heading(report: Mapping[str, Any]) -> str:
    """`reconcile drift: 1 stack failed, drift found (exit 1)`: the command and what its exit code means."""
    command, code_ = str(report.get("command")), int(report.get("exit_code", 0))
    statuses = [str(s.get("status")) for s in _stacks(report)]
    results = []
    if "error" in statuses:
        failed = statuses.count("error")
        results.append(f"{failed} stack{'' if failed == 1 else 's'} failed")
    if any(s in LOUD for s in statuses):
        results.append({"drift": "drift found", "plan": "changes pending", "apply": "changes applied"}.get(
            command, "changes"))
    if not results:
        results.append({"drift": "no drift", "plan": "no changes", "apply": "nothing to change"}.get(command, "ok"))
    return f"reconcile {command}: {', '.join(results)} (exit {code_})"


# -- per-stack reports, rebuilt from their JSON -------------------------------------

def _attr(entry: Mapping[str, Any]) -> AttrChange:
    # the JSON masks a sensitive entry on both sides (AttrChange.to_json); nothing else is ever so
    sensitive = entry["before"] == MASK and entry["after"] == MASK
    return AttrChange(str(entry["path"]), entry["before"], entry["after"], bool(entry.get("forces_replacement")),
                      sensitive)


def drift_from_json(doc: Mapping[str, Any]) -> DriftReport:
    """The DriftReport a drift report's JSON (render/drift.py `drift_to_json`) was made from."""
    entries = tuple(DriftEntry(str(r["address"]), str(r["kind"]), DriftStatus(r["status"]), str(r["detail"]),
                               Action(r["action"]), r.get("id"), tuple(_attr(d) for d in r["diff"]),
                               tuple(r["unmanaged"])) for r in doc["resources"])
    findings = tuple(HygieneFinding(str(f["address"]), str(f["rule"]), str(f["message"]), str(f["reference"]),
                                    f.get("key")) for f in doc["hygiene"])
    return DriftReport(str(doc["stack"]), str(doc["region"]), str(doc["account"]), str(doc["manifest_sha256"]),
                       str(doc["live_sha256"]), entries, findings, tuple(doc["notes"]))


_GONE = object()  # what is left of a value that was all bookkeeping (None is a value)


def _without(path: str, value: Any, detail: frozenset[str]) -> Any:
    """`value` at `path` without its bookkeeping leaves (`detail`); _GONE when nothing else is left."""
    if path in detail:
        return _GONE
    if isinstance(value, Mapping) and value:
        kept = {k: v for k, v in ((k, _without(f"{path}.{k}", v, detail)) for k, v in value.items()) if v is not _GONE}
        return kept or _GONE
    return value


def _change(doc: Mapping[str, Any]) -> Change:
    action = Action(doc["action"])
    diff = tuple(_attr(d) for d in doc["diff"])
    detail = frozenset(doc.get("detail", ()))
    if action is Action.CREATE and detail:
        # the plan file names a create's bookkeeping paths instead of carrying its desired resource:
        # left out here as the plan's own renderers leave them out without -v
        diff = tuple(a if a.sensitive else AttrChange(a.path, a.before, kept, a.forces_replacement)
                     for a in diff for kept in [_without(a.path, a.after, detail)] if kept is not _GONE)
    # the plan file has a live resource's id, not its attributes: a deletion lists the id alone
    live = LiveResource(str(doc["address"]), str(doc["kind"]), str(doc["id"]), {}) if "id" in doc else None
    notes = tuple(Note(NoteKind(n["kind"]), str(n["text"]), n.get("monthly_usd"), n.get("prices_as_of"))
                  for n in doc.get("notes", ()))
    return Change(str(doc["address"]), str(doc["kind"]), action, str(doc["reason"]), diff,
                  tuple(doc.get("depends_on", ())), None, live, notes, doc.get("blocked"))


def plan_from_json(doc: Mapping[str, Any]) -> Plan:
    """The Plan a plan file (render/json.py `plan_to_json`) describes, as far as renderers need it."""
    return Plan(str(doc["stack"]), str(doc["region"]), str(doc["account"]), str(doc["manifest_sha256"]),
                str(doc["live_sha256"]), tuple(_change(c) for c in doc["changes"]),
                dict(doc.get("fingerprints", {})), dict(doc.get("not_checked", {})), bool(doc.get("destroy")),
                tuple(doc.get("targets", ())), tuple(doc.get("replace", ())))


def _rebuilt(stack: Mapping[str, Any]) -> DriftReport | Plan | None:
    """The stack's own report as its domain object; None when there is none or it is not one of ours."""
    doc = stack.get("report")
    if not isinstance(doc, Mapping):
        return None
    try:
        if "resources" in doc and "drift" in doc:
            return drift_from_json(doc)
        if "changes" in doc and "fingerprints" in doc:
            return plan_from_json(doc)
        if isinstance(doc.get("plan"), Mapping) and "results" in doc:  # an apply's: its plan and what it did
            return plan_from_json(doc["plan"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # see the module invariants: listed, without detail
    return None


def applied_line(stack: Mapping[str, Any]) -> str | None:
    """`Apply complete: 5 done, 0 failed, 0 skipped.` (as apply itself ends) from an apply's report
    (`{"plan": ..., "results": [{"address", "action", "outcome", "seconds"}]}`); None when it applied nothing."""
    doc = stack.get("report")
    results = doc.get("results") if isinstance(doc, Mapping) else None
    if not isinstance(results, list) or not results:
        return None
    outcomes = [str(r.get("outcome")) if isinstance(r, Mapping) else "" for r in results]
    done, failed = outcomes.count("done"), outcomes.count("failed")
    skipped = len(outcomes) - done - failed
    state = "complete" if not failed and not skipped else "incomplete"
    return f"Apply {state}: {done} done, {failed} failed, {skipped} skipped."


def _own_summary(stack: Mapping[str, Any], rebuilt: DriftReport | Plan | None) -> str:
    applied = applied_line(stack)
    if applied:
        return applied
    if isinstance(rebuilt, DriftReport):
        return drift_summary_line(rebuilt)
    if isinstance(rebuilt, Plan):
        return summary_line(rebuilt)
    doc = stack.get("report")
    summary = doc.get("summary") if isinstance(doc, Mapping) else None
    if isinstance(summary, str):
        return summary
    if isinstance(summary, Mapping):
        return ", ".join(f"{summary[k]} {k}" for k in sorted(summary) if summary[k])
    return ""


def detail(stack: Mapping[str, Any]) -> str:
    """One line: the first line of the stack's error, else its own summary line."""
    error = stack.get("error")
    if error:
        text = str(error).strip().splitlines()[0] if str(error).strip() else "error"
    else:
        text = _own_summary(stack, _rebuilt(stack))
    return clip(" ".join(text.split()), MAX_DETAIL)


def _seconds(stack: Mapping[str, Any]) -> str:
    try:
        return f"{float(stack.get('seconds', 0.0)):.1f}"
    except (TypeError, ValueError):
        return "?"


# -- text ------------------------------------------------------------------------------

def stack_header(outcome: StackOutcome) -> str:
    """The line above a stack's own output in a fleet run's text (the runner prints it as each stack ends)."""
    identity = outcome.identity
    return (f"=== {identity.stack} (account {identity.account or '(from the credentials)'}, {identity.region}, "
            f"{identity.manifest}): {outcome.status}, {outcome.seconds:.1f} s ===\n")


COLUMNS = ("STATUS", "STACK", "ACCOUNT", "REGION", "EXIT", "SECONDS", "DETAIL")


def format_fleet_text(report: Mapping[str, Any], style: Style) -> str:
    """The table of stacks (errors, then drift or changes, then the rest) and the summary line;
    with `style.verbose`, then each loud or failed stack's own text report in full."""
    stacks = _ordered(_stacks(report), errors_first=True)
    # the status as the JSON spells it: one word, so the table splits on blanks (grep, awk)
    rows = [(str(s.get("status")), str(s.get("stack", "")), str(s.get("account") or "-"),
             str(s.get("region", "")), str(s.get("exit_code", "")), _seconds(s), detail(s)) for s in stacks]
    lines: list[str] = []
    if rows:
        widths = [max(len(col), *(len(row[i]) for row in rows)) for i, col in enumerate(COLUMNS[:-1])]

        def line(row: Sequence[str], status: str | None = None) -> str:
            cells = [f"{v:>{w}}" if i in (4, 5) else f"{v:<{w}}"  # numbers to the right
                     for i, (v, w) in enumerate(zip(row[:-1], widths, strict=True))]
            if status in COLOR and style.color:
                cells[0] = f"\033[{COLOR[status]}m{cells[0]}\033[0m"
            return "  ".join([*cells, row[-1]]).rstrip()

        lines.append(line(COLUMNS))
        lines.extend(line(row, str(s.get("status"))) for row, s in zip(rows, stacks, strict=True))
        lines.append("")
    if style.verbose:
        lines.extend(_verbose(stacks, style))
    lines.append(f"{summary_text(report)}.")
    return "\n".join(lines) + "\n"


def _verbose(stacks: Sequence[Mapping[str, Any]], style: Style) -> list[str]:
    out: list[str] = []
    for stack in stacks:
        status = str(stack.get("status"))
        if status not in LOUD and status != "error":
            continue
        out.append(f"== {stack.get('stack')} ({stack.get('account') or '-'}/{stack.get('region')}, "
                   f"{stack.get('manifest')}): {label(status)} ==")
        rebuilt = _rebuilt(stack)
        if stack.get("error"):
            out.append(f"error: {stack['error']}")
        elif isinstance(rebuilt, DriftReport):
            out.append(format_drift_text(rebuilt, color=style.color, verbose=False).rstrip("\n"))
        elif isinstance(rebuilt, Plan):
            out.append(format_plan_text(rebuilt, color=style.color, verbose=False).rstrip("\n"))
            out.extend(line for line in [applied_line(stack)] if line)
        out.append("")
    return out


# -- markdown --------------------------------------------------------------------------

def _where(stack: Mapping[str, Any]) -> str:
    return f"{code(str(stack.get('account') or '-'))} / {code(str(stack.get('region', '')))}"


def _row(stack: Mapping[str, Any]) -> str:
    status = label(str(stack.get("status")))
    shown = f"**{status}**" if stack.get("status") in LOUD or stack.get("status") == "error" else status
    return (f"| {shown} | {code(str(stack.get('stack', '')))} | {code(str(stack.get('account') or '-'))} | "
            f"{code(str(stack.get('region', '')))} | {stack.get('exit_code', '')} | {_seconds(stack)} | "
            f"{cell(detail(stack))} |\n")


def _errors(stacks: Sequence[Mapping[str, Any]]) -> str:
    failed = [s for s in stacks if s.get("status") == "error"]
    if not failed:
        return ""
    lines = [f"\n#### Errors ({len(failed)})\n"]
    lines += [f"- {code(str(s.get('stack', '')))} ({_where(s)}, {code(str(s.get('manifest', '')))}): "
              f"{cell(clip(str(s.get('error') or 'error'), MAX_ERROR))}" for s in failed[:MAX_LIST]]
    if len(failed) > MAX_LIST:
        lines.append(f"- ... and {len(failed) - MAX_LIST} more: see the JSON report")
    return "\n".join(lines) + "\n"


def _own_markdown(stack: Mapping[str, Any], limit: int) -> str:
    rebuilt = _rebuilt(stack)
    if isinstance(rebuilt, DriftReport):
        return format_drift_markdown(rebuilt, limit=limit)
    if isinstance(rebuilt, Plan):
        applied = applied_line(stack)
        head = f"**{applied}**\n\n" if applied else ""
        return head + format_plan_markdown(rebuilt, limit=limit - len(head))
    doc = stack.get("report")
    if isinstance(doc, Mapping):  # not a report we can rebuild: its JSON, cut short
        lines = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, default=str).splitlines()
        kept: list[str] = []
        for line in lines:
            if sum(len(k) + 1 for k in kept) + len(line) + 200 > limit:
                kept.append("...")
                break
            kept.append(line)
        return fenced(kept, "json")
    return ""


def _details(stack: Mapping[str, Any], limit: int) -> str:
    title = (f"<code>{html.escape(str(stack.get('stack', '')))}</code> "
             f"{html.escape(str(stack.get('account') or '-'))} / {html.escape(str(stack.get('region', '')))}: "
             f"{html.escape(detail(stack))}")
    return f"<details><summary>{title}</summary>\n\n{_own_markdown(stack, limit)}\n</details>\n"


def format_fleet_markdown(report: Mapping[str, Any], limit: int = DEFAULT_LIMIT) -> str:
    """The job summary or pull-request comment of a fleet run, at most `limit` characters: a heading
    with the command and its result, the table of stacks (drift or changes first), each such stack's own
    markdown in a collapsed section (while the budget lasts), then the errors."""
    out = Budget(limit)
    out.add(f"### {_heading(report)}\n\n**{summary_text(report)}.**\n\n")
    stacks = _ordered(_stacks(report), errors_first=False)
    errors = _errors(stacks)
    end = f"\n<sub>{cell(str(report.get('format', '')))} v{report.get('format_version', '')}; the JSON report " \
          "has every stack's full report</sub>\n"
    reserve = len(errors) + len(end) + 300  # the errors, the footer and one "left out" line always fit
    if stacks:
        out.add("| Status | Stack | Account | Region | Exit | Seconds | Detail |\n|---|---|---|---|---:|---:|---|\n")
        listed = out.add_while_fits((_row(stack) for stack in stacks), reserve)
        if listed < len(stacks):
            out.add(f"| ... | *{len(stacks) - listed} more stack(s) not listed* | | | | | see the JSON report |\n")
        out.add("\n")
    else:
        out.add("No stacks in this report (an empty shard).\n")
    loud = [s for s in stacks if s.get("status") in LOUD and _own_markdown_possible(s)]
    if loud:
        command = str(report.get("command"))
        out.add(f"#### {'Drifted' if command == 'drift' else 'Changed' if command == 'apply' else 'Pending'} "
                f"stacks ({len(loud)})\n\n")
        shown = 0
        for index, stack in enumerate(loud):
            room = out.limit - out.size - reserve
            share = min(STACK_SHARE[1], max(STACK_SHARE[0], room // (len(loud) - index)))
            block = _details(stack, share - 300)
            if not out.fits(block, reserve):
                break
            out.add(block)
            shown += 1
        if shown < len(loud):
            out.add(f"\n*The reports of {len(loud) - shown} stack(s) are left out to stay under GitHub's limit; "
                    "the JSON report has them.*\n")
    out.add(errors)
    out.add(end)
    return out.text()[:limit]


def _own_markdown_possible(stack: Mapping[str, Any]) -> bool:
    return isinstance(stack.get("report"), Mapping)


# -- JSON ------------------------------------------------------------------------------

def format_fleet_json(report: Mapping[str, Any]) -> str:
    """Deterministic: sorted keys, indent 2, trailing newline (the file `report merge` reads back)."""
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"

