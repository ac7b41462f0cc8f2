"""The calls a converged plan makes, counted against moto: per-resource reads only where AWS has no
batch form (issue 14's bound), drift's extra reads only in drift, ListImages only for a deletion."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.run import Options, Run, plan_run
from reconciler.plan.model import Action
from tests.conftest import Moto, run_cli
from tests.faults.plugin import Faulty
from tests.faults.proxy import Fault, rule

N = 3  # users and repositories; every per-resource count below is a multiple of it


def manifest(repos: int = N) -> str:
    out = ["version: 1\nstack: counted\nregion: us-east-1\niam:\n  users:\n"]
    for u in range(N):
        store = f"{{secretsmanager: counted/u{u}}}" if u % 2 == 0 else f"{{ssm: /counted/u{u}}}"
        out.append(f"    - name: u{u}\n      access_keys: {{store: {store}}}\n")
    out.append("ecr:\n  repositories:\n")
    for r in range(repos):
        out.append(f"    - name: r{r}\n")
    return "".join(out)


@pytest.fixture
def env(moto: Moto, monkeypatch: Any) -> Moto:
    for key, value in moto.env().items():
        monkeypatch.setenv(key, value)
    return moto


def counts(run: Run) -> Counter[str]:
    return Counter(f"{service}:{operation}" for service, operation in run.clients.calls)


def applied(cli: Any, tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    result = cli("apply", str(path), "--auto-approve")
    assert result.code == 0, result.all
    return path


def test_a_converged_plan_reads_per_resource_only_what_has_no_batch_form(cli: Any, env: Moto,
                                                                          tmp_path: Path) -> None:
    path = applied(cli, tmp_path, manifest())
    run = plan_run(path, Options(endpoint_url=env.endpoint))
    assert all(c.action is Action.NOOP for c in run.plan.changes), [(c.address, c.action) for c in run.plan.changes]
    seen = counts(run)
    # per user: its login profile and its keys; never a key's last use (only drift reports it)
    assert seen["iam:GetLoginProfile"] == N and seen["iam:ListAccessKeys"] == N
    assert seen["iam:GetAccessKeyLastUsed"] == 0
    # per repository: tags, lifecycle and repository policy; never its images (nothing is deleted)
    assert seen["ecr:ListTagsForResource"] == N
    assert seen["ecr:GetLifecyclePolicy"] == N and seen["ecr:GetRepositoryPolicy"] == N
    assert seen["ecr:ListImages"] == 0
    # the SSM stores' tags come from one Tagging API read, not one call per parameter
    assert seen["ssm:ListTagsForResource"] == 0
    assert seen["resourcegroupstaggingapi:GetResources"] == 1
    assert seen["iam:GetAccountAuthorizationDetails"] == 1 and seen["ecr:DescribeRepositories"] == 1

    drift = plan_run(path, Options(endpoint_url=env.endpoint), purpose="drift")
    extra = counts(drift) - seen
    assert extra == Counter({"iam:GetAccessKeyLastUsed": N})  # one per access key (one key per user), nothing else
    assert sum(counts(drift).values()) <= sum(seen.values()) + N


def test_a_plan_that_deletes_a_repository_checks_its_images_and_no_other(cli: Any, env: Moto,
                                                                         tmp_path: Path) -> None:
    path = applied(cli, tmp_path, manifest())
    ecr: Any = env.client("ecr")
    image_manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                      "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
                                 "digest": "sha256:" + "a" * 64}, "layers": []}
    ecr.put_image(repositoryName=f"r{N - 1}", imageManifest=json.dumps(image_manifest), imageTag="v1")
    path.write_text(manifest(repos=N - 2))  # r{N-2} (empty) and r{N-1} (holds an image) leave the manifest
    run = plan_run(path, Options(endpoint_url=env.endpoint))
    seen = counts(run)
    assert seen["ecr:ListImages"] == 2  # one per repository the plan deletes
    by_address = {c.address: c for c in run.plan.changes}
    empty, full = by_address[f"ecr.repository.r{N - 2}"], by_address[f"ecr.repository.r{N - 1}"]
    assert empty.action is Action.DELETE and empty.blocked is None
    assert full.action is Action.DELETE and full.blocked is not None and "holds images" in full.blocked


def test_ssm_tags_fall_back_to_the_parameter_when_the_index_lags(cli: Any, env: Moto, tmp_path: Path) -> None:
    """A store whose indexed key ids miss the key it holds is read from SSM itself (the index lags)."""
    path = applied(cli, tmp_path, manifest())
    ssm: Any = env.client("ssm")
    name = "/counted/u1"
    tags = {t["Key"]: t["Value"] for t in ssm.list_tags_for_resource(ResourceType="Parameter",
                                                                      ResourceId=name)["TagList"]}
    key_tag = next(k for k in tags if k.endswith("key-ids"))
    # what a lagging index would show: the key-ids tag from before the last key write
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name, Tags=[{"Key": key_tag, "Value": "AKIAOLD"}])
    run = plan_run(path, Options(endpoint_url=env.endpoint))
    assert counts(run)["ssm:ListTagsForResource"] == 1  # that one store, from SSM itself
    change = next(c for c in run.plan.changes if c.address == "iam.user.u1.access_keys")
    # the held key is still taken as delivered: no key is deactivated or deleted because of the tag
    assert all(k["role"] == "delivered" for k in change.have.attrs["keys"]), change.have.attrs


def test_a_throttling_storm_on_the_fanned_out_reads_is_absorbed(faulty: Faulty, tmp_path: Path) -> None:
    """Half of every per-resource read throttled, through the fault proxy: the plan still finishes, in sync."""
    path = tmp_path / "m.yaml"
    path.write_text(manifest())
    assert run_cli(["apply", str(path), "--auto-approve"], faulty.env()).code == 0
    faulty.clear()
    per_resource = ("GetLoginProfile", "ListAccessKeys", "ListTagsForResource", "GetLifecyclePolicy",
                    "GetRepositoryPolicy")
    faulty.add(rule(Fault.THROTTLE, *per_resource, every=2, streak=3))
    planned = run_cli(["plan", str(path), "--detailed-exitcode"], faulty.env(RECONCILER_MAX_ATTEMPTS="6"))
    assert planned.code == 0, planned.all
    thrown = faulty.faults()
    assert sum(thrown.values()) >= N * 2, thrown  # the storm did hit: every second one of 5 x N reads
    # and was absorbed by retries: every throttled read was sent again, nothing else was added
    sent = faulty.operations(writes=False)
    assert sent["GetLoginProfile"] == N + thrown["GetLoginProfile:throttle"]
    assert sent["GetAccessKeyLastUsed"] == 0 and sent["ListImages"] == 0
