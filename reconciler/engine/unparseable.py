"""Answers that do not parse: never data, never text.

Why a hook and not an `except`: left to botocore, a JSON answer that does not parse
becomes an empty *success* (botocore reads the body as `{"message": body}` and the
output shape drops it), so a garbled ListSecrets reads as "no secrets" and would plan
a new key over the stored one; no exception is ever raised to catch. An XML answer
that does not parse raises `ResponseParserError`, whose text is the whole body (a
CreateAccessKey answer with its SecretAccessKey). The `before-parse` hook sees the
raw answer before either happens, for every client `Clients` makes.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from typing import Any

from reconciler.errors import UnreadableResponseError

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

    A success whose body does not parse raises `UnreadableResponseError` (without the
    body; not retried, since AWS may have acted on a write); an error whose body does not
    parse is replaced by one that says so, keeping its HTTP status (so a 5xx is still
    retried by botocore).
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
