"""`protect: true` on every kind, through the real CLI against moto server.

One stack with one protected resource of every kind in the registry is applied;
then (1) every resource is dropped from the manifest and (2) the stack is
destroyed. Both plans must mark every address of every kind BLOCKED, both applies
must refuse, and every resource must still be there. The cases are parametrised
over `reconciler.kinds.all_kinds()`: a kind added without a case here fails
`test_every_kind_has_a_protect_case`, and a kind whose read does not report the
protection fails its own `test_protected_*` case.

How each kind is protected (`PROTECTED_BY`):
- taggable kinds read `reconciler:protect=true` from their own tag, IAM groups
  (not taggable) from their path `/reconciler/<stack>/protected/`;
- a user's access keys and their stored secret, and the derived network resources
  (internet gateway, Elastic IP, NAT gateway or instance, route tables), have no
  `protect` of their own: they are parts of a protected user or VPC, and a
  protected resource that leaves keeps its parts (`plan.build._protected_owner`);
- `image` has no `protect`, because the kind never deletes an image: a tag dropped
  from the manifest is not even read, images go only with their repository (which
  `protect` and the holds-images guard keep) or by its lifecycle policy. The case
  asserts exactly that: an image in the protected repository survives both.
  The image is put into ECR directly (no Docker build needed to prove a non-delete).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.kinds import all_kinds
from tests.conftest import CliResult, Moto, run_cli
from tests.faults.plugin import Faulty
from tests.faults.proxy import Fault, rule

STACK = "guarded"
MANIFEST = """\
version: 1
stack: guarded
region: us-east-1
iam:
  groups:
    - {name: keepers, protect: true}
  users:
    - name: keeper
      protect: true
      groups: [keepers]
      access_keys:
        count: 1
        store: {secretsmanager: guarded/keeper}
ecr:
  repositories:
    - {name: kept, protect: true, force_delete: true}
network:
  vpcs:
    - name: gw
      cidr: 10.61.0.0/16
      protect: true
      subnets:
        - {name: pub, cidr: 10.61.0.0/24, az: us-east-1a, public: true, protect: true}
        - {name: priv, cidr: 10.61.10.0/24, az: us-east-1a, protect: true}
      nat: {mode: gateway}
      endpoints:
        - {service: s3, protect: true}
      security_groups:
        - name: app
          protect: true
          ingress: [{protocol: tcp, ports: "8080", from: "10.61.0.0/16"}]
      network_acls:
        - name: app
          protect: true
          subnets: [priv]
          ingress: [{rule: 100, protocol: tcp, ports: "8080", cidr: "10.61.0.0/16", action: allow}]
    - name: inst
      cidr: 10.62.0.0/16
      protect: true
      subnets:
        - {name: pub, cidr: 10.62.0.0/24, az: us-east-1a, public: true}
        - {name: priv, cidr: 10.62.10.0/24, az: us-east-1a}
      nat: {mode: instance}
"""
EMPTY = "version: 1\nstack: guarded\nregion: us-east-1\n"

PROTECTED_BY = {
    "iam.group": "its path /reconciler/guarded/protected/ (groups cannot be tagged)",
    "iam.user": "its tag reconciler:protect=true",
    "iam.access_key": "being part of the protected user iam.user.keeper",
    "ecr.repository": "its tag reconciler:protect=true (force_delete: true, so protect alone holds it)",
    "ecr.image": "nothing: the kind never deletes an image (see the module docstring)",
    "ec2.vpc": "its tag reconciler:protect=true",
    "ec2.subnet": "its tag, or being part of a protected VPC",
    "ec2.security_group": "its tag, or being part of a protected VPC (the NAT instance's group)",
    "ec2.vpc_endpoint": "its tag reconciler:protect=true",
    "ec2.internet_gateway": "being part of a protected VPC (derived: no protect of its own)",
    "ec2.elastic_ip": "being part of a protected VPC (derived: no protect of its own)",
    "ec2.nat_gateway": "being part of a protected VPC (derived: no protect of its own)",
    "ec2.nat_instance": "being part of a protected VPC (derived: no protect of its own)",
    "ec2.route_table": "being part of a protected VPC (derived: no protect of its own)",
    "ec2.network_acl": "its tag reconciler:protect=true",
}
IMAGE_TAG = "1.0"


@dataclass
class Outcome:
    """What the protected stack went through, shared by every kind's case."""

    moto: Moto
    applied: dict[str, str]  # address -> kind, from the plan of the first apply
    removal_plan: dict[str, dict[str, Any]]  # address -> change
    removal: CliResult
    destroy_plan: dict[str, dict[str, Any]]
    destroy: CliResult
    remaining: dict[str, set[str]]  # kind -> addresses still in the account after both attempts


