"""One apply at a time per stack: a renewed lease in SSM Parameter Store.

Layout: one String parameter per *generation*, `/reconciler/locks/<stack>/<n>`,
whose value is JSON `{"owner", "token", "lifetime"}`. The holder is the writer of
the highest live generation.

Invariants:
- Taking the lease is create-if-absent (`PutParameter` with `Overwrite=False`),
  SSM's only atomic write: of two racers creating generation n+1, exactly one
  succeeds. There is no compare-and-swap on a version in SSM, so a take-over never
  overwrites the lapsed generation: it creates the next one.
- A winner re-lists the generations after its create and backs off (deletes its own
  generation) when any other generation is still live: a racer that acted on a
  stale listing (e.g. it saw generation n lapsed, meanwhile n+1 was made and
  released, and the numbering restarted) can never hold the lease at the same time
  as the rightful holder; of two such racers at least one sees the other.
- Expiry is judged by AWS's clock only: a generation has lapsed when the `Date`
  header of the listing response is more than `lifetime` seconds after the
  parameter's `LastModifiedDate` (both written by AWS), or when we have watched the
  same version stay unchanged for `lifetime` seconds of our monotonic clock. The
  local wall clock is never read, so a machine whose clock is wrong cannot break a
  live lease.
- The holder renews on a heartbeat thread (every lifetime/6 s) by overwriting its
  own generation, after checking that the generation still carries its token and
  that no higher generation exists. A renewal that fails, or a lease not renewed
  for a whole lifetime, sets `lost`: the apply stops starting new actions.
- Release deletes only a generation that still carries our token.
- A random token per attempt makes a create whose answer was lost (botocore retries
  it and meets ParameterAlreadyExists) recognisable as our own.
"""

from __future__ import annotations

import email.utils
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from reconciler import threads
from reconciler.aws import absent_ok, error_code, is_absent
from reconciler.engine.clients import seconds_from_env
from reconciler.error_text import describe_error
from reconciler.errors import LockError

DEFAULT_LIFETIME = 60.0  # seconds a lease lives without renewal
DEFAULT_LOCK_TIMEOUT = 90.0  # one lifetime and some: a dead holder's lease always lapses within it
_POLL_FLOOR = 0.2


def lock_path(stack: str) -> str:
    """The folder of the stack's lease generations (reserved: a manifest may not name anything under it)."""
    return f"/reconciler/locks/{stack}"


def lifetime_seconds() -> float:
    """The lease lifetime; RECONCILER_LEASE_SECONDS shortens it for tests (never below 1 s)."""
    return max(1.0, seconds_from_env("RECONCILER_LEASE_SECONDS", DEFAULT_LIFETIME))


def _owner() -> str:
    return f"{os.environ.get('USER', 'unknown')}@{socket.gethostname()} pid {os.getpid()}"


def aws_error(what: str, exc: BaseException) -> LockError:
    """A one-line lock error built by describe_error: code and message only, never a response body."""
    return LockError(f"the stack lock: {what} failed ({describe_error(exc)}); check that the credentials "
                     "may use the SSM parameters /reconciler/locks/*, then re-run")


@dataclass(frozen=True)
class Generation:
    """One lease generation as listed: its number, body, version and AWS-clock age."""

    number: int
    name: str
    value: str
    version: int
    age: float | None  # seconds between LastModifiedDate and the listing's Date header; None if unknown

    @property
    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.value)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def owner(self) -> str:
        return str(self.body.get("owner", "unknown (unreadable lease)"))

    @property
    def lifetime(self) -> float:
        """The holder's own promise; an unreadable body gets the default lifetime."""
        value = self.body.get("lifetime")
        return float(value) if isinstance(value, (int, float)) and value > 0 else DEFAULT_LIFETIME


def lapsed_by_aws_clock(age: float | None, lifetime: float) -> bool:
    """True when AWS's own timestamps say the lease went unrenewed for longer than its lifetime."""
    return age is not None and age > lifetime


def _response_date(response: dict[str, Any]) -> float | None:
    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not header:
        return None
    try:
        return email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return None


