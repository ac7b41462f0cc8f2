"""Resource kinds, one module each under its service: `kinds/ec2/subnet.py` is kind `ec2.subnet`.

Every kind module exposes `KIND`, an instance of its Kind whose `name` is its module path
below this package. Discovery is automatic: adding a kind is adding a module under
`kinds/<service>/` (plus the section that expands it, its schema `$defs`, docs row and
tests); nothing here is edited. Modules starting with `_` are a service's floor (API
helpers shared by its kinds) and are never kinds.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from reconciler.kinds.base import Kind


@functools.cache
def all_kinds() -> dict[str, Kind]:
    """Every kind by name, e.g. `iam.user`; a kind whose name is not its module path is a bug."""
    found: dict[str, Kind] = {}
    for service in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not service.ispkg or service.name.startswith("_"):
            continue
        package = importlib.import_module(f"{__name__}.{service.name}")
        for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if module_info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package.__name__}.{module_info.name}")
            kind = getattr(module, "KIND", None)
            if not isinstance(kind, Kind):
                continue
            expected = f"{service.name}.{module_info.name}"
            if kind.name != expected:
                raise RuntimeError(f"{module.__name__} declares kind {kind.name!r}; its module path says {expected!r}")
            found[kind.name] = kind
    return found
