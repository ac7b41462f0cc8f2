"""Replacements on the plan side: what expansion makes replace with a container, and referrers as updates.

The apply graph deletes a replaced subnet's or VPC's occupants before the container only
if they are replaced too; expansion guarantees it (every occupant carries the container's
identity: `vpc_cidr`, `subnet_cidr`/`az`, a subnet's `{az, cidr}`). What refers to a
replaced resource without living in it (a route table routing to a NAT) is planned as an
UPDATE that follows the replacement, so its kind re-resolves the new id at apply time.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.kinds import all_kinds
from reconciler.manifest.expand import expand
from reconciler.manifest.model import DesiredResource
from reconciler.manifest.validate import load_manifest
from reconciler.plan.build import build_plan
from reconciler.plan.model import Action, LiveResource, Plan

MANIFEST = """\
version: 1
stack: nets
region: us-east-1
network:
  vpcs:
    - name: main
      cidr: 10.8.0.0/16
      subnets:
        - {name: pub, cidr: 10.8.0.0/24, az: us-east-1a, public: true}
        - {name: priv, cidr: 10.8.10.0/24, az: us-east-1a}
      nat: {mode: MODE}
      endpoints: [{service: sts}]
"""


def desired(tmp_path: Path, text: str) -> list[DesiredResource]:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    manifest, _ = load_manifest(path)
    return [r for r in expand(manifest) if r.address.startswith("vpc.")]


def as_live(resources: list[DesiredResource]) -> dict[str, LiveResource]:
    """The account exactly as that manifest made it."""
    return {r.address: LiveResource(r.address, r.kind, f"id-{r.address}", r.spec, depends_on=r.depends_on)
            for r in resources}


def replan(tmp_path: Path, before: str, after: str) -> Plan:
    return build_plan(stack="nets", region="us-east-1", account="123456789012", manifest_sha256="0" * 64,
                      desired=desired(tmp_path, after), live=as_live(desired(tmp_path, before)), kinds=all_kinds())


def actions(result: Plan) -> dict[str, tuple[str, str]]:
    return {c.address: (c.action.value, c.reason) for c in result.pending}


def test_a_replaced_subnet_takes_its_occupants_and_its_route_tables_follow(tmp_path: Path) -> None:
    text = MANIFEST.replace("MODE", "gateway")
    result = actions(replan(tmp_path, text, text.replace("10.8.0.0/24", "10.8.2.0/24")))
    assert result == {
        "vpc.main.subnet.pub": ("replace", "changed cidr"),
        "vpc.main.nat.pub": ("replace", "changed subnet_cidr"),
        "vpc.main.route_table.public": ("update", "changed subnets"),
        "vpc.main.route_table.private": ("update", "follows the replacement of vpc.main.nat.pub"),
    }


def test_a_replaced_nat_instance_makes_its_route_table_follow(tmp_path: Path) -> None:
    text = MANIFEST.replace("MODE", "instance")
    pinned = text.replace("{mode: instance}", "{mode: instance, ami: ami-0123456789abcdef0}")
    result = actions(replan(tmp_path, text, pinned))
    assert result == {
        "vpc.main.nat_instance.pub": ("replace", "changed ami"),
        "vpc.main.route_table.private": ("update", "follows the replacement of vpc.main.nat_instance.pub"),
    }


def test_a_replaced_vpc_replaces_everything_in_it(tmp_path: Path) -> None:
    for mode in ("gateway", "instance"):
        text = MANIFEST.replace("MODE", mode)
        result = actions(replan(tmp_path, text, text.replace("10.8.", "10.18.")))
        inside = {a for a in as_live(desired(tmp_path, text)) if ".eip." not in a}
        assert {a for a, (action, _) in result.items() if action == "replace"} == inside, mode
        # an Elastic IP is not in the VPC (it survives); it only follows the new internet gateway
        assert result["vpc.main.eip.pub"] == ("update", "follows the replacement of vpc.main.igw")


def test_an_unchanged_plan_stays_empty(tmp_path: Path) -> None:
    text = MANIFEST.replace("MODE", "gateway")
    assert replan(tmp_path, text, text).pending == ()


def test_a_blocked_referrer_is_left_alone() -> None:
    nat = DesiredResource("vpc.main.nat.pub", "ec2.nat_gateway", {"subnet_cidr": "10.8.2.0/24"})
    table = DesiredResource("vpc.main.route_table.private", "ec2.route_table", {"routes": {}}, ("vpc.main.nat.pub",))
    live = {"vpc.main.nat.pub": LiveResource("vpc.main.nat.pub", "ec2.nat_gateway", "nat-1",
                                             {"subnet_cidr": "10.8.0.0/24"}),
            "vpc.main.route_table.private": LiveResource("vpc.main.route_table.private", "ec2.route_table", "rtb-1",
                                                         {"routes": {}})}
    result = build_plan(stack="nets", region="us-east-1", account="1", manifest_sha256="0" * 64,
                        desired=[nat, table], live=live, kinds=all_kinds(),
                        not_checked={"vpc.main.route_table.private": "denied"})
    by_address = {c.address: c for c in result.changes}
    assert by_address["vpc.main.nat.pub"].action is Action.REPLACE
    assert by_address["vpc.main.route_table.private"].action is Action.NOOP
