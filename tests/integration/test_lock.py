"""The stack lease against moto server: taken before the read, renewed, taken over atomically after a crash.

The lease lives in `/reconciler/locks/<stack>/<generation>`; these tests write and
read those parameters directly, and run `reconcile` as a separate process (through
the fault proxy when the test needs to see or break the traffic).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from reconciler.engine.lock import Lease
from reconciler.errors import LockError
from tests.conftest import FAKE_KEY, ROOT, CliResult, Moto, run_cli
from tests.faults.plugin import Faulty
from tests.faults.proxy import Fault, rule

STACK = "locktest"
FOLDER = f"/reconciler/locks/{STACK}"
MANIFEST = f"""\
version: 1
stack: {STACK}
region: us-east-1
iam:
  users:
    - name: svc
      access_keys: {{store: {{secretsmanager: {STACK}/svc}}}}
"""


def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    return path


def ssm(moto: Moto) -> Any:
    return moto.client("ssm")


def lease_params(moto: Moto) -> dict[str, dict[str, Any]]:
    found = ssm(moto).get_parameters_by_path(Path=FOLDER, Recursive=False)["Parameters"]
    return {p["Name"]: json.loads(p["Value"]) for p in found}


def foreign_lease(moto: Moto, generation: int = 1, lifetime: float = 60) -> None:
    """A lease held by another apply, written (renewed) just now by AWS's clock."""
    ssm(moto).put_parameter(Name=f"{FOLDER}/{generation}", Type="String", Overwrite=True, Value=json.dumps(
        {"owner": "someone@else pid 1", "token": "theirs", "lifetime": lifetime}))


def lease(moto: Moto, lifetime: float = 60) -> Lease:
    import boto3

    client = boto3.client("ssm", endpoint_url=moto.endpoint, region_name="us-east-1",
                          aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_KEY)
    return Lease(client, STACK, lifetime=lifetime)


def test_a_live_lease_refuses_clearly_even_when_the_local_clock_is_31_minutes_fast(
        cli: Any, moto: Moto, tmp_path: Path) -> None:
    path = manifest(tmp_path)
    foreign_lease(moto)
    fast = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=31)).isoformat()
    started = time.monotonic()
    held = cli("apply", str(path), "--auto-approve", "--lock-timeout", "2", RECONCILER_NOW=fast)
    assert held.code == 1 and "locked by someone@else pid 1" in held.err, held.all
    assert "waiting up to" in held.err and "--lock-timeout" in held.err and "Traceback" not in held.all
    assert time.monotonic() - started < 30
    iam: Any = moto.client("iam")
    assert iam.list_users()["Users"] == []
    assert list(lease_params(moto)) == [f"{FOLDER}/1"], "the live lease is untouched"


def test_the_lease_is_taken_before_the_first_read(faulty: Faulty, moto: Moto, tmp_path: Path) -> None:
    path = manifest(tmp_path)
    result = run_cli(["apply", str(path), "--auto-approve"], faulty.env())
    assert result.code == 0, result.all
    ops = [c.operation for c in faulty.calls]
    first_put = ops.index("PutParameter")
    assert all(op in ("GetCallerIdentity", "GetParametersByPath") for op in ops[:first_put]), ops
    assert ops[-1] == "DeleteParameter" and lease_params(moto) == {}


def test_apply_plan_waits_for_the_lease_before_its_freshness_check(cli: Any, moto: Moto, tmp_path: Path) -> None:
    path = manifest(tmp_path)
    plan_file = tmp_path / "plan.json"
    assert cli("plan", str(path), "--out", str(plan_file)).code == 0
    foreign_lease(moto)
    refused = cli("apply", str(path), "--plan", str(plan_file), "--lock-timeout", "0")
    assert refused.code == 1 and "locked by someone@else" in refused.err, refused.all


def test_a_lapsed_lease_is_taken_over_and_old_generations_are_removed(cli: Any, moto: Moto,
                                                                       tmp_path: Path) -> None:
    path = manifest(tmp_path)
    foreign_lease(moto, generation=4, lifetime=1)
    time.sleep(2.5)  # AWS's Date header has whole seconds
    result = cli("apply", str(path), "--auto-approve", "--lock-timeout", "0", "-v")
    assert result.code == 0, result.all
    assert lease_params(moto) == {}


def test_two_racers_for_a_lapsed_lease_never_both_win(moto: Moto) -> None:
    foreign_lease(moto, generation=1, lifetime=1)
    time.sleep(2.5)
    racers = [lease(moto) for _ in range(6)]
    won: list[Lease] = []
    errors: list[str] = []
    barrier = threading.Barrier(len(racers))

    def race(candidate: Lease) -> None:
        barrier.wait()
        try:
            candidate.acquire(timeout=0)
            won.append(candidate)
        except LockError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=race, args=(r,)) for r in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1, (won, errors)
    assert len(errors) == len(racers) - 1 and all("is locked by" in e for e in errors), errors
    (name,) = lease_params(moto)
    assert lease_params(moto)[name]["token"] == won[0].token and name != f"{FOLDER}/1"
    won[0].release()
    assert lease_params(moto) == {}


