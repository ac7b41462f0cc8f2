"""The YAML writer of `reconcile export`: manifest data (plain dicts) to commented, strict-safe YAML.

Invariants: the text parses back, with the manifest's strict loader, to exactly the data given
(every string is double-quoted unless it is plainly safe, so no `no`, `1.10` or date is ever
re-read as something else); comments are attached by path and written as `# ` lines before the
key or list item they explain; key order is the order of the dicts (the mappers choose it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

Path = tuple[str | int, ...]
Comments = Mapping[Path, Sequence[str]]

# a plain scalar that YAML 1.1 and 1.2 both read as this very text (no bool/null/number/date look-alikes)
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./@+=-]*$")
_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none", "~"})
INDENT = "  "


def scalar(value: Any) -> str:
    """One YAML scalar (or an empty collection) as text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def key(value: str) -> str:
    return value if _PLAIN.match(value) and value.lower() not in _WORDS else json.dumps(value, ensure_ascii=False)


def _flow(value: Any) -> str | None:
    """A short one-line rendering of a small mapping or list of scalars, or None."""
    if isinstance(value, dict) and value and all(not isinstance(v, dict | list) or not v for v in value.values()):
        text = "{" + ", ".join(f"{key(k)}: {scalar(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list) and value and all(not isinstance(v, dict | list) for v in value):
        text = "[" + ", ".join(scalar(v) for v in value) + "]"
    else:
        return None
    return text if len(text) <= 100 else None


def _comment_lines(comments: Comments, path: Path, indent: str) -> list[str]:
    out = []
    for line in comments.get(path, ()):
        for part in line.splitlines() or [""]:
            out.append(f"{indent}# {part}".rstrip())
    return out


def _block(value: Any, path: Path, depth: int, comments: Comments) -> list[str]:
    """Lines of a mapping or list at `depth`."""
    pad = INDENT * depth
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            here = (*path, k)
            lines.extend(_comment_lines(comments, here, pad))
            flow = _flow(v)
            if not isinstance(v, dict | list) or not v:
                lines.append(f"{pad}{key(k)}: {scalar(v)}")
            elif flow is not None and not any(p[:len(here)] == here and len(p) > len(here) for p in comments):
                lines.append(f"{pad}{key(k)}: {flow}")
            else:
                lines.append(f"{pad}{key(k)}:")
                lines.extend(_block(v, here, depth + 1, comments))
        return lines
    for i, item in enumerate(value):
        here = (*path, i)
        lines.extend(_comment_lines(comments, here, pad))
        flow = _flow(item)
        nested = any(p[:len(here)] == here and len(p) > len(here) for p in comments)
        if not isinstance(item, dict | list) or not item:
            lines.append(f"{pad}- {scalar(item)}")
        elif flow is not None and not nested:
            lines.append(f"{pad}- {flow}")
        else:
            inner = _block(item, here, depth + 1, comments)
            # the first line of the item goes after the dash
            first = next(n for n, line in enumerate(inner) if not line.lstrip().startswith("#"))
            lines.extend(f"{pad}{line.lstrip()}" for line in inner[:first])  # comments on the item: at its dash
            lines.append(f"{pad}- {inner[first].lstrip()}")
            lines.extend(inner[first + 1:])
    return lines


def to_yaml(data: Mapping[str, Any], comments: Comments | None = None, header: Sequence[str] = ()) -> str:
    """The manifest as YAML text: `header` lines as comments on top, then the data with its comments."""
    lines = [f"# {h}".rstrip() for h in header]
    lines.extend(_block(dict(data), (), 0, comments or {}))
    return "\n".join(lines) + "\n"
