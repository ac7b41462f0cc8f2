"""The one place an AWS session (botocore's, which boto3's wraps) is made.

Invariants: every client shares one Session, one retry policy, timeouts and endpoint;
every read waits for its service's token bucket first (`reconciler.pacing`, shared by
all clients of one credentials identity and region: `pacing_identity`), so fanned-out
per-resource reads stay under the rate the service tolerates; when `read_only` is set, a
`before-call` hook refuses any operation that is not a read before it is sent, so
`plan` and `drift` cannot change the account even through a bug in a kind.
Every operation sent is recorded (service, operation) for tests and `make bench`.

Retries never duplicate: botocore retries every call after a transient failure,
but a create that AWS cannot make idempotent (no ClientToken, no unique name:
`UNTOKENED_CREATES`) is not retried when the failure leaves it unknown whether AWS
acted (connection lost after sending, HTTP 5xx other than throttling). It fails
with `AmbiguousWriteError` instead, and the next apply finds what was made by the
tags set in the create call.

Assumed role (`RoleToAssume`, the manifest's `assume_role:` or `--assume-role`): the
session's credentials are botocore's own refreshing credentials, fetched by botocore's
`AssumeRoleCredentialFetcher` with the runner's credentials through an STS client made
like every other (same endpoint, retries, timeouts, hooks); botocore refreshes them
before they expire, so an apply longer than the role's duration keeps working. No copy
of them is cached or written anywhere; their secret parts are registered for redaction
as soon as STS hands them out.

Retry mode: "adaptive" for a read-only Clients (plan, drift, output), "standard"
otherwise; RECONCILER_RETRY_MODE overrides both. Adaptive adds botocore's client-side
rate limiter, which slows a client down only after AWS has throttled it: for reads,
whose fan-out is the burst, that absorbs a throttling storm (another tool sharing the
account's limit) without failing the plan. The buckets above keep the first burst
polite; adaptive handles what they cannot know.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.session

from reconciler.engine.unparseable import refuse_unreadable
from reconciler.error_text import describe_error
from reconciler.errors import (
    AmbiguousWriteError,
    AwsError,
    ReadOnlyViolation,
    RetryableAwsError,
    TerminalAwsError,
    UsageError,
)
from reconciler.pacing import Pacer, bad_rates, pacer_for
from reconciler.secret import Secret

READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "Lookup", "Search")
# Reads whose name does not say so; AssumeRole changes nothing in any account (it hands out credentials).
READ_OPERATIONS = frozenset({"GetCallerIdentity", "AssumeRole"})
# Reads that would hand back a secret: never needed to plan, so never allowed there.
SECRET_READS = frozenset({"GetSecretValue", "GetAuthorizationToken"})


# (service, operation) of creates a blind retry could duplicate: a second VPC, gateway or address.
UNTOKENED_CREATES = frozenset({("ec2", "CreateVpc"), ("ec2", "CreateInternetGateway"), ("ec2", "AllocateAddress")})
# Failures that prove AWS did not act: nothing was sent, or the request was throttled.
_NOT_SENT = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)
_THROTTLED = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled",
                        "TooManyRequestsException", "SlowDown"})


def refuse_blind_retry(operation: Any, caught_exception: BaseException | None = None,
                       response: tuple[Any, dict[str, Any]] | None = None, **_: Any) -> None:
    """botocore `needs-retry` hook: raise instead of retrying an untokened create after an ambiguous failure."""
    service = operation.service_model.service_name
    if (service, operation.name) not in UNTOKENED_CREATES:
        return
    if caught_exception is not None:
        if isinstance(caught_exception, _NOT_SENT):
            return
        why = f"the connection failed after the request was sent ({type(caught_exception).__name__})"
    elif response is not None and response[0].status_code >= 500:
        code = str(response[1].get("Error", {}).get("Code", ""))
        if code in _THROTTLED:
            return
        why = f"AWS answered HTTP {response[0].status_code} {code}".rstrip()
    else:
        return
    raise AmbiguousWriteError(f"{service}:{operation.name}: {why}, so AWS may have acted on it; it is not retried "
                              "because a retry could make a duplicate. Re-run apply: it finds what was made by its "
                              "tags")


def endpoint_url_problem(url: str) -> str | None:
    """Why botocore would fail on `url` deep inside, with a traceback; None when it is a usable http(s) URL."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises for a port out of range
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL"
    return None if port is None or port > 0 else "has port 0"


