"""Key rotation decisions on literal data: never more than two keys, never a silent delete."""

from __future__ import annotations

from typing import Any

from reconciler.kinds.access_key import key_steps

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


def test_rotation_with_a_retired_key_in_grace_frees_its_slot_first() -> None:
    steps = ops([key("A", 120), key("B", 200, role="retired", status="Inactive", retired_days=2)])
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
