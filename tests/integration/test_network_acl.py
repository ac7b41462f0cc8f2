"""Network ACLs through the real CLI against moto server: the reconcile contract of `ec2.network_acl`.

Apply -> a second plan is empty and a second apply writes nothing; entries added,
changed or removed by hand, an association moved away and the ACL deleted by hand
are found by drift and healed by apply; the VPC's default ACL is never edited;
destroy moves the subnets back to the default ACL and leaves only it; a same-named
untagged ACL is never touched; `protect: true` survives removal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Moto, run_cli
from tests.faults.plugin import Faulty
from tests.integration.test_network import assert_converged, tag, write

STACK = "nacl"
MANIFEST = """\
version: 1
stack: nacl
region: us-east-1
network:
  vpcs:
    - name: main
      cidr: 10.41.0.0/16
      subnets:
        - {name: web, cidr: 10.41.0.0/24, az: us-east-1a}
        - {name: db, cidr: 10.41.1.0/24, az: us-east-1b}
      network_acls:
        - name: web
          subnets: [web]%(protect)s
          ingress:
            - {rule: 100, protocol: tcp, ports: "443", cidr: 0.0.0.0/0, action: allow}
            - {rule: 110, protocol: tcp, ports: "1024-65535", cidr: 10.0.0.0/8, action: allow}
            - {rule: 120, protocol: icmp, cidr: 10.41.0.0/16, action: allow}
          egress:
            - {rule: 100, protocol: all, cidr: 0.0.0.0/0, action: allow}
            - {rule: 200, protocol: udp, ports: "53", cidr: "2001:db8::/32", action: deny}
"""
ADDRESS = "vpc.main.nacl.web"


def manifest_text(protect: bool = False) -> str:
    return MANIFEST % {"protect": "\n          protect: true" if protect else ""}


class Acls:
    """The stack's VPC, subnets and network ACLs, read straight from moto."""

    def __init__(self, moto: Moto) -> None:
        self.ec2: Any = moto.client("ec2", "us-east-1")

    def vpc_id(self) -> str:
        vpcs = self.ec2.describe_vpcs(Filters=[{"Name": "tag:reconciler:stack", "Values": [STACK]}])["Vpcs"]
        return str(vpcs[0]["VpcId"])

    def subnets(self) -> dict[str, str]:
        found = self.ec2.describe_subnets(Filters=[{"Name": "tag:reconciler:stack", "Values": [STACK]}])["Subnets"]
        return {str(tag(s, "reconciler:address")).rsplit(".", 1)[1]: s["SubnetId"] for s in found}

    def in_vpc(self, vpc_id: str) -> list[dict[str, Any]]:
        return list(self.ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NetworkAcls"])

    def ours(self) -> dict[str, dict[str, Any]]:
        found = self.ec2.describe_network_acls()["NetworkAcls"]
        return {str(tag(a, "reconciler:address")): a for a in found if tag(a, "reconciler:stack") == STACK}

    def acl(self) -> dict[str, Any]:
        return self.ours()[ADDRESS]

    def default(self, vpc_id: str) -> dict[str, Any]:
        return next(a for a in self.in_vpc(vpc_id) if a["IsDefault"])

    def acl_of(self, subnet_id: str) -> str:
        found = self.ec2.describe_network_acls(
            Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])["NetworkAcls"]
        assert len(found) == 1, found
        return str(found[0]["NetworkAclId"])


