"""The one contract between the planner and a kind: what planning and drift ask of it.

Why here and not in `kinds/base.py`: the planner is pure and comes before the kinds,
so it names the contract it needs and the kinds implement it (`kinds.base.Kind`
does, with defaults: generic diff, no notes, never blocked, the generic drift rule,
no findings). `build_plan` and `build_drift` call these methods directly; nothing
is looked up by name, and no kind is named in `plan/`. The apply side of the
contract (read, create, update, delete, the replace order) is `kinds.base.Kind`'s.

Invariants every implementation keeps: every method is pure (no I/O, no clock: what
time decides the kind read into `LiveResource.attrs`) and deterministic; none
returns a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from reconciler.manifest.model import DesiredResource
from reconciler.plan.model import Action, AttrChange, Change, HygieneFinding, LiveResource, Note, Origin, ReplaceOrder


class KindPlanner(Protocol):
    """What planning and drift need from a kind."""

    @property
    def name(self) -> str: ...

    @property
    def replace_on(self) -> frozenset[str]:
        """Top-level spec keys whose change forces a replacement."""
        ...

    @property
    def replace_order(self) -> ReplaceOrder:
        """Whether a replacement deletes the old resource first (a name must be free) or creates first."""
        ...

    def diff(self, desired: DesiredResource, live: LiveResource) -> Sequence[AttrChange]:
        """What differs, comparing only what the manifest declares (never `live.private`)."""
        ...

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> Sequence[Note]:
        """Warnings shown with the change; a kind's own SECURITY notes replace the generic ones."""
        ...

    def blocked(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> str | None:
        """Why apply must refuse this change, or None; a plan with any blocked change applies nothing."""
        ...

    def classify(self, change: Change, attr: AttrChange) -> Origin:
        """How one diff entry of an existing resource came about (drift)."""
        ...

    def describe_added(self, change: Change, attr: AttrChange) -> Sequence[str]:
        """How an ADDED diff entry is named in the drift entry's `unmanaged` list ([] when the
        kind's `LiveResource.unmanaged` already names it)."""
        ...

    def findings(self, change: Change) -> Sequence[HygieneFinding]:
        """Hygiene findings (rules that age, not drift) for one planned change."""
        ...
