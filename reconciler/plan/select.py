"""Narrow operations on a plan: `--target` and `--replace` address patterns. Pure.

A pattern is an exact address or an `fnmatch` glob (`a.b.*`, `a.?.c`),
matched case-sensitively against the plan's addresses. A `--target` also selects the parts
under an address (`a.b` selects `a.b.c`), as a Terraform module target
selects the module's resources; a `--replace` names exactly what it matches.

Why the closure (`select_targets`): a targeted plan must still be one apply can run. What a
selected create or update needs that is not in sync yet comes with it (what a new resource is built on);
what depends on a selected deletion goes first, so it comes too (the parts of a deleted container);
a selected replacement brings both (the new one's dependencies, and the dependents that
follow it to its new id). Invariants: the selection is a subset of the plan's changes, in
the plan's order; it is closed under those two rules; it is the same for the same inputs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from reconciler.errors import UsageError
from reconciler.plan.model import Action, Change

_UP = (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.ADOPT)
_DOWN = (Action.DELETE, Action.REPLACE)


def pattern_matches(pattern: str, address: str, *, parts: bool = False) -> bool:
    """Whether `address` is `pattern` (an exact address or an fnmatch glob); with `parts`, also an
    address under one the pattern matches (dot-separated nesting)."""
    if fnmatchcase(address, pattern):
        return True
    if not parts:
        return False
    pieces = address.split(".")
    return any(fnmatchcase(".".join(pieces[:end]), pattern) for end in range(1, len(pieces)))


def near(pattern: str, known: Iterable[str], limit: int = 6) -> list[str]:
    """Known addresses that look like `pattern`: close spellings, else those sharing its leading parts."""
    names = sorted(set(known))
    close = difflib.get_close_matches(pattern, names, n=limit, cutoff=0.6)
    if close:
        return close
    pieces = pattern.split(".")
    for end in range(len(pieces) - 1, 0, -1):
        prefix = ".".join(pieces[:end]) + "."
        shared = [n for n in names if n.startswith(prefix)]
        if shared:
            return shared[:limit]
    return names[:limit]


def unknown(option: str, pattern: str, known: Iterable[str], why: str = "matches no address") -> UsageError:
    """The usage error (exit 3) for a pattern that selects nothing, naming the addresses near it."""
    names = near(pattern, known)
    hint = f"; known addresses near it: {', '.join(names)}" if names else "; the plan has no addresses"
    return UsageError(f"{option} {pattern}: {why}{hint}; give one of those "
                      "(`reconcile validate -v` lists the manifest's)")


def select_targets(changes: Sequence[Change], targets: Sequence[str],
                   also: Iterable[str] = ()) -> tuple[Change, ...]:
    """The changes `targets` select, plus what they need (see the module docstring), in plan order.

    `also`: exact addresses selected as well (what `--replace` forces: asked for by name, it is
    never dropped by a target that misses it). Raises UsageError (exit 3) for a target that
    matches no address of the plan.
    """
    by_address = {c.address: c for c in changes}
    chosen: set[str] = {a for a in also if a in by_address}
    for target in targets:
        matched = {a for a in by_address if pattern_matches(target, a, parts=True)}
        if not matched:
            raise unknown("--target", target, by_address)
        chosen |= matched
    dependents: dict[str, set[str]] = {}
    for change in changes:
        for dep in {*change.depends_on, *(change.live.depends_on if change.live is not None else ())}:
            dependents.setdefault(dep, set()).add(change.address)
    todo = sorted(chosen)
    while todo:
        change = by_address[todo.pop()]
        needed: set[str] = set()
        if change.action in _UP:  # what it is built on, when that is not in sync yet
            needed |= {d for d in change.depends_on if d in by_address and by_address[d].action is not Action.NOOP}
        if change.action in _DOWN:  # what stands on it and moves or goes with it
            needed |= {d for d in dependents.get(change.address, ()) if by_address[d].action is not Action.NOOP}
        for address in sorted(needed - chosen):
            chosen.add(address)
            todo.append(address)
    return tuple(c for c in changes if c.address in chosen)


def requested_replacements(patterns: Sequence[str], desired: Iterable[str], live: Iterable[str],
                           existing: Iterable[str]) -> set[str]:
    """The addresses `--replace` patterns name: declared in the manifest and existing in the account.

    `desired`: the manifest's addresses; `live`: every address read; `existing`: the desired
    addresses found live. A pattern that names only what the manifest no longer declares, only
    what does not exist yet, or nothing at all is a usage error (exit 3) saying which.
    """
    wanted, found, there = sorted(set(desired)), set(existing), sorted(set(live))
    out: set[str] = set()
    for pattern in patterns:
        declared = {a for a in wanted if pattern_matches(pattern, a)}
        if not declared:
            gone = [a for a in there if pattern_matches(pattern, a)]
            if gone:
                raise UsageError(f"--replace {pattern}: {', '.join(gone)} is not in the manifest, so apply deletes "
                                 "it; only a declared resource can be replaced: drop this --replace")
            raise unknown("--replace", pattern, [*wanted, *there])
        live_ones = declared & found
        if not live_ones:
            raise UsageError(f"--replace {pattern}: {', '.join(sorted(declared))} does not exist in the account "
                             "yet; apply creates it, there is nothing to replace: drop this --replace")
        out |= live_ones
    return out
