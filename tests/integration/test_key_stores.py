"""Access keys and their stores under hostile conditions (issue 9), through the real CLI against moto.

Stores already there under the manifest's name, a crash between the store write and the
bookkeeping tag, hand-edited bookkeeping tags, a pinned clock that is not a time, a plan
file applied to another account, and rotations that must wait for a grace period.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, Moto

MANIFEST = """\
version: 1
stack: keystest
region: us-east-1
iam:
  users:
    - name: app-dev
      access_keys:
        count: %(count)d
        rotate_after_days: 90
        grace_days: %(grace)d
        store: {%(store)s}
"""

SM = "secretsmanager: keystest/app-dev"
SSM = "ssm: /keystest/app-dev/key"
STORES = {"secretsmanager": SM, "ssm": SSM}


def write(tmp_path: Path, store: str = SM, *, count: int = 1, grace: int = 7) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(MANIFEST % {"store": store, "count": count, "grace": grace})
    return path


def later(days: int) -> str:
    return (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)).isoformat()


def keys(moto: Moto, user: str = "app-dev") -> dict[str, str]:
    iam: Any = moto.client("iam")
    return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def held_key_id(moto: Moto, store: str) -> str:
    """The AccessKeyId the store holds now (read here by the test, never by the tool's plan)."""
    kind, name = (s.strip() for s in store.split(":", 1))
    if kind == "secretsmanager":
        sm: Any = moto.client("secretsmanager")
        return str(json.loads(sm.get_secret_value(SecretId=name)["SecretString"])["AccessKeyId"])
    ssm: Any = moto.client("ssm")
    return str(json.loads(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])["AccessKeyId"])


def no_traceback(*results: CliResult) -> None:
    for result in results:
        assert "Traceback" not in result.all, result.all


# -- 5. apply --plan checks the account ----------------------------------------------

