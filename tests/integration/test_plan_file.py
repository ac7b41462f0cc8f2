"""Plan files against moto server: review with `plan --out`, then `apply --plan` applies exactly that or refuses.

"Wrote nothing" is proven twice: the moto recorder sees no mutating operation
during the refused apply, and the IAM state is the same before and after.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import jsonschema
import requests

from tests.conftest import ROOT, Moto
from tests.integration.test_drift import operations

BASE = """\
version: 1
stack: plantest
region: us-east-1
iam:
  groups:
    - name: pushers
  users:
    - name: app-dev
      groups: [pushers]
      access_keys:
        count: 1
        store: {secretsmanager: plantest/app-dev}
"""
MORE = BASE + """\
    - name: ci-bot
      groups: [pushers]
"""
PLAN_SCHEMA = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())


def iam_state(moto: Moto) -> dict[str, Any]:
    iam: Any = moto.client("iam")
    details = iam.get_account_authorization_details(Filter=["User", "Group"])
    users = {u["UserName"]: {"groups": sorted(u.get("GroupList", [])),
                             "attached": sorted(p["PolicyArn"] for p in u.get("AttachedManagedPolicies", [])),
                             "tags": sorted((t["Key"], t["Value"]) for t in u.get("Tags", [])),
                             "keys": sorted((k["AccessKeyId"], k["Status"]) for k in iam.list_access_keys(
                                 UserName=u["UserName"])["AccessKeyMetadata"])}
             for u in details["UserDetailList"]}
    groups = sorted(g["GroupName"] for g in details["GroupDetailList"])
    return {"users": users, "groups": groups}


def start_recording(moto: Moto) -> None:
    requests.post(f"{moto.endpoint}/moto-api/recorder/reset-recording", timeout=10)
    requests.post(f"{moto.endpoint}/moto-api/recorder/start-recording", timeout=10)


def stop_recording(moto: Moto) -> list[str]:
    requests.post(f"{moto.endpoint}/moto-api/recorder/stop-recording", timeout=10)
    return operations(moto)


def reviewed(cli: Any, tmp_path: Path, text: str, **env: str) -> tuple[Path, Path]:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(text)
    plan_file = tmp_path / "plan.json"
    result = cli("plan", str(manifest), "--out", str(plan_file), "--format", "markdown", **env)
    assert result.code == 0, result.all
    jsonschema.Draft202012Validator(PLAN_SCHEMA).validate(json.loads(plan_file.read_text()))
    return manifest, plan_file


def test_account_changed_after_review_refuses_with_4_and_writes_nothing(cli: Any, moto: Moto,
                                                                        tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(BASE)
    assert cli("apply", str(base), "--auto-approve").code == 0
    manifest, plan_file = reviewed(cli, tmp_path, MORE)
    iam: Any = moto.client("iam")
    iam.attach_user_policy(UserName="app-dev", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    before = iam_state(moto)
    start_recording(moto)
    try:
        refused = cli("apply", str(manifest), "--plan", str(plan_file))
    finally:
        ops = stop_recording(moto)
    assert refused.code == 4, refused.all
    assert "iam.user.app-dev" in refused.err and "Nothing was changed" in refused.err
    from reconciler.engine.clients import is_read

    # the only writes: taking and releasing the stack's lease, which comes before the freshness check
    assert ops and all(is_read(op) or op in ("PutParameter", "DeleteParameter") for op in ops), ops
    ssm: Any = moto.client("ssm")
    assert ssm.get_parameters_by_path(Path="/reconciler/locks", Recursive=True)["Parameters"] == []
    assert iam_state(moto) == before
    assert "ci-bot" not in before["users"]


def test_unchanged_account_applies_exactly_the_reviewed_plan(cli: Any, moto: Moto, tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(BASE)
    assert cli("apply", str(base), "--auto-approve").code == 0
    manifest, plan_file = reviewed(cli, tmp_path, MORE)
    planned = [(c["action"], c["address"]) for c in json.loads(plan_file.read_text())["changes"]
               if c["action"] != "noop"]
    assert planned == [("create", "iam.user.ci-bot")]
    applied = cli("apply", str(manifest), "--plan", str(plan_file))  # no --auto-approve: the review approved it
    assert applied.code == 0, applied.all
    # each finished change, once: `<time> <address> [(<id>)] created (0.1s)` on stderr (a pipe: plain lines)
    verbs = {"created": "create", "updated": "update", "replaced": "replace", "destroyed": "delete"}
    done = [(verbs[w[-2]], w[1]) for w in map(str.split, applied.err.splitlines())
            if len(w) >= 4 and w[-2] in verbs and w[-1].startswith("(")]
    assert done == planned, applied.err
    assert "1 done, 0 failed" in applied.out
    after = cli("plan", str(manifest), "--detailed-exitcode")
    assert after.code == 0 and "No changes" in after.out, after.all
    assert iam_state(moto)["users"]["ci-bot"]["groups"] == ["pushers"]


def test_a_plan_reviewed_yesterday_still_applies_when_only_the_clock_moved(cli: Any, moto: Moto,
                                                                           tmp_path: Path) -> None:
    # key ages move every day; they must not make every reviewed plan stale overnight
    base = tmp_path / "base.yaml"
    base.write_text(BASE)
    today = datetime.datetime.now(datetime.UTC)
    assert cli("apply", str(base), "--auto-approve").code == 0
    manifest, plan_file = reviewed(cli, tmp_path, MORE, RECONCILER_NOW=today.isoformat())
    tomorrow = (today + datetime.timedelta(days=1, hours=1)).isoformat()
    applied = cli("apply", str(manifest), "--plan", str(plan_file), RECONCILER_NOW=tomorrow)
    assert applied.code == 0, applied.all
    # but a rotation that fell due in between changes the plan: refused
    later = cli("plan", str(manifest), "--out", str(plan_file), RECONCILER_NOW=tomorrow)
    assert later.code == 0
    due = (today + datetime.timedelta(days=120)).isoformat()
    stale = cli("apply", str(manifest), "--plan", str(plan_file), RECONCILER_NOW=due)
    assert stale.code == 4 and "differ" in stale.err, stale.all


def test_manifest_edited_after_review_refuses_with_4(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest, plan_file = reviewed(cli, tmp_path, BASE)
    manifest.write_text(BASE + "      tags: {team: platform}\n")
    refused = cli("apply", str(manifest), "--plan", str(plan_file))
    assert refused.code == 4 and "manifest" in refused.err, refused.all
    iam: Any = moto.client("iam")
    assert iam.list_users()["Users"] == []


def test_invalid_plan_files_exit_3(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest, plan_file = reviewed(cli, tmp_path, BASE)
    good = json.loads(plan_file.read_text())
    from reconciler import __version__

    assert good["reconciler_version"] == __version__
    cases = {
        "garbage.json": "{not json",
        "missing.json": json.dumps({k: v for k, v in good.items() if k != "live_sha256"}),
        "action.json": json.dumps({**good, "changes": [{**good["changes"][0], "action": "explode"}]}),
        "version.json": json.dumps({**good, "format_version": 99}),
        "other-tool-version.json": json.dumps({**good, "reconciler_version": "0.0.1"}),
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        result = cli("apply", str(manifest), "--plan", str(path))
        assert result.code == 3, (name, result.all)
        assert "plan file" in result.err, (name, result.err)
    absent = cli("apply", str(manifest), "--plan", str(tmp_path / "absent.json"))
    assert absent.code == 3, absent.all
    iam: Any = moto.client("iam")
    assert iam.list_users()["Users"] == []


def test_plan_output_is_deterministic(cli: Any, moto: Moto, tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(BASE)
    assert cli("apply", str(base), "--auto-approve").code == 0
    manifest = tmp_path / "m.yaml"
    manifest.write_text(MORE)
    outputs = []
    for i in range(2):
        out = tmp_path / f"plan{i}.json"
        result = cli("plan", str(manifest), "--format", "json", "--out", str(out))
        assert result.code == 0, result.all
        assert result.out == out.read_text()
        outputs.append(out.read_bytes())
        outputs.append(cli("plan", str(manifest), "--format", "markdown").out.encode())
    assert outputs[0] == outputs[2] and outputs[1] == outputs[3]
