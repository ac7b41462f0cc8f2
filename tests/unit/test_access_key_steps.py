"""Key rotation decisions on literal data: never more than two keys, never a silent delete."""

from __future__ import annotations

from typing import Any

from reconciler.kinds.iam.access_key import key_steps

SPEC = {"user": "u", "count": 1, "rotate_after_days": 90, "grace_days": 7, "store": {"ssm": "/k"}}


def key(ident: str, age: int, role: str = "delivered", status: str = "Active", **extra: Any) -> dict[str, Any]:
    return {"id": ident, "age_days": age, "role": role, "status": status, **extra}


def ops(keys: list[dict[str, Any]], **spec: Any) -> list[tuple[str, str | None]]:
    return [(s.op, s.key) for s in key_steps({**SPEC, **spec}, {"keys": keys, "store": {"ssm": "/k"}})]


def test_fresh_user_gets_one_key() -> None:
    assert ops([]) == [("create", None)]


def test_young_key_is_left_alone() -> None:
    assert ops([key("A", 10)]) == []


def test_old_key_rotates_create_before_retire() -> None:
    assert ops([key("A", 120)]) == [("create", None), ("retire", "A")]


def test_rotation_waits_for_a_retired_key_in_grace_and_keeps_the_working_key() -> None:
    # issue 9: a retired key is never deleted inside grace_days, not even to make room;
    # and the due key stays active until its replacement exists
    steps = key_steps(SPEC, {"keys": [key("A", 120), key("B", 200, role="retired", status="Inactive",
                                                            retired_days=2)], "store": {"ssm": "/k"}})
    assert [(s.op, s.key) for s in steps] == [("wait", "B")]
    assert "in 5 day(s)" in steps[0].why


def test_rotation_proceeds_once_the_grace_has_ended() -> None:
    steps = ops([key("A", 120), key("B", 200, role="retired", status="Inactive", retired_days=7)])
    assert steps == [("delete", "B"), ("create", None), ("retire", "A")]


def test_retired_key_past_grace_is_deleted() -> None:
    assert ops([key("A", 5), key("B", 100, role="retired", status="Inactive", retired_days=8)]) == [("delete", "B")]


def test_undelivered_key_is_deleted_and_replaced() -> None:
    assert ops([key("X", 0, role="undelivered")]) == [("delete", "X"), ("create", None)]


def test_key_made_by_hand_is_retired_loudly_not_deleted() -> None:
    steps = key_steps(SPEC, {"keys": [key("A", 5), key("H", 1, role="unknown")], "store": {"ssm": "/k"}})
    assert [(s.op, s.key) for s in steps] == [("retire", "H")]
    assert "created by hand" in steps[0].why


def test_count_two_and_zero() -> None:
    assert ops([key("A", 5)], count=2) == [("create", None)]
    assert ops([key("A", 5), key("B", 6)], count=0) == [("retire", "A"), ("retire", "B")]


def test_never_more_than_two_keys() -> None:
    for keys in ([key("A", 120), key("B", 100)], [key("A", 120), key("H", 3, role="unknown")]):
        steps = key_steps({**SPEC, "count": 2}, {"keys": keys, "store": {"ssm": "/k"}})
        live = len(keys)
        for step in steps:
            live += {"create": 1, "delete": -1}.get(step.op, 0)
            assert live <= 2


def test_count_two_from_nothing_converges_in_one_apply() -> None:
    assert ops([], count=2) == [("create", None), ("create", None)]
    assert ops([key("A", 5)], count=2) == [("create", None)]
    assert ops([key("A", 5), key("X", 0, role="undelivered")], count=2) == [("delete", "X"), ("create", None)]
    assert ops([key("A", 5), key("R", 90, role="retired", status="Inactive", retired_days=30)], count=2) == [
        ("delete", "R"), ("create", None)]


