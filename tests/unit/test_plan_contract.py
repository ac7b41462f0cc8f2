"""The one planning contract: plan/ names no kind, every kind implements it, and the small pieces
around it (accessors, protect/private, the renderer registry, the stale-plan comparison)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import StalePlanError, UsageError
from reconciler.kinds import all_kinds
from reconciler.manifest.model import DesiredResource
from reconciler.plan.fresh import check_fresh
from reconciler.plan.kind import KindPlanner
from reconciler.plan.model import Action, Change, LiveResource, Plan
from reconciler.render.json import change_to_json, plan_to_json
from reconciler.render.registry import DRIFT_RENDERERS, FORMATS, PLAN_RENDERERS

PLAN = Path(__file__).resolve().parents[2] / "reconciler" / "plan"
KIND_NAME = re.compile(r"\b(?:iam|ecr|ec2)\.")


def test_plan_names_no_kind() -> None:
    """Kind-specific rules live with their kind and reach the planner through KindPlanner."""
    found = [f"{path.name}:{number}: {line.strip()}"
             for path in sorted(PLAN.rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if KIND_NAME.search(line)]
    assert not found, "plan/ names a kind:\n" + "\n".join(found)


def test_the_checker_would_catch_a_kind_name() -> None:
    assert KIND_NAME.search('CLASSIFIERS = {"iam.access_key": f}')
    assert KIND_NAME.search('if change.kind == "ecr.image":')
    assert not KIND_NAME.search("a user's keys are part of the user")


PLANNER_METHODS = [name for name in vars(KindPlanner) if not name.startswith("_")]


def test_the_protocol_lists_the_whole_planning_contract() -> None:
    assert set(PLANNER_METHODS) == {"name", "replace_on", "replace_order", "diff", "notes", "blocked", "classify",
                                    "describe_added", "findings"}


@pytest.mark.parametrize("name", sorted(all_kinds()))
def test_every_kind_implements_the_planning_contract(name: str) -> None:
    kind = all_kinds()[name]
    assert kind.name == name
    for method in PLANNER_METHODS:
        assert hasattr(kind, method), f"{name} lacks {method}"


def test_want_and_have_say_which_side_is_missing() -> None:
    desired = DesiredResource("x.a", "x", {})
    live = LiveResource("x.a", "x", "id-1", {})
    create = Change("x.a", "x", Action.CREATE, "missing", desired=desired)
    delete = Change("x.a", "x", Action.DELETE, "not in the manifest", live=live)
    assert create.want is desired and delete.have is live
    with pytest.raises(ValueError, match=r"x\.a: a create change has no live resource"):
        create.have  # noqa: B018
    with pytest.raises(ValueError, match=r"x\.a: a delete change has no desired resource"):
        delete.want  # noqa: B018


def test_private_data_is_never_fingerprinted_nor_written_and_protect_is_a_field() -> None:
    plain = LiveResource("x.a", "x", "id-1", {"tags": {}})
    private = LiveResource("x.a", "x", "id-1", {"tags": {}}, private={"attached": ["vpc-1"]})
    assert plain.fingerprint() == private.fingerprint()  # apply-only data never makes a plan stale
    protected = LiveResource("x.a", "x", "id-1", {"tags": {}}, protect=True)
    assert protected.fingerprint() != plain.fingerprint()  # protection decides what apply may do
    change = change_to_json(Change("x.a", "x", Action.DELETE, "not in the manifest", live=private))
    assert "vpc-1" not in repr(change) and "attached" not in repr(change)


def test_one_renderer_registry_for_plans_and_drift() -> None:
    from reconciler import cli

    assert tuple(PLAN_RENDERERS) == tuple(DRIFT_RENDERERS) == FORMATS == cli.FORMATS


def _plan_json(**over: Any) -> dict[str, Any]:
    change = Change("x.a", "x", Action.CREATE, "missing", desired=DesiredResource("x.a", "x", {}))
    fields: dict[str, Any] = {"stack": "s", "region": "us-east-1", "account": "123456789012",
                              "manifest_sha256": "0" * 64, "live_sha256": "1" * 64, "changes": (change,),
                              "fingerprints": {"x.b": "2" * 64}}
    fields.update(over)
    return plan_to_json(Plan(**fields))


def test_a_fresh_plan_passes() -> None:
    check_fresh(_plan_json(), _plan_json())


@pytest.mark.parametrize(("over", "error", "words"), [
    ({"stack": "t"}, UsageError, "stack"),
    ({"region": "eu-west-1"}, UsageError, "region"),
    ({"account": "210987654321"}, UsageError, "account"),
    ({"manifest_sha256": "3" * 64}, StalePlanError, "the manifest"),
    ({"live_sha256": "4" * 64, "fingerprints": {"x.b": "5" * 64}}, StalePlanError, "the account changed at: x.b"),
    ({"changes": ()}, StalePlanError, "would differ"),
])
def test_a_moved_plan_is_refused_naming_what_moved(over: dict[str, Any], error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        check_fresh(_plan_json(), _plan_json(**over))
