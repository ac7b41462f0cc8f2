"""Images end to end: real Docker Engine, real registry (`--registry`), moto's ECR API, the real CLI.

Every output of every command is checked for the registry password and the raw
authorization token: they must never appear, even with -v.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from reconciler.engine.clients import is_read
from tests.conftest import CliResult, Moto
from tests.integration.conftest import SECRETS, LocalRegistry
from tests.integration.test_iam import _operations

pytestmark = pytest.mark.docker

DOCKERFILE = """\
FROM scratch
ARG VERSION=0
LABEL org.example.version=$VERSION
COPY app.txt /app/app.txt
CMD ["/app/app.txt"]
"""

MANIFEST = """\
version: 1
stack: imgtest
region: us-east-1
ecr:
  repositories:
    - name: {app}
      force_delete: {app_force}
    - name: {web}
      tag_mutability: mutable
      force_delete: true
images:
  - repository: {app}
    context: ctx
    tags: {app_tags}
    build_args: {{VERSION: "1"}}
  - repository: {web}
    context: ctx
    tags: [latest, "2"]
"""


class Scenario:
    """One test's manifest, build context and repository names (unique: the registry is per session)."""

    def __init__(self, tmp_path: Path, cli: Any, moto: Moto, registry: LocalRegistry) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.app, self.web = f"app-{suffix}", f"web-{suffix}"
        self.tmp, self.cli, self.moto, self.registry = tmp_path, cli, moto, registry
        self.context = tmp_path / "ctx"
        self.context.mkdir()
        (self.context / "Dockerfile").write_text(DOCKERFILE)
        (self.context / "app.txt").write_text("version one\n")
        (self.context / ".dockerignore").write_text("# not sent\nignored.txt\n")
        (self.context / "ignored.txt").write_text("scratch notes\n")
        self.manifest = tmp_path / "images.yaml"
        self.write()
        self.outputs: list[CliResult] = []

    def write(self, app_tags: str = '["1.0", "1.0.0"]', app_force: str = "false") -> None:
        self.manifest.write_text(MANIFEST.format(app=self.app, web=self.web, app_tags=app_tags, app_force=app_force))

    def run(self, *args: str) -> CliResult:
        result: CliResult = self.cli(*args, str(self.manifest), "--registry", self.registry.host)
        self.outputs.append(result)
        for secret in SECRETS:
            assert secret not in result.all, f"secret leaked by {args}"
        return result

    def ecr_tags(self, repository: str) -> dict[str, str]:
        ecr: Any = self.moto.client("ecr")
        listed = ecr.list_images(repositoryName=repository)["imageIds"]
        return {i["imageTag"]: i["imageDigest"] for i in listed if i.get("imageTag")}

    def registry_tags(self, repository: str) -> dict[str, str | None]:
        return {tag: self.registry.digest(repository, tag) for tag in self.registry.tags(repository)}


@pytest.fixture
def scenario(tmp_path: Path, cli: Any, moto: Moto, registry: LocalRegistry, docker_engine: Any) -> Scenario:
    return Scenario(tmp_path, cli, moto, registry)


def pushes_since(docker_engine: Any, host: str, since: float) -> list[str]:
    """Image push/tag events the daemon saw for this registry since `since` (other workers' registries differ)."""
    events = docker_engine.events(since=f"{since:.6f}", until=f"{time.time() + 0.5:.6f}", decode=True,
                                  filters={"type": "image"})
    return [f"{e.get('Action')} {e.get('id')}" for e in events
            if e.get("Action") in ("push", "tag") and host in json.dumps(e)]


