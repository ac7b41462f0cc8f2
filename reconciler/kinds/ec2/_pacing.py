"""Client-side pacing for the EC2 calls AWS throttles hardest (VPC endpoint mutations).

Why here and not in botocore's retries: retries react to throttling after the fact;
a bucket keeps a burst of endpoint creates (one per VPC, in parallel) under the rate
AWS tolerates, so the retries are left for real hiccups.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Client-side pacing: `capacity` calls at once, then `rate` per second. Thread-safe."""

    def __init__(self, capacity: float, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.capacity, self.rate = capacity, rate
        self._tokens = capacity
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
            self._sleep(pause)
            waited += pause


# AWS throttles VPC endpoint mutations far below other EC2 calls.
ENDPOINT_PACER = TokenBucket(capacity=4, rate=0.3)
