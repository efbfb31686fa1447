"""Suite-wide fixtures: throw-away RabbitMQ nodes (see tests/support/broker.py).

Tests that stop, kill, pause or alarm a broker use ``broker_node`` (a fresh
node per test) and never the shared broker on 127.0.0.1:5672, which other
tests and CI rely on. ``module_broker_node`` is shared by the tests of one
module: use it only for tests that leave the node running and unalarmed.
``rabbit_cluster`` (tests/support/cluster.py) is a 3-node cluster and
``tls_broker_node`` (tests/support/tls_node.py) a node with AMQPS, client
certificates and SASL EXTERNAL, both shared by one module's tests.

If RabbitMQ is not installed these fixtures FAIL (never skip): a skipped
fault test would silently count as a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

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

from tests.support.broker import BrokerError, BrokerNode, Startable
from tests.support.cluster import BrokerCluster
from tests.support.codecs import pure_python
from tests.support.tls_node import TlsBrokerNode

_T = TypeVar("_T", bound=Startable)


def _started(make: Callable[[], _T], what: str) -> _T:
    """``make()`` then start it (:class:`Startable`: closed again if the
    start fails). A missing installation or a failed start FAILS the test
    (never skips), and nothing is left running."""
    try:
        return make().__enter__()
    except BrokerError as exc:  # BrokerNotInstalledError included
        pytest.fail(f"{what} fixture: {exc}", pytrace=False)


def _start_node() -> BrokerNode:
    return _started(BrokerNode, "broker_node")


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


@pytest.fixture(scope="module")
def rabbit_cluster() -> Iterator[BrokerCluster]:
    """A 3-node RabbitMQ cluster shared by one module's tests (nodes boot in
    parallel, then join the first). A test may kill, stop or restart nodes
    (``kill(i)``, ``stop(i)``, ``start_node(i)``) but must leave every node
    running and rejoined, as the next test expects."""
    cluster = _started(BrokerCluster, "rabbit_cluster")
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def tls_broker_node() -> Iterator[TlsBrokerNode]:
    """A node with AMQPS (its own CA, server and client certificates) and
    SASL EXTERNAL, shared by one module's tests (do not break it)."""
    node = _started(TlsBrokerNode, "tls_broker_node")
    try:
        yield node
    finally:
        node.close()


@pytest.fixture(params=["c", "python"])
def wire_codec(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test on the C speedups (field tables, the generated decoders)
    and again on the pure-Python code alone (what a build without a C
    compiler runs). Use it with
    ``pytestmark = pytest.mark.usefixtures("wire_codec")``."""
    from amqp_client import wire

    if request.param == "python":
        with pure_python():
            yield "python"
        return
    if wire._c_encode_table is None:
        pytest.fail("the C speedups are not built (amqp_client/_speedups.c)")
    yield "c"
