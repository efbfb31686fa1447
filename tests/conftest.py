"""Suite-wide fixtures: throw-away RabbitMQ nodes (see tests/support/broker.py).

Tests that stop, kill, pause or alarm a broker use ``broker_node`` (a fresh
node per test) and never the shared broker on 127.0.0.1:5672, which other
tests and CI rely on. ``module_broker_node`` is shared by the tests of one
module: use it only for tests that leave the node running and unalarmed.

If RabbitMQ is not installed these fixtures FAIL (never skip): a skipped
fault test would silently count as a pass.
"""

from __future__ import annotations

from collections.abc import Iterator

# Import, in the main thread and before any test runs, the hypothesis
# modules it otherwise imports lazily mid-run. pytest rewrites them on
# import, and on Python 3.11 that rewrite has twice failed here with
# "SystemError: AST constructor recursion depth mismatch" (cpython
# gh-106905) while the blocking tests' threads were busy.
import hypothesis.internal.conjecture.choice
import hypothesis.internal.conjecture.utils
import hypothesis.internal.lambda_sources
import hypothesis.internal.reflection  # noqa: F401
import pytest

from tests.support.broker import BrokerError, BrokerNode, BrokerNotInstalledError


def _start_node() -> BrokerNode:
    try:
        node = BrokerNode()
    except BrokerNotInstalledError as exc:
        pytest.fail(f"broker_node fixture: {exc}", pytrace=False)
    try:
        node.start()
    except BrokerError as exc:
        node.close()
        pytest.fail(f"broker_node fixture: {exc}", pytrace=False)
    except BaseException:
        node.close()
        raise
    return node


@pytest.fixture
def broker_node() -> Iterator[BrokerNode]:
    """A fresh, running RabbitMQ node of this test's own; removed afterwards."""
    node = _start_node()
    try:
        yield node
    finally:
        node.close()


@pytest.fixture(scope="module")
def module_broker_node() -> Iterator[BrokerNode]:
    """A RabbitMQ node shared by one module's tests (do not break it)."""
    node = _start_node()
    try:
        yield node
    finally:
        node.close()
