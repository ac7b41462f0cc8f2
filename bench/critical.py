"""The critical path of an apply from empty, from the graph apply itself walks.

Uses `reconciler.engine.apply.build_graph` and `critical_path` (the same edges apply
orders its actions by; nothing is reimplemented here): every desired resource becomes
a CREATE change, and the critical path is the longest chain of vertices in that graph. With unlimited
parallelism and no pacing, an apply cannot finish faster than
`len(chain) x calls per action x latency`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence

from reconciler.engine.apply import build_graph
from reconciler.engine.apply import critical_path as longest_chain
from reconciler.kinds.base import Kind
from reconciler.manifest.model import DesiredResource
from reconciler.plan.model import Action, Change


def critical_path(desired: Sequence[DesiredResource], kinds: Mapping[str, Kind]) -> list[tuple[str, str]]:
    """The longest chain of actions of an apply that creates every desired resource."""
    changes = {r.address: Change(r.address, r.kind, Action.CREATE, "new", depends_on=r.depends_on, desired=r)
               for r in desired}
    return longest_chain(build_graph(changes, kinds))


_DONE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) .*\((\d+(?:\.\d+)?)s\)$")


def _spans(stderr: str) -> list[tuple[float, float]]:
    """(start, end) of each action, from apply's progress lines (`<UTC time> <address> ... (<seconds>s)`)."""
    spans = []
    for line in stderr.splitlines():
        found = _DONE.match(line.strip())
        if found:
            end = datetime.datetime.fromisoformat(found.group(1).replace("Z", "+00:00")).timestamp()
            spans.append((end - float(found.group(2)), end))
    return spans


def acting_span(stderr: str) -> float:
    """Seconds from the first action's start to the last one's end, from apply's progress lines
    (time to the second): the apply without its start and plan."""
    spans = _spans(stderr)
    return max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0


def occupancy(stderr: str, parallelism: int) -> float:
    """How busy apply's workers were while it acted: the actions' seconds summed, over parallelism x the
    acting span. Near 1, the apply was bound by the time each call took (nothing waited on a sleep, a stage
    or the graph); well below 1, by its order or by waits."""
    spans, span = _spans(stderr), acting_span(stderr)
    return sum(e - s for s, e in spans) / (parallelism * span) if span else 0.0
