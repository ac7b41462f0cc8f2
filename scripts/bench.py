"""`make bench`: API calls, wall time and peak RSS of plan and apply on large generated manifests.

Not a test. It starts a moto server and the fault proxy (tests/faults/proxy.py) on
127.0.0.1 with an injected latency per call (default 20 ms, roughly a nearby AWS
region), generates manifests for every kind this build registers (IAM users with
access keys; ECR repositories; VPCs with subnets, IGW, NAT, endpoints and security
groups), and runs `reconcile` as a user would, as a separate process:

    plan (empty account)  ->  apply --auto-approve  ->  plan (converged)

For each step it prints the calls the proxy saw (reads and writes, by operation),
the wall time and the peak RSS of the `reconcile` process. It runs a small and a
large size, so the growth of read calls with the number of resources is visible:
batched reads stay flat; the per-resource reads (where AWS has no batch form) are
named in the output with their counts.

Usage: python scripts/bench.py [--users 200] [--repos 100] [--vpcs 20] [--latency-ms 20] [--small 0.1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from reconciler.kinds import all_kinds  # noqa: E402
from tests.faults.proxy import Fault, FaultProxy, rule  # noqa: E402

STACK = "bench"
REGION = "us-east-1"
AZS = ("us-east-1a", "us-east-1b")


# -- manifests -------------------------------------------------------------------

def manifest(users: int, repos: int, vpcs: int) -> str:
    """A valid manifest with `users` IAM users (one key each, half in Secrets Manager, half in SSM),
    `repos` ECR repositories and `vpcs` VPCs (2 public + 2 private subnets, IGW, one NAT gateway,
    an S3 gateway endpoint, one security group)."""
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
      nat: {{mode: gateway, placement: single, subnet: public-a}}
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


def run_step(name: str, args: list[str], proxy: FaultProxy, workdir: Path, timeout: float) -> Step:
    """Run `reconcile ARGS` through the proxy; calls counted by the proxy, RSS from wait4."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION,
               AWS_ENDPOINT_URL=proxy.endpoint, NO_COLOR="1")
    proxy.clear()
    proxy.add(rule(Fault.LATENCY, delay=LATENCY))
    out_path, err_path = workdir / f"{name}.out", workdir / f"{name}.err"
    started = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", *args], env=env, cwd=ROOT,
                                stdout=out, stderr=err)
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
    summary = next((line for line in text if line.startswith(("Plan:", "Apply complete:", "No changes"))), "")
    return Step(name, proc.returncode, seconds, usage.ru_maxrss / 1024,
                Counter(f"{c.service}:{c.operation}" for c in calls if not c.write),
                Counter(f"{c.service}:{c.operation}" for c in calls if c.write), "\n".join(text[-3:]),
                summary)


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


def show(size: str, resources: int, steps: list[Step]) -> None:
    print(f"\n== {size}: {resources} desired resources ==")
    print(f"{'step':24} {'exit':>4} {'wall s':>7} {'peak RSS MB':>11} {'reads':>6} {'writes':>6}  result")
    for step in steps:
        print(f"{step.name:24} {step.code:>4} {step.seconds:>7.1f} {step.peak_rss_mb:>11.0f} "
              f"{sum(step.reads.values()):>6} {sum(step.writes.values()):>6}  {step.summary}")
        if step.code not in (0, 2):
            print("    " + step.tail.replace("\n", "\n    "))
    converged = steps[-1]
    per_resource = {op: n for op, n in converged.reads.items() if op in PER_RESOURCE}
    batched = sum(converged.reads.values()) - sum(per_resource.values())
    print(f"  {converged.name}: {batched} batched reads (flat in the number of resources), "
          f"{sum(per_resource.values())} per-resource reads:")
    for op, n in sorted(per_resource.items(), key=lambda i: (-i[1], i[0])):
        print(f"    {op:28} {n:>5}  {PER_RESOURCE[op]}")
    for step in steps:
        print(f"  {step.name}: reads by operation: " +
              ", ".join(f"{op} {n}" for op, n in sorted(step.reads.items(), key=lambda i: (-i[1], i[0]))))
        if step.writes:
            print(f"  {step.name}: writes by operation: " +
                  ", ".join(f"{op} {n}" for op, n in sorted(step.writes.items(), key=lambda i: (-i[1], i[0]))))


def bench(users: int, repos: int, vpcs: int, label: str, proxy: FaultProxy, moto: str, workdir: Path,
          timeout: float) -> tuple[int, list[Step]]:
    requests.post(f"{moto}/moto-api/reset", timeout=30).raise_for_status()
    path = workdir / f"{label}.yaml"
    path.write_text(manifest(users, repos, vpcs))
    from reconciler.manifest.expand import expand
    from reconciler.manifest.validate import load_manifest

    resources = len(expand(load_manifest(path)[0]))
    steps = [
        run_step(f"{label}-plan-empty", ["plan", str(path), "--detailed-exitcode"], proxy, workdir, timeout),
        run_step(f"{label}-apply", ["apply", str(path), "--auto-approve", "--parallelism", "10"], proxy,
                 workdir, timeout),
        run_step(f"{label}-plan-converged", ["plan", str(path), "--detailed-exitcode"], proxy, workdir, timeout),
    ]
    return resources, steps


LATENCY = 0.02


def main() -> None:
    global LATENCY
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--vpcs", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--small", type=float, default=0.1, help="the small size as a fraction of the large one")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per reconcile run")
    parser.add_argument("--keep", type=Path, help="copy every run's stdout/stderr into this directory")
    args = parser.parse_args()
    LATENCY = args.latency_ms / 1000
    kinds = all_kinds()
    users = args.users if {"iam.user", "iam.access_key"} <= set(kinds) else 0
    repos = args.repos if "ecr.repository" in kinds else 0
    vpcs = args.vpcs if {"ec2.vpc", "ec2.subnet"} <= set(kinds) else 0
    print(f"kinds registered: {', '.join(sorted(kinds))}")
    print(f"injected latency: {args.latency_ms:g} ms per call (proxy on 127.0.0.1 in front of moto)")
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        moto = start_moto(port, workdir)
        try:
            with FaultProxy(f"http://127.0.0.1:{port}") as proxy:
                sizes = [("small", max(1, round(users * args.small)) if users else 0,
                          max(1, round(repos * args.small)) if repos else 0,
                          max(1, round(vpcs * args.small)) if vpcs else 0),
                         ("large", users, repos, vpcs)]
                for label, u, r, v in sizes:
                    print(f"\nrunning {label}: {u} users with keys, {r} repositories, {v} VPCs ...", flush=True)
                    resources, steps = bench(u, r, v, label, proxy, f"http://127.0.0.1:{port}", workdir,
                                             args.timeout)
                    show(f"{label} ({u} users, {r} repositories, {v} VPCs)", resources, steps)
                    if args.keep:
                        args.keep.mkdir(parents=True, exist_ok=True)
                        for out in workdir.glob(f"{label}*"):
                            shutil.copy(out, args.keep / out.name)
        finally:
            moto.terminate()
            try:
                moto.wait(timeout=20)
            except subprocess.TimeoutExpired:
                moto.kill()


if __name__ == "__main__":
    main()
