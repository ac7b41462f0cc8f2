"""ECR repositories through the real CLI against moto server: the reconcile contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Moto
from tests.integration.test_iam import _operations

MANIFEST = """\
version: 1
stack: ecrtest
region: us-east-1
tags: {env: test}
ecr:
  repositories:
    - name: secure
    - name: tuned
      tag_mutability: mutable
      scan_on_push: false
      lifecycle:
        rules:
          - {rulePriority: 20, description: keep 10, selection: {tagStatus: any, countType: imageCountMoreThan,
             countNumber: 10}, action: {type: expire}}
          - {rulePriority: 5, description: untagged, selection: {tagStatus: untagged, countType: sinceImagePushed,
             countUnit: days, countNumber: 3}, action: {type: expire}}
      policy:
        Version: "2012-10-17"
        Statement:
          - Sid: Pull
            Effect: Allow
            Principal: {AWS: ["arn:aws:iam::123456789012:root"]}
            Action: [ecr:GetDownloadUrlForLayer, ecr:BatchGetImage]
      tags: {team: web}
"""


def write(tmp_path: Path, text: str = MANIFEST) -> Path:
    path = tmp_path / "ecr.yaml"
    path.write_text(text)
    return path


def describe(moto: Moto, name: str) -> dict[str, Any]:
    ecr: Any = moto.client("ecr")
    return ecr.describe_repositories(repositoryNames=[name])["repositories"][0]  # type: ignore[no-any-return]


def test_apply_creates_secure_repositories_and_the_second_plan_is_empty(cli: Any, moto: Moto,
                                                                         tmp_path: Path) -> None:
    manifest = write(tmp_path)
    first = cli("apply", str(manifest), "--auto-approve")
    assert first.code == 0, first.all
    ecr: Any = moto.client("ecr")
    secure = describe(moto, "secure")
    assert secure["imageTagMutability"] == "IMMUTABLE"
    assert secure["imageScanningConfiguration"]["scanOnPush"] is True
    assert secure["encryptionConfiguration"]["encryptionType"] == "AES256"
    rules = json.loads(ecr.get_lifecycle_policy(repositoryName="secure")["lifecyclePolicyText"])["rules"]
    assert [r["selection"]["tagStatus"] for r in rules] == ["untagged"]
    tags = {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=secure["repositoryArn"])["tags"]}
    assert tags["reconciler:stack"] == "ecrtest" and tags["reconciler:address"] == "ecr.repository.secure"
    assert tags["env"] == "test"
    tuned = describe(moto, "tuned")
    assert tuned["imageTagMutability"] == "MUTABLE" and tuned["imageScanningConfiguration"]["scanOnPush"] is False
    policy = json.loads(ecr.get_repository_policy(repositoryName="tuned")["policyText"])
    assert policy["Statement"][0]["Sid"] == "Pull"

    again = cli("plan", str(manifest), "--detailed-exitcode")
    assert again.code == 0 and "No changes" in again.out, again.all
    second = cli("apply", str(manifest), "--auto-approve")
    assert second.code == 0 and "No changes" in second.out, second.all


def test_no_perpetual_diff_when_aws_returns_rules_and_statements_in_another_order(cli: Any, moto: Moto,
                                                                                tmp_path: Path) -> None:
    manifest = write(tmp_path)
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    ecr: Any = moto.client("ecr")
    # the same meaning, written differently: rules reversed, keys reordered, no spaces; policy as one-item strings
    rules = json.loads(ecr.get_lifecycle_policy(repositoryName="tuned")["lifecyclePolicyText"])["rules"]
    text = json.dumps({"rules": [dict(reversed(list(r.items()))) for r in reversed(rules)]}, separators=(",", ":"))
    ecr.put_lifecycle_policy(repositoryName="tuned", lifecyclePolicyText=text + " " * 100)
    ecr.set_repository_policy(repositoryName="tuned", policyText=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Sid": "Pull", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                       "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]}))
    plan = cli("plan", str(manifest), "--detailed-exitcode")
    assert plan.code == 0, plan.all


# by-hand changes, grouped so each group costs one apply/plan/drift/apply/plan round
BY_HAND = {
    "secure": (["scan_off", "mutability", "lifecycle_removed", "policy_added"],
               ["scan_on_push", "tag_mutability", "lifecycle_rules", "policy"]),
    "tuned": (["lifecycle_rule_dropped", "policy_statement_added", "tag_changed"],
              ["lifecycle_rules", "policy.Statement[Everyone]", "tags.team"]),
    "deleted": (["deleted"], ["ecr.repository.tuned (ecr.repository) will be created"]),
}


def _change_by_hand(moto: Moto, change: str) -> None:
    ecr: Any = moto.client("ecr")
    if change == "scan_off":
        ecr.put_image_scanning_configuration(repositoryName="secure",
                                             imageScanningConfiguration={"scanOnPush": False})
    elif change == "mutability":
        ecr.put_image_tag_mutability(repositoryName="secure", imageTagMutability="MUTABLE")
    elif change == "lifecycle_removed":
        ecr.delete_lifecycle_policy(repositoryName="secure")
    elif change == "lifecycle_rule_dropped":
        rules = json.loads(ecr.get_lifecycle_policy(repositoryName="tuned")["lifecyclePolicyText"])["rules"]
        ecr.put_lifecycle_policy(repositoryName="tuned", lifecyclePolicyText=json.dumps({"rules": rules[:1]},
                                                                                         indent=4))
    elif change == "policy_added":
        ecr.set_repository_policy(repositoryName="secure", policyText=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                                                    "Action": "ecr:BatchGetImage"}]}))
    elif change == "policy_statement_added":
        doc = json.loads(ecr.get_repository_policy(repositoryName="tuned")["policyText"])
        doc["Statement"].append({"Sid": "Everyone", "Effect": "Allow", "Principal": "*",
                                 "Action": "ecr:BatchGetImage"})
        ecr.set_repository_policy(repositoryName="tuned", policyText=json.dumps(doc))
    elif change == "tag_changed":
        ecr.tag_resource(resourceArn=describe(moto, "tuned")["repositoryArn"],
                         tags=[{"Key": "team", "Value": "other"}])
    elif change == "deleted":
        ecr.delete_repository(repositoryName="tuned")


@pytest.mark.parametrize("group", sorted(BY_HAND))
def test_by_hand_changes_are_found_by_plan_and_drift_and_healed(cli: Any, moto: Moto, tmp_path: Path,
                                                                group: str) -> None:
    manifest = write(tmp_path)
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    changes, expected = BY_HAND[group]
    for change in changes:
        _change_by_hand(moto, change)
    found = cli("plan", str(manifest), "--detailed-exitcode")
    assert found.code == 2, found.all
    for expect in expected:
        assert expect in found.out, (expect, found.out)
    drift = cli("drift", str(manifest))
    assert drift.code == 2, drift.all
    healed = cli("apply", str(manifest), "--auto-approve")
    assert healed.code == 0, healed.all
    after = cli("plan", str(manifest), "--detailed-exitcode")
    assert after.code == 0, after.all
    ecr: Any = moto.client("ecr")
    assert describe(moto, "secure")["imageScanningConfiguration"]["scanOnPush"] is True
    assert describe(moto, "secure")["imageTagMutability"] == "IMMUTABLE"
    try:
        ecr.get_repository_policy(repositoryName="secure")
        raise AssertionError("the policy added by hand is still there")
    except ecr.exceptions.RepositoryPolicyNotFoundException:
        pass
    assert len(json.loads(ecr.get_lifecycle_policy(repositoryName="tuned")["lifecyclePolicyText"])["rules"]) == 2


def test_plan_sends_only_reads_and_batches(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path)
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    import requests

    requests.post(f"{moto.endpoint}/moto-api/recorder/reset-recording", timeout=5)
    requests.post(f"{moto.endpoint}/moto-api/recorder/start-recording", timeout=5)
    try:
        result = cli("plan", str(manifest), "--detailed-exitcode")
    finally:
        requests.post(f"{moto.endpoint}/moto-api/recorder/stop-recording", timeout=5)
    assert result.code == 0, result.all
    log = requests.get(f"{moto.endpoint}/moto-api/recorder/download-recording", timeout=5).text
    ops = [op for op in _operations(log) if op not in ("GetCallerIdentity",)]
    from reconciler.engine.clients import is_read

    assert all(is_read(op) for op in ops), ops
    ecr_ops = [op for op in ops if op in {"DescribeRepositories", "ListTagsForResource", "GetLifecyclePolicy",
                                          "GetRepositoryPolicy", "ListImages"}]
    assert ecr_ops.count("DescribeRepositories") == 1, ops
    # per repository only what ECR has no batch form for: tags, lifecycle, policy; its images only
    # when the plan deletes or replaces it (tests/integration/test_read_counts.py)
    assert ecr_ops.count("ListTagsForResource") == 2 and ecr_ops.count("GetLifecyclePolicy") == 2, ops
    assert ecr_ops.count("ListImages") == 0, ops


def test_a_same_named_untagged_repository_is_reported_never_touched(cli: Any, moto: Moto, tmp_path: Path) -> None:
    ecr: Any = moto.client("ecr")
    ecr.create_repository(repositoryName="secure", imageTagMutability="MUTABLE")
    manifest = write(tmp_path)
    plan = cli("plan", str(manifest))
    assert "BLOCKED" in plan.out and "not owned by stack ecrtest" in plan.out, plan.all
    applied = cli("apply", str(manifest), "--auto-approve")
    assert applied.code == 1 and "nothing was applied" in applied.err, applied.all
    assert describe(moto, "secure")["imageTagMutability"] == "MUTABLE"
    assert [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]] == ["secure"]
    destroyed = cli("destroy", str(manifest), "--auto-approve")
    assert destroyed.code == 0, destroyed.all
    assert [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]] == ["secure"]


def test_removed_from_manifest_is_deleted_and_kms_alias_is_not_a_diff(cli: Any, moto: Moto, tmp_path: Path) -> None:
    kms: Any = moto.client("kms")
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/ecr-test", TargetKeyId=key["KeyId"])
    manifest = write(tmp_path, MANIFEST + """\
    - name: sealed
      encryption: {type: KMS, kms_key: alias/ecr-test}
