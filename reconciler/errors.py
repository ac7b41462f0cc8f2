"""The one error tree; the CLI maps it to exit codes in one place.

    ReconcilerError                 (exit 1 unless a subclass says otherwise)
    ├── ManifestError               exit 3: invalid manifest, each problem with file:line:col
    ├── UsageError                  exit 3: invalid command line or plan file
    ├── StalePlanError              exit 4: the account or manifest changed since the plan
    ├── ReadOnlyViolation           exit 1: a mutating call during plan or drift (a bug; nothing was sent)
    ├── AwsError                    exit 1: talking to AWS failed
    │   ├── RetryableAwsError       throttling, 5xx, timeouts that outlived botocore's retries
    │   │   ├── AmbiguousWriteError      an untokened create may have happened: not retried blindly
    │   │   └── UnreadableResponseError  an answer that does not parse (never shown: it may hold a secret)
    │   ├── TerminalAwsError        access denied, validation, not found where it must exist
    │   └── DependencyBlocked       a delete still refused as "in use" at the deadline; names the blockers
    ├── DockerError                 exit 1: build or push failed
    ├── LockError                   exit 1: another apply holds the stack lock, or taking/renewing it failed
    ├── Interrupted                 exit 130 (SIGINT) / 143 (SIGTERM): stopped by a signal
    └── ApplyError                  exit 1: one or more actions failed; the account is safe to re-run

    ValueError                      inside the manifest layer only: turned into a `Problem` there
    ├── PathRefused                 a path the manifest names is not allowed or not usable
    └── DockerignoreError           a build context's `.dockerignore` cannot be used

Every exception class of the package is defined here and drawn above (a unit test
checks it); the only others are private control-flow signals that never leave their
module (listed, with why, in `tests/unit/test_error_idiom.py`).

Invariant: no message in this tree ever contains a secret value; secrets travel as
`reconciler.secret.Secret`, whose str/repr are masked.
"""

from __future__ import annotations

from dataclasses import dataclass


class ReconcilerError(Exception):
    """Root of every error the tool raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest, located in its source."""

    file: str
    line: int
    col: int
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.col}: {self.path}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class ManifestError(ReconcilerError):
    """The manifest is invalid; carries every problem found, sorted by position."""

    exit_code = 3

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems), key=lambda p: (p.file, p.line, p.col, p.path, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(ReconcilerError):
    exit_code = 3


class StalePlanError(ReconcilerError):
    exit_code = 4


class AwsError(ReconcilerError):
    exit_code = 1


class RetryableAwsError(AwsError):
    pass


class AmbiguousWriteError(RetryableAwsError):
    """A non-idempotent create may or may not have happened; not retried blindly (re-run apply)."""


class UnreadableResponseError(RetryableAwsError):
    """AWS answered a call with a body that does not parse; the body is never shown (it may hold a secret)."""


class TerminalAwsError(AwsError):
    pass


class ReadOnlyViolation(ReconcilerError):
    """A mutating call was attempted during plan or drift (a bug; nothing was sent)."""


class DependencyBlocked(AwsError):
    """A delete kept failing with DependencyViolation until the deadline; names what blocks it."""


class DockerError(ReconcilerError):
    exit_code = 1


class LockError(ReconcilerError):
    exit_code = 1


class ApplyError(ReconcilerError):
    exit_code = 1


class Interrupted(ReconcilerError):
    """A signal stopped the run; exit 128 + the signal number, as shells report it."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class PathRefused(ValueError):
    """A path a manifest names is not allowed or not usable; `message` and `hint` are safe to show.

    A ValueError, not a ReconcilerError: it never leaves the manifest layer, which turns it
    into a located `Problem` (or the CLI into a usage error).
    """

    def __init__(self, message: str, hint: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail or message  # the message without the path's name: "is a named pipe (FIFO), ..."


class DockerignoreError(ValueError):
    """The context's `.dockerignore` cannot be used; the message names the problem, never the content."""
