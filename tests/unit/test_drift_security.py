"""The security-widening detector (plan/security.py) on literal diffs."""

from __future__ import annotations

from reconciler.plan.model import AttrChange
from reconciler.plan.security import is_cost_note, security_notes

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


def test_new_open_ingress_is_flagged_once_and_existing_is_not() -> None:
    rule = {"protocol": "tcp", "ports": "22", "from": "0.0.0.0/0"}
    internal = {"protocol": "tcp", "ports": "80", "from": "10.0.0.0/16"}
    assert security_notes([AttrChange("ingress", [internal], [internal, rule])]) == [
        "SECURITY: opens ingress to 0.0.0.0/0 (ingress)"]
    assert security_notes([AttrChange("ingress", [rule], [rule, internal])]) == []
    assert security_notes([AttrChange("egress", [], [rule])]) == []
    assert security_notes([AttrChange("ingress", None, [{"from": "::/0"}])]) == [
        "SECURITY: opens ingress to ::/0 (ingress)"]
    nested = AttrChange("rules", None, {"ingress": [rule], "egress": [rule]})
    assert security_notes([nested]) == ["SECURITY: opens ingress to 0.0.0.0/0 (rules)"]


def test_star_actions_in_policy_diffs() -> None:
    statement = {"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}
    assert security_notes([AttrChange("inline_policies.p.Statement[x]", None, statement)]) == [
        "SECURITY: allows s3:* actions (inline_policies.p.Statement[x])"]
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    assert security_notes([AttrChange("inline_policies", {}, {"p": document})]) == [
        "SECURITY: allows * actions (inline_policies)"]
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    assert security_notes([AttrChange("policy.Statement[d]", None, deny)]) == []
    not_action = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    assert security_notes([AttrChange("policy.Statement[n]", None, not_action)]) == [
        "SECURITY: allows NotAction iam:* actions (policy.Statement[n])"]
    # removing a wide statement is not widening
    assert security_notes([AttrChange("policy.Statement[x]", statement, None)]) == []


def test_administrator_access_and_public_ips() -> None:
    assert security_notes([AttrChange("managed_policies", [], [ADMIN])]) == [
        "SECURITY: attaches AdministratorAccess (managed_policies)"]
    assert security_notes([AttrChange("managed_policies", [ADMIN], [ADMIN, "arn:x"])]) == []
    assert security_notes([AttrChange("map_public_ip", False, True)]) == [
        "SECURITY: assigns public IPv4 addresses on launch (map_public_ip)"]
    assert security_notes([AttrChange("map_public_ip", True, False)]) == []
    assert security_notes([AttrChange("spec", None, {"map_public_ip_on_launch": True})]) == [
        "SECURITY: assigns public IPv4 addresses on launch (spec)"]


def test_sensitive_entries_are_never_inspected_and_output_is_sorted() -> None:
    assert security_notes([AttrChange("ingress", None, [{"from": "0.0.0.0/0"}], sensitive=True)]) == []
    notes = security_notes([AttrChange("map_public_ip", None, True), AttrChange("managed_policies", [], [ADMIN])])
    assert notes == sorted(notes)


def test_cost_notes_are_recognised_by_their_wording() -> None:
    assert is_cost_note("cost: NAT gateway about $32.85/month")
    assert is_cost_note("interface endpoint: ~$7.30 per month per AZ, $ 14.60 / month in all")
    assert not is_cost_note("WARNING: key AKIA is unknown to the store")


def test_rules_keyed_by_their_own_text() -> None:
    # security groups keep rules as {"tcp 22 from 0.0.0.0/0": "description"}
    added = AttrChange("ingress.tcp 22 from 0.0.0.0/0", None, "ssh")
    assert security_notes([added]) == ["SECURITY: opens ingress to 0.0.0.0/0 (ingress.tcp 22 from 0.0.0.0/0)"]
    created = AttrChange("ingress", None, {"tcp 443 from ::/0": "", "tcp 80 from 10.0.0.0/16": ""})
    assert security_notes([created]) == ["SECURITY: opens ingress to ::/0 (ingress)"]
    described = AttrChange("ingress.tcp 22 from 0.0.0.0/0", "old", "new")
    assert security_notes([described]) == []  # the rule was already open


def test_kinds_own_security_notes_count_as_security_notes() -> None:
    from reconciler.plan.security import is_security_note, strip_security_prefix

    assert is_security_note("security: opens tcp 22 to the internet (0.0.0.0/0)")
    assert strip_security_prefix("security: opens tcp 22") == "opens tcp 22"
    assert not is_security_note("cost: ~$45/month")
