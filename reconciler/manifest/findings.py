"""Security findings on a manifest: stable rule ids with CIS / Security Hub references.

Each section declares its rules and finds them (`Section.rules`, `Section.findings`);
this module collects them, places each at its line and column, and applies waivers.

High-severity findings fail validation unless the manifest waives them with a
reason (`waivers: {RULE_ID: "why"}`); the others are warnings. A waiver may name the
addresses it covers (`{RULE_ID: {reason: "why", addresses: [vpc.main.sg.bastion]}}`,
exact addresses or fnmatch globs): then only findings inside those resources are waived.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from reconciler.manifest.loader import Source, json_path
from reconciler.manifest.section import Rule
from reconciler.manifest.sections import SECTIONS

# every rule of every section, by id; ids are unique across sections
RULES: dict[str, Rule] = {rule.id: rule for section in SECTIONS for rule in section.rules}


@dataclass(frozen=True)
class Waiver:
    """One entry of `waivers`: `addresses` None waives every finding of `rule` (a plain reason string)."""

    rule: str
    reason: str
    addresses: tuple[str, ...] | None = None

    def covers(self, address: str | None) -> bool:
        if self.addresses is None:
            return True
        return address is not None and any(fnmatchcase(address, pattern) for pattern in self.addresses)


def parse_waivers(data: dict[str, Any]) -> dict[str, Waiver]:
    """The well-formed waivers by rule id (a malformed entry is the schema's problem, not honoured here)."""
    waivers = data.get("waivers")
    out: dict[str, Waiver] = {}
    for rule, value in (waivers.items() if isinstance(waivers, dict) else ()):
        if isinstance(value, str):
            out[rule] = Waiver(rule, value)
        elif isinstance(value, dict) and isinstance(value.get("reason"), str):
            addresses = value.get("addresses")
            if addresses is None:
                out[rule] = Waiver(rule, value["reason"])
            elif isinstance(addresses, list) and all(isinstance(a, str) for a in addresses):
                out[rule] = Waiver(rule, value["reason"], tuple(addresses))
    return out


@dataclass(frozen=True)
class Finding:
    rule: Rule
    path: str
    line: int
    col: int
    detail: str
    waived: str | None = None
    address: str | None = None  # the resource the finding lies in, when its section says

    def __str__(self) -> str:
        state = f" [waived: {self.waived}]" if self.waived else ""
        return (f"{self.line}:{self.col}: {self.path}: {self.rule.severity.upper()} {self.rule.id} "
                f"{self.detail} ({self.rule.reference}){state}")


def security_findings(data: dict[str, Any], source: Source, policies: dict[str, Any],
                      dirty: frozenset[str] | set[str] = frozenset()) -> list[Finding]:
    """Every finding in the sections that are not `dirty`, waivers applied, sorted by position."""
    # honour every well-formed entry, even when another entry has a schema problem
    waivers = parse_waivers(data)
    out = []
    for section in SECTIONS:
        if section.key in dirty:
            continue
        for rule_id, path, detail in section.findings(data, policies):
            line, col = source.where(path)
            address = section.address_of(data, path)
            waiver = waivers.get(rule_id)
            waived = waiver.reason if waiver is not None and waiver.covers(address) else None
            out.append(Finding(RULES[rule_id], json_path(path), line, col, detail, waived, address))
    return sorted(out, key=lambda f: (f.line, f.col, f.rule.id))



def waiver_coverage(data: dict[str, Any], findings: list[Finding]) -> list[str]:
    """One line per waiver: which resources it covers (a finding outside any resource: its path), or a
    warning that it covers nothing, so a waiver outliving its finding is seen and removed."""
    lines = []
    for rule, waiver in sorted(parse_waivers(data).items()):
        covered = sorted({f.address or f.path for f in findings if f.rule.id == rule and f.waived})
        scope = "" if waiver.addresses is None else f" (addresses: {', '.join(waiver.addresses)})"
        if covered:
            lines.append(f"waiver {rule} covers {', '.join(covered)}{scope}")
        else:
            lines.append(f"warning: waiver {rule} covers nothing{scope}: no finding of {rule} is waived by it; "
                         "remove it")
    return lines