def test_a_plan_for_one_account_is_refused_with_credentials_for_another(cli: Any, moto: Moto,
                                                                        tmp_path: Path) -> None:
    manifest = write(tmp_path)
    plan_file = tmp_path / "plan.json"
    made = cli("plan", str(manifest), "--out", str(plan_file))
    assert made.code == 0, made.all
    assert json.loads(plan_file.read_text())["account"] == "123456789012"
    sts: Any = moto.client("sts")
    creds = sts.assume_role(RoleArn="arn:aws:iam::210987654321:role/deployer",
                            RoleSessionName="test")["Credentials"]
    other = {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
             "AWS_SESSION_TOKEN": creds["SessionToken"]}
    # both accounts are empty, so the plans are identical but for the account
    refused = cli("apply", str(manifest), "--plan", str(plan_file), **other)
    assert refused.code == 3, refused.all
    assert "account 123456789012" in refused.err and "210987654321" in refused.err
    no_traceback(refused)
    import boto3

    iam_b = boto3.client("iam", endpoint_url=moto.endpoint, region_name="us-east-1",
                         aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"])
    assert iam_b.list_users()["Users"] == []
    iam: Any = moto.client("iam")
    assert iam.list_users()["Users"] == []
    # the same plan file in its own account applies
    assert cli("apply", str(manifest), "--plan", str(plan_file)).code == 0


# -- 6. no traceback for hand-edited tags or a bad clock ------------------------------

def test_reconciler_now_that_is_not_a_time_is_a_usage_error(cli: Any, tmp_path: Path) -> None:
    result = cli("plan", str(write(tmp_path)), RECONCILER_NOW="tomorrow")
    assert result.code == 3, result.all
    no_traceback(result)
    assert "RECONCILER_NOW" in result.err and len(result.err.strip().splitlines()) == 1, result.err


@pytest.mark.parametrize("value", ["garbage", "2026-13-45T99:99:99Z", "", "\u00e9t\u00e9"])
def test_hand_edited_bookkeeping_tags_never_delete_a_key(cli: Any, moto: Moto, tmp_path: Path, value: str) -> None:
    manifest = write(tmp_path)
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    iam: Any = moto.client("iam")
    delivered = held_key_id(moto, SM)
    # a key made by hand after the edit: with a readable intent it would look undelivered (and be deleted)
    iam.tag_user(UserName="app-dev", Tags=[{"Key": "reconciler:key-intent", "Value": value}])
    hand = iam.create_access_key(UserName="app-dev")["AccessKey"]["AccessKeyId"]
    plan = cli("plan", str(manifest))
    no_traceback(plan)
    assert plan.code == 0, plan.all
    applied = cli("apply", str(manifest), "--auto-approve")
    no_traceback(applied)
    assert applied.code == 0, applied.all
    assert keys(moto) == {delivered: "Active", hand: "Inactive"}  # retired loudly, never deleted
    # a retirement date edited by hand: the key stays (its grace restarts), no traceback
    iam.tag_user(UserName="app-dev", Tags=[{"Key": f"reconciler:key-retired-{hand}", "Value": value or "x"}])
    again = cli("apply", str(manifest), "--auto-approve", RECONCILER_NOW=later(30))
    no_traceback(again)
    assert again.code == 0, again.all
    assert hand in keys(moto)
    settled = cli("plan", str(manifest), "--detailed-exitcode")
    assert settled.code == 0, settled.all


# -- 4. rotation never deletes a retired key inside grace_days -------------------------

def test_rotation_waits_for_grace_instead_of_deleting_a_retired_key(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path, SSM, grace=200)
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    first = held_key_id(moto, SSM)
    assert cli("apply", str(manifest), "--auto-approve", RECONCILER_NOW=later(100)).code == 0
    second = held_key_id(moto, SSM)
    assert keys(moto) == {first: "Inactive", second: "Active"}
    # 195 days on: `second` is due, `first` is 95 days into its 200-day grace: nothing may be deleted
    plan = cli("plan", str(manifest), "--format", "json", RECONCILER_NOW=later(195))
    assert plan.code == 0, plan.all
    change = {c["address"]: c for c in json.loads(plan.out)["changes"]}["iam.user.app-dev.access_keys"]
    assert change["action"] == "noop", change
    assert any("waits for a free slot" in n["text"] and f"grace of key {first} ends, in 105 day(s)" in n["text"]
               for n in change["notes"]), change
    assert cli("apply", str(manifest), "--auto-approve", RECONCILER_NOW=later(195)).code == 0
    assert keys(moto) == {first: "Inactive", second: "Active"} and held_key_id(moto, SSM) == second
    # once the grace has ended the rotation proceeds in one apply
    assert cli("apply", str(manifest), "--auto-approve", RECONCILER_NOW=later(301)).code == 0
    third = held_key_id(moto, SSM)
    assert keys(moto) == {second: "Inactive", third: "Active"}


def test_count_two_converges_in_one_apply(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path, SM, count=2)
    applied = cli("apply", str(manifest), "--auto-approve")
    assert applied.code == 0, applied.all
    assert list(keys(moto).values()) == ["Active", "Active"]
    assert held_key_id(moto, SM) in keys(moto)
    assert cli("plan", str(manifest), "--detailed-exitcode").code == 0


# -- 1. every store the tool writes is ownership-checked --------------------------------

def make_store(moto: Moto, kind: str, value: str, tags: dict[str, str] | None = None) -> None:
    tag_list = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
    if kind == "secretsmanager":
        sm: Any = moto.client("secretsmanager")
        sm.create_secret(Name="keystest/app-dev", SecretString=value, **({"Tags": tag_list} if tag_list else {}))
    else:
        ssm: Any = moto.client("ssm")
        ssm.put_parameter(Name="/keystest/app-dev/key", Value=value, Type="SecureString",
                          **({"Tags": tag_list} if tag_list else {}))


def store_value_and_tags(moto: Moto, kind: str) -> tuple[str, dict[str, str]]:
    if kind == "secretsmanager":
        sm: Any = moto.client("secretsmanager")
        value = sm.get_secret_value(SecretId="keystest/app-dev")["SecretString"]
        tags = sm.describe_secret(SecretId="keystest/app-dev").get("Tags", [])
    else:
        ssm: Any = moto.client("ssm")
        value = ssm.get_parameter(Name="/keystest/app-dev/key", WithDecryption=True)["Parameter"]["Value"]
        tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/keystest/app-dev/key")["TagList"]
    return str(value), {t["Key"]: t["Value"] for t in tags}


@pytest.mark.parametrize("kind", ["secretsmanager", "ssm"])
def test_an_unowned_store_is_a_blocked_conflict_until_adopted(cli: Any, moto: Moto, tmp_path: Path,
                                                              kind: str) -> None:
    make_store(moto, kind, "someone else's data")
    manifest = write(tmp_path, STORES[kind])
    label = STORES[kind].replace(": ", ":")
    plan = cli("plan", str(manifest))
    assert f"{label} (owned by nobody) already exists and is not owned by stack keystest" in plan.out, plan.all
    refused = cli("apply", str(manifest), "--auto-approve")
    assert refused.code == 1 and "nothing was applied" in refused.all, refused.all
    iam: Any = moto.client("iam")
    assert iam.list_users()["Users"] == []
    assert store_value_and_tags(moto, kind) == ("someone else's data", {})
    gone = cli("destroy", str(manifest), "--auto-approve")
    assert gone.code == 0, gone.all
    assert store_value_and_tags(moto, kind) == ("someone else's data", {})
    adopted = cli("apply", str(manifest), "--auto-approve", "--adopt")
    assert adopted.code == 0, adopted.all
    value, tags = store_value_and_tags(moto, kind)
    assert tags["reconciler:stack"] == "keystest" and json.loads(value)["AccessKeyId"] in keys(moto)
    assert cli("plan", str(manifest), "--detailed-exitcode").code == 0
    no_traceback(plan, refused, gone, adopted)


@pytest.mark.parametrize("kind", ["secretsmanager", "ssm"])
def test_another_stacks_store_is_never_taken_not_even_with_adopt(cli: Any, moto: Moto, tmp_path: Path,
                                                                 kind: str) -> None:
    make_store(moto, kind, "other stack's key", {"reconciler:stack": "other", "reconciler:address": "x"})
    manifest = write(tmp_path, STORES[kind])
    for extra in ((), ("--adopt",)):
        refused = cli("apply", str(manifest), "--auto-approve", *extra)
        assert refused.code == 1 and "nothing was applied" in refused.all, refused.all
        assert ("belongs to stack other" if extra else "(owned by stack other)") in refused.all, refused.all
    assert "--adopt never takes" in refused.all
    assert store_value_and_tags(moto, kind)[0] == "other stack's key"
    iam: Any = moto.client("iam")
    assert iam.list_users()["Users"] == []


@pytest.mark.parametrize("kind", ["secretsmanager", "ssm"])
def test_destroy_leaves_a_store_that_lost_our_stack_tag(cli: Any, moto: Moto, tmp_path: Path, kind: str) -> None:
    manifest = write(tmp_path, STORES[kind])
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    value, _ = store_value_and_tags(moto, kind)
    if kind == "secretsmanager":
        sm: Any = moto.client("secretsmanager")
        sm.untag_resource(SecretId="keystest/app-dev", TagKeys=["reconciler:stack"])
    else:
        ssm: Any = moto.client("ssm")
        ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId="/keystest/app-dev/key",
                                      TagKeys=["reconciler:stack"])
    gone = cli("destroy", str(manifest), "--auto-approve")
    assert gone.code == 0, gone.all
    assert store_value_and_tags(moto, kind)[0] == value  # not ours any more: left in place


