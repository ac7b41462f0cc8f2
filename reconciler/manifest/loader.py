"""Strict YAML loading that keeps the source position of every key and value.

The document is read as a stream of parser events (libyaml's C parser when it is
available, PyYAML's own otherwise) and built into plain data by an iterative
builder here, never by PyYAML's composer and constructor. That is what makes the
strictness cheap and safe: an alias is never followed (so no alias bomb can
expand), no tag ever reaches a constructor that could run code, nesting depth is
bounded without recursion, and a 1 MiB manifest loads in a fraction of a second.

Invariants of `load_yaml`:
- the result is plain JSON data (dict with str keys / list / str / int / float /
  bool / None), except that YAML 1.1 scalars keep the type YAML gives them
  (`no` is a boolean, `1.10` a float, `0755` an integer, `2024-01-01` a date), so
  the schema reports them where text is meant, with the source text in the hint
  (see `Source.raw`);
- every problem is collected, none raised half-way: duplicate keys, merge keys,
  non-text keys, anchors and aliases, non-core tags, values that do not fit their
  tag, several documents, a non-mapping root, an empty file, tab indentation, a
  BOM, more than MAX_BYTES, non-UTF-8, nesting deeper than MAX_DEPTH;
- wherever a value had to be dropped or replaced by null because of a problem,
  its path is in `Source.damaged`, so later stages can stay quiet about it
  instead of reporting a knock-on error.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from reconciler.errors import Problem

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64  # the deepest real manifest (a policy condition) is about 15 levels
MAX_PROBLEMS = 100  # per manifest: past this, reading stops; no real manifest has that many
MAX_ALIAS_REPORTS = 10  # an alias bomb has thousands; the first few say all there is to say, then reading stops

Path = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_STR, _NULL, _MAP, _SEQ = _CORE + "str", _CORE + "null", _CORE + "map", _CORE + "seq"
_MERGE, _VALUE = _CORE + "merge", _CORE + "value"
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp")}

# libyaml parses in C (about 20x faster); the pure-Python parser gives the same events.
_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


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
    """Where each value and key came from: 1-based line and column.

    `raw` holds the source text of plain (unquoted) scalars that YAML does not
    read as text, for hints such as `quote it: "1.10"`; `damaged` the paths whose value the loader dropped or
    replaced because of a problem it already reported.
    """

    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    raw: dict[Path, str] = field(default_factory=dict)
    damaged: set[Path] = field(default_factory=set)
    _prefixes: tuple[int, set[Path]] | None = field(default=None, repr=False, compare=False)

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

    def is_damaged(self, path: Path) -> bool:
        """True when `path`, or something inside or above it, was damaged by a loader problem."""
        if not self.damaged:
            return False
        if self._prefixes is None or self._prefixes[0] != len(self.damaged):
            # every ancestor of a damaged path, computed once (the loader is done adding by now)
            self._prefixes = (len(self.damaged), {d[:n] for d in self.damaged for n in range(len(d) + 1)})
        probe = tuple(path)
        return probe in self._prefixes[1] or any(probe[:n] in self.damaged for n in range(len(probe)))


# first characters that can make a plain scalar anything but text (bool, int, float, null, date, merge, ...)
_NOT_ALWAYS_TEXT = frozenset(k for k in yaml.SafeLoader.yaml_implicit_resolvers if k)


def _resolve(parser: Any, event: ScalarEvent) -> str:
    """The tag of a scalar: explicit, or what YAML 1.1 implies for its text."""
    tag = event.tag
    if tag is not None and tag != "!":
        return tag
    value = event.value
    if value and event.implicit[0] and value[0] not in _NOT_ALWAYS_TEXT:
        return _STR  # the common case, decided without the resolver's regexes
    return str(parser.resolve(ScalarNode, value, event.implicit))


def _short(tag: str | None) -> str:
    """`tag:yaml.org,2002:python/object` -> `!!python/object`, as it is written."""
    return "!!" + tag.removeprefix(_CORE) if tag and tag.startswith(_CORE) else str(tag)


def _at(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _tab_problems(text: str, file: str) -> Iterator[Problem]:
    # split on \n only: that is what the parser counts as a line, too
    for number, line in enumerate(text.split("\n"), start=1):
        indent = len(line) - len(line.lstrip(" \t"))
        if "\t" in line[:indent]:
            yield Problem(file, number, line.index("\t") + 1, "$", "tab character in indentation",
                          "indent with spaces; YAML forbids tabs for indentation")


def _position_of_byte(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset."""
    before = data[:offset]
    line_start = before.rfind(b"\n") + 1
    return before.count(b"\n") + 1, len(before[line_start:].decode("utf-8", "replace")) + 1