def _shown(url: str) -> str:
    return repr(url) if "@" not in url else "(not shown: it holds credentials)"


def check_endpoint_urls(flag: str | None) -> None:
    """UsageError (exit 3), in one line, for an endpoint URL botocore would refuse with a traceback.

    Checked here: the flag, AWS_ENDPOINT_URL and every AWS_ENDPOINT_URL_<SERVICE>; a URL from the
    config file is checked when its client is made (`Clients.client`). A URL holding credentials is not echoed.
    """
    named = {"--endpoint-url": flag} if flag else {}
    named.update({k: v for k, v in os.environ.items() if k == "AWS_ENDPOINT_URL" or k.startswith("AWS_ENDPOINT_URL_")})
    for name, url in sorted(named.items()):
        problem = endpoint_url_problem(url) if url else None
        if problem:
            raise UsageError(f"the endpoint URL {_shown(url)} ({name}) {problem}; write it with its scheme, "
                             "e.g. http://127.0.0.1:5000")


# An endpoint that accepts and never answers must fail in bounded time. 5 s to connect is
# ample for any AWS endpoint (a TCP handshake); 30 s to read is several times the slowest
# answer of the calls we make (long operations are polled, never awaited in one call).
# With botocore's attempts, the worst case per call is attempts x 35 s; `--timeout` bounds a run.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0


