"""The critical path of an apply from empty, from the graph apply itself walks.

Uses `reconciler.engine.apply._graph` (the same edges apply orders its actions by;
nothing is reimplemented here): every desired resource becomes a CREATE change, and
the critical path is the longest chain of vertices in that graph. With unlimited
parallelism and no pacing, an apply cannot finish faster than
`len(chain) x calls per action x latency`.
"""

from __future__ import annotations

import datetime
import graphlib
import re
from collections.abc import Mapping, Sequence

from reconciler.engine.apply import _graph
from reconciler.kinds.base import Kind
from reconciler.manifest.model import DesiredResource
from reconciler.plan.model import Action, Change


def longest_chain(preds: Mapping[tuple[str, str], set[tuple[str, str]]]) -> list[tuple[str, str]]:
    """The longest path (in vertices) of a DAG given as predecessors; ties broken by vertex order."""
    depth: dict[tuple[str, str], int] = {}
    via: dict[tuple[str, str], tuple[str, str] | None] = {}
    for vertex in graphlib.TopologicalSorter(preds).static_order():
        before = sorted(preds.get(vertex, ()), key=lambda v: (-depth[v], v))
        via[vertex] = before[0] if before else None
        depth[vertex] = depth[before[0]] + 1 if before else 1
    if not depth:
        return []
    end: tuple[str, str] | None = min(depth, key=lambda v: (-depth[v], v))
    chain = []
    while end is not None:
        chain.append(end)
        end = via[end]
    return chain[::-1]


def critical_path(desired: Sequence[DesiredResource], kinds: Mapping[str, Kind]) -> list[tuple[str, str]]:
    """The longest chain of actions of an apply that creates every desired resource."""
    changes = {r.address: Change(r.address, r.kind, Action.CREATE, "new", depends_on=r.depends_on, desired=r)
               for r in desired}
    return longest_chain(_graph(changes, kinds))


_DONE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) .*\((\d+(?:\.\d+)?)s\)$")


def acting_span(stderr: str) -> float:
    """Seconds from the first action's start to the last one's end, from apply's progress lines
    (`<UTC time> <address> ... (<seconds>s)`, time to the second): the apply without its start and plan."""
    spans = []
    for line in stderr.splitlines():
        found = _DONE.match(line.strip())
        if found:
            end = datetime.datetime.fromisoformat(found.group(1).replace("Z", "+00:00")).timestamp()
            spans.append((end - float(found.group(2)), end))
    return max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0
