"""Fixtures of the fault tests: ``front`` (each client front, as the
integration tests have it) and ``proxy`` (a TCP proxy to the shared broker,
tests/support/proxy.py). The broker fixtures are in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.integration.conftest import front
from tests.integration.helpers import amqp_url
from tests.support.proxy import Proxy

__all__ = ["front", "proxy"]


def _broker_address() -> tuple[str, int]:
    """Host and port of the shared broker (``AMQP_URL`` or 127.0.0.1:5672)."""
    url = urlsplit(amqp_url())
    return url.hostname or "127.0.0.1", url.port or 5672


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    """A proxy in front of the shared broker, recording what it forwards;
    only connections through it break, the broker is never touched."""
    with Proxy(_broker_address(), record=True) as running:
        yield running
