"""Fixtures of the interop tests: other AMQP clients against ours, through
the shared broker (see tests/integration/helpers.py for the fronts).

``front`` is the integration tests' fixture, parametrized over our client
fronts.
"""

from __future__ import annotations

from tests.integration.conftest import front

__all__ = ["front"]