class Lease:
    """The stack's lease, held from `acquire` to `release`; renewed on a heartbeat meanwhile."""

    def __init__(self, ssm: Any, stack: str, *, lifetime: float | None = None,
                 info: Callable[[str], None] = lambda _: None) -> None:
        self.ssm = ssm
        self.stack = stack
        self.lifetime = lifetime or lifetime_seconds()
        self.info = info
        self.token = secrets.token_hex(8)
        self.body = json.dumps({"owner": _owner(), "token": self.token, "lifetime": self.lifetime})
        self.name: str | None = None
        self.lost = threading.Event()  # set when the lease may no longer be ours: stop starting actions
        self.lost_reason = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewed = 0.0  # monotonic time of the last successful write of our generation
        self._seen: dict[tuple[str, int], float] = {}  # (name, version) -> monotonic time first seen

    # -- reading ----------------------------------------------------------------

    def generations(self) -> list[Generation]:
        """Every generation under the stack's folder, lowest first, with its age by AWS's clock."""
        found: list[Generation] = []
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"Path": lock_path(self.stack), "Recursive": False}
            if token:
                kw["NextToken"] = token
            response = self.ssm.get_parameters_by_path(**kw)
            aws_now = _response_date(response)
            for item in response.get("Parameters", []):
                suffix = item["Name"].rsplit("/", 1)[-1]
                if not suffix.isdigit():
                    continue
                modified = item.get("LastModifiedDate")
                age = aws_now - modified.timestamp() if aws_now is not None and modified is not None else None
                found.append(Generation(int(suffix), item["Name"], item.get("Value", ""),
                                        int(item.get("Version", 0)), age))
            token = response.get("NextToken")
            if not token:
                return sorted(found, key=lambda g: g.number)

    def _lapsed(self, gen: Generation) -> bool:
        """Lapsed by AWS's clock, or unchanged under our eyes for a whole lifetime (monotonic clock)."""
        first = self._seen.setdefault((gen.name, gen.version), time.monotonic())
        return lapsed_by_aws_clock(gen.age, gen.lifetime) or time.monotonic() - first > gen.lifetime

    def _mine(self, gen: Generation) -> bool:
        return gen.body.get("token") == self.token

    # -- taking -------------------------------------------------------------------

    def acquire(self, timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        """Take the lease, waiting up to `timeout` seconds for a live holder; then start renewing."""
        deadline = time.monotonic() + max(0.0, timeout)
        told: float | None = None
        while True:
            try:
                gens = self.generations()
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                raise aws_error("reading the lease", exc) from None
            live = [g for g in gens if not self._mine(g) and not self._lapsed(g)]
            ours = [g for g in gens if self._mine(g)]
            if not live and ours:  # our create's answer was lost, and its retry met our own generation
                self.name = ours[-1].name
                if self._confirm(ours[-1].number):
                    break
                continue
            if not live:
                number = (gens[-1].number if gens else 0) + 1
                if self._create(number) and self._confirm(number):
                    break
                continue
            holder = live[-1]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockError(f"stack {self.stack} is locked by {holder.owner} (lease "
                                f"{holder.name}, renewed {self._age_text(holder)}); it lapses "
                                f"{holder.lifetime:.0f} s after its last renewal if that apply died. "
                                "Wait, pass --lock-timeout SECONDS, or run `reconcile unlock` if you are sure "
                                "no apply is running")
            if told is None or time.monotonic() - told >= 15:
                told = time.monotonic()
                self.info(f"stack {self.stack} is locked by {holder.owner} (renewed {self._age_text(holder)}); "
                          f"waiting up to {remaining:.0f} s more for it to finish or lapse")
            time.sleep(min(max(_POLL_FLOOR, holder.lifetime / 6), max(_POLL_FLOOR, remaining)))
        self._renewed = time.monotonic()
        self._thread = threads.thread(self._heartbeat, name="lease-heartbeat")
        self._thread.start()

    @staticmethod
    def _age_text(gen: Generation) -> str:
        return f"{gen.age:.0f} s ago" if gen.age is not None else "at an unknown time"

    def _create(self, number: int) -> bool:
        """Create generation `number` if absent; True when it is ours."""
        name = f"{lock_path(self.stack)}/{number}"
        try:
            self.ssm.put_parameter(Name=name, Value=self.body, Type="String", Overwrite=False,
                                   Description="reconciler apply lease; see `reconcile unlock`")
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ParameterAlreadyExists":
                raise aws_error("taking the lease", exc) from None
            try:
                value = self.ssm.get_parameter(Name=name)["Parameter"]["Value"]
            except botocore.exceptions.ClientError as again:
                if is_absent(again, "ssm"):
                    return False  # released between our two calls: look again
                raise aws_error("taking the lease", again) from None
            except botocore.exceptions.BotoCoreError as again:
                raise aws_error("taking the lease", again) from None
            if value != self.body:
                return False  # another apply won this generation
        except botocore.exceptions.BotoCoreError as exc:
            raise aws_error("taking the lease", exc) from None
        self.name = name
        return True

    def _confirm(self, number: int) -> bool:
        """After winning `number`: back off if another generation is live; else clean up lapsed ones."""
        try:
            gens = self.generations()
            rivals = [g for g in gens if not self._mine(g) and not self._lapsed(g)]
            if rivals:
                self._delete_ours()
                time.sleep(_POLL_FLOOR + secrets.randbelow(500) / 1000)  # jitter: two backers-off do not collide
                return False
            for gen in gens:
                if not self._mine(gen):
                    self._delete_if(gen.name, gen.value)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise aws_error("taking the lease", exc) from None
        return True

    def _delete_if(self, name: str, value: str) -> None:
        """Delete `name` if it still holds `value` (a lapsed generation; another apply may be cleaning too)."""
        with absent_ok("ssm"):
            if self.ssm.get_parameter(Name=name)["Parameter"]["Value"] == value:
                self.ssm.delete_parameter(Name=name)

    def _delete_ours(self) -> bool:
        if self.name is None:
            return False
        name, self.name = self.name, None
        try:
            if self.ssm.get_parameter(Name=name)["Parameter"]["Value"] != self.body:
                return False  # not ours any more: never delete another apply's lease
            self.ssm.delete_parameter(Name=name)
            return True
        except botocore.exceptions.ClientError as exc:
            if is_absent(exc, "ssm"):
                return False
            raise

    # -- holding --------------------------------------------------------------------

    def _heartbeat(self) -> None:
        interval = self.lifetime / 6
        while not self._stop.wait(interval):
            try:
                self.renew()
            except LockError as exc:
                self._lose(str(exc))
                return
            if time.monotonic() - self._renewed > self.lifetime:
                self._lose("the lease was not renewed for a whole lifetime")
                return

    def overdue(self) -> bool:
        """True once a whole lifetime passed since our last successful renewal (a renewal may be hanging)."""
        return self.name is not None and time.monotonic() - self._renewed > self.lifetime

    def _lose(self, why: str) -> None:
        self.lost_reason = why
        self.lost.set()
        self.info(f"error: lost the stack lock ({why}); no new action is started")

    def renew(self) -> None:
        """Overwrite our generation, after checking it is still ours and no later generation exists."""
        name = self.name
        if name is None:
            return
        try:
            gens = self.generations()
            ours = [g for g in gens if g.name == name]
            if not ours or not self._mine(ours[0]):
                raise LockError(f"the lease {name} is no longer ours (another apply may be running); check with "
                                "`reconcile unlock`, then re-run")
            later = [g for g in gens if g.number > ours[0].number]
            if later:
                raise LockError(f"another apply took the lease over ({later[-1].name}, {later[-1].owner}); wait for "
                                "it, then re-run")
            self.ssm.put_parameter(Name=name, Value=self.body, Type="String", Overwrite=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise aws_error("renewing the lease", exc) from None
        self._renewed = time.monotonic()

    def release(self) -> None:
        """Stop renewing and delete our generation if it still carries our token."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.lifetime)
        try:
            self._delete_ours()
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise aws_error("releasing the lease", exc) from None


def holders(ssm: Any, stack: str) -> list[Generation]:
    """The generations present now (for `reconcile unlock`)."""
    return Lease(ssm, stack).generations()


def remove_all(ssm: Any, stack: str) -> int:
    """Delete every generation of the stack's lease (`reconcile unlock --force`); returns how many."""
    removed = 0
    for gen in holders(ssm, stack):
        with absent_ok("ssm"):  # gone meanwhile: another unlock, or its holder released it
            ssm.delete_parameter(Name=gen.name)
            removed += 1
    return removed


class LeaseHook:
    """`plan_run`'s `before_read` for apply and destroy: takes the lease with its own writable clients.

    The run's own clients stay read-only while planning; the lease needs writes
    (PutParameter, DeleteParameter) on the same endpoint, profile, region and identity
    (the stack's assumed role, shared, not assumed a second time).
    """

    def __init__(self, timeout: float, info: Callable[[str], None] = lambda _: None) -> None:
        self.timeout = timeout
        self.info = info
        self.lease: Lease | None = None

    def __call__(self, ctx: Any) -> None:
        clients = ctx.clients.writable()
        lease = Lease(clients.client("ssm"), ctx.stack, info=self.info)
        lease.acquire(self.timeout)
        self.lease = lease

    def stopping(self) -> str | None:
        """Why no new action may start, if the lease was lost."""
        if self.lease is not None and self.lease.lost.is_set():
            return f"lost the stack lock ({self.lease.lost_reason})"
        if self.lease is not None and self.lease.overdue():
            # checked here too: a renewal blocked in a slow call must not let actions start past the lifetime
            return "lost the stack lock (not renewed for a whole lifetime)"
        return None

    def release(self) -> None:
        if self.lease is not None:
            lease, self.lease = self.lease, None
            lease.release()