def test_count_two_rotation_without_a_free_slot_retires_and_waits() -> None:
    # both slots hold active keys: the oldest due one is retired (its grace starts), the other keeps working
    steps = key_steps({**SPEC, "count": 2}, {"keys": [key("A", 120), key("B", 100)], "store": {"ssm": "/k"}})
    assert [(s.op, s.key) for s in steps] == [("wait", "A"), ("retire", "A")]
    assert "in 7 day(s)" in steps[0].why
    steps = key_steps({**SPEC, "count": 2}, {"keys": [key("A", 120), key("B", 10)], "store": {"ssm": "/k"}})
    assert [(s.op, s.key) for s in steps] == [("wait", "A"), ("retire", "A")]


def test_a_hand_made_key_is_never_deleted_to_make_room() -> None:
    steps = ops([key("A", 120), key("H", 3, role="unknown")], count=1)
    assert ("delete", "H") not in steps and ("retire", "H") in steps and ("retire", "A") not in steps


def test_unreadable_retirement_date_restarts_grace_and_is_never_deleted() -> None:
    steps = ops([key("A", 5), key("B", 100, role="retired", status="Inactive", retired_unreadable=True)])
    assert steps == [("retire", "B")]


def test_no_key_inside_grace_is_ever_deleted_and_the_last_active_key_stays() -> None:
    """Every combination of two keys: deletes only undelivered or past-grace keys; never leaves the user
    without an active delivered key when it had one and count > 0."""
    import itertools

    shapes = [key("K", age, role=role, status=status, **({"retired_days": rd} if role == "retired" else {}))
              for age in (5, 120) for role, status, rd in (
                  ("delivered", "Active", 0), ("delivered", "Inactive", 0), ("unknown", "Active", 0),
                  ("retired", "Inactive", 2), ("retired", "Inactive", 30), ("undelivered", "Active", 0))]
    for count in (0, 1, 2):
        for n in (0, 1, 2):
            for combo in itertools.product(shapes, repeat=n):
                keys = [{**k, "id": f"K{i}"} for i, k in enumerate(combo)]
                by_id = {k["id"]: k for k in keys}
                steps = key_steps({**SPEC, "count": count}, {"keys": keys, "store": {"ssm": "/k"}})
                live = len(keys)
                for step in steps:
                    live += {"create": 1, "delete": -1}.get(step.op, 0)
                    assert live <= 2, (count, keys, steps)
                    if step.op == "delete":
                        gone = by_id[str(step.key)]
                        assert gone["role"] == "undelivered" or (
                            gone["role"] == "retired" and gone["retired_days"] >= SPEC["grace_days"]), steps
                active = {k["id"] for k in keys if k["role"] == "delivered" and k["status"] == "Active"}
                retired = {s.key for s in steps if s.op in ("retire", "delete")}
                created = any(s.op == "create" for s in steps)
                if count and active:
                    assert created or active - retired, (count, keys, steps)


def test_the_store_metadata_names_the_key_it_holds() -> None:
    from reconciler.kinds.iam.access_key import _description, _version_token, held_key_id

    token = _version_token("AKIAABCDEFGHIJKLMNOP")
    assert 32 <= len(token) <= 64
    assert held_key_id(versions={"old": ["AWSPREVIOUS"], token: ["AWSCURRENT"]}) == "AKIAABCDEFGHIJKLMNOP"
    assert held_key_id(versions={token: ["AWSPREVIOUS"]}) is None  # only the current version counts
    assert held_key_id(versions={"9f0c6d1e-0000-4000-8000-000000000000": ["AWSCURRENT"]}) is None
    assert held_key_id(description=_description("u", "AKIAABCDEFGHIJKLMNOP")) == "AKIAABCDEFGHIJKLMNOP"
    assert held_key_id(description="made by hand") is None


def test_with_two_good_keys_the_one_the_store_holds_is_kept() -> None:
    steps = key_steps(SPEC, {"keys": [key("A", 0), key("B", 0)], "store": {"ssm": "/k"}, "held": "A"})
    assert [(s.op, s.key) for s in steps] == [("retire", "B")]
