"""The `reconcile` command line: parse flags, wire the layers, map errors to exit codes.

Exit codes (SPEC.md §4): 0 ok / no changes / no drift; 1 failure talking to AWS,
Docker or applying; 2 changes pending (plan --detailed-exitcode) or drift found;
3 invalid manifest, plan file or command line; 4 stale plan.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler.error_text import aws_exceptions, describe_error
from reconciler.errors import (
    ApplyError,
    Interrupted,
    LockError,
    ManifestError,
    ReconcilerError,
    UsageError,
)
from reconciler.secret import RedactingFilter, redact

if TYPE_CHECKING:  # the renderers are imported only by the commands that render
    from reconciler.render.registry import Style

F = TypeVar("F", bound=Callable[..., Any])


class Out:
    """Where output goes: results to stdout, progress and warnings to stderr."""

    def __init__(self, verbose: bool, quiet: bool, color: bool, no_color: bool = False) -> None:
        self.verbose, self.quiet, self.color = verbose, quiet, color
        self.no_color = no_color  # NO_COLOR / --no-color: also no live drawing on stderr

    def result(self, text: str) -> None:
        click.echo(redact(text), nl=False)

    def info(self, text: str) -> None:
        if not self.quiet:
            click.echo(redact(text), err=True)

    def debug(self, text: str) -> None:
        if self.verbose:
            click.echo(redact(text), err=True)

    def progress(self) -> Any:
        """Where apply's progress lines go."""
        return sys.stderr


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    # request and response bodies may hold secrets: never below WARNING, even with -v
    for noisy in ("botocore", "boto3", "urllib3", "docker", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def output_options(func: F) -> F:
    """What every command accepts after its name: how much to print, and in colour or not."""
    options = [
        click.option("--no-color", is_flag=True, envvar="NO_COLOR", help="No colour in output (NO_COLOR works too)."),
        click.option("-v", "--verbose", is_flag=True, help="More detail (never secrets)."),
        click.option("-q", "--quiet", is_flag=True, help="Only results and errors."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _role_arn(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--assume-role: an IAM role ARN (exit 3 otherwise); its account and partition are checked with the manifest."""
    if value is None:
        return None
    from reconciler.manifest.aws_names import ROLE_ARN

    if len(value) > 2048 or not ROLE_ARN.match(value):
        raise click.BadParameter("not an IAM role ARN; write arn:aws:iam::ACCOUNT:role/NAME", param=param)
    return value


def aws_options(func: F) -> F:
    """Where and as whom to call AWS: only on the commands that make an AWS call."""
    options = [
        click.option("--region", help="A guard: refuse (exit 3) unless it is the manifest's region, which is "
                     "the only one the stack is read and changed in (AWS_REGION is not used for that reason)."),
        click.option("--profile", help="Profile of the shared AWS config/credentials files (AWS_PROFILE works "
                     "too; SSO and assume-role profiles as with the AWS CLI)."),
        click.option("--endpoint-url", help="AWS endpoint for every service, e.g. a local emulator "
                     "(AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> work too, as with the AWS CLI)."),
        click.option("--registry", metavar="HOST:PORT",
                     help="A registry that stands in for the ECR registry host (needed with an emulator's "
                     "--endpoint-url, whose ECR has no registry)."),
        click.option("--assume-role", metavar="ARN", callback=_role_arn,
                     help="Assume this IAM role (with the credentials above) for every call; over the "
                     "manifest's assume_role ARN, keeping its external_id, session_name and duration."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def common_options(func: F) -> F:
    """The AWS commands' options: output and AWS (the flags every AWS command has always accepted)."""
    return aws_options(output_options(func))


def _lock_timeout_option(func: F) -> F:
    return click.option("--lock-timeout", type=click.FloatRange(0), default=90.0, show_default=True,
                        metavar="SECONDS",
                        help="Wait this long for another apply's lease (a dead apply's lapses within 60 s).")(func)


def _run_timeout_option(func: F) -> F:
    return click.option("--timeout", "run_timeout", type=click.FloatRange(0, min_open=True), default=300.0,
                        show_default=True, metavar="SECONDS",
                        help="Give up (exit 1) if the run has not finished by then (with several manifests: "
                             "each stack, which is then an error in the report).")(func)


def _fleet_options(func: F) -> F:
    """Several manifests (or --shard): how many stacks at once, which shard, where the fleet report goes."""
    options = [
        click.option("--jobs", type=click.IntRange(1, 64), default=None, metavar="N",
                     help="With several manifests: at most N stacks at once  [default: min(8, stacks)]."),
        click.option("--shard", "shard", metavar="I/N",
                     help="Only this shard's stacks (0 <= I < N; a stable subset by a hash of account/region/"
                          "stack); auto/N reads I from JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _report_option(func: F) -> F:
    return click.option("--report", "report_file", type=click.Path(dir_okay=False),
                        help="Write the fleet report (JSON) here: with several manifests or --shard.")(func)


MAX_PATTERN = 256  # the longest address a manifest can make is well under this


def _addresses(_ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """--target / --replace patterns: a bounded length, so an error never echoes a megabyte back."""
    for pattern in value:
        if not pattern or len(pattern) > MAX_PATTERN:
            raise click.BadParameter(f"an address or glob of 1 to {MAX_PATTERN} characters; give one "
                                     "`reconcile validate -v` lists", param=param)
    return value


def _target_option(func: F) -> F:
    return click.option("--target", "targets", multiple=True, metavar="ADDRESS", callback=_addresses,
                        help="Only this address (a glob allowed; parts under it too) and what it needs: "
                             "dependencies not in sync, dependents of a deletion. Repeatable; for exceptional "
                             "situations only.")(func)


def _replace_option(func: F) -> F:
    return click.option("--replace", "replace", multiple=True, metavar="ADDRESS", callback=_addresses,
                        help="Force a replacement of this existing address (a glob allowed) even without a diff; "
                             "an access key is rotated. Repeatable.")(func)


TARGET_WARNING = """\
warning: resource targeting is in effect (--target)
  This is not a full plan: changes outside the targets, and what they need, are neither shown
  nor applied. Use --target only for exceptional situations (recovering from an error, or when
  an error message suggests it), then run a full plan."""
TARGET_APPLIED = ("warning: applied changes may be incomplete (--target): run `reconcile plan` without --target "
                  "to see what is left")


def _warn_targets(targets: tuple[str, ...], out: Out) -> None:
    """Terraform's loud warning, on stderr, even with -q: a targeted plan is easily taken for a full one."""
    if targets:
        click.secho(TARGET_WARNING, err=True, fg="yellow", bold=True, color=out.color and sys.stderr.isatty())


def _refuse_blocked(plan: Any) -> None:
    """Before any prompt: a plan with any blocked change is never applied (exit 1), naming each and why."""
    blocked = plan.blocked
    if blocked:
        raise ApplyError(f"the plan has blocked changes; nothing was applied. Fix the {len(blocked)} blocked, "
                         "as each says, then re-run:\n" +
                         "\n".join(f"  {c.address}: {c.blocked}" for c in blocked))


def _out(kw: dict[str, Any]) -> Out:
    no_color = kw.pop("no_color") or bool(os.environ.get("NO_COLOR"))
    verbose, quiet = kw.pop("verbose"), kw.pop("quiet")
    _setup_logging(verbose)
    return Out(verbose, quiet, color=not no_color and sys.stdout.isatty(), no_color=no_color)


def _options(kw: dict[str, Any]) -> Any:
    from reconciler.engine.run import Options

    return Options(kw.pop("region"), kw.pop("profile"), kw.pop("endpoint_url"), kw.pop("registry"),
                   assume_role=kw.pop("assume_role"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reconciler")
def cli() -> None:
    """Make an AWS account match a YAML manifest. No state file: the account is the state."""


@cli.command(short_help="Check manifests; no AWS call.")
@click.argument("manifests", nargs=-1, required=True, type=click.Path(dir_okay=False))
@output_options
def validate(manifests: tuple[str, ...], **kw: Any) -> None:
    """Check manifests against the schema and the rules; no AWS call."""
    out = _out(kw)
    from reconciler.engine.fleet import expand_paths
    from reconciler.manifest.expand import expand
    from reconciler.manifest.findings import waiver_coverage
    from reconciler.manifest.validate import load_manifest
    from reconciler.plan.fleet import StackIdentity, duplicate_stacks

    problems = []
    identities: list[StackIdentity] = []
    for path in expand_paths(manifests):  # a quoted 'fleet/*.yaml' as plan, drift and apply take it
        try:
            manifest, findings = load_manifest(path)
        except ManifestError as exc:
            problems.extend(exc.problems)
            continue
        identities.append(StackIdentity(manifest.account or "", manifest.region, manifest.stack, path))
        for finding in findings:
            out.info(f"{path}:{finding}")
        for line in waiver_coverage(dict(manifest.data), findings):
            out.info(f"{path}: {line}")
        resources = expand(manifest)
        out.info(f"{path}: valid ({len(resources)} resources)")
        if out.verbose:
            for resource in resources:
                deps = f"  <- {', '.join(resource.depends_on)}" if resource.depends_on else ""
                out.result(f"{resource.address:60} {resource.kind}{deps}\n")
    if problems:
        raise ManifestError(problems)
    doubled = duplicate_stacks(identities)
    if doubled:  # what plan, drift and apply would refuse must not pass the pre-commit check
        files = {key: [i.manifest for i in identities if i.key == key] for key in doubled}
        raise UsageError("two manifests name the same stack: " +
                         "; ".join(f"{key} in {', '.join(names)}" for key, names in files.items()) +
                         "; give each stack one manifest (or different stack names)")


@cli.command()
@output_options
def schema(**kw: Any) -> None:
    """Print the manifest JSON Schema."""
    _out(kw)
    from reconciler.manifest.schema import manifest_schema

    click.echo(json.dumps(manifest_schema(), indent=2, ensure_ascii=False))


def _style(out: Out) -> Style:
    from reconciler.render.registry import Style

    return Style(color=out.color, verbose=out.verbose)


# the renderers' registry holds the names too; kept literal here so `--help` does not import the renderers
FORMATS = ("text", "json", "markdown")


@cli.command()
@click.argument("manifests", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text for a person, json for a program, markdown for a pull-request comment.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), help="Write the plan file (JSON) here.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when changes are pending (stderr says how many are blocked, which apply refuses).")
@click.option("--adopt", is_flag=True, help="Plan to adopt same-named resources that lack the stack tag.")
@click.option("--destroy", is_flag=True,
              help="Preview what `destroy` would delete; with --out, `apply --plan FILE` then destroys exactly that.")
@_target_option
@_replace_option
@_run_timeout_option
@_report_option
@_fleet_options
@common_options
def plan(manifests: tuple[str, ...], fmt: str, out_file: str | None, detailed_exitcode: bool, adopt: bool,
         destroy: bool, targets: tuple[str, ...], replace: tuple[str, ...], run_timeout: float,
         report_file: str | None, jobs: int | None, shard: str | None, **kw: Any) -> None:
    """Show what apply would change. Read-only by construction.

    Several manifests (paths or globs) or --shard: the stacks are planned at once, then a table of
    them; --format json and --report give the fleet report."""
    out = _out(kw)
    if destroy and (adopt or replace):
        raise UsageError(f"--destroy with {'--adopt' if adopt else '--replace'}: a destroy plan only deletes; "
                         "drop one of the two")
    paths = _fleet_paths(manifests, shard, report_file, targets, replace, kw.get("assume_role"))
    if len(paths) != 1 or shard:
        if out_file:
            raise UsageError("--out writes one stack's plan file: give one manifest (for several, --report "
                             "writes the fleet report)")
        options = _options(kw)
        _fleet("plan", paths, out, options, fmt=fmt, report_file=report_file, jobs=jobs, shard=shard,
               timeout=run_timeout, run_one=_plan_stack(options, _style(out), detailed_exitcode=detailed_exitcode,
                                                        adopt=adopt, destroy=destroy))
        return
    manifest = paths[0]
    deadline = _deadline(run_timeout, "plan")
    from reconciler.engine.run import plan_run
    from reconciler.render.json import format_plan_json

    if out_file:
        _check_writable(out_file, "--out")
    run = plan_run(manifest, _options(kw), adopt=adopt, destroy=destroy, targets=targets, replace=replace)
    deadline.cancel()
    out.debug(f"{len(run.clients.calls)} AWS calls, all reads")
    from reconciler.render.registry import PLAN_RENDERERS

    out.result(PLAN_RENDERERS[fmt](run.plan, _style(out)))
    _warn_targets(targets, out)
    if out_file:
        _write(out_file, "--out", format_plan_json(run.plan))
        out.info(f"plan written to {out_file}")
    refused = _refusal_line(run.plan)
    if refused:
        click.echo(refused, err=True)
    if detailed_exitcode and run.plan.pending:
        sys.exit(2)


def _refusal_line(plan: Any) -> str | None:
    """What apply would refuse in `plan` (with nothing pending, apply has nothing to refuse), or None."""
    pending, blocked = plan.pending, plan.blocked
    if not (pending and blocked):
        return None
    among = sum(1 for c in pending if c.blocked)
    text = f"{len(pending)} change{'' if len(pending) == 1 else 's'} pending, {among} of them blocked"
    if len(blocked) > among:  # a blocked in-sync address: one that could not be read
        text += f", and {len(blocked) - among} address(es) not checked"
    return f"{text}: apply will refuse"


def _check_writable(path: str, option: str) -> None:
    """Refuse, before any AWS call, an output path that cannot be written (exit 3, one line).

    Only a regular file (or a new one in an existing, writable directory) is accepted: a FIFO
    there would block the run after all its reads, a device would take the bytes.
    """
    target = Path(path)
    if target.exists() and not target.is_file():
        raise UsageError(f"{option} {path}: not a regular file; give a file path")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: the directory {parent} does not exist; create it or give another path")
    if not os.access(target if target.exists() else parent, os.W_OK):
        raise UsageError(f"{option} {path}: not writable; give a path you can write")


def _write(path: str, option: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:  # e.g. the disk filled up after the check
        raise UsageError(f"{option} {path}: cannot write it ({exc.strerror or type(exc).__name__})") from None


def _confirm(auto_approve: bool, plan: Any, *, destroy: bool = False) -> None:
    """Ask on the terminal for the answer the plan's stakes need (render/confirm.py), or refuse (exit 3).

    The question goes to stderr, never into a piped stdout (the plan there stays clean); without a
    terminal to answer on, only --auto-approve approves.
    """
    if auto_approve:
        return
    what = f"destroy stack {plan.stack}" if destroy else "apply these changes"
    if not sys.stdin.isatty():
        raise UsageError(f"refusing to {what} without a terminal to confirm on; pass --auto-approve")
    from reconciler.render.confirm import confirmation

    asked = confirmation(plan, destroy=destroy)
    try:
        answer = click.prompt(asked.question, default="", show_default=False, err=True)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            raise  # Ctrl-C: main reports "interrupted", exit 130
        answer = ""  # end of input (Ctrl-D) is no answer
    if not asked.approves(answer):
        raise UsageError(f"cancelled ({asked.refusal(answer)}); nothing was changed")


def _preflight(run: Any) -> None:
    """Stop, before the prompt and any change, a run that could only fail half-way (engine/preflight.py)."""
    from reconciler.engine.preflight import before_apply

    before_apply(run.plan, run.ctx)


def _apply(run: Any, out: Out, parallelism: int, hook: Any, fleet_stop: Any = None) -> list[Any]:
    """Apply the run's plan with progress on `out.progress()`; the results, or raise (nothing half-reported).

    One stack (`fleet_stop` None): SIGINT/SIGTERM handlers are installed here. In a fleet, the one
    handler is the fleet's (signal handlers belong to the main thread) and `fleet_stop` is its flag.
    """
    from reconciler.engine.apply import apply_plan
    from reconciler.engine.clients import seconds_from_env
    from reconciler.kinds import all_kinds
    from reconciler.plan.model import Outcome
    from reconciler.terminal.progress import reporter_for, summary_text

    _refuse_blocked(run.plan)  # the callers refuse before their prompt; this guards any other caller
    run.clients.read_only = False
    # live on a terminal, timestamped lines otherwise; each change printed once when it finishes
    reporter = reporter_for(total=len(run.plan.pending), ids=run.ctx.ids.get, quiet=out.quiet,
                            no_color=out.no_color, stderr=out.progress())
    run.ctx.log, run.ctx.progress = reporter.log, reporter.progress

    def event(stage: str, change: Any, result: Any) -> None:
        if stage == "start":
            reporter.start(change)
        else:
            reporter.end(change, result)

    signalled: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        # only a flag: the walk stops starting actions, the running ones finish (bounded)
        signalled.append(signum)
        reporter.log(f"{signal.Signals(signum).name}: no new action is started; waiting for those running")

    def stopping() -> str | None:
        if fleet_stop is not None and fleet_stop.signum is not None and not signalled:
            signalled.append(fleet_stop.signum)
        if signalled:
            return f"interrupted by {signal.Signals(signalled[0]).name}"
        return hook.stopping()  # type: ignore[no-any-return]

    handled = (signal.SIGINT, signal.SIGTERM) if fleet_stop is None else ()
    previous = {s: signal.signal(s, on_signal) for s in handled}
    try:
        with reporter:
            results = apply_plan(run.plan, run.ctx, all_kinds(), parallelism, event, stopping,
                                 seconds_from_env("RECONCILER_DRAIN_SECONDS", 60.0))
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    # an interrupted destroy is finished by destroy: apply would re-create what it already deleted
    command = "destroy" if run.plan.destroy else "apply"
    out.result(summary_text(results, color=out.color, verb=command.capitalize()))
    if signalled:
        left = sum(1 for r in results if r.outcome is not Outcome.DONE)
        raise Interrupted(signalled[0], f"interrupted by {signal.Signals(signalled[0]).name}: {left} change(s) "
                          f"not done (listed above); the account is safe to re-run {command}")
    if hook.stopping():
        raise LockError(f"{hook.stopping()}: the changes not done are listed above; re-run {command}")
    if any(r.outcome is not Outcome.DONE for r in results):
        raise ApplyError(f"some actions failed; the account is safe to re-run {command}")
    return list(results)


@contextmanager
def _leased(lock_timeout: float, out: Out) -> Iterator[Any]:
    """The stack's lease for one apply or destroy: taken by `plan_run` before it reads, released here.

    A failure to release is reported; it replaces no earlier error (whose results are already printed).
    """
    from reconciler.engine.lock import LeaseHook

    hook = LeaseHook(lock_timeout, out.info)
    failing = False
    try:
        yield hook
    except BaseException:
        failing = True
        raise
    finally:
        try:
            hook.release()
        except LockError as exc:
            if not failing:
                raise
            click.echo(f"error: {redact(str(exc))}", err=True)


def _deadline(seconds: float, what: str) -> threading.Timer:
    """A read-only run whose reads outlive `seconds` (an endpoint that never answers) ends, exit 1.

    A daemon timer, not a per-call check: a call blocked in a socket read cannot look at the clock.
    Safe to end hard: plan and drift never write to AWS; the caller cancels the timer once the
    reads are done, before it writes any file.
    """
    def fire() -> None:
        sys.stdout.flush()
        sys.stderr.write(f"error: {what} did not finish within --timeout {seconds:g} s (is the AWS endpoint "
                         "answering?); nothing was changed; check the endpoint, or pass a longer --timeout\n")
        sys.stderr.flush()
        os._exit(1)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def _fleet_paths(manifests: tuple[str, ...], shard: str | None, report_file: str | None,
                 targets: tuple[str, ...], replace: tuple[str, ...], assume_role: str | None = None) -> list[str]:
    """The manifest paths, globs expanded; the options only a fleet (or only one stack) takes are checked."""
    from reconciler.engine.fleet import expand_paths

    paths = expand_paths(manifests)
    if assume_role and len(paths) > 1:  # one role ARN names one account: every other stack would fail
        raise UsageError("--assume-role names one account's role, so it takes one manifest; give each manifest "
                         "its own `assume_role:` (role_name builds the ARN from `account:`), or run one manifest "
                         "at a time")
    fleet = len(paths) != 1 or bool(shard)
    if fleet and (targets or replace):
        raise UsageError(f"{'--target' if targets else '--replace'} names addresses of one stack: give one "
                         "manifest")
    if report_file and not fleet:
        raise UsageError("--report writes a fleet report: give several manifests, or --shard 0/1 for one")
    return paths


def _drift_read(manifest: str, options: Any, skip_kinds: tuple[str, ...], loaded: Any = None) -> tuple[Any, Any]:
    """One stack's drift read: (the run, its drift report). The one-manifest and the fleet path both call it."""
    from reconciler.engine.run import plan_run
    from reconciler.kinds import all_kinds
    from reconciler.plan.drift import build_drift

    run = plan_run(manifest, options, skip_kinds=skip_kinds, purpose="drift", loaded=loaded)
    return run, build_drift(run.plan, all_kinds(), run.live)


def _plan_stack(options: Any, style: Style, *, detailed_exitcode: bool, adopt: bool, destroy: bool) -> Any:
    """`run_one` of a fleet plan: the stack's text plan (as one-manifest plan prints it) and its plan JSON."""
    from reconciler.engine.fleet import Finished
    from reconciler.engine.run import plan_run
    from reconciler.render.json import plan_to_json
    from reconciler.render.registry import PLAN_RENDERERS

    def run_one(member: Any, _stop: Any) -> Finished:
        run = plan_run(member.identity.manifest, options, adopt=adopt, destroy=destroy, loaded=member.loaded)
        text = PLAN_RENDERERS["text"](run.plan, style)
        refused = _refusal_line(run.plan)
        pending = bool(run.plan.pending)
        return Finished("changes" if pending else "no_changes", 2 if pending and detailed_exitcode else 0,
                        plan_to_json(run.plan), text + (f"{refused}\n" if refused else ""))

    return run_one


def _drift_stack(options: Any, style: Style, skip_kinds: tuple[str, ...]) -> Any:
    """`run_one` of a fleet drift: the stack's text report and its drift JSON."""
    from reconciler.engine.fleet import Finished
    from reconciler.render.drift import drift_to_json
    from reconciler.render.registry import DRIFT_RENDERERS

    def run_one(member: Any, _stop: Any) -> Finished:
        _run, report = _drift_read(member.identity.manifest, options, skip_kinds, member.loaded)
        drifted = bool(report.drifted)
        return Finished("drift" if drifted else "in_sync", 2 if drifted else 0, drift_to_json(report),
                        DRIFT_RENDERERS["text"](report, style))

    return run_one


_STDERR_LOCK = threading.Lock()


class _Prefixed:
    """A text stream that writes whole lines to stderr, each prefixed with the stack: never interleaved."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self._partial = prefix, ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        if lines:
            with _STDERR_LOCK:
                sys.stderr.write("".join(f"{self.prefix}{redact(line)}\n" for line in lines))
                sys.stderr.flush()
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self.write("\n")

    def isatty(self) -> bool:
        return False  # plain timestamped lines: a live display per stack would fight the others


class _StackOut(Out):
    """One stack's Out in a fleet: results kept for its block, notes and progress prefixed on stderr."""

    def __init__(self, out: Out, stack: str) -> None:
        super().__init__(out.verbose, out.quiet, out.color, no_color=True)
        self._stream = _Prefixed(f"[{stack}] ")
        self.parts: list[str] = []

    def result(self, text: str) -> None:
        self.parts.append(redact(text))

    def info(self, text: str) -> None:
        if not self.quiet:
            self._stream.write(text + "\n")

    def debug(self, text: str) -> None:
        if self.verbose:
            self._stream.write(text + "\n")

    def progress(self) -> Any:
        return self._stream


def _apply_stack(options: Any, out: Out, *, parallelism: int, adopt: bool, lock_timeout: float) -> Any:
    """`run_one` of a fleet apply: lease, plan, preflight, apply, as one-manifest apply with --auto-approve."""
    from reconciler.engine.fleet import Finished, describe_failure
    from reconciler.engine.run import plan_run
    from reconciler.render.json import plan_to_json
    from reconciler.render.text import format_plan_text

    def run_one(member: Any, stop: Any) -> Finished:
        stack_out = _StackOut(out, member.identity.stack)
        plan_json: dict[str, Any] | None = None
        try:
            with _leased(lock_timeout, stack_out) as hook:
                run = plan_run(member.identity.manifest, options, adopt=adopt, before_read=hook,
                               loaded=member.loaded)
                plan_json = plan_to_json(run.plan)
                stack_out.result(format_plan_text(run.plan, color=out.color, verbose=out.verbose))
                if not run.plan.pending:
                    return Finished("no_changes", 0, {"plan": plan_json, "results": []}, "".join(stack_out.parts))
                _refuse_blocked(run.plan)
                _preflight(run)
                results = _apply(run, stack_out, parallelism, hook, fleet_stop=stop)
        except Exception as exc:  # the stack's own failure: its output so far, then the error, in its block
            error, text = describe_failure(exc, out.verbose)
            return Finished("error", 1, {"plan": plan_json, "results": None} if plan_json else None,
                            "".join(stack_out.parts) + text, error)
        return Finished("applied", 0, {"plan": plan_json, "results": [
            {"address": r.address, "action": r.action.value, "outcome": r.outcome.value,
             "seconds": round(r.seconds, 3)} for r in results]}, "".join(stack_out.parts))

    return run_one


def _fleet(command: str, paths: list[str], out: Out, options: Any, *, fmt: str, report_file: str | None,
           jobs: int | None, shard: str | None, timeout: float | None, run_one: Any) -> None:
    """Several manifests or --shard: validate all, keep the shard, run the stacks, print and write the report.

    Ctrl-C (or SIGTERM) once: no new stack starts, running applies stop at a safe point, the report
    still lists every stack, exit 130; a second Ctrl-C ends the process at once.
    """
    import time

    from reconciler.engine.fleet import Stop, default_jobs, load_fleet, run_fleet
    from reconciler.plan.fleet import fleet_report, parse_shard, shard_members
    from reconciler.render.fleet import format_fleet_markdown, format_fleet_text, stack_header

    chosen = parse_shard(shard, os.environ) if shard else None
    if report_file:
        _check_writable(report_file, "--report")
    members = load_fleet(paths, options.region)  # every manifest valid, or exit 3 before any AWS call
    if chosen is not None:
        keep = set(shard_members([m.identity for m in members], chosen))
        out.info(f"shard {chosen}: {len(keep)} of the {len(members)} stacks")
        members = [m for m in members if m.identity in keep]
        if not members:
            out.info(f"shard {chosen} has no stack (there are fewer stacks than shards); an empty report")
    stop = Stop()
    style = _style(out)

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.signum is not None:  # the second one: stop waiting
            click.echo("interrupted again: ending now", err=True)
            sys.stdout.flush()
            os._exit(128 + signum if signum != signal.SIGINT else 130)
        stop.set(signum)
        click.echo(f"{signal.Signals(signum).name}: no new stack is started; waiting for those running "
                   "(again to end at once)", err=True)

    def on_done(outcome: Any, text: str) -> None:
        # -q: a stack that needs no one's attention (in sync, no changes, applied) is left to the table
        if fmt == "text" and not (out.quiet and outcome.status in ("in_sync", "no_changes", "applied")):
            out.result(stack_header(outcome) + text + ("" if text.endswith("\n") or not text else "\n") + "\n")

    started = time.monotonic()
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcomes = run_fleet(members, run_one, jobs=jobs or default_jobs(len(members)), stop=stop,
                             on_done=on_done, timeout=timeout, verbose=out.verbose)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    report = fleet_report(command, outcomes, chosen, time.monotonic() - started)
    document = redact(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")
    if fmt == "json":
        out.result(document)
    elif fmt == "markdown":
        out.result(format_fleet_markdown(report))
    else:
        out.result(format_fleet_text(report, style))
    if report_file:
        _write(report_file, "--report", document)
        out.info(f"fleet report written to {report_file}")
    if stop.signum is not None:
        click.echo(f"error: {stop.reason()}: the stacks not started or not finished are listed above; re-run "
                   f"{command}", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130 if stop.signum == signal.SIGINT else 128 + stop.signum)  # abandoned threads: do not wait
    if report["exit_code"]:
        sys.exit(int(report["exit_code"]))


@cli.command()
@click.argument("manifests", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, exists=False),
              help="Apply exactly this reviewed plan, or refuse (exit 4) if anything changed.")
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (required without a terminal).")
@click.option("--parallelism", type=click.IntRange(1, 64), default=10, show_default=True,
              help="At most this many changes at once (each waits for what it depends on).")
@click.option("--adopt", is_flag=True, help="Take over same-named resources that lack the stack tag.")
@_target_option
@_replace_option
@_lock_timeout_option
@_report_option
@_fleet_options
@common_options
def apply(manifests: tuple[str, ...], plan_file: str | None, auto_approve: bool, parallelism: int, adopt: bool,
          targets: tuple[str, ...], replace: tuple[str, ...], lock_timeout: float, report_file: str | None,
          jobs: int | None, shard: str | None, **kw: Any) -> None:
    """Converge the account to the manifest.

    Several manifests (paths or globs) or --shard: the stacks are applied at once (needs
    --auto-approve), progress lines prefixed with the stack, then a table of them."""
    out = _out(kw)
    from reconciler.engine.run import plan_run
    from reconciler.render.text import format_plan_text

    paths = _fleet_paths(manifests, shard, report_file, targets, replace, kw.get("assume_role"))
    if len(paths) != 1 or shard:
        if plan_file:
            raise UsageError("--plan applies one stack's reviewed plan: give exactly one manifest")
        if not auto_approve:
            raise UsageError(f"applying {len(paths)} manifests needs --auto-approve (there is no prompt per "
                             "stack): pass it after reviewing them with `reconcile plan`")
        options = _options(kw)
        _fleet("apply", paths, out, options, fmt="text", report_file=report_file, jobs=jobs, shard=shard,
               timeout=None, run_one=_apply_stack(options, out, parallelism=parallelism, adopt=adopt,
                                                  lock_timeout=lock_timeout))
        return
    manifest = paths[0]
    if plan_file and (targets or replace):
        raise UsageError("--plan: the plan file records its own --target and --replace; give neither")
    reviewed = _load_plan_file(plan_file) if plan_file else None
    destroying = False
    if reviewed is not None:
        # the reviewed plan says how it was made: planning the same way is what makes the comparison exact
        targets, replace = tuple(reviewed.get("targets", ())), tuple(reviewed.get("replace", ()))
        destroying = bool(reviewed.get("destroy"))
        if destroying:
            out.info(f"{plan_file} is a destroy plan (plan --destroy): applying it deletes what it lists")
    with _leased(lock_timeout, out) as hook:  # before the read: a plan cannot go stale under another apply
        run = plan_run(manifest, _options(kw), adopt=adopt, destroy=destroying, before_read=hook,
                       targets=targets, replace=replace)
        if reviewed is not None:
            from reconciler.plan.fresh import check_fresh
            from reconciler.render.json import plan_to_json

            check_fresh(reviewed, plan_to_json(run.plan))
            from reconciler.render.confirm import confirmation

            # the review approves additions and changes (as Terraform's saved plans); a plan file that
            # deletes or replaces anything still asks for the stack name when someone is at a terminal
            # (a pipeline without one applies it: the review was its approval)
            if not sys.stdin.isatty() or confirmation(run.plan, destroy=run.plan.destroy).expected == "yes":
                auto_approve = True
        out.result(format_plan_text(run.plan, color=out.color, verbose=out.verbose))
        _warn_targets(targets, out)
        if not run.plan.pending:
            return
        _refuse_blocked(run.plan)
        _preflight(run)
        _confirm(auto_approve, run.plan, destroy=run.plan.destroy)
        _apply(run, out, parallelism, hook)
        if targets:
            click.echo(TARGET_APPLIED, err=True)


MAX_PLAN_BYTES = 256 * 1024 * 1024  # a plan of the largest manifest is a few MB
MAX_PLAN_DEPTH = 100  # a real plan nests about 12 deep (a policy condition inside a diff)


def _load_plan_file(path: str) -> dict[str, Any]:
    """The reviewed plan: a regular file (never a pipe or device), bounded in size and depth, schema-valid."""
    from reconciler.engine.reports import read_json_document

    data = read_json_document(path, "plan file", "the file `plan --out` wrote", "a new one with `plan --out`",
                              MAX_PLAN_BYTES, MAX_PLAN_DEPTH)
    from reconciler.manifest.schema import plan_file_problems

    problems = plan_file_problems(data)
    if problems:
        raise UsageError(f"{path}: invalid plan file (make a new one with `plan --out`):\n" +
                         "\n".join(f"  {p}" for p in problems))
    from reconciler import __version__

    made_by = data.get("reconciler_version", __version__)
    if made_by != __version__:
        # another version may plan differently: applying its plan would not be "exactly what was reviewed"
        raise UsageError(f"{path}: the plan file was made by reconciler {made_by}, this is {__version__}; "
                         "make a new plan with this version")
    return data  # type: ignore[no-any-return]


@cli.command(short_help="Report changes made by hand (exit 2 if any).")
@click.argument("manifests", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text for a person, json for a program (as --report), markdown for a pull-request comment.")
@click.option("--report", "report_file", type=click.Path(dir_okay=False),
              help="Also write the report as JSON here (the artifact a scheduled job keeps; with several "
                   "manifests or --shard, the fleet report).")
@click.option("--skip-kind", "skip_kinds", multiple=True, metavar="KIND",
              help="Do not read this kind (e.g. no permission for it); reported as NOT_CHECKED. Repeatable.")
@_run_timeout_option
@_fleet_options
@common_options
def drift(manifests: tuple[str, ...], fmt: str, report_file: str | None, skip_kinds: tuple[str, ...],
          run_timeout: float, jobs: int | None, shard: str | None, **kw: Any) -> None:
    """Report by-hand changes: exit 0 in sync, 2 drift found, 1 could not tell. Never writes.

    Several manifests (paths or globs) or --shard: the stacks are read at once, then a table of
    them (drift and errors first); --format json and --report give the fleet report."""
    out = _out(kw)
    from reconciler.kinds import all_kinds
    from reconciler.render.drift import format_drift_json
    from reconciler.render.registry import DRIFT_RENDERERS

    unknown = sorted(set(skip_kinds) - set(all_kinds()))
    if unknown:
        raise UsageError(f"--skip-kind: unknown kind(s) {', '.join(unknown)}; use one of: "
                         f"{', '.join(sorted(all_kinds()))}")
    paths = _fleet_paths(manifests, shard, None, (), (), kw.get("assume_role"))
    if len(paths) != 1 or shard:
        options = _options(kw)
        _fleet("drift", paths, out, options, fmt=fmt, report_file=report_file, jobs=jobs, shard=shard,
               timeout=run_timeout, run_one=_drift_stack(options, _style(out), skip_kinds))
        return
    manifest = paths[0]
    deadline = _deadline(run_timeout, "drift")
    if report_file:
        _check_writable(report_file, "--report")
    run, report = _drift_read(manifest, _options(kw), skip_kinds)
    deadline.cancel()
    out.debug(f"{len(run.clients.calls)} AWS calls, all reads")
    out.result(DRIFT_RENDERERS[fmt](report, _style(out)))
    if report_file:
        _write(report_file, "--report", redact(format_drift_json(report)))
        out.info(f"drift report written to {report_file}")
    if report.drifted:
        sys.exit(2)


@cli.command(short_help="Delete everything the stack owns.")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (required without a terminal).")
@click.option("--parallelism", type=click.IntRange(1, 64), default=10, show_default=True,
              help="At most this many changes at once (each waits for what it depends on).")
@_target_option
@_lock_timeout_option
@common_options
def destroy(manifest: str, auto_approve: bool, parallelism: int, targets: tuple[str, ...], lock_timeout: float,
            **kw: Any) -> None:
    """Delete everything the stack owns (protect: true refuses)."""
    out = _out(kw)
    from reconciler.engine.run import plan_run
    from reconciler.render.text import format_plan_text

    with _leased(lock_timeout, out) as hook:
        run = plan_run(manifest, _options(kw), destroy=True, before_read=hook, targets=targets)
        out.result(format_plan_text(run.plan, color=out.color, verbose=out.verbose))
        _warn_targets(targets, out)
        if not run.plan.pending:
            return
        _refuse_blocked(run.plan)
        _confirm(auto_approve, run.plan, destroy=True)
        _apply(run, out, parallelism, hook)
        if targets:
            click.echo(TARGET_APPLIED, err=True)


@cli.command(short_help="Remove a stack's apply lease by hand.")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Do not ask for confirmation (for scripts).")
@common_options
def unlock(manifest: str, force: bool, **kw: Any) -> None:
    """Remove a stack's apply lease by hand (a dead apply's lease lapses by itself within a minute)."""
    out = _out(kw)
    from reconciler.engine.clients import Clients
    from reconciler.engine.lock import holders, remove_all
    from reconciler.engine.run import stack_role
    from reconciler.manifest.validate import load_manifest

    loaded, _ = load_manifest(manifest)
    options = _options(kw)
    clients = Clients(options.region or loaded.region, options.profile, options.endpoint_url,
                      role=stack_role(loaded, options))
    clients.account_id()  # credentials are checked before anything is shown or removed
    ssm = clients.client("ssm")
    import botocore.exceptions

    try:
        held = holders(ssm, loaded.stack)
        if not held:
            out.result("no lock was held\n")
            return
        for gen in held:
            age = f"renewed {gen.age:.0f} s ago" if gen.age is not None else "renewed at an unknown time"
            click.echo(f"stack {loaded.stack} is locked by {gen.owner} ({gen.name}, {age}, lapses "
                       f"{gen.lifetime:.0f} s after its last renewal)", err=True)
        if not force:
            if not sys.stdin.isatty():
                raise UsageError("refusing to remove the lock without a terminal to confirm on; pass --force")
            if not click.confirm("Remove it? Only do so if that apply is not running", default=False, err=True):
                raise UsageError("cancelled; the lock is still held")
        remove_all(ssm, loaded.stack)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        from reconciler.engine.lock import aws_error

        raise aws_error("removing the lease", exc) from None
    out.result("lock removed\n")


@cli.command(short_help="Print the stack's ids, ARNs and URIs.")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(("text", "json", "env")), default="text",
              help="env: shell assignments (RECONCILE_VPC_MAIN_ID=vpc-...) for `eval` or a .env file.")
@_run_timeout_option
@common_options
def output(manifest: str, fmt: str, run_timeout: float, **kw: Any) -> None:
    """Print each address's ids, ARNs and URIs (from the plan's read; read-only, never a secret)."""
    out = _out(kw)
    deadline = _deadline(run_timeout, "output")
    from reconciler.engine.outputs import output_report
    from reconciler.engine.run import plan_run
    from reconciler.render.outputs import OUTPUT_RENDERERS

    run = plan_run(manifest, _options(kw))
    deadline.cancel()
    out.debug(f"{len(run.clients.calls)} AWS calls, all reads")
    out.result(OUTPUT_RENDERERS[fmt](output_report(run)))


@cli.command(short_help="Print a user's key, for credential_process.")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--user", "user", required=True, help="The IAM user of the manifest whose key to hand out.")
@click.option("--write-profile", "profile_name", metavar="NAME",
              help="Instead of printing, add [profile NAME] with this command as its credential_process "
                   "to the AWS config file (AWS_CONFIG_FILE or ~/.aws/config); no secret is written.")
@click.option("--show", is_flag=True, help="Print the secret even when stdout is a terminal.")
@common_options
def credentials(manifest: str, user: str, profile_name: str | None, show: bool, **kw: Any) -> None:
    """The AWS CLI's credential_process: print the user's key (JSON) from its store. The only command
    that prints a secret: it refuses a terminal unless --show."""
    out = _out(kw)
    from reconciler.engine import credentials as creds

    options = _options(kw)
    if profile_name is not None:
        if profile_name == (options.profile or os.environ.get("AWS_PROFILE")):
            raise UsageError(f"--write-profile {profile_name}: that is the profile this command reads the store "
                             "with; its credential_process would call itself (pass --profile with other credentials)")
        # a user without a key store is refused before anything is written
        loaded, _store = creds.key_store(manifest, user, options)
        line = creds.process_command(manifest, user, options)
        written = creds.write_profile(creds.config_path(), profile_name, line, loaded.region)
        out.info(f"profile {profile_name} {'already had' if not written else 'now has'} "
                 f"credential_process in {creds.config_path()}; try: aws sts get-caller-identity "
                 f"--profile {profile_name}")
        return
    if sys.stdout.isatty() and not show:
        raise UsageError("refusing to print a secret access key to a terminal; the AWS CLI reads it "
                         "through a pipe (see --write-profile); pass --show to print it anyway")
    document = creds.fetch(manifest, user, options)
    # the one place a secret is printed: straight to stdout, not through Out (whose redaction would mask it)
    sys.stdout.write(document.reveal() + "\n")
    sys.stdout.flush()


@cli.command("export", short_help="Write a manifest of existing resources.")
@click.option("--stack", required=True, help="Stack name for the manifest (the owner tag value adopting sets).")
@click.option("--vpc", "vpcs", multiple=True, metavar="ID", help="A VPC to export, by id. Repeatable.")
@click.option("--user", "users", multiple=True, metavar="NAME", help="An IAM user (and its groups). Repeatable.")
@click.option("--group", "groups", multiple=True, metavar="NAME", help="An IAM group. Repeatable.")
@click.option("--repository", "repositories", multiple=True, metavar="NAME", help="An ECR repository. Repeatable.")
@click.option("--all-tagged", metavar="KEY=VALUE", help="Also every VPC, IAM user and ECR repository with this tag.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False),
              help="Write the manifest here (long inline policies go to policies/ beside it); default stdout.")
@_run_timeout_option
@common_options
def export_command(stack: str, vpcs: tuple[str, ...], users: tuple[str, ...], groups: tuple[str, ...],
                   repositories: tuple[str, ...], all_tagged: str | None, out_file: str | None, run_timeout: float,
                   **kw: Any) -> None:
    """Write the manifest that describes existing resources, for `apply --adopt`. Read-only."""
    import re

    out = _out(kw)
    options = _options(kw)
    if not options.region:
        raise UsageError("export needs --region: the region to read (and to write into the manifest)")
    from reconciler.manifest.aws_names import region_partitions

    if options.region not in region_partitions():
        raise UsageError(f"--region {options.region!r} is not a region botocore knows; check its spelling (e.g. "
                         "eu-west-1)")
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", stack):
        raise UsageError(f"--stack {stack!r}: not a stack name; give a lowercase letter, then up to 62 lowercase "
                         "letters, digits, hyphens")
    tag = None
    if all_tagged is not None:
        key, sep, value = all_tagged.partition("=")
        if not sep or not key:
            raise UsageError(f"--all-tagged {all_tagged!r}: write KEY=VALUE")
        tag = (key, value)
    if not (vpcs or users or groups or repositories or tag):
        raise UsageError("nothing to export: give --vpc, --user, --group, --repository or --all-tagged")
    if out_file:
        _check_writable(out_file, "--out")
    deadline = _deadline(run_timeout, "export")
    from reconciler.engine.clients import Clients
    from reconciler.engine.run import flag_role
    from reconciler.export import Selection, export_manifest

    role = flag_role(options.assume_role, options.region) if options.assume_role else None
    clients = Clients(options.region, options.profile, options.endpoint_url, read_only=True, role=role)
    result = export_manifest(clients, stack, options.region, Selection(vpcs, users, groups, repositories, tag),
                             policy_files=bool(out_file))
    deadline.cancel()
    out.debug(f"{len(clients.calls)} AWS calls, all reads")
    for warning in result.warnings:
        out.info(f"warning: {warning}")
    for finding in result.findings:
        out.info(f"finding (waived for review): {finding}")
    if out_file:
        base = Path(out_file).parent
        for name, body in sorted(result.files.items()):
            (base / name).parent.mkdir(parents=True, exist_ok=True)
            _write(str(base / name), "--out", body)
            out.info(f"policy written to {base / name}")
        _write(out_file, "--out", result.text)
        out.info(f"manifest written to {out_file}")
    else:
        out.result(result.text)
    if result.problems:
        raise ApplyError("the exported manifest does not validate (a bug in export: please report it with these "
                         "lines):\n" +
                         "\n".join(f"  {p}" for p in result.problems))


def _export_region_help() -> None:
    """Export has no manifest yet: its --region is the region to read, not the common option's guard."""
    for param in export_command.params:
        if param.name == "region" and isinstance(param, click.Option):
            param.help = "The region to read, written into the manifest (required)."


_export_region_help()


@cli.group(short_help="Combine fleet reports (shard reports -> one).", invoke_without_command=True)
@click.pass_context
def report(ctx: click.Context) -> None:
    """Work with fleet reports: the JSON that plan, drift and apply write (--report FILE) with several
    manifests or --shard."""
    if ctx.invoked_subcommand is None:  # `reconcile report` alone: its help, as `reconcile` alone
        click.echo(ctx.get_help())


@report.command("merge", short_help="Merge shard reports into one fleet report.")
@click.argument("reports", nargs=-1, required=True, metavar="REPORT.json...")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text for a person, json for a program, markdown for a job summary or pull-request comment.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False),
              help="Also write the merged report (JSON, a fleet report that merges again) here.")
@output_options
def report_merge(reports: tuple[str, ...], fmt: str, out_file: str | None, **kw: Any) -> None:
    """Merge the shard reports of one run (--shard I/N, every shard once) into the fleet's report.

    REPORT may be a glob, quoted or not ('shard-*.json'). No AWS call.

    \b
    Exit code: the merged report's, so a CI job fails on drift or errors:
      0  every stack in sync / no changes / applied
      2  drift or changes in some stack (and no stack failed)
      1  some stack failed (it could not be checked or applied)
      3  a file is missing, unreadable or not a fleet report, or the shards do not add up
         (one missing, one given twice, another run's or another command's)
    """
    out = _out(kw)
    if out_file:
        _check_writable(out_file, "--out")
    from reconciler.engine.reports import load_fleet_reports
    from reconciler.plan.fleet import merge_reports
    from reconciler.render.fleet import format_fleet_json
    from reconciler.render.registry import FLEET_RENDERERS

    docs, names = load_fleet_reports(reports)
    if out_file and any(Path(out_file).resolve() == Path(name).resolve() for name in names):
        raise UsageError(f"--out {out_file} is one of the reports being merged: writing there would replace "
                         "that shard's report; name --out outside the reports' glob (e.g. fleet-report.json)")
    merged = merge_reports(docs, names)
    out.result(FLEET_RENDERERS[fmt](merged, _style(out)))
    if out_file:
        # per-stack reports never hold a secret; redacted all the same, as the drift report is
        _write(out_file, "--out", redact(format_fleet_json(merged)))
        out.info(f"merged report of {len(merged['stacks'])} stack(s) from {len(docs)} file(s) written to {out_file}")
    if merged["exit_code"]:
        sys.exit(int(merged["exit_code"]))


class _Terminated(BaseException):
    """SIGTERM outside an apply's walk: unwinds like Ctrl-C (a BaseException, so no `except Exception`
    in botocore or urllib3 swallows it); the walk installs its own handler."""


def _terminated(signum: int, _frame: Any) -> None:
    raise _Terminated(signum)


@cli.command(short_help="Print the shell completion script.")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@output_options
def completion(shell: str, **kw: Any) -> None:
    """Print the shell completion script (for eval or a completions file).

    For example: eval "$(reconcile completion bash)"
    """
    _out(kw)
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # the Choice above lists only shells click supports
    click.echo(completer(cli, {}, "reconcile", COMPLETE_VAR).source())


COMPLETE_VAR = "_RECONCILE_COMPLETE"


def _exit_now(code: int) -> None:
    """End the process after Ctrl-C without waiting for worker threads.

    By the time the interrupt reaches `main`, every `finally` on the way (the lease's release, the
    progress display's stop) has run. What may remain are pool threads blocked in a call to AWS (a
    read fanned out, a silent endpoint): a plain `sys.exit` joins them at interpreter shutdown, so
    Ctrl-C could hang for as long as their timeouts and retries last. Nothing they hold is ours to
    finish: the account is left as a re-run expects.
    """
    for stream in (sys.stdout, sys.stderr):
        # a reader that went away (`| head`), or a closed stream: nothing left to keep
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def entry() -> None:
    """The `reconcile` command (and `python -m reconciler`): `main`, then leave without the interpreter's teardown.

    By the time `main` raises SystemExit, everything the run makes is finished: files are written and
    closed (`write_text`), the lease is released and the progress display stopped (their `finally`s),
    and the threads still alive are daemonic. What a normal exit would add is tearing down every
    module and object, botocore's service models above all (millions of small objects): about half a
    second of a two-second no-op plan. mypy leaves the same way for the same reason. Callers in the
    same process (the unit tests) call `main`, which raises SystemExit as usual.
    """
    try:
        main()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:  # sys.exit("message"): Python prints it and exits 1
            print(exc.code, file=sys.stderr)
            code = 1
    logging.shutdown()  # flush any log handler before leaving
    _exit_now(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one place maps every error to its exit code."""
    args = sys.argv[1:] if argv is None else argv
    # `reconcile` alone: the help, as a success (click would call it a usage error)
    if not args and COMPLETE_VAR not in os.environ:
        click.echo(cli.get_help(click.Context(cli, info_name="reconcile")))
        sys.exit(0)
    signal.signal(signal.SIGTERM, _terminated)
    try:
        cli.main(args=args, prog_name="reconcile", standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            click.echo("interrupted", err=True)
            _exit_now(130)
        click.echo("aborted", err=True)
        sys.exit(3)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "reconcile"
        click.echo(f"error: {exc.format_message()} (see `{where} --help`)", err=True)
        sys.exit(3)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except ReconcilerError as exc:
        click.echo(f"error: {redact(str(exc))}" if not isinstance(exc, ManifestError) else redact(str(exc)),
                   err=True)
        if isinstance(exc, Interrupted):
            # actions abandoned after the drain may still hold worker threads: do not wait for them
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.exit_code)
        sys.exit(exc.exit_code)
    except aws_exceptions() as exc:  # an AWS error no layer turned into ours (e.g. taking the lock)
        # never str(exc): it can hold a response body
        click.echo(f"error: {describe_error(exc)}; check the credentials and their permissions, then re-run", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        _exit_now(130)
    except _Terminated:
        click.echo("error: interrupted by SIGTERM; re-run the command to finish", err=True)
        sys.exit(128 + signal.SIGTERM)
    sys.exit(0)


if __name__ == "__main__":
    entry()