# -- 3. the store's own record says which key was delivered ------------------------------

@pytest.mark.parametrize("kind, tag_call", [("secretsmanager", "TagResource"), ("ssm", "AddTagsToResource")])
def test_a_run_that_dies_after_the_store_write_never_costs_the_stored_key(faulty: Any, moto: Moto, tmp_path: Path,
                                                                        kind: str, tag_call: str) -> None:
    """A rotation writes the new key into the store, then its bookkeeping tag write fails for good
    (every attempt answered 500): the run fails between the two. The next plain run must keep the key the
    store holds (consumers may already use it) and converge, not delete it as undelivered."""
    from tests.conftest import run_cli
    from tests.faults.proxy import Fault, rule

    manifest = write(tmp_path, STORES[kind])
    env = faulty.env(RECONCILER_NOW=later(100))
    assert run_cli(["apply", str(manifest), "--auto-approve"], faulty.env()).code == 0
    first = held_key_id(moto, STORES[kind])
    faulty.add(rule(Fault.HTTP_500, tag_call))
    died = run_cli(["apply", str(manifest), "--auto-approve"], env)
    assert died.code == 1, died.all
    assert faulty.faults()[f"{tag_call}:500"] >= 1, faulty.faults()
    second = held_key_id(moto, STORES[kind])
    assert second != first and keys(moto)[second] == "Active"
    faulty.clear()
    # the re-runs use the real clock: moto stamps keys with it, so `second` is young only there
    plan = run_cli(["plan", str(manifest)], faulty.env())
    assert f"keys.{second}" not in plan.out, plan.out  # neither deleted nor retired
    rerun = run_cli(["apply", str(manifest), "--auto-approve"], faulty.env())
    assert rerun.code == 0, rerun.all
    assert held_key_id(moto, STORES[kind]) == second
    assert keys(moto) == {first: "Inactive", second: "Active"}
    settled = run_cli(["plan", str(manifest), "--detailed-exitcode"], faulty.env())
    assert settled.code == 0, settled.all
    for result in (died, plan, rerun, settled):
        assert not any(s in result.all for s in faulty.secrets_seen)


