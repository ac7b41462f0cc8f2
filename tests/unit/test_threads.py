"""Every thread the tool starts leaves Ctrl-C and SIGTERM to the main thread (reconciler/threads.py)."""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path

from reconciler import threads
from reconciler.pacing import both, fan_out

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler"


def _blocked() -> frozenset[int]:
    return frozenset(signal.pthread_sigmask(signal.SIG_BLOCK, []))  # adds nothing: reads the mask


def test_pool_workers_and_threads_block_the_stop_signals_and_the_main_thread_does_not() -> None:
    with threads.pool(2, "t") as pool:
        assert pool.submit(_blocked).result() >= threads.STOP_SIGNALS
    seen: list[frozenset[int]] = []
    started = threads.thread(lambda: seen.append(_blocked()), name="t")
    started.start()
    started.join(5)
    assert started.daemon and seen and seen[0] >= threads.STOP_SIGNALS
    assert not threads.STOP_SIGNALS & _blocked()  # the main thread still takes them
    threads.leave_signals_to_main()  # a no-op in the main thread
    assert not threads.STOP_SIGNALS & _blocked()


def test_the_read_fan_outs_run_in_such_threads() -> None:
    gate = threading.Barrier(2, timeout=5)

    def read(_: int) -> frozenset[int]:
        gate.wait()  # two at once: on pool threads, not inline in the main thread
        return _blocked()

    assert all(mask >= threads.STOP_SIGNALS for mask in fan_out(read, range(2)))
    assert all(mask >= threads.STOP_SIGNALS for mask in both(_blocked, _blocked))


def test_no_module_makes_a_thread_or_a_pool_any_other_way() -> None:
    making = re.compile(r"\bThreadPoolExecutor\(|\bthreading\.Thread\(|\bThread\(target")
    found = [f"{path.relative_to(PACKAGE)}:{number}" for path in sorted(PACKAGE.rglob("*.py"))
             if path.name != "threads.py"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if making.search(line) and not line.lstrip().startswith(("#", "`"))]
    assert found == [], f"make threads with reconciler.threads, not directly: {found}"
