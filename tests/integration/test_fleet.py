"""Many manifests in one run, through the real CLI against moto server (SPEC.md §9).

Three stacks in three accounts, one manifest each, each assuming `reconciler` in its account
(moto lands the assumed role's calls in that account); by-hand changes are made with plain
boto3 clients in the stack's account, as a person would; a failing stack is made by the fault
proxy denying that stack's AssumeRole (moto itself assumes any role).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, Moto, run_cli
from tests.faults.plugin import Faulty
from tests.faults.proxy import Fault, rule
from tests.integration.test_assume_role import in_account  # a client in another moto account

NAMES = ("alpha", "beta", "gamma")
ACCOUNTS = {"alpha": "111111111111", "beta": "222222222222", "gamma": "333333333333"}


def _manifest(name: str) -> str:
    return f"""\
version: 1
stack: fleet-{name}
region: us-east-1
account: "{ACCOUNTS[name]}"
assume_role: {{role_name: reconciler}}
iam:
  users:
    - name: {name}-app
ecr:
  repositories:
    - name: {name}-web
"""


def fleet(tmp_path: Path) -> list[Path]:
    directory = tmp_path / "fleet"
    directory.mkdir()
    paths = []
    for name in NAMES:
        path = directory / f"{name}.yaml"
        path.write_text(_manifest(name))
        paths.append(path)
    return paths


def applied(moto: Moto, tmp_path: Path) -> list[Path]:
    paths = fleet(tmp_path)
    result = run_cli(["apply", *map(str, paths), "--auto-approve"], moto.env())
    assert result.code == 0, result.all
    return paths


def rows(table: str) -> dict[str, str]:
    """stack -> status, from the text table of a fleet run (a row starts with the status, names the stack)."""
    found = {}
    for line in table.splitlines()[1:]:
        words = line.split()
        stacks = [w for w in words if w in {f"fleet-{name}" for name in NAMES}]
        if words and stacks and words[0] in {"in_sync", "drift", "changes", "no_changes", "applied", "error"}:
            found[stacks[0]] = words[0]
    return found


def without_timings(report: dict[str, Any]) -> dict[str, Any]:
    stacks = [{k: v for k, v in stack.items() if k not in ("seconds", "started_at")} for stack in report["stacks"]]
    return {**{k: v for k, v in report.items() if k not in ("seconds", "stacks", "shard")}, "stacks": stacks}


def test_drift_over_three_stacks_names_the_drifted_one_and_groups_text_by_stack(moto: Moto, tmp_path: Path) -> None:
    paths = applied(moto, tmp_path)
    ecr = in_account(moto, ACCOUNTS["beta"], "ecr")
    ecr.put_image_tag_mutability(repositoryName="beta-web", imageTagMutability="MUTABLE")  # by hand

    result = run_cli(["drift", str(tmp_path / "fleet" / "*.yaml"), "--format", "json"], moto.env())
    assert result.code == 2, result.all
    report = json.loads(result.out)
    assert report["format"] == "reconciler-fleet-report" and report["command"] == "drift"
    assert report["exit_code"] == 2 and report["summary"] == {"stacks": 3, "drift": 1, "in_sync": 2}
    statuses = {s["stack"]: (s["status"], s["exit_code"], s["manifest"]) for s in report["stacks"]}
    assert statuses == {"fleet-alpha": ("in_sync", 0, str(paths[0])), "fleet-beta": ("drift", 2, str(paths[1])),
                        "fleet-gamma": ("in_sync", 0, str(paths[2]))}
    beta = next(s for s in report["stacks"] if s["stack"] == "fleet-beta")
    assert beta["report"]["drift"] is True and beta["account"] == ACCOUNTS["beta"] and beta["region"] == "us-east-1"
    assert beta["report"]["account"] == ACCOUNTS["beta"]  # read in its own account, through its role
    assert any(r["address"] == "ecr.repository.beta-web" and r["status"] == "MODIFIED"
               for r in beta["report"]["resources"]), beta["report"]

    text = run_cli(["drift", *map(str, paths), "--report", str(tmp_path / "fleet.json")], moto.env())
    assert text.code == 2, text.all
    blocks = text.out.split("=== ")
    for name in NAMES:  # each stack's own report is printed whole, under its header
        block = next(b for b in blocks if b.startswith(f"fleet-{name} "))
        assert f"Drift for stack fleet-{name}" in block, text.out
        assert ("beta-web" in block) == (name == "beta"), block
    table = text.out[text.out.index("STATUS"):]
    assert table.index("fleet-beta") < table.index("fleet-alpha"), table  # drift first
    assert rows(table) == {"fleet-alpha": "in_sync", "fleet-beta": "drift", "fleet-gamma": "in_sync"}, table
    written = json.loads((tmp_path / "fleet.json").read_text())
    assert without_timings(written) == without_timings(report)

    quiet = run_cli(["drift", *map(str, paths), "-q"], moto.env())  # -q: only the stacks that need someone
    assert quiet.code == 2, quiet.all
    assert "=== fleet-beta " in quiet.out and "=== fleet-alpha " not in quiet.out, quiet.out
    assert rows(quiet.out[quiet.out.index("STATUS"):]) == {"fleet-alpha": "in_sync", "fleet-beta": "drift",
                                                          "fleet-gamma": "in_sync"}, quiet.out


def test_a_stack_whose_reads_are_denied_errors_and_the_others_still_report(moto: Moto, faulty: Faulty,
                                                                           tmp_path: Path) -> None:
    paths = applied(moto, tmp_path)
    faulty.add(rule(Fault.DENIED, "AssumeRole", body_contains=ACCOUNTS["gamma"]))
    result = run_cli(["drift", *map(str, paths), "--format", "json"], faulty.env())
    assert result.code == 1, result.all
    report = json.loads(result.out)
    statuses = {s["stack"]: s["status"] for s in report["stacks"]}
    assert statuses == {"fleet-alpha": "in_sync", "fleet-beta": "in_sync", "fleet-gamma": "error"}, report
    gamma = next(s for s in report["stacks"] if s["stack"] == "fleet-gamma")
    assert gamma["exit_code"] == 1 and gamma["report"] is None, gamma
    assert f"cannot assume the role arn:aws:iam::{ACCOUNTS['gamma']}:role/reconciler" in gamma["error"], gamma
    assert "Traceback" not in result.all
    assert faulty.faults()["AssumeRole:denied"] >= 1

    text = run_cli(["drift", *map(str, paths)], faulty.env())
    assert text.code == 1, text.all
    assert "=== fleet-gamma " in text.out and "error: " in text.out.split("=== fleet-gamma ")[1], text.out
    assert rows(text.out[text.out.index("STATUS"):]) == {"fleet-alpha": "in_sync", "fleet-beta": "in_sync",
                                                        "fleet-gamma": "error"}, text.out


def test_shards_merged_equal_the_single_run(moto: Moto, tmp_path: Path) -> None:
    paths = applied(moto, tmp_path)
    ecr = in_account(moto, ACCOUNTS["alpha"], "ecr")
    ecr.put_image_tag_mutability(repositoryName="alpha-web", imageTagMutability="MUTABLE")  # by hand
    whole = run_cli(["drift", *map(str, paths), "--format", "json"], moto.env())
    assert whole.code == 2, whole.all
    shards = []
    for index in range(3):
        shard = run_cli(["drift", *map(str, paths), "--shard", f"{index}/3", "--report",
                         str(tmp_path / f"shard-{index}.json")], moto.env())
        assert shard.code in (0, 2), shard.all
        shards.append(json.loads((tmp_path / f"shard-{index}.json").read_text()))
        assert shards[-1]["shard"] == f"{index}/3"
    assert sorted(len(s["stacks"]) for s in shards) == [1, 1, 1]  # balanced
    from reconciler.plan.fleet import merge_reports

    merged = merge_reports(shards, [f"shard-{i}.json" for i in range(3)])
    assert without_timings(merged) == without_timings(json.loads(whole.out))

    # auto/N reads the index a Kubernetes indexed job sets; a shard beyond the stacks is empty, exit 0
    auto = run_cli(["drift", str(paths[0]), "--shard", "auto/3", "--format", "json"],
                   moto.env(JOB_COMPLETION_INDEX="2"))
    assert auto.code in (0, 2), auto.all
    assert json.loads(auto.out)["shard"] == "2/3"


def test_an_invalid_manifest_among_valid_ones_stops_the_run_before_any_aws_call(faulty: Faulty,
                                                                               tmp_path: Path) -> None:
    paths = fleet(tmp_path)
    broken = tmp_path / "fleet" / "broken.yaml"
    broken.write_text("version: 1\nstack: Not_A_Stack\nregion: us-east-1\n")
    result = run_cli(["drift", *map(str, paths), str(broken)], faulty.env())
    assert result.code == 3, result.all
    assert f"{broken}:2:" in result.err, result.err
    assert faulty.calls == [], faulty.calls

    twice = tmp_path / "twice.yaml"
    twice.write_text(_manifest("alpha"))
    doubled = run_cli(["plan", *map(str, paths), str(twice)], faulty.env())
    assert doubled.code == 3 and "fleet-alpha" in doubled.err and str(twice) in doubled.err, doubled.all
    assert faulty.calls == []


def test_fleet_apply_then_fleet_plan_has_nothing_to_do(moto: Moto, tmp_path: Path) -> None:
    paths = fleet(tmp_path)
    refused = run_cli(["apply", *map(str, paths[:2])], moto.env())
    assert refused.code == 3 and "--auto-approve" in refused.err, refused.all
    assert moto.client("iam").list_users()["Users"] == []  # type: ignore[attr-defined]

    first = run_cli(["apply", *map(str, paths), "--auto-approve", "--jobs", "2"], moto.env())
    assert first.code == 0, first.all
    assert "[fleet-alpha] " in first.err and "iam.user.alpha-app created" in first.err, first.err
    assert set(rows(first.out[first.out.index("STATUS"):]).values()) == {"applied"}, first.out
    for name, account in ACCOUNTS.items():  # each stack in its own account, none in the runner's
        users = [u["UserName"] for u in in_account(moto, account, "iam").list_users()["Users"]]
        assert users == [f"{name}-app"], (account, users)
    assert moto.client("iam").list_users()["Users"] == []  # type: ignore[attr-defined]

    again = run_cli(["plan", *map(str, paths), "--detailed-exitcode", "--format", "json"], moto.env())
    assert again.code == 0, again.all
    assert {s["status"] for s in json.loads(again.out)["stacks"]} == {"no_changes"}


def test_globs_are_expanded_by_the_tool_and_one_that_matches_nothing_is_a_usage_error(moto: Moto,
                                                                                      tmp_path: Path) -> None:
    fleet(tmp_path)
    planned = run_cli(["plan", str(tmp_path / "fleet" / "*.yaml"), "--detailed-exitcode"], moto.env())
    assert planned.code == 2, planned.all
    assert planned.out.count("=== fleet-") == 3, planned.out
    assert rows(planned.out[planned.out.index("STATUS"):]) == dict.fromkeys(
        ("fleet-alpha", "fleet-beta", "fleet-gamma"), "changes"), planned.out
    nothing = run_cli(["plan", str(tmp_path / "nowhere" / "*.yaml")], moto.env())
    assert nothing.code == 3 and "matches no file" in nothing.err, nothing.all
    out = run_cli(["plan", str(tmp_path / "fleet" / "*.yaml"), "--out", str(tmp_path / "p.json")], moto.env())
    assert out.code == 3 and "--out" in out.err, out.all


def test_ctrl_c_starts_no_new_stack_stops_the_running_apply_safely_and_reports_every_stack(
        moto: Moto, faulty: Faulty, tmp_path: Path) -> None:
    paths = fleet(tmp_path)
    paths[0].write_text(_manifest("alpha").replace("iam:\n  users:\n", "iam:\n  users:\n" + "".join(
        f"    - name: alpha-{n}\n" for n in ("ci", "ops", "audit", "deploy"))))  # actions left to not start
    report_file = tmp_path / "fleet.json"
    faulty.add(rule(Fault.LATENCY, writes_only=True, delay=0.4))
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "apply", *map(str, paths), "--auto-approve",
                             "--jobs", "1", "--parallelism", "1", "--report", str(report_file)],
                            env=faulty.env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    err = ""
    for line in proc.stderr:
        err += line
        if " created (" in line:  # the first stack's first action is done
            proc.send_signal(signal.SIGINT)
            break
    out, rest = proc.communicate(timeout=120)
    err += rest
    assert proc.returncode == 130, out + err
    assert "error: interrupted by SIGINT" in err and "Traceback" not in out + err, err
    report = json.loads(report_file.read_text())
    stacks = {s["stack"]: s for s in report["stacks"]}
    assert sorted(stacks) == ["fleet-alpha", "fleet-beta", "fleet-gamma"]
    assert "interrupted by SIGINT" in stacks["fleet-alpha"]["error"], stacks["fleet-alpha"]
    assert stacks["fleet-beta"]["error"] == stacks["fleet-gamma"]["error"] == "not started: interrupted"
    assert "Apply incomplete: " in out, out  # the running stack stopped at a safe point and said so
    ssm = in_account(moto, ACCOUNTS["alpha"], "ssm")
    assert ssm.get_parameters_by_path(Path="/reconciler/locks", Recursive=True)["Parameters"] == []
    faulty.clear()
    assert run_cli(["apply", *map(str, paths), "--auto-approve"], faulty.env()).code == 0
