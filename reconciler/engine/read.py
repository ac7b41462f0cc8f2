"""Read the live account: every kind's batched read, concurrently."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from reconciler.error_text import aws_exceptions, describe_error
from reconciler.errors import AwsError, ReconcilerError
from reconciler.kinds.base import Context, Kind
from reconciler.manifest.model import DesiredResource
from reconciler.plan.model import LiveResource


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
    with ThreadPoolExecutor(max_workers=min(8, len(names) or 1), thread_name_prefix="read") as pool:
        futures = {name: pool.submit(kinds[name].read, ctx, by_kind.get(name, [])) for name in names}
        for name in names:
            try:
                result = futures[name].result()
            except ReconcilerError:
                raise
            except aws_exceptions() as exc:
                # built from the error code and message only: never a response body
                raise AwsError(f"reading {name} failed: {describe_error(exc)}; check the credentials' permissions, "
                               "then re-run") from None
            except (KeyError, TypeError, AttributeError) as exc:
                # an answer that parsed but lacks what the API promises: fail, never read it as "absent"
                raise AwsError(f"reading {name} failed: AWS's answer lacked an expected field "
                               f"({describe_error(exc)}); nothing was planned; re-run, and report it if it "
                               "persists") from None
            for address, resource in result.resources.items():
                if address in live:
                    raise AwsError(f"two live resources claim address {address} "
                                   f"({live[address].id} and {resource.id}); remove the extra one by hand")
                live[address] = resource
            not_checked.update(result.not_checked)
    for address, resource in live.items():
        ctx.remember(address, resource.id)
    return live, not_checked
