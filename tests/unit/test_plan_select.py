"""Narrow plans on literal data: `--target` selection with what it needs, `--replace`, `destroy`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import UsageError
from reconciler.kinds import all_kinds
from reconciler.manifest.expand import expand
from reconciler.manifest.model import DesiredResource
from reconciler.manifest.schema import plan_file_problems
from reconciler.manifest.validate import load_manifest
from reconciler.plan.build import build_plan
from reconciler.plan.fresh import check_fresh
from reconciler.plan.model import Action, Change, LiveResource, Plan
from reconciler.plan.select import near, pattern_matches, requested_replacements, select_targets
from reconciler.render.json import plan_to_json

MANIFEST = """\
version: 1
stack: nets
region: us-east-1
iam:
  users:
    - name: app
      access_keys: {count: 1, store: {secretsmanager: nets/app}}
network:
  vpcs:
    - name: main
      cidr: 10.8.0.0/16
      subnets:
        - {name: pub, cidr: 10.8.0.0/24, az: us-east-1a, public: true}
        - {name: priv, cidr: 10.8.10.0/24, az: us-east-1a}
      nat: {mode: instance}
      security_groups:
        - name: app
          ingress: [{protocol: tcp, ports: "443", from: 10.0.0.0/8}]
        - name: db
          ingress: [{protocol: tcp, ports: "5432", from: app}]
