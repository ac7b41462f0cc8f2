"""Access-key hygiene and drift rules, from the live attributes of `iam.access_key` resources. Pure.

Why here and not in `plan/`: the planner names no kind; these rules reach it through
the access-key kind's `findings` / `classify` / `describe_added` (the planning contract
in `plan/kind.py`).

The access-key kind reports, per key: `id`, `status` (Active/Inactive), `role`
(delivered / retired / handover / unknown / undelivered), `age_days`, `last_used_days`
(None when never used; absent when not read: only drift reads it) and, for retired keys, `retired_days`. From those:

- `KEY_AGE`: an active key older than the manifest's `rotate_after_days`
  (CIS AWS 1.14 / Security Hub IAM.3);
- `KEY_ACTIVE_COUNT`: more than one active key on a user (CIS AWS 1.13);
- `KEY_UNUSED`: an active key not used for `unused_days` (45) days, or never used
  although older than that (CIS AWS 1.12 / Security Hub IAM.22).

`classify_key_change` tells drift which planned key changes are *scheduled*
(rotation or the end of a grace period: time, not a person, caused them), which
are *added* by hand (a key unknown to the store) and which are *modified*.

Key ids are identifiers, not secrets; no secret is ever in these attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.plan.model import AttrChange, Change, HygieneFinding, Origin

UNUSED_DAYS = 45
DEFAULT_ROTATE_AFTER_DAYS = 90


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    reference: str


RULES = {r.id: r for r in (
    Rule("KEY_AGE", "access key older than rotate_after_days", "CIS AWS 1.14 / Security Hub IAM.3"),
    Rule("KEY_ACTIVE_COUNT", "more than one active access key", "CIS AWS 1.13"),
    Rule("KEY_UNUSED", "access key unused for 45 days or more", "CIS AWS 1.12 / Security Hub IAM.22"),
)}


def _finding(address: str, rule: str, message: str, key: str | None = None) -> HygieneFinding:
    return HygieneFinding(address, rule, message, RULES[rule].reference, key)


def _keys(attrs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return sorted(attrs.get("keys", []), key=lambda k: str(k.get("id")))


def _rotate_after(change: Change) -> int:
    if change.desired is not None:
        return int(change.want.spec.get("rotate_after_days", DEFAULT_ROTATE_AFTER_DAYS))
    return DEFAULT_ROTATE_AFTER_DAYS


def access_key_findings(change: Change, unused_days: int = UNUSED_DAYS) -> list[HygieneFinding]:
    """Hygiene findings for one access-key change (empty when nothing is live)."""
    if change.live is None:
        return []
    rotate = _rotate_after(change)
    user = change.have.attrs.get("user", change.have.id)
    active = [k for k in _keys(change.have.attrs) if k.get("status") == "Active"]
    found: list[HygieneFinding] = []
    for key in active:
        ident = str(key.get("id"))
        age = key.get("age_days")
        if isinstance(age, int) and age >= rotate:
            found.append(_finding(change.address, "KEY_AGE",
                                  f"key {ident} of {user} is {age} days old (rotate_after_days: {rotate})",
                                  ident))
        read = "last_used_days" in key  # absent: not read (only drift reads it), so no finding either way
        used = key.get("last_used_days")
        if read and isinstance(used, int) and used >= unused_days:
            found.append(_finding(change.address, "KEY_UNUSED",
                                  f"key {ident} of {user} was last used {used} days ago", ident))
        elif read and used is None and isinstance(age, int) and age >= unused_days:
            found.append(_finding(change.address, "KEY_UNUSED",
                                  f"key {ident} of {user} was never used in its {age} days", ident))
    if len(active) > 1:
        ids = ", ".join(str(k.get("id")) for k in active)
        count = change.want.spec.get("count") if change.desired is not None else None
        asked = f"; the manifest asks for count: {count}" if isinstance(count, int) and count > 1 else ""
        found.append(_finding(change.address, "KEY_ACTIVE_COUNT",
                              f"{user} has {len(active)} active keys ({ids}){asked}"))
    return found


def classify_key_change(change: Change, attr: AttrChange) -> Origin:
    """SCHEDULED, ADDED or MODIFIED for one diff entry of an access-key change."""
    if change.live is None:
        return Origin.MODIFIED
    rotate = _rotate_after(change)
    keys = {str(k.get("id")): k for k in change.have.attrs.get("keys", [])}
    due = [k for k in keys.values() if _is_due(k, rotate)]
    if attr.path == "keys.new":
        # a new key is maintenance only when an old one is being rotated out
        return Origin.SCHEDULED if due else Origin.MODIFIED
    if attr.path.startswith("keys."):
        key = keys.get(attr.path[len("keys."):])
        if key is None:
            return Origin.MODIFIED
        if key.get("role") == "unknown":
            return Origin.ADDED
        if key.get("role") in ("retired", "handover") or _is_due(key, rotate):
            return Origin.SCHEDULED
    return Origin.MODIFIED


def _is_due(key: Mapping[str, Any], rotate: int) -> bool:
    age = key.get("age_days")
    return (key.get("role") == "delivered" and key.get("status") == "Active"
            and isinstance(age, int) and age >= rotate)


def describe_key(change: Change, attr: AttrChange) -> str:
    """A short, secret-free description of a key change, for the unmanaged list."""
    ident = attr.path[len("keys."):] if attr.path.startswith("keys.") else attr.path
    return f"access key {ident} (unknown to the store: created by hand)"
