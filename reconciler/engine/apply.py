"""Apply a plan: a graph walk, independent actions in parallel.

The graph's vertices are parts of changes: a CREATE is one `(address, "create")`,
an UPDATE one `(address, "update")`, a DELETE one `(address, "delete")`, and a
REPLACE two, `(address, "delete")` and `(address, "create")`, ordered by the
kind's `replace_order` (a kind whose replacement is its own sequence of steps,
like access-key rotation, stays one `(address, "replace")` vertex).

Edges, as Terraform draws them:
- a create/update runs after the creates/updates of what it depends on;
- deletions run in reverse dependency order (DestroyEdgeTransformer): if B
  depends on A and both are deleted (alone or as half of a replacement), B's
  delete runs before A's, so a VPC's subnets go before the VPC and a subnet's
  NAT gateway before the subnet, with no kind vacating anything by hand;
- the deletions of a kind run before the creations of that kind (the new one
  may need the name, CIDR or address the old one frees);
- a create-first replacement deletes the old resource only after the
  creates/updates of the changes that depend on it (they move to the new one).

A failed vertex's dependents are skipped with "upstream failed: <the failed
addresses at the root>" (a skip's own dependents name the same roots, never the
skipped change in between: that is what to fix); everything
independent still runs, so the account is left in a state a re-run converges from.
"""

from __future__ import annotations

import graphlib
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from reconciler.error_text import describe_error
from reconciler.errors import ApplyError
from reconciler.kinds.base import Context, Kind, ReplacesInSteps
from reconciler.plan.model import Action, Change, Outcome, Plan, ReplaceOrder, Result

Vertex = tuple[str, str]  # (address, part): part is "create", "update", "delete" or "replace"
UP_PARTS = ("create", "update", "replace")


def _parts(change: Change, kind: Kind) -> tuple[str, ...]:
    """The vertices of one change, in the order they run when nothing else orders them."""
    if change.action is Action.REPLACE:
        if isinstance(kind, ReplacesInSteps):
            return ("replace",)
        if kind.replace_order is ReplaceOrder.CREATE_FIRST:
            return ("create", "delete")
        return ("delete", "create")
    # an adoption is the kind's update: it writes the stack tags and converges what differs
    return {Action.CREATE: ("create",), Action.UPDATE: ("update",), Action.ADOPT: ("update",),
            Action.DELETE: ("delete",)}[change.action]


def _graph(changes: Mapping[str, Change], kinds: Mapping[str, Kind]) -> dict[Vertex, set[Vertex]]:
    """Predecessors of each vertex (only edges between pending changes matter)."""
    parts = {address: _parts(change, kinds[change.kind]) for address, change in changes.items()}
    preds: dict[Vertex, set[Vertex]] = {(a, p): set() for a, ps in parts.items() for p in ps}

    def up(address: str) -> Vertex | None:
        return next(((address, p) for p in parts.get(address, ()) if p in UP_PARTS), None)

    def down(address: str) -> Vertex | None:
        return (address, "delete") if "delete" in parts.get(address, ()) else None

    for address, change in changes.items():
        first, *rest = parts[address]
        for later in rest:  # the two halves of a replacement, in the kind's order
            preds[(address, later)].add((address, first))
        mine_up, mine_down = up(address), down(address)
        if mine_up is not None:
            preds[mine_up].update(v for v in map(up, change.depends_on) if v is not None and v[0] != address)
        if mine_down is not None:
            # what the resource being deleted depends on now (its live edges) and was declared to depend on
            old = {*change.depends_on, *(change.live.depends_on if change.live is not None else ())}
            for dep in old - {address}:
                target = down(dep)
                if target is not None:
                    preds[target].add(mine_down)  # the dependent's delete first
    for address in changes:
        if parts[address] == ("create", "delete"):
            # create-first: the old one goes once its referrers point at the new one
            preds[(address, "delete")].update(
                v for other, c in changes.items() if address in c.depends_on and other != address
                for v in (up(other),) if v is not None)
    # a deletion that frees something runs before the creations of the same kind of thing
    frees = [(a, "delete") for a, ps in parts.items() if ps[0] == "delete"]
    for address, change in changes.items():
        creating = next(((address, p) for p in parts[address] if p in ("create", "replace")), None)
        if creating is not None:
            preds[creating].update(d for d in frees if changes[d[0]].kind == change.kind and d[0] != address)
    return preds


