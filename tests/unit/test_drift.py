"""Drift classification on literal data: every status, the precedence rules, hygiene, determinism."""

from __future__ import annotations

import json
import random
from typing import Any

from reconciler.kinds import all_kinds
from reconciler.kinds.base import Kind
from reconciler.kinds.ecr.image import Image
from reconciler.manifest.model import DesiredResource
from reconciler.plan.build import build_plan
from reconciler.plan.drift import DriftReport, DriftStatus, build_drift
from reconciler.plan.model import Action, AttrChange, Change, LiveResource, Note, NoteKind, Plan
from reconciler.render.drift import format_drift_json, format_drift_markdown, format_drift_text

POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Read", "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}]}
TAGS = {"reconciler:stack": "s", "Name": "u"}


def user(name: str = "u", **over: Any) -> DesiredResource:
    spec = {"name": name, "path": "/", "groups": [], "managed_policies": [], "inline_policies": {"p": POLICY},
            "console_access": False, "tags": dict(TAGS)}
    spec.update(over)
    return DesiredResource(f"iam.user.{name}", "iam.user", spec)


def live_user(name: str = "u", unmanaged: tuple[str, ...] = (), owned: bool = True, **over: Any) -> LiveResource:
    attrs = {"name": name, "path": "/", "groups": [], "managed_policies": [], "inline_policies": {"p": POLICY},
             "console_access": False, "tags": dict(TAGS)}
    attrs.update(over)
    return LiveResource(f"iam.user.{name}", "iam.user", name, attrs, owned=owned, unmanaged=unmanaged)


def keys_desired(rotate: int = 90, count: int = 1) -> DesiredResource:
    return DesiredResource("iam.user.u.access_keys", "iam.access_key", {
        "user": "u", "count": count, "rotate_after_days": rotate, "grace_days": 7,
        "store": {"secretsmanager": "s/u"}, "tags": {}}, ("iam.user.u",))


def keys_live(*keys: dict[str, Any]) -> LiveResource:
    return LiveResource("iam.user.u.access_keys", "iam.access_key", "u",
                        {"user": "u", "store": {"secretsmanager": "s/u"}, "keys": list(keys)},
                        depends_on=("iam.user.u",))


def key(ident: str, status: str = "Active", role: str = "delivered", age: int = 10,
        used: int | None = 0, **extra: Any) -> dict[str, Any]:
    return {"id": ident, "status": status, "role": role, "age_days": age, "last_used_days": used, **extra}


def make_plan(desired: list[DesiredResource], live: list[LiveResource], **kw: Any) -> Plan:
    return build_plan(stack="s", region="us-east-1", account="123456789012", manifest_sha256="0" * 64,
                      desired=desired, live={r.address: r for r in live}, kinds=all_kinds(), **kw)


def drift(desired: list[DesiredResource], live: list[LiveResource], **kw: Any) -> DriftReport:
    return build_drift(make_plan(desired, live, **kw), all_kinds(), {r.address: r for r in live})


def status(report: DriftReport, address: str) -> DriftStatus:
    return next(e.status for e in report.entries if e.address == address)


def test_in_sync_is_not_drift() -> None:
    report = drift([user()], [live_user()])
    assert status(report, "iam.user.u") is DriftStatus.IN_SYNC
    assert report.drifted == ()
    assert "No drift" in format_drift_text(report)


def test_changed_inline_policy_is_modified_per_statement() -> None:
    changed = {"Version": "2012-10-17", "Statement": [{"Sid": "Read", "Effect": "Allow", "Action": "ssm:*",
                                                       "Resource": "*"}]}
    report = drift([user()], [live_user(inline_policies={"p": changed})])
    (entry,) = report.entries
    assert entry.status is DriftStatus.MODIFIED
    assert all(".Statement[Read]" in d.path for d in entry.diff)


