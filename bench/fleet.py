"""The fleet bench (issue 15): one drift over N stacks in N accounts, in one process and sharded into 4.

Not a test. `python scripts/bench.py --fleet 100` (`make bench BENCH_ARGS="--fleet 100"`): inside the
moto server and the fault proxy scripts/bench.py starts, once it has checked that the injected latency
(20 ms by default) is honest (bench/latency.py):

1. writes N manifests, one per account (`account: "<12 digits>"` + `assume_role: {role_name: reconciler}`;
   moto lets any role be assumed, and the calls land in that account), each stack an IAM user with an
   access key (its store in SSM), two ECR repositories and a VPC with a public and a private subnet in
   each of two AZs;
2. sets them up with one fleet `apply` straight to moto, without the latency (not timed);
3. times `reconcile drift 'fleet/*.yaml' --report whole.json` through the proxy: wall time and peak RSS
   of that one process (wait4's rusage of the child), and the calls the proxy saw;
4. times the same drift sharded into 4 (`--shard i/4`), four processes one after another: each shard's
   wall time, and the slowest over the mean;
5. merges the four shard reports with `reconcile report merge` and compares the result with the
   unsharded report, apart from timings (`seconds`, `started_at`).

Results go to bench/results/fleet.json and to the fleet section of bench/results/summary.md (between
FLEET_BEGIN and FLEET_END, so the size bench's summary above it stays as it was written), with the
issue's targets: under 60 s and 300 MB in one process, the slowest shard within 1.3x of the mean, the
merged report equal to the unsharded one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.faults.proxy import FaultProxy

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
REGION = "us-east-1"
AZS = ("us-east-1a", "us-east-1b")
SHARDS = 4
FIRST_ACCOUNT = 100_000_000_000  # stack i lives in account FIRST_ACCOUNT + i (not moto's default 123456789012)
TARGET_SECONDS, TARGET_RSS_MB, TARGET_IMBALANCE = 60.0, 300.0, 1.3
FLEET_BEGIN, FLEET_END = "<!-- fleet bench: begin -->", "<!-- fleet bench: end -->"


def stack_name(index: int) -> str:
    return f"fleet-{index:03d}"


def manifest(index: int) -> str:
    """Stack `index`: its own account and role, a user with a key, two repositories, a two-AZ VPC."""
    stack = stack_name(index)
    return f"""\
version: 1
stack: {stack}
region: {REGION}
account: "{FIRST_ACCOUNT + index}"
assume_role: {{role_name: reconciler}}
tags: {{env: bench}}
iam:
  users:
    - name: svc-{stack}
      access_keys: {{count: 1, rotate_after_days: 90, store: {{ssm: /{stack}/svc/key}}}}
ecr:
  repositories:
    - name: {stack}/app
    - name: {stack}/worker
network:
  vpcs:
    - name: main
      cidr: 10.0.0.0/16
      subnets:
        - {{name: public-a, cidr: 10.0.0.0/24, az: {AZS[0]}, public: true}}
        - {{name: public-b, cidr: 10.0.1.0/24, az: {AZS[1]}, public: true}}
        - {{name: private-a, cidr: 10.0.10.0/24, az: {AZS[0]}}}
        - {{name: private-b, cidr: 10.0.11.0/24, az: {AZS[1]}}}
"""


def write_fleet(directory: Path, count: int) -> str:
    """The N manifests in `directory`; the glob that names them all (quoted: the tool expands it)."""
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (directory / f"{stack_name(index)}.yaml").write_text(manifest(index))
    return str(directory / "*.yaml")


def _env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION,
               AWS_ENDPOINT_URL=endpoint, NO_COLOR="1")
    return env


def reconcile(args: list[str], endpoint: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """An untimed `reconcile` run (the setup, the merge)."""
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=ROOT, env=_env(endpoint),
                          capture_output=True, text=True, timeout=timeout, check=False)


def without_timings(doc: dict[str, Any]) -> dict[str, Any]:
    """A fleet report without what differs from run to run: its and its stacks' `seconds`, `started_at`."""
    return {**{k: v for k, v in doc.items() if k != "seconds"},
            "stacks": [{k: v for k, v in stack.items() if k not in ("seconds", "started_at")}
                       for stack in doc.get("stacks", [])]}


def _tail(text: str, lines: int = 8) -> str:
    return "\n    ".join(text.strip().splitlines()[-lines:])


