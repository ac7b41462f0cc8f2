"""What apply shows while it runs: one reporter interface, a live one for terminals and a plain one for logs.

The engine calls `start` / `end` for each change (from the walk's thread), kinds call
`progress(address, event)` and `log(message)` (from any apply thread); `summary` is the
last thing printed, on stdout. Both reporters keep the same promises:

- each finished change is printed once, when it finishes (`created`, `destroyed`,
  `FAILED`), with the id it has (from the read, or the create) and the time it took;
- the summary lists only what did not get done: the failures (with their message) and
  the changes skipped, each skip with the failed addresses that caused it, then
  `Apply complete: N done, N failed, N skipped.`; a success is never printed twice;
- every line passes through `redact`: no secret reaches the terminal or a log;
- colour only says again what a symbol or a word already says (never alone).

`LiveReporter` (stderr is a terminal, colour allowed, not -q) keeps a rich `Live`
area at the bottom: one line per action in flight with its elapsed time, Docker
build steps and layer bytes under an image's line, and an overall `N/M` bar.
`PlainReporter` writes timestamped lines, at most one per layer pushed, and with
`quiet` only failures. This module does I/O (the terminal), so it is not in the pure
`render/` layer; it sits between `render/` and `cli.py`.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from reconciler import threads
from reconciler.kinds.base import Phase, ProgressEvent, Step, Transfer
from reconciler.plan.model import Action, Change, Outcome, Result
from reconciler.render.lines import SYMBOL
from reconciler.secret import redact

# what a change is doing while it runs, and what it did (Terraform's words: creating / created)
DOING = {Action.CREATE: "creating", Action.UPDATE: "updating", Action.REPLACE: "replacing",
         Action.DELETE: "destroying", Action.ADOPT: "adopting", Action.NOOP: "checking"}
DONE = {Action.CREATE: "created", Action.UPDATE: "updated", Action.REPLACE: "replaced",
        Action.DELETE: "destroyed", Action.ADOPT: "adopted", Action.NOOP: "in sync"}
# the plan's colours (render/text.py): green adds, yellow changes, magenta replaces, red deletes and fails
COLOR = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.REPLACE: "magenta", Action.DELETE: "red",
         Action.ADOPT: "bold", Action.NOOP: ""}
Ids = Callable[[str], str | None]  # an address's AWS id once known (the engine's `Context.ids.get`)
ANSI = {"red": "31", "green": "32", "yellow": "33", "magenta": "35", "bold": "1", "dim": "2"}


def paint(text: str, color: str, enabled: bool) -> str:
    """`text` in an ANSI colour when `enabled` (for stdout, which rich does not own)."""
    if not enabled or not color:
        return text
    return f"\033[{ANSI[color]}m{text}\033[0m"


def seconds_text(seconds: float) -> str:
    """`2.1s` under a minute, `1m05s` above: the elapsed time of one action."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def elapsed_text(seconds: float) -> str:
    """`4s`, `40s`, `1m05s`: a running action's age, whole seconds (it ticks; tenths would flicker)."""
    return f"{int(seconds)}s" if seconds < 60 else seconds_text(seconds)


