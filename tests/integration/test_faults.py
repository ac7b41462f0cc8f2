"""Faults between the tool and AWS: a real loopback proxy in front of moto server.

Nothing is mocked: `reconcile` runs as a separate process, its boto3 clients talk
HTTP to `tests/faults/proxy.py`, which forwards to moto and injects throttling,
5xx, connection resets and lost responses, or holds the k-th write so the test can
SIGKILL the process at that exact point. After every fault the account must
converge with a plain re-run, with no duplicate and no leaked access key, and no
secret in any output even at --verbose.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, CliResult, Moto, run_cli
from tests.faults.plugin import Faulty
from tests.faults.proxy import Fault, Rule, rule

STACK = "faulttest"


def transient() -> list[Rule]:
    """Every 5th request throttled, and 500 / 503 / resets sprinkled in (fresh rules: they count).

    No request is faulted more than 3 times in a row, so a call with 6 attempts always gets through, as
    it does on AWS, whatever the timing of concurrent requests.
    """
    return [rule(Fault.THROTTLE, every=5, streak=3), rule(Fault.HTTP_500, every=11, streak=3),
            rule(Fault.HTTP_503, every=13, streak=3), rule(Fault.RESET, every=17, streak=3)]


LOCK = f"/reconciler/locks/{STACK}"

GROUP = """\
  groups:
    - name: pushers
      managed_policies: [arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser]
      inline_policies:
        describe:
          Version: "2012-10-17"
          Statement: [{Effect: Allow, Action: ["ecr:DescribeRepositories"], Resource: "*"}]
"""
USER = """\
    - name: %(name)s
      groups: [pushers]
      inline_policies:
        read-config:
          Version: "2012-10-17"
          Statement: [{Effect: Allow, Action: "ssm:GetParameter", Resource: "arn:aws:ssm:*:*:parameter/x"}]
      access_keys:
        count: %(count)d
        rotate_after_days: 90
        grace_days: 7
        store: {%(store)s}
