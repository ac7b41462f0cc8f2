"""Fixtures of the unit tests that run the command line in-process (`reconciler.cli.main`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """`main` sets up the root logger for a real run; give pytest its own back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
