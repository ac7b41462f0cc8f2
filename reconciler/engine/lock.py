"""One apply at a time per stack: a lock in SSM Parameter Store with owner and expiry.

The lock is created with PutParameter without Overwrite, which AWS makes atomic:
exactly one of two racing applies succeeds. An expired lock (its holder died) is
taken over; `reconcile unlock` removes a lock by hand.

Each attempt's body carries a random token, so a PutParameter whose response was
lost (botocore retries it and gets ParameterAlreadyExists) is recognised as our own
lock instead of being reported as held by someone else.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from reconciler.errors import LockError
from reconciler.kinds.base import Context, error_code

TTL = datetime.timedelta(minutes=30)


def lock_name(stack: str) -> str:
    return f"/reconciler/locks/{stack}"


def _owner() -> str:
    return f"{os.environ.get('USER', 'unknown')}@{socket.gethostname()} pid {os.getpid()}"


@contextmanager
def stack_lock(ctx: Context, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the stack's lock for the duration of the block."""
    ssm = ctx.client("ssm")
    name = lock_name(ctx.stack)
    now = datetime.datetime.now(datetime.UTC)
    body = json.dumps({"owner": _owner(), "expires": (now + TTL).isoformat(), "token": secrets.token_hex(8)})
    deadline = time.monotonic() + wait_seconds
    races = 0
    while True:
        try:
            ssm.put_parameter(Name=name, Value=body, Type="String",
                              Description="reconciler apply lock; remove with `reconcile unlock`")
            break
        except Exception as exc:
            if error_code(exc) != "ParameterAlreadyExists":
                raise
        try:
            value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
        except Exception as exc:
            races += 1
            if error_code(exc) != "ParameterNotFound" or races > 5:
                raise
            continue  # released between our two calls: try to take it again
        if value == body:
            break  # ours: the response to our own PutParameter was lost and botocore retried it
        try:
            held = json.loads(value)
            expires = datetime.datetime.fromisoformat(held["expires"])
        except (ValueError, TypeError, KeyError):
            raise LockError(f"the lock parameter {name} holds something unreadable; if no apply is running, "
                            "remove it with `reconcile unlock`") from None
        if expires < datetime.datetime.now(datetime.UTC):
            ssm.put_parameter(Name=name, Value=body, Type="String", Overwrite=True)
            break
        if time.monotonic() >= deadline:
            raise LockError(f"stack {ctx.stack} is locked by {held.get('owner', 'unknown')} until {held['expires']}; "
                            f"wait, or run `reconcile unlock` if that apply is dead")
        time.sleep(2)
    try:
        yield
    finally:
        release(ctx)


def release(ctx: Context) -> bool:
    try:
        ctx.client("ssm").delete_parameter(Name=lock_name(ctx.stack))
        return True
    except Exception as exc:
        if error_code(exc) == "ParameterNotFound":
            return False
        raise
