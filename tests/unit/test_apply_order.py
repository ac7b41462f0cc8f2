"""The apply walk with plain-Python kinds: order, parallelism, upstream failure."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

from reconciler.engine.apply import Outcome, apply_plan
from reconciler.kinds.base import Context, Kind
from reconciler.manifest.model import DesiredResource
from reconciler.plan.model import Action, Change, LiveResource, Plan


class Recorder(Kind):
    name = "test.thing"

    def __init__(self, fail: set[str] | None = None, delay: float = 0.0) -> None:
        self.log: list[tuple[str, str]] = []
        self.fail = fail or set()
        self.delay = delay
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def _do(self, op: str, change: Change) -> str:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
            self.log.append((op, change.address))
        if change.address in self.fail:
            raise RuntimeError(f"boom at {change.address}")
        return "id-" + change.address

    def create(self, ctx: Context, change: Change) -> str:
        return self._do("create", change)

    def update(self, ctx: Context, change: Change) -> None:
        self._do("update", change)

    def delete(self, ctx: Context, change: Change) -> None:
        self._do("delete", change)


def ctx() -> Context:
    return Context(clients=None, stack="s", region="r", account="1", now=datetime.datetime.now(datetime.UTC))  # type: ignore[arg-type]


def create(address: str, *deps: str) -> Change:
    return Change(address, "test.thing", Action.CREATE, "missing", (), deps,
                  DesiredResource(address, "test.thing", {}, deps))


def delete(address: str, *deps: str) -> Change:
    return Change(address, "test.thing", Action.DELETE, "gone", (), deps, None,
                  LiveResource(address, "test.thing", address, {}, depends_on=deps))


def plan(*changes: Change) -> Plan:
    return Plan("s", "r", "1", "0" * 64, "0" * 64, changes)


def test_creates_follow_dependencies_and_deletes_go_in_reverse() -> None:
    kind = Recorder()
    results = apply_plan(plan(create("c", "b"), create("b", "a"), create("a"),
                              delete("z", "y"), delete("y")), ctx(), {"test.thing": kind}, parallelism=1)
    order = [address for _, address in kind.log]
    assert order.index("a") < order.index("b") < order.index("c")
    assert order.index("z") < order.index("y")
    assert all(r.outcome is Outcome.DONE for r in results)


def test_failure_skips_dependents_but_not_independent_work() -> None:
    kind = Recorder(fail={"a"})
    results = {r.address: r for r in apply_plan(plan(create("a"), create("b", "a"), create("c", "b"), create("x")),
                                               ctx(), {"test.thing": kind})}
    assert results["a"].outcome is Outcome.FAILED and "boom" in results["a"].message
    assert results["b"].outcome is Outcome.SKIPPED and "upstream failed: a" in results["b"].message
    assert results["c"].outcome is Outcome.SKIPPED
    assert results["x"].outcome is Outcome.DONE


def test_independent_actions_run_in_parallel_up_to_the_limit() -> None:
    kind = Recorder(delay=0.05)
    apply_plan(plan(*(create(f"r{i}") for i in range(12))), ctx(), {"test.thing": kind}, parallelism=4)
    assert kind.peak == 4


def test_created_ids_are_remembered_for_references() -> None:
    context = ctx()
    apply_plan(plan(create("a")), context, {"test.thing": Recorder()})
    assert context.resolve("a") == "id-a"


def test_noop_changes_are_not_run(monkeypatch: Any) -> None:
    kind = Recorder()
    noop = Change("n", "test.thing", Action.NOOP, "in sync")
    assert apply_plan(plan(noop), ctx(), {"test.thing": kind}) == [] and kind.log == []