def entries(acl: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted((e["Egress"], e["RuleNumber"], e["Protocol"], e["RuleAction"],
                   e.get("CidrBlock") or e.get("Ipv6CidrBlock"), json.dumps(e.get("PortRange")))
                  for e in acl["Entries"])


@pytest.fixture
def applied(cli: Any, moto: Moto, tmp_path: Path) -> tuple[Path, Acls]:
    manifest = write(tmp_path, manifest_text(), "nacl.yaml")
    result = cli("apply", str(manifest), "--auto-approve")
    assert result.code == 0, result.all
    return manifest, Acls(moto)


def test_apply_creates_the_acl_associates_its_subnet_and_a_second_apply_writes_nothing(
        cli: Any, faulty: Faulty, applied: tuple[Path, Acls]) -> None:
    manifest, acls = applied
    vpc_id, subnets = acls.vpc_id(), acls.subnets()
    acl = acls.acl()
    assert tag(acl, "reconciler:kind") == "ec2.network_acl" and tag(acl, "Name") == "nacl-main-nacl-web"
    assert acl["VpcId"] == vpc_id and not acl["IsDefault"]
    assert entries(acl) == sorted([
        (False, 100, "6", "allow", "0.0.0.0/0", json.dumps({"From": 443, "To": 443})),
        (False, 110, "6", "allow", "10.0.0.0/8", json.dumps({"From": 1024, "To": 65535})),
        (False, 120, "1", "allow", "10.41.0.0/16", "null"),
        (True, 100, "-1", "allow", "0.0.0.0/0", "null"),
        (True, 200, "17", "deny", "2001:db8::/32", json.dumps({"From": 53, "To": 53})),
    ])
    # the named subnet is on the ACL; the other stays on the VPC's default ACL, which is untouched
    default = acls.default(vpc_id)
    assert acls.acl_of(subnets["web"]) == acl["NetworkAclId"]
    assert acls.acl_of(subnets["db"]) == default["NetworkAclId"]
    assert entries(default) == sorted([(egress, rule, "-1", action, "0.0.0.0/0", "null")
                                       for egress in (False, True)
                                       for rule, action in ((100, "allow"), (32767, "deny"))])
    assert_converged(cli, manifest)
    # through the fault proxy (no faults): it sees every request, EC2's query protocol included
    second = run_cli(["apply", str(manifest), "--auto-approve"], faulty.env())
    assert second.code == 0 and "No changes" in second.out, second.all
    assert set(faulty.writes()) <= {"PutParameter", "DeleteParameter"}, faulty.writes()  # only the stack's lease
    assert faulty.operations()["DescribeNetworkAcls"] == 1, faulty.reads()  # one batched read


def _by_hand(acls: Acls, change: str) -> None:
    ec2, acl = acls.ec2, acls.acl()
    acl_id = acl["NetworkAclId"]
    if change == "entry_added":
        ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=90, Protocol="6", RuleAction="allow",
                                     Egress=False, CidrBlock="0.0.0.0/0", PortRange={"From": 22, "To": 22})
    elif change == "entry_changed":
        ec2.replace_network_acl_entry(NetworkAclId=acl_id, RuleNumber=100, Protocol="6", RuleAction="allow",
                                      Egress=False, CidrBlock="0.0.0.0/0", PortRange={"From": 80, "To": 80})
    elif change == "entry_removed":
        ec2.delete_network_acl_entry(NetworkAclId=acl_id, RuleNumber=200, Egress=True)
    elif change in ("subnet_moved", "acl_deleted"):
        default = acls.default(acl["VpcId"])["NetworkAclId"]
        for association in acl["Associations"]:
            ec2.replace_network_acl_association(AssociationId=association["NetworkAclAssociationId"],
                                                NetworkAclId=default)
        if change == "acl_deleted":
            ec2.delete_network_acl(NetworkAclId=acl_id)


