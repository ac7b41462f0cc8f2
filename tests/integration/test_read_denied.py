"""A denied or failed read never becomes a change: the real CLI through the fault proxy.

moto server does not enforce IAM policies, so the denial is the proxy's (`Fault.DENIED`
answers the chosen operation with the error AWS sends; moto never sees the request).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Moto, run_cli
from tests.faults.plugin import Faulty
from tests.faults.proxy import Fault, rule

STACK = "denied"
MANIFEST = """\
version: 1
stack: denied
region: us-east-1
ecr:
  repositories:
    - name: sealed
      force_delete: true
      encryption: {type: KMS, kms_key: alias/ecr-key}
"""


def _repository_as_aws_reports_it(moto: Moto) -> str:
    """A KMS key with an alias, and the stack's repository encrypted with it.

    AWS reports a repository's key as the key ARN whatever the create call named; moto echoes what it
    was given. So the repository is made here with the ARN, as AWS would show the tool's own create.
    """
    kms: Any = moto.client("kms")
    arn = str(kms.create_key(Description="ecr")["KeyMetadata"]["Arn"])
    kms.create_alias(AliasName="alias/ecr-key", TargetKeyId=arn)
    _sealed_repository(moto, arn)
    return arn


def _sealed_repository(moto: Moto, arn: str) -> None:
    ecr: Any = moto.client("ecr")
    ecr.create_repository(repositoryName="sealed", imageTagMutability="IMMUTABLE",
                          imageScanningConfiguration={"scanOnPush": True},
                          encryptionConfiguration={"encryptionType": "KMS", "kmsKey": arn},
                          tags=[{"Key": "reconciler:stack", "Value": STACK},
                                {"Key": "reconciler:address", "Value": "ecr.repository.sealed"},
                                {"Key": "reconciler:kind", "Value": "ecr.repository"},
                                {"Key": "Name", "Value": "sealed"},
                                {"Key": "reconciler:protect", "Value": "false"},
                                {"Key": "reconciler:force-delete", "Value": "true"}])
    image = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                        "digest": "sha256:" + "c" * 64},
             "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 3,
                         "digest": "sha256:" + "d" * 64}]}
    ecr.put_image(repositoryName="sealed", imageManifest=json.dumps(image), imageTag="1.0")


def _images(moto: Moto) -> list[str]:
    ecr: Any = moto.client("ecr")
    return sorted(i["imageTag"] for i in ecr.list_images(repositoryName="sealed")["imageIds"] if i.get("imageTag"))


@pytest.fixture
def sealed(moto: Moto, tmp_path: Path) -> Path:
    _repository_as_aws_reports_it(moto)
    manifest = tmp_path / "denied.yaml"
    manifest.write_text(MANIFEST)
    return manifest


def test_the_alias_names_the_key_aws_reports_so_nothing_is_replaced(moto: Moto, sealed: Path) -> None:
    """The control: with DescribeKey allowed the alias resolves to the reported ARN."""
    result = run_cli(["plan", str(sealed)], moto.env())
    assert result.code == 0, result.all
    assert "REPLACED" not in result.out and "ecr.repository.sealed" in result.out, result.all


def test_describe_key_denied_is_a_failed_read_not_a_replacement(moto: Moto, faulty: Faulty, sealed: Path) -> None:
    faulty.add(rule(Fault.DENIED, "DescribeKey"))
    planned = run_cli(["plan", str(sealed), "--format", "json"], faulty.env())
    assert planned.code == 1, planned.all
    assert "replace" not in planned.out and "REPLACED" not in planned.all, planned.all
    assert "kms:DescribeKey" in planned.err and "alias/ecr-key" in planned.err, planned.err
    assert "Traceback" not in planned.all
    assert faulty.faults()["DescribeKey:denied"] >= 1

    faulty.clear()
    faulty.add(rule(Fault.DENIED, "DescribeKey"))
    applied = run_cli(["apply", str(sealed), "--auto-approve"], faulty.env())
    assert applied.code == 1, applied.all
    ecr_writes = [w for w in faulty.writes() if "Repository" in w or "Image" in w or "Lifecycle" in w]
    assert ecr_writes == [], ecr_writes
    assert _images(moto) == ["1.0"], "the repository and its images must survive a denied read"


EVERY_READ = """\
version: 1
stack: denied
region: us-east-1
iam:
  groups:
    - name: readers
      inline_policies:
        read: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "*"}]}
  users:
    - name: reader
      groups: [readers]
      access_keys: {count: 1, store: {ssm: /denied/reader/key}}
    - name: writer
      access_keys: {count: 1, store: {secretsmanager: denied/writer}}
