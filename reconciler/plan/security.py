"""Security-widening detection on planned changes. Pure: reads diffs, returns SECURITY notes.

A change *widens* security when what it puts in place was not there before and
opens something up:
- ingress from `0.0.0.0/0` or `::/0` (any diff path with `ingress` in it);
- a policy statement that allows `*` or `service:*` actions, or allows by `NotAction`;
- `arn:aws:iam::aws:policy/AdministratorAccess` attached;
- a subnet that maps public IPv4 addresses on launch (`map_public_ip*: true`).

Invariants: detection compares each diff entry's `after` with its `before`, so a
value already live (an unchanged open rule) is never flagged again; the output is
sorted and deduplicated, so the same diff always gives the same notes.

Kinds may flag their own resources (notes of kind SECURITY); `build_plan` adds these
generic notes only to changes whose kind flagged nothing, so a finding is never said
twice. Cost notes come from the kinds only (`Kind.notes`, kind COST).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from reconciler.plan.model import AttrChange, Note, security

ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})


def _strings(value: Any, keys: bool = False) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if keys:
                yield str(key)
            yield from _strings(item, keys)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, keys)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(value: Any) -> Iterator[dict[str, Any]]:
    """Every mapping that looks like a policy statement (has an Effect) anywhere in `value`."""
    if isinstance(value, dict):
        if "Effect" in value and ("Action" in value or "NotAction" in value):
            yield value
        for item in value.values():
            yield from _statements(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _statements(item)


def _wide_actions(value: Any) -> set[str]:
    found: set[str] = set()
    for statement in _statements(value):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            found.add("NotAction " + ",".join(sorted(str(a) for a in _as_list(statement["NotAction"]))))
        for action in _as_list(statement.get("Action", [])):
            text = str(action)
            if text == "*" or text.endswith(":*"):
                found.add(text)
    return found


def _public_ip_on(path: str, value: Any) -> bool:
    leaf = path.rsplit(".", 1)[-1]
    if leaf.startswith("map_public_ip"):
        return value is True
    if isinstance(value, dict):
        return any(_public_ip_on(f"{path}.{k}", v) for k, v in value.items())
    return False


def _in_ingress(path: str) -> bool:
    return "ingress" in path.lower()


def _open_cidrs(value: Any) -> set[str]:
    """Open CIDRs in values and mapping keys, whole or as a word (`tcp 22 from 0.0.0.0/0`)."""
    return {word for text in _strings(value, keys=True) for word in text.split() if word in OPEN_CIDRS}


def _open_ingress(change: AttrChange) -> set[str]:
    if _in_ingress(change.path):
        after = _open_cidrs(change.after)
        if change.before is None:  # a rule keyed by its own text, added whole
            after |= {word for word in change.path.split() if word in OPEN_CIDRS}
        return after - _open_cidrs(change.before)
    if isinstance(change.after, dict) and any(_in_ingress(str(k)) for k in change.after):
        after = {s for k, v in change.after.items() if _in_ingress(str(k)) for s in _open_cidrs(v)}
        before_map = change.before if isinstance(change.before, dict) else {}
        before = {s for k, v in before_map.items() if _in_ingress(str(k)) for s in _open_cidrs(v)}
        return after - before
    return set()


def security_notes(diff: Sequence[AttrChange]) -> list[Note]:
    """The security-widening notes for one change's diff (sorted, deduplicated)."""
    notes: set[str] = set()
    for change in diff:
        if change.sensitive or change.after is None:
            continue
        for cidr in sorted(_open_ingress(change)):
            notes.add(f"opens ingress to {cidr} ({change.path})")
        for action in sorted(_wide_actions(change.after) - _wide_actions(change.before)):
            notes.add(f"allows {action} actions ({change.path})")
        if ADMIN_POLICY_ARN in set(_strings(change.after)) - set(_strings(change.before)):
            notes.add(f"attaches AdministratorAccess ({change.path})")
        if _public_ip_on(change.path, change.after) and not _public_ip_on(change.path, change.before):
            notes.add(f"assigns public IPv4 addresses on launch ({change.path})")
    return [security(text) for text in sorted(notes)]