def load_yaml(data: bytes, file: str, size: int | None = None) -> tuple[Any, Source, list[Problem]]:
    """Parse one manifest document strictly; returns (data or None, positions, problems).

    `size` is the file's size when `data` was read with a bound (only its first MAX_BYTES + 1 bytes).
    """
    source = Source(file)
    if len(data) > MAX_BYTES:
        shown = max(size or 0, len(data))
        return None, source, [Problem(file, 1, 1, "$", f"file is {shown} bytes, over the 1 MiB limit",
                                      "split the stack into several manifests")]
    if data.startswith(b"\xef\xbb\xbf"):
        return None, source, [Problem(file, 1, 1, "$", "file starts with a byte order mark (BOM)",
                                      "save the file as UTF-8 without BOM")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _position_of_byte(data, exc.start)
        return None, source, [Problem(file, line, col, "$", f"file is not valid UTF-8 (byte {data[exc.start]:#04x})",
                                      "save it as UTF-8")]
    problems = list(itertools.islice(_tab_problems(text, file), MAX_PROBLEMS))
    if problems:
        return None, source, problems
    builder = _Builder(text, source, problems)
    try:
        value = builder.document()
    except _StopReading:
        return None, source, problems
    except yaml.MarkedYAMLError as exc:
        line, col = _at(exc.problem_mark or exc.context_mark)
        message = ": ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        problems.append(Problem(file, line, col, "$", f"YAML syntax: {message}", "fix the YAML syntax"))
        return None, source, problems
    except yaml.reader.ReaderError as exc:
        line, col = _position_of_byte(data, exc.position)
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        problems.append(Problem(file, line, col, "$", f"character {char!r} is not allowed: {exc.reason}",
                                "remove it, or write it as an escape in a double-quoted string"))
        return None, source, problems
    except yaml.YAMLError as exc:  # any other parser complaint: still a manifest error, never a traceback
        problems.append(Problem(file, 1, 1, "$", f"YAML syntax: {exc}", "fix the YAML syntax"))
        return None, source, problems
    finally:
        builder.dispose()
    return value, source, problems


class _StopReading(Exception):
    """Raised inside the builder to stop reading (an alias bomb, too many problems); the reason is recorded."""


@dataclass
class _Frame:
    """A mapping or sequence being built; for a mapping, `key` is the key awaiting its value."""

    value: dict[str, Any] | list[Any]
    path: Path
    key: str | None = None
    drop_next: bool = False  # the awaited value belongs to a refused key: build nothing


class _Builder:
    """Turns parser events into data, recording positions and problems (see module invariants)."""

    def __init__(self, text: str, source: Source, problems: list[Problem]) -> None:
        self.parser = _Parser(text)
        self.source = source
        self.problems = problems
        self.aliases_seen = 0
        self._next: Callable[[], Event] = self.parser.get_event

    def dispose(self) -> None:
        self.parser.dispose()

    def _flag(self, at: tuple[int, int], path: Path, message: str, hint: str, damage: bool = True) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.problems.append(Problem(self.source.file, *at, json_path(path),
                                         f"more than {MAX_PROBLEMS} problems; reading stopped here",
                                         "fix the ones above first"))
            raise _StopReading
        self.problems.append(Problem(self.source.file, *at, json_path(path), message, hint))
        if damage:
            self.source.damaged.add(path)

    def document(self) -> Any:
        self._next()  # StreamStart
        event = self._next()
        if isinstance(event, StreamEndEvent):
            self.problems.append(Problem(self.source.file, 1, 1, "$", "the manifest is empty",
                                         "start with `version: 1` and `stack: NAME`"))
            return None
        assert isinstance(event, DocumentStartEvent)
        first = self._next()
        value = self._tree(first)
        event = self._next()
        assert isinstance(event, DocumentEndEvent)
        event = self._next()
        if isinstance(event, DocumentStartEvent):
            self.problems.append(Problem(self.source.file, *_at(event.start_mark), "$",
                                         "more than one YAML document (---) in the file",
                                         "a manifest holds exactly one YAML document"))
            return None
        if () in self.source.damaged:
            return None
        if value is None and isinstance(first, ScalarEvent):
            self.problems.append(Problem(self.source.file, *_at(first.start_mark), "$", "the manifest is empty",
                                         "start with `version: 1` and `stack: NAME`"))
            return None
        if not isinstance(value, dict):
            at = _at(first.start_mark)
            self.problems.append(Problem(self.source.file, *at, "$", "the top level must be a mapping",
                                         "start with `version: 1` and `stack: NAME`"))
            return None
        return value

    def _tree(self, first: Event) -> Any:
        """Build the node that starts with `first`, iteratively (no recursion, bounded depth)."""
        stack: list[_Frame] = []
        event = first
        while True:
            top = stack[-1] if stack else None
            if isinstance(top, _Frame) and isinstance(top.value, dict) and top.key is None and not top.drop_next:
                # a mapping waits for a key (or its end)
                if isinstance(event, MappingEndEvent):
                    stack.pop()
                    done: Any = top.value
                else:
                    self._key(top, event)
                    event = self._next()
                    continue
            elif isinstance(event, SequenceEndEvent | MappingEndEvent):
                assert top is not None
                stack.pop()
                done = top.value
            else:
                path = self._child_path(top)
                drop = top is not None and top.drop_next
                done = self._node(event, path, drop, len(stack))
                if isinstance(done, _Frame):
                    stack.append(done)
                    event = self._next()
                    continue
            # `done` is a complete value: hand it to its parent
            if not stack:
                return done
            parent = stack[-1]
            if isinstance(parent.value, list):
                parent.value.append(done)
            elif parent.drop_next:
                parent.drop_next = False
            else:
                assert parent.key is not None
                parent.value[parent.key] = done
                parent.key = None
            event = self._next()

    @staticmethod
    def _child_path(top: _Frame | None) -> Path:
        if top is None:
            return ()
        if isinstance(top.value, list):
            return (*top.path, len(top.value))
        return (*top.path, top.key if top.key is not None else "?")

    def _node(self, event: Event, path: Path, drop: bool, depth: int) -> Any:
        """A scalar's value, a new _Frame for a collection, or None for a refused node."""
        at = _at(event.start_mark)
        if drop:
            self._skip(event)
            return None
        self.source.values[path] = at
        if isinstance(event, AliasEvent):
            self._count_alias(at, path)
            self._flag(at, path, f"alias *{event.anchor} is not allowed",
                       "write the value out in full; anchors and aliases are refused")
            return None
        assert isinstance(event, NodeEvent)
        if event.anchor is not None:
            self._count_alias(at, path)
            self._flag(at, path, f"anchor &{event.anchor} is not allowed",
                       "write the value out in full; anchors and aliases are refused", damage=False)
        if isinstance(event, CollectionStartEvent):
            want = _MAP if isinstance(event, MappingStartEvent) else _SEQ
            if event.tag not in (None, "!", want):
                self._flag(at, path, f"YAML tag {_short(event.tag)} is not allowed here",
                           "remove the tag; only plain YAML values are accepted")
                self._skip(event)
                return None
            if depth >= MAX_DEPTH:
                self._flag(at, path, f"nesting deeper than {MAX_DEPTH} levels", "flatten the document")
                self._skip(event)
                return None
            return _Frame({} if want == _MAP else [], path)
        assert isinstance(event, ScalarEvent)
        value, ok = self._scalar(event, path, at)
        if not ok:
            self.source.damaged.add(path)
        return value

    def _scalar(self, event: ScalarEvent, path: Path, at: tuple[int, int]) -> tuple[Any, bool]:
        tag = _resolve(self.parser, event)
        if tag in (_STR, _VALUE):
            return event.value, True
        if not event.style:  # plain (None from PyYAML's parser, "" from libyaml's) and not read as text
            self.source.raw[path] = event.value
        if tag == _NULL and event.value in ("", "~", "null", "Null", "NULL"):
            return None, True
        if tag not in _SCALAR_TAGS:
            self._flag(at, path, f"YAML tag {_short(tag)} is not allowed here",
                       "remove the tag; only plain YAML values are accepted")
            return None, False
        node = ScalarNode(tag, event.value, None, None, event.style or None)  # marks unused: errors are reported here
        try:
            value = _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, node)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError, yaml.YAMLError):
            self._flag(at, path, f"{event.value!r} cannot be read as {_short(tag)}",
                       "remove the explicit tag, or write a valid value")
            return None, False
        return value, True

    def _key(self, frame: _Frame, event: Event) -> None:
        """Read one mapping key into `frame.key`, or refuse it and mark its value to be dropped."""
        at = _at(event.start_mark)
        assert isinstance(frame.value, dict)
        if isinstance(event, ScalarEvent) and event.anchor is None:
            tag = _resolve(self.parser, event)
            if tag == _MERGE:
                self._flag(at, frame.path, "merge keys (<<) are not allowed", "write the keys out in full")
                frame.drop_next = True
                return
            key = event.value
            if tag not in (_STR, _VALUE):
                word = {_NULL: "null", _CORE + "bool": "a boolean", _CORE + "int": "an integer",
                        _CORE + "float": "a number", _CORE + "timestamp": "a date"}.get(str(tag))
                if word is None:
                    self._flag(at, frame.path, f"YAML tag {_short(tag)} is not allowed on a key",
                               "write the key as text")
                    frame.drop_next = True
                    return
                shown = key or "(empty)"
                self._flag(at, (*frame.path, key), f"key {shown} is read by YAML as {word}, not text",
                           f'quote it: "{key}"' if key else "write the key as text")
            child: Path = (*frame.path, key)
            if key in frame.value:
                first = self.source.keys.get(child, at)
                self._flag(at, child, f"duplicate key {key!r} (first at line {first[0]})",
                           "remove one of them; YAML keys must be unique", damage=False)
                frame.drop_next = True
                return
            self.source.keys[child] = at
            frame.key = key
            return
        if isinstance(event, AliasEvent | NodeEvent) and getattr(event, "anchor", None) is not None:
            self._count_alias(at, frame.path)
            self._flag(at, frame.path, f"{'alias *' if isinstance(event, AliasEvent) else 'anchor &'}"
                       f"{event.anchor} is not allowed (on a key)", "write the key out in full")
        else:
            self._flag(at, frame.path, "mapping keys must be plain text", "write the key as text")
        self._skip(event)
        frame.drop_next = True

    def _count_alias(self, at: tuple[int, int], path: Path) -> None:
        """Past MAX_ALIAS_REPORTS anchors and aliases, stop reading: an alias bomb gets no further."""
        self.aliases_seen += 1
        if self.aliases_seen > MAX_ALIAS_REPORTS:
            self._flag(at, path, f"more than {MAX_ALIAS_REPORTS} anchors and aliases; reading stopped here",
                       "an alias bomb? write every value out in full; anchors and aliases are refused")
            raise _StopReading

    def _skip(self, event: Event) -> None:
        """Consume the rest of a node that starts with `event` without building it."""
        if not isinstance(event, CollectionStartEvent):
            return
        depth = 1
        while depth:
            nxt = self._next()
            if isinstance(nxt, CollectionStartEvent):
                depth += 1
            elif isinstance(nxt, SequenceEndEvent | MappingEndEvent):
                depth -= 1