ecr:
  repositories:
    - name: sealed
      force_delete: true
      encryption: {type: KMS, kms_key: alias/ecr-key}
      policy:
        Version: "2012-10-17"
        Statement: [{Sid: Pull, Effect: Allow, Principal: {AWS: ["arn:aws:iam::123456789012:root"]},
                     Action: [ecr:BatchGetImage]}]
network:
  vpcs:
    - name: main
      cidr: 10.71.0.0/16
      subnets:
        - {name: pub, cidr: 10.71.0.0/24, az: us-east-1a, public: true}
        - {name: priv, cidr: 10.71.10.0/24, az: us-east-1a}
      nat: {mode: gateway}
      endpoints: [{service: s3}]
      security_groups:
        - {name: app, ingress: [{protocol: tcp, ports: "8080", from: "10.71.0.0/16"}]}
"""


def _changes(out: str) -> list[tuple[str, str]]:
    return sorted((c["address"], c["action"]) for c in json.loads(out)["changes"])


def test_every_read_the_plan_makes_denied_in_turn_fails_the_run_or_changes_nothing(
        moto: Moto, faulty: Faulty, tmp_path: Path) -> None:
    """Siblings of the DescribeKey case: each read operation of a plan of IAM, ECR and network, denied
    alone. The plan must fail (exit 1, one line, no traceback) or come out exactly as without the
    denial (a read that only feeds a note); a denied read must never show up as a delete, replace,
    update or create."""
    sealed = tmp_path / "every.yaml"
    sealed.write_text(EVERY_READ)
    kms: Any = moto.client("kms")
    arn = str(kms.create_key(Description="ecr")["KeyMetadata"]["Arn"])
    kms.create_alias(AliasName="alias/ecr-key", TargetKeyId=arn)
    applied = run_cli(["apply", str(sealed), "--auto-approve"], moto.env())
    assert applied.code == 0, applied.all
    ecr: Any = moto.client("ecr")
    ecr.delete_repository(repositoryName="sealed", force=True)
    _sealed_repository(moto, arn)  # the key shown as the ARN, as AWS reports it (see above)
    assert run_cli(["apply", str(sealed), "--auto-approve"], moto.env()).code == 0  # policy, lifecycle
    control = run_cli(["plan", str(sealed), "--format", "json"], faulty.env())
    assert control.code == 0, control.all
    expected = _changes(control.out)
    reads = sorted(set(faulty.reads()))
    assert {"DescribeKey", "GetAccountAuthorizationDetails", "DescribeRepositories", "DescribeVpcs",
            "ListSecrets", "DescribeParameters", "ListAccessKeys"} <= set(reads), reads
    outcomes: dict[str, str] = {}
    for operation in reads:
        faulty.clear()
        faulty.add(rule(Fault.DENIED, operation))
        denied = run_cli(["plan", str(sealed), "--format", "json"], faulty.env())
        assert "Traceback" not in denied.all, (operation, denied.all)
        if denied.code == 1:
            assert denied.out == "" and len(denied.err.strip().splitlines()) == 1, (operation, denied.all)
            outcomes[operation] = "failed"
        else:
            assert denied.code == 0 and _changes(denied.out) == expected, (operation, denied.all)
            outcomes[operation] = "unchanged"
    assert outcomes["DescribeKey"] == "failed" and outcomes["GetAccountAuthorizationDetails"] == "failed"