def test_apply_pushes_every_tag_then_plan_is_empty_and_apply_builds_and_pushes_nothing(
        scenario: Scenario, docker_engine: Any) -> None:
    s = scenario
    reviewed = s.tmp / "plan.json"
    plan = s.run("plan", "--detailed-exitcode", "--out", str(reviewed))
    assert plan.code == 2, plan.all
    assert plan.out.count("push: ") == 4 and "inputs sha256:" in plan.out, plan.out

    started, since = time.monotonic(), time.time()
    first = s.run("apply", "--plan", str(reviewed), "-v")
    first_seconds = time.monotonic() - started
    assert first.code == 0, first.all
    assert pushes_since(docker_engine, s.registry.host, since)  # the probe used below does see pushes
    # two distinct inputs (the build args differ): two builds for four tags, progress per layer
    assert first.err.count("building inputs") == 2, first.err
    assert "layer " in first.err and (" pushed (" in first.err or "already exists" in first.err), first.err
    for repo, tags in ((s.app, {"1.0", "1.0.0"}), (s.web, {"latest", "2"})):
        in_ecr = s.ecr_tags(repo)
        in_registry = s.registry_tags(repo)
        assert tags <= set(in_ecr) and len(in_ecr) == 3, in_ecr  # + the inputs tag
        assert in_ecr == in_registry, (in_ecr, in_registry)  # ECR mirrors the registry digest for digest
        assert len(set(in_ecr.values())) == 1
        inputs_tag = next(t for t in in_ecr if t.startswith("reconciler-inputs-"))
        label = s.registry.config(repo, "1.0" if repo == s.app else "latest")["config"]["Labels"]
        assert label["org.reconciler.inputs"] == "sha256:" + inputs_tag.removeprefix("reconciler-inputs-")

    requests.post(f"{s.moto.endpoint}/moto-api/recorder/reset-recording", timeout=5)
    requests.post(f"{s.moto.endpoint}/moto-api/recorder/start-recording", timeout=5)
    started = time.monotonic()
    try:
        again = s.run("plan", "--detailed-exitcode", "-v")
    finally:
        noop_plan_seconds = time.monotonic() - started
        requests.post(f"{s.moto.endpoint}/moto-api/recorder/stop-recording", timeout=5)
    recorded = _operations(requests.get(f"{s.moto.endpoint}/moto-api/recorder/download-recording", timeout=5).text)
    # read-only, without registry credentials, one ListImages per repository
    assert all(is_read(op) for op in recorded) and "GetAuthorizationToken" not in recorded, recorded
    assert recorded.count("ListImages") <= 4 and recorded.count("DescribeRepositories") == 1, recorded
    assert again.code == 0 and "No changes" in again.out, again.all
    assert again.out.count("no-op: ") == 4, again.out

    before = {repo: s.registry_tags(repo) for repo in (s.app, s.web)}
    since = time.time()
    second = s.run("apply", "--auto-approve", "-v")
    assert second.code == 0 and "No changes" in second.out, second.all
    assert "building" not in second.err and "pushed" not in second.err
    assert pushes_since(docker_engine, s.registry.host, since) == []
    assert {repo: s.registry_tags(repo) for repo in (s.app, s.web)} == before
    print(f"\nfirst apply (2 builds, 4 tags): {first_seconds:.1f}s; no-op plan: {noop_plan_seconds:.1f}s")


def test_changed_context_pushes_mutable_tags_and_conflicts_on_immutable_ones(
        scenario: Scenario, docker_engine: Any) -> None:
    s = scenario
    assert s.run("apply", "--auto-approve").code == 0
    before = {repo: s.ecr_tags(repo) for repo in (s.app, s.web)}
    # an ignored file changes nothing
    (s.context / "ignored.txt").write_text("more notes\n")
    reviewed = s.tmp / "plan.json"
    assert s.run("plan", "--detailed-exitcode", "--out", str(reviewed)).code == 0

    (s.context / "app.txt").write_text("version two\n")
    stale = s.run("apply", "--plan", str(reviewed))
    assert stale.code == 4, stale.all  # a context edited after review makes the reviewed plan stale
    plan = s.run("plan", "--detailed-exitcode")
    assert plan.code == 2, plan.all
    assert plan.out.count("conflict: ") >= 2 and "BLOCKED" in plan.out, plan.out
    assert f"push: {s.web}:latest holds" in plan.out and f"push: {s.web}:2 holds" in plan.out, plan.out
    assert "tag_mutability: mutable" in plan.out  # how to fix it is said

    since = time.time()
    refused = s.run("apply", "--auto-approve")
    assert refused.code == 1 and "nothing was applied" in refused.err and "conflict" in refused.err, refused.all
    assert {repo: s.ecr_tags(repo) for repo in (s.app, s.web)} == before
    assert pushes_since(docker_engine, s.registry.host, since) == []

    # the fix: a new tag for the immutable repository; the mutable tags move
    s.write(app_tags='["1.0", "1.0.0", "1.1"]')
    plan = s.run("plan")
    assert plan.out.count("conflict: ") >= 2, plan.out  # 1.0 still names the old build
    s.write(app_tags='["1.1"]')
    applied = s.run("apply", "--auto-approve", "-v")
    assert applied.code == 0, applied.all
    app, web = s.ecr_tags(s.app), s.ecr_tags(s.web)
    assert app["1.0"] == before[s.app]["1.0"] and app["1.1"] != app["1.0"]
    assert web["latest"] == web["2"] != before[s.web]["latest"]
    assert s.registry_tags(s.web)["latest"] == web["latest"]
    assert s.run("plan", "--detailed-exitcode").code == 0

    # back to the first content: the old builds are retagged, nothing is built
    (s.context / "app.txt").write_text("version one\n")
    back = s.run("apply", "--auto-approve", "-v")
    assert back.code == 1 and "conflict" in back.err, back.all  # 1.1 is immutable and holds "version two"
    s.write(app_tags='["1.0"]')
    back = s.run("apply", "--auto-approve", "-v")
    assert back.code == 0, back.all
    assert "building" not in back.err and "(no build)" in back.err, back.err
    assert s.ecr_tags(s.web)["latest"] == before[s.web]["latest"]


