"""Wiring of one run: manifest -> clients -> live -> plan; used by every command."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.engine.clients import Clients, RoleToAssume, partition_of, role_arn_for
from reconciler.engine.read import read_for_deletions, read_live
from reconciler.errors import TerminalAwsError, UsageError
from reconciler.kinds import all_kinds
from reconciler.kinds.base import Context
from reconciler.manifest.aws_names import ROLE_ARN
from reconciler.manifest.expand import expand
from reconciler.manifest.findings import Finding
from reconciler.manifest.model import DesiredResource, Manifest, default_session_name
from reconciler.manifest.validate import load_manifest
from reconciler.plan.build import build_plan
from reconciler.plan.model import LiveResource, Plan


@dataclass(frozen=True)
class Options:
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    registry: str | None = None
    verbose: bool = False
    # `--assume-role ARN`: over the manifest's role ARN, keeping its external_id, session_name and duration
    assume_role: str | None = None


@dataclass
class Run:
    manifest: Manifest
    findings: list[Finding]
    desired: list[DesiredResource]
    clients: Clients
    ctx: Context
    live: dict[str, LiveResource]
    not_checked: dict[str, str]
    plan: Plan


def now() -> datetime.datetime:
    """The clock; RECONCILER_NOW (ISO 8601) pins it for tests of key rotation."""
    pinned = os.environ.get("RECONCILER_NOW")
    if pinned:
        try:
            moment = datetime.datetime.fromisoformat(pinned)
        except ValueError:
            raise UsageError(f"RECONCILER_NOW={pinned!r} is not an ISO 8601 time; use e.g. "
                             "2030-01-31T12:00:00+00:00, or unset it") from None
        if moment.tzinfo is None:  # a naive time would be read in the machine's zone: say UTC explicitly
            moment = moment.replace(tzinfo=datetime.UTC)
        return moment.astimezone(datetime.UTC)
    return datetime.datetime.now(datetime.UTC)


def flag_role(arn: str, region: str, account: str | None = None, stack: str | None = None) -> RoleToAssume:
    """The role of `--assume-role ARN`, checked against the region's partition and `account:` (exit 3)."""
    found = ROLE_ARN.match(arn)
    if found is None:
        raise UsageError(f"--assume-role {arn!r} is not an IAM role ARN; write arn:aws:iam::ACCOUNT:role/NAME")
    partition = partition_of(region)
    if found["partition"] != partition:
        raise UsageError(f"--assume-role {arn} is in partition {found['partition']}, but {region} is in "
                         f"{partition}; use arn:{partition}:{arn.split(':', 2)[2]}")
    if account is not None and found["account"] != account:
        raise UsageError(f"--assume-role {arn} is a role of account {found['account']}, but the manifest says "
                         f"account: {account!r}; give a role in {account}, or fix `account:`")
    return RoleToAssume(arn, session_name=default_session_name(stack) if stack else "reconciler")


def stack_role(manifest: Manifest, options: Options) -> RoleToAssume | None:
    """The role a stack's commands assume (None: the runner's own credentials), before any AWS call.

    `--assume-role` wins over the manifest's role ARN; the manifest's external_id, session_name
    and duration still apply. A `role_name` becomes an ARN in `account:` and the region's partition.
    """
    declared = manifest.assume_role
    if options.assume_role:
        role = flag_role(options.assume_role, manifest.region, manifest.account, manifest.stack)
        if declared is None:
            return role
        arn = role.arn
    elif declared is None:
        return None
    elif declared.role_arn:
        arn = declared.role_arn
    else:
        assert declared.role_name and manifest.account  # the manifest's checks hold it
        arn = role_arn_for(declared.role_name, manifest.account, manifest.region)
    return RoleToAssume(arn, session_name=declared.session_name or default_session_name(manifest.stack),
                        duration=declared.duration, external_id=declared.external_id)


def plan_run(manifest_path: str | Path, options: Options, *, destroy: bool = False,
             adopt: bool = False, skip_kinds: Collection[str] = (),
             before_read: Callable[[Context], None] | None = None,
             targets: Sequence[str] = (), replace: Sequence[str] = (), purpose: str = "plan") -> Run:
    """Validate, connect read-only, read the account, and plan. Sends no write.

    `skip_kinds` (drift --skip-kind) are not read at all; their addresses, and a
    `kind:<name>` entry for the orphans nobody looked for, are reported not checked.
    `before_read(ctx)` runs once the manifest, region and account are checked and
    before the first read: apply takes the stack's lease there, so nothing it plans
    from can go stale under another apply. `targets` and `replace` (`--target`,
    `--replace` patterns) narrow and force the plan (`plan.build.build_plan`); a pattern
    that selects nothing is a usage error, raised after the read (a target may name an
    address only the account still holds). `purpose` ("plan" or "drift", `Context.purpose`)
    says which command reads: reads only drift reports (a key's last use) are made for it alone.
    """
    clock = now()  # first: a bad RECONCILER_NOW is a usage error before any file is read or AWS is called
    manifest, findings = load_manifest(manifest_path)
    desired = [] if destroy else expand(manifest)
    if options.region and options.region != manifest.region:
        # the stack lives in the manifest's region; planning it elsewhere would see its resources as missing
        raise UsageError(f"--region {options.region} differs from the manifest's region: {manifest.region}; "
                         "drop --region, or change `region:` in the manifest")
    region = manifest.region
    clients = Clients(region, options.profile, options.endpoint_url, read_only=True,
                      role=stack_role(manifest, options))
    account = clients.account_id()  # the assumed role's, with one: the guard checks who the calls are made as
    if manifest.account and manifest.account != account:
        raise TerminalAwsError(f"the credentials are for account {account}, but the manifest says "
                               f"account: {manifest.account!r}; refusing to touch the wrong account (pass --profile "
                               "with "
                                   "that account's credentials, or fix `account:`)")
    ctx = Context(clients, manifest.stack, region, account, clock, manifest.base_dir, options.registry,
                  purpose=purpose)
    if before_read is not None:
        before_read(ctx)
    kinds = all_kinds()
    skipped = {d.address: f"kind {d.kind} not read (--skip-kind)" for d in desired if d.kind in skip_kinds}
    skipped.update({f"kind:{k}": "not read (--skip-kind): orphans of this kind were not looked for"
                    for k in skip_kinds})
    desired = [d for d in desired if d.kind not in skip_kinds]
    kinds = {name: kind for name, kind in kinds.items() if name not in skip_kinds}
    # a kind this version cannot manage is reported, never silently dropped
    unsupported = {d.address: f"kind {d.kind} is not supported by this version" for d in desired
                   if d.kind not in kinds}
    desired = [d for d in desired if d.kind in kinds]
    # what adoption matches by identity needs the other kinds' desired resources too (kinds.ec2._read)
    ctx.options.update(desired=tuple(desired), adopt=adopt)
    live, not_checked = read_live(ctx, desired, kinds)
    not_checked.update(unsupported)
    not_checked.update(skipped)
    def planned() -> Plan:
        return build_plan(stack=manifest.stack, region=region, account=account, manifest_sha256=manifest.sha256,
                          desired=desired, live=live, kinds=kinds, not_checked=not_checked, adopt=adopt,
                          destroy=destroy, targets=targets, replace=replace)

    plan = planned()
    # reads only a deletion needs (does a repository hold images?), for what this plan deletes or replaces;
    # they change what is blocked or noted, never which actions there are, so one second plan settles it
    extra = read_for_deletions(ctx, plan, kinds)
    if extra:
        live.update(extra)
        plan = planned()
    return Run(manifest, findings, desired, clients, ctx, live, not_checked, plan)
