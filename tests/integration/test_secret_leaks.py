"""Garbled answers: no AWS response body is ever printed, and an unreadable read is never "absent".

The fault proxy (tests/faults/proxy.py) forwards each request to moto, so AWS acts on
it, and hands the tool an answer with a stray byte (`GARBLE`) or cut in half
(`TRUNCATE`). The leak canary: every SecretAccessKey that passed through the proxy
(including those of keys whose answer the tool never could read) and every stored one
must be absent from stdout and stderr, at --verbose; no run prints a traceback; a
plain re-run without faults converges with no orphan key.
"""

from __future__ import annotations

import contextlib
import datetime
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, Moto
from tests.faults.plugin import Faulty
from tests.faults.proxy import Fault, Rule, rule
from tests.integration import test_faults as base


def assert_clean(result: CliResult) -> None:
    """No traceback, and every error is one line naming what failed."""
    assert "Traceback" not in result.all, result.all
    assert "ResponseParserError" not in result.all or "not shown" in result.all, result.all


def converge(faulty: Faulty, moto: Moto, manifest: Path, *earlier: CliResult) -> None:
    """A plain re-run (no faults, no unlock) converges: exact keys, stores, no intent left, no secret shown."""
    faulty.clear()
    again = base.reconcile(faulty, "apply", str(manifest), "--auto-approve")
    assert again.code == 0, again.all
    plan = base.reconcile(faulty, "plan", str(manifest), "--detailed-exitcode")
    assert plan.code == 0, plan.all
    base.assert_converged(moto, base.USERS)
    base.assert_no_secret(faulty, moto, base.USERS, *earlier, again, plan)


@pytest.mark.parametrize("fault", [Fault.GARBLE, Fault.TRUNCATE])
def test_garbled_create_access_key_answer_never_shows_the_secret(faulty: Faulty, moto: Moto, tmp_path: Path,
                                                                 fault: Fault) -> None:
    manifest = base.write(tmp_path)
    faulty.add(rule(fault, "CreateAccessKey"))
    failed = base.reconcile(faulty, "apply", str(manifest), "--auto-approve")
    assert failed.code == 1, failed.all
    assert faulty.faults()[f"CreateAccessKey:{fault.value}"] >= 2, faulty.faults()  # both users' keys
    assert faulty.secrets_seen, "moto made keys whose answers the tool could not read"
    for secret in faulty.secrets_seen:
        assert secret not in failed.all
    assert_clean(failed)
    for user in base.USERS:
        line = next((x for x in failed.all.splitlines() if f"iam.user.{user}.access_keys" in x and "failed" in x),
                    failed.all)
        assert "iam:CreateAccessKey: AWS's answer (HTTP 200) could not be parsed; it is not shown" in line, line
    # the keys moto made were never delivered: the next run removes them and delivers new ones
    converge(faulty, moto, manifest, failed)


STORE_WRITES = ("CreateAccessKey", "CreateSecret", "PutSecretValue", "TagResource", "PutParameter",
                "AddTagsToResource")


def every_third_write(run: int) -> list[Rule]:
    return [rule(Fault.GARBLE, writes_only=True, every=3)]


def key_and_store_writes(run: int) -> list[Rule]:
    # the lock's PutParameter is the first write of a run: leave it alone (see drop_lock)
    return [rule(Fault.GARBLE, *STORE_WRITES, nth={2, 3}), rule(Fault.TRUNCATE, *STORE_WRITES, nth={5})]


def reads_and_writes(run: int) -> list[Rule]:
    # any garbled read fails the plan before a write: alternate runs with garbled reads and truncated writes
    if run % 2:
        return [rule(Fault.GARBLE, reads_only=True, nth={7 * run})]
    return [rule(Fault.TRUNCATE, writes_only=True, every=4)]


@pytest.mark.parametrize("rules", [every_third_write, key_and_store_writes, reads_and_writes])
def test_garbling_a_fraction_of_all_answers_leaks_nothing_and_converges(
        faulty: Faulty, moto: Moto, tmp_path: Path, rules: Callable[[int], list[Rule]]) -> None:
    manifest = base.write(tmp_path)
    runs = []
    fired: Counter[str] = Counter()
    for run in range(5):  # several faulty applies (fresh rules each), each starting from what the last one left
        faulty.add(*rules(run))
        result = base.reconcile(faulty, "apply", str(manifest), "--auto-approve")
        fired.update(faulty.faults())
        faulty.clear()
        assert result.code in (0, 1), result.all
        assert_clean(result)
        runs.append(result)
        drop_lock(moto)
    assert any(f.split(":")[0] in STORE_WRITES for f in fired), fired
    converge(faulty, moto, manifest, *runs)


def drop_lock(moto: Moto) -> None:
    """Remove a lock left by a run whose lock PutParameter answer was garbled (AWS made the lock).

    Taking over a dead holder's lock is the lock's own business (a lease); here it would
    only make the next run wait.
    """
    ssm: Any = moto.client("ssm")
    with contextlib.suppress(ssm.exceptions.ParameterNotFound):
        ssm.delete_parameter(Name=base.LOCK)


