"""Adopting a user whose only access key was made by hand (issue 12), through the real CLI against moto.

The key's secret is unknown to the tool and people use it: `apply --adopt` creates a new key into
the declared store and leaves the old one active; the next plans show only its dated retirement;
with the clock moved past `grace_days` it is deactivated, and after a further grace deleted.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from tests.conftest import CliResult, Moto

MANIFEST = """\
version: 1
stack: adoptkey
region: us-east-1
iam:
  users:
    - name: seed-dev
      access_keys:
        count: 1
        rotate_after_days: 90
        grace_days: 7
        store: {ssm: /adoptkey/seed-dev/key}
"""
STORE = "/adoptkey/seed-dev/key"


def at(start: datetime.datetime, days: int) -> str:
    return (start + datetime.timedelta(days=days)).isoformat()


def day(start: datetime.datetime, days: int) -> str:
    return (start + datetime.timedelta(days=days)).date().isoformat()


def keys(moto: Moto) -> dict[str, str]:
    iam: Any = moto.client("iam")
    return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="seed-dev")["AccessKeyMetadata"]}


def stored_key_id(moto: Moto) -> str:
    ssm: Any = moto.client("ssm")
    return str(json.loads(ssm.get_parameter(Name=STORE, WithDecryption=True)["Parameter"]["Value"])["AccessKeyId"])


def clean(*results: CliResult) -> None:
    for result in results:
        assert "Traceback" not in result.all, result.all


def test_adopting_a_hand_made_key_hands_it_over_in_dated_steps(cli: Any, moto: Moto, tmp_path: Path) -> None:
    iam: Any = moto.client("iam")
    iam.create_user(UserName="seed-dev")  # the seed's manual steps: a console user, a key downloaded as CSV
    hand = iam.create_access_key(UserName="seed-dev")["AccessKey"]
    hand_id, hand_secret = hand["AccessKeyId"], hand["SecretAccessKey"]
    manifest = tmp_path / "adopt.yaml"
    manifest.write_text(MANIFEST)
    start = datetime.datetime.now(datetime.UTC)

    # without --adopt: a blocked conflict, nothing written
    refused = cli("plan", str(manifest), RECONCILER_NOW=at(start, 0))
    clean(refused)
    assert "--adopt" in refused.out and "BLOCKED" in refused.out, refused.all

    planned = cli("plan", str(manifest), "--adopt", RECONCILER_NOW=at(start, 0))
    clean(planned)
    assert planned.code == 0, planned.all
    out = planned.out
    assert "& iam.user.seed-dev (iam.user) will be adopted" in out, out
    assert "& iam.user.seed-dev.access_keys (iam.access_key) will be adopted" in out, out
    assert "0 to add, 0 to change, 0 to replace, 0 to destroy, 2 to adopt" in out, out
    assert f"step 1, this apply ({day(start, 0)}): a new key is created into ssm:{STORE}" in out, out
    assert f"step 2, {day(start, 0)} to {day(start, 7)}: key {hand_id} stays active" in out, out
    assert f"step 3, on the first apply from {day(start, 7)}: key {hand_id} is deactivated" in out, out
    assert f"step 4, on the first apply from {day(start, 14)}" in out and f"key {hand_id} is deleted" in out, out
    assert hand_secret not in planned.all
    as_json = cli("plan", str(manifest), "--adopt", "--format", "json", RECONCILER_NOW=at(start, 0))
    body = json.loads(as_json.out)
    assert body["summary"]["adopt"] == 2 and {c["action"] for c in body["changes"]} == {"adopt"}

    applied = cli("apply", str(manifest), "--adopt", "--auto-approve", RECONCILER_NOW=at(start, 0))
    clean(applied)
    assert applied.code == 0, applied.all
    assert hand_secret not in applied.all
    new_id = stored_key_id(moto)
    assert new_id != hand_id
    assert keys(moto) == {hand_id: "Active", new_id: "Active"}  # the old key still works
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="seed-dev")["Tags"]}
    assert tags["reconciler:stack"] == "adoptkey" and f"reconciler:key-handover-{hand_id}" in tags

    # the next plan: nothing to do, only the dated retirement
    for days in (0, 3):
        calm = cli("plan", str(manifest), "--detailed-exitcode", RECONCILER_NOW=at(start, days))
        clean(calm)
        assert calm.code == 0, calm.all
        assert "No changes." in calm.out, calm.out
        assert f"scheduled: key {hand_id} (made by hand, handed over on {day(start, 0)}) stays active until " \
               f"{day(start, 7)}" in calm.out, calm.out
    drift = cli("drift", str(manifest), "--format", "json", RECONCILER_NOW=at(start, 3))
    clean(drift)
    statuses = {r["address"]: r["status"] for r in json.loads(drift.out)["resources"]}
    assert set(statuses.values()) == {"IN_SYNC"}, drift.out

    # past grace_days: deactivated (never deleted yet), the stored key stays
    due = cli("plan", str(manifest), RECONCILER_NOW=at(start, 8))
    assert f"keys.{hand_id}" in due.out and "1 to change" in due.out, due.out
    retired = cli("apply", str(manifest), "--auto-approve", RECONCILER_NOW=at(start, 8))
    clean(retired)
    assert retired.code == 0, retired.all
    assert keys(moto) == {hand_id: "Inactive", new_id: "Active"}
    waiting = cli("plan", str(manifest), "--detailed-exitcode", RECONCILER_NOW=at(start, 10))
    assert waiting.code == 0, waiting.all
    assert f"key {hand_id} (made by hand, handed over on {day(start, 0)}) was deactivated on {day(start, 8)}; " \
           f"it is deleted on the first apply from {day(start, 15)}" in waiting.out, waiting.out

    # after the further grace: deleted, its bookkeeping gone, and nothing more to say
    gone = cli("apply", str(manifest), "--auto-approve", RECONCILER_NOW=at(start, 16))
    clean(gone)
    assert gone.code == 0, gone.all
    assert keys(moto) == {new_id: "Active"}
    assert stored_key_id(moto) == new_id
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="seed-dev")["Tags"]}
    assert not any(hand_id in k for k in tags), tags
    final = cli("plan", str(manifest), "--detailed-exitcode", RECONCILER_NOW=at(start, 17))
    assert final.code == 0 and "scheduled" not in final.out, final.all
