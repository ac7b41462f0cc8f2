"""What `reconcile output` shows: one row per address of the manifest. Plain data.

Here, not in render/, because engine/outputs.py fills it from a run and render/outputs.py
prints it, and engine may not import render (DESIGN.md's layers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OutputRow:
    """One address: its outputs, or None when nothing exists there yet.

    `managed` is False for a same-named resource the stack does not own (found, not adopted):
    shown, marked, and left out of env (a script must not pick up someone else's resource);
    `not_read` says why the address was not read at all (its values are then unknown, not absent).
    """

    address: str
    kind: str
    outputs: Mapping[str, str] | None
    managed: bool = True
    not_read: str | None = None


@dataclass(frozen=True)
class OutputReport:
    stack: str
    region: str
    account: str
    rows: Sequence[OutputRow] = field(default_factory=tuple)