"""
# name -> (count, store kind, store name)
USERS: dict[str, tuple[int, str, str]] = {
    "app-dev": (1, "secretsmanager", f"{STACK}/app-dev"),
    "ci-bot": (2, "ssm", f"/{STACK}/ci-bot/key"),
}


def write(tmp_path: Path, users: dict[str, tuple[int, str, str]] = USERS) -> Path:
    text = f"version: 1\nstack: {STACK}\nregion: us-east-1\ntags: {{env: test}}\niam:\n" + GROUP + "  users:\n"
    for name, (count, kind, store) in users.items():
        text += USER % {"name": name, "count": count, "store": f"{kind}: {store}"}
    path = tmp_path / "faults.yaml"
    path.write_text(text)
    return path


def reconcile(faulty: Faulty, *args: str, **env: str) -> CliResult:
    """`reconcile ARGS -v` through the proxy (verbose everywhere: secrets must still never show).

    A resource still "in use" fails after 60 s, not the default 600 s: no fault here should cause that.
    """
    return run_cli([*args, "-v"], faulty.env(**{"RECONCILER_DEPENDENCY_TIMEOUT": "60", **env}))


def stored(moto: Moto, kind: str, name: str) -> dict[str, Any] | None:
    if kind == "secretsmanager":
        sm: Any = moto.client("secretsmanager")
        try:
            return json.loads(sm.get_secret_value(SecretId=name)["SecretString"])  # type: ignore[no-any-return]
        except sm.exceptions.ResourceNotFoundException:
            return None
    ssm: Any = moto.client("ssm")
    try:
        value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    return json.loads(value)  # type: ignore[no-any-return]


def assert_converged(moto: Moto, users: dict[str, tuple[int, str, str]], *, exact_keys: bool = True) -> None:
    """Exactly the manifest's things, once each; `count` active keys; the stored key is active and works.

    With `exact_keys`, no inactive key is left either (nothing leaked or merely retired).
    """
    iam: Any = moto.client("iam")
    assert sorted(u["UserName"] for u in iam.list_users()["Users"]) == sorted(users)
    assert [g["GroupName"] for g in iam.list_groups()["Groups"]] == ["pushers"]
    sm: Any = moto.client("secretsmanager")
    ssm: Any = moto.client("ssm")
    secrets = sorted(s["Name"] for s in sm.list_secrets()["SecretList"])
    params = sorted(p["Name"] for p in ssm.describe_parameters()["Parameters"])
    assert secrets == sorted(store for _, kind, store in users.values() if kind == "secretsmanager")
    assert params == sorted(store for _, kind, store in users.values() if kind == "ssm"), "lock or store left over"
    for name, (count, kind, store) in users.items():
        keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
        active = sorted(k["AccessKeyId"] for k in keys if k["Status"] == "Active")
        assert len(active) == count, (name, keys)
        if exact_keys:
            assert len(keys) == count, f"{name}: leaked or retired keys {keys}"
        value = stored(moto, kind, store)
        assert value is not None and value["AccessKeyId"] in active and value["UserName"] == name
        # the stored key is a real key of that user (moto resolves the caller by access key id)
        sts: Any = __import__("boto3").client("sts", endpoint_url=moto.endpoint, region_name="us-east-1",
                                             aws_access_key_id=value["AccessKeyId"],
                                             aws_secret_access_key=value["SecretAccessKey"])
        assert sts.get_caller_identity()["Arn"].endswith(f":user/{name}")
        tags = {t["Key"] for t in iam.list_user_tags(UserName=name)["Tags"]}
        assert "reconciler:key-intent" not in tags, f"{name}: key intent left behind"


def assert_no_secret(faulty: Faulty, moto: Moto, users: dict[str, tuple[int, str, str]],
                     *results: CliResult) -> None:
    """No access key secret — stored, or seen on the wire and never delivered — in any output."""
    secrets = set(faulty.secrets_seen)
    for _, kind, store in users.values():
        value = stored(moto, kind, store)
        if value is not None:
            secrets.add(value["SecretAccessKey"])
    assert secrets, "the test saw no secret at all"
    for result in results:
        for secret in secrets:
            assert secret not in result.all


# -- (a) transient faults -------------------------------------------------------

def test_apply_converges_under_throttling_5xx_and_resets(faulty: Faulty, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path)
    faulty.add(*transient())
    applied = reconcile(faulty, "apply", str(manifest), "--auto-approve", RECONCILER_MAX_ATTEMPTS="6")
    assert applied.code == 0, applied.all
    seen = {f.split(":")[1] for f in faulty.faults()}
    assert seen == {"throttle", "500", "503", "reset"}, faulty.faults()
    planned = reconcile(faulty, "plan", str(manifest), "--detailed-exitcode", RECONCILER_MAX_ATTEMPTS="6")
    assert planned.code == 0, planned.all
    assert_converged(moto, USERS)
    assert_no_secret(faulty, moto, USERS, applied, planned)


def test_exhausted_retries_fail_clearly_and_a_rerun_converges(faulty: Faulty, moto: Moto, tmp_path: Path) -> None:
    manifest = write(tmp_path)
    # one user's creation never gets through: that user and its keys fail, the rest is applied
    faulty.add(rule(Fault.THROTTLE, "CreateUser", body_contains="UserName=ci-bot"))
    failed = reconcile(faulty, "apply", str(manifest), "--auto-approve", RECONCILER_MAX_ATTEMPTS="2")
    assert failed.code == 1, failed.all
    assert "Throttling" in failed.all and "upstream failed" in failed.all and "safe to re-run" in failed.all
    ssm: Any = moto.client("ssm")
    assert ssm.get_parameters_by_path(Path=LOCK)["Parameters"] == [], "a failed apply must release the lease"
    faulty.clear()
    again = reconcile(faulty, "apply", str(manifest), "--auto-approve")
    assert again.code == 0, again.all
    assert reconcile(faulty, "plan", str(manifest), "--detailed-exitcode").code == 0
    assert_converged(moto, USERS)
    assert_no_secret(faulty, moto, USERS, failed, again)


# -- (b) lost responses -----------------------------------------------------------

WRITES = ("PutParameter", "CreateGroup", "AttachGroupPolicy", "PutGroupPolicy", "CreateUser", "AddUserToGroup",
          "PutUserPolicy", "TagUser", "CreateAccessKey", "CreateSecret", "UntagUser", "DeleteParameter")


def test_lost_responses_on_every_write_converge_without_duplicates(faulty: Faulty, moto: Moto,
                                                                   tmp_path: Path) -> None:
    """Each write's first answer is lost after AWS acted on it; botocore retries the write."""
    manifest = write(tmp_path)
    faulty.add(*(rule(Fault.LOST, op, nth={1}) for op in WRITES if op != "CreateAccessKey"))
    # app-dev: one CreateAccessKey answer lost, botocore's retry makes a second key;
    # ci-bot: two lost, the third attempt meets AWS's limit of two keys, all undelivered
    faulty.add(rule(Fault.LOST, "CreateAccessKey", body_contains="UserName=app-dev", nth={1}),
               rule(Fault.LOST, "CreateAccessKey", body_contains="UserName=ci-bot", nth={1, 2}))
    first = reconcile(faulty, "apply", str(manifest), "--auto-approve", RECONCILER_MAX_ATTEMPTS="3")
    assert {f.split(":")[0] for f in faulty.faults()} == set(WRITES), faulty.faults()
    assert first.code == 1 and "iam.user.ci-bot.access_keys: LimitExceeded" in first.out, first.all
    assert "4 done, 1 failed" in first.out, first.all
    iam: Any = moto.client("iam")
    # the key made by the retried call was removed in the same run, before the intent tag went
    assert len(iam.list_access_keys(UserName="app-dev")["AccessKeyMetadata"]) == 1
    assert len(iam.list_access_keys(UserName="ci-bot")["AccessKeyMetadata"]) == 2
    faulty.clear()
    again = reconcile(faulty, "apply", str(manifest), "--auto-approve")
    assert again.code == 0 and again.out.count("died before storing") == 2, again.all
    plan = reconcile(faulty, "plan", str(manifest), "--detailed-exitcode")
    assert plan.code == 0, plan.all
    assert_converged(moto, USERS)
    assert_no_secret(faulty, moto, USERS, first, again, plan)


