"""Apply's reporters with plain data: events in, lines out (terminal/progress.py), and the Docker
push stream turned into per-layer byte events (kinds/ecr/_docker.py)."""

from __future__ import annotations

import datetime
import io
import re
import threading
from typing import Any

from rich.console import Console

from reconciler.kinds.base import Phase, Step, Transfer
from reconciler.kinds.ecr import _docker
from reconciler.plan.model import Action, Change, LiveResource, Outcome, Result
from reconciler.secret import Secret
from reconciler.terminal.progress import (
    LiveReporter,
    PlainReporter,
    elapsed_text,
    reporter_for,
    seconds_text,
    size_text,
    summary_text,
)

NOW = datetime.datetime(2026, 12, 1, 15, 4, 5, tzinfo=datetime.UTC)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def change(address: str, action: Action = Action.CREATE, live_id: str | None = None) -> Change:
    live = LiveResource(address, "ec2.subnet", live_id, {}) if live_id else None
    return Change(address, "ec2.subnet", action, "test", live=live)


def plain(quiet: bool = False, ids: dict[str, str] | None = None) -> tuple[PlainReporter, io.StringIO]:
    stream = io.StringIO()
    known = ids or {}
    return PlainReporter(stream, known.get, quiet=quiet, clock=lambda: NOW), stream


def test_plain_lines_are_timestamped_and_each_change_finishes_once() -> None:
    reporter, stream = plain(ids={"vpc.main.subnet.public-a": "subnet-0abc"})
    subnet, old = change("vpc.main.subnet.public-a"), change("vpc.main.subnet.old", Action.DELETE, "subnet-0old")
    with reporter:
        reporter.start(subnet)
        reporter.start(old)
        reporter.end(subnet, Result(subnet.address, Action.CREATE, Outcome.DONE, "", 2.14))
        reporter.end(old, Result(old.address, Action.DELETE, Outcome.DONE, "", 61.0))
    assert stream.getvalue().splitlines() == [
        "2026-12-01T15:04:05Z vpc.main.subnet.public-a (subnet-0abc) created (2.1s)",
        "2026-12-01T15:04:05Z vpc.main.subnet.old (subnet-0old) destroyed (1m01s)",
    ]


