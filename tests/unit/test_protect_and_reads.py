"""Protection of parts and failed reads, on literal data (no AWS)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.errors import AwsError
from reconciler.kinds import all_kinds
from reconciler.kinds.ec2 import vpc_endpoint
from reconciler.kinds.ecr import repository as ecr_repository
from reconciler.kinds.iam import _api as _iam
from reconciler.manifest.model import DesiredResource
from reconciler.plan.build import build_plan
from reconciler.plan.model import Action, LiveResource


def plan(desired: list[DesiredResource], live: list[LiveResource]) -> Any:
    return build_plan(stack="s", region="us-east-1", account="123456789012", manifest_sha256="0" * 64,
                      desired=desired, live={r.address: r for r in live}, kinds=all_kinds())


USER = LiveResource("iam.user.u", "iam.user", "u", {"name": "u"}, protect=True)
KEYS = LiveResource("iam.user.u.access_keys", "iam.access_key", "u", {"user": "u", "keys": [], "store": {"ssm": "/k"}},
                    depends_on=("iam.user.u",))
VPC = LiveResource("vpc.main", "ec2.vpc", "vpc-1", {}, protect=True)
IGW = LiveResource("vpc.main.igw", "ec2.internet_gateway", "igw-1", {})


def test_the_parts_of_a_protected_resource_that_leaves_are_refused_too() -> None:
    changes = {c.address: c for c in plan([], [USER, KEYS, VPC, IGW]).changes}
    assert all(c.action is Action.DELETE for c in changes.values())
    assert changes["iam.user.u"].blocked and "protect" in changes["iam.user.u"].blocked
    assert changes["iam.user.u.access_keys"].blocked == (
        "part of iam.user.u, which is protected and is not deleted; remove its protection first")
    assert changes["vpc.main.igw"].blocked and "part of vpc.main" in changes["vpc.main.igw"].blocked


def test_parts_of_a_protected_resource_that_stays_are_managed_as_usual() -> None:
    vpc = DesiredResource("vpc.main", "ec2.vpc", {"tags": {}}, protect=True)
    changes = {c.address: c for c in plan([vpc], [VPC, IGW]).changes}
    assert changes["vpc.main.igw"].action is Action.DELETE and changes["vpc.main.igw"].blocked is None


def test_an_unprotected_owner_does_not_protect_its_parts() -> None:
    user = LiveResource("iam.user.u", "iam.user", "u", {"name": "u"})
    assert not any(c.blocked for c in plan([], [user, KEYS]).changes)


@pytest.mark.parametrize("read", [
    lambda: ecr_repository._parse_json("{not json", "repository policy of r"),
    lambda: vpc_endpoint._policy("{not json"),
    lambda: _iam.document("%7Bnot%20json"),
])
def test_a_document_aws_returns_that_is_not_json_is_a_failed_read_not_a_diff(read: Any) -> None:
    with pytest.raises(AwsError, match="not JSON"):
        read()


def test_a_not_checked_address_is_never_diffed_deleted_or_created_by_apply() -> None:
    desired = DesiredResource("iam.user.u", "iam.user", {"name": "u", "path": "/changed", "tags": {}})
    live = LiveResource("iam.user.u", "iam.user", "u", {"name": "u", "path": "/"})
    orphan = LiveResource("iam.user.gone", "iam.user", "gone", {"name": "gone"})
    missing = DesiredResource("iam.user.new", "iam.user", {"name": "new", "path": "/", "tags": {}})
    why = {"iam.user.u": "access denied", "iam.user.gone": "access denied", "iam.user.new": "access denied"}
    result = build_plan(stack="s", region="us-east-1", account="123456789012", manifest_sha256="0" * 64,
                        desired=[desired, missing], live={"iam.user.u": live, "iam.user.gone": orphan},
                        kinds=all_kinds(), not_checked=why)
    changes = {c.address: c for c in result.changes}
    assert "iam.user.gone" not in changes, "an address that could not be judged is never deleted"
    assert changes["iam.user.u"].action is Action.NOOP and changes["iam.user.u"].diff == ()
    assert changes["iam.user.new"].action is Action.CREATE
    assert all(c.blocked and "not checked (access denied)" in c.blocked for c in changes.values())


def test_the_protect_tag_counts_against_awss_50_tags(tmp_path: Any) -> None:
    """Name, stack, address, kind and protect are the tool's: 45 of the manifest's own still fit, 46 do not."""
    from reconciler.errors import ManifestError
    from reconciler.manifest.validate import load_manifest

    def manifest(count: int) -> Any:  # the schema allows 40 per map: 20 for every resource, the rest the user's
        common = "".join(f"  c{i}: v\n" for i in range(20))
        own = "".join(f"        t{i}: v\n" for i in range(count - 20))
        path = tmp_path / f"tags{count}.yaml"
        path.write_text("version: 1\nstack: s\nregion: us-east-1\ntags:\n" + common +
                        "iam:\n  users:\n    - name: u\n      tags:\n" + own)
        return path

    load_manifest(manifest(45))
    with pytest.raises(ManifestError, match="at most 45 fit"):
        load_manifest(manifest(46))
