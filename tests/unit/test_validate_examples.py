"""Every example manifest, and every case in tests/unit/good/, validates (exit 0)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.manifest.expand import expand
from reconciler.manifest.validate import load_manifest
from tests.conftest import ROOT

EXAMPLES = sorted((ROOT / "manifests").glob("*.yaml"))
GOOD = sorted((Path(__file__).resolve().parent / "good").glob("*.yaml"))



def test_the_three_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {"maestro.yaml", "minimal.yaml", "ha-network.yaml"}


@pytest.mark.parametrize("manifest", EXAMPLES + GOOD, ids=lambda p: p.name)
def test_validates(manifest: Path, capsys: pytest.CaptureFixture[str], keep_logging: None) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(manifest)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 0, err
    assert f"{manifest}: valid (" in err


@pytest.mark.parametrize("manifest", EXAMPLES, ids=lambda p: p.name)
def test_examples_start_with_the_schema_comment(manifest: Path) -> None:
    first = manifest.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/manifest.schema.json"


@pytest.mark.parametrize(("name", "rule"), [("waived-ssh.yaml", "RC-NET-001"), ("waived-admin.yaml", "RC-IAM-001")])
def test_a_waived_high_finding_passes_and_is_shown_as_waived(name: str, rule: str) -> None:
    _, findings = load_manifest(Path(__file__).resolve().parent / "good" / name)
    high = [f for f in findings if f.rule.severity == "high"]
    assert [f.rule.id for f in high] == [rule]
    assert high[0].waived and "[waived: " in str(high[0])


def test_ha_network_has_a_nat_gateway_and_elastic_ip_in_each_of_three_azs() -> None:
    manifest, findings = load_manifest(ROOT / "manifests" / "ha-network.yaml")
    kinds = Counter(r.kind for r in expand(manifest))
    assert kinds["ec2.nat_gateway"] == 3 and kinds["ec2.elastic_ip"] == 3 and kinds["ec2.subnet"] == 6
    azs = {s["az"] for s in manifest.data["network"]["vpcs"][0]["subnets"]}
    assert len(azs) == 3
    assert not [f for f in findings if f.rule.severity == "high"]
