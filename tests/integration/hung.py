"""What a child process that did not exit was doing: for the message of a test that waited on it.

The Ctrl-C tests (test_hangs, test_prompts) have hung now and then in full runs under load and
never alone; this names the child's signal state (a SIGINT blocked, ignored or pending says the
signal never reached Python) and, where py-spy is installed, every thread's stack.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def describe_hung(pid: int) -> str:
    """The child's state and signal masks from /proc, and its threads' stacks (py-spy, if present)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError as exc:
        return f"pid {pid}: no /proc status ({exc})"
    wanted = ("State", "Threads", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    lines = [line for line in status.splitlines() if line.startswith(wanted)]
    # the venv's own (a dev dependency), found even when the venv's bin is not on PATH (make runs .venv/bin/pytest)
    beside = Path(sys.executable).with_name("py-spy")
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is not None:
        try:
            dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30)
            lines.append(dump.stdout + dump.stderr)
        except subprocess.TimeoutExpired:
            lines.append("py-spy dump timed out")
    return "\n".join(lines)