def _timed(step: Any) -> dict[str, Any]:
    calls = sum(step.reads.values()) + sum(step.writes.values())
    return {"exit": step.code, "seconds": round(step.seconds, 2), "peak_rss_mb": round(step.peak_rss_mb, 1),
            "calls": calls, "writes": dict(step.writes)}


def run(count: int, proxy: FaultProxy, moto: str, workdir: Path, timeout: float,
        run_step: Callable[..., Any]) -> dict[str, Any]:
    """Set up, time and compare (the module's steps 1-5); `run_step` is scripts/bench.py's timed runner."""
    requests.post(f"{moto}/moto-api/reset", timeout=30).raise_for_status()
    pattern = write_fleet(workdir / "fleet", count)
    print(f"setting up {count} stacks in {count} accounts: one fleet apply, no latency (not timed) ...", flush=True)
    started = time.monotonic()
    setup = reconcile(["apply", pattern, "--auto-approve", "-q"], moto, timeout)
    setup_seconds = time.monotonic() - started
    if setup.returncode != 0:
        raise SystemExit(f"the fleet apply failed (exit {setup.returncode}); nothing to time:\n    "
                         f"{_tail(setup.stdout + setup.stderr)}")
    print(f"  set up in {setup_seconds:.1f} s; timing the fleet drift ...", flush=True)
    runs = workdir / "runs"
    runs.mkdir(exist_ok=True)
    whole_path = workdir / "whole.json"
    whole = run_step("fleet-drift", ["drift", pattern, "--report", str(whole_path)], proxy, runs, timeout)
    print(f"  one process: exit {whole.code}, {whole.seconds:.1f} s, {whole.peak_rss_mb:.0f} MB", flush=True)
    shards = []
    for index in range(SHARDS):
        path = workdir / f"shard-{index}.json"
        step = run_step(f"fleet-drift-shard-{index}", ["drift", pattern, "--shard", f"{index}/{SHARDS}", "--report",
                                                       str(path)], proxy, runs, timeout)
        stacks = len(json.loads(path.read_text())["stacks"]) if path.exists() else 0
        shards.append({"shard": f"{index}/{SHARDS}", "stacks": stacks, **_timed(step)})
        print(f"  shard {index}/{SHARDS}: {stacks} stacks, exit {step.code}, {step.seconds:.1f} s", flush=True)
    merged_path = workdir / "merged.json"
    merge = reconcile(["report", "merge", str(workdir / "shard-*.json"), "--format", "json", "--out",
                       str(merged_path), "-q"], moto, timeout)
    whole_doc = json.loads(whole_path.read_text()) if whole_path.exists() else {}
    merged_doc = json.loads(merged_path.read_text()) if merged_path.exists() else {}
    equal = bool(whole_doc) and without_timings(merged_doc) == without_timings(whole_doc)
    seconds = [float(s["seconds"]) for s in shards]
    mean = sum(seconds) / len(seconds)
    result: dict[str, Any] = {
        "stacks": count, "accounts": count, "shards": SHARDS, "setup_apply_seconds": round(setup_seconds, 1),
        "whole": {**_timed(whole), "summary": whole_doc.get("summary"),
                  "calls_per_stack": round((sum(whole.reads.values()) + sum(whole.writes.values())) / count, 1),
                  "tail": whole.tail if whole.code not in (0, 2) else ""},
        "shard_runs": shards, "shard_mean_seconds": round(mean, 2),
        "shard_slowest_over_mean": round(max(seconds) / mean, 2) if mean else None,
        "merge_exit": merge.returncode, "merge_error": merge.stderr.strip()[-500:] if merge.returncode not in
        (0, 2) else "", "merged_equals_unsharded": equal,
    }
    if not equal and whole_doc and merged_doc:
        a, b = without_timings(whole_doc), without_timings(merged_doc)
        result["first_difference"] = next((f"stack {x.get('stack')}" for x, y in zip(a["stacks"], b["stacks"],
                                                                                     strict=False) if x != y),
                                          "the stack lists differ in length" if len(a["stacks"]) !=
                                          len(b["stacks"]) else "the top-level fields")
    result["targets"] = targets(result)
    return result


