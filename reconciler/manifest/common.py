"""Helpers more than one section uses: ownership tags, policy references, duplicate names.

Why here: each section module imports this one and no section imports another,
so a helper two sections share lives here, once, below them all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.errors import Problem
from reconciler.manifest.loader import Path, Source
from reconciler.manifest.model import Manifest
from reconciler.ownership import ADDRESS_TAG, PROTECT_TAG, STACK_TAG


def ownership_tags(manifest: Manifest, address: str, name: str,
                   extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags every created resource carries: manifest tags, its own, Name, stack, address."""
    tags = dict(manifest.data.get("tags", {}))
    tags.update(extra or {})
    tags["Name"] = name
    tags[STACK_TAG] = manifest.stack
    tags[ADDRESS_TAG] = address
    return tags


def protected_tags(manifest: Manifest, address: str, name: str, extra: Mapping[str, str] | None,
                   protect: bool) -> dict[str, str]:
    """`ownership_tags` plus `reconciler:protect`, kept on the resource so a deletion is refused even once it
    leaves the manifest; always written ("false" too), so removing `protect` from the manifest lifts it again."""
    tags = ownership_tags(manifest, address, name, extra)
    tags[PROTECT_TAG] = "true" if protect else "false"
    return tags


def policy_document(policies: Mapping[str, Any], ref: Mapping[str, Any]) -> Any:
    """The document a policy reference stands for: the parsed `{file: path}`, or the inline one as written.

    A file that failed its check is absent from `policies` (None here); expansion
    never sees one, since such a manifest does not load.
    """
    return policies.get(ref["file"]) if "file" in ref else dict(ref)


def duplicates(items: list[dict[str, Any]], key: str, base: Path, source: Source, what: str,
               fold: bool = False) -> Iterator[Problem]:
    """A problem at each item whose `key` repeats an earlier one's (case-folded with `fold`)."""
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        name = str(item.get(key, ""))
        probe = name.lower() if fold else name
        if probe in seen:
            yield source.problem((*base, index, key), f"duplicate {what} {name!r} (also at index {seen[probe]})",
                                 f"{what} names must be unique" + (" ignoring case" if fold else ""))
        else:
            seen[probe] = index