def _combine(change: Change, parts: tuple[str, ...], results: Mapping[Vertex, Result]) -> Result:
    """One Result for a change from its vertices' results (FAILED if any half failed)."""
    mine = [(p, results[(change.address, p)]) for p in parts]
    seconds = sum(r.seconds for _, r in mine)
    if len(mine) == 1:
        only = mine[0][1]
        return Result(change.address, change.action, only.outcome, only.message, seconds, only.cause)
    done = [p for p, r in mine if r.outcome is Outcome.DONE]
    for outcome in (Outcome.FAILED, Outcome.SKIPPED):
        for part, result in mine:
            if result.outcome is outcome:
                prefix = f"{' and '.join(done)} done; " if done else ""
                return Result(change.address, change.action, outcome, f"{prefix}{part}: {result.message}", seconds,
                              result.cause)
    return Result(change.address, change.action, Outcome.DONE, "", seconds)


def apply_plan(plan: Plan, ctx: Context, kinds: Mapping[str, Kind], parallelism: int = 10,
               on_event: Callable[[str, Change, Result | None], None] = lambda *_: None,
               stopping: Callable[[], str | None] = lambda: None, drain_seconds: float = 60.0) -> list[Result]:
    """Run every pending change of `plan`; returns one Result per pending change, in plan order.

    `stopping()` is asked before every start: once it gives a reason (a signal, a
    lost lease), nothing new starts; the vertices in flight get `drain_seconds` to
    finish, those still running then are FAILED (outcome unknown), and every vertex
    never started is SKIPPED with "not started: <reason>". Returns without waiting
    for abandoned actions (the caller exits). `on_event` sees "start" when a change's
    first vertex starts and "end" (with its Result) when its last one has a result.
    """
    pending = {c.address: c for c in plan.pending}
    parts = {address: _parts(change, kinds[change.kind]) for address, change in pending.items()}
    preds = _graph(pending, kinds)
    sorter = graphlib.TopologicalSorter(preds)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(f"{a} ({p})" for a, p in exc.args[1])
        raise ApplyError(f"the plan's changes depend on each other in a circle: {cycle}; nothing was applied (a bug: "
                         "please report it)") \
            from None
    results: dict[Vertex, Result] = {}
    failed: set[Vertex] = set()
    roots: dict[Vertex, tuple[str, ...]] = {}  # a failed vertex: itself; a skipped one: the failures it waited for
    started_changes: set[str] = set()

    def run(vertex: Vertex) -> Result:
        address, part = vertex
        change = pending[address]
        kind = kinds[change.kind]
        upstream = sorted({root for v in preds[vertex] & failed for root in roots[v]})
        if upstream:
            return Result(address, change.action, Outcome.SKIPPED, f"upstream failed: {', '.join(upstream)}",
                          cause=tuple(upstream))
        started = time.monotonic()
        try:
            if part == "create":
                ctx.remember(address, kind.create(ctx, change))
            elif part == "update":
                kind.update(ctx, change)
            elif part == "delete":
                kind.delete(ctx, change)
            else:
                assert isinstance(kind, ReplacesInSteps)
                ctx.remember(address, kind.replace(ctx, change))
        except Exception as exc:
            # never str(exc): a botocore error's text can hold a response body or request values
            return Result(address, change.action, Outcome.FAILED, describe_error(exc), time.monotonic() - started)
        return Result(address, change.action, Outcome.DONE, "", time.monotonic() - started)

    def finish(vertex: Vertex, result: Result) -> None:
        results[vertex] = result
        if result.outcome is not Outcome.DONE:
            failed.add(vertex)
            roots[vertex] = result.cause or (vertex[0],)
        address = vertex[0]
        if all((address, p) in results for p in parts[address]):
            on_event("end", pending[address], _combine(pending[address], parts[address], results))

    pool = ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="apply")
    running: dict[Future[Result], Vertex] = {}
    reason: str | None = None
    drain_until = 0.0
    try:
        while sorter.is_active():
            if reason is None:
                reason = stopping()
                if reason is not None:
                    drain_until = time.monotonic() + drain_seconds
            if reason is None:
                for vertex in sorted(sorter.get_ready()):
                    if vertex[0] not in started_changes and not preds[vertex] & failed:
                        started_changes.add(vertex[0])
                        on_event("start", pending[vertex[0]], None)
                    running[pool.submit(run, vertex)] = vertex
            if not running:
                break
            # wake up now and then: a stop request must not wait for the slowest action in flight
            done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                vertex = running.pop(future)
                finish(vertex, future.result())
                sorter.done(vertex)
            if reason is not None and running and time.monotonic() >= drain_until:
                break
    finally:
        pool.shutdown(wait=reason is None, cancel_futures=True)
    for vertex in running.values():
        results[vertex] = Result(vertex[0], pending[vertex[0]].action, Outcome.FAILED,
                                 f"still running when stopped ({reason}); its outcome is unknown: re-run apply")
    for address, change in pending.items():
        for part in parts[address]:
            results.setdefault((address, part), Result(address, change.action, Outcome.SKIPPED,
                                                       f"not started: {reason or 'unreachable'}"))
    return [_combine(change, parts[address], results) for address, change in pending.items()]