def _push_by_hand(s: Scenario, docker_engine: Any, repo: str, tag: str) -> str:
    """What someone with docker and ECR credentials does: build something else, push it over the tag.

    On AWS the push alone is visible through the ECR API; with the stand-in registry the
    test tells moto's ECR about it (PutImage with the registry's manifest and digest),
    as ECR does by itself.
    """
    other = s.tmp / "other"
    other.mkdir(exist_ok=True)
    (other / "Dockerfile").write_text("FROM scratch\nCOPY x.txt /x.txt\n")
    (other / "x.txt").write_text(f"by hand {uuid.uuid4()}\n")
    image, _ = docker_engine.images.build(path=str(other), rm=True)
    reference = f"{s.registry.host}/{repo}"
    image.tag(reference, tag=tag)
    for event in docker_engine.api.push(reference, tag=tag, stream=True, decode=True, auth_config=s.registry.auth()):
        assert "error" not in event, event
    body, media_type = s.registry.manifest(repo, tag)
    digest = s.registry.digest(repo, tag)
    assert digest is not None
    ecr: Any = s.moto.client("ecr")
    ecr.put_image(repositoryName=repo, imageManifest=body.decode(), imageManifestMediaType=media_type,
                  imageTag=tag, imageDigest=digest)
    return digest


def test_by_hand_changes_are_found_by_drift_and_healed_by_apply(scenario: Scenario, docker_engine: Any) -> None:
    s = scenario
    assert s.run("apply", "--auto-approve").code == 0
    good = s.ecr_tags(s.web)["latest"]
    moved = _push_by_hand(s, docker_engine, s.web, "latest")
    assert moved != good
    ecr: Any = s.moto.client("ecr")
    ecr.put_image_scanning_configuration(repositoryName=s.app, imageScanningConfiguration={"scanOnPush": False})
    ecr.put_image_tag_mutability(repositoryName=s.app, imageTagMutability="MUTABLE")
    ecr.delete_lifecycle_policy(repositoryName=s.web)

    plan = s.run("plan", "--detailed-exitcode")
    assert plan.code == 2, plan.all
    assert f"image.{s.web}:latest" in plan.out and "not pushed by reconciler" in plan.out, plan.out
    assert f"~ digest: \"{moved}\" -> \"{good}\"" in plan.out, plan.out
    for attr in ("scan_on_push", "tag_mutability", "lifecycle_rules"):
        assert attr in plan.out, plan.out
    drift = s.run("drift")
    assert drift.code == 2, drift.all
    assert f"image.{s.web}:latest" in drift.out, drift.out

    healed = s.run("apply", "--auto-approve", "-v")
    assert healed.code == 0, healed.all
    assert "building" not in healed.err and "(no build)" in healed.err, healed.err
    assert s.ecr_tags(s.web)["latest"] == good == s.registry.digest(s.web, "latest")
    after = s.run("plan", "--detailed-exitcode")
    assert after.code == 0, after.all
    assert s.run("drift").code == 0