def test_undelivered_key_is_found_by_its_intent_and_removed(faulty: Faulty, moto: Moto, tmp_path: Path) -> None:
    """No retries: CreateAccessKey's answer is lost, the run fails; the next run deletes that key."""
    users = {"app-dev": USERS["app-dev"]}
    manifest = write(tmp_path, users)
    faulty.add(rule(Fault.LOST, "CreateAccessKey", nth={1}))
    failed = reconcile(faulty, "apply", str(manifest), "--auto-approve", RECONCILER_MAX_ATTEMPTS="1")
    assert failed.code == 1, failed.all
    iam: Any = moto.client("iam")
    (orphan,) = iam.list_access_keys(UserName="app-dev")["AccessKeyMetadata"]
    assert "reconciler:key-intent" in {t["Key"] for t in iam.list_user_tags(UserName="app-dev")["Tags"]}
    assert stored(moto, "secretsmanager", USERS["app-dev"][2]) is None
    faulty.clear()
    plan = reconcile(faulty, "plan", str(manifest), "--detailed-exitcode")
    assert plan.code == 2 and orphan["AccessKeyId"] in plan.out and "died before storing" in plan.out, plan.all
    healed = reconcile(faulty, "apply", str(manifest), "--auto-approve")
    assert healed.code == 0, healed.all
    assert orphan["AccessKeyId"] not in {k["AccessKeyId"] for k in
                                         iam.list_access_keys(UserName="app-dev")["AccessKeyMetadata"]}
    assert reconcile(faulty, "plan", str(manifest), "--detailed-exitcode").code == 0
    assert_converged(moto, users)
    assert_no_secret(faulty, moto, users, failed, plan, healed)


