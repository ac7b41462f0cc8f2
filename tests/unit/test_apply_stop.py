"""The apply walk asked to stop (a signal, a lost lease): nothing new starts, in-flight work is bounded."""

from __future__ import annotations

import threading
import time

from reconciler.engine.apply import apply_plan
from reconciler.plan.model import Outcome
from tests.unit.test_apply_order import Recorder, create, ctx, plan


def test_a_stop_request_lets_the_running_action_finish_and_starts_nothing_else() -> None:
    kind = Recorder(delay=0.3)
    stop = threading.Event()

    def stopping() -> str | None:
        return "interrupted by SIGTERM" if stop.is_set() else None

    timer = threading.Timer(0.1, stop.set)  # while "a" runs
    timer.start()
    results = {r.address: r for r in apply_plan(plan(create("a"), create("b", "a"), create("c", "b")), ctx(),
                                               {"test.thing": kind}, parallelism=1, stopping=stopping)}
    assert [address for _, address in kind.log] == ["a"]
    assert results["a"].outcome is Outcome.DONE
    assert results["b"].outcome is Outcome.SKIPPED and results["b"].message == "not started: interrupted by SIGTERM"
    assert results["c"].outcome is Outcome.SKIPPED


def test_in_flight_actions_get_a_bounded_drain_then_are_reported_unknown() -> None:
    kind = Recorder(delay=5.0)
    started = time.monotonic()
    results = apply_plan(plan(create("slow"), create("after", "slow")), ctx(), {"test.thing": kind},
                         stopping=lambda: "interrupted by SIGINT" if time.monotonic() - started > 0.1 else None,
                         drain_seconds=0.5)
    assert time.monotonic() - started < 3, "the walk waited for the slow action past its drain"
    by_address = {r.address: r for r in results}
    assert by_address["slow"].outcome is Outcome.FAILED and "outcome is unknown" in by_address["slow"].message
    assert by_address["after"].outcome is Outcome.SKIPPED
