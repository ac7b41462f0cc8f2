"""The fleet bench's pure parts: its manifests, the comparison apart from timings, the verdicts and
the section it keeps in summary.md. (The bench itself is not a test: speed is measured, never asserted.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import fleet
from reconciler.manifest.expand import expand
from reconciler.manifest.schema import manifest_schema
from reconciler.manifest.validate import load_manifest


@pytest.mark.skipif("assume_role" not in manifest_schema()["properties"],
                    reason="assume_role is not in this tree's manifest schema yet (helper role, branch r15-role)")
def test_each_stack_is_a_user_with_a_key_two_repositories_and_a_two_az_vpc_in_its_own_account(tmp_path: Path) -> None:
    pattern = fleet.write_fleet(tmp_path, 3)
    assert pattern == str(tmp_path / "*.yaml")
    loaded, _ = load_manifest(tmp_path / "fleet-002.yaml")
    kinds = sorted(r.kind for r in expand(loaded))
    assert kinds.count("iam.user") == 1 and kinds.count("iam.access_key") == 1
    assert kinds.count("ecr.repository") == 2 and kinds.count("ec2.subnet") == 4
    assert loaded.data["account"] == "100000000002"


def test_the_comparison_ignores_timings_only() -> None:
    def doc(seconds: float, started: str, status: str) -> dict[str, Any]:
        return {"seconds": seconds, "exit_code": 0,
                "stacks": [{"stack": "s", "seconds": seconds / 2, "started_at": started, "status": status}]}

    a, b = doc(1.0, "x", "in_sync"), doc(9.0, "y", "in_sync")
    assert fleet.without_timings(a) == fleet.without_timings(b)
    b = doc(9.0, "y", "drift")
    assert fleet.without_timings(a) != fleet.without_timings(b)


def result(seconds: float = 40.0, rss: float = 150.0, shards: tuple[float, ...] = (10, 11, 10, 9),
           equal: bool = True) -> dict[str, Any]:
    runs = [{"shard": f"{i}/4", "stacks": 25, "exit": 0, "seconds": s, "peak_rss_mb": 90.0, "calls": 900}
            for i, s in enumerate(shards)]
    mean = sum(shards) / len(shards)
    out: dict[str, Any] = {
        "stacks": 100, "accounts": 100, "shards": 4, "setup_apply_seconds": 80.0,
        "whole": {"exit": 0, "seconds": seconds, "peak_rss_mb": rss, "calls": 3600, "writes": {}},
        "shard_runs": runs, "shard_mean_seconds": mean, "shard_slowest_over_mean": round(max(shards) / mean, 2),
        "merge_exit": 0, "merged_equals_unsharded": equal, "proxy_check": {"line": "proxy check: fine"}}
    out["targets"] = fleet.targets(out)
    return out


def test_each_target_is_judged() -> None:
    assert all(line.endswith(("holds", "holds (merge exit 0)")) for line in result()["targets"])
    missed = result(seconds=61, rss=301, shards=(10, 10, 10, 20), equal=False)["targets"]
    assert [("MISSED" in line) for line in missed] == [True, True, True, True]


def test_the_fleet_section_of_summary_md_is_replaced_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet, "RESULTS", tmp_path)
    (tmp_path / "summary.md").write_text("# `make bench` results\n\nsizes table\n")
    fleet.write_results(result(seconds=41.5))
    fleet.write_results(result(seconds=42.5))
    text = (tmp_path / "summary.md").read_text()
    assert text.startswith("# `make bench` results\n\nsizes table\n\n" + fleet.FLEET_BEGIN)
    assert text.count(fleet.FLEET_BEGIN) == 1 and "42.5" in text and "41.5" not in text
    assert (tmp_path / "fleet.json").exists()
