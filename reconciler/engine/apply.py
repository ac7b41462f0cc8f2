"""Apply a plan: a graph walk, independent actions in parallel.

Ordering: creates, updates and replacements after what they depend on; deletions
before what they depend on (reverse order), and every deletion of a resource
before the creation that could reuse its name. A failed action's dependents are
skipped with "upstream failed"; everything independent still runs, so the account
is left in a state a re-run converges from.
"""

from __future__ import annotations

import enum
import graphlib
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from reconciler.error_text import describe_error
from reconciler.kinds.base import Context, Kind
from reconciler.plan.model import Action, Change, Plan


class Outcome(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Result:
    address: str
    action: Action
    outcome: Outcome
    message: str = ""
    seconds: float = 0.0


def _graph(changes: Mapping[str, Change]) -> dict[str, set[str]]:
    """Predecessors of each pending change (only edges between pending changes matter)."""
    preds: dict[str, set[str]] = {address: set() for address in changes}
    for address, change in changes.items():
        for dep in change.depends_on:
            if dep not in changes:
                continue
            if change.action is Action.DELETE and changes[dep].action is Action.DELETE:
                preds[dep].add(address)  # delete the dependent first
            elif change.action is not Action.DELETE:
                preds[address].add(dep)
                if changes[dep].action is Action.DELETE:
                    preds[address].discard(dep)
    # a deletion that frees something must run before creations of the same kind of thing
    deletes = [a for a, c in changes.items() if c.action is Action.DELETE]
    for address, change in changes.items():
        if change.action in (Action.CREATE, Action.REPLACE):
            preds[address].update(d for d in deletes if changes[d].kind == change.kind)
    return preds


def apply_plan(plan: Plan, ctx: Context, kinds: Mapping[str, Kind], parallelism: int = 10,
               on_event: Callable[[str, Change, Result | None], None] = lambda *_: None,
               stopping: Callable[[], str | None] = lambda: None, drain_seconds: float = 60.0) -> list[Result]:
    """Run every pending change of `plan`; returns one Result per pending change.

    `stopping()` is asked before every start: once it gives a reason (a signal, a
    lost lease), nothing new starts; the actions in flight get `drain_seconds` to
    finish, those still running then are FAILED (outcome unknown), and every change
    never started is SKIPPED with "not started: <reason>". Returns without waiting
    for abandoned actions (the caller exits).
    """
    pending = {c.address: c for c in plan.pending}
    sorter = graphlib.TopologicalSorter(_graph(pending))
    sorter.prepare()
    results: dict[str, Result] = {}
    failed: set[str] = set()
    lock = threading.Lock()

    def run(change: Change) -> Result:
        kind = kinds[change.kind]
        upstream = [d for d in _graph(pending)[change.address] if d in failed]
        if upstream:
            return Result(change.address, change.action, Outcome.SKIPPED, f"upstream failed: {', '.join(upstream)}")
        on_event("start", change, None)
        started = time.monotonic()
        try:
            if change.action is Action.CREATE:
                ctx.remember(change.address, kind.create(ctx, change))
            elif change.action is Action.UPDATE:
                kind.update(ctx, change)
            elif change.action is Action.REPLACE:
                ctx.remember(change.address, kind.replace(ctx, change))
            elif change.action is Action.DELETE:
                kind.delete(ctx, change)
        except Exception as exc:
            # never str(exc): a botocore error's text can hold a response body or request values
            return Result(change.address, change.action, Outcome.FAILED, describe_error(exc),
                          time.monotonic() - started)
        return Result(change.address, change.action, Outcome.DONE, "", time.monotonic() - started)

    pool = ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="apply")
    running: dict[Future[Result], str] = {}
    reason: str | None = None
    drain_until = 0.0
    try:
        while sorter.is_active():
            if reason is None:
                reason = stopping()
                if reason is not None:
                    drain_until = time.monotonic() + drain_seconds
            if reason is None:
                for address in sorted(sorter.get_ready()):
                    running[pool.submit(run, pending[address])] = address
            if not running:
                break
            # wake up now and then: a stop request must not wait for the slowest action in flight
            done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                address = running.pop(future)
                result = future.result()
                with lock:
                    results[address] = result
                    if result.outcome is not Outcome.DONE:
                        failed.add(address)
                on_event("end", pending[address], result)
                sorter.done(address)
            if reason is not None and running and time.monotonic() >= drain_until:
                break
    finally:
        pool.shutdown(wait=reason is None, cancel_futures=True)
    for address in running.values():
        change = pending[address]
        results[address] = Result(address, change.action, Outcome.FAILED,
                                  f"still running when stopped ({reason}); its outcome is unknown: re-run apply")
    for address, change in pending.items():
        if address not in results:
            results[address] = Result(address, change.action, Outcome.SKIPPED,
                                      f"not started: {reason or 'unreachable'}")
    return [results[a] for a in sorted(results, key=lambda a: list(pending).index(a))]
