"""Strict YAML loading that keeps the source position of every key and value.

Invariants of `load_yaml`:
- the result is plain JSON data (dict / list / str / int / float / bool / None),
  except that YAML 1.1 scalars such as `no`, `1.10` or `0755` keep the type PyYAML
  gives them, so the schema reports them where a string is meant, with the source
  text in the hint (see `Source.raw`);
- every problem is collected, none raised half-way: duplicate keys, anchors and
  aliases (so no alias bomb can expand), non-core tags, several documents, a
  non-mapping root, tab indentation, a BOM, more than MAX_BYTES, non-UTF-8.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.errors import Problem

MAX_BYTES = 1024 * 1024

Path = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}


def json_path(path: Path) -> str:
    """`('iam', 'users', 0, 'name')` -> `$.iam.users[0].name`."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


@dataclass
class Source:
    """Where each value and key came from: 1-based line and column."""

    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    raw: dict[Path, str] = field(default_factory=dict)  # source text of plain (unquoted) scalars

    def where(self, path: Path, key: bool = False) -> tuple[int, int]:
        """Position of `path` (its key when `key`), else of its nearest ancestor."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if not key and probe in self.keys:
                return self.keys[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))

    def problem(self, path: Path, message: str, hint: str = "", key: bool = False) -> Problem:
        line, col = self.where(path, key=key)
        return Problem(self.file, line, col, json_path(path), message, hint)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that records anchors, aliases and tags instead of honouring them."""

    def __init__(self, stream: str, problems: list[Problem], file: str) -> None:
        super().__init__(stream)
        self._problems = problems
        self._file = file

    def _flag(self, mark: Any, message: str, hint: str) -> None:
        self._problems.append(Problem(self._file, mark.line + 1, mark.column + 1, "$", message, hint))

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            event = self.get_event()  # type: ignore[no-untyped-call]
            self._flag(event.start_mark, f"alias *{event.anchor} is not allowed",
                       "write the value out in full; anchors and aliases are refused")
            return ScalarNode(_CORE + "null", "", event.start_mark, event.end_mark)
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, ScalarEvent | CollectionStartEvent) and event.anchor is not None:
            self._flag(event.start_mark, f"anchor &{event.anchor} is not allowed",
                       "write the value out in full; anchors and aliases are refused")
            event.anchor = None
        node = super().compose_node(parent, index)
        assert node is not None
        return node


def _tab_problems(text: str, file: str) -> Iterator[Problem]:
    for number, line in enumerate(text.splitlines(), start=1):
        indent = len(line) - len(line.lstrip(" \t"))
        if "\t" in line[:indent]:
            yield Problem(file, number, line.index("\t") + 1, "$", "tab character in indentation",
                          "indent with spaces; YAML forbids tabs for indentation")


def load_yaml(data: bytes, file: str) -> tuple[Any, Source, list[Problem]]:
    """Parse one manifest document strictly; returns (data, positions, problems)."""
    source = Source(file)
    if len(data) > MAX_BYTES:
        return None, source, [Problem(file, 1, 1, "$", f"file is {len(data)} bytes, over the 1 MiB limit",
                                      "split the stack into several manifests")]
    if data.startswith(b"\xef\xbb\xbf"):
        return None, source, [Problem(file, 1, 1, "$", "file starts with a byte order mark (BOM)",
                                      "save the file as UTF-8 without BOM")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, source, [Problem(file, line, col, "$", "file is not valid UTF-8", "save it as UTF-8")]
    problems = list(_tab_problems(text, file))
    if problems:
        return None, source, problems
    loader = _StrictLoader(text, problems, file)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = exc.problem or str(exc)
        hint = "a manifest holds exactly one YAML document" if "single document" in (exc.context or "") else \
            "fix the YAML syntax"
        if "single document" in (exc.context or ""):
            message = "more than one YAML document (---) in the file"
        return None, source, [*problems, Problem(file, line, col, "$", message, hint)]
    finally:
        loader.dispose()
    if root is None:
        return None, source, [*problems, Problem(file, 1, 1, "$", "the manifest is empty",
                                                 "start with `version: 1` and `stack: NAME`")]
    if not isinstance(root, MappingNode):
        problems.append(Problem(file, root.start_mark.line + 1, root.start_mark.column + 1, "$",
                                "the top level must be a mapping", "start with `version: 1` and `stack: NAME`"))
        return None, source, problems
    value = _build(loader, root, (), source, problems)
    return value, source, problems


def _build(loader: _StrictLoader, node: Node, path: Path, source: Source, problems: list[Problem]) -> Any:
    source.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if node.tag not in _ALLOWED_TAGS:
        problems.append(source.problem(path, f"YAML tag {node.tag} is not allowed",
                                       "remove the tag; only plain YAML values are accepted"))
        return None
    if isinstance(node, MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key_at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, ScalarNode) or key_node.tag not in _ALLOWED_TAGS:
                problems.append(Problem(source.file, *key_at, "$", "mapping keys must be plain strings",
                                        "write the key as text"))
                continue
            if key_node.tag == _CORE + "merge" or (key_node.value == "<<" and key_node.style is None):
                problems.append(Problem(source.file, *key_at, "$", "merge keys (<<) are not allowed",
                                        "write the keys out in full"))
                continue
            key = loader.construct_object(key_node, deep=True)
            child: Path = (*path, str(key))
            if not isinstance(key, str):
                problems.append(Problem(source.file, *key_at, json_path(child),
                                        f"key {key_node.value!r} is read as {_type_word(key)}, not text",
                                        f'quote it: "{key_node.value}"'))
                key = str(key_node.value)
                child = (*path, key)
            if key in result:
                first = source.keys.get(child, key_at)
                problems.append(Problem(source.file, *key_at, json_path(child),
                                        f"duplicate key {key!r} (first at line {first[0]})",
                                        "remove one of them; YAML keys must be unique"))
                continue
            source.keys[child] = key_at
            result[key] = _build(loader, value_node, child, source, problems)
        return result
    if isinstance(node, SequenceNode):
        return [_build(loader, item, (*path, i), source, problems) for i, item in enumerate(node.value)]
    if isinstance(node, ScalarNode) and node.style is None:
        source.raw[path] = node.value
    value = loader.construct_object(node, deep=True)
    if isinstance(value, datetime.date):
        return value  # left for the schema to refuse where a string is meant
    return value


def _type_word(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, datetime.date):
        return "a date"
    return type(value).__name__
