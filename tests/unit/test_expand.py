"""Expansion of IAM, ECR and images on literal data: addresses, secure defaults, ownership tags, dependencies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.manifest.common import ownership_tags
from reconciler.manifest.expand import expand
from reconciler.manifest.loader import Source
from reconciler.manifest.model import DesiredResource, Manifest
from reconciler.manifest.sections.ecr import expand as expand_ecr
from reconciler.manifest.sections.ecr import lifecycle_rules
from reconciler.manifest.sections.iam import expand as expand_iam
from reconciler.manifest.sections.images import expand as expand_images
from reconciler.ownership import ADDRESS_TAG, STACK_TAG, group_path

BASE_DIR = Path("/srv/stacks/demo")
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}


def manifest(data: dict[str, Any], policies: dict[str, Any] | None = None, base: Path = BASE_DIR) -> Manifest:
    full = {"version": 1, "stack": "demo", "region": "eu-west-1", **data}
    return Manifest(base / "demo.yaml", full, Source("demo.yaml"), "0" * 64, policies or {})


@pytest.fixture
def contexts(tmp_path: Path) -> Path:
    """A manifest directory whose build contexts exist (images hash their inputs while expanding)."""
    for name in ("app", "api"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    (tmp_path / "app" / "docker").mkdir()
    (tmp_path / "app" / "docker" / "Prod.Dockerfile").write_text("FROM scratch AS runtime\n", encoding="utf-8")
    return tmp_path


def by_address(resources: list[DesiredResource]) -> dict[str, DesiredResource]:
    return {r.address: r for r in resources}


# ---------------------------------------------------------------- ownership

def test_ownership_tags_carry_stack_address_name_and_the_manifest_tags() -> None:
    m = manifest({"tags": {"env": "dev", "team": "core"}})
    tags = ownership_tags(m, "iam.user.bot", "bot", {"team": "ml"})
    assert tags == {"env": "dev", "team": "ml", "Name": "bot", STACK_TAG: "demo", ADDRESS_TAG: "iam.user.bot"}


def test_ownership_tags_cannot_be_overridden_by_resource_tags() -> None:
    tags = ownership_tags(manifest({}), "iam.user.bot", "bot", {"Name": "other", STACK_TAG: "evil"})
    assert tags["Name"] == "bot" and tags[STACK_TAG] == "demo"


# ---------------------------------------------------------------- IAM

def test_groups_live_under_the_stack_path_with_sorted_policies_and_file_policies_resolved() -> None:
    m = manifest({"iam": {"groups": [{
        "name": "readers",
        "managed_policies": ["arn:aws:iam::aws:policy/ZZZ", "arn:aws:iam::aws:policy/AAA"],
        "inline_policies": {"read": {"file": "policies/read.json"}, "inline": POLICY},
        "protect": True,
    }]}}, policies={"policies/read.json": POLICY})
    [group] = expand_iam(m)
    assert group.address == "iam.group.readers" and group.kind == "iam.group" and group.protect
    # groups cannot be tagged: a protected group's protection is its path, which survives its removal
    assert group.spec["path"] == group_path("demo", protect=True) == "/reconciler/demo/protected/"
    assert group_path("demo") == "/reconciler/demo/"
    assert group.spec["managed_policies"] == ["arn:aws:iam::aws:policy/AAA", "arn:aws:iam::aws:policy/ZZZ"]
    assert group.spec["inline_policies"] == {"inline": POLICY, "read": POLICY}
    assert group.depends_on == ()


def test_a_user_gets_defaults_no_console_and_depends_on_its_groups() -> None:
    m = manifest({"tags": {"env": "dev"}, "iam": {
        "groups": [{"name": "b"}, {"name": "a"}],
        "users": [{"name": "bot", "groups": ["b", "a"], "tags": {"owner": "me"}}],
    }})
    user = by_address(expand_iam(m))["iam.user.bot"]
    assert user.kind == "iam.user" and not user.protect
    assert user.spec["path"] == "/"
    assert user.spec["groups"] == ["a", "b"]
    assert user.spec["managed_policies"] == [] and user.spec["inline_policies"] == {}
    assert user.spec["console_access"] is False
    assert user.depends_on == ("iam.group.a", "iam.group.b")
    assert user.spec["tags"] == {"env": "dev", "owner": "me", "Name": "bot", STACK_TAG: "demo",
                                 ADDRESS_TAG: "iam.user.bot", "reconciler:protect": "false"}


def test_access_keys_default_to_one_key_rotated_after_90_days_with_7_days_grace() -> None:
    store = {"secretsmanager": "demo/bot", "kms_key": "alias/k"}
    m = manifest({"iam": {"users": [{"name": "bot", "protect": True, "access_keys": {"store": store}}]}})
    keys = by_address(expand_iam(m))["iam.user.bot.access_keys"]
    assert keys.kind == "iam.access_key" and keys.protect
    assert keys.depends_on == ("iam.user.bot",)
    assert keys.spec["user"] == "bot"
    assert (keys.spec["count"], keys.spec["rotate_after_days"], keys.spec["grace_days"]) == (1, 90, 7)
    assert keys.spec["store"] == store and keys.spec["store"] is not store
    assert keys.spec["tags"][ADDRESS_TAG] == "iam.user.bot.access_keys"


def test_access_key_settings_are_taken_as_written() -> None:
    m = manifest({"iam": {"users": [{"name": "bot", "access_keys": {
        "count": 2, "rotate_after_days": 30, "grace_days": 0, "store": {"ssm": "/demo/bot"}}}]}})
    keys = by_address(expand_iam(m))["iam.user.bot.access_keys"]
    assert (keys.spec["count"], keys.spec["rotate_after_days"], keys.spec["grace_days"]) == (2, 30, 0)


def test_a_user_without_access_keys_gets_no_key_resource() -> None:
    assert [r.address for r in expand_iam(manifest({"iam": {"users": [{"name": "bot"}]}}))] == ["iam.user.bot"]


# ---------------------------------------------------------------- ECR

def test_a_bare_repository_is_immutable_scanned_encrypted_and_expires_untagged_images() -> None:
    [repo] = expand_ecr(manifest({"ecr": {"repositories": [{"name": "app"}]}}))
    assert repo.address == "ecr.repository.app" and repo.kind == "ecr.repository" and repo.depends_on == ()
    assert repo.spec["tag_mutability"] == "immutable"
    assert repo.spec["scan_on_push"] is True
    assert repo.spec["encryption"] == {"type": "AES256"}
    [rule] = repo.spec["lifecycle_rules"]
    assert rule["selection"] == {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                                 "countNumber": 7}
    assert rule["action"] == {"type": "expire"} and rule["rulePriority"] == 1
    assert repo.spec["policy"] is None  # none written means none: a policy added by hand is drift
    assert repo.spec["force_delete"] is False


def test_repository_settings_are_taken_as_written() -> None:
    [repo] = expand_ecr(manifest({"ecr": {"repositories": [{
        "name": "team/app", "tag_mutability": "mutable", "scan_on_push": False,
        "encryption": {"type": "KMS", "kms_key": "alias/ecr"}, "policy": {"file": "p.json"}, "protect": True,
        "tags": {"tier": "web"}}]}}, policies={"p.json": POLICY}))
    assert repo.address == "ecr.repository.team/app" and repo.protect
    assert (repo.spec["tag_mutability"], repo.spec["scan_on_push"]) == ("mutable", False)
    assert repo.spec["encryption"] == {"type": "KMS", "kms_key": "alias/ecr"}
    assert repo.spec["policy"] == POLICY
    assert repo.spec["tags"]["tier"] == "web" and repo.spec["tags"]["Name"] == "team/app"


@pytest.mark.parametrize(("lifecycle", "expected"), [
    (None, [("untagged", 7)]),
    ({"untagged_expire_days": 3}, [("untagged", 3)]),
    ({"keep_last": 30}, [("any", 30)]),
    ({"keep_last": 30, "untagged_expire_days": 7}, [("untagged", 7), ("any", 30)]),
    ({}, []),
])
def test_lifecycle_shorthand(lifecycle: dict[str, int] | None, expected: list[tuple[str, int]]) -> None:
    rules = lifecycle_rules(lifecycle)
    assert [(r["selection"]["tagStatus"], r["selection"]["countNumber"]) for r in rules] == expected
    assert [r["rulePriority"] for r in rules] == list(range(1, len(rules) + 1))


def test_raw_lifecycle_rules_pass_through_as_copies() -> None:
    raw = [{"rulePriority": 5, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                             "countNumber": 9}, "action": {"type": "expire"}}]
    rules = lifecycle_rules({"rules": raw})
    assert rules == raw and rules[0] is not raw[0]


# ---------------------------------------------------------------- images

def test_one_image_resource_per_tag_depending_on_its_repository_with_defaults(contexts: Path) -> None:
    m = manifest({"ecr": {"repositories": [{"name": "app"}]}, "images": [{
        "repository": "app", "context": "app", "tags": ["1.0.0", "1.0"],
        "build_args": {"Z": "1", "A": "2"}}]}, base=contexts)
    images = by_address(expand_images(m))
    assert sorted(images) == ["image.app:1.0", "image.app:1.0.0"]
    image = images["image.app:1.0.0"]
    assert image.kind == "ecr.image" and image.depends_on == ("ecr.repository.app",)
    assert image.spec["context"] == "app"  # as written, so a plan made in one checkout applies in another
    assert image.spec["dockerfile"] == "Dockerfile" and image.spec["platform"] == "linux/amd64"
    assert image.spec["target"] is None
    assert list(image.spec["build_args"]) == ["A", "Z"]
    assert image.spec["tag"] == "1.0.0" and image.spec["repository"] == "app"
    assert image.spec["immutable"] is True  # the repository's default
    assert image.spec["inputs"] == images["image.app:1.0"].spec["inputs"]  # one build, two tags


def test_image_settings_are_taken_as_written(contexts: Path) -> None:
    m = manifest({"ecr": {"repositories": [{"name": "app", "tag_mutability": "mutable"}]}, "images": [{
        "repository": "app", "context": "app", "tags": ["2"], "dockerfile": "docker/Prod.Dockerfile",
        "target": "runtime", "platform": "linux/arm64"}]}, base=contexts)
    [image] = expand_images(m)
    assert (image.spec["dockerfile"], image.spec["target"], image.spec["platform"]) == (
        "docker/Prod.Dockerfile", "runtime", "linux/arm64")
    assert image.spec["immutable"] is False


def test_the_build_inputs_digest_follows_the_inputs(contexts: Path) -> None:
    def digest(**image: Any) -> str:
        m = manifest({"ecr": {"repositories": [{"name": "app"}]},
                      "images": [{"repository": "app", "context": "app", "tags": ["1"], **image}]}, base=contexts)
        return str(expand_images(m)[0].spec["inputs"])

    first = digest()
    assert digest() == first
    assert digest(build_args={"A": "1"}) != first
    assert digest(platform="linux/arm64") != first
    (contexts / "app" / "main.py").write_text("print('hi')\n", encoding="utf-8")
    assert digest() != first


# ---------------------------------------------------------------- the whole

def test_expand_sorts_by_address_and_every_dependency_resolves(contexts: Path) -> None:
    m = manifest({
        "iam": {"groups": [{"name": "pushers"}],
                "users": [{"name": "ci", "groups": ["pushers"], "access_keys": {"store": {"ssm": "/demo/ci"}}}]},
        "ecr": {"repositories": [{"name": "web"}, {"name": "api"}]},
        "images": [{"repository": "api", "context": "api", "tags": ["1"]}],
    }, base=contexts)
    resources = expand(m)
    addresses = [r.address for r in resources]
    assert addresses == sorted(addresses) == [
        "ecr.repository.api", "ecr.repository.web", "iam.group.pushers", "iam.user.ci", "iam.user.ci.access_keys",
        "image.api:1"]
    known = set(addresses)
    assert all(dep in known for r in resources for dep in r.depends_on)


def test_expand_is_pure_and_deterministic() -> None:
    data = {"ecr": {"repositories": [{"name": "app"}]}, "iam": {"users": [{"name": "u"}]}}
    assert expand(manifest(data)) == expand(manifest(data))
    assert data == {"ecr": {"repositories": [{"name": "app"}]}, "iam": {"users": [{"name": "u"}]}}


def test_expand_refuses_a_dependency_on_nothing(contexts: Path) -> None:
    # validation rejects an image of an undeclared repository; expansion still never emits a dangling edge
    m = manifest({"images": [{"repository": "ghost", "context": "app", "tags": ["1"]}]}, base=contexts)
    with pytest.raises(AssertionError, match="depends on unknown"):
        expand(m)
