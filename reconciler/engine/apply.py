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
import heapq
import itertools
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field

from reconciler import threads
from reconciler.error_text import describe_error
from reconciler.errors import ApplyError
from reconciler.kinds.base import Context, Kind, ReplacesInSteps
from reconciler.plan.model import Action, Change, Outcome, Plan, ReplaceOrder, Result

Vertex = tuple[str, str]  # (address, part): part is "create", "update", "delete" or "replace"
UP_PARTS = ("create", "update", "replace")
FREES = "frees"  # the part of a barrier vertex: (kind, FREES); never a change's part


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


@dataclass
class Graph:
    """The apply graph of one plan, built once: O(vertices + edges) to build and to walk.

    `preds[v]` are the vertices that must finish before `v` starts; every real vertex
    is a key. Besides the changes' vertices there is one *barrier* per kind that has
    deletions that run first (`(kind, FREES)`): those deletions lead into it and the
    kind's creations leave it, so "every deletion of a kind before every creation of
    that kind" costs d + c edges instead of d × c. A barrier never runs: it is passed
    as soon as what leads into it is, and fails (its creations are skipped, naming the
    failed deletions) if any of that failed.
    """

    parts: dict[str, tuple[str, ...]]
    preds: dict[Vertex, set[Vertex]] = field(default_factory=dict)

    @property
    def edges(self) -> int:
        return sum(len(p) for p in self.preds.values())


def is_barrier(vertex: Vertex) -> bool:
    return vertex[1] == FREES


def build_graph(changes: Mapping[str, Change], kinds: Mapping[str, Kind]) -> Graph:
    """The graph of the pending `changes` (only edges between pending changes matter).

    Linear: each change's edges come from its own `depends_on` (and its live
    resource's), a reverse index gives the referrers of a create-first replacement,
    and the deletions that free something for a kind's creations meet in that kind's
    barrier.
    """
    parts = {address: _parts(change, kinds[change.kind]) for address, change in changes.items()}
    graph = Graph(parts)
    preds = graph.preds
    for address, ps in parts.items():
        for p in ps:
            preds[(address, p)] = set()

    def up(address: str) -> Vertex | None:
        return next(((address, p) for p in parts.get(address, ()) if p in UP_PARTS), None)

    def down(address: str) -> Vertex | None:
        return (address, "delete") if "delete" in parts.get(address, ()) else None

    referrers: dict[str, list[str]] = {}  # address -> the pending changes that declare they depend on it
    for address, change in changes.items():
        first, *rest = parts[address]
        for later in rest:  # the two halves of a replacement, in the kind's order
            preds[(address, later)].add((address, first))
        mine_up, mine_down = up(address), down(address)
        for dep in change.depends_on:
            if dep != address:
                referrers.setdefault(dep, []).append(address)
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
            preds[(address, "delete")].update(v for other in referrers.get(address, ()) for v in (up(other),)
                                              if v is not None)
    # a deletion that frees something runs before the creations of the same kind of thing (through the
    # kind's barrier; a delete-first replacement's own create already follows its delete, so passing
    # through the barrier adds no order between a change and itself that was not there)
    for address, ps in parts.items():
        if ps[0] == "delete" and kinds[changes[address].kind].delete_frees:
            preds.setdefault((changes[address].kind, FREES), set()).add((address, "delete"))
    for address, change in changes.items():
        barrier = (change.kind, FREES)
        creating = next(((address, p) for p in parts[address] if p in ("create", "replace")), None)
        if creating is not None and barrier in preds:
            preds[creating].add(barrier)
    _moves_away_first(changes, parts, preds)
    return graph


def _moves_away_first(changes: Mapping[str, Change], parts: Mapping[str, tuple[str, ...]],
                      preds: dict[Vertex, set[Vertex]]) -> None:
    """A deleted resource goes only after what still uses it has moved away (an update that takes
    a user out of a group being deleted runs first), so a failed move skips the deletion instead
    of leaving the user with neither group. Only where it makes no circle (a kind whose deletions
    free what its creations need keeps that order): these edges are all added, or none.
    """
    added: list[tuple[Vertex, Vertex]] = []
    for address, change in changes.items():
        if parts[address] != ("update",) or change.live is None:
            continue
        for dep in set(change.live.depends_on) - set(change.depends_on) - {address}:
            target = (dep, "delete")
            if parts.get(dep) == ("delete",) and (address, "update") not in preds[target]:
                preds[target].add((address, "update"))
                added.append((target, (address, "update")))
    if not added:
        return
    try:
        graphlib.TopologicalSorter(preds).prepare()
    except graphlib.CycleError:
        for target, vertex in added:
            preds[target].discard(vertex)