@pytest.mark.parametrize("operation", ["ListSecrets", "DescribeParameters", "GetAccountAuthorizationDetails",
                                       "ListAccessKeys", "GetCallerIdentity"])
def test_an_unparseable_read_fails_the_plan_and_is_never_absent(faulty: Faulty, moto: Moto, tmp_path: Path,
                                                                 operation: str) -> None:
    manifest = base.write(tmp_path)
    assert base.reconcile(faulty, "apply", str(manifest), "--auto-approve").code == 0
    faulty.add(rule(Fault.GARBLE, operation))
    planned = base.reconcile(faulty, "plan", str(manifest), "--detailed-exitcode")
    assert faulty.faults()[f"{operation}:garble"] >= 1, faulty.faults()
    # exit 1 (could not tell), never 2 (a listing that failed to parse read as "nothing there")
    assert planned.code == 1, planned.all
    assert_clean(planned)
    errors = [x for x in planned.err.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "could not be parsed" in errors[0], planned.err
    assert "create" not in planned.out
    base.assert_no_secret(faulty, moto, base.USERS, planned)


@pytest.mark.parametrize(("command", "target"), [
    ("plan", rule(Fault.HTTP_500, "GetCallerIdentity")),  # before any kind runs
    ("apply", rule(Fault.HTTP_500, "PutParameter", body_contains="reconciler/locks")),  # taking the lock
])
def test_an_aws_error_outside_any_action_is_one_line_not_a_traceback(faulty: Faulty, tmp_path: Path,
                                                                     command: str, target: Rule) -> None:
    manifest = base.write(tmp_path)
    faulty.add(target)
    result = base.reconcile(faulty, command, str(manifest), *(["--auto-approve"] if command == "apply" else []))
    assert result.code == 1, result.all
    assert_clean(result)
    assert "InternalFailure" in result.err and "error:" in result.err, result.err


def test_the_registry_token_is_masked_in_both_its_forms(moto: Moto) -> None:
    """The ECR token is base64 of `AWS:<password>`: either form printed anywhere shows as (sensitive)."""
    import base64

    from reconciler.engine.clients import Clients
    from reconciler.kinds.base import Context
    from reconciler.kinds.ecr._registry import registry
    from reconciler.secret import MASK, redact

    with pytest.MonkeyPatch.context() as patch:
        for name, value in moto.env().items():
            patch.setenv(name, value)
        clients = Clients("us-east-1", endpoint_url=moto.endpoint)
        ctx = Context(clients, base.STACK, "us-east-1", clients.account_id(), datetime.datetime.now(datetime.UTC))
        registry(ctx)
    ecr: Any = moto.client("ecr")
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    password = base64.b64decode(token).decode().partition(":")[2]
    assert redact(f"Authorization: Basic {token}") == f"Authorization: Basic {MASK}"
    assert redact(f"password {password}") == f"password {MASK}"


def test_assumed_role_credentials_and_the_external_id_never_show(faulty: Faulty, moto: Moto, tmp_path: Path) -> None:
    """The SecretAccessKey and SessionToken STS hands out, and the external id, in no output or file, at -v."""
    external_id = "ext-leak-canary-5b7e"
    manifest = base.write(tmp_path)
    text = manifest.read_text().replace("region: us-east-1\n", 'region: us-east-1\naccount: "111111111111"\n'
                                        "assume_role: {role_name: reconciler, external_id: "
                                        f'"{external_id}", duration: 900}}\n')
    manifest.write_text(text)
    plan_file, report = tmp_path / "plan.json", tmp_path / "drift.json"
    results = [base.reconcile(faulty, "plan", str(manifest), "--out", str(plan_file)),
               base.reconcile(faulty, "apply", "--plan", str(plan_file), str(manifest), "--auto-approve"),
               base.reconcile(faulty, "drift", str(manifest), "--report", str(report), "--format", "json"),
               base.reconcile(faulty, "output", str(manifest), "--format", "env")]
    for result in results:
        assert result.code == 0, result.all
        assert_clean(result)
    assert faulty.operations()["AssumeRole"] == 4, faulty.operations()  # once per command
    # the proxy saw each AssumeRole's secret key and session token (and the access keys' secrets)
    tokens = {s for s in faulty.secrets_seen if len(s) > 100}
    assert len(tokens) == 4, "the proxy saw no session token"
    # a denied one, too: the error names the role, never the external id or a credential
    faulty.add(rule(Fault.DENIED, "AssumeRole"))
    results.append(base.reconcile(faulty, "plan", str(manifest)))
    assert results[-1].code == 1 and "AccessDenied" in results[-1].err, results[-1].all
    shown = [r.all for r in results] + [plan_file.read_text(), report.read_text()]
    for secret in (*faulty.secrets_seen, external_id):
        for text in shown:
            assert secret not in text
