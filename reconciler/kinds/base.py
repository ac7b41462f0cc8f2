"""The kind contract and the context kinds run in.

A kind is one AWS resource type. It reads every resource of its type owned by the
stack in as few calls as AWS allows (`read`), plans (the methods of
`plan.kind.KindPlanner`, which `Kind` implements with defaults: compare by meaning,
no notes, never blocked, the generic drift rule, no findings), and converges one
address at a time (`create` / `update` / `delete`, idempotent: look up by ownership
before creating, tags set in the create call).

Invariants every kind keeps:
- `read` is complete or raises: an unfinished read never becomes a delete;
- `read` makes only read-only calls (the engine's guard enforces it in plan/drift);
- `create` returns the new resource's id and leaves it usable (waited for);
- no method ever logs or raises a secret value.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from reconciler.manifest.model import DesiredResource
from reconciler.plan.diff import diff_spec
from reconciler.plan.drift import classify_generic, describe_generic
from reconciler.plan.model import Action, AttrChange, Change, HygieneFinding, LiveResource, Note, Origin, ReplaceOrder

T = TypeVar("T")


class ClientFactory(Protocol):
    def client(self, service: str) -> Any: ...


@dataclass(frozen=True)
class Phase:
    """A kind's action entered a named phase (`building`, `pushing`, `retagging`): shown beside the address."""

    text: str


@dataclass(frozen=True)
class Step:
    """One step of a sequence the kind runs (a Docker build's `Step 3/7 : RUN ...`); `total` 0 if unknown."""

    number: int
    total: int
    text: str


@dataclass(frozen=True)
class Transfer:
    """Bytes of one part (a layer) of an upload: `current` of `total` (0: unknown yet); `done` once it is
    in place (pushed, or already there: then `existed`). Sent often: a reporter keeps the latest per part."""

    part: str
    current: int
    total: int
    done: bool = False
    existed: bool = False


ProgressEvent = Phase | Step | Transfer
"""Structured progress of one address's action (`Context.progress`): the reporter, not the kind,
decides how it looks (a live bar on a terminal, a line per finished layer in a log). Never a secret."""


@dataclass
class Context:
    """Everything a kind needs to talk to the account; built by the engine.

    `ids` maps addresses to AWS ids as they become known (from the read, then from
    each create), so a kind resolves a reference like `vpc.main` to `vpc-0abc`.
    `memo` shares one batched read between kinds (subnets and route tables both
    need the stack's VPC ids, but DescribeVpcs runs once).
    `purpose` is the command the read serves: "plan" (plan, apply, destroy, output) or
    "drift". A read that only drift's report needs (an access key's last use) is made
    for "drift" only, so a plan stays at the API's bound.
    `log` takes plain messages for the operator (a retry, a rule left for the next
    apply); `progress(address, event)` takes structured progress of the action at
    `address` (build steps, bytes pushed). Both may be called from any apply thread.
    """

    clients: ClientFactory
    stack: str
    region: str
    account: str
    now: datetime.datetime
    base_dir: Path = Path(".")
    registry: str | None = None
    purpose: str = "plan"
    log: Callable[[str], None] = lambda message: None
    progress: Callable[[str, ProgressEvent], None] = lambda address, event: None
    ids: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    _memo: dict[str, Any] = field(default_factory=dict)
    _memo_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str) -> Any:
        return self.clients.client(service)

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """Compute once per context, even when several kinds ask at the same time."""
        with self._lock:
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                self._memo[key] = compute()
            return self._memo[key]  # type: ignore[no-any-return]

    def resolve(self, address: str) -> str:
        """The AWS id of a resource the plan already created or read."""
        with self._lock:
            if address not in self.ids:
                raise KeyError(f"{address} has no id yet: it was neither read nor created")
            return self.ids[address]

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        """The ARN of `resource` of `service` in this account, in the region's partition (aws-cn, ...),
        for the kinds whose API does not return one (EC2's describe calls mostly do not)."""
        from reconciler.manifest.aws_names import region_partitions

        partition = region_partitions().get(self.region, "aws")
        return f"arn:{partition}:{service}:{self.region if regional else ''}:{self.account}:{resource}"

    def remember(self, address: str, ident: str) -> None:
        with self._lock:
            self.ids[address] = ident


@dataclass(frozen=True)
class ReadResult:
    """What one kind found; `not_checked` says which addresses it could not judge, and why."""

    resources: Mapping[str, LiveResource] = field(default_factory=dict)
    not_checked: Mapping[str, str] = field(default_factory=dict)


class Kind:
    """Base class: the planning contract with defaults; subclasses implement read/create/update/delete
    and override the planning methods they need.

    A replacement is never a method of its own: apply runs it as this kind's `delete` and
    `create`, two vertices of the graph, in `replace_order`.
    """

    name: ClassVar[str] = ""
    replace_on: ClassVar[frozenset[str]] = frozenset()
    replace_order: ClassVar[ReplaceOrder] = ReplaceOrder.DELETE_FIRST
    # a deletion of this kind can free what a creation of it needs (a CIDR, a group name in a VPC,
    # a quota's slot), so apply runs the kind's deletions before its creations; False where the
    # identity is the address itself (IAM and ECR names): nothing is freed, and the old one should
    # outlive the move of what still uses it (a user's membership moving to a renamed group)
    delete_frees: ClassVar[bool] = True

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        raise NotImplementedError

    # -- planning (plan.kind.KindPlanner); pure ------------------------------

    def diff(self, desired: DesiredResource, live: LiveResource) -> Sequence[AttrChange]:
        return diff_spec(desired.spec, live.attrs, self.replace_on)

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> Sequence[Note]:
        return []

    def blocked(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> str | None:
        """Why apply must refuse this change, or None; a plan with any blocked change applies nothing."""
        return None

    def classify(self, change: Change, attr: AttrChange) -> Origin:
        return classify_generic(change, attr)

    def describe_added(self, change: Change, attr: AttrChange) -> Sequence[str]:
        return describe_generic(change, attr)

    def findings(self, change: Change) -> Sequence[HygieneFinding]:
        return []

    # -- apply ------------------------------------------------------------------

    def create(self, ctx: Context, change: Change) -> str:
        raise NotImplementedError

    def update(self, ctx: Context, change: Change) -> None:
        raise NotImplementedError

    def delete(self, ctx: Context, change: Change) -> None:
        raise NotImplementedError


@runtime_checkable
class ReadsBeforeDeleting(Protocol):
    """A kind with a read that only a deletion or replacement needs (ECR: does the repository hold
    images, which blocks deleting it). `read` leaves it out; the engine calls this once the plan
    says which resources go (`engine.read.read_for_deletions`), and plans again with the answer.
    Returns `live` with the extra attributes; read-only, like `read`."""

    def read_for_deletion(self, ctx: Context, live: LiveResource) -> LiveResource: ...


@runtime_checkable
class ReplacesInSteps(Protocol):
    """A kind whose replacement is its own sequence of steps, not a delete and a create.

    Access-key rotation is one: the new store and key come first and the old key is
    retired (kept, inactive), never deleted on the spot. Apply runs such a replacement
    as one vertex; every other kind's replacement is two (see `Kind.replace_order`).
    """

    def replace(self, ctx: Context, change: Change) -> str: ...
