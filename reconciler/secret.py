"""A value that must never be printed: access key secrets, registry passwords."""

from __future__ import annotations

import logging
import re
import threading

MASK = "(sensitive)"


class Secret:
    """Holds a secret; `str`, `repr` and f-strings show only `(sensitive)`.

    Invariant: the raw value is reachable only through `reveal()`, which callers use
    at the one place the value is handed to an API (Secrets Manager, SSM, Docker).
    Every Secret ever made is registered with the redaction filter, so even a value
    that escapes through a third-party message is masked on every log handler.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        _register(value)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


_lock = threading.Lock()
_known: set[str] = set()
_pattern: re.Pattern[str] | None = None  # of _known, when not stale
_stale = False  # a secret was registered since _pattern was compiled


def _register(value: str) -> None:
    # The pattern is compiled by the next redact(), not here: a fleet run registers hundreds of
    # credentials (each stack's role), and compiling the union on every one of them was quadratic
    # (a sixth of a 100-stack drift's CPU).
    global _stale
    if len(value) < 6:  # too short to redact safely without mangling ordinary text
        return
    with _lock:
        if value not in _known:
            _known.add(value)
            _stale = True


def _current() -> re.Pattern[str] | None:
    global _pattern, _stale
    if not _stale:
        return _pattern
    with _lock:
        if _stale:
            _pattern = re.compile("|".join(re.escape(v) for v in sorted(_known, key=len, reverse=True)))
            _stale = False
        return _pattern


def redact(text: str) -> str:
    """Replace every registered secret in `text` with the mask (every one registered before the call)."""
    pattern = _current()
    return pattern.sub(MASK, text) if pattern else text


class RedactingFilter(logging.Filter):
    """Logging filter that masks registered secrets in the fully formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
