"""`make bench`: API calls against their bound, wall time and peak RSS at three stack sizes.

Not a test. It starts a moto server and the fault proxy (tests/faults/proxy.py) on
127.0.0.1 with an injected latency per call (default 20 ms, roughly a nearby AWS
region), first checks that the latency is honest (boto3 through the proxy must see
at most 1.5x the injected latency per request, or the bench fails: see
bench/latency.py), then for three generated manifests (about 50, 500 and 2,000
addresses: IAM users with access keys, ECR repositories, VPCs with per-AZ NAT) runs
`reconcile` as a user would, as a separate process:

    plan (empty account) -> apply --auto-approve -> plan (converged) -> drift

For each step: the calls the proxy saw (by operation), the wall time and the peak RSS
of the `reconcile` process; for the converged plan and drift, the bound (the least
calls AWS's API shape allows, bench/bound.py) and calls / bound; for the apply, the
critical path from apply's own graph (bench/critical.py) x calls per action x latency
beside the measured time; and `validate` of the largest manifest. Results go to
bench/results/<size>.json and bench/results/summary.md (printed at the end).

With `--compare terraform` (when a terraform binary and the AWS provider in a filesystem mirror are on the
machine: bench/terraform.py), each size is also built by Terraform from the equivalent configuration, on a
reset moto behind the same proxy: plan from empty, apply, converged plan, side by side with ours.

Usage: python scripts/bench.py [--sizes small,medium,large] [--latency-ms 20] [--compare terraform] [--repeat 3]
       python scripts/bench.py --fleet 100   (the fleet bench: bench/fleet.py)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not scripts/: `bench` is the package bench/, not this file

import requests  # noqa: E402

from bench.bound import drift_bound, plan_bound  # noqa: E402
from bench.critical import acting_span, critical_path, occupancy  # noqa: E402
from bench.floor import emulator_rate, pacing_floor  # noqa: E402
from bench.latency import measure  # noqa: E402
from reconciler.kinds import all_kinds  # noqa: E402
from tests.faults.proxy import Fault, FaultProxy, rule  # noqa: E402

STACK = "bench"
REGION = "us-east-1"
AZS = ("us-east-1a", "us-east-1b")
RESULTS = ROOT / "bench" / "results"
STEPS = ("plan-empty", "apply", "plan-converged", "drift")  # the order they run in
# what users run: the installed command (`python -m reconciler.cli` would also compile cli.py on every start,
# since a module run as __main__ gets no cached bytecode)
_INSTALLED = Path(sys.executable).with_name("reconcile")
RECONCILE = [str(_INSTALLED)] if _INSTALLED.exists() else [sys.executable, "-m", "reconciler"]
HONEST = 1.5  # the proxy check fails above this many times the injected latency per request
# (users with keys, repositories, VPCs): about 50, 500 and 2,000 addresses; medium is the issue's "large stack"
SIZES = {"small": (10, 10, 1), "medium": (80, 80, 16), "large": (320, 320, 64),
         "issue": (40, 40, 8)}  # issue 14's "large stack" (~245 addresses), not run unless asked


# -- manifests -------------------------------------------------------------------

def manifest(users: int, repos: int, vpcs: int) -> str:
    """A valid manifest with `users` IAM users (one key each, half in Secrets Manager, half in SSM),
    `repos` ECR repositories and `vpcs` VPCs (2 public + 2 private subnets in two AZs, IGW, a NAT
    gateway per AZ, an S3 gateway endpoint, one security group)."""
    out = [f"version: 1\nstack: {STACK}\nregion: {REGION}\ntags: {{env: bench}}\n"]
    if users:
        out.append("iam:\n  groups:\n")
        for g in range(5):
            out.append(f"    - name: team-{g}\n      inline_policies:\n        describe:\n"
                       f"          Version: \"2012-10-17\"\n          Statement: [{{Effect: Allow, "
                       f"Action: [\"ecr:DescribeRepositories\"], Resource: \"*\"}}]\n")
        out.append("  users:\n")
        for u in range(users):
            store = f"secretsmanager: {STACK}/svc-{u:04d}" if u % 2 else f"ssm: /{STACK}/svc-{u:04d}/key"
            out.append(f"    - name: svc-{u:04d}\n      groups: [team-{u % 5}]\n"
                       f"      access_keys: {{count: 1, rotate_after_days: 90, store: {{{store}}}}}\n")
    if repos:
        out.append("ecr:\n  repositories:\n")
        out.extend(f"    - name: bench/repo-{r:04d}\n" for r in range(repos))
    if vpcs:
        out.append("network:\n  vpcs:\n")
        for v in range(vpcs):
            out.append(f"""\
    - name: net-{v:02d}
      cidr: 10.{v}.0.0/16
      subnets:
        - {{name: public-a, cidr: 10.{v}.0.0/24, az: {AZS[0]}, public: true}}
        - {{name: public-b, cidr: 10.{v}.1.0/24, az: {AZS[1]}, public: true}}
        - {{name: private-a, cidr: 10.{v}.10.0/24, az: {AZS[0]}}}
        - {{name: private-b, cidr: 10.{v}.11.0/24, az: {AZS[1]}}}
      nat: {{mode: gateway, placement: per_az}}
      endpoints:
        - service: s3
      security_groups:
        - name: app
          ingress: [{{protocol: tcp, ports: "8080", from: "10.{v}.0.0/16"}}]