def test_the_holder_renews_so_a_live_lease_never_lapses(moto: Moto) -> None:
    holder = lease(moto, lifetime=1.5)
    holder.acquire(timeout=0)
    time.sleep(4)  # well past a lifetime: only renewals keep it alive
    rival = lease(moto, lifetime=1.5)
    try:
        rival.acquire(timeout=0)
        raise AssertionError("a renewed lease was taken over")
    except LockError as exc:
        assert "is locked by" in str(exc)
    assert not holder.lost.is_set()
    holder.release()
    rival.acquire(timeout=0)
    rival.release()


def test_a_holder_whose_lease_is_taken_notices_and_release_keeps_the_other(moto: Moto) -> None:
    holder = lease(moto, lifetime=1.5)
    holder.acquire(timeout=0)
    assert holder.name is not None
    # someone removed it by hand (`unlock --force`) and another apply took the lease
    ssm(moto).delete_parameter(Name=holder.name)
    foreign_lease(moto, generation=7)
    assert holder.lost.wait(5), "the holder did not notice"
    holder.release()
    assert list(lease_params(moto)) == [f"{FOLDER}/7"], "release deleted a lease that was not ours"


def test_unlock_shows_the_holder_and_needs_force_without_a_terminal(cli: Any, moto: Moto, tmp_path: Path) -> None:
    path = manifest(tmp_path)
    assert cli("unlock", str(path)).out == "no lock was held\n"
    foreign_lease(moto)
    refused = cli("unlock", str(path))
    assert refused.code == 3 and "someone@else pid 1" in refused.err and "--force" in refused.err, refused.all
    assert list(lease_params(moto)) == [f"{FOLDER}/1"]
    forced = cli("unlock", str(path), "--force")
    assert forced.code == 0 and forced.out == "lock removed\n" and "someone@else" in forced.err, forced.all
    assert lease_params(moto) == {}


def test_an_aws_error_taking_the_lease_is_one_line(faulty: Faulty, moto: Moto, tmp_path: Path) -> None:
    path = manifest(tmp_path)
    faulty.add(rule(Fault.THROTTLE, "PutParameter"))
    result = run_cli(["apply", str(path), "--auto-approve"], faulty.env(RECONCILER_MAX_ATTEMPTS="1"))
    assert result.code == 1 and "Traceback" not in result.all, result.all
    (line,) = [x for x in result.err.splitlines() if x.startswith("error:")]
    assert "taking the lease failed (ThrottlingException" in line, result.err
    assert faulty.writes() == ["PutParameter"], "nothing else was written"


def test_an_aws_error_releasing_the_lease_still_prints_the_results(faulty: Faulty, moto: Moto,
                                                                    tmp_path: Path) -> None:
    path = manifest(tmp_path)
    faulty.add(rule(Fault.HTTP_500, "DeleteParameter"))
    result = run_cli(["apply", str(path), "--auto-approve"], faulty.env(RECONCILER_MAX_ATTEMPTS="1"))
    assert result.code == 1 and "Traceback" not in result.all, result.all
    assert "Apply complete: 2 done, 0 failed, 0 skipped." in result.out, result.out
    assert "error: the stack lock: releasing the lease failed (InternalFailure" in result.err, result.err


def test_an_aws_error_taking_the_lease_for_destroy_is_one_line(faulty: Faulty, moto: Moto, tmp_path: Path) -> None:
    path = manifest(tmp_path)
    faulty.add(rule(Fault.HTTP_503, "GetParametersByPath"))
    result = run_cli(["destroy", str(path), "--auto-approve"], faulty.env(RECONCILER_MAX_ATTEMPTS="1"))
    assert result.code == 1 and "Traceback" not in result.all, result.all
    assert "error: the stack lock: reading the lease failed (ServiceUnavailable" in result.err, result.err


# -- kill -9, then a plain re-run: no `reconcile unlock` ---------------------------------

def test_an_apply_killed_with_9_needs_no_unlock(faulty: Faulty, moto: Moto, tmp_path: Path) -> None:
    path = manifest(tmp_path)
    env = faulty.env(RECONCILER_LEASE_SECONDS="2")
    faulty.add(rule(Fault.HOLD, "CreateUser"))
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "apply", str(path), "--auto-approve"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert faulty.held.wait(60), "the apply never reached CreateUser"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    faulty.release()
    faulty.clear()
    assert len(lease_params(moto)) == 1, "the dead apply's lease is still there"
    rerun = run_cli(["apply", str(path), "--auto-approve"], env)
    assert rerun.code == 0, rerun.all
    assert "is locked by" in rerun.err and "waiting up to" in rerun.err, rerun.err  # who held it, how long
    assert lease_params(moto) == {}
    assert run_cli(["plan", str(path), "--detailed-exitcode"], env).code == 0


# -- signals -------------------------------------------------------------------------------