""")
    assert cli("apply", str(manifest), "--auto-approve").code == 0, "apply"
    ecr: Any = moto.client("ecr")
    assert describe(moto, "sealed")["encryptionConfiguration"]["encryptionType"] == "KMS"
    again = cli("plan", str(manifest), "--detailed-exitcode")
    assert again.code == 0, again.all
    # encryption change: replacement, shown as such
    changed = write(tmp_path, MANIFEST + """\
    - name: sealed
      encryption: {type: AES256}
""")
    plan = cli("plan", str(changed))
    assert "ecr.repository.sealed" in plan.out and "forces replacement" in plan.out, plan.all
    assert cli("apply", str(changed), "--auto-approve").code == 0
    assert describe(moto, "sealed")["encryptionConfiguration"]["encryptionType"] == "AES256"
    # dropped from the manifest: an owned, empty repository is deleted, loudly first in the plan
    write(tmp_path)
    plan = cli("plan", str(manifest))
    assert "will be DELETED" in plan.out and "ecr.repository.sealed" in plan.out, plan.all
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    assert sorted(r["repositoryName"] for r in ecr.describe_repositories()["repositories"]) == ["secure", "tuned"]


def test_a_protected_repository_is_never_deleted_even_once_dropped(cli: Any, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path, MANIFEST + "    - {name: kept, protect: true}\n")
    assert cli("apply", str(manifest), "--auto-approve").code == 0
    write(tmp_path)
    refused = cli("apply", str(manifest), "--auto-approve")
    assert refused.code == 1 and "ecr.repository.kept" in refused.err and "protect" in refused.err, refused.all
    assert describe(moto, "kept")["repositoryName"] == "kept"
