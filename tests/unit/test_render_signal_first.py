"""The plan's text, signal first (issue 13): bookkeeping only with -v, structured document diffs,
live ids, the summary line (blocked, cost), destroy wording, colour; and the golden default plan
of manifests/maestro.yaml from an empty account, built from plain data (no AWS: build_plan is pure).

Regenerate the maestro goldens with `UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/unit/test_render_signal_first.py`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest

from reconciler.kinds import all_kinds
from reconciler.manifest.expand import bookkeeping, expand
from reconciler.manifest.model import DesiredResource
from reconciler.manifest.validate import load_manifest
from reconciler.plan.build import build_plan
from reconciler.plan.model import Action, AttrChange, Change, LiveResource, Plan, cost
from reconciler.render.json import format_plan_json
from reconciler.render.lines import attr_lines, summary_line
from reconciler.render.markdown import format_plan_markdown
from reconciler.render.text import format_plan_text

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
MAESTRO = ROOT / "manifests" / "maestro.yaml"
ACCOUNT = "123456789012"


def maestro_plan() -> Plan:
    manifest, _ = load_manifest(MAESTRO)
    return build_plan(stack=manifest.stack, region=manifest.region, account=ACCOUNT, manifest_sha256="0" * 64,
                      desired=expand(manifest), live={}, kinds=all_kinds())


def test_the_maestro_plan_from_an_empty_account_matches_its_goldens_and_fits_one_screen() -> None:
    plan = maestro_plan()
    rendered = {"maestro-empty-account.plan.txt": format_plan_text(plan),
                "maestro-empty-account.plan-verbose.txt": format_plan_text(plan, verbose=True),
                "maestro-empty-account.plan.md": format_plan_markdown(plan)}
    if os.environ.get("UPDATE_GOLDEN"):
        for name, text in rendered.items():
            (GOLDEN / name).write_text(text, encoding="utf-8")
    for name, text in rendered.items():
        assert text == (GOLDEN / name).read_text(encoding="utf-8"), f"{name} differs; UPDATE_GOLDEN=1 regenerates"
    default, verbose = rendered["maestro-empty-account.plan.txt"], rendered["maestro-empty-account.plan-verbose.txt"]
    assert len(default.splitlines()) <= 120
    assert "reconciler:" not in default and "reconciler:" not in rendered["maestro-empty-account.plan.md"]
    assert "tags.reconciler:stack" in verbose and "vpc_cidr" in verbose and "tags.env" in verbose
    assert len(verbose.splitlines()) > len(default.splitlines()) + 100
    # what was left out is said once, with its count, and -v shows it all
    hidden = re.findall(r"^\((\d+) bookkeeping attribute\(s\) hidden.*-v shows them\)$", default, flags=re.M)
    assert len(hidden) == 1 and int(hidden[0]) > 100
    assert "bookkeeping" not in verbose
    assert "tags.reconciler:stack" in format_plan_markdown(plan, verbose=True)  # markdown follows the same rules
    # the route table's subnets as the list of their addresses; with -v their copied az/cidr too
    assert '+ subnets = ["vpc.main.subnet.private-a", "vpc.main.subnet.private-c"]' in default
    assert "+ subnets.vpc.main.subnet.private-a.cidr" in verbose
    # the cost total once, and the price table's date once, on the summary line
    assert default.count("prices as of") == 1
    assert default.splitlines()[-1].startswith("Plan: 22 to add, 0 to change, 0 to replace, 0 to destroy; ~$")


def test_json_always_holds_the_bookkeeping_and_marks_it() -> None:
    plan = maestro_plan()
    body = json.loads(format_plan_json(plan))
    jsonschema.Draft202012Validator(json.loads((ROOT / "schemas" / "plan.schema.json").read_text())).validate(body)
    vpc = next(c for c in body["changes"] if c["address"] == "vpc.main")
    tags = next(d for d in vpc["diff"] if d["path"] == "tags")["after"]
    assert tags["reconciler:stack"] == "maestro"
    assert {"tags.reconciler:stack", "tags.Name", "tags.env", "tags.project"} <= set(vpc["detail"])
    assert "cidr" not in vpc["detail"]
    nat = next(c for c in body["changes"] if c["address"] == "vpc.main.nat.public-a")
    assert {"vpc", "vpc_cidr", "subnet_cidr", "az"} <= set(nat["detail"]) and "subnet" not in nat["detail"]
    assert nat["notes"][0]["monthly_usd"] > 0 and nat["notes"][0]["prices_as_of"]
    assert body["summary"]["blocked"] == 0


def test_expansion_marks_only_what_the_manifest_does_not_say_itself() -> None:
    manifest, _ = load_manifest(MAESTRO)
    manifest = dataclasses.replace(manifest, data={**manifest.data, "tags": {"project": "maestro", "env": "dev"}})
    own = DesiredResource("vpc.main", "ec2.vpc", {"cidr": "10.0.0.0/16", "tags": {
        "project": "maestro", "env": "prod", "team": "a", "Name": "x", "reconciler:stack": "maestro"}})
    marked = bookkeeping(own, manifest)
    # a tag the resource overrides, or adds, is what the manifest declares for it: shown
    assert marked == {"tags.project", "tags.Name", "tags.reconciler:stack"}


def _vpc(tags: dict[str, str]) -> DesiredResource:
    return DesiredResource("vpc.main", "ec2.vpc", {"cidr": "10.0.0.0/16", "tags": tags},
                           detail=frozenset({"tags.reconciler:protect", "tags.Name"}))


def test_a_bookkeeping_value_that_changes_is_always_shown() -> None:
    desired = _vpc({"reconciler:protect": "false", "Name": "main"})
    live = LiveResource("vpc.main", "ec2.vpc", "vpc-0abc", {"cidr": "10.0.0.0/16",
                                                           "tags": {"reconciler:protect": "true", "Name": "main"}})
    plan = build_plan(stack="s", region="us-east-1", account=ACCOUNT, manifest_sha256="0" * 64, desired=[desired],
                      live={"vpc.main": live}, kinds={"ec2.vpc": all_kinds()["ec2.vpc"]})
    text = format_plan_text(plan)
    assert '~ tags.reconciler:protect: "true" -> "false"' in text
    assert "~ vpc.main (vpc-0abc, ec2.vpc) will be updated in place" in text  # the live id beside the address
    assert "hidden" not in text
    created = build_plan(stack="s", region="us-east-1", account=ACCOUNT, manifest_sha256="0" * 64,
                         desired=[desired], live={}, kinds={"ec2.vpc": all_kinds()["ec2.vpc"]})
    assert "reconciler:protect" not in format_plan_text(created)
    assert "reconciler:protect" in format_plan_text(created, verbose=True)
    assert "(2 bookkeeping attribute(s) hidden" in format_plan_text(created)


def test_lifecycle_rules_and_policies_diff_item_by_item() -> None:
    before = [{"rulePriority": 1, "description": "old", "selection": {"countNumber": 7}},
              {"rulePriority": 2, "description": "keep", "selection": {"countNumber": 30}}]
    after = [{"rulePriority": 1, "description": "old", "selection": {"countNumber": 14}},
             {"rulePriority": 3, "description": "new", "selection": {"countNumber": 5}}]
    lines = attr_lines([AttrChange("lifecycle_rules", before, after)]).lines
    assert lines == [
        '- lifecycle_rules[1] = {"description": "keep", "rulePriority": 2, "selection": {"countNumber": 30}}',
        "~ lifecycle_rules[0].selection.countNumber: 7 -> 14",
        '+ lifecycle_rules[1] = {"description": "new", "rulePriority": 3, "selection": {"countNumber": 5}}']
    # a statement whose body changed (plan.diff says: one gone, one added, same Sid): only the changed key
    old = {"Sid": "Pull", "Effect": "Allow", "Action": "ecr:*", "Resource": "*"}
    new = {**old, "Action": ["ecr:BatchGetImage"]}
    lines = attr_lines([AttrChange("policy.Statement[Pull]", old, None),
                        AttrChange("policy.Statement[Pull]", None, new)]).lines
    assert lines == ['~ policy.Statement[Pull].Action: "ecr:*" -> ["ecr:BatchGetImage"]']
    # no value is cut into a one-line blob: a long document changes key by key
    big_before = {"Statement": [{"Sid": f"S{i}", "Action": f"s3:Get{i}", "Resource": "*"} for i in range(20)]}
    big_after = {"Statement": [*big_before["Statement"][:19], {"Sid": "S19", "Action": "s3:*", "Resource": "*"}]}
    lines = attr_lines([AttrChange("doc", big_before, big_after)]).lines
    assert lines == ['~ doc.Statement[S19].Action: "s3:Get19" -> "s3:*"']


def _change(address: str, action: Action, blocked: str | None = None, usd: float | None = None) -> Change:
    live = None if action is Action.CREATE else LiveResource(address, "ec2.nat_gateway", "nat-1", {})
    desired = None if action is Action.DELETE else DesiredResource(address, "ec2.nat_gateway", {})
    notes = (cost("~$x/month (NAT)", monthly_usd=usd, prices_as_of="2026-11-27"),) if usd is not None else ()
    return Change(address, "ec2.nat_gateway", action, "r", (), (), desired, live, notes, blocked)


def test_the_summary_counts_blocked_apart_and_totals_the_cost_once() -> None:
    plan = Plan("s", "us-east-1", ACCOUNT, "0" * 64, "0" * 64, (
        _change("a", Action.DELETE, usd=-45.0), _change("b", Action.CREATE, usd=45.0),
        _change("c", Action.CREATE, usd=20.0), _change("d", Action.CREATE, blocked="exists", usd=99.0),
        _change("e", Action.UPDATE)))
    assert plan.summary()["create"] == 2 and plan.summary()["blocked"] == 1
    assert summary_line(plan) == ("Plan: 2 to add, 1 to change, 0 to replace, 1 to destroy, 1 blocked; "
                                  "~$20/month more (prices as of 2026-11-27).")
    saving = Plan("s", "us-east-1", ACCOUNT, "0" * 64, "0" * 64, (_change("a", Action.DELETE, usd=-45.0),))
    assert summary_line(saving) == ("Plan: 0 to add, 0 to change, 0 to replace, 1 to destroy; ~$45/month less "
                                    "(prices as of 2026-11-27).")
    text = format_plan_text(plan)
    assert text.count("prices as of") == 1


def test_destroy_says_destroy_requested() -> None:
    live = {"vpc.main": LiveResource("vpc.main", "ec2.vpc", "vpc-1", {"cidr": "10.0.0.0/16"})}
    kinds = {"ec2.vpc": all_kinds()["ec2.vpc"]}
    args = {"stack": "s", "region": "us-east-1", "account": ACCOUNT, "manifest_sha256": "0" * 64, "desired": [],
            "live": live, "kinds": kinds}
    assert build_plan(**args, destroy=True).changes[0].reason == "destroy requested"  # type: ignore[arg-type]
    assert build_plan(**args).changes[0].reason == "not in the manifest"  # type: ignore[arg-type]


@pytest.mark.parametrize("force", [False, True])
def test_a_repository_with_images_says_one_thing(force: bool) -> None:
    repository = all_kinds()["ecr.repository"]
    live = LiveResource("ecr.repository.app", "ecr.repository", "app", {"holds_images": True, "force_delete": force})
    blocked = repository.blocked(None, live, Action.DELETE)
    notes = repository.notes(None, live, Action.DELETE)
    assert (blocked is None) is force  # blocked without force_delete ...
    assert bool(notes) is force  # ... and only with it "deleted with its images"
    desired = DesiredResource("ecr.repository.app", "ecr.repository", {"force_delete": force})
    replace_notes = " ".join(n.text for n in repository.notes(desired, live, Action.REPLACE))
    assert ("deleted with it" in replace_notes) is force
    assert (repository.blocked(desired, live, Action.REPLACE) is None) is force


def test_colour_carries_meaning_and_is_off_when_asked() -> None:
    plan = Plan("s", "us-east-1", ACCOUNT, "0" * 64, "0" * 64, (
        dataclasses.replace(_change("a", Action.DELETE), diff=()),
        dataclasses.replace(_change("b", Action.CREATE), diff=(AttrChange("cidr", None, "10.0.0.0/16"),)),
        dataclasses.replace(_change("c", Action.UPDATE), diff=(AttrChange("cidr", "10.0.0.0/16", "10.1.0.0/16"),))))
    plain = format_plan_text(plan)
    assert "\033[" not in plain
    painted = format_plan_text(plan, color=True)
    assert "\033[32m+ cidr = \"10.0.0.0/16\"\033[0m" in painted  # green add, symbol kept
    assert "\033[33m~ cidr: \"10.0.0.0/16\" -> \"10.1.0.0/16\"\033[0m" in painted  # yellow change
    assert "\033[31m- a (nat-1, ec2.nat_gateway) will be DELETED\033[0m" in painted  # red delete
    assert re.sub(r"\033\[[0-9;]*m", "", painted) == plain  # colour never carries anything alone


def test_a_plan_of_deletions_only_says_so_once_instead_of_listing_them_twice() -> None:
    gone = [Change(f"iam.group.g{i}", "iam.group", Action.DELETE, "destroy requested",
                   live=LiveResource(f"iam.group.g{i}", "iam.group", f"g{i}", {})) for i in range(3)]
    text = format_plan_text(Plan("s", "eu-west-1", "123456789012", "m", "l", tuple(gone), destroy=True))
    assert "!! all 3 pending change(s) are DELETIONS:" in text
    assert all(text.count(f"iam.group.g{i} ") == 1 for i in range(3)), text
    mixed = format_plan_text(Plan("s", "eu-west-1", "123456789012", "m", "l", (
        *gone[:1], Change("iam.group.new", "iam.group", Action.CREATE, "missing"))))
    assert "!! 1 resource(s) will be DELETED or REPLACED:" in mixed and "!!   - iam.group.g0" in mixed


def test_a_rule_without_a_description_reads_as_the_rule_not_as_a_changed_description() -> None:
    from reconciler.render.lines import diff_lines

    rule = "ingress.tcp 22 from 0.0.0.0/0"
    assert diff_lines([AttrChange(rule, {"description": ""}, None)]) == [f"- {rule}"]
    assert diff_lines([AttrChange(rule, None, {"description": "ssh"})]) == [f'+ {rule}.description = "ssh"']
    assert attr_lines([AttrChange(rule, None, {"description": ""})]).lines == [f"+ {rule}"]
