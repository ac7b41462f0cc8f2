"""The least wall time a no-op plan can take on this machine: its floor, apart from our code.

A plan's reads are bound by two things our code does not choose once the calls are as
few as the API allows (bench/bound.py):

- **pacing**: each service's client-side token bucket (`reconciler.pacing`) lets `burst`
  reads through at once, then `rate` a second. A service's reads take at least
  `(reads - burst) / rate` seconds; services are paced apart, so the plan waits for the
  slowest one (`pacing_floor`, pure). EC2 is metered per action, as AWS meters it.
- **the emulator**: moto is one Python process; on a small machine it answers only so many
  requests a second however many arrive at once. `emulator_rate` measures that rate with
  the plan's own fan-out width (RECONCILER_READ_WORKERS threads of per-user reads through
  the proxy, with its latency), on the account as the bench left it, so moto's cost per
  call at that size is in it. The plan's calls take at least `calls / rate` seconds.

The floor is the larger of the two. Issue 14's "large / small <= 1.5" compares wall times
whose floors differ by far more than that at these sizes; `make bench` prints each size's
plan beside its floor, which is the part of the wall time that is the tool's own.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def pacing_floor(reads: Mapping[str, int], rate: Callable[[str], tuple[float, float] | None],
                 per_action: frozenset[str]) -> tuple[float, str]:
    """(seconds, the bucket that binds) for reads given as {"service:Operation": count}.

    `rate(service)` is (rate a second, burst), or None for an unpaced service; a service in
    `per_action` has one bucket per operation. Invariant: pure, and never below 0.
    """
    buckets: Counter[str] = Counter()
    for key, count in reads.items():
        service = key.partition(":")[0]
        buckets[key if service in per_action else service] += count
    worst, name = 0.0, ""
    for bucket, count in buckets.items():
        paced = rate(bucket.partition(":")[0])
        if paced is None:
            continue
        per_second, burst = paced
        seconds = max(0.0, (count - burst) / per_second)
        if seconds > worst:
            worst, name = seconds, bucket
    return worst, name


def emulator_rate(endpoint: str, users: list[str], workers: int, calls: int = 400) -> float:
    """Requests a second the endpoint answered: `calls` IAM per-user reads (ListAccessKeys, GetLoginProfile,
    as a plan makes them) on `workers` threads, unpaced. Errors (a user without a login profile) count:
    they cost moto the same round trip."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    client: Any = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                               aws_secret_access_key="testing",
                               config=Config(max_pool_connections=workers, retries={"max_attempts": 1}))
    client.list_users(MaxItems=1)  # connect and load the model first: not part of the rate

    def one(n: int) -> None:
        user = users[n % len(users)]
        with contextlib.suppress(ClientError):
            (client.list_access_keys if n % 2 else client.get_login_profile)(UserName=user)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(calls)))
    seconds = time.perf_counter() - started
    return calls / seconds if seconds > 0 else math.inf
