"""Expansion: a validated Manifest -> the flat list of desired resources.

Pure: no AWS, no clock. Each section (`manifest/sections/`) expands its own part,
applying SPEC.md's defaults there and nowhere else; this module runs them in
registry order and holds what is true of the whole: every stack-tagged resource
says its kind, addresses are unique, dependencies resolve.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from reconciler.manifest.model import DesiredResource, Manifest
from reconciler.manifest.sections import SECTIONS
from reconciler.ownership import KIND_TAG, STACK_TAG


def _with_kind_tag(resource: DesiredResource) -> DesiredResource:
    """Every resource that carries the stack tag also says its kind (one place, so no kind forgets it)."""
    tags = resource.spec.get("tags")
    if not isinstance(tags, dict) or STACK_TAG not in tags:
        return resource
    return dataclasses.replace(resource, spec={**resource.spec, "tags": {**tags, KIND_TAG: resource.kind}})


def expand(manifest: Manifest) -> list[DesiredResource]:
    """Every desired resource, sorted by address; addresses are unique, deps resolve."""
    resources = [_with_kind_tag(r) for section in SECTIONS for r in section.expand(manifest)]
    resources.sort(key=lambda r: r.address)
    addresses = [r.address for r in resources]
    if len(set(addresses)) != len(addresses):
        dupes = sorted(a for a, n in Counter(addresses).items() if n > 1)  # linear, even on a hostile manifest
        raise AssertionError(f"expansion produced duplicate addresses: {dupes}")
    known = set(addresses)
    for resource in resources:
        missing = [d for d in resource.depends_on if d not in known]
        if missing:
            raise AssertionError(f"{resource.address} depends on unknown {missing}")
    return resources