# -- 2. store.kms_key added or changed is planned and applied -----------------------------

def store_kms(moto: Moto, kind: str) -> str | None:
    if kind == "secretsmanager":
        sm: Any = moto.client("secretsmanager")
        return sm.describe_secret(SecretId="keystest/app-dev").get("KmsKeyId")  # type: ignore[no-any-return]
    ssm: Any = moto.client("ssm")
    (param,) = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": ["/keystest/app-dev/key"]}])["Parameters"]
    return param.get("KeyId")  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["secretsmanager", "ssm"])
def test_a_new_kms_key_on_an_existing_store_is_planned_and_applied(cli: Any, moto: Moto, tmp_path: Path,
                                                                   kind: str) -> None:
    manifest = write(tmp_path, STORES[kind])
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    held = held_key_id(moto, STORES[kind])
    kms: Any = moto.client("kms")
    first = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/keystest-1", TargetKeyId=first["KeyId"])
    second = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/keystest-2", TargetKeyId=second["KeyId"])
    for alias in ("alias/keystest-1", "alias/keystest-2"):  # added, then changed
        manifest = write(tmp_path, f"{STORES[kind]}, kms_key: {alias}")
        plan = cli("plan", str(manifest), "--detailed-exitcode")
        assert plan.code == 2 and "store.kms_key" in plan.out and alias in plan.out, plan.all
        applied = cli("apply", str(manifest), "--auto-approve")
        assert applied.code == 0, applied.all
        assert store_kms(moto, kind) == alias
        assert cli("plan", str(manifest), "--detailed-exitcode").code == 0
        assert held_key_id(moto, STORES[kind]) == held and keys(moto) == {held: "Active"}  # value kept
    # the same key spelled as its ARN is no change
    manifest = write(tmp_path, f"{STORES[kind]}, kms_key: {second['Arn']}")
    same = cli("plan", str(manifest), "--detailed-exitcode")
    assert same.code == 0, same.all


def test_a_kms_key_that_cannot_be_resolved_is_not_checked_never_a_change(faulty: Any, moto: Moto,
                                                                         tmp_path: Path) -> None:
    from tests.conftest import run_cli
    from tests.faults.proxy import Fault, rule

    kms: Any = moto.client("kms")
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/keystest-1", TargetKeyId=key["KeyId"])
    manifest = write(tmp_path, f"{SM}, kms_key: alias/keystest-1")
    assert run_cli(["apply", str(manifest), "--auto-approve"], faulty.env()).code == 0
    manifest = write(tmp_path, f"{SM}, kms_key: {key['Arn']}")  # same key, other spelling: needs DescribeKey
    faulty.add(rule(Fault.HTTP_500, "DescribeKey"))
    plan = run_cli(["plan", str(manifest), "--format", "json"], faulty.env())
    assert faulty.faults()["DescribeKey:500"] >= 1
    no_traceback(plan)
    data = json.loads(plan.out)
    assert "kms:DescribeKey failed" in data["not_checked"]["iam.user.app-dev.access_keys"], data["not_checked"]
    assert all(c["action"] == "noop" for c in data["changes"]), data["changes"]


def test_moving_the_keys_onto_an_existing_unowned_store_is_refused(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path, SM)
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    held = held_key_id(moto, SM)
    sm: Any = moto.client("secretsmanager")
    sm.create_secret(Name="keystest/elsewhere", SecretString="someone else's data")
    moved = write(tmp_path, "secretsmanager: keystest/elsewhere")
    for extra in ((), ("--adopt",)):
        refused = cli("apply", str(moved), "--auto-approve", *extra)
        assert refused.code == 1 and "nothing was applied" in refused.all, refused.all
        assert "secretsmanager:keystest/elsewhere" in refused.all
    assert sm.get_secret_value(SecretId="keystest/elsewhere")["SecretString"] == "someone else's data"
    assert held_key_id(moto, SM) == held and keys(moto) == {held: "Active"}