# -- (c) kill -9 after every write, then a plain re-run (no `reconcile unlock`) ------------

LEASE_SECONDS = "3"  # a dead apply's lease lapses after 3 s, so every re-run takes it over quickly
NOT_LEASE = "/reconciler/locks/"


def _killed_apply(faulty: Faulty, manifest: Path, kill_rule: Any, env: dict[str, str]) -> tuple[CliResult, bool]:
    """Start apply; SIGKILL it once moto has answered the write `kill_rule` holds (the answer is never delivered)."""
    faulty.clear()
    faulty.add(kill_rule)
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "apply", str(manifest), "--auto-approve", "-v"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    held = False
    while time.monotonic() < deadline and proc.poll() is None:
        if faulty.held.wait(0.02):
            held = True
            os.kill(proc.pid, signal.SIGKILL)
            break
    else:
        if proc.poll() is None:
            proc.kill()
    out, err = proc.communicate(timeout=30)
    faulty.release()
    return CliResult(proc.returncode, out, err), held


def _full_stack(tmp_path: Path) -> Path:
    """IAM (a group, a user with a stored key), ECR and a network with a NAT gateway, in one stack."""
    path = tmp_path / "full.yaml"
    users = {"app-dev": USERS["app-dev"]}
    iam = "iam:\n" + GROUP + "  users:\n" + "".join(USER % {"name": name, "count": count, "store": f"{kind}: {store}"}
                                                  for name, (count, kind, store) in users.items())
    path.write_text(NETWORK + iam)
    return path


def test_kill_9_after_every_write_of_a_full_apply_then_plain_reruns_converge(faulty: Faulty, moto: Moto,
                                                                            tmp_path: Path) -> None:
    """A chain: each apply is killed right after one write, and the next plain apply (no unlock) goes on.

    Run 1 is killed right after its first write (taking the lease). Each later run is killed right after its
    first write, other than the lease's, that the chain has not killed after yet (a write is its operation
    and what it names); writes already covered pass through, so the chain always progresses. Every write of
    the apply thus has a kill right after it; every re-run starts with a dead apply's lease in place and
    must take it over by itself. At the end: nothing duplicated, exactly the declared keys, each one the
    key its store holds.
    """
    users = {"app-dev": USERS["app-dev"]}
    manifest = _full_stack(tmp_path)
    env = faulty.env(RECONCILER_LEASE_SECONDS=LEASE_SECONDS, RECONCILER_DEPENDENCY_TIMEOUT="60")
    clean = run_cli(["apply", str(manifest), "--auto-approve"], env)
    assert clean.code == 0, clean.all
    wanted = {c.operation for c in faulty.calls if c.write and NOT_LEASE not in c.target}
    moto.reset()
    outputs: list[CliResult] = []
    killed_after: list[tuple[str, str]] = []
    first = True
    for _ in range(120):
        kill = (rule(Fault.HOLD, writes_only=True, nth={1}) if first else
                rule(Fault.HOLD, writes_only=True, unless_body_contains=NOT_LEASE, unless_seen=frozenset(killed_after),
                     nth={1}))
        killed, held = _killed_apply(faulty, manifest, kill, env)
        outputs.append(killed)
        if not held:  # the apply made no write not covered yet: the chain is complete
            assert killed.code == 0, killed.all
            break
        assert killed.code == -signal.SIGKILL, killed.all
        killed_after.append(faulty.held_request or ("", ""))
        first = False
    else:
        raise AssertionError(f"no convergence after {len(outputs)} runs: {killed_after}")
    assert killed_after[0][0] == "PutParameter" and NOT_LEASE in killed_after[0][1], killed_after[0]
    assert wanted <= {op for op, _ in killed_after}, (sorted(wanted - {op for op, _ in killed_after}), killed_after)
    faulty.clear()
    plan = run_cli(["plan", str(manifest), "--detailed-exitcode"], env)
    assert plan.code == 0, plan.all
    assert_network_converged(moto)
    assert_converged(moto, users)
    assert_no_secret(faulty, moto, users, *outputs, plan)


