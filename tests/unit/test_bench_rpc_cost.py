"""bench/rpc_cost.py measures what it says: every client's round-trip loop
runs against the broker (the loop callgrind counts), and, where valgrind is
installed, the count per round trip comes out of two runs. No count or
timing is asserted beyond being positive."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.integration.helpers import amqp_url, unique

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def rpc_cost() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("rpc_cost")
    finally:
        sys.path.remove(str(BENCH))
        sys.modules.pop("rpc_cost", None)


@pytest.mark.integration
@pytest.mark.parametrize(
    "client",
    [
        "py-amqp",
        "pika",
        "aio-pika",
        "amqp_client",
        "amqp_client+uvloop",
        "amqp_client.blocking",
    ],
)
def test_each_clients_loop_runs(rpc_cost: ModuleType, client: str) -> None:
    assert client in rpc_cost.CLIENTS
    argv = ["--child", client, "3", "--url", amqp_url(), "--queue", unique("rpc-cost")]
    assert rpc_cost.main(argv) == 0


@pytest.mark.integration
@pytest.mark.slow
def test_instructions_per_round_trip(rpc_cost: ModuleType) -> None:
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    small = rpc_cost.instructions("amqp_client.blocking", 2, amqp_url())
    large = rpc_cost.instructions("amqp_client.blocking", 12, amqp_url())
    assert small > 0
    assert large > small  # ten more round trips cost something


def test_unknown_client_is_refused(rpc_cost: ModuleType) -> None:
    with pytest.raises(SystemExit):
        rpc_cost.main(["--clients", "nope"])
