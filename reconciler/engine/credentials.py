"""`reconcile credentials`: a user's access key from its store, for the AWS CLI's credential_process.

Invariants: the secret is held in a `Secret` from the moment the store's answer is parsed until
the caller's one print; no error message here carries the store's value (only its name and AWS's
error code); `--write-profile` writes a command line to the AWS config file, never a secret.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from reconciler.aws import absent_none
from reconciler.engine.clients import Clients, check_endpoint_urls
from reconciler.engine.run import Options, stack_role
from reconciler.error_text import describe_error
from reconciler.errors import AwsError, TerminalAwsError, UsageError
from reconciler.manifest.expand import expand
from reconciler.manifest.model import Manifest
from reconciler.manifest.validate import load_manifest
from reconciler.secret import Secret

# set in our own environment while we fetch: a credential_process that (through AWS_PROFILE) calls
# itself again would otherwise recurse until the machine runs out of processes
NESTED_ENV = "RECONCILER_IN_CREDENTIAL_PROCESS"


def key_store(manifest_path: str | Path, user: str, options: Options) -> tuple[Manifest, Mapping[str, Any]]:
    """The manifest, and the store its `user`'s access keys go to; a clear exit 3 when there is none.

    No AWS call: `--write-profile` checks with it before it writes anything.
    """
    manifest, _ = load_manifest(manifest_path)
    if options.region and options.region != manifest.region:
        raise UsageError(f"--region {options.region} differs from the manifest's region: {manifest.region}; "
                         "drop --region, or change `region:` in the manifest")
    desired = expand(manifest)
    users = sorted(str(d.spec["name"]) for d in desired if d.kind == "iam.user")
    if user not in users:
        raise UsageError(f"--user {user}: no such user in {manifest_path}; give one of: "
                         f"{', '.join(users) or '(none declared)'}")
    keys = [d for d in desired if d.kind == "iam.access_key" and d.spec.get("user") == user]
    if not keys or not keys[0].spec.get("store") or keys[0].spec.get("count") == 0:
        raise UsageError(f"--user {user}: the manifest declares no access key store for this user; add "
                         "`access_keys: {store: ...}` to it and apply first")
    return manifest, keys[0].spec["store"]


def _label(store: Mapping[str, Any]) -> str:
    if "secretsmanager" in store:
        return f"Secrets Manager secret {store['secretsmanager']}"
    return f"SSM parameter {store.get('ssm')}"


def fetch(manifest_path: str | Path, user: str, options: Options) -> Secret:
    """The credential_process document (JSON) for `user`, read with the caller's own credentials."""
    if os.environ.get(NESTED_ENV):
        raise UsageError("reconcile credentials is running inside its own credential_process: the profile it "
                         "reads with is the one it serves (AWS_PROFILE?); pass --profile with other credentials")
    manifest, store = key_store(manifest_path, user, options)
    os.environ[NESTED_ENV] = "1"
    clients = Clients(manifest.region, options.profile, options.endpoint_url, role=stack_role(manifest, options))
    account = clients.account_id()
    if manifest.account and manifest.account != account:
        raise TerminalAwsError(f"the credentials are for account {account}, but the manifest says "
                               f"account: {manifest.account!r}; refusing to read another account's store "
                               "(pass --profile with that account's credentials)")
    label = _label(store)
    try:
        if "secretsmanager" in store:
            sm = clients.client("secretsmanager")
            answer = absent_none(lambda: sm.get_secret_value(SecretId=store["secretsmanager"]), "secretsmanager")
            raw = None if answer is None else answer.get("SecretString")
        else:
            ssm = clients.client("ssm")
            answer = absent_none(lambda: ssm.get_parameter(Name=store["ssm"], WithDecryption=True), "ssm")
            raw = None if answer is None else answer["Parameter"].get("Value")
    except ClientError as exc:
        raise AwsError(f"reading {label} failed: {describe_error(exc)}; check that these credentials may read it, "
                       "then retry") from None
    if answer is None:
        raise AwsError(f"{label} does not exist: run `reconcile apply` to create {user}'s key, then retry")
    secret = Secret(str(raw or ""))
    del answer, raw
    return document(secret, label)