# -- (d) secrets under faults --------------------------------------------------------

def test_no_secret_in_output_when_the_store_write_fails(faulty: Faulty, moto: Moto, tmp_path: Path) -> None:
    """The key exists, its secret is in the tool's memory, and storing it fails: errors never carry it.

    (Resets and lost answers around the store write are covered, at --verbose too, by the tests above.)
    """
    users = {"app-dev": USERS["app-dev"]}
    manifest = write(tmp_path, users)
    faulty.add(rule(Fault.HTTP_500, "CreateSecret", "PutSecretValue"))
    failed = reconcile(faulty, "apply", str(manifest), "--auto-approve", RECONCILER_MAX_ATTEMPTS="2")
    assert failed.code == 1 and "iam.user.app-dev.access_keys" in failed.all, failed.all
    assert len(faulty.secrets_seen) == 1
    faulty.clear()
    healed = reconcile(faulty, "apply", str(manifest), "--auto-approve")
    assert healed.code == 0, healed.all
    assert_converged(moto, users)
    assert_no_secret(faulty, moto, users, failed, healed)


# -- ECR and network under faults ------------------------------------------------------

NETWORK = f"""\
version: 1
stack: {STACK}
region: us-east-1
tags: {{env: test}}
ecr:
  repositories:
    - name: web
    - name: api
      tag_mutability: mutable
network:
  vpcs:
    - name: main
      cidr: 10.20.0.0/16
      subnets:
        - {{name: public-a, cidr: 10.20.0.0/24, az: us-east-1a, public: true}}
        - {{name: private-a, cidr: 10.20.10.0/24, az: us-east-1a}}
      nat: {{mode: gateway, placement: single, subnet: public-a}}
      endpoints:
        - service: s3
      security_groups:
        - name: app
          ingress: [{{protocol: tcp, ports: "8080", from: "10.20.0.0/16"}}]
"""


def owned_ec2(moto: Moto) -> dict[str, list[str]]:
    """Every live stack-owned EC2 resource by type, as `address=id` (duplicates show as repeated addresses)."""
    ec2: Any = moto.client("ec2")
    flt = [{"Name": "tag:reconciler:stack", "Values": [STACK]}]

    def addresses(items: list[dict[str, Any]], key: str) -> list[str]:
        return sorted({t["Key"]: t["Value"] for t in i.get("Tags", [])}.get("reconciler:address", "?")
                      for i in items)

    return {
        "vpcs": addresses(ec2.describe_vpcs(Filters=flt)["Vpcs"], "VpcId"),
        "subnets": addresses(ec2.describe_subnets(Filters=flt)["Subnets"], "SubnetId"),
        "igws": addresses(ec2.describe_internet_gateways(Filters=flt)["InternetGateways"], "InternetGatewayId"),
        "eips": addresses(ec2.describe_addresses(Filters=flt)["Addresses"], "AllocationId"),
        "nats": addresses([n for n in ec2.describe_nat_gateways(Filter=flt)["NatGateways"]
                           if n["State"] not in ("deleting", "deleted")], "NatGatewayId"),
        "route_tables": addresses(ec2.describe_route_tables(Filters=flt)["RouteTables"], "RouteTableId"),
        "endpoints": addresses([e for e in ec2.describe_vpc_endpoints(Filters=flt)["VpcEndpoints"]
                                if e["State"].lower() not in ("deleting", "deleted")], "VpcEndpointId"),
        "security_groups": addresses(ec2.describe_security_groups(Filters=flt)["SecurityGroups"], "GroupId"),
    }


