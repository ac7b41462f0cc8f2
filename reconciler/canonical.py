"""Comparison by meaning, shared by expansion, reads and diffs (ground floor: imports nothing of ours).

Both sides of every comparison pass through the same function here, so a manifest's
spelling and AWS's answer meet in one canonical form: policies as sorted sets of
statements, lifecycle rules by priority, security-group and network-ACL rules as one
line of text each, digests over deterministic JSON.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces; the basis of every digest."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def as_list(value: Any) -> list[Any]:
    return [value] if not isinstance(value, list) else value


def canonical_statement(statement: Mapping[str, Any]) -> dict[str, Any]:
    """One statement in canonical form: list-valued fields sorted, principals as sets."""
    out: dict[str, Any] = {}
    for key, value in statement.items():
        if key == "Sid":
            continue
        if key in ("Action", "NotAction", "Resource", "NotResource"):
            out[key] = sorted({str(v) for v in as_list(value)})
        elif key in ("Principal", "NotPrincipal") and isinstance(value, Mapping):
            out[key] = {k: sorted({str(v) for v in as_list(v2)}) for k, v2 in value.items() for v in [v2]}
        elif key == "Condition" and isinstance(value, Mapping):
            out[key] = {op: {k: sorted({str(v) for v in as_list(v2)}) for k, v2 in body.items()}
                        for op, body in value.items()}
        else:
            out[key] = value
    return out


def canonical_policy(document: Mapping[str, Any]) -> dict[str, Any]:
    """A policy document reduced to its meaning: version plus a sorted set of statements."""
    statements = [canonical_statement(s) for s in as_list(document.get("Statement", []))]
    unique = {canonical_json(s): s for s in statements}
    return {"Version": document.get("Version", "2008-10-17"), "Statement": [unique[k] for k in sorted(unique)]}


def canonical_lifecycle_rules(rules: Any) -> list[dict[str, Any]]:
    """Lifecycle rules in canonical order (by rulePriority), so both sides of a diff line up.

    ECR may hand rules back in any order; their meaning is the priority, not the position.
    """
    if not isinstance(rules, list):
        return []
    return sorted((dict(rule) for rule in rules if isinstance(rule, Mapping)),
                  key=lambda rule: (int(rule.get("rulePriority", 0)), json.dumps(rule, sort_keys=True)))


def ports_text(protocol: str, from_port: int | None, to_port: int | None) -> str:
    """The protocol-and-ports part of a rule key: `tcp 443`, `udp 1000-2000`, `all`, `icmp`, `icmp 8/0`."""
    if protocol == "all":
        return "all"
    if protocol == "icmp":
        return "icmp" if from_port in (None, -1) else f"icmp {from_port}/{to_port}"
    if from_port is None:
        return protocol
    return f"{protocol} {from_port}" if from_port == to_port else f"{protocol} {from_port}-{to_port}"


def rule_key(direction: str, protocol: str, from_port: int | None, to_port: int | None, peer: str) -> str:
    """Canonical text of one rule: `tcp 8080 from 10.0.0.0/16`, `all to 0.0.0.0/0`, `tcp 5432 from vpc.main.sg.db`."""
    word = "from" if direction == "ingress" else "to"
    return f"{ports_text(protocol, from_port, to_port)} {word} {peer}"


def parse_rule_key(key: str) -> tuple[str, int | None, int | None, str]:
    """Inverse of `rule_key`: (protocol, from_port, to_port, peer); protocol in tcp/udp/icmp/all or a number."""
    head, _, peer = key.rpartition(" ")
    head = head.rsplit(" ", 1)[0]  # drop from/to
    parts = head.split(" ")
    protocol = parts[0]
    if protocol == "all":
        return "all", None, None, peer
    if len(parts) == 1:
        return protocol, (-1 if protocol == "icmp" else None), (-1 if protocol == "icmp" else None), peer
    if protocol == "icmp":
        low, _, high = parts[1].partition("/")
        return protocol, int(low), int(high), peer
    low, _, high = parts[1].partition("-")
    return protocol, int(low), int(high or low), peer


# Network-ACL protocols: AWS answers with IANA numbers, the manifest writes names (or a number).
ACL_PROTOCOL_NAMES = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp"}


def acl_protocol(value: str | int) -> str:
    """`tcp`/`udp`/`icmp`/`all` for those protocols however written (`6`, `"-1"`, `TCP`), else the number as text."""
    text = str(value).strip().lower()
    return ACL_PROTOCOL_NAMES.get(text, text)


def acl_entry_key(direction: str, rule: int) -> str:
    """The key of one network-ACL entry: `ingress 100`, `egress 32766` (a rule number is unique per direction)."""
    return f"{direction} {int(rule)}"


def acl_entry(protocol: str | int, from_port: int | None, to_port: int | None, cidr: str,
              action: str) -> dict[str, str]:
    """One network-ACL entry by meaning: `{protocol, ports, cidr, action}`, `ports` only for tcp/udp
    (`"22"`, `"1024-65535"`); AWS ignores ports on other protocols, so neither side may carry them."""
    name = acl_protocol(protocol)
    out = {"protocol": name, "cidr": canonical_cidr(cidr), "action": str(action).lower()}
    if name in ("tcp", "udp") and from_port is not None:
        high = from_port if to_port is None else to_port
        out["ports"] = str(from_port) if from_port == high else f"{from_port}-{high}"
    return out


def canonical_cidr(cidr: str) -> str:
    """A CIDR as AWS writes it back (IPv6 compressed, lower case); text that is no network is kept as is."""
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).compressed
    except ValueError:
        return cidr
