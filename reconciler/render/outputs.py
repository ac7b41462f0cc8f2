"""`reconcile output`: the ids, ARNs and URIs of a stack, as text, JSON or shell assignments. Pure.

Invariants: one row per address of the manifest, in the order given; an address with no live
resource is "(not created)" in text, null in JSON and absent from env; values are the kinds'
`LiveResource.outputs` (plain strings, never a secret), so nothing here can print one.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping

from reconciler.plan.outputs import OutputReport
from reconciler.plan.outputs import OutputRow as OutputRow  # re-exported: built here before it moved to plan/

ENV_PREFIX = "RECONCILE_"
FORMAT_VERSION = 1  # of the JSON document; raised when a key is renamed or removed (added keys keep it)


_FIRST = ("id", "name", "arn", "uri")


def ordered(outputs: Mapping[str, str]) -> list[tuple[str, str]]:
    """id, name, arn, uri first (what people look for), then the rest by name: the same in every format."""
    return sorted(outputs.items(), key=lambda kv: (_FIRST.index(kv[0]) if kv[0] in _FIRST else len(_FIRST), kv[0]))


def env_name(address: str, output: str) -> str:
    """`vpc.main` + `id` -> `RECONCILE_VPC_MAIN_ID`: upper-cased, every non-alphanumeric run one `_`."""
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]+", "_", f"{address}.{output}".upper()).strip("_")


def format_outputs_text(report: OutputReport) -> str:
    lines = [f"stack {report.stack} in account {report.account}, {report.region}"]
    for row in report.rows:
        if row.not_read is not None:
            lines.append(f"{row.address}  (not read: {row.not_read})")
        elif row.outputs is None:
            lines.append(f"{row.address}  (not created)")
        else:
            mark = "" if row.managed else "  (not managed by this stack: same name, no stack tag)"
            lines.append(f"{row.address}{mark}")
            width = max((len(k) for k in row.outputs), default=0)
            lines.extend(f"  {key:<{width}}  {value}" for key, value in ordered(row.outputs))
    return "\n".join(lines) + "\n"


def outputs_to_json(report: OutputReport) -> dict[str, object]:
    resources: dict[str, object] = {}
    for row in report.rows:
        if row.outputs is None or row.not_read is not None:
            resources[row.address] = None
        else:
            resources[row.address] = {"kind": row.kind, "managed": row.managed,
                                      "outputs": dict(ordered(row.outputs))}
    return {"format_version": FORMAT_VERSION, "stack": report.stack, "region": report.region,
            "account": report.account, "resources": resources}


def format_outputs_json(report: OutputReport) -> str:
    return json.dumps(outputs_to_json(report), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def format_outputs_env(report: OutputReport) -> str:
    """`NAME=value` lines a POSIX shell can `eval` or `source`; values quoted with shlex.quote.

    Two addresses that map to one name (`app-x` and `app.x`) would overwrite each other: the
    second is left out with a comment saying so, never silently.
    """
    lines: list[str] = []
    seen: dict[str, str] = {}
    for row in report.rows:
        if row.outputs is None or row.not_read is not None or not row.managed:
            continue
        for key, value in ordered(row.outputs):
            name = env_name(row.address, key)
            if name in seen:
                lines.append(f"# {name} of {row.address} left out: {seen[name]} has the same name")
                continue
            seen[name] = row.address
            lines.append(f"{name}={shlex.quote(value)}")
    return "\n".join(lines) + ("\n" if lines else "")


OUTPUT_RENDERERS = {"text": format_outputs_text, "json": format_outputs_json, "env": format_outputs_env}
