"""bench/floor.py's pacing floor: the slowest bucket binds, bursts are free, EC2 is per action."""

from __future__ import annotations

from bench.floor import pacing_floor

RATES = {"iam": (20.0, 100.0), "ec2": (20.0, 100.0), "ecr": (50.0, 100.0)}


def rate(service: str) -> tuple[float, float] | None:
    return RATES.get(service)


def test_reads_within_the_burst_cost_nothing() -> None:
    assert pacing_floor({"iam:ListAccessKeys": 50, "iam:GetLoginProfile": 50}, rate, frozenset()) == (0.0, "")


def test_the_slowest_service_binds() -> None:
    # 640 IAM reads: (640 - 100) / 20 = 27 s; 960 ECR reads: (960 - 100) / 50 = 17.2 s
    seconds, bucket = pacing_floor({"iam:ListAccessKeys": 320, "iam:GetLoginProfile": 320,
                                    "ecr:GetLifecyclePolicy": 480, "ecr:GetRepositoryPolicy": 480}, rate, frozenset())
    assert (round(seconds, 2), bucket) == (27.0, "iam")


def test_a_per_action_service_has_a_bucket_per_operation() -> None:
    reads = {"ec2:DescribeVpcAttribute": 150, "ec2:DescribeSubnets": 150}
    assert pacing_floor(reads, rate, frozenset({"ec2"})) == (2.5, "ec2:DescribeVpcAttribute")
    assert pacing_floor(reads, rate, frozenset()) == (10.0, "ec2")


def test_an_unpaced_service_has_no_floor() -> None:
    assert pacing_floor({"sts:GetCallerIdentity": 10_000}, rate, frozenset()) == (0.0, "")
