"""The plan file: every plan validates against schemas/plan.schema.json, and the bytes are deterministic."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.kinds import all_kinds
from reconciler.manifest.model import DesiredResource
from reconciler.plan.build import build_plan
from reconciler.plan.model import LiveResource
from reconciler.render.json import format_plan_json

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

names = st.sampled_from(["a", "b", "c", "d", "e", "f"])
policies = st.sampled_from(["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/AdministratorAccess",
                            "arn:aws:iam::123456789012:policy/custom"])
statement = st.fixed_dictionaries({
    "Effect": st.sampled_from(["Allow", "Deny"]),
    "Action": st.one_of(st.sampled_from(["*", "s3:GetObject", "ssm:*"]), st.lists(st.sampled_from(
        ["s3:GetObject", "s3:PutObject", "ecr:*"]), min_size=1, max_size=3)),
    "Resource": st.sampled_from(["*", "arn:aws:s3:::b/*"]),
})
document = st.builds(lambda s: {"Version": "2012-10-17", "Statement": s}, st.lists(statement, min_size=1, max_size=3))
user_attrs = st.fixed_dictionaries({
    "path": st.sampled_from(["/", "/apps/"]),
    "groups": st.lists(names, unique=True, max_size=2).map(sorted),
    "managed_policies": st.lists(policies, unique=True, max_size=2).map(sorted),
    "inline_policies": st.dictionaries(names, document, max_size=2),
    "console_access": st.booleans(),
    "tags": st.dictionaries(st.sampled_from(["env", "team", "Name"]), st.sampled_from(["x", "y"]), max_size=2),
})


def scenario(draw: Any) -> tuple[list[DesiredResource], list[LiveResource], dict[str, str]]:
    wanted = draw(st.lists(names, unique=True, max_size=5))
    present = draw(st.lists(names, unique=True, max_size=5))
    desired = []
    for name in wanted:
        attrs = draw(user_attrs)
        desired.append(DesiredResource(f"iam.user.{name}", "iam.user", {"name": name, **attrs,
                                                                           "console_access": False},
                                       protect=draw(st.booleans())))
    live = []
    for name in present:
        attrs = draw(user_attrs)
        live.append(LiveResource(f"iam.user.{name}", "iam.user", name, {"name": name, **attrs},
                                 owned=draw(st.booleans()),
                                 unmanaged=("console password",) if attrs["console_access"] else ()))
    not_checked = {f"iam.user.{n}": "access denied" for n in draw(st.lists(names, unique=True, max_size=1))}
    return desired, live, not_checked


def render(desired: list[DesiredResource], live: list[LiveResource], not_checked: dict[str, str]) -> str:
    plan = build_plan(stack="s", region="us-east-1", account="123456789012", manifest_sha256="c" * 64,
                      desired=sorted(desired, key=lambda d: d.address), live={r.address: r for r in live},
                      kinds=all_kinds(), not_checked=not_checked)
    return format_plan_json(plan)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_plan_file_validates_and_is_deterministic(data: st.DataObject) -> None:
    desired, live, not_checked = scenario(data.draw)
    text = render(desired, live, not_checked)
    VALIDATOR.validate(json.loads(text))
    shuffled = list(live)
    random.Random(7).shuffle(shuffled)
    assert render(desired, shuffled, dict(reversed(list(not_checked.items())))) == text
    assert text.endswith("\n") and json.dumps(json.loads(text), indent=2, sort_keys=True,
                                              ensure_ascii=False) + "\n" == text


def test_a_plan_with_security_notes_and_blocked_changes_validates() -> None:
    desired = [DesiredResource("iam.user.a", "iam.user", {
        "name": "a", "path": "/", "groups": [], "managed_policies": ["arn:aws:iam::aws:policy/AdministratorAccess"],
        "inline_policies": {}, "console_access": False, "tags": {}})]
    live = [LiveResource("iam.user.a", "iam.user", "a", {"name": "a", "path": "/apps/", "groups": [],
                                                         "managed_policies": [], "inline_policies": {},
                                                         "console_access": False, "tags": {}})]
    data = json.loads(render(desired, live, {}))
    VALIDATOR.validate(data)
    (change,) = data["changes"]
    assert any(n["kind"] == "security" and "AdministratorAccess" in n["text"] for n in change["notes"])