def document(stored: Secret, label: str) -> Secret:
    """The credential_process JSON from the store's JSON {AccessKeyId, SecretAccessKey, ...}, still a Secret."""
    try:
        value = json.loads(stored.reveal())
    except ValueError:
        value = None  # the decoder's message may quote the text: never shown
    if not isinstance(value, dict) or not isinstance(value.get("AccessKeyId"), str) \
            or not isinstance(value.get("SecretAccessKey"), str) or not value["SecretAccessKey"]:
        raise AwsError(f"{label} does not hold an access key (JSON with AccessKeyId and SecretAccessKey); "
                       "run `reconcile apply` to store a new key")
    Secret(value["SecretAccessKey"])  # registered for redaction on its own too
    out = {"Version": 1, "AccessKeyId": value["AccessKeyId"], "SecretAccessKey": value["SecretAccessKey"]}
    del value
    return Secret(json.dumps(out))


def config_path() -> Path:
    """The AWS CLI's config file: AWS_CONFIG_FILE, else ~/.aws/config."""
    return Path(os.environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config").expanduser()


def _program() -> list[str]:
    """How to run this very reconcile again, by absolute path (the AWS CLI runs it without our PATH)."""
    script = Path(sys.argv[0])
    if script.name == "reconcile" and script.exists():
        return [str(script.absolute())]
    # absolute, not resolved: a virtualenv's python is a symlink, and resolving it would lose the venv
    return [str(Path(sys.executable).absolute()), "-m", "reconciler"]


def process_command(manifest_path: str | Path, user: str, options: Options) -> str:
    """The `credential_process` value: this command, by absolute paths, with the endpoint and region given."""
    args = [*_program(), "credentials", str(Path(manifest_path).resolve()), "--user", user]
    check_endpoint_urls(options.endpoint_url)
    if options.endpoint_url and (urlsplit(options.endpoint_url).username or urlsplit(options.endpoint_url).password):
        # the profile is written to disk: a URL holding credentials would put them there
        raise UsageError("--endpoint-url holds credentials (user:password@); they would be written to the AWS "
                         "config file: use a URL without them")
    if options.endpoint_url:
        args += ["--endpoint-url", options.endpoint_url]
    if options.region:
        args += ["--region", options.region]
    if options.profile:
        args += ["--profile", options.profile]
    if options.assume_role:
        args += ["--assume-role", options.assume_role]
    return shlex.join(args)


def write_profile(path: Path, name: str, command: str, region: str | None = None) -> bool:
    """Add `[profile name]` with `credential_process = command` (and `region`, the manifest's: without
    it the AWS CLI asks for one) to the config file; False if already there.

    Appends (comments and the order of the file are kept); a profile of that name with anything
    else is refused: it may hold someone's keys or SSO settings.
    """
    if not name or any(c in name for c in "[]\n\r") or name != name.strip():
        raise UsageError(f"--write-profile {name!r}: not a usable profile name")
    section = "default" if name == "default" else f"profile {name}"
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the AWS config file: {exc}; fix its permissions, or set "
                         "AWS_CONFIG_FILE to another file") from None
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise UsageError(f"{path}: not an AWS config file configparser can read ({type(exc).__name__}); "
                         "fix it, or set AWS_CONFIG_FILE to another file") from None
    if parser.has_section(section):
        if (parser.get(section, "credential_process", fallback=None) == command
                and parser.get(section, "region", fallback=None) == region):
            return False
        raise UsageError(f"{path}: [{section}] exists already with other settings; choose another "
                         "--write-profile name, or remove that section by hand")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lead = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
    block = f"{lead}[{section}]\ncredential_process = {command}\n" + (f"region = {region}\n" if region else "")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(block)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the AWS config file: {exc.strerror}") from None
    return True
