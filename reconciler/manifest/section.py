"""The shape every manifest section has: what it expands, checks and finds.

Why a module of its own and not `sections/__init__.py`: the section modules
import this shape, and the package's `__init__` imports the section modules to
build the registry; keeping the shape here keeps that an arrow, not a circle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from reconciler.errors import Problem
from reconciler.manifest.loader import Path, Source
from reconciler.manifest.model import DesiredResource, Manifest

# (data, source, manifest directory, policies) -> problems; `policies` is filled by the policy-file check
Check = Callable[[dict[str, Any], Source, FsPath, dict[str, Any]], Iterator[Problem]]
# (rule id, path in the manifest, detail): a finding before its position and waiver are looked up
RawFinding = tuple[str, Path, str]


@dataclass(frozen=True)
class Rule:
    """A security rule: `id` is stable (`RC-<AREA>-<NNN>`, waivable by it), `severity` one of high/medium/low."""

    id: str
    severity: str  # "high" | "medium" | "low"
    title: str
    reference: str


def _no_findings(data: dict[str, Any], policies: dict[str, Any]) -> Iterator[RawFinding]:
    return iter(())


def _no_address(data: dict[str, Any], path: Path) -> str | None:
    return None


@dataclass(frozen=True)
class Section:
    """One top-level key of the manifest and everything the tool derives from it.

    Invariants: `key` is a top-level property of the manifest schema; `kinds` are
    exactly the kind names `expand` can produce (a registry test holds every kind
    of `reconciler.kinds` to exactly one section); `expand` runs only on a manifest
    that passed every check and is pure (no AWS, no clock; it may read the files
    the manifest names); `checks` runs only when the schema found nothing wrong
    under `key` or any key of `needs`, so it may rely on the schema's shape there;
    `findings` runs when `key` is schema-clean, reads `data` only (and the parsed
    policy files), and yields only ids of `rules`.
    """

    key: str
    kinds: tuple[str, ...]
    expand: Callable[[Manifest], list[DesiredResource]]
    checks: Check
    findings: Callable[[dict[str, Any], dict[str, Any]], Iterator[RawFinding]] = _no_findings
    rules: tuple[Rule, ...] = ()
    needs: tuple[str, ...] = ()  # other top-level keys whose schema shape `checks` relies on
    # the address of the resource a finding's path lies in (a waiver with `addresses` matches it);
    # called only on paths `findings` yielded, so on schema-clean data
    address_of: Callable[[dict[str, Any], Path], str | None] = _no_address

    @property
    def reads(self) -> tuple[str, ...]:
        """The top-level keys that must be schema-clean for `checks` to run."""
        return (self.key, *self.needs)
