"""Read the live account: every kind's batched read, concurrently."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from reconciler.error_text import aws_exceptions, describe_error
from reconciler.errors import AwsError, ReconcilerError
from reconciler.kinds.base import Context, Kind, ReadsBeforeDeleting
from reconciler.manifest.model import DesiredResource
from reconciler.pacing import fan_out, read_pool
from reconciler.plan.model import Action, LiveResource, Plan


def read_live(ctx: Context, desired: Sequence[DesiredResource], kinds: Mapping[str, Kind],
              ) -> tuple[dict[str, LiveResource], dict[str, str]]:
    """Run every kind's read (all kinds, so orphans of any kind are found).

    Fails as a whole if any read fails: a partial picture must never plan deletes.
    Records the ids found in `ctx.ids`.
    """
    by_kind: dict[str, list[DesiredResource]] = defaultdict(list)
    for item in desired:
        by_kind[item.kind].append(item)
    live: dict[str, LiveResource] = {}
    not_checked: dict[str, str] = {}
    names = sorted(kinds)
    # one thread per kind (15 today): a kind waiting on its per-resource reads never holds up another's
    # batched read; the calls themselves are paced per service (engine.clients)
    with read_pool(max(1, len(names)), "read") as pool:
        futures = {name: pool.submit(kinds[name].read, ctx, by_kind.get(name, [])) for name in names}
        for name in names:
            result = _checked(name, futures[name].result)
            for address, resource in result.resources.items():
                if address in live:
                    raise AwsError(f"two live resources claim address {address} "
                                   f"({live[address].id} and {resource.id}); remove the extra one by hand")
                live[address] = resource
            not_checked.update(result.not_checked)
    for address, resource in live.items():
        ctx.remember(address, resource.id)
    return live, not_checked


T = TypeVar("T")


def _checked(what: str, call: Callable[[], T]) -> T:
    """`call()`, with an AWS failure or a malformed answer turned into one AwsError naming `what`."""
    try:
        return call()
    except ReconcilerError:
        raise
    except aws_exceptions() as exc:
        # built from the error code and message only: never a response body
        raise AwsError(f"reading {what} failed: {describe_error(exc)}; check the credentials' permissions, "
                       "then re-run") from None
    except (KeyError, TypeError, AttributeError) as exc:
        # an answer that parsed but lacks what the API promises: fail, never read it as "absent"
        raise AwsError(f"reading {what} failed: AWS's answer lacked an expected field "
                       f"({describe_error(exc)}); nothing was planned; re-run, and report it if it "
                       "persists") from None


GOING = frozenset({Action.DELETE, Action.REPLACE})


def going(plan: Plan, kinds: Mapping[str, Kind]) -> list[LiveResource]:
    """The live resources `plan` deletes or replaces whose kind has a read only a deletion needs. Pure."""
    return [change.live for change in plan.changes
            if change.action in GOING and change.live is not None
            and isinstance(kinds.get(change.kind), ReadsBeforeDeleting)]


def read_for_deletions(ctx: Context, plan: Plan, kinds: Mapping[str, Kind]) -> dict[str, LiveResource]:
    """The second, small read phase: for each resource `plan` deletes or replaces, its kind's
    `read_for_deletion` (ECR: does the repository hold images?), run concurrently.

    Returns the re-read resources by address (empty when the plan deletes nothing that needs it:
    a converged plan makes no call here). Fails as a whole, as `read_live` does.
    """
    todo = going(plan, kinds)

    def one(live: LiveResource) -> LiveResource:
        kind = kinds[live.kind]
        assert isinstance(kind, ReadsBeforeDeleting)
        return _checked(live.kind, lambda: kind.read_for_deletion(ctx, live))

    return {live.address: live for live in fan_out(one, todo, name="read-deletions")}
