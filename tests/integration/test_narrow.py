"""Narrow operations through the real CLI against moto server: `plan --destroy`, `--target`, `--replace`,
and blocked plans refused before any prompt.

Each test reads the account back with boto3 (not through the tool) to prove what was, and
was not, changed; "nothing written" is proven by moto's recorder where it matters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import Moto
from tests.integration.test_plan_file import start_recording, stop_recording

MANIFEST = """\
version: 1
stack: narrow
region: us-east-1
iam:
  users:
    - name: app
      access_keys:
        count: 1
        store: {secretsmanager: narrow/app}
network:
  vpcs:
    - name: main
      cidr: 10.8.0.0/16
      subnets:
        - {name: pub, cidr: 10.8.0.0/24, az: us-east-1a, public: true}
        - {name: priv, cidr: 10.8.10.0/24, az: us-east-1a}
      security_groups:
        - name: app
          ingress: [{protocol: tcp, ports: "443", from: 10.0.0.0/8}]
"""
MUTATING = ("Create", "Delete", "Put", "Update", "Tag", "Untag", "Attach", "Detach", "Associate", "Disassociate",
            "Modify", "Authorize", "Revoke", "Replace", "Allocate", "Release")
WARNING = "warning: resource targeting is in effect (--target)"


def write(tmp_path: Path, text: str = MANIFEST) -> str:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return str(path)


def vpcs(moto: Moto) -> list[str]:
    ec2: Any = moto.client("ec2")
    return [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")]


def subnets(moto: Moto) -> dict[str, str]:
    ec2: Any = moto.client("ec2")
    return {s["CidrBlock"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if not s.get("DefaultForAz")}


def groups(moto: Moto) -> dict[str, str]:
    ec2: Any = moto.client("ec2")
    return {g["GroupName"]: g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]
            if g["GroupName"] != "default"}


def keys(moto: Moto) -> dict[str, str]:
    iam: Any = moto.client("iam")
    return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="app")["AccessKeyMetadata"]}


def stored_key(moto: Moto) -> str:
    sm: Any = moto.client("secretsmanager")
    return str(json.loads(sm.get_secret_value(SecretId="narrow/app")["SecretString"])["AccessKeyId"])


def test_plan_destroy_previews_the_destroy_reads_only_and_its_plan_file_destroys(cli: Any, moto: Moto,
                                                                                  tmp_path: Path) -> None:
    manifest = write(tmp_path)
    assert cli("apply", manifest, "--auto-approve").code == 0
    before = (vpcs(moto), subnets(moto), keys(moto))
    start_recording(moto)
    preview = cli("plan", manifest, "--destroy", "--detailed-exitcode", "--out", str(tmp_path / "d.json"))
    ops = stop_recording(moto)
    assert preview.code == 2, preview.all
    assert not [op for op in ops if op.startswith(MUTATING)], ops
    assert (vpcs(moto), subnets(moto), keys(moto)) == before
    # every owned resource, each as a requested destroy, never as "not in the manifest"
    assert "destroy requested" in preview.out and "not in the manifest" not in preview.out
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["destroy"] is True
    assert {c["action"] for c in data["changes"]} == {"delete"}
    assert {"vpc.main", "iam.user.app", "iam.user.app.access_keys"} <= {c["address"] for c in data["changes"]}
    # the same destroy `destroy` would run
    same = cli("destroy", manifest)
    assert same.code == 3 and "without a terminal" in same.err  # refused at the prompt: it planned the same
    assert [line for line in same.out.splitlines() if line.startswith("-")] == \
        [line for line in preview.out.splitlines() if line.startswith("-")]
    applied = cli("apply", manifest, "--plan", str(tmp_path / "d.json"))
    assert applied.code == 0, applied.all
    assert "is a destroy plan" in applied.err
    iam: Any = moto.client("iam")
    assert vpcs(moto) == [] and iam.list_users()["Users"] == []
    after = cli("plan", manifest, "--format", "json")
    assert {c["action"] for c in json.loads(after.out)["changes"]} == {"create"}


def test_a_destroy_plan_file_is_stale_once_the_account_moves(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path)
    assert cli("apply", manifest, "--auto-approve").code == 0
    assert cli("plan", manifest, "--destroy", "--out", str(tmp_path / "d.json")).code == 0
    ec2: Any = moto.client("ec2")
    ec2.create_tags(Resources=[vpcs(moto)[0]], Tags=[{"Key": "team", "Value": "edited-by-hand"}])
    stale = cli("apply", manifest, "--plan", str(tmp_path / "d.json"))
    assert stale.code == 4, stale.all
    assert "vpc.main" in stale.err
    assert len(vpcs(moto)) == 1


def test_apply_target_makes_only_the_target_and_what_it_needs(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path)
    result = cli("apply", manifest, "--target", "vpc.main.subnet.pub", "--auto-approve")
    assert result.code == 0, result.all
    assert WARNING in result.err and "applied changes may be incomplete" in result.err
    assert len(vpcs(moto)) == 1 and list(subnets(moto)) == ["10.8.0.0/24"]
    assert groups(moto) == {}
    iam: Any = moto.client("iam")
    assert iam.list_users()["Users"] == []
    full = cli("plan", manifest, "--format", "json")
    assert full.code == 0 and WARNING not in full.err
    plan = json.loads(full.out)
    pending = {c["address"] for c in plan["changes"] if c["action"] != "noop"}
    assert {"vpc.main.subnet.priv", "vpc.main.sg.app", "iam.user.app", "iam.user.app.access_keys"} <= pending
    assert {"vpc.main", "vpc.main.subnet.pub"}.isdisjoint(pending)


def test_a_targeted_plan_file_applies_with_its_targets(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path)
    planned = cli("plan", manifest, "--target", "vpc.main.sg.app", "--out", str(tmp_path / "t.json"))
    assert planned.code == 0 and WARNING in planned.err
    assert json.loads((tmp_path / "t.json").read_text())["targets"] == ["vpc.main.sg.app"]
    both = cli("apply", manifest, "--plan", str(tmp_path / "t.json"), "--target", "vpc.main")
    assert both.code == 3 and "records its own --target" in both.err
    applied = cli("apply", manifest, "--plan", str(tmp_path / "t.json"))
    assert applied.code == 0, applied.all
    assert list(groups(moto)) == ["app"] and subnets(moto) == {}


def test_a_target_matching_nothing_exits_3_naming_addresses_near_it(cli: Any, moto: Moto, tmp_path: Path) -> None:
    result = cli("apply", write(tmp_path), "--target", "vpc.main.subnet.pbu", "--auto-approve")
    assert result.code == 3, result.all
    assert "--target vpc.main.subnet.pbu: matches no address" in result.err
    assert "vpc.main.subnet.pub" in result.err
    assert vpcs(moto) == []


def test_replace_of_access_keys_rotates_them(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path)
    assert cli("apply", manifest, "--auto-approve").code == 0
    (old,) = keys(moto)
    assert stored_key(moto) == old
    planned = cli("plan", manifest, "--replace", "iam.user.app.access_keys")
    assert planned.code == 0 and "replacement requested" in planned.out
    assert f"rotation: key {old} is deactivated" in planned.out
    result = cli("apply", manifest, "--replace", "iam.user.app.access_keys", "--auto-approve")
    assert result.code == 0, result.all
    now = keys(moto)
    (new,) = [k for k in now if k != old]
    assert now == {old: "Inactive", new: "Active"}
    assert stored_key(moto) == new  # the same store, now holding the new key
    iam: Any = moto.client("iam")
    tags = {t["Key"] for t in iam.list_user_tags(UserName="app")["Tags"]}
    assert f"reconciler:key-retired-{old}" in tags  # deleted after grace_days, as any rotation
    assert cli("plan", manifest, "--detailed-exitcode").code == 0
    # two keys, one still in its grace: the next rotation has no slot and is refused before any prompt
    again = cli("apply", manifest, "--replace", "iam.user.app.access_keys")
    assert again.code == 1, again.all
    assert "the rotation cannot start" in again.err and "without a terminal" not in again.err
    assert keys(moto) == now


def test_replace_of_a_security_group_and_a_subnet_gives_new_ids(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path)
    assert cli("apply", manifest, "--auto-approve").code == 0
    group, subnet = groups(moto)["app"], subnets(moto)["10.8.10.0/24"]
    result = cli("apply", manifest, "--replace", "vpc.main.sg.app", "--replace", "vpc.main.subnet.priv",
                 "--auto-approve")
    assert result.code == 0, result.all
    assert groups(moto)["app"] != group and subnets(moto)["10.8.10.0/24"] != subnet
    assert cli("plan", manifest, "--detailed-exitcode").code == 0
    renamed = MANIFEST.replace("name: app\n          ingress", "name: web\n          ingress")
    missing = cli("plan", write(tmp_path, renamed), "--replace", "vpc.main.sg.web")
    assert missing.code == 3 and "does not exist in the account yet" in missing.err


def test_a_blocked_plan_is_refused_before_any_prompt_and_counted_by_plan(cli: Any, moto: Moto,
                                                                         tmp_path: Path) -> None:
    iam: Any = moto.client("iam")
    iam.create_user(UserName="app")  # same name, no stack tag: creating it is blocked
    manifest = write(tmp_path)
    planned = cli("plan", manifest, "--detailed-exitcode")
    assert planned.code == 2
    counted = re.search(r"(\d+) changes pending, 1 of them blocked: apply will refuse", planned.err)
    assert counted is not None and int(counted.group(1)) > 1, planned.err
    start_recording(moto)
    refused = cli("apply", manifest)  # no --auto-approve and no terminal: the blocked change is said first
    ops = stop_recording(moto)
    assert refused.code == 1, refused.all
    assert "blocked changes; nothing was applied" in refused.err
    assert "iam.user.app: " in refused.err and "not owned by stack narrow" in refused.err
    assert "without a terminal" not in refused.err
    lease = {"PutParameter", "DeleteParameter"}  # apply's lease in SSM, taken before the read, released
    assert not [op for op in ops if op.startswith(MUTATING) and op not in lease], ops
    assert vpcs(moto) == []


def test_destroy_target_takes_the_target_and_what_depends_on_it(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path)
    assert cli("apply", manifest, "--auto-approve").code == 0
    result = cli("destroy", manifest, "--target", "vpc.main.subnet.pub", "--auto-approve")
    assert result.code == 0, result.all
    assert WARNING in result.err and "applied changes may be incomplete" in result.err
    assert list(subnets(moto)) == ["10.8.10.0/24"] and len(vpcs(moto)) == 1
    ec2: Any = moto.client("ec2")
    tables = {tag["Value"] for t in ec2.describe_route_tables()["RouteTables"] for tag in t.get("Tags", [])
              if tag["Key"] == "reconciler:address"}
    # the public table routes the subnet: it went (first); the private one stays
    assert "vpc.main.route_table.public" not in tables and "vpc.main.route_table.private" in tables, tables
    assert list(groups(moto)) == ["app"] and keys(moto)
