"""Network ACLs on literal data: expansion, compare-by-meaning, bad input, findings, drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.canonical import acl_entry
from reconciler.errors import ManifestError
from reconciler.kinds import all_kinds
from reconciler.kinds.ec2.network_acl import _entry_params, associations_of, entries_of
from reconciler.manifest.expand import expand
from reconciler.manifest.model import DesiredResource
from reconciler.manifest.validate import load_manifest
from reconciler.plan.build import build_plan
from reconciler.plan.drift import DriftStatus, build_drift
from reconciler.plan.model import Action, LiveResource

HEAD = """\
version: 1
stack: acls
region: us-east-1
network:
  vpcs:
    - name: main
      cidr: 10.9.0.0/16
      subnets:
        - {name: web, cidr: 10.9.0.0/24, az: us-east-1a}
        - {name: db, cidr: 10.9.1.0/24, az: us-east-1b}
"""
WEB = HEAD + """\
      network_acls:
        - name: web
          subnets: [web]
          tags: {team: edge}
          ingress:
            - {rule: 100, protocol: tcp, ports: "443", cidr: 0.0.0.0/0, action: allow}
            - {rule: 110, protocol: tcp, ports: "1024-65535", cidr: 10.0.0.0/8, action: allow}
            - {rule: 120, protocol: "50", cidr: "2001:db8::/32", action: deny}
          egress:
            - {rule: 100, protocol: all, cidr: 0.0.0.0/0, action: allow}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path


def acls(tmp_path: Path, text: str = WEB) -> dict[str, DesiredResource]:
    manifest, _ = load_manifest(write(tmp_path, text))
    return {r.address: r for r in expand(manifest) if r.kind == "ec2.network_acl"}


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_manifest(write(tmp_path, text))
    return [str(p).removeprefix(f"{p.file}:") for p in caught.value.problems]


# -- expansion ----------------------------------------------------------------


def test_an_acl_expands_to_one_resource_with_canonical_entries_and_its_subnets(tmp_path: Path) -> None:
    found = acls(tmp_path)
    assert list(found) == ["vpc.main.nacl.web"]
    acl = found["vpc.main.nacl.web"]
    assert acl.depends_on == ("vpc.main", "vpc.main.subnet.web")
    assert acl.spec["vpc"] == "vpc.main" and acl.spec["vpc_cidr"] == "10.9.0.0/16"
    assert acl.spec["entries"] == {
        "egress 100": {"protocol": "all", "cidr": "0.0.0.0/0", "action": "allow"},
        "ingress 100": {"protocol": "tcp", "ports": "443", "cidr": "0.0.0.0/0", "action": "allow"},
        "ingress 110": {"protocol": "tcp", "ports": "1024-65535", "cidr": "10.0.0.0/8", "action": "allow"},
        "ingress 120": {"protocol": "50", "cidr": "2001:db8::/32", "action": "deny"},
    }
    assert acl.spec["subnets"] == {"vpc.main.subnet.web": {"az": "us-east-1a", "cidr": "10.9.0.0/24"}}
    tags = acl.spec["tags"]
    assert tags["Name"] == "acls-main-nacl-web" and tags["team"] == "edge"
    assert tags["reconciler:address"] == "vpc.main.nacl.web" and tags["reconciler:kind"] == "ec2.network_acl"
    assert tags["reconciler:protect"] == "false" and acl.protect is False


def test_no_network_acls_means_no_acl_resource_and_the_default_acl_is_never_described(tmp_path: Path) -> None:
    manifest, _ = load_manifest(write(tmp_path, HEAD))
    assert [r for r in expand(manifest) if r.kind == "ec2.network_acl"] == []


def test_protect_is_recorded_on_the_acl(tmp_path: Path) -> None:
    found = acls(tmp_path, WEB.replace("          tags: {team: edge}\n", "          protect: true\n"))
    acl = found["vpc.main.nacl.web"]
    assert acl.protect is True and acl.spec["tags"]["reconciler:protect"] == "true"


