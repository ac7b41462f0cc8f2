"""What an export accumulates: manifest data, comments by path, policy files, and warnings.

Invariant: every comment that says the live setup does not fit the manifest is also a warning
(shown on stderr), so nothing is dropped silently; `note()` does both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from reconciler.export.writer import Path

RESERVED_TAG_PREFIXES = ("aws:", "reconciler:")
# the manifest's tag alphabet (docs/manifest.md "Tags")
_TAG_TEXT = re.compile(r"^[\w .:/=+\-@]*$")
_NAME = re.compile(r"[^a-z0-9-]+")


@dataclass
class Export:
    stack: str
    region: str
    policy_files: bool = True  # long inline documents go to files next to the manifest
    comments: dict[Path, list[str]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # path relative to the manifest -> text
    warnings: list[str] = field(default_factory=list)

    def comment(self, path: Path, text: str) -> None:
        self.comments.setdefault(path, []).append(text)

    def note(self, path: Path, text: str) -> None:
        """A comment in the YAML and a warning on stderr: something live the manifest does not say as is."""
        self.comment(path, text)
        self.warnings.append(text)


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    """The hand-set tags a manifest may declare: none reserved, not `Name` (the tool sets it), valid text."""
    return {k: v for k, v in sorted(tags.items())
            if not k.startswith(RESERVED_TAG_PREFIXES) and k != "Name" and 1 <= len(k) <= 128
            and len(v) <= 256 and _TAG_TEXT.match(k) and _TAG_TEXT.match(v)}


def manifest_name(text: str, prefixes: tuple[str, ...] = ()) -> str | None:
    """`text` as a manifest name (a lowercase letter, then up to 62 of a-z, 0-9, -), minus a prefix; or None."""
    for prefix in prefixes:
        if prefix and text.startswith(prefix) and len(text) > len(prefix):
            text = text[len(prefix):]
            break
    name = _NAME.sub("-", text.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name or not name[0].isalpha():
        return None
    return name[:63].rstrip("-")


def unique(name: str, taken: set[str]) -> str:
    out, n = name, 2
    while out in taken:
        out = f"{name}-{n}"
        n += 1
    taken.add(out)
    return out


def put(target: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` unless the value is empty (the manifest's default)."""
    if value not in (None, [], {}):
        target[key] = value
