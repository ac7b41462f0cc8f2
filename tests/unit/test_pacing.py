"""The per-service read pacing (reconciler/pacing.py) and the engine's choice of second-phase reads, on plain data."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from reconciler.engine.clients import retry_mode
from reconciler.engine.read import going
from reconciler.errors import UsageError
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.iam._hygiene import access_key_findings
from reconciler.manifest.model import DesiredResource
from reconciler.pacing import (
    DEFAULT_READ_RATES,
    Pacer,
    TokenBucket,
    bad_rates,
    fan_out,
    parse_rate,
    read_rate,
    read_workers,
)
from reconciler.plan.model import Action, Change, LiveResource, Plan


class FakeClock:
    """A clock that only moves when the bucket sleeps: waits are counted, never spent."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_bucket_lets_its_burst_through_then_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(capacity=5, rate=2, clock=clock, sleep=clock.sleep)
    waits = [bucket.take() for _ in range(9)]
    assert waits[:5] == [0.0] * 5  # the burst: no wait
    assert waits[5:] == pytest.approx([0.5] * 4)  # then one every 1/rate seconds
    assert clock.now == pytest.approx(2.0)  # 4 calls past the burst at 2 a second


def test_a_bucket_refills_while_idle_but_never_past_its_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(capacity=3, rate=1, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        bucket.take()
    clock.now += 100  # a long idle time refills only up to the capacity
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(1.0)


def test_a_bucket_refuses_a_rate_that_would_never_refill() -> None:
    with pytest.raises(ValueError):
        TokenBucket(capacity=1, rate=0)


def test_a_shared_bucket_paces_threads_together() -> None:
    lock = threading.Lock()
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        with lock:
            clock.sleep(seconds)

    bucket = TokenBucket(capacity=2, rate=10, clock=clock, sleep=sleep)
    threads = [threading.Thread(target=bucket.take) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 10 calls past the burst at 10 a second: at least one second passed, whichever thread slept
    assert clock.now >= 1.0 - 1e-6


@pytest.mark.parametrize(("text", "expected"), [
    ("10", (10.0, 10.0)), ("10/20", (10.0, 20.0)), ("0.5", (0.5, 1.0)), (" 4/1 ", (4.0, 1.0)), ("0", None),
])
def test_rates_parse(text: str, expected: tuple[float, float] | None) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["fast", "-1", "10/x", "nan", ""])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


def test_rates_come_from_the_environment_else_the_defaults() -> None:
    env = {"RECONCILER_RATE_IAM": "2/4", "RECONCILER_RATE_ECR": "0", "RECONCILER_RATE_SSM": "junk"}
    assert read_rate("iam", env) == (2.0, 4.0)
    assert read_rate("ecr", env) is None  # 0: not paced
    assert read_rate("ssm", env) == DEFAULT_READ_RATES["ssm"]  # refused up front by the engine (bad_rates)
    assert read_rate("kms", env) is None  # no default: not paced
    assert bad_rates(env) == ["RECONCILER_RATE_SSM"]
    assert DEFAULT_READ_RATES["iam"][0] < DEFAULT_READ_RATES["ecr"][0]  # IAM is the account-wide, slow one


def test_the_pacer_keeps_one_bucket_per_service_and_skips_unpaced_ones() -> None:
    made: list[tuple[float, float]] = []

    def make(rate: float, burst: float) -> TokenBucket:
        made.append((rate, burst))
        return TokenBucket(burst, rate)

    pacer = Pacer({"RECONCILER_RATE_IAM": "3/7"}, make=make)
    assert pacer.bucket("iam") is pacer.bucket("iam")
    assert pacer.take("kms") == 0.0 and pacer.bucket("kms") is None
    assert made == [(3.0, 7.0)]


def test_ec2_reads_have_a_bucket_per_action_as_aws_meters_them() -> None:
    pacer = Pacer({"RECONCILER_RATE_EC2": "1/2", "RECONCILER_RATE_IAM": "1/2"})
    subnets, tables = pacer.bucket("ec2", "DescribeSubnets"), pacer.bucket("ec2", "DescribeRouteTables")
    assert subnets is not None and tables is not None and subnets is not tables
    assert subnets is pacer.bucket("ec2", "DescribeSubnets") and (subnets.capacity, subnets.rate) == (2.0, 1.0)
    # one action's burst spent leaves another's whole (no sleep: both take at once)
    assert [pacer.take("ec2", "DescribeSubnets") for _ in range(2)] == [0.0, 0.0]
    assert [pacer.take("ec2", "DescribeRouteTables") for _ in range(2)] == [0.0, 0.0]
    # IAM is one account-wide limit: every action shares its bucket
    assert pacer.bucket("iam", "ListAccessKeys") is pacer.bucket("iam", "GetLoginProfile") is pacer.bucket("iam")


def test_a_bad_rate_is_a_usage_error_before_any_call(monkeypatch: Any) -> None:
    from reconciler.engine.clients import Clients

    monkeypatch.setenv("RECONCILER_RATE_IAM", "lots")
    with pytest.raises(UsageError, match="RECONCILER_RATE_IAM='lots'"):
        Clients("us-east-1", endpoint_url="http://127.0.0.1:1")


def test_reads_retry_adaptively_and_writes_in_standard_mode(monkeypatch: Any) -> None:
    monkeypatch.delenv("RECONCILER_RETRY_MODE", raising=False)
    assert (retry_mode(True), retry_mode(False)) == ("adaptive", "standard")
    monkeypatch.setenv("RECONCILER_RETRY_MODE", "standard")
    assert retry_mode(True) == "standard"
    monkeypatch.setenv("RECONCILER_RETRY_MODE", "turbo")
    with pytest.raises(UsageError):
        retry_mode(True)


def test_fan_out_keeps_the_order_and_bounds_the_threads(monkeypatch: Any) -> None:
    monkeypatch.setenv("RECONCILER_READ_WORKERS", "3")
    running = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Barrier(3, timeout=5)

    def work(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        if n < 3:
            gate.wait()  # the first three run at the same time: the pool is concurrent
        with lock:
            running -= 1
        return n * n

    assert fan_out(work, range(10)) == [n * n for n in range(10)]
    assert peak == 3
    assert read_workers({"RECONCILER_READ_WORKERS": "999"}) == 64
    assert read_workers({"RECONCILER_READ_WORKERS": "x"}) == 16


def test_fan_out_raises_the_first_failure() -> None:
    def work(n: int) -> int:
        if n == 4:
            raise KeyError("missing")
        return n

    with pytest.raises(KeyError):
        fan_out(work, range(8))


# -- which resources get the second read phase ---------------------------------------------------

class Plain(Kind):
    name = "t.plain"


class Deletable(Kind):
    name = "t.deletable"

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        return ReadResult()

    def read_for_deletion(self, ctx: Context, live: LiveResource) -> LiveResource:
        return live


def _change(kind: str, name: str, action: Action, live: bool = True) -> Change:
    address = f"{kind}.{name}"
    desired = None if action is Action.DELETE else DesiredResource(address, kind, {"name": name})
    return Change(address, kind, action, "test", desired=desired,
                  live=LiveResource(address, kind, name, {"name": name}) if live else None)


def test_only_deleted_or_replaced_resources_of_kinds_that_ask_are_read_again() -> None:
    kinds: dict[str, Kind] = {"t.plain": Plain(), "t.deletable": Deletable()}
    changes = (
        _change("t.deletable", "gone", Action.DELETE),
        _change("t.deletable", "swapped", Action.REPLACE),
        _change("t.deletable", "kept", Action.NOOP),
        _change("t.deletable", "changed", Action.UPDATE),
        _change("t.deletable", "new", Action.CREATE, live=False),
        _change("t.plain", "gone", Action.DELETE),
    )
    plan = Plan(stack="s", region="us-east-1", account="1", manifest_sha256="", live_sha256="", changes=changes)
    assert [live.address for live in going(plan, kinds)] == ["t.deletable.gone", "t.deletable.swapped"]


def test_a_key_whose_last_use_was_not_read_has_no_unused_finding() -> None:
    key = {"id": "AKIAOLD", "status": "Active", "role": "delivered", "age_days": 400}
    change = Change("iam.user.a.access_keys", "iam.access_key", Action.NOOP, "test",
                    desired=DesiredResource("iam.user.a.access_keys", "iam.access_key", {"user": "a"}),
                    live=LiveResource("iam.user.a.access_keys", "iam.access_key", "a", {"user": "a", "keys": [key]}))
    rules = {f.rule for f in access_key_findings(change)}
    assert rules == {"KEY_AGE"}  # not KEY_UNUSED: "never used" would be a guess
    read = {**key, "last_used_days": None}
    change_read = Change(change.address, change.kind, change.action, "test", desired=change.desired,
                         live=LiveResource(change.address, change.kind, "a", {"user": "a", "keys": [read]}))
    assert {f.rule for f in access_key_findings(change_read)} == {"KEY_AGE", "KEY_UNUSED"}
