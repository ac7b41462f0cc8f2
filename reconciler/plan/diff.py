"""Comparison by meaning: only declared attributes, policies as sets of statements.

`diff_values` compares a desired spec with normalised live attributes:
- a key absent from the desired spec is never compared (AWS defaults never diff);
- under `tags` only the declared tag keys are compared (extra tags are not ours);
- any mapping that has a `Statement` key is a policy document: statements compare
  as a set after canonicalisation (string vs one-item list, order, principals);
- other mappings compare key by key over both sides (inline policy names, say).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.canonical import as_list, canonical_json, canonical_statement
from reconciler.plan.model import AttrChange

PARTIAL_KEYS = frozenset({"tags"})


def _label(statement: Mapping[str, Any]) -> str:
    sid = statement.get("Sid")
    if sid:
        return str(sid)
    actions = ",".join(as_list(statement.get("Action", statement.get("NotAction", []))))
    return f"{statement.get('Effect', '?')}:{actions}"


def _policy_diff(path: str, desired: Mapping[str, Any], live: Any) -> Iterator[AttrChange]:
    if not isinstance(live, Mapping):
        yield AttrChange(path, live, dict(desired))
        return
    if desired.get("Version", "2008-10-17") != live.get("Version", "2008-10-17"):
        yield AttrChange(f"{path}.Version", live.get("Version"), desired.get("Version"))
    want = {canonical_json(canonical_statement(s)): s for s in as_list(desired.get("Statement", []))}
    have = {canonical_json(canonical_statement(s)): s for s in as_list(live.get("Statement", []))}
    for key in sorted(set(have) - set(want)):
        yield AttrChange(f"{path}.Statement[{_label(have[key])}]", have[key], None)
    for key in sorted(set(want) - set(have)):
        yield AttrChange(f"{path}.Statement[{_label(want[key])}]", None, want[key])


def diff_values(desired: Any, live: Any, path: str = "") -> Iterator[AttrChange]:
    """Yield the attribute changes that turn `live` into `desired`."""
    if isinstance(desired, Mapping) and "Statement" in desired:
        yield from _policy_diff(path, desired, live)
        return
    if isinstance(desired, Mapping):
        live_map: Mapping[str, Any] = live if isinstance(live, Mapping) else {}
        partial = path.rsplit(".", 1)[-1] in PARTIAL_KEYS
        keys = set(desired) if partial else set(desired) | set(live_map)
        if not isinstance(live, Mapping) and live is not None and not desired:
            yield AttrChange(path, live, dict(desired))
            return
        for key in sorted(keys):
            child = f"{path}.{key}" if path else str(key)
            if key not in desired:
                yield AttrChange(child, live_map[key], None)
            elif key not in live_map:
                if desired[key] is not None:
                    yield AttrChange(child, None, desired[key])
            else:
                yield from diff_values(desired[key], live_map[key], child)
        return
    if canonical_json(desired) != canonical_json(live):
        yield AttrChange(path, live, desired)


def diff_spec(desired: Mapping[str, Any], live: Mapping[str, Any], replace_on: frozenset[str]) -> list[AttrChange]:
    """Top-level entry: only keys of `desired` are compared at the top level."""
    out: list[AttrChange] = []
    for key in sorted(desired):
        for change in diff_values(desired[key], live.get(key), key):
            if key in replace_on:
                change = AttrChange(change.path, change.before, change.after, forces_replacement=True)
            out.append(change)
    return out
