"""Fixtures of the fault tests: ``front`` (each client front, as the
integration tests have it) and ``proxy`` (a TCP proxy to the shared broker,
tests/support/proxy.py). The broker fixtures are in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import front
from tests.integration.helpers import broker_address
from tests.support.proxy import Proxy

__all__ = ["front", "proxy"]


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    """A proxy in front of the shared broker, recording what it forwards;
    only connections through it break, the broker is never touched."""
    with Proxy(broker_address(), record=True) as running:
        yield running
