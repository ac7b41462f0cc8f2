"""EC2 pacing: AWS's documented buckets per action, the override variable, and one bucket per action."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import UsageError
from reconciler.kinds.ec2 import _pacing
from reconciler.kinds.ec2._pacing import Limit, Pacer, limit_for, parse_overrides

EC2_KINDS = Path(__file__).resolve().parents[2] / "reconciler" / "kinds" / "ec2"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_table_carries_the_documented_numbers() -> None:
    # "Request token bucket sizes and refill rates" (docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html)
    assert limit_for("DescribeVpcs") == Limit(100, 20)
    assert limit_for("DescribeInstances", filtered=False) == Limit(50, 10)
    assert limit_for("DescribeInstances") == Limit(100, 20)
    assert limit_for("CreateSubnet") == limit_for("ModifyVpcEndpoint") == Limit(50, 5)
    assert limit_for("AuthorizeSecurityGroupIngress") == Limit(50, 5)
    assert limit_for("CreateVpcEndpoint") == limit_for("DeleteVpcEndpoints") == Limit(4, 0.3)
    assert limit_for("CreateNatGateway") == limit_for("DeleteNatGateway") == Limit(10, 1)
    assert limit_for("CreateTags") == Limit(100, 10)


def test_overrides_by_action_win_over_the_table_and_by_category_over_the_category() -> None:
    overrides = parse_overrides("CreateVpcEndpoint=20/2, mutating=100/10")
    assert overrides == {"CreateVpcEndpoint": Limit(20, 2), "mutating": Limit(100, 10)}
    assert limit_for("CreateVpcEndpoint", overrides) == Limit(20, 2)
    assert limit_for("CreateSubnet", overrides) == Limit(100, 10)
    # an action with a bucket of its own keeps it when only its category is overridden
    assert limit_for("DeleteVpcEndpoints", overrides) == Limit(4, 0.3)
    assert parse_overrides("") == {} == parse_overrides("documented")
    assert parse_overrides(" OFF ") is None


@pytest.mark.parametrize("bad", ["CreateVpcEndpoint", "CreateVpcEndpoint=4", "CreateVpcEndpoint=a/b",
                                 "CreateVpcEndpoint=0/1", "CreateVpcEndpoint=4/0", "=4/1", "fast"])
def test_a_bad_override_is_a_usage_error_that_names_the_variable(bad: str) -> None:
    with pytest.raises(UsageError, match="RECONCILER_EC2_PACING") as caught:
        parse_overrides(bad)
    assert caught.value.exit_code == 3


def test_each_action_has_its_own_bucket() -> None:
    fake = FakeTime()
    pacer = Pacer({}, clock=fake.clock, sleep=fake.sleep)
    assert [pacer.take("CreateVpcEndpoint") for _ in range(4)] == [0.0] * 4
    # deletes and modifies are metered apart from creates: a burst of creates does not hold them up
    assert pacer.take("DeleteVpcEndpoints") == 0.0 and pacer.take("ModifyVpcEndpoint") == 0.0
    waited = pacer.take("CreateVpcEndpoint")
    assert abs(waited - 1 / 0.3) < 1e-9
    assert [pacer.take("CreateSubnet") for _ in range(50)] == [0.0] * 50
    assert abs(pacer.take("CreateSubnet") - 1 / 5) < 1e-9


def test_pacing_off_never_waits() -> None:
    fake = FakeTime()
    pacer = Pacer(None, clock=fake.clock, sleep=fake.sleep)
    assert sum(pacer.take("CreateVpcEndpoint") for _ in range(100)) == 0.0 and fake.slept == []


def _where(account: str, region: str = "eu-west-1") -> Any:
    return types.SimpleNamespace(account=account, region=region)  # what pace() reads of a Context


def test_the_process_pacer_reads_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pacing, "_PACERS", {})
    monkeypatch.setenv("RECONCILER_EC2_PACING", "off")
    assert _pacing.pacer("1", "r").overrides is None and _pacing.pace(_where("1", "r"), "CreateVpcEndpoint") == 0.0
    monkeypatch.setattr(_pacing, "_PACERS", {})
    monkeypatch.setenv("RECONCILER_EC2_PACING", "CreateVpcEndpoint=9/3")
    bucket = _pacing.pacer("1", "r").bucket("CreateVpcEndpoint")
    assert bucket is not None and (bucket.capacity, bucket.rate) == (9, 3)


def test_each_account_and_region_has_its_own_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS meters per account and Region: a fleet's stacks must not wait on each other's endpoint writes."""
    monkeypatch.setattr(_pacing, "_PACERS", {})
    monkeypatch.setenv("RECONCILER_EC2_PACING", "CreateVpcEndpoint=1/0.001")
    assert _pacing.pace(_where("111111111111"), "CreateVpcEndpoint") == 0.0
    assert _pacing.pace(_where("222222222222"), "CreateVpcEndpoint") == 0.0  # not the first account's token
    assert _pacing.pace(_where("111111111111", "us-east-1"), "CreateVpcEndpoint") == 0.0
    assert _pacing.pacer("111111111111", "eu-west-1") is _pacing.pacer("111111111111", "eu-west-1")


def test_apply_refuses_a_bad_variable_before_any_write(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.engine import preflight

    monkeypatch.setattr(_pacing, "_PACERS", {})
    monkeypatch.setenv("RECONCILER_EC2_PACING", "CreateVpcEndpoint=lots")
    with pytest.raises(UsageError, match="CreateVpcEndpoint=lots"):
        preflight.pacing(_where("1"))
    monkeypatch.setenv("RECONCILER_EC2_PACING", "documented")
    preflight.pacing(_where("2"))


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


def test_every_paced_call_site_names_the_action_it_makes() -> None:
    sites = 0
    for path in sorted(EC2_KINDS.glob("*.py")):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            found = re.search(r'\bpace\(ctx, "(\w+)"\)', line)
            if not found:
                continue
            sites += 1
            action = found.group(1)
            following = "\n".join(lines[number + 1:number + 4])
            assert f".{_snake(action)}(" in following, f"{path.name}:{number + 1}: pace({action!r}) before another call"
            assert action in _pacing.ACTIONS or _pacing.category(action) in _pacing.CATEGORIES
    assert sites >= 5