@pytest.mark.parametrize("change, status, detail", [
    ("entry_added", "UNMANAGED", "entries.ingress 90"),
    ("entry_changed", "MODIFIED", "entries.ingress 100.ports"),
    ("entry_removed", "MODIFIED", "entries.egress 200"),
    ("subnet_moved", "MODIFIED", "subnets.vpc.main.subnet.web"),
    ("acl_deleted", "DELETED", ""),
])
def test_by_hand_changes_are_found_by_drift_and_healed_by_apply(cli: Any, applied: tuple[Path, Acls], change: str,
                                                               status: str, detail: str) -> None:
    manifest, acls = applied
    before = entries(acls.acl())
    _by_hand(acls, change)
    found = cli("drift", str(manifest), "--format", "json")
    assert found.code == 2, found.all
    report = {r["address"]: r for r in json.loads(found.out)["resources"]}
    assert report[ADDRESS]["status"] == status, report[ADDRESS]
    assert detail in json.dumps(report[ADDRESS]["diff"]) + report[ADDRESS]["detail"]
    assert sorted(a for a, r in report.items() if r["status"] != "IN_SYNC") == [ADDRESS]
    healed = cli("apply", str(manifest), "--auto-approve")
    assert healed.code == 0, healed.all
    assert cli("drift", str(manifest)).code == 0
    acl = acls.acl()
    assert entries(acl) == before
    assert acls.acl_of(acls.subnets()["web"]) == acl["NetworkAclId"]


def test_a_subnet_dropped_from_the_list_goes_back_to_the_default_acl(cli: Any, applied: tuple[Path, Acls]) -> None:
    manifest, acls = applied
    manifest.write_text(manifest_text().replace("subnets: [web]", "subnets: [db]"))
    moved = cli("apply", str(manifest), "--auto-approve")
    assert moved.code == 0, moved.all
    subnets, acl = acls.subnets(), acls.acl()
    assert acls.acl_of(subnets["db"]) == acl["NetworkAclId"]
    assert acls.acl_of(subnets["web"]) == acls.default(acls.vpc_id())["NetworkAclId"]
    assert_converged(cli, manifest)


def test_destroy_leaves_only_the_default_acl_and_never_touches_a_same_named_untagged_one(
        cli: Any, faulty: Faulty, applied: tuple[Path, Acls]) -> None:
    manifest, acls = applied
    vpc_id, subnets = acls.vpc_id(), acls.subnets()
    default = acls.default(vpc_id)
    bystander = acls.ec2.create_network_acl(VpcId=vpc_id, TagSpecifications=[
        {"ResourceType": "network-acl", "Tags": [{"Key": "Name", "Value": "nacl-main-nacl-web"}]}])["NetworkAcl"]
    acls.ec2.create_network_acl_entry(NetworkAclId=bystander["NetworkAclId"], RuleNumber=100, Protocol="-1",
                                      RuleAction="deny", Egress=False, CidrBlock="0.0.0.0/0")
    assert_converged(cli, manifest)  # neither an orphan nor a conflict: it is not ours
    faulty.clear()
    gone = run_cli(["destroy", str(manifest), "--auto-approve"], faulty.env())
    assert gone.code == 0, gone.all
    # AWS's order, which moto does not enforce: the subnet leaves the ACL before it is deleted, and the ACL
    # goes before the VPC (AWS refuses DeleteVpc while a non-default ACL is in it)
    writes = faulty.writes()
    assert writes.count("DeleteNetworkAcl") == 1, writes
    assert writes.index("ReplaceNetworkAclAssociation") < writes.index("DeleteNetworkAcl") < writes.index(
        "DeleteVpc"), writes
    assert acls.ours() == {}
    left = {a["NetworkAclId"]: a for a in acls.in_vpc(vpc_id)}
    assert sorted(left) == sorted([default["NetworkAclId"], bystander["NetworkAclId"]])
    assert entries(left[default["NetworkAclId"]]) == entries(default)
    assert [(e["RuleNumber"], e["RuleAction"]) for e in left[bystander["NetworkAclId"]]["Entries"]] == [(100, "deny")]
    assert left[bystander["NetworkAclId"]]["Associations"] == []
    # both subnets are gone; an association moto keeps for a deleted subnet is on the default ACL
    for subnet_id in subnets.values():
        holders = acls.ec2.describe_network_acls(
            Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])["NetworkAcls"]
        assert [h["NetworkAclId"] for h in holders] in ([], [default["NetworkAclId"]]), holders


