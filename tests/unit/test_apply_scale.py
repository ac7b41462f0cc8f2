"""The apply walk does linear work: counted operations, never wall time, on a generated plan of ~5,000 changes.

The plan mixes what made the walk quadratic before: many deletions and creations of
one kind (each deletion ordered before each creation), create-first replacements
with referrers, a failure with a wide tree of dependents (skip propagation), and more
ready work than the pool has threads (each wait looked at every submitted future).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from reconciler.engine.apply import apply_plan, build_graph, critical_path
from reconciler.kinds.base import Context, Kind
from reconciler.manifest.model import DesiredResource
from reconciler.plan.model import Action, Change, LiveResource, Outcome, Plan, ReplaceOrder
from tests.unit.test_apply_order import ctx


class Noop(Kind):
    name = "t.noop"

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.fail = fail

    def create(self, ctx: Context, change: Change) -> str:
        if change.address in self.fail:
            raise RuntimeError("refused")
        return change.address

    def update(self, ctx: Context, change: Change) -> None:
        pass

    def delete(self, ctx: Context, change: Change) -> None:
        pass


class Swap(Noop):
    name = "t.swap"
    replace_order = ReplaceOrder.CREATE_FIRST


def _change(action: Action, address: str, kind: str, deps: tuple[str, ...] = ()) -> Change:
    desired = None if action is Action.DELETE else DesiredResource(address, kind, {}, deps)
    live = None if action is Action.CREATE else LiveResource(address, kind, f"old-{address}", {}, depends_on=deps)
    return Change(address, kind, action, "test", (), deps, desired, live)


def generated(n: int) -> Plan:
    """About `n` changes: a tree of creates (each on its parent), as many deletes of the same kind, create-first
    replacements each referred to by a few updates, and one failing create with a subtree under it."""
    quarter = n // 4
    changes: list[Change] = []
    for i in range(quarter):
        deps = (f"c{(i - 1) // 2}",) if i else ()
        changes.append(_change(Action.CREATE, f"c{i}", "t.noop", deps))
        changes.append(_change(Action.DELETE, f"d{i}", "t.noop", (f"d{(i - 1) // 2}",) if i else ()))
    for i in range(quarter // 4):
        changes.append(_change(Action.REPLACE, f"s{i}", "t.swap"))
        changes += [_change(Action.UPDATE, f"u{i}.{j}", "t.noop", (f"s{i}",)) for j in range(3)]
    # a failure at c1: the half of the create tree under it is skipped, naming c1
    return Plan("s", "r", "1", "0" * 64, "0" * 64, tuple(changes))


KINDS: dict[str, Kind] = {"t.noop": Noop(fail=frozenset({"c1"})), "t.swap": Swap()}
WATCHED = ("reconciler/engine/apply.py", "graphlib.py", "concurrent/futures/")


@contextmanager
def counting() -> Iterator[list[int]]:
    """Count the calls (Python and C) made from the apply module, graphlib and concurrent.futures, in every thread."""
    count = [0]

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event in ("call", "c_call") and any(w in frame.f_code.co_filename for w in WATCHED):
            count[0] += 1

    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        yield count
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]


def operations(n: int) -> int:
    plan = generated(n)
    with counting() as count:
        results = apply_plan(plan, ctx(), KINDS, parallelism=8)
    by_address = {r.address: r for r in results}
    assert len(results) == len(plan.pending)
    assert by_address["c1"].outcome is Outcome.FAILED
    assert by_address["c3"].outcome is Outcome.SKIPPED and by_address["c3"].cause == ("c1",)
    assert by_address["c2"].outcome is Outcome.DONE and by_address["d0"].outcome is Outcome.DONE
    assert by_address["s0"].outcome is Outcome.DONE and by_address["u0.2"].outcome is Outcome.DONE
    return count[0]


def test_the_graph_has_linear_edges() -> None:
    plan = generated(5000)
    pending = {c.address: c for c in plan.pending}
    graph = build_graph(pending, KINDS)
    declared = sum(len(c.depends_on) for c in plan.pending)
    # each declared edge gives at most two (the up and the down half), each change one per half and one to or
    # from its kind's barrier; a deletion-before-creation edge per (deletion, creation) pair would be ~1.5 million
    assert graph.edges <= 2 * declared + 3 * len(pending), graph.edges
    assert ("c2", "create") in graph.preds and ("d0", "delete") in graph.preds[("t.noop", "frees")]


def test_applying_four_times_the_changes_costs_about_four_times_the_operations() -> None:
    small, large = operations(1250), operations(5000)
    # linear work gives ~4x (the heap adds a log factor); the quadratic walk gave well over 10x
    assert large < 6 * small, (small, large)


def test_the_critical_path_is_the_longest_chain() -> None:
    plan = Plan("s", "r", "1", "0" * 64, "0" * 64, (
        _change(Action.CREATE, "a", "t.noop"), _change(Action.CREATE, "b", "t.noop", ("a",)),
        _change(Action.CREATE, "c", "t.noop", ("b",)), _change(Action.CREATE, "x", "t.noop", ("a",)),
        _change(Action.DELETE, "old", "t.noop"), _change(Action.REPLACE, "s", "t.swap", ("c",))))
    graph = build_graph({c.address: c for c in plan.changes}, KINDS)
    # the deletion runs before the kind's creations (through the barrier, which is not a step of its own)
    assert critical_path(graph) == [("old", "delete"), ("a", "create"), ("b", "create"), ("c", "create"),
                                    ("s", "create"), ("s", "delete")]
    assert len(critical_path(build_graph({c.address: c for c in generated(5000).pending}, KINDS))) > 10
