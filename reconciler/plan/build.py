"""`build_plan`: the pure heart. Same inputs, same Plan, byte for byte."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.canonical import canonical_json
from reconciler.manifest.model import DesiredResource
from reconciler.plan.kind import KindPlanner
from reconciler.plan.model import ACTION_ORDER, Action, AttrChange, Change, LiveResource, NoteKind, Plan
from reconciler.plan.security import security_notes
from reconciler.plan.select import requested_replacements, select_targets


def live_digest(live: Mapping[str, LiveResource], not_checked: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """Digest of everything read, plus each address's own fingerprint."""
    prints = {address: live[address].fingerprint() for address in sorted(live)}
    body = canonical_json({"live": prints, "not_checked": dict(sorted(not_checked.items()))})
    return hashlib.sha256(body.encode()).hexdigest(), prints


def _protected_owner(address: str, live: Mapping[str, LiveResource], wanted: set[str]) -> str | None:
    """The protected resource that `address` is a part of and that leaves too, if any.

    Addresses nest by their dots (`a.b.c` is part of `a.b`: a user's keys of the user, a VPC's
    NAT gateways of the VPC). A protected resource survives whole: when it leaves the manifest or the stack
    is destroyed, its deletion is refused, and so is the deletion of every part under it (a user's
    keys and their stored secret, a VPC's subnets, gateways and route tables), so that no apply,
    whatever it selects, can hollow it out. Parts of a protected resource that stays in the
    manifest are managed as usual.
    """
    parts = address.split(".")
    for end in range(len(parts) - 1, 0, -1):
        owner = live.get(".".join(parts[:end]))
        if owner is not None and owner.owned and owner.address not in wanted and owner.protect:
            return owner.address
    return None


def _refers(value: Any, address: str) -> bool:
    """Whether a desired attribute's value names `address` (itself, or in a list or as a key)."""
    if value == address:
        return True
    if isinstance(value, list | tuple):
        return address in value
    return isinstance(value, Mapping) and address in value


def _follow_replacements(changes: list[Change], kinds: Mapping[str, KindPlanner]) -> list[Change]:
    """What depends on a REPLACEd address follows it: re-pointed in place, or replaced too.

    The replaced resource keeps its address but gets a new AWS id; what refers to it (a
    route table routing to a NAT, associating a subnet) must be re-pointed. Its kind's
    `update` re-resolves every reference through the ids known at apply time, and the
    apply graph runs it after the replacement's create. This is why no kind re-points
    referrers itself. Where the reference is one of the follower's `replace_on` attributes
    (a NAT gateway's subnet, a subnet's VPC), nothing can re-point it in place: the
    follower is replaced too, and what follows *it* is followed in turn (to a fixpoint).
    A blocked replacement is not followed (it will not happen), and a blocked change stays
    as it is (apply refuses it anyway); a protected follower that would be replaced is blocked.
    """
    by_address = {c.address: c for c in changes}
    todo = [c.address for c in changes if c.action is Action.REPLACE and c.blocked is None]
    replaced = set(todo)
    while todo:
        source = todo.pop()
        for address, change in by_address.items():
            if source not in change.depends_on or change.blocked is not None or change.desired is None:
                continue
            if change.action not in (Action.NOOP, Action.UPDATE):
                continue
            kind = kinds[change.kind]
            forced = sorted(k for k in kind.replace_on if _refers(change.desired.spec.get(k), source))
            if forced:
                blocked = None
                if change.desired.protect or (change.live is not None and change.live.protect):
                    blocked = (f"protect: true refuses replacement, which following the replacement of {source} "
                               "needs; remove protect to allow it")
                blocked = blocked or kind.blocked(change.desired, change.live, Action.REPLACE)
                by_address[address] = dataclasses.replace(
                    change, action=Action.REPLACE, blocked=blocked,
                    reason=f"follows the replacement of {source} ({', '.join(forced)} cannot change in place)")
                if blocked is None:
                    replaced.add(address)
                    todo.append(address)
            elif change.action is Action.NOOP:
                by_address[address] = dataclasses.replace(change, action=Action.UPDATE,
                                                          reason=f"follows the replacement of {source}")
    out = []
    for change in changes:
        change = by_address[change.address]
        if change.action is Action.UPDATE and change.reason.startswith("follows the replacement of "):
            follows = sorted(replaced.intersection(change.depends_on))
            change = dataclasses.replace(change, reason="follows the replacement of " + ", ".join(follows))
        out.append(change)
    return out


def _a(kind: str) -> str:
    """The kind with its article (`an` before a vowel), as the name is read aloud."""
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _not_checked(why: str) -> str:
    return f"not checked ({why}): apply refuses to change what it could not read; fix the read and plan again"


