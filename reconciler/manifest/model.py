"""The validated manifest and the desired resources it expands into."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from reconciler.manifest.loader import Source


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