def _plan(moto: Moto, manifest: Path, *extra: str) -> dict[str, dict[str, Any]]:
    result = run_cli(["plan", str(manifest), "--format", "json", *extra], moto.env())
    assert result.code in (0, 2), result.all
    return {c["address"]: c for c in json.loads(result.out)["changes"]}


def _text_changes(text: str) -> dict[str, dict[str, Any]]:
    """The changes of a text plan: `- ADDRESS (LIVE-ID, KIND) will be DELETED  # why` (the id only where it
    is not the address's own name), then `    X BLOCKED: ...`."""
    changes: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        head = re.match(r"^(-/\+|[-+~]) (\S+) \((?:[^,()]+, )?(\S+)\) ", line)
        if head:
            action = {"-": "delete", "+": "create", "~": "update", "-/+": "replace"}[head.group(1)]
            current = changes[head.group(2)] = {"address": head.group(2), "kind": head.group(3), "action": action}
        elif current is not None and line.startswith("    X BLOCKED: "):
            current["blocked"] = line[len("    X BLOCKED: "):]
        elif not line.startswith("    "):
            current = None
    return changes


def _put_image(moto: Moto) -> None:
    """An image in the protected repository, as ECR holds it (config and one layer)."""
    ecr: Any = moto.client("ecr")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                           "digest": "sha256:" + "a" * 64},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 3,
                            "digest": "sha256:" + "b" * 64}]}
    ecr.put_image(repositoryName="kept", imageManifest=json.dumps(manifest), imageTag=IMAGE_TAG)


