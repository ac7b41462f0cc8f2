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
    return arn


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
