"""The digest of an image's build inputs: what decides whether an image must be rebuilt.

`inputs_digest` hashes exactly what a build reads, without building:
- every path of the context that the Docker SDK would send, i.e. after `.dockerignore`
  (the SDK's own `docker.utils.build.exclude_paths`, so the hashed set and the sent
  set cannot drift apart), each as (type, relative path, permission bits, content
  sha256 or symlink target);
- the Dockerfile's path and bytes (it always lies inside the context: validation refuses
  any other, since the SDK would read an outside one and send it to the daemon);
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

from reconciler.errors import DockerignoreError as DockerignoreError  # re-exported: checks.py imports it from here
from reconciler.manifest.paths import PathRefused, read_regular, resolve_inside, sha256_regular

FORMAT = 1
MAX_DOCKERIGNORE_BYTES = 1024 * 1024  # a pattern list; anything near this is not one


def _file_sha256(path: Path, shown: str = "build input") -> str:
    return sha256_regular(path, shown, "build input")


def dockerignore_patterns(context: Path) -> list[str]:
    """The `.dockerignore` patterns exactly as the Docker SDK reads them (no blank lines, no comments).

    Raises DockerignoreError when it is not a regular UTF-8 file inside the context
    of at most MAX_DOCKERIGNORE_BYTES (the SDK itself would block on a FIFO, read a
    symlinked file from anywhere, or die on bytes that are not text).
    """
    path = context / ".dockerignore"
    if not os.path.lexists(path):
        return []
    try:
        resolved = resolve_inside(context.resolve(), context.resolve(), ".dockerignore", ".dockerignore",
                                  "the build context")
        raw, _ = read_regular(resolved, ".dockerignore", ".dockerignore", MAX_DOCKERIGNORE_BYTES)
    except PathRefused as exc:
        raise DockerignoreError(exc.detail) from None
    except OSError as exc:
        raise DockerignoreError(f"cannot be read: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_DOCKERIGNORE_BYTES:
        raise DockerignoreError(f"is over {MAX_DOCKERIGNORE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DockerignoreError(f"is not UTF-8 text (line {line})") from None
    lines = [line.strip() for line in text.splitlines()]
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
            entries.append(["file", rel, mode, _file_sha256(full, rel)])
        # sockets and FIFOs are skipped by the SDK's tar too
    return entries


def inputs_body(context: Path, dockerfile: str, build_args: Mapping[str, str], target: str | None,
                platform: str | None) -> dict[str, Any]:
    """Everything the digest covers, as plain JSON data (useful to explain a change)."""
    # raises PathRefused (a ValueError) for a Dockerfile outside the context, as validation does
    top = context.resolve()
    dockerfile_path = resolve_inside(top, top, dockerfile, "Dockerfile", "the build context")
    return {
        "format": FORMAT,
        "files": context_entries(context, dockerfile),
        "dockerfile": {"path": dockerfile, "sha256": _file_sha256(dockerfile_path, dockerfile)},
        "build_args": dict(sorted(build_args.items())),
        "target": target,
        "platform": platform,
    }


def inputs_digest(context: str | Path, dockerfile: str = "Dockerfile", build_args: Mapping[str, str] | None = None,
                  target: str | None = None, platform: str | None = None) -> str:
    """`sha256:<hex>` of the build inputs.

    Raises OSError when the context cannot be read, ValueError (PathRefused,
    DockerignoreError) when a path in it is not allowed or not usable.
    """
    body = inputs_body(Path(context), dockerfile, build_args or {}, target, platform)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