def seconds_from_env(env: str, default: float) -> float:
    """A positive number of seconds from the environment (tests shorten timeouts), else `default`."""
    try:
        value = float(os.environ.get(env, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


def is_read(operation: str) -> bool:
    return operation in READ_OPERATIONS or (
        operation.startswith(READ_PREFIXES) and operation not in SECRET_READS)


RETRY_MODES = ("standard", "adaptive", "legacy")



def pacing_identity(profile: str | None, endpoint_url: str | None, role_arn: str | None = None) -> str:
    """Whose AWS limits a Clients spends: the role it assumes, else its profile's credentials (one account).

    The endpoint is part of it: two endpoints (an emulator, a proxy) are two services' limits.
    """
    who = role_arn or "profile:" + (profile or os.environ.get("AWS_PROFILE", "") or "default")
    return f"{who}@{endpoint_url or ''}"


def retry_mode(read_only: bool) -> str:
    """botocore's retry mode: RECONCILER_RETRY_MODE, else adaptive for reads, standard for writes."""
    mode = os.environ.get("RECONCILER_RETRY_MODE", "")
    if mode and mode not in RETRY_MODES:
        raise UsageError(f"RECONCILER_RETRY_MODE={mode!r} is not a botocore retry mode; use one of "
                         f"{', '.join(RETRY_MODES)}, or unset it")
    return mode or ("adaptive" if read_only else "standard")


_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


class _SerialLoader:
    """botocore's loader, with its cached methods called one thread at a time.

    botocore memoizes `list_available_services` and the model loads per loader instance, but without a
    lock: the stacks of a fleet, making their first clients at the same moment, all missed the cache and
    each walked the data directories and parsed the JSON models again (most of a fleet drift's CPU).
    Under the lock the first caller fills the cache and the others read it.
    """

    _SERIAL = frozenset({"list_available_services", "load_service_model", "load_data", "load_data_with_path",
                         "determine_latest_version", "list_api_versions"})

    def __init__(self, loader: Any) -> None:
        self._loader = loader
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._loader, name)
        if name not in self._SERIAL:
            return attribute

        def serial(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return serial


def _share_loader(session: botocore.session.Session) -> None:
    """Every Session of the process reads botocore's service models through one loader.

    A fresh Session parses the JSON models (EC2's is megabytes) again for its first client of each
    service: in a fleet run, a Session per stack made that the largest CPU cost (about 0.6 s a stack).
    The loader's caches hold only the read-only model data, the same for every credentials
    (`_SerialLoader`: why a lock).
    """
    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = _SerialLoader(session.get_component("data_loader"))
        session.register_component("data_loader", _LOADER)


def _session(profile: str | None, region: str) -> botocore.session.Session:
    """A botocore Session for `profile` (None: the default chain) in `region`.

    botocore's own, not boto3's: boto3's Session adds only resources (which we do not use) and
    costs a tenth of a second to import (it loads s3transfer). An unknown profile raises
    ProfileNotFound here, before any call, as boto3's Session does.
    """
    session = botocore.session.Session(profile=profile)
    session.set_config_variable("region", region)
    session.get_scoped_config()
    return session


@dataclass(frozen=True)
class RoleToAssume:
    """A role the runner's credentials assume before any other call.

    Invariants: `arn` is an IAM role ARN (`arn:<partition>:iam::<12 digits>:role/...`);
    `session_name` and `duration` are within AWS's bounds (2-64 characters, 900..43200 s:
    the manifest schema and `--assume-role`'s check hold them); `external_id` is a Secret,
    left out of the repr, never put in any message.
    """

    arn: str
    session_name: str = "reconciler"
    duration: int = 3600
    external_id: Secret | None = field(default=None, repr=False)

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]

    def assume_role_args(self) -> dict[str, Any]:
        """sts:AssumeRole's arguments other than RoleArn (botocore's fetcher adds that)."""
        args: dict[str, Any] = {"RoleSessionName": self.session_name, "DurationSeconds": self.duration}
        if self.external_id is not None:
            args["ExternalId"] = self.external_id.reveal()
        return args


def partition_of(region: str) -> str:
    """The ARN partition of `region` (`aws`, `aws-cn`, `aws-us-gov`, ...), from botocore's partition data."""
    from reconciler.manifest.aws_names import region_partitions

    try:
        return region_partitions()[region]
    except KeyError:
        raise UsageError(f"{region!r} is not a region botocore knows; check its spelling (e.g. eu-west-1)") from None


def role_arn_for(role_name: str, account: str, region: str) -> str:
    """The ARN of role `role_name` in `account`, in the partition of `region` (arn:aws-cn: in cn-north-1)."""
    return f"arn:{partition_of(region)}:iam::{account}:role/{role_name}"


class _NoCache:
    """The fetcher's cache, which keeps nothing: the refreshing credentials object is the only copy."""

    def __contains__(self, key: object) -> bool:
        return False

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        pass


class _OneIdentity(botocore.credentials.CredentialProvider):  # type: ignore[misc]
    """The credential chain of a session that assumes a role: the role's credentials, nothing else."""

    METHOD = "assume-role"

    def __init__(self, assumed: _AssumedRole) -> None:
        super().__init__()
        self._assumed = assumed

    def load(self) -> botocore.credentials.RefreshableCredentials:
        return self._assumed.credentials()


class _NoTraceback(logging.Filter):
    """botocore logs a failed refresh with its traceback (AWS's error text): keep the one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


logging.getLogger("botocore.credentials").addFilter(_NoTraceback())


class _AssumedRole:
    """The refreshing credentials of one assumed role, shared by the Clients of one stack (run, lease).

    Assumed on first use, with the runner's own credentials (resolved then, as a session does, so
    a Clients costs nothing until it calls AWS), through botocore's `AssumeRoleCredentialFetcher`;
    from then on botocore's `RefreshableCredentials` refreshes them through the same fetcher. Its
    refresh windows (15 and 10 minutes before expiry) are scaled down for short durations: with
    `duration: 900` they would ask STS again on every call.
    """

    def __init__(self, role: RoleToAssume, source: Any, sts_client: Any) -> None:
        self.role = role
        self._source = source
        self._sts_client = sts_client
        self._fetcher: botocore.credentials.AssumeRoleCredentialFetcher | None = None
        self._credentials: botocore.credentials.RefreshableCredentials | None = None
        self._lock = threading.RLock()

    def _fetch(self) -> dict[str, Any]:
        """botocore's `refresh_using`: sts:AssumeRole now."""
        with self._lock:
            if self._fetcher is None:
                source = self._source.get_credentials()
                if source is None:
                    raise botocore.exceptions.NoCredentialsError()
                self._fetcher = botocore.credentials.AssumeRoleCredentialFetcher(
                    self._sts_client, source, self.role.arn, extra_args=self.role.assume_role_args(),
                    cache=_NoCache())
            fetcher = self._fetcher
        fetched: dict[str, Any] = fetcher.fetch_credentials()
        Secret(str(fetched["secret_key"]))  # registered for redaction: masked wherever they might show
        Secret(str(fetched["token"]))
        return fetched

    def credentials(self) -> botocore.credentials.RefreshableCredentials:
        """The role's credentials, assumed on the first call; botocore refreshes them before they expire."""
        with self._lock:
            if self._credentials is None:
                self._credentials = botocore.credentials.RefreshableCredentials.create_from_metadata(
                    self._fetch(), refresh_using=self._fetch, method="assume-role",
                    advisory_timeout=min(15 * 60, self.role.duration // 3),
                    mandatory_timeout=min(10 * 60, self.role.duration // 6))
            return self._credentials


def assume_role_error(role: RoleToAssume, exc: Exception) -> AwsError:
    """Why the role could not be assumed, naming the ARN and AWS's code (never the external id), and what to do."""
    if isinstance(exc, (*_NOT_SENT, botocore.exceptions.ReadTimeoutError)):
        return RetryableAwsError(f"cannot reach AWS STS to assume the role {role.arn}: {describe_error(exc)}; check "
                                 "the network, the region and the endpoint URL, then re-run")
    kind: type[AwsError] = AwsError
    why = describe_error(exc)
    if isinstance(exc, botocore.exceptions.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc.response, dict) else ""
        kind = RetryableAwsError if code in _THROTTLED else TerminalAwsError
        why = f"sts:AssumeRole failed: {why}"
    external = " and names this external id" if role.external_id is not None else ""
    return kind(f"cannot assume the role {role.arn}: {why}; check that the role's trust policy trusts the runner's "
                f"credentials{external}, that the ARN is right (assume_role: in the manifest, or --assume-role), and "
                "which credentials run this (aws sts get-caller-identity); then re-run")


class Clients:
    """Lazily built, thread-safe boto3 clients for one region and endpoint, as one identity.

    With `role`, that identity is the assumed role (see the module docstring); `shared_role`
    is another Clients' `_AssumedRole` (`writable()`), so a stack's clients assume it once.
    """

    def __init__(self, region: str, profile: str | None = None, endpoint_url: str | None = None,
                 read_only: bool = False, max_attempts: int | None = None, pacer: Pacer | None = None,
                 role: RoleToAssume | None = None, shared_role: _AssumedRole | None = None) -> None:
        self.region = region
        self.role = shared_role.role if shared_role is not None else role
        self._max_attempts = max_attempts
        # Only an explicit --endpoint-url is passed on: botocore itself reads AWS_ENDPOINT_URL,
        # AWS_ENDPOINT_URL_<SERVICE> and `endpoint_url` in the config file, with the AWS CLI's precedence.
        check_endpoint_urls(endpoint_url)
        bad = bad_rates()
        if bad:
            raise UsageError(f"{', '.join(f'{name}={os.environ[name]!r}' for name in bad)}: not a rate; write "
                             "calls per second and an optional burst, e.g. 10 or 10/20 (0: no pacing)")
        self.endpoint_url = endpoint_url or None
        self.profile = profile
        self.read_only = read_only
        if pacer is None:  # AWS's limits are the account's: the role's, else the profile's (pacing_identity)
            pacer = pacer_for(pacing_identity(profile, self.endpoint_url, self.role.arn if self.role else None),
                              region)
        self.pacer = pacer
        self.calls: list[tuple[str, str]] = []
        attempts = max_attempts or int(os.environ.get("RECONCILER_MAX_ATTEMPTS", "8"))
        self._config = botocore.config.Config(
            region_name=region,
            retries={"mode": retry_mode(read_only), "total_max_attempts": attempts},
            connect_timeout=seconds_from_env("RECONCILER_CONNECT_TIMEOUT", CONNECT_TIMEOUT),
            read_timeout=seconds_from_env("RECONCILER_READ_TIMEOUT", READ_TIMEOUT), max_pool_connections=32,
            user_agent_extra="reconciler/0.1",
        )
        try:
            # the runner's own session: the only one without a role, the source of the role's credentials with one
            self._source = _session(profile, region)
            self._session = self._source
            self._assumed: _AssumedRole | None = shared_role
            if self.role is not None:
                # the stack's clients come from a session whose only credentials are the role's (the profile
                # still gives the config file's settings: endpoints, CA bundle)
                if self._assumed is None:
                    self._assumed = _AssumedRole(self.role, self._source, self._source_client)
                self._session = _session(profile, region)
                self._session.register_component("credential_provider", botocore.credentials.CredentialResolver(
                    [_OneIdentity(self._assumed)]))
        except botocore.exceptions.ProfileNotFound as exc:
            raise TerminalAwsError(f"AWS profile not found: {exc} (check --profile / AWS_PROFILE)") from None
        _share_loader(self._source)
        if self._session is not self._source:
            _share_loader(self._session)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()  # held while a client is made (`client`)
        self._calls_lock = threading.Lock()  # guards `calls`

    def role_credentials(self) -> botocore.credentials.RefreshableCredentials | None:
        """The assumed role's refreshing credentials (assumed now if not yet; None without a role)."""
        return self._assumed.credentials() if self._assumed is not None else None

    def writable(self) -> Clients:
        """Clients for the same place and identity that may write (the lease's); an assumed role is shared."""
        return Clients(self.region, self.profile, self.endpoint_url, max_attempts=self._max_attempts,
                       pacer=self.pacer, shared_role=self._assumed)

    def _source_client(self, service: str, **credentials: Any) -> Any:
        """A client of the runner's own session (botocore's fetcher passes the source credentials): STS's."""
        made = self._source.create_client(service, config=self._config, endpoint_url=self.endpoint_url,
                                          **credentials)
        made.meta.events.register("before-call.*.*", self._before_call)
        made.meta.events.register("before-parse.*.*", refuse_unreadable)
        return made

    def client(self, service: str) -> Any:
        """The client of `service`, made on first use, one at a time: botocore's Session is not thread-safe,
        so two clients are never made at once. A client already made is returned without the lock, and
        calls (`_before_call`) take another lock, so a thread making EC2's client (a fifth of a second of
        model loading) holds up no call of a client already made."""
        made = self._clients.get(service)
        if made is not None:
            return made
        with self._lock:
            if service not in self._clients:
                where = "from the AWS config file: endpoint_url in the profile or its services section"
                try:
                    made = self._session.create_client(service, config=self._config,
                                                       endpoint_url=self.endpoint_url)
                except ValueError:  # botocore's "Invalid endpoint", e.g. `endpoint_url = 127.0.0.1:5000`
                    raise UsageError(f"the endpoint URL for {service} ({where}) is not an http(s) URL; write it "
                                     "with its scheme, e.g. http://127.0.0.1:5000") from None
                problem = endpoint_url_problem(made.meta.endpoint_url)
                if problem:  # e.g. a port out of range, which botocore would only trip on while signing
                    raise UsageError(f"the endpoint URL {_shown(made.meta.endpoint_url)} for {service} ({where}) "
                                     f"{problem}; write it with its scheme, e.g. http://127.0.0.1:5000")
                made.meta.events.register("before-call.*.*", self._before_call)
                made.meta.events.register_first("needs-retry.*.*", refuse_blind_retry)
                made.meta.events.register("before-parse.*.*", refuse_unreadable)
                self._clients[service] = made
            return self._clients[service]

    def _before_call(self, model: Any, **_: Any) -> None:
        operation = model.name
        service = model.service_model.service_name
        if self.read_only and not is_read(operation):
            raise ReadOnlyViolation(f"refused {service}:{operation}: this command is read-only (a bug; nothing was "
                                    "sent: please report it)")
        with self._calls_lock:
            self.calls.append((service, operation))
        if is_read(operation):  # writes are paced per action by the kinds that need it (kinds/ec2/_pacing.py)
            self.pacer.take(service, operation)

    def account_id(self) -> str:
        """The account of the identity calls are made as (the assumed role's, with one): the guard's answer."""
        try:
            if self._assumed is not None:
                try:
                    self._assumed.credentials()
                except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                    if isinstance(exc, botocore.exceptions.NoCredentialsError):
                        raise
                    raise assume_role_error(self._assumed.role, exc) from None
            return str(self.client("sts").get_caller_identity()["Account"])
        except botocore.exceptions.NoCredentialsError:
            raise TerminalAwsError("no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                                   "AWS_SECRET_ACCESS_KEY)") from None
        except botocore.exceptions.ClientError as exc:  # denied, expired token: nothing can be read without it
            raise AwsError(f"cannot tell which account the credentials are for: sts:GetCallerIdentity failed: "
                           f"{describe_error(exc)}; check the credentials (aws sts get-caller-identity) and "
                           "re-run") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise AwsError(f"cannot reach AWS STS: {describe_error(exc)}; check the network, the region and the "
                           "endpoint URL, then re-run") from None

    def mutating_calls(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if not is_read(c[1])]