""")
    return "".join(out)


# -- processes ---------------------------------------------------------------------

def start_moto(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto server did not start")


def compile_package() -> None:
    """Compile the package's bytecode, as pip does when it installs the wheel users run.

    The bench runs this checkout's editable install; under PYTHONDONTWRITEBYTECODE (set on these machines)
    its modules would otherwise be compiled from source on every start, about 0.1 s of CPU per run that no
    installed copy pays. `compileall` writes the caches regardless, and only for sources that changed.
    """
    import compileall

    package = ROOT / "reconciler"
    if not compileall.compile_dir(str(package), quiet=1):  # e.g. a read-only checkout: the runs still work
        print(f"warning: could not compile all of {package}; the first figures include compiling it", flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Step:
    name: str
    code: int
    seconds: float
    peak_rss_mb: float
    reads: Counter[str]
    writes: Counter[str]
    tail: str
    summary: str
    cpu_seconds: float = 0.0  # user + system of the process (and of its waited-for children)


def run_step(name: str, args: list[str], proxy: FaultProxy, workdir: Path, timeout: float) -> Step:
    """Run `reconcile ARGS` through the proxy; calls counted by the proxy, RSS from wait4."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION,
               AWS_ENDPOINT_URL=proxy.endpoint, NO_COLOR="1")
    return run_process(name, [*RECONCILE, *args], env, ROOT, proxy, workdir, timeout)


def run_process(name: str, argv: list[str], env: dict[str, str], cwd: Path, proxy: FaultProxy, workdir: Path,
                timeout: float) -> Step:
    """Run ARGV (talking to AWS through the proxy); calls counted by the proxy, RSS from wait4 (the largest
    process of the tree that was waited for: for Terraform, its own process, not the provider's)."""
    proxy.clear()
    proxy.add(rule(Fault.LATENCY, delay=LATENCY))
    out_path, err_path = workdir / f"{name}.out", workdir / f"{name}.err"
    started = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
    seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    calls = proxy.calls
    text = (out_path.read_text(errors="replace") + err_path.read_text(errors="replace")).strip().splitlines()
    firsts = ("Plan:", "Apply complete", "No changes", "No drift", "Drift")
    summary = next((line.strip() for line in text if line.strip().startswith(firsts)), "")
    return Step(name, proc.returncode, seconds, usage.ru_maxrss / 1024,
                Counter(f"{c.service}:{c.operation}" for c in calls if not c.write),
                Counter(f"{c.service}:{c.operation}" for c in calls if c.write), "\n".join(text[-3:]),
                summary, usage.ru_utime + usage.ru_stime)


# -- Terraform ---------------------------------------------------------------------

TF_PLUGINS = Path(os.environ.get("TF_PLUGINS", "/opt/tf-plugins"))  # a filesystem mirror with hashicorp/aws
TF_PROVIDER = "registry.terraform.io/hashicorp/aws"


def terraform_missing() -> str | None:
    """Why the Terraform comparison cannot run here, or None when it can (no network is ever used)."""
    if shutil.which("terraform") is None:
        return "terraform not found on PATH"
    if not (TF_PLUGINS / TF_PROVIDER).is_dir():
        return f"the AWS provider is not in {TF_PLUGINS}/{TF_PROVIDER} (a filesystem mirror; set TF_PLUGINS)"
    return None