def size_text(count: int) -> str:
    """Bytes for humans, decimal as Docker prints them: `512 B`, `3.4 kB`, `12.3 MB`."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def finished_text(change: Change, result: Result, ident: str | None) -> str:
    """`vpc.main.subnet.a (subnet-0abc) created` or `... FAILED`: what one finished change says."""
    # an id that only repeats the address's last part (an IAM user's name, an image's repo:tag) is noise
    where = f"{change.address} ({ident})" if ident and not change.address.endswith(ident) else change.address
    if result.outcome is Outcome.DONE:
        return f"{where} {DONE[change.action]}"
    if result.outcome is Outcome.FAILED:
        return f"{where} FAILED ({change.action.value})"
    return f"{where} skipped"


def summary_text(results: Sequence[Result], color: bool = False, verb: str = "Apply") -> str:
    """The last words of an apply: only what was not done, then the counts. Pure.

    A skip says why: the failed addresses it waited for (`upstream failed: a, b`, the
    roots, as `Result.cause` holds them), or that it never started (`not started:
    interrupted by SIGINT`).
    """
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    skipped = [r for r in results if r.outcome is Outcome.SKIPPED]
    lines: list[str] = []
    if failed:
        lines.append(paint("Failed:", "red", color))
        lines.extend(paint(f"  x {r.action.value} {r.address}", "red", color) + f": {r.message}" for r in failed)
    if skipped:
        lines.append(paint("Skipped:", "yellow", color))
        # the engine's message names the failures at the root (`upstream failed: a`), or why nothing started
        lines.extend(f"    {r.action.value} {r.address}: {r.message}" for r in skipped)
    done = len(results) - len(failed) - len(skipped)
    # "complete" only when everything was done: a run with failures or skips stopped short
    state = "complete" if not failed and not skipped else "incomplete"
    counts = f"{verb} {state}: {done} done, {len(failed)} failed, {len(skipped)} skipped."
    lines.append(paint(counts, "red" if failed or skipped else "green", color))
    return redact("\n".join(lines)) + "\n"


class Reporter(Protocol):
    """What `cli._apply` drives; both implementations are thread-safe."""

    def __enter__(self) -> Reporter: ...

    def __exit__(self, *exc: object) -> None: ...

    def start(self, change: Change) -> None: ...

    def end(self, change: Change, result: Result) -> None: ...

    def progress(self, address: str, event: ProgressEvent) -> None: ...

    def log(self, message: str) -> None: ...


def _ident(ids: Ids, change: Change) -> str | None:
    """The id a finished change has: the new one after a create, the live one otherwise."""
    return ids(change.address) or (change.live.id if change.live is not None else None)


def utc_stamp(now: datetime.datetime | None = None) -> str:
    """`2026-12-01T15:04:05Z`: the prefix of every plain line."""
    moment = now or datetime.datetime.now(datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PlainReporter:
    """Timestamped lines for logs, pipes, NO_COLOR and -q: nothing moves, nothing is redrawn.

    Per change: one line when it finishes, and while it runs a `still creating (10s
    elapsed)` line every `heartbeat` seconds (as Terraform prints: which action a stalled
    log waits for is then plain, and a quick action's address appears once); per image:
    its phases (building, pushing), each build step, and one line per layer once it is
    in the registry, never per percent. With `quiet`: only failures. `stream`, `clock`
    and `monotonic` are parameters so a test feeds events in and reads lines out
    (`tick` is what the heartbeat thread calls).
    """

    def __init__(self, stream: IO[str], ids: Ids = lambda address: None, quiet: bool = False,
                 clock: Callable[[], datetime.datetime] | None = None, heartbeat: float = 10.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.ids, self.quiet = stream, ids, quiet
        self.clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self.heartbeat, self.monotonic = heartbeat, monotonic
        # re-entrant: apply's signal handler logs from the main thread, maybe while that thread is writing a line
        self._lock = threading.RLock()
        self._flights: dict[str, tuple[Change, float, int]] = {}  # address: (change, started, beats printed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PlainReporter:
        if self.heartbeat > 0 and not self.quiet:
            self._thread = threads.thread(self._beat, name="apply-heartbeat")
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.stream.flush()

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, self.heartbeat)):
            self.tick()

    def tick(self) -> None:
        """Print `still <doing> (Ns elapsed)` for each change in flight that has run another heartbeat."""
        now = self.monotonic()
        due: list[str] = []
        with self._lock:
            for address, (change, started, beats) in list(self._flights.items()):
                if now - started >= (beats + 1) * self.heartbeat:
                    self._flights[address] = (change, started, beats + 1)
                    due.append(f"{address} still {DOING[change.action]} ({elapsed_text(now - started)} elapsed)")
        for line in due:
            self._line(line)

    def _line(self, text: str) -> None:
        with self._lock:
            self.stream.write(f"{utc_stamp(self.clock())} {redact(text)}\n")
            self.stream.flush()

    def start(self, change: Change) -> None:
        with self._lock:
            self._flights[change.address] = (change, self.monotonic(), 0)

    def end(self, change: Change, result: Result) -> None:
        with self._lock:
            self._flights.pop(change.address, None)
        if result.outcome is Outcome.DONE and not self.quiet:
            self._line(f"{finished_text(change, result, _ident(self.ids, change))} ({seconds_text(result.seconds)})")
        elif result.outcome is Outcome.FAILED:
            self._line(f"{finished_text(change, result, _ident(self.ids, change))} after "
                       f"{seconds_text(result.seconds)}: {result.message}")

    def progress(self, address: str, event: ProgressEvent) -> None:
        if self.quiet:
            return
        if isinstance(event, Phase):
            self._line(f"{address}: {event.text}")
        elif isinstance(event, Step):
            total = f"/{event.total}" if event.total else ""
            self._line(f"{address}: build step {event.number}{total}: {event.text}")
        elif event.done:
            what = "already exists" if event.existed else "pushed" + (f" ({size_text(event.total)})"
                                                                      if event.total else "")
            self._line(f"{address}: layer {event.part} {what}")

    def log(self, message: str) -> None:
        if not self.quiet:
            self._line(message)


@dataclass
class _Flight:
    """One change in flight, as the live area shows it."""

    change: Change
    started: float
    phase: str = ""
    step: Step | None = None
    layers: dict[str, Transfer] = field(default_factory=dict)


class LiveReporter:
    """A rich `Live` area on stderr (a terminal): actions in flight, their elapsed time, an `N/M` bar.

    Finished changes and kinds' messages are printed above the area, once. The area is
    drawn from the state at each refresh (4 a second), so the elapsed times tick even
    while nothing reports; events only update the state, under a lock.
    """

    MAX_LAYERS = 6  # layers shown per image; the rest are counted in the image's total

    def __init__(self, total: int, ids: Ids = lambda address: None, console: Any = None) -> None:
        from rich.console import Console

        self.total, self.ids = total, ids
        self.console = console or Console(stderr=True, highlight=False)
        self.finished = 0
        self.started = time.monotonic()
        self.flights: dict[str, _Flight] = {}
        self._lock = threading.RLock()  # re-entrant: see PlainReporter (a signal handler logs)
        self._live: Any = None

    def __enter__(self) -> LiveReporter:
        from rich.live import Live

        self._live = Live(get_renderable=self._render, console=self.console, refresh_per_second=4, transient=True,
                          redirect_stdout=False, redirect_stderr=True)
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _print(self, markup: Any) -> None:
        if self._live is not None:
            self._live.refresh()  # the area under the new line shows now's state, not the last tick's
        self.console.print(markup)

    def start(self, change: Change) -> None:
        with self._lock:
            self.flights[change.address] = _Flight(change, time.monotonic())

    def end(self, change: Change, result: Result) -> None:
        from rich.text import Text

        with self._lock:
            flight = self.flights.pop(change.address, None)
            self.finished += 1
        took = seconds_text(result.seconds)
        text = finished_text(change, result, _ident(self.ids, change))
        layers = list(flight.layers.values()) if flight is not None else []
        if layers:  # what the push moved, once the live bars are gone
            sent = sum(t.total for t in layers if not t.existed)
            took += f" ({len(layers)} layer{'s' if len(layers) != 1 else ''}, {size_text(sent)} pushed)"
        if result.outcome is Outcome.DONE:
            self._print(Text(f"{SYMBOL[change.action]} {redact(text)} {took}", style=COLOR[change.action]))
        elif result.outcome is Outcome.FAILED:
            self._print(Text(f"x {redact(text)} after {took} (the summary says why)", style="bold red"))
        # a skip never ran: it counts on the bar and the summary names it, with the failure it waited for

    def progress(self, address: str, event: ProgressEvent) -> None:
        with self._lock:
            flight = self.flights.get(address)
            if flight is None:
                return
            if isinstance(event, Phase):
                flight.phase, flight.step = redact(event.text), None
            elif isinstance(event, Step):
                flight.step = event
            else:
                before = flight.layers.get(event.part)
                flight.layers[event.part] = event
                if before is not None and (before.total or not event.total):
                    return  # bytes of a known layer: the next tick shows them
        if self._live is not None:
            # a phase, a build step, a layer's size: few, each drawn at least once (a tick can miss them)
            self._live.refresh()

    def log(self, message: str) -> None:
        from rich.text import Text

        self._print(Text(redact(message), style="dim"))

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        with self._lock:
            flights = sorted(self.flights.values(), key=lambda f: f.started)
            rows: list[Any] = []
            for flight in flights:
                rows.extend(self._flight_rows(flight, now))
            finished = self.finished
        grid = Table.grid(padding=(0, 1))
        grid.add_column()
        grid.add_column()
        grid.add_column()
        grid.add_row(ProgressBar(total=max(1, self.total), completed=finished, width=40),
                     Text(f"{finished}/{self.total}", style="bold"),
                     Text(elapsed_text(now - self.started), style="dim"))
        return Group(*rows, grid)

    def _flight_rows(self, flight: _Flight, now: float) -> Iterable[Any]:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        change = flight.change
        # one terminal row per action, cut with … rather than wrapped: the area keeps its height as it ticks
        head = Text(f"{change.address}: {DOING[change.action]}… ", style=COLOR[change.action], no_wrap=True,
                    overflow="ellipsis")
        head.append(elapsed_text(now - flight.started), style="bold")
        if flight.phase:
            head.append(f"  {flight.phase}", style="dim")
        if flight.step is not None:
            total = f"/{flight.step.total}" if flight.step.total else ""
            head.append(f"  Step {flight.step.number}{total}: {redact(flight.step.text)[:60]}", style="cyan")
        layers = list(flight.layers.values())
        if layers:
            sent = sum(t.current for t in layers)
            size = sum(t.total for t in layers)
            done = sum(1 for t in layers if t.done)
            head.append(f"  {done}/{len(layers)} layers, {size_text(sent)} / {size_text(size)}", style="cyan")
        yield head
        busy = [t for t in layers if not t.done and t.total]
        if busy:
            grid = Table.grid(padding=(0, 1))
            for _ in range(3):
                grid.add_column()
            for layer in busy[:self.MAX_LAYERS]:
                grid.add_row(Text(f"    layer {layer.part[:12]}"), ProgressBar(total=layer.total,
                                                                                  completed=layer.current, width=30),
                             Text(f"{size_text(layer.current)} / {size_text(layer.total)}"))
            yield grid


def reporter_for(*, total: int, ids: Ids, quiet: bool, no_color: bool, stderr: IO[str]) -> Reporter:
    """The live reporter when stderr is a terminal that may be drawn on, else the plain one."""
    import os

    live = (not quiet and not no_color and stderr.isatty() and os.environ.get("TERM", "") not in ("dumb", ""))
    if live:
        return LiveReporter(total, ids)
    return PlainReporter(stderr, ids, quiet=quiet)