def assert_network_converged(moto: Moto) -> None:
    owned = owned_ec2(moto)
    for kind, found in owned.items():
        assert len(found) == len(set(found)), f"duplicate {kind}: {found}"
    assert owned["vpcs"] == ["vpc.main"]
    assert len(owned["subnets"]) == 2 and len(owned["igws"]) == 1 and len(owned["nats"]) == 1
    assert len(owned["eips"]) == 1 and len(owned["endpoints"]) == 1
    ecr: Any = moto.client("ecr")
    assert sorted(r["repositoryName"] for r in ecr.describe_repositories()["repositories"]) == ["api", "web"]


def test_ecr_and_network_converge_under_throttling_5xx_and_resets(faulty: Faulty, moto: Moto,
                                                                  tmp_path: Path) -> None:
    manifest = tmp_path / "net.yaml"
    manifest.write_text(NETWORK)
    faulty.add(*transient())
    runs = [reconcile(faulty, "apply", str(manifest), "--auto-approve", RECONCILER_MAX_ATTEMPTS="6")]
    # a 5xx or reset on CreateVpc / CreateInternetGateway / AllocateAddress is ambiguous: that one action
    # fails instead of being retried into a duplicate, and the next apply (same faults) picks it up by tag
    while runs[-1].code != 0 and len(runs) < 4:
        assert "it is not retried because a retry could make a duplicate" in runs[-1].out, runs[-1].all
        runs.append(reconcile(faulty, "apply", str(manifest), "--auto-approve", RECONCILER_MAX_ATTEMPTS="6"))
    assert runs[-1].code == 0, [r.all for r in runs]
    assert {"ec2", "ecr"} <= {c.service for c in faulty.calls if c.fault is not None}, faulty.faults()
    planned = reconcile(faulty, "plan", str(manifest), "--detailed-exitcode", RECONCILER_MAX_ATTEMPTS="6")
    assert planned.code == 0, planned.all
    assert_network_converged(moto)


def test_ecr_and_network_lost_create_responses_converge_without_duplicates(faulty: Faulty, moto: Moto,
                                                                          tmp_path: Path) -> None:
    manifest = tmp_path / "net.yaml"
    manifest.write_text(NETWORK)
    # Not here: CreateNatGateway, CreateRouteTable, CreateVpcEndpoint carry a ClientToken, which makes
    # botocore's retry of a lost create safe on AWS; moto ignores the token (EMULATOR-NOTES §3), so a
    # lost answer there would test moto's deviation, not the tool.
    creates = ("CreateRepository", "PutLifecyclePolicy", "CreateVpc", "CreateSubnet", "CreateInternetGateway",
               "AttachInternetGateway", "AllocateAddress", "AssociateRouteTable", "CreateRoute",
               "CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "ModifyVpcAttribute")
    rules = [rule(Fault.LOST, op, nth={1}) for op in creates]
    faulty.add(*rules)
    results = [reconcile(faulty, "apply", str(manifest), "--auto-approve")]
    # a create AWS cannot make idempotent is not retried blindly: the run fails and says why
    assert results[0].code == 1 and "it is not retried because a retry could make a duplicate" in results[0].out, \
        results[0].all
    for _ in range(4):  # plain re-runs converge; the writes not reached yet lose their first answer too
        faulty.clear()
        faulty.add(*(r for r in rules if not r.fired))
        results.append(reconcile(faulty, "apply", str(manifest), "--auto-approve"))
        if results[-1].code == 0:
            break
    assert results[-1].code == 0, [r.all for r in results]
    assert all(r.fired for r in rules), [r.operations for r in rules if not r.fired]
    faulty.clear()
    planned = reconcile(faulty, "plan", str(manifest), "--detailed-exitcode")
    assert planned.code == 0, planned.all
    assert_network_converged(moto)