def build_plan(
    *,
    stack: str,
    region: str,
    account: str,
    manifest_sha256: str,
    desired: Sequence[DesiredResource],
    live: Mapping[str, LiveResource],
    kinds: Mapping[str, KindPlanner],
    not_checked: Mapping[str, str] | None = None,
    adopt: bool = False,
    destroy: bool = False,
    targets: Sequence[str] = (),
    replace: Sequence[str] = (),
) -> Plan:
    """Compare desired with live and say, per address, what apply must do.

    `destroy`: `desired` is empty because everything the stack owns is to go (the reason says
    "destroy requested"). `replace` (patterns, `--replace`): each existing, declared address
    they name is REPLACEd even without a diff ("replacement requested"), unless it is not
    owned or protected (then blocked, saying so). `targets` (patterns, `--target`): the plan
    holds only the changes they select and what those need (`plan.select.select_targets`),
    and the replacements `replace` forces.
    A pattern that selects nothing raises UsageError (exit 3).
    """
    not_checked = dict(not_checked or {})
    changes: list[Change] = []
    wanted = {d.address for d in desired}
    requested = requested_replacements(replace, wanted, live, wanted & set(live)) if replace else set()
    for item in desired:
        kind = kinds[item.kind]
        found = live.get(item.address)
        if item.address in not_checked and found is not None:
            # what could not be read completely is never diffed: no change is planned on a partial picture
            changes.append(Change(item.address, item.kind, Action.NOOP, f"not checked: {not_checked[item.address]}",
                                  (), item.depends_on, item, found, blocked=_not_checked(not_checked[item.address])))
            continue
        if found is None:
            action, reason = Action.CREATE, "missing"
            diff: tuple[AttrChange, ...] = tuple(AttrChange(k, None, v) for k, v in sorted(item.spec.items())
                                                 if v is not None)
            if item.address in not_checked:
                reason = f"not checked: {not_checked[item.address]}"
        elif not found.owned and found.owner is not None:
            # adopting it would take another stack's resource (and its parts) away from that stack
            changes.append(Change(item.address, item.kind, Action.CREATE, f"owned by stack {found.owner}",
                                  (), item.depends_on, item, found,
                                  blocked=f"{found.id} belongs to stack {found.owner}; --adopt never takes another "
                                          "stack's resource: rename it in the manifest, or remove it from that "
                                          "stack's manifest first"))
            continue
        elif not found.owned and not adopt:
            changes.append(Change(item.address, item.kind, Action.CREATE, "exists without the stack tag",
                                  (), item.depends_on, item, found,
                                  blocked=f"{found.id} already exists and is not owned by stack {stack}; "
                                          "rename it in the manifest, or re-run with --adopt to take it over"))
            continue
        else:
            diff = tuple(kind.diff(item, found))
            if not found.owned:
                # the tags change by definition (the stack tags are added); the reason names what else does
                changed = sorted({c.path.split(".")[0] for c in diff} - {"tags"})
                action, reason = Action.ADOPT, "adopt: add the stack tags" + (
                    "; change " + ", ".join(changed) if changed else "")
            elif any(c.forces_replacement for c in diff):
                forced = sorted({c.path.split(".")[0] for c in diff if c.forces_replacement})
                action, reason = Action.REPLACE, "changed " + ", ".join(forced)
            elif diff:
                action, reason = Action.UPDATE, "changed " + ", ".join(sorted({c.path.split(".")[0] for c in diff}))
            else:
                action, reason = Action.NOOP, "in sync"
        blocked = _not_checked(not_checked[item.address]) if item.address in not_checked else None
        if item.address in requested and found is not None:
            if action is Action.ADOPT:
                blocked = (f"--replace: {found.id} is not owned by stack {stack} yet; adopting never re-creates "
                           "what exists: adopt it first, then replace it in a later apply")
            else:
                reason = "replacement requested" if action is not Action.REPLACE else f"{reason}; replacement requested"
                action = Action.REPLACE
                if not kind.replace_on:
                    # nothing about such a kind forces a new one, so it has no tested replacement path (and its
                    # deletion takes what hangs on it: a user's keys, a group's members): refused, not improvised
                    blocked = (f"--replace: {_a(item.kind)} is never replaced (nothing about it forces a new one); "
                               "change it in place, or remove it from the manifest, apply, and add it back")
        if action is Action.REPLACE and (item.protect or (found is not None and found.protect)):
            blocked = "protect: true refuses replacement; remove protect to allow it"
        if action is Action.ADOPT and found is not None and any(c.forces_replacement for c in diff):
            # adopting takes over what exists; re-creating it would lose what it holds (data, ids, a key)
            forced = sorted({c.path.split(".")[0] for c in diff if c.forces_replacement})
            blocked = (f"adopting never re-creates what exists, and {found.id} differs from the manifest in "
                       f"{', '.join(forced)}, which forces a replacement: make the manifest match the live "
                       "value (reconcile export shows it), adopt, then change it in a later apply")
        blocked = blocked or kind.blocked(item, found, action)
        notes = tuple(kind.notes(item, found, action))
        if not any(n.kind is NoteKind.SECURITY for n in notes):  # the kind's own flags win; never say it twice
            notes += tuple(security_notes(diff))
        changes.append(Change(item.address, item.kind, action, reason, diff, item.depends_on, item, found,
                              notes, blocked))
    gone = "destroy requested" if destroy else "not in the manifest"
    for address in sorted(set(live) - wanted):
        found = live[address]
        if not found.owned or address in not_checked:  # never delete what could not be judged
            continue
        kind = kinds[found.kind]
        blocked = None
        owner = _protected_owner(address, live, wanted)
        if found.protect:
            blocked = ("the resource is protected (protect: true is recorded on it: the reconciler:protect tag, "
                       "or an IAM group's /protected/ path); to delete it, add it back with protect: false, "
                       "apply, then remove it")
        elif owner is not None:
            blocked = f"part of {owner}, which is protected and is not deleted; remove its protection first"
        blocked = blocked or kind.blocked(None, found, Action.DELETE)
        changes.append(Change(address, found.kind, Action.DELETE, gone, (), found.depends_on,
                              None, found, tuple(kind.notes(None, found, Action.DELETE)), blocked))
    changes = _follow_replacements(changes, kinds)
    changes.sort(key=lambda c: (ACTION_ORDER[c.action], c.address))
    selected = select_targets(changes, targets, also=requested) if targets else tuple(changes)
    live_sha, prints = live_digest(live, not_checked)
    return Plan(stack, region, account, manifest_sha256, live_sha, selected, prints, not_checked,
                destroy=destroy, targets=tuple(targets), replace=tuple(replace))