def test_a_protected_acl_survives_its_removal_from_the_manifest(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path, manifest_text(protect=True), "nacl.yaml")
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    acls = Acls(moto)
    kept = acls.acl()["NetworkAclId"]
    assert tag(acls.acl(), "reconciler:protect") == "true"
    start = manifest_text(protect=True).index("      network_acls:")
    manifest.write_text(manifest_text(protect=True)[:start])
    refused = cli("apply", str(manifest), "--auto-approve")
    assert refused.code == 1 and ADDRESS in refused.all and "protected" in refused.all, refused.all
    assert acls.acl()["NetworkAclId"] == kept
    assert acls.acl_of(acls.subnets()["web"]) == kept


def test_a_replaced_subnet_is_associated_with_its_acl_again(cli: Any, applied: tuple[Path, Acls]) -> None:
    """The new subnet would start on the default ACL: the ACL carries its subnets' identity, so it updates."""
    manifest, acls = applied
    old = acls.subnets()["web"]
    manifest.write_text(manifest_text().replace("10.41.0.0/24", "10.41.4.0/24"))
    plan = cli("plan", str(manifest), "--format", "json", "--detailed-exitcode")
    assert plan.code == 2, plan.all
    actions = {c["address"]: c["action"] for c in json.loads(plan.out)["changes"] if c["action"] != "noop"}
    assert actions == {"vpc.main.subnet.web": "replace", ADDRESS: "update",
                       "vpc.main.route_table.private": "update"}, actions
    applied_again = cli("apply", str(manifest), "--auto-approve")
    assert applied_again.code == 0, applied_again.all
    new = acls.subnets()["web"]
    assert new != old and acls.acl_of(new) == acls.acl()["NetworkAclId"]
    assert_converged(cli, manifest)


SWAP = """\
version: 1
stack: nacl
region: us-east-1
network:
  vpcs:
    - name: main
      cidr: 10.41.0.0/16
      subnets:
        - {name: web, cidr: 10.41.0.0/24, az: us-east-1a}
        - {name: db, cidr: 10.41.1.0/24, az: us-east-1b}
        - {name: app, cidr: 10.41.2.0/24, az: us-east-1c}
      network_acls:
        - name: x
          subnets: [%(x)s]
          egress: [{rule: 100, protocol: all, cidr: 0.0.0.0/0, action: allow}]
        - name: y
          subnets: [%(y)s]
          egress: [{rule: 100, protocol: all, cidr: 0.0.0.0/0, action: deny}]
"""


def test_subnets_moved_between_two_acls_in_one_apply_end_on_the_new_one(cli: Any, moto: Moto,
                                                                          tmp_path: Path) -> None:
    """One subnet leaving x for y is x's update and y's at once: neither may act on an association id
    the other just replaced (AWS: InvalidAssociationID.NotFound, which left the subnet on the default
    ACL; moto: a server error), whatever order the two updates run in."""
    acls = Acls(moto)
    manifest = write(tmp_path, SWAP % {"x": "web, db", "y": "app"}, "swap.yaml")
    first = cli("apply", str(manifest), "--auto-approve")
    assert first.code == 0, first.all
    for x, y in (("app", "web, db"), ("web, app", "db"), ("db", "web, app")):
        manifest.write_text(SWAP % {"x": x, "y": y})
        moved = cli("apply", str(manifest), "--auto-approve")
        assert moved.code == 0, moved.all
        subnets, ours = acls.subnets(), acls.ours()
        for name, acl in (("x", x), ("y", y)):
            for subnet in acl.split(", "):
                assert acls.acl_of(subnets[subnet]) == ours[f"vpc.main.nacl.{name}"]["NetworkAclId"], (x, y, subnet)
        assert_converged(cli, manifest)
