"""The one function that turns an exception into text a person sees.

Invariant: no AWS response body and no request parameter ever reaches the text.
- a botocore `ClientError` shows its error code and AWS's own message only (the
  message passes through `redact`, in case AWS echoed a value we sent);
- a response that could not be parsed (`ResponseParserError`, whose str() holds the
  whole raw body, e.g. a CreateAccessKey answer with its SecretAccessKey) shows the
  class name and a fixed text;
- a `ParamValidationError` (whose str() holds the offending parameter *values*, e.g.
  a SecretString) shows the names of the parameters only;
- other botocore errors show their text only when their class is known to carry
  nothing but an endpoint, a profile or a region (`_SAFE_BOTOCORE`); the rest show
  their class name;
- our own errors (`ReconcilerError`) are written to be shown.
Everything is made one line and `redact`ed, so a known secret is masked even if it
slipped into AWS's message.

botocore is imported lazily: `reconcile --help` and `validate` need no AWS library.
"""

from __future__ import annotations

import re

from reconciler.errors import ReconcilerError
from reconciler.secret import redact

MAX_MESSAGE = 500  # AWS messages are short; anything longer is not a message a person reads
UNPARSEABLE = ("AWS's answer could not be parsed; it is not shown, as it may hold a secret "
               "(if this was a change, AWS may have made it: re-run apply, which finds it)")
_PARAMETER = re.compile(r"for (?:document )?parameter ([\w.\[\]]+)")
_SAFE_BOTOCORE = ("HTTPClientError", "ConnectionError", "NoCredentialsError", "PartialCredentialsError",
                  "NoRegionError", "ProfileNotFound", "InvalidEndpointConfigurationError")


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` on one line, at most `limit` characters, with known secrets masked."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def describe_error(exc: BaseException) -> str:
    """A one-line, body-free description of `exc` for results, errors and logs."""
    if isinstance(exc, ReconcilerError):
        # written to be shown, possibly on several lines (a list of blocked changes): only masked
        return redact(str(exc.args[0]) if exc.args else type(exc).__name__)
    import botocore.exceptions
    import botocore.parsers

    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
        code = str(error.get("Code", "") or "UnknownError")
        message = str(error.get("Message", "") or "")
        return one_line(f"{code}: {message}" if message else code)
    if isinstance(exc, botocore.parsers.ResponseParserError):
        return f"{type(exc).__name__}: {UNPARSEABLE}"
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        names = sorted(set(_PARAMETER.findall(str(exc))))
        return one_line(f"{type(exc).__name__}: invalid request parameter(s) {', '.join(names) or '(unknown)'}; "
                        "their values are not shown")
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        safe = tuple(getattr(botocore.exceptions, name) for name in _SAFE_BOTOCORE)
        if isinstance(exc, safe):
            return one_line(f"{type(exc).__name__}: {exc}")
        return f"{type(exc).__name__} (details not shown: they may hold request or response data)"
    return one_line(f"{type(exc).__name__}: {exc}")


def aws_exceptions() -> tuple[type[BaseException], ...]:
    """The AWS library's exception roots, for an `except` clause (evaluated only when one is raised)."""
    import botocore.exceptions
    import botocore.parsers

    return (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, botocore.parsers.ResponseParserError)
