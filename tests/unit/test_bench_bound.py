"""`make bench`'s bound (the least calls of a no-op plan) and the critical path of an apply.

The bench itself is not a test (speed is measured, never asserted); these are its pure parts,
so a wrong bound or a wrong chain cannot hide behind a timing.
"""

from __future__ import annotations

from pathlib import Path

from bench.bound import drift_bound, plan_bound
from bench.critical import acting_span, critical_path, occupancy
from reconciler.kinds import all_kinds
from reconciler.manifest.expand import expand
from reconciler.manifest.validate import load_manifest

ROOT = Path(__file__).resolve().parents[2]


def test_the_plan_bound_is_one_read_per_type_plus_the_reads_with_no_batch_form() -> None:
    counts = {"iam.user": 40, "iam.access_key": 40, "iam.group": 5, "ecr.repository": 40, "ec2.vpc": 8,
              "ec2.subnet": 32}
    # 6 types + 2 stores; per user 2, per repository 3, per VPC 2; groups, keys and subnets come batched
    assert plan_bound(counts, {"ssm", "secretsmanager"}) == 6 + 2 + 40 * 2 + 40 * 3 + 8 * 2


def test_drift_may_add_one_read_per_access_key() -> None:
    counts = {"iam.user": 3, "iam.access_key": 5}
    assert drift_bound(counts) == plan_bound(counts) + 5


def test_a_type_the_manifest_does_not_use_costs_nothing() -> None:
    assert plan_bound({"iam.user": 0, "ecr.repository": 0}) == 0
    assert plan_bound({"ec2.vpc": 1}, ["ssm", "ssm"]) == 1 + 1 + 2  # a store type counts once


def test_the_critical_path_of_a_network_runs_from_the_vpc_through_the_nat() -> None:
    manifest, _ = load_manifest(ROOT / "manifests" / "ha-network.yaml")
    chain = [address for address, _ in critical_path(expand(manifest), all_kinds())]
    assert chain[0] == "vpc.prod"
    assert any(".nat." in address for address in chain), chain  # a private route waits for its NAT gateway
    assert len(chain) == len(set(chain)) >= 4


def test_the_apply_span_runs_from_the_first_start_to_the_last_end() -> None:
    stderr = ("2026-12-01T15:53:16Z ecr.repository.bench/repo-0000 created (0.5s)\n"
              "2026-12-01T15:53:20Z vpc.net-14.endpoint.s3 still creating (30s elapsed)\n"
              "2026-12-01T15:53:50Z vpc.net-14.endpoint.s3 (vpce-0703) created (36.0s)\n"
              "Apply complete: 2 done, 0 failed, 0 skipped.\n")
    assert acting_span(stderr) == 50 - 14.0  # 15:53:14 (50 s - 36 s) to 15:53:50
    assert acting_span("Apply complete: 0 done\n") == 0.0


def test_occupancy_is_the_actions_seconds_over_parallelism_times_the_span() -> None:
    stderr = ("2026-12-01T15:53:10Z iam.user.a created (10.0s)\n"
              "2026-12-01T15:53:10Z iam.user.b created (10.0s)\n"
              "2026-12-01T15:53:20Z iam.user.c created (10.0s)\n")
    # 30 s of actions in a 20 s span: two workers always busy, a third of 3 never was
    assert occupancy(stderr, 2) == 30 / (2 * 20)
    assert abs(occupancy(stderr, 3) - 0.5) < 1e-9
    assert occupancy("Apply complete: 0 done\n", 10) == 0.0
