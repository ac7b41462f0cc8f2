"""A fast yes/maybe-not answer to "is this data valid against the schema?".

`jsonschema` stays the authority: it produces every error message. But it walks
a 1 MiB manifest in about half a second, which alone would eat most of the
budget of `validate`. Valid manifests are the common case, so the schema is
compiled here once into nested closures that answer `True` only when the data
is valid; `False` sends the caller to jsonschema for the messages.

Invariants:
- `compile_schema(schema)(data)` is True exactly when jsonschema finds no error
  (exact, not just safe, so that `not`, `oneOf` and `if` compose correctly); a
  Hypothesis test checks the two agree on mutated manifests;
- a keyword this compiler does not know makes `compile_schema` return None
  (the caller then always uses jsonschema), so a schema edit can never be
  skipped silently; annotation keywords (description, default, ...) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples",
                          "deprecated", "readOnly", "writeOnly"})
_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    # draft 2020-12: 1.0 is an integer
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


class _Unsupported(Exception):
    pass


def compile_schema(schema: dict[str, Any]) -> Check | None:
    """A checker for `schema`, or None when it uses a keyword not handled here."""
    try:
        return _Compiler(schema).compile(schema)
    except _Unsupported:
        return None


def _equal(a: Any, b: Any) -> bool:
    """JSON equality as jsonschema has it: true is not 1, 1 is 1.0, containers compare deeply."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return isinstance(a, bool) == isinstance(b, bool) and a == b


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return lambda v: True
        if schema is False:
            return lambda v: False
        if not isinstance(schema, dict):
            raise _Unsupported(schema)
        checks: list[Check] = []
        handled = set(_ANNOTATIONS)
        for keyword, builder in self._builders().items():
            if keyword in schema:
                checks.append(builder(schema))
                handled.add(keyword)
        if "if" in schema:
            checks.append(self._if(schema))
            handled.update({"if", "then", "else"})
        unknown = set(schema) - handled
        if unknown:
            raise _Unsupported(sorted(unknown))
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(check(v) for check in checks)

    def _builders(self) -> dict[str, Callable[[dict[str, Any]], Check]]:
        return {
            "$ref": self._ref, "type": self._type, "enum": self._enum, "const": self._const,
            "pattern": self._pattern, "minLength": self._min_length, "maxLength": self._max_length,
            "minimum": self._minimum, "maximum": self._maximum,
            "properties": self._properties, "required": self._required, "propertyNames": self._property_names,
            "minProperties": self._min_properties, "maxProperties": self._max_properties,
            "items": self._items, "minItems": self._min_items, "maxItems": self._max_items,
            "uniqueItems": self._unique_items,
            "anyOf": self._any_of, "oneOf": self._one_of, "allOf": self._all_of, "not": self._not,
            "additionalProperties": self._additional,
        }

    def _ref(self, schema: dict[str, Any]) -> Check:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/$defs/") or "/" in ref[len("#/$defs/"):]:
            raise _Unsupported(ref)
        name = ref[len("#/$defs/"):]
        if ref not in self.refs:
            target = self.root.get("$defs", {}).get(name)
            if target is None:
                raise _Unsupported(ref)
            slot: list[Check] = []
            self.refs[ref] = lambda v: slot[0](v)  # a placeholder first: references may be recursive
            slot.append(self.compile(target))
        return self.refs[ref]

    def _type(self, schema: dict[str, Any]) -> Check:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        try:
            tests = [_TYPES[name] for name in names]
        except KeyError as exc:
            raise _Unsupported(names) from exc
        return lambda v: any(test(v) for test in tests)

    def _enum(self, schema: dict[str, Any]) -> Check:
        allowed = schema["enum"]
        return lambda v: any(_equal(v, a) for a in allowed)

    def _const(self, schema: dict[str, Any]) -> Check:
        want = schema["const"]
        return lambda v: _equal(v, want)

    def _pattern(self, schema: dict[str, Any]) -> Check:
        search = re.compile(schema["pattern"]).search
        return lambda v: not isinstance(v, str) or search(v) is not None

    def _min_length(self, schema: dict[str, Any]) -> Check:
        n = schema["minLength"]
        return lambda v: not isinstance(v, str) or len(v) >= n

    def _max_length(self, schema: dict[str, Any]) -> Check:
        n = schema["maxLength"]
        return lambda v: not isinstance(v, str) or len(v) <= n

    def _minimum(self, schema: dict[str, Any]) -> Check:
        n = schema["minimum"]
        return lambda v: not _TYPES["number"](v) or v >= n

    def _maximum(self, schema: dict[str, Any]) -> Check:
        n = schema["maximum"]
        return lambda v: not _TYPES["number"](v) or v <= n

    def _properties(self, schema: dict[str, Any]) -> Check:
        props = {name: self.compile(sub) for name, sub in schema["properties"].items()}

        def check(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for key, value in v.items():
                sub = props.get(key)
                if sub is not None and not sub(value):
                    return False
            return True
        return check

    def _additional(self, schema: dict[str, Any]) -> Check:
        if "patternProperties" in schema:
            raise _Unsupported("patternProperties")
        known = frozenset(schema.get("properties", {}))
        extra = schema["additionalProperties"]
        if extra is False:
            return lambda v: not isinstance(v, dict) or known.issuperset(v)
        sub = self.compile(extra)
        return lambda v: not isinstance(v, dict) or all(sub(x) for k, x in v.items() if k not in known)

    def _required(self, schema: dict[str, Any]) -> Check:
        names = tuple(schema["required"])
        return lambda v: not isinstance(v, dict) or all(name in v for name in names)

    def _property_names(self, schema: dict[str, Any]) -> Check:
        sub = self.compile(schema["propertyNames"])
        return lambda v: not isinstance(v, dict) or all(sub(k) for k in v)

    def _min_properties(self, schema: dict[str, Any]) -> Check:
        n = schema["minProperties"]
        return lambda v: not isinstance(v, dict) or len(v) >= n

    def _max_properties(self, schema: dict[str, Any]) -> Check:
        n = schema["maxProperties"]
        return lambda v: not isinstance(v, dict) or len(v) <= n

    def _items(self, schema: dict[str, Any]) -> Check:
        if "prefixItems" in schema:
            raise _Unsupported("prefixItems")
        sub = self.compile(schema["items"])
        return lambda v: not isinstance(v, list) or all(sub(x) for x in v)

    def _min_items(self, schema: dict[str, Any]) -> Check:
        n = schema["minItems"]
        return lambda v: not isinstance(v, list) or len(v) >= n

    def _max_items(self, schema: dict[str, Any]) -> Check:
        n = schema["maxItems"]
        return lambda v: not isinstance(v, list) or len(v) <= n

    def _unique_items(self, schema: dict[str, Any]) -> Check:
        if schema["uniqueItems"] is not True:
            return lambda v: True

        def check(v: Any) -> bool:
            if not isinstance(v, list):
                return True
            if all(isinstance(x, str) for x in v):
                return len(set(v)) == len(v)
            return not any(_equal(v[i], v[j]) for i in range(len(v)) for j in range(i + 1, len(v)))
        return check

    def _any_of(self, schema: dict[str, Any]) -> Check:
        subs = [self.compile(s) for s in schema["anyOf"]]
        return lambda v: any(sub(v) for sub in subs)

    def _one_of(self, schema: dict[str, Any]) -> Check:
        subs = [self.compile(s) for s in schema["oneOf"]]
        return lambda v: sum(1 for sub in subs if sub(v)) == 1

    def _all_of(self, schema: dict[str, Any]) -> Check:
        subs = [self.compile(s) for s in schema["allOf"]]
        return lambda v: all(sub(v) for sub in subs)

    def _not(self, schema: dict[str, Any]) -> Check:
        sub = self.compile(schema["not"])
        return lambda v: not sub(v)

    def _if(self, schema: dict[str, Any]) -> Check:
        test = self.compile(schema["if"])
        then = self.compile(schema.get("then", True))
        otherwise = self.compile(schema.get("else", True))
        return lambda v: then(v) if test(v) else otherwise(v)
