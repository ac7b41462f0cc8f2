"""The proxy check: per-request latency that boto3 sees through the fault proxy.

A proxy that answers in two writes (status line and headers, then the body) on a
socket with Nagle's algorithm on makes each request wait for the client's delayed
ACK (~40 ms on Linux), so "20 ms injected" becomes ~66-71 ms per request and every
figure the bench prints is wrong. `measure` times sequential cheap reads (STS
GetCallerIdentity) straight to moto and through the proxy, so the injected latency
can be checked before any figure is trusted.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LatencyCheck:
    injected_ms: float
    direct_ms: float  # moto alone, no proxy: the emulator's own cost per call
    measured_ms: float  # through the proxy with the injected latency

    @property
    def ratio(self) -> float:
        return self.measured_ms / self.injected_ms if self.injected_ms else float("inf")

    def line(self) -> str:
        return (f"proxy check: {self.injected_ms:g} ms injected, {self.measured_ms:.1f} ms measured per request "
                f"(moto alone {self.direct_ms:.1f} ms; {self.ratio:.2f}x)")


def _median_ms(client: Any, count: int) -> float:
    client.get_caller_identity()  # connect first: keep-alive, as a real run does
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        client.get_caller_identity()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(direct_endpoint: str, proxy_endpoint: str, injected_ms: float, count: int = 25) -> LatencyCheck:
    """Median per-request latency of `count` sequential boto3 calls, direct and through the proxy."""
    import boto3

    def client(endpoint: str) -> Any:
        return boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing")

    return LatencyCheck(injected_ms, _median_ms(client(direct_endpoint), count),
                        _median_ms(client(proxy_endpoint), count))
