"""Drift: what a plan says about by-hand changes, one status per address. Pure.

`build_drift(plan, live)` turns a Plan (desired vs live) into a DriftReport. The
statuses (SPEC.md §6), decided per address in this order:

- `NOT_CHECKED`: the address is in `plan.not_checked` (a kind this version cannot
  read, a kind skipped on the command line, a read that could not judge it). Said
  explicitly with the reason, never skipped; it is not drift (exit code unchanged),
  but nothing is claimed about it either.
- `ORPHANED`: the plan deletes it: tagged with the stack, absent from the manifest.
- `DELETED`: the plan creates it: desired, absent from the account. With no state
  file, "deleted by hand" and "never applied" cannot be told apart from the account
  alone, so every desired-but-absent resource is DELETED; the detail names the
  evidence when there is some (an owned live resource that depends on it), and the
  report adds a note when nothing owned by the stack exists at all (never applied).
- `MODIFIED`: a declared attribute differs (policy documents per statement), or the
  resource exists under its manifest name without the stack tag.
- `UNMANAGED`: the only differences are things added by hand that the manifest does
  not declare: the kind's `LiveResource.unmanaged` (a console password), a diff entry
  whose live value is present and whose desired value is absent / off / empty, or a
  list whose live side only has extra items (an attached policy, a route, a rule);
  a kind refines this through its `classify` (an access key the store does not know,
  an image tag pushed outside the tool).
- `IN_SYNC`: nothing of the above. Planned changes that time, not a person, caused
  (the kind's `classify` says SCHEDULED: an access key due for rotation) keep the
  address IN_SYNC; they show in the entry's detail, and the kind's `findings` as
  hygiene findings. So does a missing `reconciler:kind` tag: resources made before
  the tag existed lack it until the next apply adds it, and an upgrade is no
  by-hand change (a scheduled drift job must not fire on every resource after one).

Drift compares the account with the manifest it is given: an edit not applied yet
shows as drift too, so scheduled jobs run it on the branch that was applied.

Invariants: every address of the plan (and of `not_checked`) gets exactly one
entry; entries are sorted loudest first, then by address; the same plan gives the
same report; no secret is in a report (plans never hold one; sensitive diff
entries keep their mask).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.canonical import canonical_json
from reconciler.ownership import KIND_TAG
from reconciler.plan.kind import KindPlanner
from reconciler.plan.model import Action, AttrChange, Change, HygieneFinding, LiveResource, Origin, Plan


class DriftStatus(enum.Enum):
    IN_SYNC = "IN_SYNC"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    UNMANAGED = "UNMANAGED"
    ORPHANED = "ORPHANED"
    NOT_CHECKED = "NOT_CHECKED"


# Loudest first: what a person must look at before anything else.
STATUS_ORDER = {DriftStatus.ORPHANED: 0, DriftStatus.DELETED: 1, DriftStatus.MODIFIED: 2,
                DriftStatus.UNMANAGED: 3, DriftStatus.NOT_CHECKED: 4, DriftStatus.IN_SYNC: 5}
DRIFT = frozenset({DriftStatus.MODIFIED, DriftStatus.DELETED, DriftStatus.UNMANAGED, DriftStatus.ORPHANED})


@dataclass(frozen=True)
class DriftEntry:
    """The drift status of one address.

    Invariants: `diff` holds only the entries that differ by hand (scheduled ones
    are described in `detail`); `unmanaged` lists the by-hand additions in words;
    `action` is what `apply` would do here (`noop` when nothing).
    """

    address: str
    kind: str
    status: DriftStatus
    detail: str
    action: Action = Action.NOOP
    id: str | None = None
    diff: tuple[AttrChange, ...] = ()
    unmanaged: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftReport:
    """Drift of one stack: entries loudest first, hygiene findings, report-wide notes."""

    stack: str
    region: str
    account: str
    manifest_sha256: str
    live_sha256: str
    entries: tuple[DriftEntry, ...]
    findings: tuple[HygieneFinding, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def drifted(self) -> tuple[DriftEntry, ...]:
        return tuple(e for e in self.entries if e.status in DRIFT)

    @property
    def not_checked(self) -> tuple[DriftEntry, ...]:
        return tuple(e for e in self.entries if e.status is DriftStatus.NOT_CHECKED)

    def summary(self) -> dict[str, int]:
        counts = {status.value: 0 for status in DriftStatus}
        for entry in self.entries:
            counts[entry.status.value] += 1
        return counts


_EMPTY: tuple[Any, ...] = (None, False, [], {}, "")


def classify_generic(change: Change, attr: AttrChange) -> Origin:
    """The rule for any kind that has none of its own (`Kind.classify`'s default)."""
    if ".Statement" in attr.path:
        return Origin.MODIFIED  # a declared policy changed (an extra statement included)
    if attr.before not in _EMPTY and attr.after in _EMPTY:
        return Origin.ADDED
    if isinstance(attr.before, list) and isinstance(attr.after, list):
        extra = [v for v in attr.before if v not in attr.after]
        missing = [v for v in attr.after if v not in attr.before]
        if extra and not missing:
            return Origin.ADDED
    return Origin.MODIFIED


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else canonical_json(value)
    return text if len(text) <= 80 else text[:77] + "..."


def describe_generic(change: Change, attr: AttrChange) -> list[str]:
    """How an added entry is named in `unmanaged` (`Kind.describe_added`'s default)."""
    if attr.sensitive:
        return [f"{attr.path} (sensitive)"]
    if isinstance(attr.before, list) and isinstance(attr.after, list):
        return [f"{attr.path}: {_short(v)}" for v in attr.before if v not in attr.after]
    if isinstance(attr.before, bool):
        return [f"{attr.path}: {str(attr.before).lower()}"]
    return [attr.path]


def kind_tag_backfill(attr: AttrChange) -> bool:
    """Whether a diff entry only adds the `reconciler:kind` tag that an earlier version did not write
    (on the resource, `tags.`, or on what it keeps elsewhere, `store.tags.`): bookkeeping, not drift."""
    return attr.before is None and (attr.path == f"tags.{KIND_TAG}" or attr.path.endswith(f".tags.{KIND_TAG}"))


def _existing(change: Change, kind: KindPlanner) -> DriftEntry:
    ident = change.have.id
    origins: dict[Origin, list[AttrChange]] = {origin: [] for origin in Origin}
    backfilled = False
    for attr in change.diff:
        if kind_tag_backfill(attr):
            backfilled = True
            continue
        origins[kind.classify(change, attr)].append(attr)
    unmanaged = list(change.have.unmanaged)
    for attr in origins[Origin.ADDED]:
        if isinstance(attr.before, bool) and unmanaged:
            continue  # the kind already named it (console password for console_access: true)
        unmanaged.extend(kind.describe_added(change, attr))
    scheduled = ""
    if origins[Origin.SCHEDULED]:
        scheduled = (f"; apply will do {len(origins[Origin.SCHEDULED])} scheduled change(s) "
                     "(key rotation or grace period)")
    if backfilled:
        scheduled += f"; apply will add the {KIND_TAG} tag (made by an earlier version)"
    by_hand = tuple(origins[Origin.MODIFIED] + origins[Origin.ADDED])
    if origins[Origin.MODIFIED]:
        paths = sorted({a.path.split(".")[0] for a in origins[Origin.MODIFIED]})
        forced = " (forces replacement)" if change.action is Action.REPLACE else ""
        return DriftEntry(change.address, change.kind, DriftStatus.MODIFIED,
                          "changed by hand: " + ", ".join(paths) + forced + scheduled,
                          change.action, ident, by_hand, tuple(unmanaged))
    if unmanaged:
        return DriftEntry(change.address, change.kind, DriftStatus.UNMANAGED,
                          "added by hand: " + "; ".join(unmanaged) + scheduled,
                          change.action, ident, by_hand, tuple(unmanaged))
    return DriftEntry(change.address, change.kind, DriftStatus.IN_SYNC, "in sync" + scheduled,
                      change.action, ident)


def _deleted(change: Change, live: Mapping[str, LiveResource]) -> DriftEntry:
    dependants = sorted(a for a, r in live.items() if r.owned and change.address in r.depends_on)
    if dependants:
        detail = f"deleted by hand: {', '.join(dependants)} still exists and depends on it"
    else:
        detail = "absent from the account: deleted by hand (or never applied)"
    return DriftEntry(change.address, change.kind, DriftStatus.DELETED, detail, change.action)


def _entry(change: Change, plan: Plan, live: Mapping[str, LiveResource],
           kinds: Mapping[str, KindPlanner]) -> DriftEntry:
    if change.address in plan.not_checked:
        return DriftEntry(change.address, change.kind, DriftStatus.NOT_CHECKED,
                          f"not checked: {plan.not_checked[change.address]}", change.action,
                          change.live.id if change.live else None)
    if change.action is Action.DELETE:
        ident = change.live.id if change.live else None
        return DriftEntry(change.address, change.kind, DriftStatus.ORPHANED,
                          f"tagged with stack {plan.stack} but not in the manifest; apply deletes it",
                          change.action, ident)
    if change.live is not None and not change.live.owned:
        return DriftEntry(change.address, change.kind, DriftStatus.MODIFIED,
                          "exists without the stack tag (tag removed by hand, or made outside the tool)",
                          change.action, change.live.id)
    if change.live is None:
        return _deleted(change, live)
    return _existing(change, kinds[change.kind])


def build_drift(plan: Plan, kinds: Mapping[str, KindPlanner],
                live: Mapping[str, LiveResource] | None = None) -> DriftReport:
    """One status per address of `plan`, hygiene findings, and report-wide notes."""
    live = live if live is not None else {c.address: c.live for c in plan.changes if c.live is not None}
    entries = [_entry(change, plan, live, kinds) for change in plan.changes]
    seen = {e.address for e in entries}
    for address, why in sorted(plan.not_checked.items()):
        if address not in seen:
            entries.append(DriftEntry(address, "", DriftStatus.NOT_CHECKED, f"not checked: {why}"))
    entries.sort(key=lambda e: (STATUS_ORDER[e.status], e.address))
    findings: list[HygieneFinding] = []
    for change in plan.changes:
        if change.address not in plan.not_checked:
            findings.extend(kinds[change.kind].findings(change))
    findings.sort(key=lambda f: (f.address, f.rule, f.key or ""))
    notes: list[str] = []
    desired = [c for c in plan.changes if c.desired is not None]
    if desired and not any(r.owned for r in live.values()):
        notes.append(f"nothing owned by stack {plan.stack} was found: the manifest looks never applied to "
                     f"{plan.account}/{plan.region}, or everything was deleted")
    unchecked = sum(1 for e in entries if e.status is DriftStatus.NOT_CHECKED)
    if unchecked:
        notes.append(f"{unchecked} address(es) were not checked: drift there is unknown")
    return DriftReport(plan.stack, plan.region, plan.account, plan.manifest_sha256, plan.live_sha256,
                       tuple(entries), tuple(findings), tuple(notes))
