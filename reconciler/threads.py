"""Every thread the tool starts, made so that Ctrl-C and SIGTERM always reach the main thread.

Why: Linux delivers a signal sent to the process (Ctrl-C on the terminal, `kill`) to any one of
its threads that does not block it. Python runs its handlers in the main thread only, but when the
signal lands on another thread the main thread is not woken: blocked in a read of the terminal (the
apply prompt) it waits for input forever, and Ctrl-C seems to do nothing. (test_prompts hung once that
way in a full run under load: a Ctrl-C at the prompt, the signal consumed, the main thread asleep, the
lease's heartbeat thread alive; this is the likely cause, not one reproduced.) Each thread made here
blocks SIGINT and SIGTERM first, so the kernel can only hand them to the main thread, which is woken
and raises.

Invariant: no module of the tool makes a thread or a thread pool any other way
(tests/unit/test_threads.py checks the source). A child process started from one of these threads
(a credential helper) inherits the blocked signals; such helpers are short-lived, and an interrupted
run ends with `os._exit` without waiting for them.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def leave_signals_to_main() -> None:
    """Block SIGINT and SIGTERM in the calling thread, unless it is the main thread (which handles them)."""
    if threading.current_thread() is not threading.main_thread() and hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def pool(workers: int, name: str) -> ThreadPoolExecutor:
    """A thread pool whose workers leave the stop signals to the main thread."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name, initializer=leave_signals_to_main)


def thread(target: Callable[..., Any], *, name: str, args: tuple[Any, ...] = ()) -> threading.Thread:
    """A daemon thread (not started) that leaves the stop signals to the main thread, then runs `target(*args)`."""

    def run(*given: Any) -> None:
        leave_signals_to_main()
        target(*given)

    return threading.Thread(target=run, args=args, name=name, daemon=True)
