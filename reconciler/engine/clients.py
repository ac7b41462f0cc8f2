"""The one place a boto3 Session is made.

Invariants: every client shares one Session, one retry policy, timeouts and endpoint;
every read waits for its service's token bucket first (`reconciler.pacing`, shared by
all clients of the process), so fanned-out per-resource reads stay under the rate the
service tolerates; when `read_only` is set, a
`before-call` hook refuses any operation that is not a read before it is sent, so
`plan` and `drift` cannot change the account even through a bug in a kind.
Every operation sent is recorded (service, operation) for tests and `make bench`.

Retries never duplicate: botocore retries every call after a transient failure,
but a create that AWS cannot make idempotent (no ClientToken, no unique name:
`UNTOKENED_CREATES`) is not retried when the failure leaves it unknown whether AWS
acted (connection lost after sending, HTTP 5xx other than throttling). It fails
with `AmbiguousWriteError` instead, and the next apply finds what was made by the
tags set in the create call.

Retry mode: "adaptive" for a read-only Clients (plan, drift, output), "standard"
otherwise; RECONCILER_RETRY_MODE overrides both. Adaptive adds botocore's client-side
rate limiter, which slows a client down only after AWS has throttled it: for reads,
whose fan-out is the burst, that absorbs a throttling storm (another tool sharing the
account's limit) without failing the plan. The buckets above keep the first burst
polite; adaptive handles what they cannot know.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from reconciler.engine.unparseable import refuse_unreadable
from reconciler.error_text import describe_error
from reconciler.errors import AmbiguousWriteError, AwsError, ReadOnlyViolation, TerminalAwsError, UsageError
from reconciler.pacing import Pacer, bad_rates

READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "Lookup", "Search")
# Reads whose name does not say so.
READ_OPERATIONS = frozenset({"GetCallerIdentity"})
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

# One per process: AWS's limits are per account, so every Clients of a run shares them.
READ_PACER = Pacer()


def retry_mode(read_only: bool) -> str:
    """botocore's retry mode: RECONCILER_RETRY_MODE, else adaptive for reads, standard for writes."""
    mode = os.environ.get("RECONCILER_RETRY_MODE", "")
    if mode and mode not in RETRY_MODES:
        raise UsageError(f"RECONCILER_RETRY_MODE={mode!r} is not a botocore retry mode; use one of "
                         f"{', '.join(RETRY_MODES)}, or unset it")
    return mode or ("adaptive" if read_only else "standard")


class Clients:
    """Lazily built, thread-safe boto3 clients for one region and endpoint."""

    def __init__(self, region: str, profile: str | None = None, endpoint_url: str | None = None,
                 read_only: bool = False, max_attempts: int | None = None, pacer: Pacer | None = None) -> None:
        self.region = region
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
        self.pacer = READ_PACER if pacer is None else pacer
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
            self._session = boto3.session.Session(profile_name=profile, region_name=region)
        except botocore.exceptions.ProfileNotFound as exc:
            raise TerminalAwsError(f"AWS profile not found: {exc} (check --profile / AWS_PROFILE)") from None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                where = "from the AWS config file: endpoint_url in the profile or its services section"
                try:
                    made = self._session.client(service, config=self._config, endpoint_url=self.endpoint_url)
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
        with self._lock:
            self.calls.append((service, operation))
        if is_read(operation):  # writes are paced per action by the kinds that need it (kinds/ec2/_pacing.py)
            self.pacer.take(service, operation)

    def account_id(self) -> str:
        try:
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

