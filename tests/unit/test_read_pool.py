"""An interrupt during fanned-out reads is raised at once, not after the blocked reads end."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from reconciler.pacing import fan_out, read_pool


def test_ctrl_c_while_reads_are_blocked_is_raised_without_waiting_for_them() -> None:
    release = threading.Event()
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C, as the main thread waits
    safety = threading.Timer(8.0, release.set)  # the blocked reads end here at the latest
    safety.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            fan_out(lambda _: release.wait(), range(4))
        assert time.monotonic() - started < 4, "the interrupt waited for the blocked reads"
    finally:
        release.set()
        safety.cancel()


def test_every_read_ends_before_the_first_error_is_raised() -> None:
    ended: list[int] = []

    def read(item: int) -> int:
        if item == 0:
            raise ValueError("denied")
        time.sleep(0.2)
        ended.append(item)
        return item

    with pytest.raises(ValueError, match="denied"):
        fan_out(read, range(4))
    assert sorted(ended) == [1, 2, 3]


def test_results_keep_the_input_order_and_the_pool_shuts_down_after_success() -> None:
    assert fan_out(lambda n: n * n, [3, 1, 2]) == [9, 1, 4]
    with read_pool(2, "t") as pool:
        future = pool.submit(lambda: 5)
    assert future.result() == 5 and pool._shutdown  # the executor's own flag
