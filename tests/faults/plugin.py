"""The `faulty` fixture: the fault proxy in front of this test's (reset) moto server.

Registered from `tests/conftest.py` (`pytest_plugins`), so any integration test can
ask for it. `faulty.env(**extra)` is `moto.env` pointed at the proxy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults.proxy import FaultProxy


class Faulty(FaultProxy):
    """A FaultProxy that knows its moto server (for env and direct clients)."""

    moto: Any

    def env(self, **extra: str) -> dict[str, str]:
        return dict(self.moto.env(**{"AWS_ENDPOINT_URL": self.endpoint, **extra}))


@pytest.fixture
def faulty(moto: Any) -> Iterator[Faulty]:
    proxy = Faulty(moto.endpoint)
    proxy.moto = moto
    with proxy:
        yield proxy
