"""`reconcile export`: read live resources (read-only calls) and write the manifest that describes them.

The output is a manifest that validates and whose expansion is what exists, so that
`apply --adopt` takes the resources over without re-creating anything:
- `iam.py`, `ecr.py`, `network.py` read through the clients the CLI built (read-only guard on) and map
  the describe results to manifest data (pure functions over literal results, tested as such);
- the manifest's own security findings are run on the result (`load_manifest`, the same code
  `validate` runs) and each rule found gets a waiver with a `# review:` comment, so the manifest
  validates and a reviewer sees what was waived and why it must be looked at;
- `writer.py` emits the YAML with the mappers' comments; whatever did not fit the manifest is a
  comment there and a warning (stderr).

Secrets: no read here returns one (no GetSecretValue, no key secret exists after creation), and
access key ids are dropped at the read, so none can reach the output.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import error_code
from reconciler.errors import AwsError, ManifestError
from reconciler.export.ecr import export_ecr
from reconciler.export.iam import export_iam
from reconciler.export.model import Export
from reconciler.export.network import export_network
from reconciler.export.writer import to_yaml
from reconciler.ownership import tag_dict


@dataclass(frozen=True)
class Selection:
    """What to export: ids and names as given on the command line, and an optional `KEY=VALUE` tag."""

    vpcs: Sequence[str] = ()
    users: Sequence[str] = ()
    groups: Sequence[str] = ()
    repositories: Sequence[str] = ()
    tag: tuple[str, str] | None = None


@dataclass
class Result:
    text: str
    files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the export does not validate (a bug): exit 1


def tagged(clients: Any, key: str, value: str) -> Selection:
    """Every VPC, IAM user and ECR repository carrying the tag `key=value` (per-service listing)."""
    ec2, iam, ecr = clients.client("ec2"), clients.client("iam"), clients.client("ecr")
    vpcs = [v["VpcId"] for page in ec2.get_paginator("describe_vpcs").paginate(
        Filters=[{"Name": f"tag:{key}", "Values": [value]}]) for v in page.get("Vpcs", [])
        if tag_dict(v.get("Tags")).get(key) == value]
    users: list[str] = []
    for page in iam.get_paginator("get_account_authorization_details").paginate(Filter=["User"]):
        users.extend(u["UserName"] for u in page.get("UserDetailList", [])
                     if tag_dict(u.get("Tags")).get(key) == value)
    if not users:  # some IAM emulators leave tags out of the authorization details
        for page in iam.get_paginator("list_users").paginate():
            for user in page.get("Users", []):
                tags = iam.list_user_tags(UserName=user["UserName"]).get("Tags", [])
                if tag_dict(tags).get(key) == value:
                    users.append(user["UserName"])
    repos: list[str] = []
    for page in ecr.get_paginator("describe_repositories").paginate():
        for repo in page.get("repositories", []):
            tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", [])
            if tag_dict(tags).get(key) == value:
                repos.append(repo["repositoryName"])
    return Selection(sorted(set(vpcs)), sorted(set(users)), (), sorted(set(repos)))


def build(export: Export, data: dict[str, Any], account: str | None) -> dict[str, Any]:
    """The top level in the manifest's order."""
    top: dict[str, Any] = {"version": 1, "stack": export.stack, "region": export.region}
    if account:
        top["account"] = account
    for key in ("iam", "ecr", "network"):
        if data.get(key):
            top[key] = data[key]
    return top


def _load(text: str, files: dict[str, str]) -> tuple[list[Any], list[str]]:
    """(findings, problems) of `text` with its policy files, through the loader `validate` uses."""
    from reconciler.manifest.validate import load_manifest

    with tempfile.TemporaryDirectory(prefix="reconcile-export-") as tmp:
        for name, body in files.items():
            target = Path(tmp, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
        path = Path(tmp, "manifest.yaml")
        path.write_text(text, encoding="utf-8")
        try:
            _, findings = load_manifest(path)
        except ManifestError as exc:
            return [], [f"{p.line}:{p.col}: {p.path}: {p.message}" for p in exc.problems]
    return list(findings), []


def waivers(export: Export, top: dict[str, Any]) -> dict[str, str]:
    """A waiver for every rule the live setup trips, each with `# review:` comments saying where."""
    from reconciler.manifest.findings import RULES

    probe = dict(top)
    probe["waivers"] = {rule: "probe" for rule in sorted(RULES)}
    findings, _ = _load(to_yaml(probe), export.files)
    by_rule: dict[str, list[str]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule.id, []).append(f"{finding.path}: {finding.detail}")
    out: dict[str, str] = {}
    for rule, where in sorted(by_rule.items()):
        severity = RULES[rule].severity
        out[rule] = f"exported from the live account ({severity}): review and fix, then remove this waiver"
        export.comment(("waivers", rule), f"review: {rule} {RULES[rule].title}, found live:")
        for line in where:
            export.comment(("waivers", rule), f"review:   {line}")
    return out


def export_manifest(clients: Any, stack: str, region: str, selection: Selection, *,
                    policy_files: bool = True) -> Result:
    """Read the selection and return the manifest text, its policy files and the warnings."""
    # printed to stdout, there is no directory for policy files: the documents stay inline
    export = Export(stack, region, policy_files=policy_files)
    if selection.tag is not None:
        found = tagged(clients, *selection.tag)
        selection = Selection([*selection.vpcs, *found.vpcs], [*selection.users, *found.users],
                              selection.groups, [*selection.repositories, *found.repositories])
    account = clients.account_id()
    data: dict[str, Any] = {}
    try:
        if selection.users or selection.groups:
            data["iam"] = export_iam(export, clients.client("iam"), selection.users, selection.groups)
        if selection.repositories:
            data["ecr"] = export_ecr(export, clients.client("ecr"), selection.repositories)
        if selection.vpcs:
            data["network"] = export_network(export, clients.client("ec2"), selection.vpcs)
    except ClientError as exc:
        raise AwsError(f"export: reading failed: {error_code(exc)}; check the credentials' read permissions, then "
                       "re-run") from None
    top = build(export, data, account)
    waived = waivers(export, top)
    if waived:
        top["waivers"] = waived
    header = [f"exported by `reconcile export` from account {account}, {region}",
              "review the `# review:` and fit comments below before `reconcile apply --adopt`"]
    text = to_yaml(top, export.comments, header)
    findings, problems = _load(text, export.files)
    return Result(text, dict(export.files), list(export.warnings), [str(f) for f in findings], problems)