NETWORK = f"""\
version: 1
stack: {STACK}
region: us-east-1
network:
  vpcs:
    - name: main
      cidr: 10.30.0.0/16
      subnets:
        - {{name: a, cidr: 10.30.0.0/24, az: us-east-1a, public: true}}
        - {{name: b, cidr: 10.30.1.0/24, az: us-east-1b}}
        - {{name: c, cidr: 10.30.2.0/24, az: us-east-1c}}
      security_groups:
        - name: app
          ingress: [{{protocol: tcp, ports: "8080", from: "10.30.0.0/16"}}]
"""


def _signalled_apply(faulty: Faulty, path: Path, signum: int) -> CliResult:
    """Apply with every write slowed down; send `signum` once the first action is done."""
    faulty.add(rule(Fault.LATENCY, writes_only=True, delay=0.4))
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "apply", str(path), "--auto-approve",
                             "--parallelism", "1"], env=faulty.env(), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    err = ""
    for line in proc.stderr:
        err += line
        if " created (" in line:  # the first action is done (a plain line: stderr is a pipe)
            proc.send_signal(signum)
            break
    out, rest = proc.communicate(timeout=120)
    return CliResult(proc.returncode, out, err + rest)


def _assert_stopped_cleanly(result: CliResult, code: int, name: str, moto: Moto) -> None:
    assert result.code == code, result.all
    assert f"not started: interrupted by {name}" in result.out, result.out  # what was not done
    assert re.search(r"Z vpc\.main \(vpc-\w+\) created \(", result.err), result.err  # what was done, once
    summary = result.out[result.out.index("\nPlan: "):].split("\n", 2)[2]  # what apply printed after the plan
    assert "Apply incomplete: " in summary and "vpc.main " not in summary, result.out  # and not again
    assert f"error: interrupted by {name}" in result.err and "Traceback" not in result.all, result.err
    assert lease_params(moto) == {}, "the lease was released"


def test_sigterm_stops_starting_actions_releases_the_lease_and_exits_143(faulty: Faulty, moto: Moto,
                                                                          tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(NETWORK)
    stopped = _signalled_apply(faulty, path, signal.SIGTERM)
    _assert_stopped_cleanly(stopped, 143, "SIGTERM", moto)
    faulty.clear()
    assert run_cli(["apply", str(path), "--auto-approve"], faulty.env()).code == 0
    assert run_cli(["plan", str(path), "--detailed-exitcode"], faulty.env()).code == 0


def test_sigint_stops_starting_actions_releases_the_lease_and_exits_130(faulty: Faulty, moto: Moto,
                                                                         tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(NETWORK)
    stopped = _signalled_apply(faulty, path, signal.SIGINT)
    _assert_stopped_cleanly(stopped, 130, "SIGINT", moto)
    faulty.clear()
    assert run_cli(["apply", str(path), "--auto-approve"], faulty.env()).code == 0
    assert run_cli(["plan", str(path), "--detailed-exitcode"], faulty.env()).code == 0


def test_a_lost_lease_stops_the_apply_starting_actions(faulty: Faulty, moto: Moto, tmp_path: Path) -> None:
    """Someone removed the lease by hand and another apply took it: this apply starts nothing more, exit 1."""
    path = tmp_path / "net.yaml"
    path.write_text(NETWORK)
    faulty.add(rule(Fault.LATENCY, writes_only=True, unless_body_contains="/reconciler/locks/", delay=0.5))
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "apply", str(path), "--auto-approve",
                             "--parallelism", "1"], env=faulty.env(RECONCILER_LEASE_SECONDS="1.5"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    err = ""
    for line in proc.stderr:
        err += line
        if " created (" in line:  # the first action is done (a plain line: stderr is a pipe)
            (name,) = lease_params(moto)
            ssm(moto).delete_parameter(Name=name)
            foreign_lease(moto, generation=9)
            break
    out, rest = proc.communicate(timeout=120)
    result = CliResult(proc.returncode, out, err + rest)
    assert result.code == 1 and "Traceback" not in result.all, result.all
    assert "not started: lost the stack lock" in result.out and "Apply incomplete: " in result.out, result.out
    assert list(lease_params(moto)) == [f"{FOLDER}/9"], "the other apply's lease is untouched"


def test_unlock_on_a_terminal_asks_and_a_no_keeps_the_lease(moto: Moto, tmp_path: Path) -> None:
    path = manifest(tmp_path)
    foreign_lease(moto)

    def on_terminal(answer: str) -> CliResult:
        master, slave = os.openpty()  # stdin is a terminal: unlock asks
        proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "unlock", str(path)], env=moto.env(),
                                cwd=ROOT, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.close(slave)
        os.write(master, answer.encode())
        out, err = proc.communicate(timeout=60)
        os.close(master)
        return CliResult(proc.returncode, out, err)

    kept = on_terminal("n\n")
    assert kept.code == 3 and "someone@else pid 1" in kept.err and "still held" in kept.err, kept.all
    assert list(lease_params(moto)) == [f"{FOLDER}/1"]
    removed = on_terminal("y\n")
    assert removed.code == 0 and removed.out == "lock removed\n", removed.all
    assert lease_params(moto) == {}
