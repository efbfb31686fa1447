"""Fixtures of the interop tests: other AMQP clients against ours, through
the shared broker (see tests/integration/helpers.py for the fronts).

``front`` is parametrized over our client fronts, as in tests/integration.
"""

from __future__ import annotations

import pytest

from tests.integration.helpers import FRONTS, Front


@pytest.fixture(params=sorted(FRONTS))
def front(request: pytest.FixtureRequest) -> Front:
    return FRONTS[request.param]
