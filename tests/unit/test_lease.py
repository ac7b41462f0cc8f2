"""The lease's pure rules: expiry by AWS's clock, a holder's promised lifetime, unreadable bodies."""

from __future__ import annotations

import json

import pytest

from reconciler.engine.lock import DEFAULT_LIFETIME, Generation, lapsed_by_aws_clock, lifetime_seconds


def gen(value: str, age: float | None = 5.0) -> Generation:
    return Generation(1, "/reconciler/locks/s/1", value, 1, age)


def test_expiry_is_judged_by_aws_timestamps_only() -> None:
    assert not lapsed_by_aws_clock(None, 60)  # no AWS time known: never lapsed by this rule
    assert not lapsed_by_aws_clock(59.0, 60)
    assert not lapsed_by_aws_clock(60.0, 60)
    assert lapsed_by_aws_clock(61.0, 60)


def test_the_holders_promised_lifetime_is_used_and_an_unreadable_body_gets_the_default() -> None:
    assert gen(json.dumps({"owner": "a", "token": "t", "lifetime": 3})).lifetime == 3
    for unreadable in ("someone else", "[1]", json.dumps({"lifetime": -1}), json.dumps({"lifetime": "x"})):
        assert gen(unreadable).lifetime == DEFAULT_LIFETIME
        assert gen(unreadable).owner == "unknown (unreadable lease)"


def test_lifetime_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    mp = monkeypatch
    mp.delenv("RECONCILER_LEASE_SECONDS", raising=False)
    assert lifetime_seconds() == DEFAULT_LIFETIME
    mp.setenv("RECONCILER_LEASE_SECONDS", "2.5")
    assert lifetime_seconds() == 2.5
    mp.setenv("RECONCILER_LEASE_SECONDS", "0.1")
    assert lifetime_seconds() == 1.0  # never below 1 s
    mp.setenv("RECONCILER_LEASE_SECONDS", "soon")
    assert lifetime_seconds() == DEFAULT_LIFETIME
