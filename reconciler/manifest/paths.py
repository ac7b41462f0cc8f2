"""The files a manifest names: inside the manifest's tree, regular files only, read with a bound.

Why a module of its own: policy files, build contexts, Dockerfiles, `.dockerignore`
and the manifest itself are read by validation, by expansion (the image inputs
digest) and, through the Docker SDK, by apply. One rule for all of them, here,
keeps a hostile manifest from reading `/etc/shadow` through any one door.

The tree: a manifest's paths must stay inside the repository that holds it (the
nearest directory, from the manifest's up, that has a `.git`), or inside the
manifest's own directory when it is in no repository. That is what a pull
request can name without reaching the runner's files, and it keeps the common
layout `infra/stack.yaml` + `services/app/` working (`context: ../services/app`).

Invariants:
- `resolve_inside` accepts only a relative path whose resolved form (every symlink
  followed, `..` applied) lies inside the given root; it decides from the path
  alone, before anything at that path is opened;
- `read_regular` reads only a regular file, at most `limit + 1` bytes: a FIFO, a
  device, a socket or a directory is refused after a `stat`, and the file is then
  opened non-blocking and checked again on the open descriptor, so a path swapped
  for a FIFO in between still never blocks the run;
- no message here says anything read from a file: only the path as the manifest
  wrote it, and what kind of thing is (or is not) there.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from reconciler.errors import PathRefused as PathRefused  # re-exported: the manifest layer imports it from here

CHUNK = 1 << 20


def tree_root(manifest_dir: Path) -> Path:
    """The directory every path of a manifest in `manifest_dir` must stay in (see the module doc)."""
    start = manifest_dir.resolve()
    for directory in (start, *start.parents):
        if (directory / ".git").exists():  # a directory in a clone, a file in a git worktree
            return directory
    return start


def describe_root(root: Path, manifest_dir: Path) -> str:
    """How to name a manifest's tree in a message: relative to the manifest's directory."""
    rel = os.path.relpath(root, manifest_dir.resolve())
    return "the manifest's directory" if rel == "." else f"the manifest's repository ({rel})"


def resolve_inside(root: Path, base: Path, written: str, what: str, where: str) -> Path:
    """`base / written` with every symlink resolved, or PathRefused when it is absolute or leaves `root`.

    `what` names the path in messages ("policy file", "Dockerfile"), `where` the
    root ("the manifest's directory"); `root` and `base` must already be resolved.
    """
    if "\0" in written:
        raise PathRefused(f"{what} path contains a NUL character", "write a plain relative path")
    if os.path.isabs(written):
        raise PathRefused(f"{what} {written!r} is an absolute path",
                          f"write it relative to the manifest; it must stay inside {where}")
    try:
        resolved = (base / written).resolve()
    except (OSError, RuntimeError):  # a symlink loop: refused like any unusable path
        raise PathRefused(f"{what} {written!r} cannot be resolved (a symlink loop?)",
                          "point it at a real file inside the tree") from None
    if not resolved.is_relative_to(root):
        raise PathRefused(f"{what} {written!r} leads outside {where}",
                          f"keep it inside {where}; symlinks are followed, `..` too", f"leads outside {where}")
    return resolved


def _not_regular(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def refuse_non_regular(path: Path, shown: str, what: str) -> None:
    """PathRefused unless `path` is a regular file (symlinks followed); OSError when it cannot be stat'ed."""
    _refuse_mode(os.stat(path).st_mode, shown, what)


def _refuse_mode(mode: int, shown: str, what: str) -> None:
    kind = _not_regular(mode)
    if kind is not None:
        detail = f"is {kind}, not a regular file"
        raise PathRefused(f"{what} {shown!r} {detail}", "name a regular file; pipes and devices are never read",
                          detail)


def open_regular(path: Path, shown: str, what: str) -> int:
    """An open, non-blocking read descriptor on the regular file `path` (the caller closes it)."""
    refuse_non_regular(path, shown, what)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        _refuse_mode(os.fstat(fd).st_mode, shown, what)  # swapped between stat and open?
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path, shown: str, what: str, limit: int) -> tuple[bytes, int]:
    """(at most `limit + 1` bytes of the regular file `path`, its size); OSError when it cannot be read."""
    fd = open_regular(path, shown, what)
    try:
        size = os.fstat(fd).st_size
        parts: list[bytes] = []
        got = 0
        while got <= limit:
            chunk = os.read(fd, min(CHUNK, limit + 1 - got))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts), max(size, got)
    finally:
        os.close(fd)


def sha256_regular(path: Path, shown: str, what: str) -> str:
    """The sha256 of the regular file `path`, read in chunks (no size limit: build inputs can be big)."""
    import hashlib

    digest = hashlib.sha256()
    fd = open_regular(path, shown, what)
    try:
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()
