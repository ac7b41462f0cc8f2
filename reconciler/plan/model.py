"""Values of the planning layer: live resources, attribute changes, notes, changes, plans.

All are frozen and hold plain JSON data, so a Plan round-trips through the plan
file byte for byte and two plans built from the same inputs are equal.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.canonical import canonical_json
from reconciler.manifest.model import DesiredResource


class Action(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    # an existing resource without the stack tag taken over (`--adopt`): apply runs the kind's
    # `update`, which writes the stack tags and converges declared differences; never a re-creation
    ADOPT = "adopt"
    NOOP = "noop"


# Deletions first: a reviewer must see what will be destroyed before anything else.
ACTION_ORDER = {Action.DELETE: 0, Action.REPLACE: 1, Action.UPDATE: 2, Action.ADOPT: 3, Action.CREATE: 4,
                Action.NOOP: 5}


class ReplaceOrder(enum.Enum):
    """How a kind's replacement runs as its two apply vertices.

    DELETE_FIRST (the default, as Terraform's): the old resource goes, then the new one
    is made; right when the two cannot coexist (a subnet's CIDR, a NAT's Elastic IP, a
    name AWS keeps unique). CREATE_FIRST: the new one is made, the referrers move to it,
    then the old one goes; only for kinds whose create never finds the old resource.
    """

    DELETE_FIRST = "delete_first"
    CREATE_FIRST = "create_first"


# Observations that move with the clock or with use, not because anyone changed the
# resource (a key's age, when it was last used). They are left out of fingerprints, or a
# plan reviewed yesterday would be stale today; what they decide (a rotation falling due)
# still changes the plan's changes, which `apply --plan` compares too.
VOLATILE_ATTRS = frozenset({"age_days", "last_used_days", "retired_days", "handover_days", "today"})


def _without_volatile(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_volatile(v) for k, v in value.items() if k not in VOLATILE_ATTRS}
    if isinstance(value, list | tuple):
        return [_without_volatile(v) for v in value]
    return value


class NoteKind(enum.Enum):
    """What a note is about; renderers group and colour by it (never by the wording)."""

    SECURITY = "security"  # widens access: open ingress, wide actions, public addresses
    COST = "cost"  # adds or removes something billed by the hour or month
    INFO = "info"  # anything else a reviewer should read (waiting rotations, hand-made keys)
    # a dated step a later apply takes (a hand-made key's deactivation, its deletion): shown even
    # on an in-sync address, so nothing the tool will do to it is silent
    SCHEDULED = "scheduled"


@dataclass(frozen=True)
class Note:
    """A warning shown with one change. Invariant: `text` never holds a secret and has no category prefix.

    A priced cost note also carries its number: `monthly_usd` is the change in the monthly
    bill the change makes (positive for what is added, negative for what is removed), and
    `prices_as_of` the date of the price table it came from, so the plan totals the delta
    once and names the date once instead of in every note's text.
    """

    kind: NoteKind
    text: str
    monthly_usd: float | None = None
    prices_as_of: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value, "text": self.text}
        if self.monthly_usd is not None:
            out["monthly_usd"] = round(self.monthly_usd, 2)
        if self.prices_as_of is not None:
            out["prices_as_of"] = self.prices_as_of
        return out


def security(text: str) -> Note:
    return Note(NoteKind.SECURITY, text)


def cost(text: str, monthly_usd: float | None = None, prices_as_of: str | None = None) -> Note:
    return Note(NoteKind.COST, text, monthly_usd, prices_as_of)


def info(text: str) -> Note:
    return Note(NoteKind.INFO, text)


def scheduled(text: str) -> Note:
    return Note(NoteKind.SCHEDULED, text)


@dataclass(frozen=True)
class LiveResource:
    """What the account holds at one address.

    Invariants: `attrs` is normalised to the shape of the desired spec (references
    to other resources as addresses, sets as sorted lists); `owned` is False for a
    resource found under a manifest name without the stack tag (never deleted,
    adopted only with --adopt); `owner` names the other stack whose tags it carries
    (None when nobody's): such a resource is never adopted, not even with --adopt;
    `unmanaged` lists things added by hand inside the resource that the manifest
    cannot express (a console password, say); `protect` is the `protect: true` the
    account records on the resource (a tag, an IAM group's path): its deletion is
    refused, and so is the deletion of its parts; `private` is apply-only data (ids
    apply needs and the manifest never declares, as Terraform's PlannedPrivate): it is
    never diffed, never rendered, never in the plan file and not in the fingerprint,
    so it cannot make a plan stale by itself (apply always acts on a fresh read);
    `outputs` are the values `reconcile output` hands to the next tool (id, arn, uri,
    public_ip, ...; plain strings, never a secret): like `private`, never diffed, never
    in the plan file and not in the fingerprint.
    """

    address: str
    kind: str
    id: str
    attrs: Mapping[str, Any]
    owned: bool = True
    depends_on: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()
    owner: str | None = None
    protect: bool = False
    private: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict, compare=False)  # shown, never compared

    def fingerprint(self) -> str:
        """sha256 of what the account holds here, without clock-derived observations (VOLATILE_ATTRS)
        and without `private` or `outputs`; protection is in it (it decides what apply may do)."""
        body = {"id": self.id, "attrs": _without_volatile(self.attrs), "owned": self.owned,
                "unmanaged": list(self.unmanaged)}
        if self.owner is not None:  # optional keys only when set: fewer fingerprints move
            body["owner"] = self.owner
        if self.protect:
            body["protect"] = True
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()


@dataclass(frozen=True)
class AttrChange:
    """One attribute that differs; `path` is dotted from the spec root."""

    path: str
    before: Any
    after: Any
    forces_replacement: bool = False
    sensitive: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "before": self.before, "after": self.after}
        if self.sensitive:
            out["before"] = out["after"] = "(sensitive)"
        if self.forces_replacement:
            out["forces_replacement"] = True
        return out


@dataclass(frozen=True)
class Change:
    """What apply will do at one address, and why.

    Invariants: `desired` is None only for DELETE; `live` is None only for CREATE
    (read them through `want` / `have`, which say so when it is broken);
    `blocked` names why apply must refuse this change (protect, conflict) and a
    plan with any blocked change is never applied; `notes` are warnings shown with
    the change (security widening, cost, hygiene), never secrets.
    """

    address: str
    kind: str
    action: Action
    reason: str
    diff: tuple[AttrChange, ...] = ()
    depends_on: tuple[str, ...] = ()
    desired: DesiredResource | None = None
    live: LiveResource | None = None
    notes: tuple[Note, ...] = ()
    blocked: str | None = None

    @property
    def want(self) -> DesiredResource:
        """The desired resource; every action but DELETE has one."""
        if self.desired is None:
            raise ValueError(f"{self.address}: a {self.action.value} change has no desired resource")
        return self.desired

    @property
    def have(self) -> LiveResource:
        """The live resource; every action but CREATE has one."""
        if self.live is None:
            raise ValueError(f"{self.address}: a {self.action.value} change has no live resource")
        return self.live


class Origin(enum.Enum):
    """How one diff entry of an existing resource came about, for drift."""

    ADDED = "added"  # something added by hand that the manifest does not declare
    MODIFIED = "modified"  # a declared value changed by hand
    SCHEDULED = "scheduled"  # time caused it, not a person (a rotation due, a grace period over)


@dataclass(frozen=True)
class HygieneFinding:
    """One hygiene problem at one address; `key` names the thing it is about (an access key), if one."""

    address: str
    rule: str
    message: str
    reference: str
    key: str | None = None


@dataclass(frozen=True)
class Plan:
    """The whole plan for one stack; `changes` are sorted deletions first, then by address.

    `destroy`, `targets` and `replace` are how it was asked for (`plan --destroy`, `--target`,
    `--replace` patterns): the plan file records them, so `apply --plan` plans the same way
    before it compares. With `targets`, `changes` hold only what they select.
    """

    stack: str
    region: str
    account: str
    manifest_sha256: str
    live_sha256: str
    changes: tuple[Change, ...]
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    not_checked: Mapping[str, str] = field(default_factory=dict)
    destroy: bool = False
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()

    @property
    def pending(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is not Action.NOOP)

    @property
    def blocked(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.blocked)

    def summary(self) -> dict[str, int]:
        """Counts by action; a blocked change counts under `blocked` only (apply refuses it, so it
        neither creates nor changes anything), whatever its action."""
        counts = {a.value: 0 for a in (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE, Action.ADOPT)}
        counts["unchanged"] = 0
        counts["blocked"] = 0
        for change in self.changes:
            key = "blocked" if change.blocked else "unchanged" if change.action is Action.NOOP else change.action.value
            counts[key] += 1
        return counts

    def monthly_cost(self) -> tuple[float, str | None] | None:
        """The plan's monthly cost delta from its priced notes (creates add, deletes subtract; a
        blocked change is not applied, so it is not counted) and the price table's date; None when
        nothing priced changes."""
        priced = [n for c in self.pending if not c.blocked for n in c.notes if n.monthly_usd is not None]
        if not priced:
            return None
        dates = sorted({n.prices_as_of for n in priced if n.prices_as_of})
        return sum(n.monthly_usd or 0.0 for n in priced), (dates[-1] if dates else None)


class Outcome(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Result:
    """What apply did with one pending change (both halves of a replacement in one Result).

    Invariants: one Result per pending change, in plan order; `message` is empty when DONE
    and never holds an AWS response body or a secret; a replacement is FAILED if either half
    failed, SKIPPED if neither failed but one did not run; `cause` names, for a change SKIPPED
    because something it waited for failed, the FAILED addresses at the root of that (never a
    skipped one in between), so a summary can say what to fix.
    """

    address: str
    action: Action
    outcome: Outcome
    message: str = ""
    seconds: float = 0.0
    cause: tuple[str, ...] = ()


