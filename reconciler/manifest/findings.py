"""Security findings on a manifest: stable rule ids with CIS / Security Hub references.

Each section declares its rules and finds them (`Section.rules`, `Section.findings`);
this module collects them, places each at its line and column, and applies waivers.

High-severity findings fail validation unless the manifest waives them with a
reason (`waivers: {RULE_ID: "why"}`); the others are warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.manifest.loader import Source, json_path
from reconciler.manifest.section import Rule
from reconciler.manifest.sections import SECTIONS

# every rule of every section, by id; ids are unique across sections
RULES: dict[str, Rule] = {rule.id: rule for section in SECTIONS for rule in section.rules}


@dataclass(frozen=True)
class Finding:
    rule: Rule
    path: str
    line: int
    col: int
    detail: str
    waived: str | None = None

    def __str__(self) -> str:
        state = f" [waived: {self.waived}]" if self.waived else ""
        return (f"{self.line}:{self.col}: {self.path}: {self.rule.severity.upper()} {self.rule.id} "
                f"{self.detail} ({self.rule.reference}){state}")


def security_findings(data: dict[str, Any], source: Source, policies: dict[str, Any],
                      dirty: frozenset[str] | set[str] = frozenset()) -> list[Finding]:
    """Every finding in the sections that are not `dirty`, waivers applied, sorted by position."""
    waivers = data.get("waivers")
    # honour every well-formed entry, even when another entry has a schema problem
    waived = {k: v for k, v in waivers.items() if isinstance(v, str)} if isinstance(waivers, dict) else {}
    raw = [found for section in SECTIONS if section.key not in dirty for found in section.findings(data, policies)]
    out = []
    for rule_id, path, detail in raw:
        line, col = source.where(path)
        out.append(Finding(RULES[rule_id], json_path(path), line, col, detail, waived.get(rule_id)))
    return sorted(out, key=lambda f: (f.line, f.col, f.rule.id))

