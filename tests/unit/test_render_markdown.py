"""The markdown plan (pull-request comment): order, call-outs, escaping, and GitHub's size limit."""

from __future__ import annotations

import re

import pytest

from reconciler.kinds.base import Kind
from reconciler.manifest.model import DesiredResource
from reconciler.plan.drift import build_drift
from reconciler.plan.model import Action, AttrChange, Change, LiveResource, Note, Plan, cost, security
from reconciler.render.drift import format_drift_markdown
from reconciler.render.markdown import GITHUB_LIMIT, format_plan_markdown

ORDER = {Action.DELETE: 0, Action.REPLACE: 1, Action.UPDATE: 2, Action.CREATE: 3, Action.NOOP: 4}


def generated_plan(n: int) -> Plan:
    """n changes of every kind of action, realistic sizes (a 10-statement policy, tags, notes)."""
    changes = []
    actions = [Action.CREATE, Action.UPDATE, Action.DELETE, Action.REPLACE, Action.CREATE, Action.NOOP]
    for i in range(n):
        action = actions[i % len(actions)]
        address = f"vpc.main.subnet.generated-{i:05d}"
        desired = DesiredResource(address, "ec2.subnet", {"cidr": f"10.{i % 250}.0.0/24"})
        live = LiveResource(address, "ec2.subnet", f"subnet-{i:017x}", {"cidr": "10.0.0.0/24", "tags": {"a": "b"}})
        if action is Action.CREATE:
            diff = tuple(AttrChange(f"tags.key{j}", None, f"value-{j}") for j in range(8))
            diff += (AttrChange("policy", None, {"Version": "2012-10-17", "Statement": [
                {"Sid": f"S{j}", "Effect": "Allow", "Action": f"s3:Get{j}", "Resource": "*"} for j in range(10)]}),)
        elif action in (Action.UPDATE, Action.REPLACE):
            diff = (AttrChange("cidr", "10.0.0.0/24", f"10.{i % 250}.0.0/24",
                               forces_replacement=action is Action.REPLACE),
                    AttrChange("tags.env", "dev", "prod"))
        else:
            diff = ()
        notes: tuple[Note, ...] = ()
        if i % 50 == 1:
            notes = (security("opens ingress to 0.0.0.0/0 (ingress)"),)
        if i % 70 == 4:
            notes = (cost("NAT gateway about $32.85/month"),)
        changes.append(Change(address, "ec2.subnet", action, "changed cidr" if diff else "missing", diff,
                              ("vpc.main",), None if action is Action.DELETE else desired,
                              None if action is Action.CREATE else live, notes))
    changes.sort(key=lambda c: (ORDER[c.action], c.address))
    return Plan("big", "us-east-1", "123456789012", "a" * 64, "b" * 64, tuple(changes),
                not_checked={f"image.app:{i}": "docker is not reachable" for i in range(40)})


def table_addresses(text: str) -> list[str]:
    return re.findall(r"^\| [^|]+ \| `([^`]+)`(?: \(`[^`]+`\))? \|", text, flags=re.M)


def test_500_changes_fit_one_comment_and_every_change_is_in_the_table() -> None:
    plan = generated_plan(500)
    text = format_plan_markdown(plan)
    assert len(text) < GITHUB_LIMIT
    listed = table_addresses(text)
    assert listed == [c.address for c in plan.pending]
    assert "more change(s) not listed" not in text
    assert text.count("<details>") == text.count("</details>")
    # deletions and replacements come first, in the call-out and in the table
    actions = re.findall(r"^\| (\*\*delete\*\*|\*\*replace\*\*|update|create) \|", text, flags=re.M)
    assert actions == sorted(actions, key=lambda a: ["**delete**", "**replace**", "update", "create"].index(a))
    assert "will be DELETED or REPLACED" in text
    assert "security-widening" in text and "cost-bearing" in text and "not checked" in text


def test_5000_changes_are_summarised_under_the_limit() -> None:
    plan = generated_plan(5000)
    text = format_plan_markdown(plan)
    assert len(text) <= 60_000 < GITHUB_LIMIT
    listed = table_addresses(text)
    assert 0 < len(listed) < len(plan.pending)
    assert listed == [c.address for c in plan.pending][:len(listed)]
    # (deletions carry their live id, so some of them may be left out too)
    assert re.search(r"\*\d+ more change\(s\) not listed \(\d+ create, (\d+ delete, )?\d+ replace, "
                     r"\d+ update\)\*", text)
    assert "| ec2.subnet | 833 | 833 | 834 | 1667 |" in text  # the overview counts everything
    assert "... and" in text  # call-out lists are capped
    assert text.endswith("</sub>\n")  # the footer survives
    assert text.count("<details>") == text.count("</details>")


@pytest.mark.parametrize("limit", [3_000, 10_000, 65_536])
def test_any_limit_is_respected(limit: int) -> None:
    assert len(format_plan_markdown(generated_plan(800), limit=limit)) <= limit


def test_no_changes() -> None:
    plan = Plan("s", "us-east-1", "123456789012", "a" * 64, "b" * 64, ())
    text = format_plan_markdown(plan)
    assert "**No changes. 0 resource(s) in sync.**" in text
    assert "| Action |" not in text


def test_cells_and_code_blocks_are_escaped() -> None:
    live = LiveResource("x.a", "k", "id-1", {"v": "a"})
    change = Change("x.a", "k", Action.UPDATE, "changed a|b <script>", (AttrChange("v", "```", "x|y"),),
                    live=live)
    text = format_plan_markdown(Plan("s", "us-east-1", "123456789012", "a" * 64, "b" * 64, (change,)))
    assert "changed a\\|b &lt;script&gt;" in text
    assert "<script>" not in text
    assert "````diff" in text  # a fence longer than any backtick run inside


def test_sensitive_values_never_appear() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    change = Change("x.a", "k", Action.UPDATE, "changed secret",
                    (AttrChange("secret", secret, secret + "x", sensitive=True),),
                    live=LiveResource("x.a", "k", "i", {}))
    text = format_plan_markdown(Plan("s", "us-east-1", "123456789012", "a" * 64, "b" * 64, (change,)))
    assert secret not in text and "(sensitive)" in text


def test_deletions_show_what_goes_away() -> None:
    live = LiveResource("vpc.old", "ec2.vpc", "vpc-123", {"cidr": "10.9.0.0/16"})
    change = Change("vpc.old", "ec2.vpc", Action.DELETE, "not in the manifest", live=live)
    text = format_plan_markdown(Plan("s", "us-east-1", "123456789012", "a" * 64, "b" * 64, (change,)))
    assert '- id = "vpc-123"' in text and '- cidr = "10.9.0.0/16"' in text


def test_drift_markdown_for_5000_addresses_stays_under_the_limit() -> None:
    report = build_drift(generated_plan(5000), {"ec2.subnet": Kind()})
    text = format_drift_markdown(report)
    assert len(text) <= 60_000
    assert "more address(es) not listed" in text
    assert text.count("<details>") == text.count("</details>")