"""


def desired(tmp_path: Path, text: str = MANIFEST) -> list[DesiredResource]:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    manifest, _ = load_manifest(path)
    return expand(manifest)


def live_of(resources: list[DesiredResource], **protect: bool) -> dict[str, LiveResource]:
    """The account exactly as those resources were made (in sync)."""
    return {r.address: LiveResource(r.address, r.kind, f"id-{r.address}", r.spec, depends_on=r.depends_on,
                                    protect=protect.get(r.address.replace(".", "_"), False))
            for r in resources if r.kind != "iam.access_key"}


def plan(want: list[DesiredResource], live: dict[str, LiveResource], **kw: Any) -> Plan:
    return build_plan(stack="nets", region="us-east-1", account="123456789012", manifest_sha256="0" * 64,
                      desired=want, live=live, kinds=all_kinds(), **kw)


def pending(result: Plan) -> dict[str, str]:
    return {c.address: c.action.value for c in result.pending}


def test_patterns_match_exactly_or_by_glob_and_targets_take_the_parts_under_an_address() -> None:
    assert pattern_matches("vpc.main", "vpc.main")
    assert not pattern_matches("vpc.main", "vpc.main.subnet.pub")
    assert pattern_matches("vpc.main", "vpc.main.subnet.pub", parts=True)
    assert not pattern_matches("vpc.mai", "vpc.main.subnet.pub", parts=True)  # by whole parts, never a prefix
    assert pattern_matches("vpc.*.sg.app", "vpc.main.sg.app")
    assert not pattern_matches("vpc.main.SG.app", "vpc.main.sg.app")


def test_near_names_close_spellings_else_the_shared_parent() -> None:
    known = ["vpc.main", "vpc.main.subnet.pub", "vpc.main.subnet.priv", "iam.user.app"]
    assert near("vpc.main.subnet.pbu", known)[0] == "vpc.main.subnet.pub"
    assert near("vpc.main.qqqqqqqqqqqqqqqqqqqqqqqqq", known) == ["vpc.main.subnet.priv", "vpc.main.subnet.pub"]


def test_a_created_target_brings_only_the_dependencies_not_yet_made(tmp_path: Path) -> None:
    everything = desired(tmp_path)
    result = plan(everything, {}, targets=["vpc.main.sg.db"])
    # the group, the group it admits, and the VPC both sit in: nothing else of the 13 resources
    assert pending(result) == {"vpc.main": "create", "vpc.main.sg.app": "create", "vpc.main.sg.db": "create"}
    made = live_of([r for r in everything if r.address in ("vpc.main", "vpc.main.sg.app")])
    again = plan(everything, made, targets=["vpc.main.sg.db"])
    assert pending(again) == {"vpc.main.sg.db": "create"}  # what is in sync is not dragged in
    assert again.targets == ("vpc.main.sg.db",)


def test_a_target_selects_the_parts_under_it_and_globs_expand(tmp_path: Path) -> None:
    result = plan(desired(tmp_path), {}, targets=["iam.user.app"])
    assert pending(result) == {"iam.user.app": "create", "iam.user.app.access_keys": "create"}
    subnets = plan(desired(tmp_path), {}, targets=["vpc.main.subnet.*"])
    assert pending(subnets) == {"vpc.main": "create", "vpc.main.subnet.priv": "create",
                                "vpc.main.subnet.pub": "create"}


def test_a_deleted_target_brings_what_depends_on_it(tmp_path: Path) -> None:
    everything = desired(tmp_path)
    result = plan([], live_of(everything), destroy=True, targets=["vpc.main.subnet.pub"])
    deleted = set(pending(result))
    # the NAT instance and its address live in the subnet, the route tables point at it or at the NAT
    assert {"vpc.main.subnet.pub", "vpc.main.nat_instance.pub", "vpc.main.route_table.public"} <= deleted
    assert "vpc.main" not in deleted and "vpc.main.subnet.priv" not in deleted
    assert not any(a.startswith("iam.") for a in deleted)
    assert all(c.reason == "destroy requested" for c in result.pending)
    for change in result.pending:  # closed: every dependent of a selected deletion is selected
        assert all(d in deleted for d in deleted_dependents(result, everything, change.address))


def deleted_dependents(result: Plan, everything: list[DesiredResource], address: str) -> list[str]:
    return [r.address for r in everything if address in r.depends_on and r.kind != "iam.access_key"]


def test_a_target_matching_nothing_is_a_usage_error_naming_near_addresses(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        plan(desired(tmp_path), {}, targets=["vpc.main.subnet.pbu"])
    assert "--target vpc.main.subnet.pbu: matches no address" in str(caught.value)
    assert "vpc.main.subnet.pub" in str(caught.value)


def test_selection_keeps_plan_order_and_is_a_subset(tmp_path: Path) -> None:
    full = plan(desired(tmp_path), {})
    chosen = select_targets(full.changes, ["vpc.main.route_table.*"])
    assert [c.address for c in chosen] == [c.address for c in full.changes if c in chosen]
    assert {"vpc.main.route_table.private", "vpc.main.nat_instance.pub", "vpc.main.subnet.pub"} <= \
        {c.address for c in chosen}


def test_replace_forces_a_replacement_without_a_diff_and_dependents_follow(tmp_path: Path) -> None:
    everything = [r for r in desired(tmp_path) if r.kind != "iam.access_key"]  # keys: their own test below
    result = plan(everything, live_of(everything), replace=["vpc.main.nat_instance.pub"])
    changes = {c.address: (c.action.value, c.reason) for c in result.pending}
    assert changes == {
        "vpc.main.nat_instance.pub": ("replace", "replacement requested"),
        "vpc.main.route_table.private": ("update", "follows the replacement of vpc.main.nat_instance.pub"),
    }
    assert result.replace == ("vpc.main.nat_instance.pub",)
    assert plan_to_json(result)["replace"] == ["vpc.main.nat_instance.pub"]
    assert "replace" not in plan_to_json(plan(everything, live_of(everything)))  # a full plan's file unchanged


def test_replace_of_a_protected_resource_is_blocked(tmp_path: Path) -> None:
    everything = desired(tmp_path)
    result = plan(everything, live_of(everything, vpc_main_sg_app=True), replace=["vpc.main.sg.app"])
    (change,) = [c for c in result.pending if c.address == "vpc.main.sg.app"]
    assert change.action is Action.REPLACE
    assert change.blocked is not None and "protect" in change.blocked


def test_replace_of_what_is_missing_gone_or_unknown_says_which(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist in the account yet"):
        requested_replacements(["vpc.main"], ["vpc.main"], [], [])
    with pytest.raises(UsageError, match="is not in the manifest, so apply deletes it"):
        requested_replacements(["vpc.old"], ["vpc.main"], ["vpc.main", "vpc.old"], ["vpc.main"])
    with pytest.raises(UsageError, match=r"matches no address.*vpc\.main"):
        requested_replacements(["vpc.mian"], ["vpc.main"], ["vpc.main"], ["vpc.main"])
    # a glob replaces what exists of what it names; the missing ones are created anyway
    assert requested_replacements(["vpc.*"], ["vpc.a", "vpc.b"], ["vpc.a"], ["vpc.a"]) == {"vpc.a"}


def test_replace_of_an_unowned_resource_while_adopting_is_blocked(tmp_path: Path) -> None:
    everything = desired(tmp_path)
    live = live_of(everything)
    live["vpc.main.sg.app"] = LiveResource("vpc.main.sg.app", "ec2.security_group", "sg-1",
                                           live["vpc.main.sg.app"].attrs, owned=False)
    result = plan(everything, live, replace=["vpc.main.sg.app"], adopt=True)
    (change,) = [c for c in result.changes if c.address == "vpc.main.sg.app"]
    assert change.blocked is not None and "not owned by stack nets" in change.blocked


def key_change(attrs: dict[str, Any], replace: bool = True) -> Change:
    spec = {"user": "app", "count": 1, "rotate_after_days": 90, "grace_days": 7,
            "store": {"secretsmanager": "nets/app"}, "tags": {}}
    want = DesiredResource("iam.user.app.access_keys", "iam.access_key", spec, ("iam.user.app",))
    live = LiveResource(want.address, "iam.access_key", "app",
                        {"user": "app", "store": {"secretsmanager": "nets/app"}, "store_tags": {}, **attrs})
    result = build_plan(stack="nets", region="us-east-1", account="123456789012", manifest_sha256="0" * 64,
                        desired=[want], live={want.address: live}, kinds=all_kinds(),
                        replace=[want.address] if replace else [])
    (change,) = result.changes
    return change


def test_replacing_access_keys_is_a_rotation_into_the_same_store() -> None:
    fresh = {"id": "AKIAFRESH", "status": "Active", "role": "delivered", "age_days": 3}
    assert key_change({"keys": [fresh], "held": "AKIAFRESH"}, replace=False).action is Action.NOOP
    change = key_change({"keys": [fresh], "held": "AKIAFRESH"})
    assert (change.action, change.reason, change.blocked) == (Action.REPLACE, "replacement requested", None)
    texts = [n.text for n in change.notes]
    assert "rotation: a new key is stored in secretsmanager:nets/app" in texts
    assert any("key AKIAFRESH is deactivated" in t for t in texts)


def test_a_rotation_with_no_free_slot_is_blocked_saying_when_it_can_run() -> None:
    keys = [{"id": "AKIANEW", "status": "Active", "role": "delivered", "age_days": 1},
            {"id": "AKIAOLD", "status": "Inactive", "role": "retired", "age_days": 30, "retired_days": 2}]
    change = key_change({"keys": keys, "held": "AKIANEW"})
    assert change.blocked is not None
    assert "the rotation cannot start" in change.blocked and "AKIAOLD ends, in 5 day(s)" in change.blocked


def test_replace_of_a_kind_that_is_never_replaced_is_blocked(tmp_path: Path) -> None:
    everything = [r for r in desired(tmp_path) if r.kind != "iam.access_key"]
    result = plan(everything, live_of(everything), replace=["iam.user.app"])
    (change,) = [c for c in result.pending if c.address == "iam.user.app"]  # pending: apply refuses, not skips
    assert change.action is Action.REPLACE
    assert change.blocked is not None and "an iam.user is never replaced" in change.blocked


def test_a_narrowed_plan_file_is_schema_valid_and_must_be_applied_as_it_was_made(tmp_path: Path) -> None:
    everything = [r for r in desired(tmp_path) if r.kind != "iam.access_key"]
    narrowed = plan([], live_of(everything), destroy=True, targets=["vpc.main.sg.*"])
    reviewed = json.loads(json.dumps(plan_to_json(narrowed)))
    assert plan_file_problems(reviewed) == []
    assert (reviewed["destroy"], reviewed["targets"]) == (True, ["vpc.main.sg.*"])
    check_fresh(reviewed, plan_to_json(plan([], live_of(everything), destroy=True, targets=["vpc.main.sg.*"])))
    with pytest.raises(UsageError, match="destroy plan"):  # the same account, planned without --destroy
        check_fresh(reviewed, plan_to_json(plan(everything, live_of(everything), targets=["vpc.main.sg.*"])))
    with pytest.raises(UsageError, match="--target list"):
        check_fresh(reviewed, plan_to_json(plan([], live_of(everything), destroy=True)))


def test_a_forced_replacement_is_kept_by_a_target_that_misses_it(tmp_path: Path) -> None:
    everything = [r for r in desired(tmp_path) if r.kind != "iam.access_key"]
    result = plan(everything, live_of(everything), targets=["vpc.main.sg.db"], replace=["vpc.main.subnet.priv"])
    assert pending(result) == {"vpc.main.subnet.priv": "replace", "vpc.main.route_table.private": "update"}


def test_what_cannot_be_repointed_in_place_is_replaced_with_what_it_sits_in(tmp_path: Path) -> None:
    everything = [r for r in desired(tmp_path) if r.kind != "iam.access_key"]
    nat = next(r.address for r in everything if r.kind == "ec2.nat_instance")
    result = plan(everything, live_of(everything), replace=["vpc.main.subnet.pub"])
    changes = {c.address: c for c in result.pending}
    # the NAT instance's subnet is fixed at launch: it is replaced too, never "updated" in the old subnet
    assert changes[nat].action is Action.REPLACE and changes[nat].blocked is None
    assert changes[nat].reason == "follows the replacement of vpc.main.subnet.pub (subnet cannot change in place)"
    # what routes to the NAT is re-pointed in place, after it
    private = changes["vpc.main.route_table.private"]
    assert private.action is Action.UPDATE and nat in private.reason
    # a replaced VPC takes everything that lives in it along, to the fixpoint
    whole = plan(everything, live_of(everything), replace=["vpc.main"])
    inside = {c.address: c.action for c in whole.pending}
    assert all(inside[a] is Action.REPLACE for a in ("vpc.main.subnet.pub", "vpc.main.subnet.priv",
                                                      "vpc.main.sg.app", "vpc.main.sg.db", nat)), inside


def test_a_blocked_replacement_is_not_followed_and_not_announced_as_a_deletion(tmp_path: Path) -> None:
    from reconciler.render.text import format_plan_text

    everything = [r for r in desired(tmp_path) if r.kind != "iam.access_key"]
    result = plan(everything, live_of(everything, vpc_main_subnet_pub=True), replace=["vpc.main.subnet.pub"])
    (subnet,) = [c for c in result.pending if c.address == "vpc.main.subnet.pub"]
    assert subnet.action is Action.REPLACE and subnet.blocked is not None
    assert [c.address for c in result.pending] == ["vpc.main.subnet.pub"]  # nothing follows what will not happen
    text = format_plan_text(result)
    assert "DELETED or REPLACED" not in text and "DELETIONS" not in text and "X BLOCKED" in text
