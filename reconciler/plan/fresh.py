"""Stale-plan comparison for `apply --plan`: is the reviewed plan still exactly what apply would do? Pure.

Why here and not in the CLI: it is a rule about plans, testable on literal data; the CLI
only reads the file (bounded, schema-checked) and renders the current plan to the same
JSON shape, so both sides are compared as the reviewer saw them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.errors import StalePlanError, UsageError


def check_fresh(reviewed: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Raise unless `current` (the plan JSON of a fresh read) is the `reviewed` plan JSON.

    A plan for another stack, region or account is a usage error (a new plan would not help);
    a plan whose manifest, account or changes moved is stale (StalePlanError, exit 4), naming
    what moved.
    """
    for key in ("stack", "region"):
        if reviewed[key] != current[key]:
            raise UsageError(f"the plan file is for {key} {reviewed[key]!r}, but the manifest says {current[key]!r}; "
                         "give the manifest it was made from, or plan again")
    # a plan reviewed for one account must never be applied to another, even when both look alike
    # (empty accounts give identical plans); not stale (4): a new plan would target the wrong account
    if reviewed["account"] != current["account"]:
        raise UsageError(f"the plan file is for account {reviewed['account']}, but the credentials are for "
                         f"account {current['account']}; use credentials for {reviewed['account']}, or plan again")
    # the file says how it was planned and the caller planned the same way; a mismatch is a bug or an edit
    for key, what in (("destroy", "destroy plan"), ("targets", "--target list"), ("replace", "--replace list")):
        if reviewed.get(key) != current.get(key):
            raise UsageError(f"the plan file's {what} ({reviewed.get(key)!r}) differs from this run's "
                             f"({current.get(key)!r}); apply the file as it was written, or plan again")
    reasons = []
    if reviewed["manifest_sha256"] != current["manifest_sha256"]:
        reasons.append("the manifest (or a policy file it references) changed")
    if reviewed["live_sha256"] != current["live_sha256"]:
        old, new = reviewed.get("fingerprints", {}), current["fingerprints"]
        moved = sorted(a for a in set(old) | set(new) if old.get(a) != new.get(a))
        reasons.append("the account changed at: " + (", ".join(moved) or "(unknown)"))
    # through JSON, so tuples and lists (and any other value the file cannot hold) compare alike
    if not reasons and reviewed["changes"] != json.loads(json.dumps(current["changes"])):
        reasons.append("the plan would differ from the reviewed one")
    if reasons:
        raise StalePlanError("stale plan: " + "; ".join(reasons) + ". Nothing was changed; make a new plan.")
