"""The pure planner on literal data: diff by meaning, actions, ordering, determinism."""

from __future__ import annotations

from typing import Any

from reconciler.canonical import canonical_policy
from reconciler.kinds import all_kinds
from reconciler.manifest.model import DesiredResource
from reconciler.plan.build import build_plan
from reconciler.plan.diff import diff_spec
from reconciler.plan.model import Action, LiveResource

POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "A", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"},
    {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": ["arn:aws:ssm:*:*:parameter/x"]},
]}
SAME_MEANING = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": "arn:aws:ssm:*:*:parameter/x"},
    {"Sid": "A", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"], "Resource": ["*"]},
]}


def user(**over: Any) -> DesiredResource:
    spec = {"name": "u", "path": "/", "groups": [], "managed_policies": [], "inline_policies": {"p": POLICY},
            "console_access": False, "tags": {"reconciler:stack": "s", "Name": "u"}}
    spec.update(over)
    return DesiredResource("iam.user.u", "iam.user", spec)


def live_user(**over: Any) -> LiveResource:
    attrs = {"name": "u", "path": "/", "groups": [], "managed_policies": [], "inline_policies": {"p": SAME_MEANING},
             "console_access": False, "tags": {"reconciler:stack": "s", "Name": "u", "added-by-aws": "x"}}
    attrs.update(over)
    return LiveResource("iam.user.u", "iam.user", "u", attrs)


def plan(desired: list[DesiredResource], live: list[LiveResource], **kw: Any) -> Any:
    return build_plan(stack="s", region="us-east-1", account="123456789012", manifest_sha256="0" * 64,
                      desired=desired, live={r.address: r for r in live}, kinds=all_kinds(), **kw)


def test_policies_compare_by_meaning_and_extra_tags_are_ignored() -> None:
    assert canonical_policy(POLICY) == canonical_policy(SAME_MEANING)
    result = plan([user()], [live_user()])
    assert [c.action for c in result.changes] == [Action.NOOP]
    assert result.pending == ()


def test_statement_level_diff_names_the_statement() -> None:
    changed = {"Version": "2012-10-17", "Statement": [POLICY["Statement"][0]]}
    result = plan([user()], [live_user(inline_policies={"p": changed})])
    (change,) = result.changes
    assert change.action is Action.UPDATE
    assert [d.path for d in change.diff] == ["inline_policies.p.Statement[Allow:ssm:GetParameter]"]
    assert change.diff[0].before is None


def test_extra_attached_policy_and_missing_resource_and_orphan() -> None:
    other = LiveResource("iam.user.gone", "iam.user", "gone", {"name": "gone"})
    result = plan([user(), DesiredResource("iam.group.g", "iam.group", {"name": "g"})],
                  [live_user(managed_policies=["arn:aws:iam::aws:policy/ReadOnlyAccess"]), other])
    actions = {c.address: c.action for c in result.changes}
    assert actions == {"iam.user.u": Action.UPDATE, "iam.group.g": Action.CREATE, "iam.user.gone": Action.DELETE}
    # deletions come first in every rendering
    assert result.changes[0].action is Action.DELETE
    assert result.summary() == {"create": 1, "update": 1, "replace": 0, "delete": 1, "adopt": 0, "unchanged": 0,
                                "blocked": 0}


def test_unowned_resource_is_blocked_unless_adopted() -> None:
    foreign = LiveResource("iam.user.u", "iam.user", "u", live_user().attrs, owned=False)
    blocked = plan([user()], [foreign])
    assert blocked.changes[0].blocked and "--adopt" in blocked.changes[0].blocked
    adopted = plan([user()], [foreign], adopt=True)
    assert adopted.changes[0].action is Action.ADOPT and not adopted.changes[0].blocked
    # an unowned resource that the manifest does not name is never deleted
    assert plan([], [foreign]).changes == ()


def test_replacement_is_flagged_and_protect_blocks_it() -> None:
    desired = DesiredResource("iam.user.u.access_keys", "iam.access_key", {
        "user": "u", "count": 1, "rotate_after_days": 90, "grace_days": 7, "store": {"ssm": "/new"}, "tags": {}},
        protect=True)
    live = LiveResource("iam.user.u.access_keys", "iam.access_key", "u", {
        "user": "u", "keys": [], "store": {"ssm": "/old"}})
    (change,) = plan([desired], [live]).changes
    assert change.action is Action.REPLACE and change.diff[0].forces_replacement
    assert change.blocked and "protect" in change.blocked


def test_same_inputs_same_plan() -> None:
    one = plan([user()], [live_user(groups=["x"])])
    two = plan([user()], [live_user(groups=["x"])])
    assert one == two and one.live_sha256 == two.live_sha256


def test_diff_only_compares_declared_keys() -> None:
    assert diff_spec({"a": 1}, {"a": 1, "aws_default": 2}, frozenset()) == []
    changes = diff_spec({"a": 1, "tags": {"k": "v"}}, {"a": 2, "tags": {"k": "w", "other": "x"}}, frozenset({"a"}))
    assert [(c.path, c.before, c.after, c.forces_replacement) for c in changes] == [
        ("a", 2, 1, True), ("tags.k", "w", "v", False)]
