"""Client-side pacing of EC2 calls at AWS's documented request token buckets, one bucket per action.

Source: "Request throttling for the Amazon EC2 API", section "Request token bucket
sizes and refill rates" (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html).
AWS meters each API action separately, per account and Region, with a token bucket:
a request takes a token, a bucket of `capacity` tokens refills at `rate` per second.
The categories, as (bucket maximum capacity, refill rate per second):

- non-mutating (`Describe*`, `List*`, `Search*`, `Get*`): 100, 20;
- unfiltered and unpaginated non-mutating (`DescribeInstances`, `DescribeNetworkInterfaces`,
  `DescribeSecurityGroups`, ... without a filter or pagination): 50, 10;
- mutating (every other write): 50, 5;
- resource-intensive (`AuthorizeSecurityGroupIngress`, `RevokeSecurityGroupIngress`,
  `CreateKeyPair`, the VPC peering writes, ...): 50, 5;
- "uncategorized" actions with buckets of their own, of which this tool calls
  `CreateVpcEndpoint` and `DeleteVpcEndpoints` (4, 0.3), `CreateNatGateway`,
  `DeleteNatGateway`, `AssociateNatGatewayAddress`, `DisassociateNatGatewayAddress` (10, 1),
  `CreateTags` and `DeleteTags` (100, 10), `CreateNetworkInterface`, `DeleteNetworkInterface`,
  `ModifyNetworkInterfaceAttribute` (100, 5).

Why pace on the client at all, when botocore retries throttled calls: a burst of
endpoint creates (one or more per VPC, in parallel) would otherwise spend AWS's four
`CreateVpcEndpoint` tokens at once and then fail and back off in a storm; a bucket that
mirrors AWS's keeps them at the rate AWS accepts, and the retries (botocore's, see
`engine/clients.py`) absorb only what the client cannot see: the same account's other
callers draining the same buckets. Only actions whose bucket is small enough for one
apply to reach it are paced by the write paths (`pace(action)`); the table keys every
action so that a new call site is one line.

Configuration (`RECONCILER_EC2_PACING`, read once): unset or `documented` uses the
table; `off` paces nothing (an emulator with no limits, or an account whose limits
AWS raised far enough); otherwise a comma list of overrides `Action=capacity/rate` or
`category=capacity/rate` (e.g. `CreateVpcEndpoint=20/2,mutating=100/10` for raised
limits), on top of the table. A bad value is a clear error at the first paced call.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reconciler.errors import UsageError
from reconciler.kinds.base import Context
from reconciler.pacing import TokenBucket  # the one bucket; this module holds EC2's table of them


@dataclass(frozen=True)
class Limit:
    """One documented token bucket: `capacity` tokens, refilled at `rate` per second."""

    capacity: float
    rate: float


# The categories of the page's first table.
CATEGORIES: Mapping[str, Limit] = {
    "non-mutating": Limit(100, 20),
    "unfiltered": Limit(50, 10),
    "mutating": Limit(50, 5),
    "resource-intensive": Limit(50, 5),
}

# The actions named in the page's tables that this tool calls (the resource-intensive ones and
# the "uncategorized" ones with buckets of their own).
ACTIONS: Mapping[str, Limit] = {
    "AuthorizeSecurityGroupIngress": CATEGORIES["resource-intensive"],
    "RevokeSecurityGroupIngress": CATEGORIES["resource-intensive"],
    "CreateVpcEndpoint": Limit(4, 0.3),
    "DeleteVpcEndpoints": Limit(4, 0.3),
    "CreateNatGateway": Limit(10, 1),
    "DeleteNatGateway": Limit(10, 1),
    "AssociateNatGatewayAddress": Limit(10, 1),
    "DisassociateNatGatewayAddress": Limit(10, 1),
    "CreateTags": Limit(100, 10),
    "DeleteTags": Limit(100, 10),
    "CreateNetworkInterface": Limit(100, 5),
    "DeleteNetworkInterface": Limit(100, 5),
    "ModifyNetworkInterfaceAttribute": Limit(100, 5),
}

# Non-mutating actions that use the smaller bucket when called without a filter or pagination.
UNFILTERED = frozenset({"DescribeInstances", "DescribeInstanceStatus", "DescribeNetworkInterfaces",
                        "DescribeSecurityGroups", "DescribeSnapshots", "DescribeSpotInstanceRequests",
                        "DescribeVolumes"})

ENV = "RECONCILER_EC2_PACING"


def category(action: str, filtered: bool = True) -> str:
    """The page's category of an action that has no bucket of its own."""
    if action.startswith(("Describe", "List", "Search", "Get")):
        return "unfiltered" if action in UNFILTERED and not filtered else "non-mutating"
    return "mutating"


def parse_overrides(text: str) -> dict[str, Limit] | None:
    """`RECONCILER_EC2_PACING`'s value: None for "off", else the overrides (empty for "documented")."""
    text = text.strip()
    if text.lower() == "off":
        return None
    if text.lower() in ("", "documented"):
        return {}
    overrides: dict[str, Limit] = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        capacity, slash, rate = value.partition("/")
        try:
            limit = Limit(float(capacity), float(rate))
        except ValueError:
            limit = Limit(0, 0)
        if not (sep and slash and name.strip()) or limit.capacity < 1 or limit.rate <= 0:
            raise UsageError(f"{ENV}: {item.strip()!r} is not Action=capacity/rate or category=capacity/rate "
                              "(capacity >= 1, rate > 0 per second); or set it to 'off' or 'documented'")
        overrides[name.strip()] = limit
    return overrides


def limit_for(action: str, overrides: Mapping[str, Limit] | None = None, filtered: bool = True) -> Limit:
    """The bucket of `action`: an override by action, the action's own, an override by category, the category's."""
    overrides = overrides or {}
    if action in overrides:
        return overrides[action]
    if action in ACTIONS:
        return ACTIONS[action]
    name = category(action, filtered)
    return overrides.get(name, CATEGORIES[name])


class Pacer:
    """One `TokenBucket` per EC2 action, made on first use from `limit_for`; `overrides=None` paces nothing."""

    def __init__(self, overrides: Mapping[str, Limit] | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.overrides = overrides
        self._clock, self._sleep = clock, sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, action: str) -> TokenBucket | None:
        if self.overrides is None:
            return None
        with self._lock:
            if action not in self._buckets:
                limit = limit_for(action, self.overrides)
                self._buckets[action] = TokenBucket(limit.capacity, limit.rate, self._clock, self._sleep)
            return self._buckets[action]

    def take(self, action: str) -> float:
        """Wait for a token of `action`'s bucket; returns the seconds waited (0 when pacing is off)."""
        bucket = self.bucket(action)
        return 0.0 if bucket is None else bucket.take()


_PACERS: dict[tuple[str, str], Pacer] = {}
_PACER_LOCK = threading.Lock()


def pacer(account: str, region: str) -> Pacer:
    """The pacer of one account and Region, made once: AWS meters each account and Region on its own, so the
    stacks of a fleet run (one account each) never wait on each other's buckets."""
    with _PACER_LOCK:
        if (account, region) not in _PACERS:
            _PACERS[(account, region)] = Pacer(parse_overrides(os.environ.get(ENV, "")))
        return _PACERS[(account, region)]


def pace(ctx: Context, action: str) -> float:
    """Call just before the EC2 `action` (its API name, e.g. "CreateVpcEndpoint"); returns the seconds waited."""
    return pacer(ctx.account, ctx.region).take(action)