def test_extra_statement_inside_a_declared_policy_is_modified_not_unmanaged() -> None:
    extra = {"Version": "2012-10-17", "Statement": [*POLICY["Statement"],
                                                    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    report = drift([user()], [live_user(inline_policies={"p": extra})])
    assert status(report, "iam.user.u") is DriftStatus.MODIFIED


def test_additions_by_hand_are_unmanaged() -> None:
    cases = [
        live_user(managed_policies=["arn:aws:iam::aws:policy/ReadOnlyAccess"]),
        live_user(inline_policies={"p": POLICY, "extra": POLICY}),
        live_user(groups=["extra"]),
        live_user(console_access=True, unmanaged=("console password",)),
    ]
    for live in cases:
        report = drift([user()], [live])
        (entry,) = report.entries
        assert entry.status is DriftStatus.UNMANAGED, live.attrs
        assert entry.unmanaged, live.attrs
    console = drift([user()], [cases[-1]]).entries[0]
    assert console.unmanaged == ("console password",)
    attached = drift([user()], [cases[0]]).entries[0]
    assert attached.unmanaged == ("managed_policies: arn:aws:iam::aws:policy/ReadOnlyAccess",)


def test_a_removed_declared_item_is_modified_even_with_additions() -> None:
    desired = user(managed_policies=["arn:a"])
    report = drift([desired], [live_user(managed_policies=["arn:b"], console_access=True,
                                         unmanaged=("console password",))])
    (entry,) = report.entries
    assert entry.status is DriftStatus.MODIFIED
    assert entry.unmanaged == ("console password",)  # still reported


def test_a_kind_tag_an_earlier_version_did_not_write_is_not_drift() -> None:
    """After an upgrade the plan adds `reconciler:kind` everywhere; drift must not call that a hand change."""
    tagged = {**TAGS, "reconciler:kind": "iam.user"}
    report = drift([user(tags=tagged)], [live_user()])
    (entry,) = report.entries
    assert entry.status is DriftStatus.IN_SYNC
    assert entry.action is Action.UPDATE  # apply still adds it
    assert "reconciler:kind" in entry.detail
    assert report.drifted == ()
    # a real change next to it is still drift, and the backfill is not counted as by hand
    changed = drift([user(tags=tagged)], [live_user(path="/other/")]).entries[0]
    assert changed.status is DriftStatus.MODIFIED
    assert [d.path for d in changed.diff] == ["path"]
    # a kind tag that names another kind is no backfill
    other = drift([user(tags=tagged)], [live_user(tags={**TAGS, "reconciler:kind": "x.y"})]).entries[0]
    assert other.status is not DriftStatus.IN_SYNC


def test_unmanaged_listed_by_the_kind_without_any_diff() -> None:
    report = drift([user()], [live_user(unmanaged=("an extra route to pcx-1",))])
    assert status(report, "iam.user.u") is DriftStatus.UNMANAGED


def test_deleted_orphaned_and_not_checked() -> None:
    orphan = live_user("stray")
    report = drift([user(), user("gone"), user("unknown")], [live_user(), orphan],
                   not_checked={"iam.user.unknown": "access denied", "kind:image": "skipped"})
    assert status(report, "iam.user.gone") is DriftStatus.DELETED
    assert status(report, "iam.user.stray") is DriftStatus.ORPHANED
    assert status(report, "iam.user.unknown") is DriftStatus.NOT_CHECKED
    assert status(report, "kind:image") is DriftStatus.NOT_CHECKED  # not in the plan's changes, still listed
    assert {e.status for e in report.drifted} == {DriftStatus.DELETED, DriftStatus.ORPHANED}
    assert any("not checked" in n for n in report.notes)
    # loudest first
    assert [e.status for e in report.entries][:2] == [DriftStatus.ORPHANED, DriftStatus.DELETED]


def test_not_checked_alone_is_not_drift_but_is_always_shown() -> None:
    report = drift([user(), user("x")], [live_user()], not_checked={"iam.user.x": "kind not supported"})
    assert report.drifted == ()
    for text in (format_drift_text(report), format_drift_markdown(report), format_drift_json(report)):
        assert "iam.user.x" in text and "NOT_CHECKED" in text


def test_deleted_names_the_evidence_when_a_dependant_still_exists() -> None:
    group = DesiredResource("iam.group.g", "iam.group", {"name": "g", "path": "/reconciler/s/",
                                                          "managed_policies": [], "inline_policies": {}})
    member = LiveResource("iam.user.u", "iam.user", "u", live_user(groups=["g"]).attrs,
                          depends_on=("iam.group.g",))
    report = drift([group, user(groups=["g"])], [member])
    entry = next(e for e in report.entries if e.address == "iam.group.g")
    assert entry.status is DriftStatus.DELETED
    assert "iam.user.u still exists" in entry.detail


def test_never_applied_stack_gets_a_note() -> None:
    report = drift([user()], [])
    assert status(report, "iam.user.u") is DriftStatus.DELETED
    assert any("never applied" in n for n in report.notes)


def test_same_named_resource_without_the_stack_tag_is_modified() -> None:
    report = drift([user()], [live_user(owned=False, tags={})])
    (entry,) = report.entries
    assert entry.status is DriftStatus.MODIFIED and "without the stack tag" in entry.detail


def test_key_unknown_to_the_store_is_unmanaged_with_hygiene() -> None:
    report = drift([user(), keys_desired()], [live_user(), keys_live(key("AKIAOLD"), key("AKIAHAND", role="unknown"))])
    entry = next(e for e in report.entries if e.address.endswith("access_keys"))
    assert entry.status is DriftStatus.UNMANAGED
    assert entry.unmanaged == ("access key AKIAHAND (unknown to the store: created by hand)",)
    assert [f.rule for f in report.findings] == ["KEY_ACTIVE_COUNT"]


def test_key_deactivated_by_hand_is_modified() -> None:
    report = drift([user(), keys_desired()], [live_user(), keys_live(key("AKIAOLD", status="Inactive"))])
    assert status(report, "iam.user.u.access_keys") is DriftStatus.MODIFIED


def test_rotation_due_is_scheduled_not_drift() -> None:
    report = drift([user(), keys_desired(rotate=90)],
                   [live_user(), keys_live(key("AKIAOLD", age=120, used=1),
                                           key("AKIARET", status="Inactive", role="retired", age=300,
                                               retired_days=30))])
    entry = next(e for e in report.entries if e.address.endswith("access_keys"))
    assert entry.status is DriftStatus.IN_SYNC
    assert "scheduled" in entry.detail and entry.diff == ()
    assert report.drifted == ()
    assert [f.rule for f in report.findings] == ["KEY_AGE"]
    assert "IN_SYNC" in format_drift_text(report)  # shown, since apply has work to do


def test_unused_keys_by_last_use_and_never_used() -> None:
    report = drift([user(), keys_desired(count=2)],
                   [live_user(), keys_live(key("AKIAA", age=80, used=60), key("AKIAB", age=50, used=None),
                                           key("AKIAC", status="Inactive", role="retired", age=400, used=None,
                                               retired_days=1))])
    rules = sorted((f.rule, f.key) for f in report.findings)
    assert rules == [("KEY_ACTIVE_COUNT", None), ("KEY_UNUSED", "AKIAA"), ("KEY_UNUSED", "AKIAB")]
    text = format_drift_text(report)
    assert "last used 60 days ago" in text and "never used in its 50 days" in text


def test_report_is_deterministic_whatever_the_input_order() -> None:
    desired = [user(n) for n in "abcdef"]
    live = [live_user(n, managed_policies=["arn:x"]) for n in "abcxyz"]
    outputs = set()
    for seed in range(5):
        random.Random(seed).shuffle(live)
        report = build_drift(make_plan(desired, live), all_kinds(), {r.address: r for r in live})
        outputs.add(format_drift_json(report) + format_drift_text(report) + format_drift_markdown(report))
    assert len(outputs) == 1


def test_sensitive_values_stay_masked_in_every_format() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    plan = Plan("s", "us-east-1", "123456789012", "0" * 64, "1" * 64, (
        Change("x.y", "test.kind", Action.UPDATE,
               "changed token", (AttrChange("token", secret, secret + "2", sensitive=True),),
               live=LiveResource("x.y", "test.kind", "id", {})),))
    report = build_drift(plan, {"test.kind": Kind()})
    for text in (format_drift_json(report), format_drift_text(report), format_drift_markdown(report)):
        assert secret not in text
        assert "(sensitive)" in text
    assert json.loads(format_drift_json(report))["resources"][0]["diff"][0]["before"] == "(sensitive)"


class DigestPlanner(Image):
    """Stands in for the image kind's planning: the tag's build inputs and digest, compared as data
    (its drift rules, `classify` and `describe_added`, are the real kind's)."""

    def diff(self, desired: DesiredResource, live: LiveResource) -> list[AttrChange]:
        if live.attrs.get("inputs") == desired.spec["inputs"]:
            return []
        changes = [AttrChange("inputs", live.attrs.get("inputs"), desired.spec["inputs"])]
        if live.attrs.get("built_digest"):
            changes.append(AttrChange("digest", live.attrs["digest"], live.attrs["built_digest"]))
        return changes

    def notes(self, desired: Any, live: Any, action: Action) -> list[Note]:
        return []


def image_plan(desired: DesiredResource, live: LiveResource) -> Plan:
    return build_plan(stack="s", region="us-east-1", account="123456789012", manifest_sha256="0" * 64,
                      desired=[desired], live={live.address: live}, kinds={"ecr.image": DigestPlanner()})


def test_image_tag_pushed_outside_the_tool_is_unmanaged() -> None:
    want = "sha256:" + "1" * 64
    desired = DesiredResource("image.web:1.0", "ecr.image", {"repository": "web", "tag": "1.0", "inputs": want})
    moved = LiveResource("image.web:1.0", "ecr.image", "web:1.0", {
        "repository": "web", "tag": "1.0", "digest": "sha256:" + "9" * 64, "inputs": None,
        "built_digest": "sha256:" + "2" * 64}, unmanaged=("tag 1.0 points at sha256:999999999999, an image not "
                                                           "pushed by reconciler",))
    report = build_drift(image_plan(desired, moved), {"ecr.image": DigestPlanner()}, {moved.address: moved})
    (entry,) = report.entries
    assert entry.status is DriftStatus.UNMANAGED
    assert entry.unmanaged == moved.unmanaged
    assert {d.path for d in entry.diff} == {"inputs", "digest"}
    # a tag that holds another build of the tool (the manifest's inputs moved on) is a modification
    rebuilt = LiveResource("image.web:1.0", "ecr.image", "web:1.0", {
        "repository": "web", "tag": "1.0", "digest": "sha256:" + "3" * 64, "inputs": "sha256:" + "4" * 64,
        "built_digest": None})
    report = build_drift(image_plan(desired, rebuilt), {"ecr.image": DigestPlanner()}, {rebuilt.address: rebuilt})
    assert report.entries[0].status is DriftStatus.MODIFIED


def test_security_notes_of_the_kind_are_not_repeated() -> None:
    admin = user(managed_policies=["arn:aws:iam::aws:policy/AdministratorAccess"])
    plan = make_plan([admin], [live_user()])
    assert [n.text for n in plan.changes[0].notes if n.kind is NoteKind.SECURITY] == [
        "attaches AdministratorAccess (managed_policies)"]
