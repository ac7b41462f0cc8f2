"""Reading the JSON files the tool wrote earlier back in: plan files and fleet reports.

Both arrive from elsewhere (a CI artifact, another machine's shard), so neither is trusted:

Invariants:
- only a regular file is read (never a pipe or a device: manifest/paths.py `read_regular`), at
  most `limit` bytes, nested at most `depth` lists or mappings (measured iteratively, before
  anything recursive looks at it: a schema check, a comparison);
- every refusal is a UsageError (exit 3) that names the file, says what is wrong without
  quoting its content, and says what to do; no AWS call is ever made here;
- globs are expanded here too (sorted), so a quoted 'shard-*.json' works where no shell
  expands it (a CI step, a container's command); a pattern that matches nothing is an error.
"""

from __future__ import annotations

import functools
import glob
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.errors import UsageError

MAX_REPORT_BYTES = 256 * 1024 * 1024  # 100 stacks' drift reports are a few MB
# a stack's own report nests as deep as a plan (see cli.MAX_PLAN_DEPTH); the fleet report adds 3 levels
MAX_REPORT_DEPTH = 110
MAX_SHOWN_PROBLEMS = 10


def depth_over(data: Any, limit: int) -> bool:
    """True when `data` nests deeper than `limit` lists or mappings (iterative: any depth is safe to measure)."""
    todo: list[tuple[Any, int]] = [(data, 0)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, dict | list):
            if depth >= limit:
                return True
            todo.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))
    return False


def read_json_document(path: str, what: str, give: str, remake: str, limit: int, depth: int) -> Any:
    """The JSON in the regular file `path`, bounded in size and depth (see the module invariants).

    `what` names the file in messages ("plan file"), `give` which file to give instead ("the file
    `plan --out` wrote"), `remake` how to make a good one ("a new one with `plan --out`").
    """
    from reconciler.manifest.paths import PathRefused, read_regular

    try:
        raw, size = read_regular(Path(path), path, what, limit)
        if size > limit:
            raise UsageError(f"{path}: not a readable {what}: over {limit} bytes; give {give}")
        data = json.loads(raw.decode("utf-8"))
    except PathRefused as exc:
        raise UsageError(f"{path}: not a readable {what}: it {exc.detail}; give {give}") from None
    except OSError as exc:
        raise UsageError(f"{path}: not a readable {what}: {exc.strerror or type(exc).__name__}; check the "
                         "path") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a readable {what}: not UTF-8 text; give {give}") from None
    except json.JSONDecodeError as exc:
        # the position and the reason, never the text
        raise UsageError(f"{path}: not a readable {what}: {exc}; make {remake}") from None
    except RecursionError:
        raise UsageError(f"{path}: invalid {what}: nested deeper than {depth} levels; make {remake}") from None
    if depth_over(data, depth):
        raise UsageError(f"{path}: invalid {what}: nested deeper than {depth} levels; make {remake}")
    return data


def expand_paths(patterns: Sequence[str], example: str) -> list[str]:
    """Each pattern as itself, or, when it is a glob, the files it matches (sorted), so a quoted glob works
    where no shell expands it (CI). A file named twice (two overlapping globs) is kept once, where it first
    appears; an existing file with glob characters in its name is itself. A glob that matches no file is a
    usage error (a typo must not make an empty fleet or an empty merge); `example` shows a good pattern.
    """
    found: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        matches = [pattern]
        if glob.has_magic(pattern) and not os.path.exists(pattern):
            matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
            if not matches:
                raise UsageError(f"{pattern!r} matches no file; check the pattern and the directory it is run in "
                                 f"(quote it so the tool expands it, e.g. {example!r})")
        for match in matches:
            key = os.path.realpath(match)
            if key not in seen:
                seen.add(key)
                found.append(match)
    return found


@functools.cache
def _fleet_validator() -> Any:
    from jsonschema import Draft202012Validator

    from reconciler.manifest.schema import shipped_schema

    return Draft202012Validator(shipped_schema("fleet-report"))


def fleet_report_problems(data: Any) -> list[str]:
    """Every way `data` fails `schemas/fleet-report.schema.json`, one line each."""
    errors = sorted(_fleet_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    # a message quotes the offending value: cut, so a huge one never floods the terminal
    return [clip(f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}") for e in errors]


def clip(text: str, size: int = 300) -> str:
    return text if len(text) <= size else text[:size - 3] + "..."


def load_fleet_report(path: str) -> dict[str, Any]:
    """One fleet report file, read with the care above and checked against its schema."""
    from reconciler.plan.fleet import FORMAT, FORMAT_VERSION

    give = "the files `--report FILE` wrote (plan, drift or apply with several manifests or --shard)"
    data = read_json_document(path, "fleet report", give, "a new one: re-run that shard with --report FILE",
                              MAX_REPORT_BYTES, MAX_REPORT_DEPTH)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{path}: not a fleet report (no \"format\": {FORMAT!r}); give {give}")
    if data.get("format_version") != FORMAT_VERSION:
        raise UsageError(f"{path}: a fleet report of format_version {data.get('format_version')!r}, this reconciler "
                         f"reads {FORMAT_VERSION}; make the reports and merge them with one version")
    problems = fleet_report_problems(data)
    if problems:
        shown = problems[:MAX_SHOWN_PROBLEMS]
        more = [f"  ... and {len(problems) - len(shown)} more"] if len(problems) > len(shown) else []
        raise UsageError(f"{path}: invalid fleet report (re-run that shard with --report FILE):\n" +
                         "\n".join([*(f"  {p}" for p in shown), *more]))
    return data


def load_fleet_reports(patterns: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The fleet reports the patterns name (globs expanded), and their paths to name them by in errors."""
    paths = expand_paths(patterns, "shard-*.json")
    return [load_fleet_report(path) for path in paths], paths
