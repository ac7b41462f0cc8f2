"""The security-widening detector (plan/security.py) on literal diffs."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.plan.model import AttrChange, Note, NoteKind
from reconciler.plan.security import security_notes as typed_security_notes

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


def security_notes(diff: Sequence[AttrChange]) -> list[str]:
    """The detector's notes as text; every one is typed SECURITY (no prefix in the text)."""
    notes = typed_security_notes(diff)
    assert all(n.kind is NoteKind.SECURITY for n in notes)
    return [n.text for n in notes]


def test_new_open_ingress_is_flagged_once_and_existing_is_not() -> None:
    rule = {"protocol": "tcp", "ports": "22", "from": "0.0.0.0/0"}
    internal = {"protocol": "tcp", "ports": "80", "from": "10.0.0.0/16"}
    assert security_notes([AttrChange("ingress", [internal], [internal, rule])]) == [
        "opens ingress to 0.0.0.0/0 (ingress)"]
    assert security_notes([AttrChange("ingress", [rule], [rule, internal])]) == []
    assert security_notes([AttrChange("egress", [], [rule])]) == []
    assert security_notes([AttrChange("ingress", None, [{"from": "::/0"}])]) == [
        "opens ingress to ::/0 (ingress)"]
    nested = AttrChange("rules", None, {"ingress": [rule], "egress": [rule]})
    assert security_notes([nested]) == ["opens ingress to 0.0.0.0/0 (rules)"]


def test_star_actions_in_policy_diffs() -> None:
    statement = {"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}
    assert security_notes([AttrChange("inline_policies.p.Statement[x]", None, statement)]) == [
        "allows s3:* actions (inline_policies.p.Statement[x])"]
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    assert security_notes([AttrChange("inline_policies", {}, {"p": document})]) == [
        "allows * actions (inline_policies)"]
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    assert security_notes([AttrChange("policy.Statement[d]", None, deny)]) == []
    not_action = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    assert security_notes([AttrChange("policy.Statement[n]", None, not_action)]) == [
        "allows NotAction iam:* actions (policy.Statement[n])"]
    # removing a wide statement is not widening
    assert security_notes([AttrChange("policy.Statement[x]", statement, None)]) == []


def test_administrator_access_and_public_ips() -> None:
    assert security_notes([AttrChange("managed_policies", [], [ADMIN])]) == [
        "attaches AdministratorAccess (managed_policies)"]
    assert security_notes([AttrChange("managed_policies", [ADMIN], [ADMIN, "arn:x"])]) == []
    assert security_notes([AttrChange("map_public_ip", False, True)]) == [
        "assigns public IPv4 addresses on launch (map_public_ip)"]
    assert security_notes([AttrChange("map_public_ip", True, False)]) == []
    assert security_notes([AttrChange("spec", None, {"map_public_ip_on_launch": True})]) == [
        "assigns public IPv4 addresses on launch (spec)"]


def test_sensitive_entries_are_never_inspected_and_output_is_sorted() -> None:
    assert security_notes([AttrChange("ingress", None, [{"from": "0.0.0.0/0"}], sensitive=True)]) == []
    notes = security_notes([AttrChange("map_public_ip", None, True), AttrChange("managed_policies", [], [ADMIN])])
    assert notes == sorted(notes)


def test_cost_notes_are_typed_by_the_kind_not_guessed_from_wording() -> None:
    from reconciler.kinds.ec2._prices import cost_note

    note = cost_note("us-east-1", "nat_gateway", "NAT gateway")
    assert note.kind is NoteKind.COST and note.text.startswith("~$") and "/month" in note.text
    assert cost_note("us-east-1", "nat_gateway", "NAT gateway", action="delete").text.startswith("saves ~$")


def test_rules_keyed_by_their_own_text() -> None:
    # security groups keep rules as {"tcp 22 from 0.0.0.0/0": "description"}
    added = AttrChange("ingress.tcp 22 from 0.0.0.0/0", None, "ssh")
    assert security_notes([added]) == ["opens ingress to 0.0.0.0/0 (ingress.tcp 22 from 0.0.0.0/0)"]
    created = AttrChange("ingress", None, {"tcp 443 from ::/0": "", "tcp 80 from 10.0.0.0/16": ""})
    assert security_notes([created]) == ["opens ingress to ::/0 (ingress)"]
    described = AttrChange("ingress.tcp 22 from 0.0.0.0/0", "old", "new")
    assert security_notes([described]) == []  # the rule was already open


def test_notes_are_objects_in_the_plan_file() -> None:
    assert Note(NoteKind.SECURITY, "opens tcp 22").to_json() == {"kind": "security", "text": "opens tcp 22"}
