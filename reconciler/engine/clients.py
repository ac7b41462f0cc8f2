"""The one place a boto3 Session is made.

Invariants: every client shares one Session, one retry policy (standard mode,
configurable attempts), timeouts and endpoint; when `read_only` is set, a
`before-call` hook refuses any operation that is not a read before it is sent, so
`plan` and `drift` cannot change the account even through a bug in a kind.
Every operation sent is recorded (service, operation) for tests and `make bench`.

Retries never duplicate: botocore retries every call after a transient failure,
but a create that AWS cannot make idempotent (no ClientToken, no unique name:
`UNTOKENED_CREATES`) is not retried when the failure leaves it unknown whether AWS
acted (connection lost after sending, HTTP 5xx other than throttling). It fails
with `AmbiguousWriteError` instead, and the next apply finds what was made by the
tags set in the create call.
"""

from __future__ import annotations

import json
import os
import threading
import xml.etree.ElementTree as ElementTree
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from reconciler.error_text import describe_error
from reconciler.errors import AwsError, ReconcilerError, RetryableAwsError, TerminalAwsError

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


class ReadOnlyViolation(ReconcilerError):
    """A mutating call was attempted during plan or drift (a bug; nothing was sent)."""


class AmbiguousWriteError(RetryableAwsError):
    """A non-idempotent create may or may not have happened; not retried blindly (re-run apply)."""


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


class UnreadableResponseError(RetryableAwsError):
    """AWS answered a call with a body that does not parse; the body is never shown (it may hold a secret)."""


_JSON_PROTOCOLS = frozenset({"json", "rest-json"})
_XML_PROTOCOLS = frozenset({"query", "ec2", "rest-xml"})


def _parses(protocol: str, body: bytes) -> bool:
    """True when `body` is well-formed for `protocol` (or the protocol is not one we check)."""
    try:
        if protocol in _JSON_PROTOCOLS:
            json.loads(body.decode("utf-8"))
        elif protocol in _XML_PROTOCOLS:
            ElementTree.fromstring(body)
    except (ValueError, ElementTree.ParseError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return False
    return True


def _error_body(protocol: str, status: int) -> bytes:
    """A protocol-correct error body standing in for an unparseable one (code and message are ours)."""
    code, message = "UnparseableErrorResponse", f"AWS answered HTTP {status} with a body that could not be parsed"
    if protocol in _JSON_PROTOCOLS:
        return json.dumps({"__type": code, "message": message}).encode()
    if protocol == "ec2":
        return (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                "</Response>").encode()
    if protocol == "query":
        return f"<ErrorResponse><Error><Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>".encode()
    return f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()


def refuse_unreadable(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
    """botocore `before-parse` hook: an answer that does not parse never becomes data or text.

    Left to botocore, a JSON answer that does not parse becomes an empty success (a
    listing that reads as "nothing there", which would plan creates over what exists),
    and an XML one a `ResponseParserError` whose text is the whole body (a
    CreateAccessKey answer with its SecretAccessKey). So: a success whose body does not
    parse raises `UnreadableResponseError` (without the body); an error whose body does
    not parse is replaced by one that says so, keeping its HTTP status (so a 5xx is
    still retried by botocore).
    """
    body = response_dict.get("body")
    if not isinstance(body, bytes) or not body or operation_model.has_streaming_output:
        return
    shape = operation_model.output_shape
    payload = shape.serialization.get("payload") if shape is not None else None
    if payload and shape.members[payload].type_name != "structure":
        return  # the body is a raw blob or string (e.g. Lambda Invoke's), not a document of the protocol
    protocol = str(operation_model.service_model.resolved_protocol)
    if _parses(protocol, body):
        return
    status = int(response_dict.get("status_code") or 0)
    if status >= 300:
        response_dict["body"] = _error_body(protocol, status)
        return
    service = operation_model.service_model.service_name
    raise UnreadableResponseError(
        f"{service}:{operation_model.name}: AWS's answer (HTTP {status}) could not be parsed; it is not shown, "
        "as it may hold a secret. If this was a change, AWS may have made it: re-run apply, which finds it")


def is_read(operation: str) -> bool:
    return operation in READ_OPERATIONS or (
        operation.startswith(READ_PREFIXES) and operation not in SECRET_READS)


class Clients:
    """Lazily built, thread-safe boto3 clients for one region and endpoint."""

    def __init__(self, region: str, profile: str | None = None, endpoint_url: str | None = None,
                 read_only: bool = False, max_attempts: int | None = None) -> None:
        self.region = region
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self.read_only = read_only
        self.calls: list[tuple[str, str]] = []
        attempts = max_attempts or int(os.environ.get("RECONCILER_MAX_ATTEMPTS", "8"))
        self._config = botocore.config.Config(
            region_name=region,
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=10, read_timeout=60, max_pool_connections=32,
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
                made = self._session.client(service, config=self._config, endpoint_url=self.endpoint_url)
                made.meta.events.register("before-call.*.*", self._before_call)
                made.meta.events.register_first("needs-retry.*.*", refuse_blind_retry)
                made.meta.events.register("before-parse.*.*", refuse_unreadable)
                self._clients[service] = made
            return self._clients[service]

    def _before_call(self, model: Any, **_: Any) -> None:
        operation = model.name
        service = model.service_model.service_name
        if self.read_only and not is_read(operation):
            raise ReadOnlyViolation(f"refused {service}:{operation}: this command is read-only")
        with self._lock:
            self.calls.append((service, operation))

    def account_id(self) -> str:
        try:
            return str(self.client("sts").get_caller_identity()["Account"])
        except botocore.exceptions.NoCredentialsError:
            raise TerminalAwsError("no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                                   "AWS_SECRET_ACCESS_KEY)") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise AwsError(f"cannot reach AWS STS: {describe_error(exc)}") from None

    def mutating_calls(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if not is_read(c[1])]