def terraform_steps(size: str, desired: list[Any], proxy: FaultProxy, moto: str, workdir: Path, timeout: float,
                    parallelism: int) -> tuple[list[Step], list[str]]:
    """Terraform on a reset moto, through the same proxy: init (not timed), plan from empty, apply, the
    converged plan. Returns the steps and the converged plan's perpetual diffs (`type.name: actions`)."""
    from bench.terraform import configuration

    requests.post(f"{moto}/moto-api/reset", timeout=30).raise_for_status()
    tfdir = workdir / size / "terraform"
    tfdir.mkdir(parents=True, exist_ok=True)
    (tfdir / "main.tf.json").write_text(json.dumps(configuration(desired, proxy.endpoint, REGION), indent=1))
    cli = tfdir / "cli.tfrc"
    cli.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{TF_PLUGINS}"\n  }}\n'
                   '  direct {\n    exclude = ["*/*/*"]\n  }\n}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    env.update(TF_CLI_CONFIG_FILE=str(cli), TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1",
               AWS_EC2_METADATA_DISABLED="true")
    tf = shutil.which("terraform") or "terraform"
    init = subprocess.run([tf, "init", "-input=false", "-no-color"], cwd=tfdir, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if init.returncode:
        raise SystemExit(f"terraform init failed in {tfdir}: {init.stderr.strip()[-800:]}")
    flags = ["-input=false", "-no-color", f"-parallelism={parallelism}"]
    steps = [
        run_process("plan-empty", [tf, "plan", "-detailed-exitcode", *flags], env, tfdir, proxy, tfdir, timeout),
        run_process("apply", [tf, "apply", "-auto-approve", *flags], env, tfdir, proxy, tfdir, timeout),
        run_process("plan-converged", [tf, "plan", "-detailed-exitcode", "-out=converged.tfplan", *flags], env,
                    tfdir, proxy, tfdir, timeout),
    ]
    diffs: Counter[str] = Counter()
    if steps[-1].code == 2:  # changes after a converged apply: the provider's perpetual diffs on moto
        shown = subprocess.run([tf, "show", "-json", "converged.tfplan"], cwd=tfdir, env=env, capture_output=True,
                               text=True, timeout=timeout)
        for change in json.loads(shown.stdout or "{}").get("resource_changes", []):
            actions = change.get("change", {}).get("actions", [])
            if actions != ["no-op"]:
                diffs[f"{change['type']} {'/'.join(actions)}"] += 1
    return steps, [f"{what} x{n}" for what, n in sorted(diffs.items())]


# -- report -------------------------------------------------------------------------

PER_RESOURCE = {  # reads that grow with the number of resources, and why
    "iam:GetLoginProfile": "one per owned IAM user (console password check; no batch API)",
    "iam:ListAccessKeys": "one per owned IAM user (keys are not in GetAccountAuthorizationDetails)",
    "iam:GetAccessKeyLastUsed": "one per access key (no batch API)",
    "ssm:ListTagsForResource": "one per SSM parameter store (DescribeParameters returns no tags)",
    "ecr:ListTagsForResource": "one per ECR repository in the account (ownership is a tag)",
    "ecr:GetLifecyclePolicy": "one per owned ECR repository",
    "ecr:GetRepositoryPolicy": "one per owned ECR repository",
    "ecr:ListImages": "one per owned ECR repository (does it hold images?)",
    "ec2:DescribeVpcAttribute": "two per VPC (DNS support and hostnames)",
}


def by_operation(counts: Counter[str]) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(counts.items(), key=lambda i: (-i[1], i[0])))


def step_json(step: Step, bound: int | None) -> dict[str, object]:
    calls = sum(step.reads.values()) + sum(step.writes.values())
    return {"exit": step.code, "seconds": round(step.seconds, 2), "peak_rss_mb": round(step.peak_rss_mb, 1),
            "cpu_seconds": round(step.cpu_seconds, 2),
            "calls": calls, "reads": dict(step.reads), "writes": dict(step.writes), "summary": step.summary,
            "bound": bound, "calls_per_bound": round(calls / bound, 2) if bound else None}


def show(label: str, result: dict[str, object], steps: list[Step]) -> None:
    print(f"\n== {label}: {result['addresses']} addresses ==")
    print(f"{'step':24} {'exit':>4} {'wall s':>7} {'peak RSS MB':>11} {'reads':>6} {'writes':>6} {'bound':>6} "
          f"{'calls/bound':>11}  result")
    data = result["steps"]
    assert isinstance(data, dict)
    for step in steps:
        mine = data[step.name]
        ratio = f"{mine['calls_per_bound']:.2f}" if mine["bound"] else ""
        print(f"{step.name:24} {step.code:>4} {step.seconds:>7.1f} {step.peak_rss_mb:>11.0f} "
              f"{sum(step.reads.values()):>6} {sum(step.writes.values()):>6} {mine['bound'] or '':>6} "
              f"{ratio:>11}  {step.summary}")
        if step.code not in (0, 2):
            print("    " + step.tail.replace("\n", "\n    "))
    converged = next(s for s in steps if s.name == "plan-converged")
    per_resource = {op: n for op, n in converged.reads.items() if op in PER_RESOURCE}
    batched = sum(converged.reads.values()) - sum(per_resource.values())
    print(f"  plan-converged: {batched} batched reads (flat in the number of resources), "
          f"{sum(per_resource.values())} per-resource reads:")
    for op, n in sorted(per_resource.items(), key=lambda i: (-i[1], i[0])):
        print(f"    {op:28} {n:>5}  {PER_RESOURCE[op]}")
    crit = result["critical_path"]
    assert isinstance(crit, dict)
    print(f"  critical path of apply from empty: {crit['actions']} actions x {crit['calls_per_action']:.1f} calls "
          f"per action x {crit['latency_ms']:g} ms = {crit['seconds']:.1f} s; measured apply "
          f"{crit['measured_seconds']:.1f} s, {crit['acting_seconds']:.1f} s of it after its plan "
          f"({crit['ratio']:.1f}x the critical path); all its calls at --parallelism {crit['parallelism']}: "
          f"{crit['work_seconds']:.1f} s")
    print(f"    chain: {' -> '.join(crit['chain'])}")
    for step in steps:
        print(f"  {step.name}: reads by operation: {by_operation(step.reads)}")
        if step.writes:
            print(f"  {step.name}: writes by operation: {by_operation(step.writes)}")