def targets(result: dict[str, Any]) -> list[str]:
    """Each of issue 15's targets with the figure, `holds` or `MISSED`."""
    def verdict(ok: bool) -> str:
        return "holds" if ok else "MISSED"

    whole, count = result["whole"], result["stacks"]
    ratio = result["shard_slowest_over_mean"]
    clean = whole["exit"] == 0 and not whole["writes"]
    return [
        f"fleet drift of {count} stacks in {count} accounts, one process: {whole['seconds']:.1f} s (target < "
        f"{TARGET_SECONDS:g} s): {verdict(whole['seconds'] < TARGET_SECONDS and clean)}"
        + ("" if clean else f" (exit {whole['exit']}, writes {whole['writes']}: not a clean drift of a converged "
                            "fleet)"),
        f"its peak RSS: {whole['peak_rss_mb']:.0f} MB (target < {TARGET_RSS_MB:g} MB): "
        f"{verdict(whole['peak_rss_mb'] < TARGET_RSS_MB)}",
        f"sharded into {result['shards']}: slowest shard {max(s['seconds'] for s in result['shard_runs']):.1f} s = "
        f"{ratio}x the mean {result['shard_mean_seconds']:.1f} s (target <= {TARGET_IMBALANCE}x): "
        f"{verdict(ratio is not None and ratio <= TARGET_IMBALANCE)}",
        f"`reconcile report merge` of the {result['shards']} shard reports equals the unsharded report apart from "
        f"timings: {verdict(result['merged_equals_unsharded'])} (merge exit {result['merge_exit']})",
    ]


def section(result: dict[str, Any]) -> str:
    """The fleet section of summary.md."""
    check = result.get("proxy_check", {})
    lines = [FLEET_BEGIN, "## Fleet drift (issue 15)", "",
             f"{result['stacks']} stacks in {result['accounts']} accounts (each an IAM user with an access key, two "
             "ECR repositories, a VPC with a public and a private subnet in each of two AZs), through "
             f"`assume_role: {{role_name: reconciler}}`; {check.get('line', '')}. Set up by one fleet apply without "
             f"latency ({result['setup_apply_seconds']:.0f} s, not timed).", "",
             "| run | stacks | exit | wall s | peak RSS MB | calls |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    whole = result["whole"]
    lines.append(f"| one process | {result['stacks']} | {whole['exit']} | {whole['seconds']:.1f} | "
                 f"{whole['peak_rss_mb']:.0f} | {whole['calls']} |")
    lines += [f"| shard {s['shard']} | {s['stacks']} | {s['exit']} | {s['seconds']:.1f} | {s['peak_rss_mb']:.0f} | "
              f"{s['calls']} |" for s in result["shard_runs"]]
    lines += ["", "Issue 15's targets, as measured here:", "", *(f"- {t}" for t in result["targets"]), FLEET_END]
    return "\n".join(lines) + "\n"


def write_results(result: dict[str, Any]) -> str:
    """bench/results/fleet.json, and the fleet section of summary.md (replaced in place, or appended)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fleet.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    summary = RESULTS / "summary.md"
    text = summary.read_text() if summary.exists() else ""
    if FLEET_BEGIN in text and FLEET_END in text:
        before, rest = text.split(FLEET_BEGIN, 1)
        text = before.rstrip("\n") + "\n\n" + rest.split(FLEET_END, 1)[1].lstrip("\n")
    mine = section(result)
    summary.write_text((text.rstrip("\n") + "\n\n" if text.strip() else "") + mine)
    return mine


def bench(count: int, proxy: FaultProxy, moto: str, workdir: Path, timeout: float, run_step: Callable[..., Any],
          check: Any, keep: Path | None = None) -> dict[str, Any]:
    """`scripts/bench.py --fleet N`, inside its moto server and checked proxy: run, keep, write, print."""
    if count < SHARDS:
        raise SystemExit(f"--fleet {count}: give at least {SHARDS} stacks (the bench shards them into {SHARDS})")
    result = run(count, proxy, moto, workdir, timeout, run_step)
    result["latency_ms"] = check.injected_ms
    result["proxy_check"] = {"injected_ms": check.injected_ms, "measured_ms": round(check.measured_ms, 1),
                             "moto_alone_ms": round(check.direct_ms, 1), "line": check.line()}
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        for path in [*workdir.glob("*.json"), *(workdir / "runs").iterdir(), *(workdir / "fleet").iterdir()]:
            shutil.copy(path, keep / f"fleet-{path.name}")
    print("\n" + write_results(result))
    return result
