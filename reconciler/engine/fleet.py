"""Run many stacks in one process: validate them all, keep a shard, run each in its own thread.

The runner knows nothing of what a stack's command does: the CLI hands it `run_one(member,
stop)`, which calls the same functions the one-manifest command calls (`engine.run.plan_run`,
the lease, apply) with that stack's own Clients, lease and Context, and returns a `Finished`.

Invariants:
- every manifest is validated before any stack starts (`load_fleet`): one invalid manifest
  stops the run with all their problems (exit 3), before any AWS call;
- one stack's failure never stops another: any exception `run_one` raises becomes that
  stack's outcome, status "error", exit code 1 (3 is never a stack's code);
- every member gets exactly one outcome, whatever happens: a stack not started because of
  an interrupt is "error" with error "not started: interrupted", a stack past `timeout` is
  "error" with error "did not finish within --timeout" (its thread is a daemon and is left:
  only read-only commands have a timeout, so nothing is written after it is given up);
- `on_done` is called from the calling thread only, once per stack as it ends: output
  printed there is never interleaved.
"""

from __future__ import annotations

import datetime
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler import threads
from reconciler.engine.reports import expand_paths as expand_files
from reconciler.errors import ManifestError, Problem, ReconcilerError, UsageError
from reconciler.manifest.findings import Finding
from reconciler.manifest.model import Manifest
from reconciler.manifest.validate import load_manifest
from reconciler.plan.fleet import StackIdentity, StackOutcome, duplicate_stacks
from reconciler.secret import redact

DEFAULT_JOBS = 8
NOT_STARTED = "not started: interrupted"


def expand_paths(arguments: Sequence[str]) -> list[str]:
    """Manifest arguments with globs expanded (engine.reports.expand_paths: one rule for every file list)."""
    return expand_files(arguments, "fleet/*.yaml")


@dataclass(frozen=True)
class Member:
    """One stack of the fleet: its identity and its already-validated manifest."""

    identity: StackIdentity
    loaded: tuple[Manifest, list[Finding]]


def load_fleet(paths: Sequence[str], region: str | None = None) -> list[Member]:
    """Validate every manifest (no AWS call); members sorted by identity.

    Raises ManifestError with every problem of every invalid manifest, or UsageError when two
    manifests name one account/region/stack or `region` (--region) is not every manifest's.
    """
    members: list[Member] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            manifest, findings = load_manifest(path)
        except ManifestError as exc:
            problems.extend(exc.problems)
            continue
        members.append(Member(StackIdentity(manifest.account or "", manifest.region, manifest.stack, path),
                              (manifest, findings)))
    if problems:
        raise ManifestError(problems)
    doubled = duplicate_stacks([m.identity for m in members])
    if doubled:
        names = {key: [m.identity.manifest for m in members if m.identity.key == key] for key in doubled}
        raise UsageError("two manifests name the same stack: " +
                         "; ".join(f"{key} in {', '.join(files)}" for key, files in names.items()) +
                         "; give each stack one manifest (or different stack names)")
    if region:
        other = [m.identity.manifest for m in members if m.identity.region != region]
        if other:
            raise UsageError(f"--region {region} differs from the region of {', '.join(other)}; drop --region, "
                             "or leave those manifests out")
    return sorted(members, key=lambda m: m.identity)


class Stop:
    """The fleet's shared stop flag: set by the one signal handler, read by every stack's apply."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    def set(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
        self.event.set()

    def reason(self) -> str | None:
        if self.signum is None:
            return None
        return f"interrupted by {signal.Signals(self.signum).name}"


@dataclass(frozen=True)
class Finished:
    """What `run_one` returns for a stack that ran to its end (an error is raised instead)."""

    status: str
    exit_code: int
    report: Mapping[str, Any] | None
    text: str = ""  # the stack's own rendered output, printed under its header
    error: str | None = None  # with status "error": a failure `run_one` caught to keep its output


@dataclass
class _Running:
    started_at: str
    started: float
    thread: threading.Thread = field(repr=False)


def _utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def describe_failure(exc: BaseException, verbose: bool) -> tuple[str, str]:
    """(the report's error line, the text printed under the stack) for an exception a stack raised."""
    if isinstance(exc, ReconcilerError):
        message = redact(str(exc))
        return message, f"error: {message}\n" if not isinstance(exc, ManifestError) else message + "\n"
    # a bug or an AWS error no layer turned into ours: its type, and with -v where it came from
    message = f"{type(exc).__name__}: {redact(str(exc))}"
    text = f"error: {message}; this is unexpected: re-run with -v and report it\n"
    if verbose:
        text += redact("".join(traceback.format_exception(exc)))
    return message, text


def run_fleet(members: Sequence[Member], run_one: Callable[[Member, Stop], Finished], *, jobs: int, stop: Stop,
              on_done: Callable[[StackOutcome, str], None], timeout: float | None = None,
              verbose: bool = False, poll: float = 0.2) -> list[StackOutcome]:
    """Run `run_one` for every member, at most `jobs` at once; one outcome per member (see the invariants)."""
    finished: queue.Queue[tuple[int, StackOutcome, str]] = queue.Queue()
    running: dict[int, _Running] = {}
    outcomes: dict[int, StackOutcome] = {}

    def work(index: int, member: Member, started_at: str, started: float) -> None:
        try:
            result = run_one(member, stop)
        except BaseException as exc:  # one stack's failure, whatever it is, is that stack's alone
            error, text = describe_failure(exc, verbose)
            outcome = StackOutcome(member.identity, "error", 1, started_at, time.monotonic() - started, error)
            finished.put((index, outcome, text))
            return
        outcome = StackOutcome(member.identity, result.status, result.exit_code, started_at,
                               time.monotonic() - started, result.error, result.report)
        finished.put((index, outcome, result.text))

    def end(index: int, outcome: StackOutcome, text: str) -> None:
        outcomes[index] = outcome
        on_done(outcome, text)

    upcoming = list(enumerate(members))
    upcoming.reverse()  # popped from the end: members start in report order
    while upcoming or running:
        while upcoming and len(running) < jobs and not stop.event.is_set():
            index, member = upcoming.pop()
            started_at, started = _utc_now(), time.monotonic()
            thread = threads.thread(work, args=(index, member, started_at, started),
                                    name=f"stack-{member.identity.stack}")
            running[index] = _Running(started_at, started, thread)
            thread.start()
        if stop.event.is_set():
            while upcoming:  # no new stack starts once interrupted; each still gets its line in the report
                index, member = upcoming.pop()
                end(index, StackOutcome(member.identity, "error", 1, _utc_now(), 0.0, NOT_STARTED),
                    f"error: {NOT_STARTED}\n")
        if not running:
            continue
        try:
            index, outcome, text = finished.get(timeout=poll)
        except queue.Empty:
            pass
        else:
            if index in running:  # a stack already given up for its timeout is not reported twice
                del running[index]
                end(index, outcome, text)
        if timeout is not None:
            now = time.monotonic()
            for index in [i for i, r in running.items() if now - r.started > timeout]:
                run = running.pop(index)
                message = (f"did not finish within --timeout {timeout:g} s (is the AWS endpoint answering?); "
                           "nothing was changed; check the endpoint, or pass a longer --timeout")
                end(index, StackOutcome(members[index].identity, "error", 1, run.started_at, now - run.started,
                                        message), f"error: {message}\n")
    return [outcomes[i] for i in range(len(members))]


def default_jobs(stacks: int) -> int:
    """min(8, stacks), at least 1: enough to hide AWS's latency, few enough for two cores."""
    return max(1, min(DEFAULT_JOBS, stacks))
