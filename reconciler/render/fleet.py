"""The fleet report for a person: a header per stack block, a table of the stacks, a summary line. Pure.

The table lists errors first, then drift or changes, then the rest (each group in report
order), so the stacks that need someone are at the top of a long fleet's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reconciler.plan.fleet import StackOutcome

if TYPE_CHECKING:
    from reconciler.render.registry import Style

# the order of the table: what needs someone first
_URGENCY = {"error": 0, "drift": 1, "changes": 1}


def _where(account: str, region: str) -> str:
    return f"account {account or '(from the credentials)'}, {region}"


def stack_header(outcome: StackOutcome) -> str:
    """The line above a stack's own output in a fleet run's text."""
    identity = outcome.identity
    return (f"=== {identity.stack} ({_where(identity.account, identity.region)}, {identity.manifest}): "
            f"{outcome.status}, {outcome.seconds:.1f} s ===\n")


def _ordered(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    stacks = list(report["stacks"])
    return sorted(stacks, key=lambda s: _URGENCY.get(str(s["status"]), 2))  # stable: report order within a group


def summary_line(report: Mapping[str, Any]) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in report["summary"].items() if status != "stacks")
    shard = f" (shard {report['shard']})" if report.get("shard") else ""
    return (f"{report['command']}: {report['summary']['stacks']} stacks{shard}"
            f"{': ' + counts if counts else ''}; exit {report['exit_code']} ({report['seconds']:.1f} s)\n")


def format_fleet_text(report: Mapping[str, Any], style: Style | None = None) -> str:
    """The table of stacks (errors and drift first), their errors, and the summary line."""
    rows = [("STATUS", "EXIT", "SECONDS", "STACK", "ACCOUNT", "REGION", "MANIFEST")]
    for stack in _ordered(report):
        rows.append((str(stack["status"]), str(stack["exit_code"]), f"{float(stack['seconds']):.1f}",
                     str(stack["stack"]), str(stack["account"]) or "-", str(stack["region"]), str(stack["manifest"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    errors = [s for s in _ordered(report) if s.get("error")]
    if errors:
        lines.append("")
        lines.extend(f"{s['stack']}: {str(s['error']).splitlines()[0]}" for s in errors)
    return "\n".join(lines) + "\n" + summary_line(report) if report["stacks"] else summary_line(report)


def format_fleet_markdown(report: Mapping[str, Any]) -> str:
    """A pull-request comment or job summary: the summary line, then the table (errors and drift first)."""
    lines = [f"**{summary_line(report).strip()}**", ""]
    if report["stacks"]:
        lines += ["| status | stack | account | region | manifest | seconds |", "|---|---|---|---|---|---|"]
        for stack in _ordered(report):
            cells = [str(stack["status"]), str(stack["stack"]), str(stack["account"]) or "-", str(stack["region"]),
                     f"`{stack['manifest']}`", f"{float(stack['seconds']):.1f}"]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        errors = [s for s in _ordered(report) if s.get("error")]
        if errors:
            lines.append("")
            lines.extend(f"- **{s['stack']}**: {str(s['error']).splitlines()[0]}" for s in errors)
    return "\n".join(lines) + "\n"
