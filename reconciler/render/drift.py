"""Drift reports as text, JSON and markdown. Pure: DriftReport -> str.

Invariants: every format lists every address that is not IN_SYNC with its status
(NOT_CHECKED included, never dropped), the hygiene findings and the report notes;
JSON lists every address, IN_SYNC too. Output is deterministic: no clock, sorted
keys. The markdown form stays under `limit` characters like the markdown plan.
"""

from __future__ import annotations

import html
import json
from typing import Any

from reconciler.plan.drift import DriftEntry, DriftReport, DriftStatus
from reconciler.plan.model import Action
from reconciler.render.lines import diff_lines
from reconciler.render.markdown import DEFAULT_LIMIT, Budget, callout, cell, code, details_block, footer

FORMAT_VERSION = 2  # 2: the image kind is `ecr.image` (it was `image`)
LABEL = {DriftStatus.IN_SYNC: "in sync", DriftStatus.MODIFIED: "modified", DriftStatus.DELETED: "deleted",
         DriftStatus.UNMANAGED: "unmanaged", DriftStatus.ORPHANED: "orphaned",
         DriftStatus.NOT_CHECKED: "not checked"}
COLOR = {DriftStatus.MODIFIED: "33", DriftStatus.DELETED: "31", DriftStatus.UNMANAGED: "35",
         DriftStatus.ORPHANED: "31", DriftStatus.NOT_CHECKED: "36"}


def summary_line(report: DriftReport) -> str:
    counts = report.summary()
    order = [DriftStatus.ORPHANED, DriftStatus.DELETED, DriftStatus.MODIFIED, DriftStatus.UNMANAGED,
             DriftStatus.NOT_CHECKED, DriftStatus.IN_SYNC]
    parts = ", ".join(f"{counts[s.value]} {LABEL[s]}" for s in order if counts[s.value])
    if report.drifted:
        return f"Drift found: {parts}."
    return f"No drift: {parts or '0 resources'}."


def _worth_showing(entry: DriftEntry) -> bool:
    """Everything but plain IN_SYNC; IN_SYNC with scheduled work (a key rotation due) is shown too."""
    return entry.status is not DriftStatus.IN_SYNC or entry.action is not Action.NOOP


def _kind(entry: DriftEntry) -> str:
    return f" ({entry.kind})" if entry.kind else ""


# -- text ------------------------------------------------------------------------

def format_drift_text(report: DriftReport, color: bool = False, verbose: bool = False) -> str:
    lines = [f"Drift for stack {report.stack} in {report.account}/{report.region}:"]
    shown = [e for e in report.entries if verbose or _worth_showing(e)]
    if shown:
        lines.append("")
    for entry in shown:
        head = f"{entry.status.value:<11} {entry.address}{_kind(entry)}"
        if color and entry.status in COLOR:
            head = f"\033[{COLOR[entry.status]}m{head}\033[0m"
        lines.append(f"{head}  # {entry.detail}")
        lines.extend(f"    {line}" for line in diff_lines(entry.diff))
    if report.findings:
        lines.extend(["", "Hygiene:"])
        lines.extend(f"  ! {f.address}: {f.rule} {f.message} ({f.reference})" for f in report.findings)
    if report.notes:
        lines.extend(["", "Notes:"])
        lines.extend(f"  - {note}" for note in report.notes)
    lines.extend(["", summary_line(report)])
    return "\n".join(lines) + "\n"


# -- JSON ------------------------------------------------------------------------

def entry_to_json(entry: DriftEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"address": entry.address, "kind": entry.kind, "status": entry.status.value,
                           "detail": entry.detail, "action": entry.action.value,
                           "diff": [d.to_json() for d in entry.diff], "unmanaged": list(entry.unmanaged)}
    if entry.id is not None:
        out["id"] = entry.id
    return out


def drift_to_json(report: DriftReport) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "stack": report.stack,
        "region": report.region,
        "account": report.account,
        "manifest_sha256": report.manifest_sha256,
        "live_sha256": report.live_sha256,
        "drift": bool(report.drifted),
        "summary": report.summary(),
        "resources": [entry_to_json(e) for e in report.entries],
        "hygiene": [{"address": f.address, "rule": f.rule, "message": f.message, "reference": f.reference,
                     **({"key": f.key} if f.key else {})} for f in report.findings],
        "notes": list(report.notes),
    }


def format_drift_json(report: DriftReport) -> str:
    """Deterministic: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(drift_to_json(report), indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


# -- markdown --------------------------------------------------------------------

def format_drift_markdown(report: DriftReport, limit: int = DEFAULT_LIMIT) -> str:
    out = Budget(limit)
    out.add(f"### reconcile drift: stack {code(report.stack)} in {code(report.account)} / "
            f"{code(report.region)}\n\n")
    out.add(f"**{summary_line(report)}**\n\n")
    if report.notes:
        out.add(callout("IMPORTANT", "Notes:", [cell(n) for n in report.notes]))
    if report.findings:
        out.add(callout("WARNING", f"{len(report.findings)} access-key hygiene finding(s):",
                        [f"{code(f.address)}: {f.rule} {cell(f.message)} ({cell(f.reference)})"
                         for f in report.findings]))
    end = footer(report.manifest_sha256, report.live_sha256,
                 "`reconcile apply MANIFEST` reverts it" if report.drifted else "nothing was changed by hand")
    reserve = len(end) + 300
    shown = [e for e in report.entries if _worth_showing(e)]
    if shown:
        out.add("| Status | Address | Detail |\n|---|---|---|\n")
        listed = out.add_while_fits((f"| **{entry.status.value}** | {code(entry.address)} | {cell(entry.detail)} |\n"
                                     for entry in shown), reserve)
        if listed < len(shown):
            out.add(f"| ... | *{len(shown) - listed} more address(es) not listed* | see the JSON report |\n")
        out.add("\n")
        blocks = [details_block(f"<code>{html.escape(e.address)}</code> {e.status.value}", diff_lines(e.diff))
                  for e in shown if e.diff]
        done = out.add_while_fits(blocks, reserve)
        if done < len(blocks):
            out.add(f"\n*The diffs of {len(blocks) - done} address(es) are left out; the JSON report has them.*\n")
    in_sync = [e for e in report.entries if not _worth_showing(e)]
    if in_sync:
        listing = "".join(f"- {code(e.address)}\n" for e in in_sync)
        block = (f"\n<details><summary>{len(in_sync)} address(es) in sync, nothing to do</summary>\n\n"
                 f"{listing}\n</details>\n")
        if out.fits(block, reserve):
            out.add(block)
        else:
            out.add(f"\n{len(in_sync)} address(es) in sync.\n")
    out.add(end)
    return out.text()[:limit]