def test_destroy_refuses_non_empty_repositories_without_force_delete(scenario: Scenario, docker_engine: Any) -> None:
    s = scenario
    assert s.run("apply", "--auto-approve").code == 0
    ecr: Any = s.moto.client("ecr")
    foreign = f"foreign-{s.app}"
    ecr.create_repository(repositoryName=foreign)

    refused = s.run("destroy", "--auto-approve")
    assert refused.code == 1 and "holds images" in refused.err and "force_delete" in refused.err, refused.all
    names = {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}
    assert names == {s.app, s.web, foreign}

    s.write(app_force="true")
    assert s.run("apply", "--auto-approve").code == 0
    destroyed = s.run("destroy", "--auto-approve")
    assert destroyed.code == 0, destroyed.all
    names = {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}
    assert names == {foreign}
    assert s.registry.tags(s.app) == [] and s.registry.tags(s.web) == []


def test_the_maestro_example_images_push_and_stay_in_sync(cli: Any, moto: Moto, registry: LocalRegistry,
                                                          docker_engine: Any, tmp_path: Path) -> None:
    """manifests/maestro.yaml's ECR and images sections, with its real context under examples/services/."""
    import yaml

    from tests.conftest import ROOT

    data = yaml.safe_load((ROOT / "manifests" / "maestro.yaml").read_text())
    trimmed = {key: data[key] for key in ("version", "stack", "region", "tags", "ecr", "images")}
    for index, image in enumerate(trimmed["images"]):
        # a copy beside the manifest: a manifest's paths stay inside its tree (tmp_path here, no repository)
        shutil.copytree(ROOT / "manifests" / image["context"], tmp_path / f"context-{index}")
        image["context"] = f"context-{index}"
    manifest = tmp_path / "maestro-images.yaml"
    manifest.write_text(yaml.safe_dump(trimmed, sort_keys=False))
    applied = cli("apply", str(manifest), "--auto-approve", "--registry", registry.host, "-v")
    assert applied.code == 0, applied.all
    for image in trimmed["images"]:
        for tag in image["tags"]:
            assert registry.digest(image["repository"], tag) is not None
    again = cli("plan", str(manifest), "--detailed-exitcode", "--registry", registry.host)
    assert again.code == 0, again.all
    for result in (applied, again):
        assert not any(secret in result.all for secret in SECRETS)


def test_a_failing_build_fails_its_action_and_pushes_nothing(scenario: Scenario, docker_engine: Any) -> None:
    s = scenario
    (s.context / "Dockerfile").write_text(DOCKERFILE + "COPY missing.txt /missing.txt\n")
    since = time.time()
    failed = s.run("apply", "--auto-approve")
    assert failed.code == 1, failed.all
    assert "docker build failed" in failed.out and "missing.txt" in failed.out, failed.all
    assert s.ecr_tags(s.app) == {} and s.ecr_tags(s.web) == {}
    assert pushes_since(docker_engine, s.registry.host, since) == []


CANARY = "root:$6$CANARY-shadow-hash-never-printed$:19000:0:99999:7:::"


@pytest.mark.parametrize("dockerfile", ["../shadow", "link-to-shadow"])
def test_a_dockerfile_outside_its_context_is_refused_before_docker_or_aws_sees_it(
        scenario: Scenario, docker_engine: Any, dockerfile: str) -> None:
    """The Docker SDK reads a Dockerfile outside the context and the daemon quotes it in its error: never sent."""
    s = scenario
    (s.tmp / "shadow").write_text(CANARY + "\n")
    (s.context / "link-to-shadow").symlink_to(s.tmp / "shadow")
    text, app_image = s.manifest.read_text(), '    context: ctx\n    tags: ["1.0", "1.0.0"]'
    assert app_image in text
    s.manifest.write_text(text.replace(app_image, app_image.replace("ctx\n", f"ctx\n    dockerfile: {dockerfile}\n")))
    since = time.time()
    for command in (["validate"], ["plan"], ["apply", "--auto-approve", "-v"]):
        # validate makes no AWS call and takes no AWS flags (no --registry)
        result = s.cli(*command, str(s.manifest)) if command == ["validate"] else s.run(*command)
        assert result.code == 3, result.all
        assert "CANARY" not in result.all and "shadow-hash" not in result.all, result.all
        assert f"Dockerfile '{dockerfile}' leads outside its build context 'ctx'" in result.err, result.all
        assert "Traceback" not in result.all
    assert pushes_since(docker_engine, s.registry.host, since) == []
    ecr: Any = s.moto.client("ecr")
    names = {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}
    assert s.app not in names and s.web not in names  # refused at validate: nothing was created
