"""What apply and destroy ask (render/confirm.py) and what preflight checks (engine/preflight.py)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine import preflight
from reconciler.errors import UsageError
from reconciler.plan.model import Action, Change, LiveResource, Plan
from reconciler.render.confirm import confirmation


def change(address: str, action: Action, kind: str = "iam.group", live: LiveResource | None = None) -> Change:
    return Change(address, kind, action, "test", live=live)


def plan(*changes: Change) -> Plan:
    return Plan("shop", "eu-west-1", "123456789012", "m", "l", changes)


def test_adding_asks_for_yes_and_nothing_else() -> None:
    asked = confirmation(plan(change("iam.group.a", Action.CREATE), change("iam.group.b", Action.UPDATE),
                              change("iam.group.c", Action.NOOP)), destroy=False)
    assert asked.question == "Apply these changes (2 resources) to stack shop? Only 'yes' approves"
    assert asked.approves("yes") and asked.approves(" yes\n")
    for answer in ("y", "Y", "YES", "yes please", "shop", ""):
        assert not asked.approves(answer), answer
    assert asked.refusal("y") == "only 'yes' approves" and asked.refusal("") == "no answer"


def test_deleting_or_replacing_asks_for_the_stack_name() -> None:
    asked = confirmation(plan(*(change(f"iam.group.d{i}", Action.DELETE) for i in range(3)),
                              change("iam.group.r", Action.REPLACE), change("iam.group.c", Action.CREATE)),
                         destroy=False)
    assert asked.question == "Type the stack name (shop) to confirm deleting 3 and replacing 1 resources"
    assert asked.approves("shop") and not asked.approves("yes") and not asked.approves("Shop")
    assert asked.refusal("yes") == "'yes' is not the stack name 'shop'"
    one = confirmation(plan(change("iam.group.r", Action.REPLACE)), destroy=False)
    assert one.question == "Type the stack name (shop) to confirm replacing 1 resource"


def test_every_destroy_asks_for_the_stack_name() -> None:
    asked = confirmation(plan(change("iam.group.a", Action.DELETE), change("iam.group.b", Action.DELETE)),
                         destroy=True)
    assert asked.question == "Type the stack name (shop) to confirm destroying stack shop (deleting 2 resources)"
    assert asked.expected == "shop"
    targeted = Plan("shop", "eu-west-1", "123456789012", "m", "l", (change("iam.group.a", Action.DELETE),),
                    destroy=True, targets=("iam.group.a",))
    assert confirmation(targeted, destroy=True).question == (
        "Type the stack name (shop) to confirm destroying the targeted part of stack shop (deleting 1 resource)")


@pytest.mark.parametrize(("url", "aws"), [
    ("https://api.ecr.us-east-1.amazonaws.com", True),
    ("https://api.ecr.cn-north-1.amazonaws.com.cn", True),
    ("https://ecr.us-east-1.api.aws", True),
    ("http://127.0.0.1:5000", False),
    ("http://localhost:4566", False),
    ("https://amazonaws.com.evil.example", False),
    ("https://notamazonaws.com", False),
])
def test_aws_endpoints_are_told_from_emulators(url: str, aws: bool) -> None:
    assert preflight.is_aws_endpoint(url) is aws


def image(action: Action, built: str | None = None) -> Change:
    live = None if action is Action.CREATE else LiveResource(
        "image.app:1", "ecr.image", "app:1", {"digest": "sha256:1", "built_digest": built})
    return change("image.app:1", action, "ecr.image", live)


def test_only_images_without_a_build_to_retag_count_as_builds() -> None:
    assert preflight.builds(plan(image(Action.CREATE), change("iam.group.a", Action.CREATE))) == ["image.app:1"]
    assert preflight.builds(plan(image(Action.UPDATE))) == ["image.app:1"]
    assert preflight.builds(plan(image(Action.UPDATE, built="sha256:2"))) == []  # a retag: no Docker, no registry
    assert preflight.builds(plan(image(Action.NOOP))) == []


class _Ctx:
    """The two things preflight reads from a context: the registry flag and the ECR client's endpoint."""

    def __init__(self, registry: str | None, endpoint: str) -> None:
        self.registry, self.account, self.region = registry, "123456789012", "eu-west-1"
        self.endpoint = endpoint

    def client(self, service: str) -> Any:
        assert service == "ecr"
        return type("Client", (), {"meta": type("Meta", (), {"endpoint_url": self.endpoint})})()


def test_the_registry_check_refuses_an_emulator_without_registry() -> None:
    builds = plan(image(Action.CREATE))
    with pytest.raises(UsageError, match=r"123456789012\.dkr\.ecr\.eu-west-1\.amazonaws\.com.*pass --registry"):
        preflight.registry(builds, _Ctx(None, "http://127.0.0.1:5000"))  # type: ignore[arg-type]
    preflight.registry(builds, _Ctx("127.0.0.1:5001", "http://127.0.0.1:5000"))  # type: ignore[arg-type]
    preflight.registry(builds, _Ctx(None, "https://api.ecr.eu-west-1.amazonaws.com"))  # type: ignore[arg-type]
    preflight.registry(plan(image(Action.UPDATE, built="sha256:2")),
                       _Ctx(None, "http://127.0.0.1:5000"))  # type: ignore[arg-type]
