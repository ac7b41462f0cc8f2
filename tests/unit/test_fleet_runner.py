"""engine/fleet.py: globs, validation of all manifests first, and the runner's isolation of stacks."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from reconciler.engine.clients import Clients, pacing_identity
from reconciler.engine.fleet import (
    NOT_STARTED,
    Finished,
    Member,
    Stop,
    default_jobs,
    describe_failure,
    expand_paths,
    load_fleet,
    run_fleet,
)
from reconciler.errors import AwsError, ManifestError, UsageError
from reconciler.pacing import pacer_for
from reconciler.plan.fleet import StackIdentity, StackOutcome


def _write(directory: Path, name: str, stack: str, region: str = "us-east-1") -> Path:
    path = directory / name
    path.write_text(f"version: 1\nstack: {stack}\nregion: {region}\n")
    return path


def test_globs_expand_sorted_literal_paths_stay_and_an_empty_glob_is_a_usage_error(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yaml", "c.yml"):
        _write(tmp_path, name, name.split(".")[0])
    assert expand_paths([str(tmp_path / "*.yaml")]) == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]
    # a literal path is kept as given (a missing one is load_manifest's to report), a repeat kept once
    assert expand_paths(["x.yaml", str(tmp_path / "c.yml"), "x.yaml"]) == ["x.yaml", str(tmp_path / "c.yml")]
    with pytest.raises(UsageError, match="matches no file"):
        expand_paths([str(tmp_path / "*.json")])


def test_load_fleet_reports_every_invalid_manifest_and_refuses_a_stack_named_twice(tmp_path: Path) -> None:
    good = _write(tmp_path, "good.yaml", "good")
    bad1 = _write(tmp_path, "bad1.yaml", "Bad_1")
    bad2 = _write(tmp_path, "bad2.yaml", "Bad_2")
    with pytest.raises(ManifestError) as caught:
        load_fleet([str(good), str(bad1), str(bad2)])
    assert {p.file for p in caught.value.problems} == {str(bad1), str(bad2)}
    again = _write(tmp_path, "again.yaml", "good")
    with pytest.raises(UsageError, match=r"/us-east-1/good in .*good\.yaml, .*again\.yaml"):
        load_fleet([str(good), str(again)])
    other = _write(tmp_path, "other.yaml", "other", region="eu-west-1")
    with pytest.raises(UsageError, match="--region us-east-1 differs"):
        load_fleet([str(good), str(other)], region="us-east-1")
    members = load_fleet([str(other), str(good)])
    assert [m.identity.stack for m in members] == ["other", "good"]  # by (account, region, stack)


def _members(count: int) -> list[Member]:
    return [Member(StackIdentity("", "us-east-1", f"s{i}", f"s{i}.yaml"), None) for i in range(count)]  # type: ignore[arg-type]


def test_one_stacks_failure_never_stops_the_others_and_each_gets_one_outcome() -> None:
    def run_one(member: Member, _stop: Stop) -> Finished:
        if member.identity.stack == "s1":
            raise AwsError("reading iam.user failed: AccessDenied; check the permissions")
        if member.identity.stack == "s2":
            raise KeyError("boom")  # a bug: reported with its type, never a crash of the run
        return Finished("in_sync", 0, {"ok": True}, "text\n")

    seen: list[tuple[str, str]] = []
    outcomes = run_fleet(_members(4), run_one, jobs=2, stop=Stop(), on_done=lambda o, t: seen.append(
        (o.identity.stack, t)))
    assert [(o.identity.stack, o.status, o.exit_code) for o in outcomes] == [
        ("s0", "in_sync", 0), ("s1", "error", 1), ("s2", "error", 1), ("s3", "in_sync", 0)]
    assert outcomes[1].error is not None and "AccessDenied" in outcomes[1].error
    assert outcomes[2].error == "KeyError: 'boom'"
    assert sorted(stack for stack, _ in seen) == ["s0", "s1", "s2", "s3"]
    assert dict(seen)["s2"].startswith("error: KeyError") and "report it" in dict(seen)["s2"]


def test_at_most_jobs_stacks_run_at_once() -> None:
    lock, running, peak = threading.Lock(), [0], [0]

    def run_one(_member: Member, _stop: Stop) -> Finished:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return Finished("in_sync", 0, None)

    run_fleet(_members(6), run_one, jobs=2, stop=Stop(), on_done=lambda o, t: None, poll=0.01)
    assert peak[0] == 2


def test_after_a_stop_no_new_stack_starts_and_the_rest_are_reported_not_started() -> None:
    stop = Stop()
    started: list[str] = []

    def run_one(member: Member, given: Stop) -> Finished:
        started.append(member.identity.stack)
        assert given is stop  # the shared flag every apply checks at its safe points
        stop.set(signal.SIGINT)
        return Finished("applied", 0, None)

    outcomes = run_fleet(_members(3), run_one, jobs=1, stop=stop, on_done=lambda o, t: None, poll=0.01)
    assert started == ["s0"]
    assert [(o.status, o.error) for o in outcomes] == [("applied", None), ("error", NOT_STARTED),
                                                       ("error", NOT_STARTED)]
    assert stop.reason() == "interrupted by SIGINT"


def test_a_stack_past_the_timeout_is_given_up_as_an_error_once() -> None:
    release = threading.Event()

    def run_one(member: Member, _stop: Stop) -> Finished:
        if member.identity.stack == "s0":
            release.wait(5)
        return Finished("in_sync", 0, None)

    done: list[StackOutcome] = []
    outcomes = run_fleet(_members(2), run_one, jobs=2, stop=Stop(), on_done=lambda o, t: done.append(o),
                         timeout=0.2, poll=0.01)
    release.set()
    assert outcomes[0].status == "error" and "--timeout 0.2 s" in (outcomes[0].error or "")
    assert outcomes[1].status == "in_sync" and len(done) == 2


def test_failures_are_described_without_a_traceback_unless_verbose() -> None:
    try:
        raise ValueError("odd")
    except ValueError as exc:
        quiet = describe_failure(exc, verbose=False)
        loud = describe_failure(exc, verbose=True)
    assert quiet[0] == loud[0] == "ValueError: odd"
    assert "Traceback" not in quiet[1] and "Traceback" in loud[1]


def test_default_jobs() -> None:
    assert [default_jobs(n) for n in (0, 1, 5, 8, 100)] == [1, 1, 5, 8, 8]


def test_read_pacers_are_per_credentials_identity_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    one, same = Clients("us-east-1", endpoint_url="http://127.0.0.1:1"), Clients("us-east-1",
                                                                                endpoint_url="http://127.0.0.1:1")
    assert one.pacer is same.pacer  # two Clients of one stack (the run's, the lease's) share the buckets
    assert Clients("eu-west-1", endpoint_url="http://127.0.0.1:1").pacer is not one.pacer
    role_a = pacing_identity(None, None, "arn:aws:iam::111111111111:role/reconciler")
    role_b = pacing_identity(None, None, "arn:aws:iam::222222222222:role/reconciler")
    assert pacer_for(role_a, "us-east-1") is not pacer_for(role_b, "us-east-1")
    assert pacer_for(role_a, "us-east-1") is pacer_for(role_a, "us-east-1")
    # a stack's Clients spend its role's account's limits (no AWS call yet: the role is assumed on first use)
    from reconciler.engine.clients import RoleToAssume

    assumed = Clients("us-east-1", endpoint_url="http://127.0.0.1:1",
                      role=RoleToAssume("arn:aws:iam::111111111111:role/reconciler"))
    assert assumed.pacer is pacer_for(pacing_identity(None, "http://127.0.0.1:1", assumed.role.arn), "us-east-1")
    assert assumed.pacer is not one.pacer and assumed.writable().pacer is assumed.pacer
    monkeypatch.setenv("RECONCILER_RATE_IAM", "3/7")  # the overrides still apply to a new identity's buckets
    bucket = pacer_for(pacing_identity("fresh-profile", None), "us-east-1").bucket("iam")
    assert bucket is not None and (bucket.rate, bucket.capacity) == (3.0, 7.0)


def test_a_stacks_progress_lines_are_whole_and_prefixed(capsys: pytest.CaptureFixture[str]) -> None:
    from reconciler.cli import Out, _StackOut

    out = _StackOut(Out(verbose=False, quiet=False, color=False), "dev")
    stream = out.progress()
    assert not stream.isatty()  # plain lines: no live display per stack
    stream.write("2026-12-01T18:00:00Z iam.user.a cre")
    assert capsys.readouterr().err == ""  # half a line waits for its end
    stream.write("ated (0.1s)\nsecond line\n")
    out.info("waiting for the lease")
    out.result("Plan: 1 to add.\n")
    assert capsys.readouterr().err.splitlines() == [
        "[dev] 2026-12-01T18:00:00Z iam.user.a created (0.1s)", "[dev] second line", "[dev] waiting for the lease"]
    assert out.parts == ["Plan: 1 to add.\n"]  # results are kept for the stack's block
