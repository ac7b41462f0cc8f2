"""The validated manifest and the desired resources it expands into."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from reconciler.manifest.loader import Source
from reconciler.secret import Secret

# AWS's bounds for sts:AssumeRole (DurationSeconds, RoleSessionName): the schema holds the same numbers
DEFAULT_DURATION = 3600
SESSION_NAME_MAX = 64


@dataclass(frozen=True)
class AssumeRole:
    """The manifest's `assume_role:`: the role every command assumes before calling AWS.

    Invariants (the schema and `checks._assume_role` hold them before a Manifest exists):
    exactly one of `role_name` / `role_arn`; `role_name` only with the manifest's
    `account:`; a `role_arn` names `account:` when both are set, and the region's
    partition; `duration` in 900..43200. `external_id` is a Secret: its str/repr are
    masked, so no message, log or plan can show it. Turning a `role_name` into an ARN
    needs the region's partition: `engine.clients.role_arn_for` does it.
    """

    role_name: str | None = None
    role_arn: str | None = None
    external_id: Secret | None = None
    session_name: str | None = None
    duration: int = DEFAULT_DURATION


def default_session_name(stack: str) -> str:
    """`reconciler-<stack>`, cut to AWS's 64 characters (a stack name holds only allowed characters)."""
    return f"reconciler-{stack}"[:SESSION_NAME_MAX]


@dataclass(frozen=True)
class Manifest:
    """A manifest that passed schema and semantic checks.

    Invariants: `data` is exactly the YAML as written (no defaults filled in;
    expansion applies them); `sha256` is the digest of the file's bytes plus every
    policy file it references, so a changed policy file makes a saved plan stale;
    `policies` maps each referenced policy file (relative path as written) to its
    parsed JSON document.
    """

    path: FsPath
    data: Mapping[str, Any]
    source: Source
    sha256: str
    policies: Mapping[str, Any] = field(default_factory=dict)

    @property
    def stack(self) -> str:
        return str(self.data["stack"])

    @property
    def region(self) -> str:
        return str(self.data["region"])

    @property
    def account(self) -> str | None:
        value = self.data.get("account")
        return str(value) if value is not None else None

    @property
    def assume_role(self) -> AssumeRole | None:
        value = self.data.get("assume_role")
        if not isinstance(value, Mapping):
            return None
        external_id = value.get("external_id")
        return AssumeRole(role_name=value.get("role_name"), role_arn=value.get("role_arn"),
                          external_id=Secret(str(external_id)) if external_id is not None else None,
                          session_name=value.get("session_name"),
                          duration=int(value.get("duration", DEFAULT_DURATION)))

    @property
    def base_dir(self) -> FsPath:
        return self.path.parent


@dataclass(frozen=True)
class DesiredResource:
    """One resource the manifest asks for, flat and addressable.

    Invariants: `address` is unique in a manifest and stable across runs; `spec`
    holds only what the manifest declares or what is derived from it (defaults
    applied), in plain JSON data, with references to other resources written as
    their addresses; every address in `depends_on` is another desired resource.
    `detail` holds the dotted spec paths (as `AttrChange.path` spells them) whose
    value is the tool's bookkeeping rather than what the manifest declares: ownership
    tags, inherited stack tags, the derived `Name`, references and values copied from
    the resource's parents, defaults AWS would fill. Expansion decides it (and only
    expansion); renderers hide these on a create unless asked (`-v`), never on a change.
    """

    address: str
    kind: str
    spec: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()
    protect: bool = False
    detail: frozenset[str] = frozenset()
