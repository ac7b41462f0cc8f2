"""Expansion: a validated Manifest -> the flat list of desired resources.

Pure: no AWS, no clock. Each section (`manifest/sections/`) expands its own part,
applying SPEC.md's defaults there and nowhere else; this module runs them in
registry order and holds what is true of the whole: every stack-tagged resource
says its kind, every resource says which of its values are bookkeeping (`detail`),
addresses are unique, dependencies resolve.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from typing import Any

from reconciler.manifest.model import DesiredResource, Manifest
from reconciler.manifest.sections import SECTIONS
from reconciler.ownership import KIND_TAG, STACK_TAG

# The one place that says what of a desired spec is the tool's bookkeeping rather than what
# the manifest declares (DesiredResource.detail): a plan shows these on a create only with -v
# (and always in JSON). References copied from a resource's parents:
DERIVED_KEYS = frozenset({"vpc", "vpc_cidr", "subnet_cidr"})
# spec keys a kind derives from its address or its parent (an access key's user, an image's
# repository and tag, the digest of its build inputs, which the push note names)
DERIVED_BY_KIND = {"iam.access_key": frozenset({"user"}),
                   "ecr.image": frozenset({"repository", "tag", "inputs"})}
OWNERSHIP_PREFIX = "reconciler:"
OWNERSHIP_PATH = "/reconciler/"  # an IAM group's path says its stack (ownership.py)


def _with_kind_tag(resource: DesiredResource) -> DesiredResource:
    """Every resource that carries the stack tag also says its kind (one place, so no kind forgets it)."""
    tags = resource.spec.get("tags")
    if not isinstance(tags, dict) or STACK_TAG not in tags:
        return resource
    return dataclasses.replace(resource, spec={**resource.spec, "tags": {**tags, KIND_TAG: resource.kind}})


def bookkeeping(resource: DesiredResource, manifest: Manifest) -> frozenset[str]:
    """The dotted paths of `resource.spec` that are bookkeeping (see DesiredResource.detail).

    Ownership tags, tags inherited unchanged from the manifest's top-level `tags`, the
    `Name` tag (always the one expansion derives), references and values copied from a
    parent (`vpc`, `vpc_cidr`, `subnet_cidr`, a NAT's `az` which its subnet decides, a
    subnet's `az`/`cidr` under a table's or endpoint's `subnets`, whose addresses stay the
    signal), defaults AWS fills in (a region's `network_border_group`, a rule's empty
    description) and an IAM group's ownership `path`.
    """
    spec = resource.spec
    out: set[str] = {key for key in DERIVED_KEYS | DERIVED_BY_KIND.get(resource.kind, frozenset()) if key in spec}
    stack_tags: Mapping[str, Any] = manifest.data.get("tags", {})
    tags = spec.get("tags")
    if isinstance(tags, Mapping):
        out.update(f"tags.{key}" for key, value in tags.items()
                   if key == "Name" or str(key).startswith(OWNERSHIP_PREFIX)
                   or (key in stack_tags and stack_tags[key] == value))
    if "subnet" in spec and "az" in spec:
        out.add("az")
    if spec.get("network_border_group") == manifest.region:
        out.add("network_border_group")
    path = spec.get("path")
    if resource.kind == "iam.group" and isinstance(path, str) and path.startswith(OWNERSHIP_PATH):
        out.add("path")
    placed = spec.get("subnets")
    if isinstance(placed, Mapping):
        out.update(f"subnets.{address}.{key}" for address, where in placed.items() if isinstance(where, Mapping)
                   for key in where if key in ("az", "cidr"))
    for direction in ("ingress", "egress"):
        rules = spec.get(direction)
        if isinstance(rules, Mapping):
            out.update(f"{direction}.{label}.description" for label, rule in rules.items()
                       if isinstance(rule, Mapping) and rule.get("description") == "")
    return frozenset(out)


def expand(manifest: Manifest) -> list[DesiredResource]:
    """Every desired resource, sorted by address; addresses are unique, deps resolve."""
    resources = [_with_kind_tag(r) for section in SECTIONS for r in section.expand(manifest)]
    resources = [dataclasses.replace(r, detail=r.detail | bookkeeping(r, manifest)) for r in resources]
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
