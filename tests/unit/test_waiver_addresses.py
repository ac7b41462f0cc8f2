"""Waivers that name addresses: only findings inside those resources are waived; validate says what each covers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.errors import ManifestError
from reconciler.manifest.findings import waiver_coverage
from reconciler.manifest.validate import load_manifest
from tests.conftest import ROOT

BASE = """\
version: 1
stack: wv
region: us-east-1
waivers:
  RC-NET-001: WAIVER
iam:
  users:
    - name: admin
      managed_policies: [arn:aws:iam::aws:policy/AdministratorAccess]
network:
  vpcs:
    - name: main
      cidr: 10.8.0.0/16
      subnets:
        - {name: pub, cidr: 10.8.0.0/24, az: us-east-1a, public: true}
      security_groups:
        - name: bastion
          ingress: [{protocol: tcp, ports: "22", from: 0.0.0.0/0}]
        - name: app
          ingress: [{protocol: tcp, ports: "APP_PORT", from: 0.0.0.0/0}]
"""


def manifest(tmp_path: Path, waiver: str, app_port: str = "22", admin_waiver: str = "") -> Path:
    text = BASE.replace("WAIVER", waiver).replace("APP_PORT", app_port)
    if admin_waiver:
        text = text.replace("waivers:\n", f"waivers:\n  RC-IAM-001: {admin_waiver}\n")
    else:
        text = text.replace("      managed_policies: [arn:aws:iam::aws:policy/AdministratorAccess]\n", "")
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path


def waived(path: Path) -> dict[str, str | None]:
    _, findings = load_manifest(path)
    return {f"{f.rule.id} {f.address}": f.waived for f in findings if f.rule.id == "RC-NET-001"}


def test_a_waiver_without_addresses_waives_the_rule_everywhere(tmp_path: Path) -> None:
    assert waived(manifest(tmp_path, '"on-call bastions"')) == {
        "RC-NET-001 vpc.main.sg.bastion": "on-call bastions", "RC-NET-001 vpc.main.sg.app": "on-call bastions"}
    assert waived(manifest(tmp_path, '{reason: "on-call bastions"}'))["RC-NET-001 vpc.main.sg.app"] == \
        "on-call bastions"


def test_a_waiver_with_addresses_waives_only_those(tmp_path: Path) -> None:
    path = manifest(tmp_path, '{reason: "on-call bastion", addresses: [vpc.main.sg.bastion]}', app_port="443")
    _, findings = load_manifest(path)
    ssh = [f for f in findings if f.rule.id == "RC-NET-001"]
    assert [(f.address, f.waived) for f in ssh] == [("vpc.main.sg.bastion", "on-call bastion")]
    assert "waiver RC-NET-001 covers vpc.main.sg.bastion (addresses: vpc.main.sg.bastion)" in \
        waiver_coverage(dict(load_manifest(path)[0].data), findings)


def test_a_high_finding_outside_the_waivers_addresses_fails_and_says_how_to_extend_it(tmp_path: Path) -> None:
    path = manifest(tmp_path, '{reason: "on-call bastion", addresses: [vpc.main.sg.bastion]}')
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    (problem,) = caught.value.problems
    assert "group app opens SSH/RDP" in problem.message
    assert "add vpc.main.sg.app to the addresses of the waiver of RC-NET-001" in problem.hint


def test_a_glob_covers_every_match(tmp_path: Path) -> None:
    path = manifest(tmp_path, '{reason: "reviewed", addresses: ["vpc.main.sg.*"]}')
    assert set(waived(path).values()) == {"reviewed"}


def test_an_address_naming_no_resource_is_an_error_at_its_position(tmp_path: Path) -> None:
    path = manifest(tmp_path, '{reason: "reviewed", addresses: [vpc.main.sg.bastoin, vpc.main.sg.app]}')
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    # the misspelt address, and the finding it therefore does not waive, in one run
    problem, finding = caught.value.problems
    assert "group bastion opens SSH/RDP" in finding.message
    assert (problem.line, problem.path) == (5, "$.waivers.RC-NET-001.addresses[0]")
    assert "vpc.main.sg.bastoin names no resource of the manifest" in problem.message
    assert "vpc.main.sg.bastion" in problem.hint


def test_iam_findings_have_the_users_address(tmp_path: Path) -> None:
    path = manifest(tmp_path, '"x-y-z"', admin_waiver='{reason: "break-glass", addresses: [iam.user.admin]}')
    _, findings = load_manifest(path)
    admin = [f for f in findings if f.rule.id == "RC-IAM-001"]
    assert [(f.address, f.waived) for f in admin] == [("iam.user.admin", "break-glass")]


def test_validate_prints_what_each_waiver_covers_and_warns_of_one_covering_nothing(tmp_path: Path) -> None:
    path = manifest(tmp_path, '"on-call"')
    text = path.read_text().replace("waivers:\n", 'waivers:\n  RC-ECR-002: "mutable tags on purpose"\n')
    path.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([sys.executable, "-m", "reconciler.cli", "validate", str(path)], cwd=ROOT,
                            env={**env, "NO_COLOR": "1"}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{path}: waiver RC-NET-001 covers vpc.main.sg.app, vpc.main.sg.bastion\n" in result.stderr
    assert f"{path}: warning: waiver RC-ECR-002 covers nothing: no finding of RC-ECR-002 is waived by it" \
        in result.stderr
