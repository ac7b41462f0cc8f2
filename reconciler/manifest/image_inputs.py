"""The digest of an image's build inputs: what decides whether an image must be rebuilt.

`inputs_digest` hashes exactly what a build reads, without building:
- every path of the context that the Docker SDK would send, i.e. after `.dockerignore`
  (the SDK's own `docker.utils.build.exclude_paths`, so the hashed set and the sent
  set cannot drift apart), each as (type, relative path, permission bits, content
  sha256 or symlink target);
- the Dockerfile's path and bytes (also when it lies outside the context);
- build args, target stage and platform.

Invariants: the same inputs give the same digest on every machine and every run
(paths sorted, canonical JSON, no mtimes, owners or absolute paths); any change a
build could see (a file's bytes, mode, a new file, a build arg) changes it. The
format carries a version so a change of this recipe changes every digest on purpose.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FORMAT = 1
CHUNK = 1 << 20


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dockerignore_patterns(context: Path) -> list[str]:
    """The `.dockerignore` patterns exactly as the Docker SDK reads them (no blank lines, no comments)."""
    path = context / ".dockerignore"
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def context_files(context: Path, dockerfile: str = "Dockerfile") -> list[str]:
    """Relative paths (files, directories, links) the SDK sends as the build context, sorted."""
    from docker.utils.build import exclude_paths

    return sorted(exclude_paths(str(context), dockerignore_patterns(context), dockerfile=dockerfile))


def context_entries(context: Path, dockerfile: str = "Dockerfile") -> list[list[Any]]:
    """One entry per sent path: [type, path, mode, sha256-or-link-target]."""
    entries: list[list[Any]] = []
    for rel in context_files(context, dockerfile):
        full = context / rel
        info = full.lstat()
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            entries.append(["link", rel, mode, os.readlink(full)])
        elif stat.S_ISDIR(info.st_mode):
            entries.append(["dir", rel, mode, None])
        elif stat.S_ISREG(info.st_mode):
            entries.append(["file", rel, mode, _file_sha256(full)])
        # sockets and FIFOs are skipped by the SDK's tar too
    return entries


def inputs_body(context: Path, dockerfile: str, build_args: Mapping[str, str], target: str | None,
                platform: str | None) -> dict[str, Any]:
    """Everything the digest covers, as plain JSON data (useful to explain a change)."""
    dockerfile_path = Path(dockerfile) if os.path.isabs(dockerfile) else context / dockerfile
    return {
        "format": FORMAT,
        "files": context_entries(context, dockerfile),
        "dockerfile": {"path": dockerfile, "sha256": _file_sha256(dockerfile_path)},
        "build_args": dict(sorted(build_args.items())),
        "target": target,
        "platform": platform,
    }


def inputs_digest(context: str | Path, dockerfile: str = "Dockerfile", build_args: Mapping[str, str] | None = None,
                  target: str | None = None, platform: str | None = None) -> str:
    """`sha256:<hex>` of the build inputs; raises OSError when the context cannot be read."""
    body = inputs_body(Path(context), dockerfile, build_args or {}, target, platform)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
