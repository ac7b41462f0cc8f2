"""The ownership vocabulary (ground floor): how a resource says which stack, address and kind it is.

There is no state file: ownership is written on the resources themselves. Tagged
resources carry `reconciler:stack`, `reconciler:address`, `reconciler:kind` and
`reconciler:protect`; IAM groups, which take no tags, carry it in their path
(`/reconciler/<stack>/`, protected ones under `/reconciler/<stack>/protected/`).

`reconciler:kind` lets two kinds share one AWS type (SSM parameters, say) without
both claiming the same resource. Resources made before the tag existed lack it: a
read accepts its absence (`of_kind`), and the next apply adds it (it is in the desired
tags, so the plan shows it once, as a tag update).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

STACK_TAG = "reconciler:stack"
ADDRESS_TAG = "reconciler:address"
KIND_TAG = "reconciler:kind"
PROTECT_TAG = "reconciler:protect"
OWNERSHIP_TAGS = frozenset({STACK_TAG, ADDRESS_TAG, KIND_TAG, PROTECT_TAG})


def owned_by(tags: Mapping[str, str], stack: str) -> bool:
    return tags.get(STACK_TAG) == stack


def other_owner(tags: Mapping[str, str], stack: str) -> str | None:
    """The other stack named by the stack tag (never adopted), or None when it is ours or nobody's."""
    owner = tags.get(STACK_TAG)
    return owner if owner and owner != stack else None


def of_kind(tags: Mapping[str, str], kind: str) -> bool:
    """Whether a resource is this kind's: its kind tag says so, or it has none (made before the tag)."""
    return tags.get(KIND_TAG, kind) == kind


def protected(tags: Mapping[str, str]) -> bool:
    return tags.get(PROTECT_TAG) == "true"


def protect_value(protect: bool) -> str:
    """Always written ("false" too), so removing `protect` from the manifest lifts it again."""
    return "true" if protect else "false"


def group_path(stack: str, protect: bool = False) -> str:
    """The IAM path that makes a group the stack's (IAM groups take no tags).

    A protected group lives one level down, under `/reconciler/<stack>/protected/`: the path is
    the only thing an IAM group carries besides its name, and it stays on the group when the
    group leaves the manifest, so the protection outlives the manifest entry.
    """
    return f"/reconciler/{stack}/protected/" if protect else f"/reconciler/{stack}/"


def group_path_stack(path: str) -> str | None:
    """The stack whose group path this is (`/reconciler/<stack>/...`), or None."""
    parts = path.strip("/").split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == "reconciler" and parts[1] else None


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """`{k: v}` -> `[{"Key": k, "Value": v}]`, sorted for deterministic requests."""
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def tag_dict(tags: Sequence[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or ()}