@pytest.mark.parametrize("written, aws", [
    (("tcp", 22, 22, "0.0.0.0/0", "allow"), ("6", 22, 22, "0.0.0.0/0", "allow")),
    (("udp", 53, 53, "10.0.0.0/8", "deny"), ("17", 53, 53, "10.0.0.0/8", "deny")),
    (("all", None, None, "0.0.0.0/0", "allow"), ("-1", None, None, "0.0.0.0/0", "allow")),
    (("icmp", None, None, "10.0.0.0/8", "allow"), ("1", None, None, "10.0.0.0/8", "allow")),
    (("50", None, None, "2001:DB8:0::/32", "deny"), ("50", None, None, "2001:db8::/32", "deny")),
])
def test_the_manifest_spelling_and_aws_answer_meet_in_one_form(written: tuple[Any, ...],
                                                               aws: tuple[Any, ...]) -> None:
    assert acl_entry(*written) == acl_entry(*aws)


def test_entries_sent_to_aws_read_back_as_the_spec(tmp_path: Path) -> None:
    """What create/replace send, echoed the way DescribeNetworkAcls answers, is the spec again."""
    spec = acls(tmp_path)["vpc.main.nacl.web"].spec["entries"]
    echoed = []
    for key, entry in spec.items():
        params = _entry_params(key, entry)
        echoed.append({k: v for k, v in params.items() if k != "IcmpTypeCode"})
    # AWS's own final entries are never part of it
    echoed += [{"RuleNumber": 32767, "Egress": e, "Protocol": "-1", "RuleAction": "deny", "CidrBlock": "0.0.0.0/0"}
               for e in (True, False)]
    assert entries_of({"Entries": echoed}) == spec
    assert _entry_params("ingress 5", {"protocol": "icmp", "cidr": "10.0.0.0/8", "action": "allow"})[
        "IcmpTypeCode"] == {"Type": -1, "Code": -1}


@pytest.mark.parametrize("protocol, cidr", [("icmp", "10.0.0.0/8"), ("58", "2001:db8::/32"), ("58", "10.0.0.0/8")])
def test_icmp_and_icmpv6_entries_say_every_type_and_code(protocol: str, cidr: str) -> None:
    """AWS refuses protocol 1, and 58 with an IPv6 CIDR, without IcmpTypeCode (moto accepts it)."""
    params = _entry_params("ingress 5", {"protocol": protocol, "cidr": cidr, "action": "allow"})
    assert params["IcmpTypeCode"] == {"Type": -1, "Code": -1}
    assert "PortRange" not in params


def test_associations_are_read_per_subnet() -> None:
    acl = {"Associations": [{"NetworkAclAssociationId": "aclassoc-1", "SubnetId": "subnet-1"},
                            {"NetworkAclAssociationId": "aclassoc-2", "SubnetId": "subnet-2"}]}
    assert associations_of(acl) == {"subnet-1": "aclassoc-1", "subnet-2": "aclassoc-2"}


# -- bad input: exit 3 with file:line:col, no AWS call ------------------------


def _with(entries: str, subnets: str = "[web]", extra: str = "") -> str:
    return HEAD + f"""\
      network_acls:
        - name: web
          subnets: {subnets}
          ingress:
{entries}{extra}"""


