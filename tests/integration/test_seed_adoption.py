"""The whole of the setup notes done by hand, then brought under management in one go (issue 12).

By hand, as the notes say (boto3 standing in for the console and the AWS CLI, against moto): a
programmatic user with AdministratorAccess and an access key "downloaded as a CSV", three
repositories made with `create-repository`, an image built with the real Docker Engine and pushed
to the real registry, and the VPC with public/private subnets, internet gateway, NAT gateway,
route tables, an S3 gateway endpoint and an ECR interface endpoint.

Then `export` -> `validate` -> `plan --adopt` -> `apply --adopt`, and: nothing is created but the
new key, nothing replaced or deleted, the hand-pushed image is still there, the hand-made key still
works (its retirement is scheduled, with dates), the next plan is empty apart from that schedule,
and `drift` reports everything IN_SYNC.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Moto
from tests.integration.conftest import LocalRegistry
from tests.integration.test_adopt_network import REGION, STACK, seed

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
USER = "my-app-developer"
REPOSITORIES = ("maestro-java-backend", "python-nlp-service", "react-frontend")
KEY_ADDRESS = f"iam.user.{USER}.access_keys"


def seed_iam_ecr(moto: Moto) -> str:
    """Steps 1, 2 and 4 of the notes; returns the id of the key that was "downloaded"."""
    iam: Any = moto.client("iam", REGION)
    iam.create_user(UserName=USER)
    iam.attach_user_policy(UserName=USER, PolicyArn=ADMIN)
    key_id = str(iam.create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"])
    ecr: Any = moto.client("ecr", REGION)
    for name in REPOSITORIES:
        ecr.create_repository(repositoryName=name)  # the CLI's defaults: mutable tags, no scan on push
    return key_id


def push_by_hand(moto: Moto, registry: LocalRegistry, docker_engine: Any, tmp_path: Path) -> str:
    """Step 5: docker build, tag, push; with the stand-in registry the test tells moto's ECR about the
    push (PutImage with the registry's manifest and digest), as ECR does by itself on AWS."""
    context = tmp_path / "java-backend"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /app.txt\n")
    (context / "app.txt").write_text("maestro java backend, built by hand\n")
    image, _ = docker_engine.images.build(path=str(context), rm=True)
    reference = f"{registry.host}/maestro-java-backend"
    image.tag(reference, tag="latest")
    for event in docker_engine.api.push(reference, tag="latest", stream=True, decode=True, auth_config=registry.auth()):
        assert "error" not in event, event
    body, media_type = registry.manifest("maestro-java-backend", "latest")
    digest = registry.digest("maestro-java-backend", "latest")
    assert digest is not None
    ecr: Any = moto.client("ecr", REGION)
    ecr.put_image(repositoryName="maestro-java-backend", imageManifest=body.decode(),
                  imageManifestMediaType=media_type, imageTag="latest", imageDigest=digest)
    return digest


def changes(plan_json: str) -> dict[str, dict[str, Any]]:
    return {c["address"]: c for c in json.loads(plan_json)["changes"]}


def test_the_manual_setup_is_exported_adopted_and_in_sync(cli: Any, moto: Moto, registry: LocalRegistry,
                                                          docker_engine: Any, tmp_path: Path) -> None:
    old_key = seed_iam_ecr(moto)
    digest = push_by_hand(moto, registry, docker_engine, tmp_path)
    ids = seed(moto)
    manifest = tmp_path / "maestro.yaml"
    repositories = [arg for name in REPOSITORIES for arg in ("--repository", name)]
    exported = cli("export", "--region", REGION, "--stack", STACK, "--user", USER, *repositories,
                   "--vpc", ids["vpc"], "--out", str(manifest))
    assert exported.code == 0, exported.all
    text = manifest.read_text()
    assert "# review:" in text and "RC-IAM-001" in text  # AdministratorAccess is waived for review, not hidden
    assert cli("validate", str(manifest)).code == 0

    plan = cli("plan", str(manifest), "--adopt", "--format", "json")
    assert plan.code == 0, plan.all
    found = changes(plan.out)
    actions = {address: change["action"] for address, change in found.items()}
    assert set(actions.values()) <= {"adopt", "noop"}, actions  # nothing created, replaced or deleted...
    # ...but the new key, made into the declared store as part of adopting the user's keys
    assert sorted(d["path"] for d in found[KEY_ADDRESS]["diff"]) == [f"keys.{old_key}", "keys.new"], found[KEY_ADDRESS]
    assert {f"ecr.repository.{name}" for name in REPOSITORIES} <= set(actions)
    assert {"vpc.main", "vpc.main.nat.public-a", "vpc.main.endpoint.ecr.api", f"iam.user.{USER}"} <= set(actions)
    assert not [c for c in found.values() if c.get("blocked")], found
    # the old key's hand-over is said, with dates: nothing about it is silent
    key_notes = " ".join(n["text"] for n in found[KEY_ADDRESS].get("notes", []))
    assert old_key in key_notes and "deactivated" in key_notes and "deleted" in key_notes, key_notes

    applied = cli("apply", str(manifest), "--adopt", "--auto-approve")
    assert applied.code == 0, applied.all

    iam: Any = moto.client("iam", REGION)
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]}
    assert keys[old_key] == "Active" and len(keys) == 2, keys  # the CSV's key keeps working for grace_days
    ecr: Any = moto.client("ecr", REGION)
    pushed = ecr.describe_images(repositoryName="maestro-java-backend")["imageDetails"]
    assert [i["imageDigest"] for i in pushed] == [digest]  # the hand-pushed image is still there

    again = cli("plan", str(manifest), "--detailed-exitcode")
    assert again.code == 0, again.all  # nothing to change; the retirement shows as a dated note
    assert old_key in again.out, again.out
    drift = cli("drift", str(manifest), "--format", "json")
    assert drift.code == 0, drift.all
    assert {e["status"] for e in json.loads(drift.out)["resources"]} == {"IN_SYNC"}, drift.out
