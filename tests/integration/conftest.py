"""Fixtures of the integration tests (real RabbitMQ; see helpers.py).

``front`` is parametrized over the client fronts; each test body is a
scenario coroutine run by ``front.run(...)``. Tests that break a broker use
``broker_node`` from tests/conftest.py (a node of their own), never the
shared broker.
"""

from __future__ import annotations

import pytest

from tests.integration.helpers import FRONTS, Front


@pytest.fixture(params=sorted(FRONTS))
def front(request: pytest.FixtureRequest) -> Front:
    return FRONTS[request.param]
