"""Resource kinds, one module each; every module exposes `KIND`, an instance of its Kind.

Discovery is automatic: adding a kind is adding a module here (plus its schema
fragment and tests); nothing else is edited.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from reconciler.kinds.base import Kind


@functools.cache
def all_kinds() -> dict[str, Kind]:
    """Every kind by name, e.g. `iam.user`."""
    found: dict[str, Kind] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_") or module_info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        kind = getattr(module, "KIND", None)
        if isinstance(kind, Kind):
            found[kind.name] = kind
    return found
