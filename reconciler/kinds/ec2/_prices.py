"""Monthly cost notes for the network kinds that cost money by the hour (NAT, public IPv4, endpoints).

The prices are the dated table shipped with the package (`reconciler/data/prices.json`),
never fetched: a plan must not depend on the network for its notes, and the note says
how old its prices are.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from reconciler.plan.model import Note, cost

HOURS_PER_MONTH = 730


@functools.cache
def prices() -> dict[str, Any]:
    """The dated price table shipped with the package (`reconciler/data/prices.json`)."""
    text = resources.files("reconciler").joinpath("data/prices.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def cost_note(region: str, item: str, what: str, units: float = 1.0, action: str = "create") -> Note:
    """`cost: ~$45/month (NAT gateway, ap-northeast-1)`; item is a key of the region's table, or
    `instance:<type>`. The note carries the number (negative for a delete: it saves that) and the
    table's date, which the plan names once beside its total instead of in every note."""
    table = prices()
    regional = table["regions"].get(region, {})
    if item.startswith("instance:"):
        hourly = regional.get("instances", {}).get(item.split(":", 1)[1])
    else:
        hourly = regional.get(item)
    prefix = "saves " if action == "delete" else ""
    if hourly is None:
        return cost(f"{prefix}unknown ({what}: no {region} price in the table as of {table['as_of']})")
    monthly = float(hourly) * HOURS_PER_MONTH * units
    return cost(f"{prefix}~${monthly:,.0f}/month ({what}, {region})",
                monthly_usd=-monthly if action == "delete" else monthly, prices_as_of=str(table["as_of"]))
