"""Security findings on a manifest: stable rule ids with CIS / Security Hub references.

High-severity findings fail validation unless the manifest waives them with a
reason (`waivers: {RULE_ID: "why"}`); the others are warnings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.manifest.loader import Path, Source, json_path

# the same AWS-managed policy in every partition (arn:aws-cn:, arn:aws-us-gov:, ...)
_ADMIN_POLICY = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/AdministratorAccess$")


def is_admin_policy(arn: object) -> bool:
    return isinstance(arn, str) and _ADMIN_POLICY.match(arn) is not None


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # "high" | "medium" | "low"
    title: str
    reference: str


RULES = {r.id: r for r in (
    Rule("RC-NET-001", "high", "SSH (22) or RDP (3389) open to the internet",
         "CIS AWS 5.2 / Security Hub EC2.13, EC2.14"),
    Rule("RC-IAM-001", "high", "AdministratorAccess on a programmatic user",
         "CIS AWS 1.16 / Security Hub IAM.1"),
    Rule("RC-IAM-002", "low", "policy attached to a user instead of a group",
         "CIS AWS 1.15 / Security Hub IAM.2"),
    Rule("RC-IAM-003", "medium", "policy allows every action (\"*\")",
         "CIS AWS 1.16 / Security Hub IAM.21"),
    Rule("RC-ECR-001", "medium", "image scanning on push is off", "Security Hub ECR.1"),
    Rule("RC-ECR-002", "low", "repository tags are mutable", "Security Hub ECR.2"),
    Rule("RC-ECR-003", "medium", "repository has no lifecycle policy", "Security Hub ECR.3"),
    Rule("RC-NET-002", "medium", "public subnet assigns public IPv4 addresses automatically",
         "Security Hub EC2.15"),
    Rule("RC-NET-003", "medium", "ingress open to the internet on all ports", "CIS AWS 5.2 / Security Hub EC2.18"),
)}


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
    raw: list[tuple[str, Path, str]] = []
    if "iam" not in dirty:
        raw.extend(_iam(data, policies))
    if "ecr" not in dirty:
        raw.extend(_ecr(data))
    if "network" not in dirty:
        raw.extend(_network(data))
    out = []
    for rule_id, path, detail in raw:
        line, col = source.where(path)
        out.append(Finding(RULES[rule_id], json_path(path), line, col, detail, waived.get(rule_id)))
    return sorted(out, key=lambda f: (f.line, f.col, f.rule.id))


def _statements(document: Any) -> list[dict[str, Any]]:
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    return [statements] if isinstance(statements, dict) else list(statements)


def _allows_everything(document: Any) -> bool:
    for statement in _statements(document):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if statement.get("Effect") == "Allow" and "*" in actions:
            return True
    return False


def _iam(data: dict[str, Any], policies: dict[str, Any]) -> Iterator[tuple[str, Path, str]]:
    iam = data.get("iam", {})
    for kind in ("users", "groups"):
        for index, item in enumerate(iam.get(kind, [])):
            at: Path = ("iam", kind, index)
            for pi, arn in enumerate(item.get("managed_policies", [])):
                if is_admin_policy(arn) and kind == "users":
                    yield "RC-IAM-001", (*at, "managed_policies", pi), f"user {item['name']} gets AdministratorAccess"
                elif kind == "users":
                    yield "RC-IAM-002", (*at, "managed_policies", pi), f"attach {arn} through a group"
            for name, ref in item.get("inline_policies", {}).items():
                document = policies.get(ref["file"]) if "file" in ref else ref
                if _allows_everything(document):
                    yield "RC-IAM-003", (*at, "inline_policies", name), f"inline policy {name} allows Action \"*\""
                elif kind == "users":
                    yield "RC-IAM-002", (*at, "inline_policies", name), f"move inline policy {name} to a group"
    groups = {g["name"]: g for g in iam.get("groups", [])}
    for index, user in enumerate(iam.get("users", [])):
        for gi, group in enumerate(user.get("groups", [])):
            if any(map(is_admin_policy, groups.get(group, {}).get("managed_policies", []))):
                yield ("RC-IAM-001", ("iam", "users", index, "groups", gi),
                       f"user {user['name']} gets AdministratorAccess through group {group}")


def _ecr(data: dict[str, Any]) -> Iterator[tuple[str, Path, str]]:
    for index, repo in enumerate(data.get("ecr", {}).get("repositories", [])):
        at = ("ecr", "repositories", index)
        if repo.get("scan_on_push") is False:
            yield "RC-ECR-001", (*at, "scan_on_push"), f"{repo['name']}: scan_on_push is false"
        if repo.get("tag_mutability") == "mutable":
            yield "RC-ECR-002", (*at, "tag_mutability"), f"{repo['name']}: tags can be overwritten"
        if repo.get("lifecycle") == {}:
            yield "RC-ECR-003", (*at, "lifecycle"), f"{repo['name']}: an empty lifecycle expires nothing"


def _network(data: dict[str, Any]) -> Iterator[tuple[str, Path, str]]:
    for vi, vpc in enumerate(data.get("network", {}).get("vpcs", [])):
        for si, subnet in enumerate(vpc.get("subnets", [])):
            if subnet.get("map_public_ip"):
                yield ("RC-NET-002", ("network", "vpcs", vi, "subnets", si, "map_public_ip"),
                       f"subnet {subnet['name']} gives every instance a public IP")
        for gi, group in enumerate(vpc.get("security_groups", [])):
            for ri, rule in enumerate(group.get("ingress", [])):
                if rule.get("from") not in ("0.0.0.0/0", "::/0"):
                    continue
                at = ("network", "vpcs", vi, "security_groups", gi, "ingress", ri)
                ports = rule.get("ports")
                if rule["protocol"] == "all":
                    yield "RC-NET-003", at, f"group {group['name']} accepts all traffic from anywhere"
                    yield "RC-NET-001", at, f"group {group['name']} opens SSH/RDP to anywhere"
                elif rule["protocol"] in ("tcp", "udp") and ports:
                    low, _, high = ports.partition("-")
                    lo, hi = int(low), int(high or low)
                    if lo <= 1 and hi >= 65535:
                        yield "RC-NET-003", at, f"group {group['name']} accepts every {rule['protocol']} port " \
                                                "from anywhere"
                    if rule["protocol"] == "tcp" and (lo <= 22 <= hi or lo <= 3389 <= hi):
                        yield "RC-NET-001", at, f"group {group['name']} opens SSH/RDP ({ports}) to anywhere"
