"""The per-resource reads a plan cannot batch go at once, not one round trip after another.

Each fake read below waits on a barrier that only opens when all the reads it names are under way
together: a read made after another (sequentially) leaves the barrier short and breaks it (5 s), so
every test here fails if the reads it names stop overlapping.
"""

from __future__ import annotations

import datetime
import threading
from collections import Counter
from typing import Any

import pytest

from reconciler.kinds.base import Context
from reconciler.kinds.ec2.vpc import _dns_of
from reconciler.kinds.ecr.repository import EcrRepository
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import KIND_TAG, STACK_TAG
from reconciler.pacing import both

NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)


class _Factory:
    def __init__(self, **clients: Any) -> None:
        self._clients = clients

    def client(self, service: str) -> Any:
        return self._clients[service]


def _ctx(**clients: Any) -> Context:
    return Context(clients=_Factory(**clients), stack="s", region="us-east-1", account="123456789012", now=NOW)


def test_both_runs_its_two_calls_at_once_and_returns_them_in_order() -> None:
    gate = threading.Barrier(2, timeout=5)

    def first() -> str:
        gate.wait()
        return "one"

    def second() -> int:
        gate.wait()
        return 2

    assert both(first, second) == ("one", 2)


def test_both_raises_a_failure_once_the_other_call_has_ended() -> None:
    ended = threading.Event()

    def fails() -> None:
        raise KeyError("missing")

    def slow() -> None:
        ended.wait(0.2)
        ended.set()

    with pytest.raises(KeyError):
        both(fails, slow)
    assert ended.is_set()


class _Pages:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self._pages = pages

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        return self._pages


# three repositories: `named` (in the manifest), `orphan` (ours, no longer in it), `foreign` (not ours)
_REPO_TAGS = {"named": {STACK_TAG: "s", KIND_TAG: "ecr.repository"},
              "orphan": {STACK_TAG: "s", KIND_TAG: "ecr.repository"},
              "foreign": {STACK_TAG: "other"}}


class _Ecr:

    def __init__(self) -> None:
        # the named repository's three reads and every repository's tags: all at once
        self.first_round = threading.Barrier(5, timeout=5)
        self.calls: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def _count(self, operation: str, name: str) -> None:
        with self._lock:
            self.calls[(operation, name)] += 1

    def get_paginator(self, operation: str) -> _Pages:
        assert operation == "describe_repositories"
        return _Pages([{"repositories": [
            {"repositoryName": name, "repositoryArn": f"arn:aws:ecr:us-east-1:123456789012:repository/{name}"}
            for name in _REPO_TAGS]}])

    def list_tags_for_resource(self, resourceArn: str) -> dict[str, Any]:
        name = resourceArn.rsplit("/", 1)[1]
        self._count("tags", name)
        self.first_round.wait()
        return {"tags": [{"Key": k, "Value": v} for k, v in _REPO_TAGS[name].items()]}

    def get_lifecycle_policy(self, repositoryName: str) -> dict[str, Any]:
        self._count("lifecycle", repositoryName)
        if repositoryName == "named":
            self.first_round.wait()
        return {"lifecyclePolicyText": '{"rules": []}'}

    def get_repository_policy(self, repositoryName: str) -> dict[str, Any]:
        self._count("policy", repositoryName)
        if repositoryName == "named":
            self.first_round.wait()
        return {"policyText": '{"Version": "2012-10-17", "Statement": []}'}


def test_a_named_repositorys_three_reads_go_at_once_and_an_unnamed_ones_policies_only_if_ours(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_READ_WORKERS", raising=False)  # the default 16: the barrier needs 5 at once
    ecr = _Ecr()
    desired = [DesiredResource("ecr.repository.named", "ecr.repository",
                               {"name": "named", "encryption": {"type": "AES256"}})]
    found = EcrRepository().read(_ctx(ecr=ecr), desired).resources
    assert sorted(found) == ["ecr.repository.named", "ecr.repository.orphan"]
    assert ecr.calls == Counter({("tags", "named"): 1, ("tags", "orphan"): 1, ("tags", "foreign"): 1,
                                 ("lifecycle", "named"): 1, ("policy", "named"): 1,
                                 ("lifecycle", "orphan"): 1, ("policy", "orphan"): 1})


class _Ec2:
    def __init__(self, vpcs: int) -> None:
        self.gate = threading.Barrier(2 * vpcs, timeout=5)  # both attributes of every VPC, together

    def describe_vpc_attribute(self, VpcId: str, Attribute: str) -> dict[str, Any]:
        self.gate.wait()
        key = Attribute[0].upper() + Attribute[1:]
        return {key: {"Value": Attribute == "enableDnsSupport" or VpcId == "vpc-2"}}


def test_every_vpcs_two_dns_attributes_are_read_at_once_and_kept_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_READ_WORKERS", raising=False)  # the default 16: the barrier needs 6 at once
    ctx = _ctx(ec2=_Ec2(3))
    assert _dns_of(ctx, ["vpc-1", "vpc-2", "vpc-3"]) == [
        {"hostnames": False, "support": True}, {"hostnames": True, "support": True},
        {"hostnames": False, "support": True}]


class _Waiting:
    """A client whose paginated reads each wait at `gate`, then return one empty page of `key`."""

    def __init__(self, gate: threading.Barrier, **keys: str) -> None:
        self._gate, self._keys = gate, keys

    def get_paginator(self, operation: str) -> Any:
        gate, key = self._gate, self._keys[operation]

        class Pages:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                gate.wait()
                return [{key: []}]

        return Pages()


def test_the_key_stores_and_the_users_keys_are_read_at_the_same_time() -> None:
    from reconciler.kinds.iam.access_key import AccessKeys

    gate = threading.Barrier(3, timeout=5)  # IAM's users, Secrets Manager's and SSM's listings, together
    ctx = _ctx(iam=_Waiting(gate, get_account_authorization_details="UserDetailList"),
               secretsmanager=_Waiting(gate, list_secrets="SecretList"),
               ssm=_Waiting(gate, describe_parameters="Parameters"))
    assert AccessKeys().read(ctx, []).resources == {}
