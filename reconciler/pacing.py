"""Client-side pacing per AWS service, and the bounded fan-out the per-resource reads run in.

Why pacing on our side at all: botocore's retries react to throttling after the fact,
and a plan that fans out 40 GetLoginProfile calls at once would trip IAM's account-wide
limit and spend its time in back-off. A token bucket per service keeps the burst
under the rate the service tolerates, so retries (adaptive mode for reads, see
`engine.clients`) are left for real hiccups and for other tools sharing the account.

Rates (calls per second, then burst). AWS documents per-action request token buckets
for EC2 (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html: a
non-mutating action such as DescribeHosts has a bucket of 100 tokens refilled at 20 a
second, each action with a bucket of its own, so EC2's reads are paced per action: `PER_ACTION`);
it publishes no figure for IAM's or ECR's control-plane reads, so the defaults
there are conservative choices, not citations: IAM is one endpoint for the whole
account (every tool and pipeline in it shares its limit), so it gets the lowest rate,
with a burst that lets the per-user reads (two per user) of a stack of up to about 50 users go at once
(AWS's advice on IAM throttling, https://repost.aws/knowledge-center/iam-sts-throttling-error, is to
back off, and its limits cannot be raised); ECR
publishes rates only for its image-push actions (hundreds a second, on its service quotas
page) and its control-plane reads are regional, so they get a higher rate. Override any with
`RECONCILER_RATE_<SERVICE>=<rate>[/<burst>]`, e.g. `RECONCILER_RATE_IAM=5/10`;
`0` turns pacing of that service off.

Invariants: a bucket never lets more than `capacity` calls through at once nor more
than `rate` a second on average; `take` only sleeps, never fails; every bucket is
thread-safe. Buckets are per (credentials identity, region) (`pacer_for`): AWS's limits are per
account and region, so a fleet run over 100 accounts keeps 100 sets of buckets, while every
Clients of one stack (the run's and its lease's) shares one set.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

from reconciler import threads

T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")
B = TypeVar("B")


class TokenBucket:
    """`capacity` calls at once, then `rate` per second. Thread-safe; clock and sleep injectable for tests."""

    def __init__(self, capacity: float, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError(f"a token bucket needs rate > 0 and capacity >= 1 (got rate={rate}, "
                             f"capacity={capacity})")
        self.capacity, self.rate = capacity, rate
        self._tokens = float(capacity)
        self._clock, self._sleep = clock, sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1 - 1e-9:  # tolerate float rounding of the refill
                    self._tokens = max(0.0, self._tokens - 1)
                    return waited
                pause = (1 - self._tokens) / self.rate
            self._sleep(pause)  # outside the lock: other threads refill and take meanwhile
            waited += pause


# (rate per second, burst) of reads, by botocore service name. See the module docstring for sources.
DEFAULT_READ_RATES: Mapping[str, tuple[float, float]] = {
    "iam": (20.0, 100.0),
    "ec2": (20.0, 100.0),  # EC2's documented bucket for Describe* actions, per action (PER_ACTION)
    "ecr": (50.0, 100.0),
    "ssm": (20.0, 40.0),
    "secretsmanager": (20.0, 40.0),
    "sts": (20.0, 40.0),
}


# Services whose reads AWS meters per action, each action with its own bucket (EC2: "Request token bucket sizes
# and refill rates", https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html): one bucket for all
# of them would hold an apply's DescribeSubnets behind its DescribeRouteTables, at a fifth of what AWS allows.
PER_ACTION: frozenset[str] = frozenset({"ec2"})


def parse_rate(text: str) -> tuple[float, float] | None:
    """`"10"` -> (10, 10), `"10/20"` -> (10, 20), `"0"` -> None (no pacing). ValueError for anything else."""
    rate_text, _, burst_text = text.strip().partition("/")
    rate = float(rate_text)
    burst = float(burst_text) if burst_text else max(1.0, rate)
    if rate < 0 or burst < 0 or rate != rate or burst != burst:  # negative or NaN
        raise ValueError(text)
    if rate == 0:
        return None
    return rate, max(1.0, burst)


def read_rate(service: str, env: Mapping[str, str] | None = None) -> tuple[float, float] | None:
    """The (rate, burst) for reads of `service`: RECONCILER_RATE_<SERVICE>, else the default; None: unpaced.

    A value that does not parse falls back to the default here; `engine.clients` refuses such a
    value up front (`bad_rates`), before any call, so this fallback is only a second line.
    """
    env = os.environ if env is None else env
    text = env.get(f"RECONCILER_RATE_{service.upper().replace('-', '_')}")
    if text:
        try:
            return parse_rate(text)
        except ValueError:
            pass
    return DEFAULT_READ_RATES.get(service)


def bad_rates(env: Mapping[str, str] | None = None) -> list[str]:
    """The RECONCILER_RATE_* variables whose value `parse_rate` refuses, sorted."""
    env = os.environ if env is None else env
    bad = []
    for name, value in env.items():
        if name.startswith("RECONCILER_RATE_"):
            try:
                parse_rate(value)
            except ValueError:
                bad.append(name)
    return sorted(bad)


class Pacer:
    """One bucket per service, made on first use from `read_rate`; shared by every thread."""

    def __init__(self, env: Mapping[str, str] | None = None,
                 make: Callable[[float, float], TokenBucket] = lambda rate, burst: TokenBucket(burst, rate)) -> None:
        self._env = env
        self._make = make
        self._buckets: dict[str, TokenBucket | None] = {}
        self._lock = threading.Lock()

    def bucket(self, service: str, operation: str = "") -> TokenBucket | None:
        """The bucket of `service` (of `service:operation` where AWS meters each action: PER_ACTION)."""
        key = f"{service}:{operation}" if service in PER_ACTION and operation else service
        with self._lock:
            if key not in self._buckets:
                rate = read_rate(service, self._env)
                self._buckets[key] = self._make(rate[0], rate[1]) if rate else None
            return self._buckets[key]

    def take(self, service: str, operation: str = "") -> float:
        """Wait for a read token of `service` (and `operation`, for PER_ACTION services); the seconds waited
        (0 for an unpaced service)."""
        bucket = self.bucket(service, operation)
        return bucket.take() if bucket is not None else 0.0


_PACERS: dict[tuple[str, str], Pacer] = {}
_PACERS_LOCK = threading.Lock()


def pacer_for(identity: str, region: str) -> Pacer:
    """The read pacer of one (credentials identity, region): made once, then shared by every caller.

    `identity` names whose limits the calls spend: the assumed role's ARN, else the profile (the
    same credentials are the same account). The environment overrides are read as each bucket is
    made, as for any Pacer.
    """
    with _PACERS_LOCK:
        key = (identity, region)
        if key not in _PACERS:
            _PACERS[key] = Pacer()
        return _PACERS[key]


DEFAULT_WORKERS = 16


def read_workers(env: Mapping[str, str] | None = None) -> int:
    """Threads per fan-out of per-resource reads: RECONCILER_READ_WORKERS (1 to 64), else 16."""
    env = os.environ if env is None else env
    try:
        value = int(env.get("RECONCILER_READ_WORKERS", "") or DEFAULT_WORKERS)
    except ValueError:
        return DEFAULT_WORKERS
    return min(64, max(1, value))


@contextmanager
def read_pool(workers: int, name: str) -> Iterator[ThreadPoolExecutor]:
    """A thread pool for reads that, when its block raises (Ctrl-C above all), does not wait for its threads.

    `with ThreadPoolExecutor()` joins every worker on the way out, so a KeyboardInterrupt while reads
    were blocked on a slow or silent endpoint waited out their timeouts and retries before "interrupted"
    could be printed. A read has nothing to undo: on an exception the queued reads are cancelled and
    the running ones abandoned (the CLI ends the process without joining them). On success every
    read has already ended, and the pool is shut down as usual.
    """
    pool = threads.pool(workers, name)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def fan_out(fn: Callable[[T], R], items: Iterable[T], *, name: str = "read") -> list[R]:
    """`[fn(item) for item in items]`, run on a bounded pool; results in input order.

    The first exception raised by any call is raised here once all calls ended (a read is
    complete or fails as a whole); an interrupt is raised at once (`read_pool`). Pacing is not
    done here: every call already waits for its service's bucket in `engine.clients`, so the
    pool only bounds the threads.
    """
    work = list(items)
    if len(work) <= 1:
        return [fn(item) for item in work]
    with read_pool(min(read_workers(), len(work)), name) as pool:
        futures = [pool.submit(fn, item) for item in work]
        wait(futures)  # every call ends before the first error is raised, as the docstring says
        return [future.result() for future in futures]


def both(first: Callable[[], A], second: Callable[[], B], *, name: str = "read") -> tuple[A, B]:
    """`(first(), second())`, the two run at the same time: two independent reads, neither waiting for the
    other's round trips. Errors and interrupts as in `fan_out` (both end before the first error is raised)."""
    with read_pool(2, name) as pool:
        one, two = pool.submit(first), pool.submit(second)
        running: list[Future[Any]] = [one, two]
        wait(running)
        return one.result(), two.result()