def counts_of(resources: list[object]) -> tuple[Counter[str], set[str]]:
    """Resources per kind and the key-store types the access keys use (for the bound)."""
    kinds: Counter[str] = Counter(r.kind for r in resources)  # type: ignore[attr-defined]
    stores = {next(iter(r.spec["store"])) for r in resources  # type: ignore[attr-defined]
              if r.kind == "iam.access_key" and isinstance(r.spec.get("store"), dict) and r.spec["store"]}  # type: ignore[attr-defined]
    return kinds, stores


def bench(size: str, users: int, repos: int, vpcs: int, proxy: FaultProxy, moto: str, workdir: Path,
          timeout: float, parallelism: int) -> tuple[dict[str, object], list[Step]]:
    requests.post(f"{moto}/moto-api/reset", timeout=30).raise_for_status()
    path = workdir / f"{size}.yaml"
    path.write_text(manifest(users, repos, vpcs))
    from reconciler.manifest.expand import expand
    from reconciler.manifest.validate import load_manifest

    resources = expand(load_manifest(path)[0])
    kinds, stores = counts_of(list(resources))
    runs = workdir / size  # each size's stdout and stderr apart
    runs.mkdir(exist_ok=True)
    steps = [
        run_step("plan-empty", ["plan", str(path), "--detailed-exitcode"], proxy, runs, timeout),
        run_step("apply", ["apply", str(path), "--auto-approve", "--parallelism", str(parallelism)], proxy,
                 runs, timeout),
        run_step("plan-converged", ["plan", str(path), "--detailed-exitcode"], proxy, runs, timeout),
        run_step("drift", ["drift", str(path)], proxy, runs, timeout),
    ]
    bounds = {"plan-converged": plan_bound(kinds, stores), "drift": drift_bound(kinds, stores)}
    chain = critical_path(resources, all_kinds())
    apply = steps[1]
    apply_calls = sum(apply.reads.values()) + sum(apply.writes.values())
    # apply plans first (the same reads as plan-empty): the rest, spread over its actions
    acting = apply_calls - sum(steps[0].reads.values())
    per_action = max(1.0, acting / max(1, len(resources)))
    crit_seconds = len(chain) * per_action * LATENCY
    acting_seconds = acting_span((runs / "apply.err").read_text(errors="replace"))
    busy = occupancy((runs / "apply.err").read_text(errors="replace"), parallelism)
    # the other floor: every call of the apply at --parallelism at once, nothing waiting on anything
    work_seconds = acting / parallelism * LATENCY
    result: dict[str, object] = {
        "size": size, "users": users, "repositories": repos, "vpcs": vpcs, "addresses": len(resources),
        "kinds": dict(kinds), "key_stores": sorted(stores), "latency_ms": LATENCY * 1000,
        "steps": {s.name: step_json(s, bounds.get(s.name)) for s in steps},
        "critical_path": {"actions": len(chain), "calls_per_action": round(per_action, 2),
                          "latency_ms": LATENCY * 1000, "seconds": round(crit_seconds, 2),
                          "measured_seconds": round(apply.seconds, 2),
                          # the apply's own start and plan (as long as plan-empty) are not on the path
                          "acting_seconds": round(acting_seconds, 2),
                          "work_seconds": round(work_seconds, 2), "parallelism": parallelism,
                          # the actions' seconds / (parallelism x acting span): ~1 = bound by each call's time
                          "occupancy": round(busy, 2),
                          "calls_per_second": round(acting / acting_seconds, 1) if acting_seconds else None,
                          "ratio": round(acting_seconds / crit_seconds, 2) if crit_seconds else None,
                          "chain": [f"{a} ({p})" for a, p in chain]},
    }
    result["floor"] = plan_floor(steps[2], users, proxy)
    return result, steps


def plan_floor(plan: Step, users: int, proxy: FaultProxy) -> dict[str, object]:
    """The converged plan's floor (bench/floor.py): its reads through our pacing, and all its calls at the
    rate the emulator answers at this size, with the plan's fan-out width and the injected latency."""
    from reconciler.pacing import PER_ACTION, read_rate, read_workers

    paced, bucket = pacing_floor(plan.reads, read_rate, PER_ACTION)
    calls = sum(plan.reads.values()) + sum(plan.writes.values())
    proxy.clear()
    proxy.add(rule(Fault.LATENCY, delay=LATENCY))
    workers = read_workers()
    rate = emulator_rate(proxy.endpoint, [f"svc-{u:04d}" for u in range(max(1, users))], workers)
    proxy.clear()
    emulator = calls / rate
    return {"pacing_seconds": round(paced, 2), "pacing_bucket": bucket, "emulator_calls_per_second": round(rate, 1),
            "emulator_seconds": round(emulator, 2), "workers": workers, "seconds": round(max(paced, emulator), 2)}


def merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from repeated runs of a size: medians of every wall time, call count and peak RSS (each run's
    figures kept beside them in `*_runs`); the calls by operation are the first run's."""
    result = dict(runs[0])
    result["runs"] = len(runs)
    steps = median_steps(runs)
    for name, step in steps.items():
        step["exit"] = max((r["steps"][name]["exit"] for r in runs), key=lambda code: code not in (0, 2))
        if step.get("bound"):
            step["calls_per_bound"] = round(step["calls"] / step["bound"], 2)
    result["steps"] = steps
    crit = dict(runs[0]["critical_path"])
    for key in ("measured_seconds", "acting_seconds", "occupancy", "calls_per_second"):
        values = [r["critical_path"].get(key) or 0 for r in runs]
        crit[key] = round(statistics.median(values), 2)
        crit[f"{key}_runs"] = values
    crit["ratio"] = round(crit["acting_seconds"] / crit["seconds"], 2) if crit["seconds"] else None
    result["critical_path"] = crit
    if all("floor" in r for r in runs):  # the median run's floor (the emulator's rate varies with the machine)
        floors = sorted((r["floor"] for r in runs), key=lambda f: float(f["seconds"]))
        result["floor"] = dict(floors[len(floors) // 2], seconds_runs=[f["seconds"] for f in floors])
    return result


def terraform_result(size: str, desired: list[Any], proxy: FaultProxy, moto: str, workdir: Path, timeout: float,
                     parallelism: int, repeat: int) -> dict[str, Any]:
    """Terraform's figures for a size: `repeat` runs (each on a reset moto, in a fresh directory), medians."""
    from bench.terraform import TRANSLATION

    runs: list[dict[str, Any]] = []
    diffs: list[str] = []
    for n in range(repeat):
        steps, diffs = terraform_steps(f"{size}-tf{n}", desired, proxy, moto, workdir, timeout, parallelism)
        runs.append({"steps": {s.name: step_json(s, None) for s in steps}})
        for step in steps:
            print(f"  terraform {step.name:16} exit {step.code} {step.seconds:7.1f} s "
                  f"{sum(step.reads.values()):>5} reads {sum(step.writes.values()):>5} writes  {step.summary}",
                  flush=True)
            if step.code not in (0, 2):
                print("    " + step.tail.replace("\n", "\n    "))
    out: dict[str, Any] = {"runs": len(runs), "steps": {}, "perpetual_diffs": diffs,
                           "translation": {k: v for k, v in TRANSLATION.items()
                                           if any(getattr(r, "kind", "") == k for r in desired)}}
    out["steps"] = median_steps(runs)
    return out


def median_steps(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each step of the first run, its wall time, calls and peak RSS replaced by their medians over the runs
    (every run's figure kept in `<figure>_runs`)."""
    steps: dict[str, dict[str, Any]] = {}
    for name, first in runs[0]["steps"].items():
        step = dict(first)
        for key in ("seconds", "calls", "peak_rss_mb", "cpu_seconds"):
            values = [r["steps"][name].get(key, 0) for r in runs]
            step[key] = round(statistics.median(values), 2)
            step[f"{key}_runs"] = values
        steps[name] = step
    return steps


def time_validate(path: Path) -> float:
    started = time.monotonic()
    subprocess.run([*RECONCILE, "validate", str(path)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})
    return time.monotonic() - started


def _figure(figures: dict[str, Any], key: str, spec: str) -> str:
    """One figure formatted, or blank where the run that made the results did not record it."""
    value = figures.get(key)
    return "" if value is None else format(value, spec)


def summary_markdown(results: list[dict[str, Any]], check: str, validate: tuple[str, float] | None) -> str:
    lines = ["# `make bench` results", "",
             f"Injected latency {results[0]['latency_ms'] if results else 0:g} ms per call (fault proxy in front of "
             "moto on 127.0.0.1); " + ", ".join(f"{r['size']}: median of {r.get('runs', 1)} run(s)" for r in results)
             + f". {check}. Load average of the shared 2-core machine after each size: "
             + ", ".join(f"{r['size']} {'/'.join(str(x) for x in r.get('load_average', []))}" for r in results)
             + ".", "",
             "| size | addresses | step | calls | bound | calls / bound | wall s | CPU s | peak RSS MB |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for result in results:
        steps = result["steps"]
        assert isinstance(steps, dict)
        for name, step in sorted(steps.items(), key=lambda i: STEPS.index(i[0]) if i[0] in STEPS else 99):
            ratio = f"{step['calls_per_bound']:.2f}" if step["bound"] else ""
            lines.append(f"| {result['size']} | {result['addresses']} | {name} | {step['calls']} | "
                         f"{step['bound'] or ''} | {ratio} | {step['seconds']:.1f} | "
                         f"{_figure(step, 'cpu_seconds', '.1f')} | {step['peak_rss_mb']:.0f} |")
    lines += ["", "| size | critical path (actions) | calls / action | critical path x latency, s | "
              "all calls / parallelism x latency, s | measured apply, s | its actions, s | actions / critical path | "
              "workers busy | calls / s while acting |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for result in results:
        crit = result["critical_path"]
        assert isinstance(crit, dict)
        lines.append(f"| {result['size']} | {crit['actions']} | {crit['calls_per_action']:.1f} | "
                     f"{crit['seconds']:.1f} | {crit['work_seconds']:.1f} | {crit['measured_seconds']:.1f} | "
                     f"{crit['acting_seconds']:.1f} | "
                     f"{crit['ratio']:.1f} | {_figure(crit, 'occupancy', '.2f')} | "
                     f"{_figure(crit, 'calls_per_second', '.0f')} |")
    compared = [r for r in results if "terraform" in r]
    if compared:
        lines += ["", "Beside Terraform (same moto, same proxy and latency, each tool on a reset moto, "
                  "--parallelism / -parallelism equal):", "",
                  "| size | step | ours: calls | ours: wall s | ours: CPU s | Terraform: calls | Terraform: wall s | "
                  "Terraform: CPU s | Terraform / ours, wall |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for result in compared:
            for name, theirs in result["terraform"]["steps"].items():
                ours = result["steps"][name]
                lines.append(f"| {result['size']} | {name} | {ours['calls']:g} | {ours['seconds']:.1f} | "
                             f"{_figure(ours, 'cpu_seconds', '.1f')} | {theirs['calls']:g} | {theirs['seconds']:.1f} | "
                             f"{_figure(theirs, 'cpu_seconds', '.1f')} | "
                             f"{theirs['seconds'] / max(0.01, ours['seconds']):.1f}x |")
        tf = compared[-1]["terraform"]
        lines += ["", "How each kind was translated (bench/terraform.py):", ""]
        lines += [f"- {kind}: {what}" for kind, what in sorted(tf["translation"].items())]
        for result in compared:
            diffs = result["terraform"]["perpetual_diffs"]
            lines.append(f"- {result['size']}: Terraform's converged plan on moto: "
                         + (f"perpetual diffs: {', '.join(diffs)}" if diffs else "no changes"))
    if validate:
        lines += ["", f"`validate` of the {validate[0]} manifest: {validate[1]:.2f} s (process start included)."]
    lines += ["", "Issue 14's targets, as measured here:", ""]
    lines += [f"- {line}" for line in targets(results, validate)]
    return "\n".join(lines) + "\n"


def targets(results: list[dict[str, Any]], validate: tuple[str, float] | None) -> list[str]:
    """Each of issue 14's targets this bench can judge, with the figure and `holds` or `MISSED`."""
    out = []
    for result in results:
        plan, drift = result["steps"]["plan-converged"], result["steps"]["drift"]
        keys = result["kinds"].get("iam.access_key", 0)
        out.append(f"{result['size']}: no-op plan {plan['calls']} calls = {plan['calls_per_bound']:.2f}x the bound "
                   f"(target <= 1.2x): {verdict(plan['calls_per_bound'] <= 1.2)}")
        out.append(f"{result['size']}: drift {drift['calls']} calls <= the plan's {plan['calls']} + {keys} keys: "
                   f"{verdict(drift['calls'] <= plan['calls'] + keys)}")
    if len(results) > 1:
        first, last = results[0], results[-1]
        ratio = last["steps"]["plan-converged"]["seconds"] / max(0.01, first["steps"]["plan-converged"]["seconds"])
        out.append(f"no-op plan wall time {last['size']} / {first['size']}: {ratio:.1f}x (target <= 1.5): "
                   f"{verdict(ratio <= 1.5)}")
        out.extend(floor_lines(results))
    for result in results:
        if result["size"] == "medium":
            crit = result["critical_path"]
            floor = max(crit["seconds"], crit["work_seconds"])  # the larger of the two bounds is the bound
            out.append(f"medium: apply's actions {crit['acting_seconds']:.1f} s = "
                       f"{crit['acting_seconds'] / max(0.01, floor):.1f}x the bound {floor:.1f} s (the larger of "
                       f"critical path x latency {crit['seconds']:.1f} s and all calls / parallelism x latency "
                       f"{crit['work_seconds']:.1f} s; EC2 write pacing {result.get('ec2_pacing', 'documented')}) "
                       f"(target <= 1.5x): {verdict(crit['acting_seconds'] <= 1.5 * floor)}")
            # moto's own time per request on a loaded machine is part of every call the apply makes
            per_call = result.get("proxy_check", {}).get("measured_ms", 0) / max(1e-9, crit["latency_ms"])
            if per_call > 1:
                real = floor * per_call
                out.append(f"medium: the same bound at the {per_call * crit['latency_ms']:.1f} ms a request measured "
                           f"through the proxy (moto's own time included): {real:.1f} s; the apply's actions are "
                           f"{crit['acting_seconds'] / max(0.01, real):.1f}x it")
        if result["size"] == "large":
            rss = result["steps"]["plan-converged"]["peak_rss_mb"]
            out.append(f"large: no-op plan peak RSS {rss:.0f} MB (target < 300): {verdict(rss < 300)}")
    if validate:
        out.append(f"{validate[0]}: validate {validate[1]:.2f} s with the process start (target < 1 s): "
                   f"{verdict(validate[1] < 1)}")
    compared = [r for r in results if "terraform" in r]
    if not compared:
        out.append("faster than Terraform: not measured (run with --compare terraform)")
    for result in compared:
        tf, ours = result["terraform"]["steps"], result["steps"]
        plan = tf["plan-converged"]["seconds"] / max(0.01, ours["plan-converged"]["seconds"])
        out.append(f"{result['size']}: no-op plan {ours['plan-converged']['seconds']:.1f} s vs Terraform's "
                   f"{tf['plan-converged']['seconds']:.1f} s = {plan:.1f}x faster (target >= 10x): "
                   f"{verdict(plan >= 10)}")
        out.append(f"{result['size']}: apply from empty {ours['apply']['seconds']:.1f} s vs Terraform's "
                   f"{tf['apply']['seconds']:.1f} s (target: faster): "
                   f"{verdict(ours['apply']['seconds'] < tf['apply']['seconds'])}")
    return out


LATENCY = 0.02


def floor_lines(results: list[dict[str, Any]]) -> list[str]:
    """Each size's no-op plan beside its floor (bench/floor.py), and large / small of the time above it."""
    out, above = [], []
    for result in results:
        floor, plan = result.get("floor"), result["steps"]["plan-converged"]
        if not floor:
            continue
        over = plan["seconds"] - floor["seconds"]
        above.append((result["size"], over))
        out.append(f"{result['size']}: no-op plan {plan['seconds']:.1f} s against its floor {floor['seconds']:.1f} s "
                   f"(the larger of our pacing's {floor['pacing_seconds']:.1f} s, bound by "
                   f"{floor['pacing_bucket'] or 'no bucket'}, and {plan['calls']} calls at the "
                   f"{floor['emulator_calls_per_second']:.0f} calls/s the emulator answers at this size on "
                   f"{floor['workers']} threads, {floor['emulator_seconds']:.1f} s): {over:.1f} s above it")
    if len(above) > 1:
        (small, low), (large, high) = above[0], above[-1]
        out.append(f"no-op plan time above its floor, {large} / {small}: {high:.1f} s / {low:.1f} s = "
                   f"{high / max(0.01, low):.1f}x (the target's 1.5x, applied to the part of the wall time "
                   f"that is ours): {verdict(high <= 1.5 * max(0.01, low))}")
    return out


def verdict(ok: bool) -> str:
    return "holds" if ok else "MISSED"


def main() -> None:
    global LATENCY
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="small,medium,large", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--parallelism", type=int, default=10, help="apply's --parallelism (its default)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds per reconcile run (the large apply takes ~17 min before issue 14's apply part)")
    parser.add_argument("--compare", choices=["terraform"], help="also run Terraform on the same stacks")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (medians are reported)")
    parser.add_argument("--repeat-large", type=int, default=1, help="runs of the large size (its apply is long)")
    parser.add_argument("--keep", type=Path, help="copy every run's manifest, stdout and stderr into this directory")
    parser.add_argument("--report", action="store_true",
                        help="run nothing: rewrite summary.md from the bench/results/*.json of the last run")
    parser.add_argument("--fleet", type=int, metavar="N",
                        help="instead of the sizes: the fleet bench, N stacks in N accounts (bench/fleet.py)")
    args = parser.parse_args()
    if args.report:
        report([json.loads(p.read_text()) for size in SIZES for p in [RESULTS / f"{size}.json"] if p.exists()])
        return
    LATENCY = args.latency_ms / 1000
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown size {', '.join(unknown)}; give some of {', '.join(SIZES)}")
    if args.compare == "terraform" and (missing := terraform_missing()):
        print(f"{missing}: skipping the comparison with Terraform")
        args.compare = None
    print(f"kinds registered: {', '.join(sorted(all_kinds()))}")
    compile_package()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        moto = start_moto(port, workdir)
        try:
            with FaultProxy(f"http://127.0.0.1:{port}") as proxy:
                proxy.add(rule(Fault.LATENCY, delay=LATENCY))
                check = measure(f"http://127.0.0.1:{port}", proxy.endpoint, args.latency_ms)
                proxy.clear()
                print(check.line(), flush=True)
                # what the proxy adds over moto's own cost is what must match the injected latency
                if check.measured_ms - check.direct_ms > HONEST * args.latency_ms:
                    raise SystemExit(f"the proxy adds {check.measured_ms - check.direct_ms:.1f} ms per request, over "
                                     f"{HONEST}x the {args.latency_ms:g} ms injected: no figure below would be "
                                     "honest (Nagle and delayed ACK? see bench/latency.py)")
                if args.fleet is not None:  # instead of the sizes (its results and summary section: bench/fleet.py)
                    from bench.fleet import bench as fleet_bench

                    fleet_bench(args.fleet, proxy, f"http://127.0.0.1:{port}", workdir, args.timeout, run_step, check,
                                args.keep)
                    return
                for size in sizes:
                    users, repos, vpcs = SIZES[size]
                    print(f"\nrunning {size}: {users} users with keys, {repos} repositories, {vpcs} VPCs ...",
                          flush=True)
                    repeat = args.repeat_large if size == "large" else args.repeat
                    runs = []
                    for n in range(repeat):
                        one, steps = bench(size, users, repos, vpcs, proxy, f"http://127.0.0.1:{port}", workdir,
                                           args.timeout, args.parallelism)
                        runs.append(one)
                        print(f"  run {n + 1}/{repeat}: " + ", ".join(
                            f"{name} {step['seconds']:.1f} s" for name, step in one["steps"].items()), flush=True)
                    result = merged(runs)
                    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
                    result["ec2_pacing"] = os.environ.get("RECONCILER_EC2_PACING") or "documented"
                    # written now and again after Terraform: a long Terraform run that is stopped loses only its own
                    (RESULTS / f"{size}.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
                    if args.compare == "terraform":
                        from reconciler.manifest.expand import expand
                        from reconciler.manifest.validate import load_manifest

                        desired = list(expand(load_manifest(workdir / f"{size}.yaml")[0]))
                        result["terraform"] = terraform_result(size, desired, proxy, f"http://127.0.0.1:{port}",
                                                               workdir, args.timeout, args.parallelism, repeat)
                    result["proxy_check"] = {"injected_ms": check.injected_ms,
                                             "measured_ms": round(check.measured_ms, 1),
                                             "moto_alone_ms": round(check.direct_ms, 1), "line": check.line()}
                    results.append(result)
                    show(size, result, steps)
                    # every size's (under a second each): the report quotes the largest's
                    result["validate_seconds"] = round(time_validate(workdir / f"{size}.yaml"), 2)
                    (RESULTS / f"{size}.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
                    if args.keep:
                        args.keep.mkdir(parents=True, exist_ok=True)
                        shutil.copy(workdir / f"{size}.yaml", args.keep / f"{size}.yaml")
                        for out in (workdir / size).iterdir():
                            shutil.copy(out, args.keep / f"{size}-{out.name}")
        finally:
            moto.terminate()
            try:
                moto.wait(timeout=20)
            except subprocess.TimeoutExpired:
                moto.kill()
    report(results)


def report(results: list[dict[str, Any]]) -> None:
    """Write bench/results/summary.md from the results and print it."""
    if not results:
        raise SystemExit("no results: run `make bench` first")
    # smallest first: "large / small" and the validate figure are the largest size's whatever was run or asked
    results = sorted(results, key=lambda r: int(r["addresses"]))
    timed = [r for r in results if "validate_seconds" in r]
    validate = (str(timed[-1]["size"]), float(timed[-1]["validate_seconds"])) if timed else None
    if validate is None:  # results of a run before validate was recorded: time it now (no AWS call)
        last = results[-1]
        with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
            path = Path(tmp) / f"{last['size']}.yaml"
            path.write_text(manifest(last["users"], last["repositories"], last["vpcs"]))
            validate = (str(last["size"]), time_validate(path))
    check = results[0].get("proxy_check", {})
    line = check.get("line") or (f"proxy check: {check.get('injected_ms', 0):g} ms injected, "
                                 f"{check.get('measured_ms', 0):.1f} ms measured per request (moto alone "
                                 f"{check.get('moto_alone_ms', 0):.1f} ms)")
    table = summary_markdown(results, line, validate)
    fleet = RESULTS / "fleet.json"
    if fleet.exists():  # the fleet bench's section is kept: a run of the sizes must not drop its figures
        from bench.fleet import section

        table += "\n" + section(json.loads(fleet.read_text()))
    (RESULTS / "summary.md").write_text(table)
    print("\n" + table)


if __name__ == "__main__":
    main()