@pytest.fixture(scope="module")
def outcome(moto_server: Moto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    moto_server.reset()
    tmp = tmp_path_factory.mktemp("protect")
    full, empty = tmp / "guarded.yaml", tmp / "empty.yaml"
    full.write_text(MANIFEST)
    empty.write_text(EMPTY)
    applied = {a: c["kind"] for a, c in _plan(moto_server, full).items()}
    first = run_cli(["apply", str(full), "--auto-approve"], moto_server.env())
    assert first.code == 0, first.all
    _put_image(moto_server)
    removal_plan = _plan(moto_server, empty)
    removal = run_cli(["apply", str(empty), "--auto-approve"], moto_server.env())
    destroy = run_cli(["destroy", str(full), "--auto-approve"], moto_server.env())
    destroy_plan = _text_changes(destroy.out)  # `destroy` shows its plan as text (there is no plan --destroy)
    # read now, so no other test's reset of the shared server can come in between
    remaining = {kind: found(moto_server) for kind, found in FOUND.items()}
    yield Outcome(moto_server, applied, removal_plan, removal, destroy_plan, destroy, remaining)
    moto_server.reset()


# -- what is still there, per kind: the set of addresses found in the account ----------------

def _tag(item: dict[str, Any], key: str) -> str | None:
    return {t["Key"]: t["Value"] for t in item.get("Tags") or item.get("TagSet") or []}.get(key)


def _ec2(operation: str, key: str, alive: Callable[[dict[str, Any]], bool] = lambda i: True,
         ) -> Callable[[Moto], set[str]]:
    def found(moto: Moto) -> set[str]:
        ec2: Any = moto.client("ec2")
        items: list[dict[str, Any]] = getattr(ec2, operation)()[key]
        if operation == "describe_instances":
            items = [i for r in items for i in r["Instances"]]
        return {str(_tag(i, "reconciler:address")) for i in items if _tag(i, "reconciler:stack") == STACK and alive(i)}
    return found


def _users(moto: Moto) -> set[str]:
    iam: Any = moto.client("iam")
    return {f"iam.user.{u['UserName']}" for u in iam.list_users()["Users"]}


def _groups(moto: Moto) -> set[str]:
    iam: Any = moto.client("iam")
    return {f"iam.group.{g['GroupName']}" for g in iam.list_groups()["Groups"]}


def _access_keys(moto: Moto) -> set[str]:
    """A user's keys count as there only if the user still has its key and the store still holds it."""
    iam: Any = moto.client("iam")
    sm: Any = moto.client("secretsmanager")
    keys = {k["AccessKeyId"] for k in iam.list_access_keys(UserName="keeper")["AccessKeyMetadata"]}
    try:
        stored = json.loads(sm.get_secret_value(SecretId="guarded/keeper")["SecretString"])
    except sm.exceptions.ResourceNotFoundException:
        return set()
    return {"iam.user.keeper.access_keys"} if stored["AccessKeyId"] in keys else set()


def _repositories(moto: Moto) -> set[str]:
    ecr: Any = moto.client("ecr")
    return {f"ecr.repository.{r['repositoryName']}" for r in ecr.describe_repositories()["repositories"]}


def _images(moto: Moto) -> set[str]:
    ecr: Any = moto.client("ecr")
    try:
        ids = ecr.list_images(repositoryName="kept")["imageIds"]
    except ecr.exceptions.RepositoryNotFoundException:
        return set()
    return {f"image.kept:{i['imageTag']}" for i in ids if i.get("imageTag")}


FOUND: dict[str, Callable[[Moto], set[str]]] = {
    "iam.group": _groups,
    "iam.user": _users,
    "iam.access_key": _access_keys,
    "ecr.repository": _repositories,
    "ecr.image": _images,
    "ec2.vpc": _ec2("describe_vpcs", "Vpcs"),
    "ec2.subnet": _ec2("describe_subnets", "Subnets"),
    "ec2.security_group": _ec2("describe_security_groups", "SecurityGroups"),
    "ec2.vpc_endpoint": _ec2("describe_vpc_endpoints", "VpcEndpoints", lambda e: e["State"] != "deleted"),
    "ec2.internet_gateway": _ec2("describe_internet_gateways", "InternetGateways"),
    "ec2.elastic_ip": _ec2("describe_addresses", "Addresses"),
    "ec2.nat_gateway": _ec2("describe_nat_gateways", "NatGateways", lambda n: n["State"] == "available"),
    "ec2.nat_instance": _ec2("describe_instances", "Reservations",
                             lambda i: i["State"]["Name"] not in ("shutting-down", "terminated")),
    "ec2.route_table": _ec2("describe_route_tables", "RouteTables"),
    "ec2.network_acl": _ec2("describe_network_acls", "NetworkAcls"),
}


def test_every_kind_has_a_protect_case() -> None:
    """A new kind must say how it is protected and how the test sees that it survived."""
    assert sorted(PROTECTED_BY) == sorted(all_kinds()) == sorted(FOUND)


def test_the_removal_and_the_destroy_are_refused_as_a_whole(outcome: Outcome) -> None:
    for result in (outcome.removal, outcome.destroy):
        assert result.code == 1, result.all
        assert "blocked changes; nothing was applied" in result.err, result.all


@pytest.mark.parametrize("kind", sorted(all_kinds()))
def test_protected_resources_of_every_kind_survive_removal_and_destroy(outcome: Outcome, kind: str) -> None:
    assert kind in PROTECTED_BY, f"kind {kind} has no protect case in tests/integration/test_protect.py"
    if kind == "ecr.image":
        # never deleted by the kind, so never planned: not even read once dropped from the manifest
        assert f"image.kept:{IMAGE_TAG}" not in outcome.removal_plan
        assert not [a for a in outcome.destroy_plan if a.startswith("image.")]
        assert outcome.remaining[kind] == {f"image.kept:{IMAGE_TAG}"}, "the image left with nothing deleting it"
        return
    addresses = {a for a, k in outcome.applied.items() if k == kind}
    assert addresses, f"the protected stack has no {kind}: add one to MANIFEST"
    for name, plan in (("removal", outcome.removal_plan), ("destroy", outcome.destroy_plan)):
        for address in sorted(addresses):
            change = plan.get(address)
            assert change is not None and change["action"] == "delete", (name, address, change)
            assert change.get("blocked"), f"{name}: {address} ({kind}) is not refused: {change}"
    assert addresses <= outcome.remaining[kind], f"{kind}: protected resources were deleted"


IAM_ONLY = """\
version: 1
stack: iamguard
region: us-east-1
iam:
  groups:
    - {name: guards, protect: %(protect)s}
  users:
    - name: guard
      protect: %(protect)s
      groups: [guards]
      access_keys:
        count: 1
        store: {ssm: /iamguard/guard/key}
"""


def test_a_protected_user_keeps_its_keys_and_secret_through_destroy_and_removing_protect_lifts_it(
        cli: Any, moto: Moto, faulty: Faulty, tmp_path: Path) -> None:
    """The reported loss: `destroy` deleted a protected user, its key and its stored secret."""
    moved = rule(Fault.LATENCY, "UpdateGroup", body_contains="NewPath=%2Freconciler%2Fiamguard%2F")
    wrong = rule(Fault.LATENCY, "UpdateGroup", body_contains="protected")
    faulty.add(moved, wrong)
    manifest = tmp_path / "iam.yaml"
    manifest.write_text(IAM_ONLY % {"protect": "true"})
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    iam: Any = moto.client("iam")
    ssm: Any = moto.client("ssm")
    assert iam.get_group(GroupName="guards")["Group"]["Path"] == "/reconciler/iamguard/protected/"
    [key] = iam.list_access_keys(UserName="guard")["AccessKeyMetadata"]

    empty = tmp_path / "empty.yaml"
    empty.write_text("version: 1\nstack: iamguard\nregion: us-east-1\n")
    for args in (("destroy", str(manifest)), ("apply", str(empty))):
        attempt = cli(*args, "--auto-approve")
        assert attempt.code == 1, attempt.all
        for address in ("iam.user.guard", "iam.user.guard.access_keys", "iam.group.guards"):
            assert address in attempt.err, attempt.all  # named among the blocked changes
        assert iam.get_user(UserName="guard")["User"]["UserName"] == "guard"
        assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName="guard")["AccessKeyMetadata"]] == \
            [key["AccessKeyId"]]
        value = json.loads(ssm.get_parameter(Name="/iamguard/guard/key", WithDecryption=True)["Parameter"]["Value"])
        assert value["AccessKeyId"] == key["AccessKeyId"]
        assert iam.get_group(GroupName="guards")["Group"]["GroupName"] == "guards"

    # protect: false lifts it: the user's tag turns false, the group moves back to the stack path in
    # place (UpdateGroup NewPath; moto ignores NewPath unless NewGroupName is given, so the group's
    # move is proven by the request sent, below, and this stack then drops the group first)
    manifest.write_text(IAM_ONLY % {"protect": "false"})
    lifted = run_cli(["apply", str(manifest), "--auto-approve"], faulty.env())
    assert lifted.code == 0, lifted.all
    assert moved.fired == 1 and wrong.fired == 0, faulty.writes()
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="guard")["Tags"]}
    assert tags["reconciler:protect"] == "false"
    iam.update_group(GroupName="guards", NewGroupName="guards-moved", NewPath="/elsewhere/")  # not ours any more
    manifest.write_text(IAM_ONLY.replace("  groups:\n    - {name: guards, protect: %(protect)s}\n", "")
                        .replace("      groups: [guards]\n", "") % {"protect": "false"})
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    gone = cli("destroy", str(manifest), "--auto-approve")
    assert gone.code == 0, gone.all
    assert iam.list_users()["Users"] == []
    assert ssm.describe_parameters()["Parameters"] == []