@pytest.mark.parametrize("entries, expected", [
    ('            - {rule: 100, protocol: tcp, ports: "443", cidr: 10.0.0.0/8, action: allow}\n'
     '            - {rule: 100, protocol: tcp, ports: "80", cidr: 10.0.0.0/8, action: allow}\n',
     "16:22: $.network.vpcs[0].network_acls[0].ingress[1].rule: duplicate ingress rule 100 (also at index 0)"),
    ('            - {rule: 0, protocol: all, cidr: 10.0.0.0/8, action: allow}\n',
     "15:22: $.network.vpcs[0].network_acls[0].ingress[0].rule: rule number 0 is outside 1..32766 "
     "(rule numbers start at 1)"),
    ('            - {rule: 32767, protocol: all, cidr: 10.0.0.0/8, action: allow}\n',
     "15:22: $.network.vpcs[0].network_acls[0].ingress[0].rule: rule number 32767 is outside 1..32766 "
     "(32767 and above belong to AWS's own default entry)"),
    ('            - {rule: 1, protocol: all, cidr: 10.0.0.1/8, action: allow}\n',
     "15:46: $.network.vpcs[0].network_acls[0].ingress[0].cidr: '10.0.0.1/8' is not a valid CIDR"),
    ('            - {rule: 1, protocol: all, cidr: nowhere, action: allow}\n',
     "$.network.vpcs[0].network_acls[0].ingress[0].cidr: 'nowhere' is not a valid CIDR"),
    ('            - {rule: 1, protocol: tcp, cidr: 10.0.0.0/8, action: allow}\n',
     "15:15: $.network.vpcs[0].network_acls[0].ingress[0]: tcp entries need `ports`"),
    ('            - {rule: 1, protocol: all, ports: "80", cidr: 10.0.0.0/8, action: allow}\n',
     "$.network.vpcs[0].network_acls[0].ingress[0].ports: protocol all takes no ports"),
    ('            - {rule: 1, protocol: tcp, ports: "90-80", cidr: 10.0.0.0/8, action: allow}\n',
     "$.network.vpcs[0].network_acls[0].ingress[0].ports: port range 90-80 is invalid"),
    ('            - {rule: 1, protocol: "300", cidr: 10.0.0.0/8, action: allow}\n',
     "$.network.vpcs[0].network_acls[0].ingress[0].protocol: protocol 300 is not an IP protocol number"),
])
def test_bad_entries_are_refused_at_their_position(tmp_path: Path, entries: str, expected: str) -> None:
    found = problems(tmp_path, _with(entries))
    assert len(found) == 1 and expected in found[0], found


def test_the_same_rule_number_in_both_directions_is_fine(tmp_path: Path) -> None:
    entry = '            - {rule: 100, protocol: all, cidr: 10.0.0.0/8, action: allow}\n'
    load_manifest(write(tmp_path, _with(entry, extra="          egress:\n" + entry)))


def test_unknown_subnets_and_a_subnet_in_two_acls_are_refused(tmp_path: Path) -> None:
    text = HEAD + """\
      network_acls:
        - name: web
          subnets: [web, nope]
        - name: other
          subnets: [web, db]
        - name: web
"""
    found = problems(tmp_path, text)
    assert sorted(found) == sorted([
        "13:26: $.network.vpcs[0].network_acls[0].subnets[1]: unknown subnet 'nope' (name a subnet of this VPC)",
        "15:21: $.network.vpcs[0].network_acls[1].subnets[0]: subnet 'web' is already in network ACL 'web' "
        "(a subnet is associated with exactly one network ACL)",
        "16:17: $.network.vpcs[0].network_acls[2].name: duplicate network ACL 'web' (also at index 0) "
        "(network ACL names must be unique in the VPC)",
    ]), found


def test_the_schema_refuses_unknown_keys_and_actions(tmp_path: Path) -> None:
    found = problems(tmp_path, _with('            - {rule: 1, protocol: all, cidr: 10.0.0.0/8, action: permit}\n'))
    assert len(found) == 1 and "ingress[0].action" in found[0], found


# -- findings -----------------------------------------------------------------


def test_ssh_from_anywhere_is_a_high_finding(tmp_path: Path) -> None:
    found = problems(tmp_path, _with('            - {rule: 100, protocol: tcp, ports: "22", cidr: 0.0.0.0/0, '
                                     'action: allow}\n'))
    assert len(found) == 1 and "RC-NET-001 network ACL web lets SSH in from 0.0.0.0/0" in found[0], found