def critical_path(graph: Graph) -> list[Vertex]:
    """The longest chain of vertices that must run one after another (barriers left out), first to last.

    However wide an apply runs, it takes at least the sum of these steps' durations
    (each step is a few calls: the write, its waits, its tags); `make bench` can print
    it. O(V + E); ties broken by vertex order, so the answer is deterministic. Raises
    graphlib.CycleError on a circle, as apply would.
    """
    depth: dict[Vertex, int] = {}
    via: dict[Vertex, Vertex | None] = {}
    for vertex in graphlib.TopologicalSorter(graph.preds).static_order():
        best = max(sorted(graph.preds.get(vertex, ())), key=lambda p: depth[p], default=None)
        depth[vertex] = (depth[best] if best is not None else 0) + (0 if is_barrier(vertex) else 1)
        via[vertex] = best
    end = max(sorted(depth), key=lambda v: depth[v], default=None)
    path: list[Vertex] = []
    while end is not None:
        if not is_barrier(end):
            path.append(end)
        end = via[end]
    return path[::-1]


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

    Cost: the graph is built once; each vertex is made ready, started and finished
    once, at O(its degree) (graphlib's `done` walks only its successors). At most
    `parallelism` vertices are handed to the pool at a time (ready ones wait in a heap,
    in the order they became ready, then vertex order), so each wait looks at no more than that many futures, and
    a stop leaves nothing queued in the pool. A vertex with a failed predecessor, and
    a barrier, is settled in the walk itself without a thread.
    """
    pending = {c.address: c for c in plan.pending}
    graph = build_graph(pending, kinds)
    parts, preds = graph.parts, graph.preds
    sorter = graphlib.TopologicalSorter(preds)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(f"{a} ({p})" for a, p in exc.args[1])
        raise ApplyError(f"the plan's changes depend on each other in a circle: {cycle}; nothing was applied (a bug: "
                         "please report it)") \
            from None
    results: dict[Vertex, Result] = {}
    roots: dict[Vertex, tuple[str, ...]] = {}  # a failed vertex: itself; a skipped one: the failures it waited for
    started_changes: set[str] = set()

    def upstream(vertex: Vertex) -> tuple[str, ...]:
        """The failures at the root of what `vertex` waited for (O(its in-degree))."""
        return tuple(sorted({root for v in preds[vertex] if v in roots for root in roots[v]}))

    def run(vertex: Vertex) -> Result:
        address, part = vertex
        change = pending[address]
        kind = kinds[change.kind]
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
            roots[vertex] = result.cause or (vertex[0],)
        address = vertex[0]
        if all((address, p) in results for p in parts[address]):
            on_event("end", pending[address], _combine(pending[address], parts[address], results))

    batches = itertools.count()

    def settle_ready(runnable: list[tuple[int, Vertex]]) -> None:
        """Move what is ready into `runnable`, settling barriers and skips on the spot (a walk, not a rescan).

        `runnable` is a heap of (batch, vertex): what became ready earlier starts
        earlier, and within a batch in vertex order (deterministic at parallelism 1).
        """
        ready = sorter.get_ready()
        while ready:
            batch = next(batches)
            for vertex in ready:
                failures = upstream(vertex)
                if is_barrier(vertex):
                    if failures:
                        roots[vertex] = failures
                elif failures:
                    change = pending[vertex[0]]
                    finish(vertex, Result(vertex[0], change.action, Outcome.SKIPPED,
                                          f"upstream failed: {', '.join(failures)}", cause=failures))
                else:
                    heapq.heappush(runnable, (batch, vertex))
                    continue
                sorter.done(vertex)
            ready = sorter.get_ready()

    width = max(1, parallelism)
    pool = threads.pool(width, "apply")
    runnable: list[tuple[int, Vertex]] = []  # a heap: ready, not yet handed to the pool
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
                settle_ready(runnable)
                while runnable and len(running) < width:
                    _, vertex = heapq.heappop(runnable)
                    if vertex[0] not in started_changes:
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