def test_plain_says_still_creating_every_heartbeat_while_a_change_runs() -> None:
    clock = [100.0]
    stream = io.StringIO()
    reporter = PlainReporter(stream, quiet=False, clock=lambda: NOW, heartbeat=30, monotonic=lambda: clock[0])
    nat, subnet = change("vpc.main.nat.public-a"), change("vpc.main.subnet.a", Action.DELETE, "subnet-0a")
    reporter.start(nat)
    clock[0] = 115.0
    reporter.start(subnet)
    for now in (129.0, 130.0, 131.0, 145.0, 161.0):
        clock[0] = now
        reporter.tick()
    reporter.end(nat, Result(nat.address, Action.CREATE, Outcome.DONE, "", 62.0))
    clock[0] = 400.0
    reporter.tick()
    lines = [line.split(" ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines == ["vpc.main.nat.public-a still creating (30s elapsed)",
                     "vpc.main.subnet.a still destroying (30s elapsed)",
                     "vpc.main.nat.public-a still creating (1m01s elapsed)",
                     "vpc.main.nat.public-a created (1m02s)",
                     "vpc.main.subnet.a still destroying (4m45s elapsed)"]


def test_plain_quiet_prints_only_failures_with_their_message() -> None:
    reporter, stream = plain(quiet=True)
    ok, bad = change("iam.user.a"), change("iam.user.b", Action.UPDATE)
    reporter.start(ok)
    reporter.progress("iam.user.a", Phase("building"))
    reporter.log("a retry")
    reporter.end(ok, Result(ok.address, Action.CREATE, Outcome.DONE, "", 1.0))
    reporter.end(bad, Result(bad.address, Action.UPDATE, Outcome.FAILED, "AccessDenied (iam:TagUser)", 0.5))
    assert stream.getvalue().splitlines() == [
        "2026-12-01T15:04:05Z iam.user.b FAILED (update) after 0.5s: AccessDenied (iam:TagUser)"]


def test_plain_push_progress_is_one_line_per_layer_once_it_is_in_the_registry() -> None:
    reporter, stream = plain()
    address = "image.web:latest"
    reporter.progress(address, Phase("building inputs sha256:0123"))
    reporter.progress(address, Step(3, 7, "RUN apk add curl"))
    for current in range(0, 5_000_001, 100_000):  # fifty byte events: no line each
        reporter.progress(address, Transfer("3f4a5b6c7d8e", current, 5_000_000))
    reporter.progress(address, Transfer("3f4a5b6c7d8e", 5_000_000, 5_000_000, done=True))
    reporter.progress(address, Transfer("aaaabbbbcccc", 0, 0, done=True, existed=True))
    lines = [line.split(" ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines == ["image.web:latest: building inputs sha256:0123",
                     "image.web:latest: build step 3/7: RUN apk add curl",
                     "image.web:latest: layer 3f4a5b6c7d8e pushed (5.0 MB)",
                     "image.web:latest: layer aaaabbbbcccc already exists"]


def test_a_signal_handler_may_log_while_the_main_thread_writes_a_line() -> None:
    """apply's SIGINT handler logs from the main thread, which may be inside a write: no deadlock."""
    live = LiveReporter(1, console=Console(file=io.StringIO(), force_terminal=True, width=100))
    for reporter in (plain()[0], live):
        done = threading.Event()

        def write(r: Any = reporter, finished: threading.Event = done) -> None:
            with r, r._lock:  # what `_line` / `end` hold when the signal arrives
                r.log("SIGINT: no new action is started; waiting for those running")
            finished.set()

        threading.Thread(target=write, daemon=True).start()
        assert done.wait(5), f"{type(reporter).__name__} deadlocked"


def test_plain_lines_never_carry_a_secret() -> None:
    password = Secret("registry-password-0123456789")  # registered with the redaction filter
    reporter, stream = plain()
    reporter.log(f"docker login failed for {password.reveal()}")
    reporter.progress("image.web:latest", Phase(f"pushing with {password.reveal()}"))
    assert "registry-password" not in stream.getvalue() and stream.getvalue().count("(sensitive)") == 2


def test_summary_lists_only_failures_and_the_skips_they_caused() -> None:
    results = [
        Result("vpc.main", Action.CREATE, Outcome.DONE, "", 1.0),
        Result("vpc.main.nat.public-a", Action.CREATE, Outcome.FAILED, "InsufficientAddressCapacity", 3.0),
        Result("vpc.main.route_table.private-a", Action.CREATE, Outcome.SKIPPED,
               "upstream failed: vpc.main.nat.public-a", cause=("vpc.main.nat.public-a",)),
        Result("iam.user.x", Action.UPDATE, Outcome.SKIPPED, "not started: interrupted by SIGINT"),
    ]
    text = summary_text(results)
    assert "vpc.main " not in text and "vpc.main:" not in text.replace("vpc.main.", "")  # a success: not again
    assert text.splitlines() == [
        "Failed:",
        "  x create vpc.main.nat.public-a: InsufficientAddressCapacity",
        "Skipped:",
        "    create vpc.main.route_table.private-a: upstream failed: vpc.main.nat.public-a",
        "    update iam.user.x: not started: interrupted by SIGINT",
        "Apply incomplete: 1 done, 1 failed, 2 skipped.",
    ]
    clean = summary_text(results[:1])
    assert clean == "Apply complete: 1 done, 0 failed, 0 skipped.\n"
    assert "\x1b[32m" in summary_text(results[:1], color=True) and "\x1b[" not in clean


def test_times_and_sizes_for_humans() -> None:
    assert [seconds_text(s) for s in (0.04, 2.14, 59.9, 65.2)] == ["0.0s", "2.1s", "59.9s", "1m05s"]
    assert [elapsed_text(s) for s in (4.9, 40.2, 125)] == ["4s", "40s", "2m05s"]
    assert [size_text(n) for n in (512, 3400, 12_345_678, 2_000_000_000)] == ["512 B", "3.4 kB", "12.3 MB",
                                                                             "2.0 GB"]


def test_live_area_shows_flights_layers_and_the_bar_and_prints_each_finish_once() -> None:
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=True, color_system="standard", width=120)
    reporter = LiveReporter(3, {"image.web:latest": "web:latest"}.get, console=console)  # 3: one is skipped
    image, nat = change("image.web:latest"), change("vpc.main.nat.public-a")
    reporter.start(image)
    reporter.start(nat)
    reporter.progress(image.address, Step(3, 7, "RUN apk add curl"))
    reporter.progress(image.address, Transfer("3f4a5b6c7d8e", 2_000_000, 5_000_000))
    reporter.progress(image.address, Transfer("aaaabbbbcccc", 1_000, 1_000, done=True))
    reporter.progress("not.in.flight", Phase("ignored"))
    area = Console(file=io.StringIO(), force_terminal=False, width=120)
    with area.capture() as captured:
        area.print(reporter._render())
    shown = captured.get()
    assert "vpc.main.nat.public-a: creating… 0s" in shown, shown
    assert "Step 3/7: RUN apk add curl" in shown and "1/2 layers, 2.0 MB / 5.0 MB" in shown, shown
    assert "layer 3f4a5b6c7d8e" in shown and "2.0 MB / 5.0 MB" in shown and "0/3" in shown, shown
    reporter.end(image, Result(image.address, Action.CREATE, Outcome.DONE, "", 12.0))
    reporter.end(nat, Result(nat.address, Action.CREATE, Outcome.FAILED, "boom", 1.0))
    route = change("vpc.main.route_table.private-a")  # skipped: never started, named only by the summary
    reporter.end(route, Result(route.address, Action.CREATE, Outcome.SKIPPED, "upstream failed: x", cause=("x",)))
    printed = sink.getvalue()
    assert ANSI.sub("", printed).splitlines() == [
        "+ image.web:latest created 12.0s (2 layers, 5.0 MB pushed)",
        "x vpc.main.nat.public-a FAILED (create) after 1.0s (the summary says why)"]
    assert "\x1b[32m" in printed and "\x1b[1;31m" in printed  # green add, bold red failure
    with area.capture() as captured:
        area.print(reporter._render())
    assert "3/3" in captured.get() and "creating" not in captured.get()


def test_the_live_reporter_only_on_a_drawable_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    import os

    saved = os.environ.get("TERM")
    os.environ["TERM"] = "xterm-256color"
    try:
        assert isinstance(reporter_for(total=1, ids={}.get, quiet=False, no_color=False, stderr=Tty()), LiveReporter)
        for quiet, no_color, stream in ((True, False, Tty()), (False, True, Tty()), (False, False, io.StringIO())):
            made = reporter_for(total=1, ids={}.get, quiet=quiet, no_color=no_color, stderr=stream)
            assert isinstance(made, PlainReporter), (quiet, no_color, stream)
        os.environ["TERM"] = "dumb"
        assert isinstance(reporter_for(total=1, ids={}.get, quiet=False, no_color=False, stderr=Tty()), PlainReporter)
    finally:
        if saved is None:
            os.environ.pop("TERM", None)
        else:
            os.environ["TERM"] = saved


def test_docker_push_events_become_bytes_per_layer() -> None:
    events: list[Transfer] = []
    progress = _docker.PushProgress(events.append)  # type: ignore[arg-type]
    progress.event({"status": "The push refers to repository [h/r]"})
    progress.event({"id": "abc", "status": "Preparing", "progressDetail": {}})
    progress.event({"id": "abc", "status": "Waiting", "progressDetail": {}})
    for current in (0, 10, 10, 60, 600):  # a repeat says nothing; current can exceed total: clamped
        progress.event({"id": "abc", "status": "Pushing", "progressDetail": {"current": current, "total": 100}})
    progress.event({"id": "abc", "status": "Pushed", "progressDetail": {}})
    progress.event({"id": "def", "status": "Layer already exists", "progressDetail": {}})
    progress.event({"status": "1.0: digest: sha256:x size: 5"})
    assert [e for e in events if e.done] == [Transfer("abc", 100, 100, done=True),
                                            Transfer("def", 0, 0, done=True, existed=True)]
    assert [(e.current, e.total) for e in events if e.part == "abc" and not e.done] == [
        (0, 0), (0, 100), (10, 100), (60, 100), (100, 100)]


def test_a_destroy_ends_with_destroy_complete() -> None:
    done = [Result("vpc.main", Action.DELETE, Outcome.DONE, "", 1.0)]
    assert summary_text(done, verb="Destroy") == "Destroy complete: 1 done, 0 failed, 0 skipped.\n"