@pytest.mark.parametrize("entries, flagged", [
    ('            - {rule: 100, protocol: all, cidr: "::/0", action: allow}\n', "SSH/RDP"),
    ('            - {rule: 100, protocol: "6", ports: "3000-4000", cidr: 0.0.0.0/0, action: allow}\n', "RDP"),
    ('            - {rule: 100, protocol: tcp, ports: "22", cidr: 10.0.0.0/8, action: allow}\n', None),
    ('            - {rule: 100, protocol: udp, ports: "22", cidr: 0.0.0.0/0, action: allow}\n', None),
    # a lower-numbered deny of the same CIDR decides first
    ('            - {rule: 200, protocol: all, cidr: 0.0.0.0/0, action: allow}\n'
     '            - {rule: 100, protocol: tcp, ports: "0-65535", cidr: 0.0.0.0/0, action: deny}\n', None),
    # ... but a deny of another CIDR does not
    ('            - {rule: 200, protocol: tcp, ports: "22", cidr: 0.0.0.0/0, action: allow}\n'
     '            - {rule: 100, protocol: tcp, ports: "22", cidr: "::/0", action: deny}\n', "SSH"),
])
def test_findings_follow_evaluation_order(tmp_path: Path, entries: str, flagged: str | None) -> None:
    text = _with(entries, extra='waivers: {RC-NET-001: "reviewed"}\n')
    _, findings = load_manifest(write(tmp_path, text))
    got = [f for f in findings if f.rule.id == "RC-NET-001"]
    if flagged is None:
        assert got == []
    else:
        assert len(got) == 1 and f"lets {flagged} in" in got[0].detail and got[0].waived == "reviewed", got


# -- plan and drift -----------------------------------------------------------


def live_of(desired: DesiredResource, **over: Any) -> LiveResource:
    attrs = {**desired.spec, **over}
    return LiveResource(desired.address, desired.kind, "acl-1", attrs, depends_on=desired.depends_on)


def _drift(desired: DesiredResource, live: LiveResource) -> tuple[Action, DriftStatus, list[str]]:
    plan = build_plan(stack="acls", region="us-east-1", account="123456789012", manifest_sha256="0" * 64,
                      desired=[desired], live={live.address: live}, kinds=all_kinds())
    report = build_drift(plan, all_kinds(), {live.address: live})
    change = next(c for c in plan.changes if c.address == desired.address)
    entry = next(e for e in report.entries if e.address == desired.address)
    return change.action, entry.status, [d.path for d in entry.diff]


def test_an_entry_added_by_hand_is_unmanaged_and_a_changed_one_modified(tmp_path: Path) -> None:
    acl = acls(tmp_path)["vpc.main.nacl.web"]
    assert _drift(acl, live_of(acl))[:2] == (Action.NOOP, DriftStatus.IN_SYNC)
    added = {**acl.spec["entries"], "ingress 90": {"protocol": "tcp", "ports": "22", "cidr": "0.0.0.0/0",
                                                   "action": "allow"}}
    assert _drift(acl, live_of(acl, entries=added)) == (Action.UPDATE, DriftStatus.UNMANAGED, ["entries.ingress 90"])
    changed = {**acl.spec["entries"], "ingress 100": {**acl.spec["entries"]["ingress 100"], "cidr": "1.2.3.0/24"}}
    assert _drift(acl, live_of(acl, entries=changed)) == (Action.UPDATE, DriftStatus.MODIFIED,
                                                         ["entries.ingress 100.cidr"])


def test_a_subnet_moved_away_by_hand_is_modified_and_a_vpc_change_replaces(tmp_path: Path) -> None:
    acl = acls(tmp_path)["vpc.main.nacl.web"]
    action, state, paths = _drift(acl, live_of(acl, subnets={}))
    assert (action, state, paths) == (Action.UPDATE, DriftStatus.MODIFIED, ["subnets.vpc.main.subnet.web"])
    assert _drift(acl, live_of(acl, vpc_cidr="10.8.0.0/16"))[0] is Action.REPLACE


def test_a_replaced_subnet_shows_as_an_association_to_remake(tmp_path: Path) -> None:
    acl = acls(tmp_path)["vpc.main.nacl.web"]
    moved = {"vpc.main.subnet.web": {"az": "us-east-1a", "cidr": "10.9.5.0/24"}}
    action, _, paths = _drift(acl, live_of(acl, subnets=moved))
    assert action is Action.UPDATE and paths == ["subnets.vpc.main.subnet.web.cidr"]
