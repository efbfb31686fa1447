"""What a connection and a channel tell about themselves (issue 16, item 4),
both fronts, against the scripted broker: the negotiated limits, the
broker's properties and version, the socket's addresses, and the open,
blocked and closed states as they change. The same against RabbitMQ:
tests/integration/test_introspection.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from amqp_client import aio, blocking, uri
from tests.support.scripted_peer import SERVER_PROPERTIES
from tests.support.socket_peer import STEP, ScriptedBroker, wait_until_async
from tests.unit.test_front_scripted import connected, run


@pytest.fixture
def broker() -> Iterator[ScriptedBroker]:
    with ScriptedBroker(frame_max=65536, channel_max=100, heartbeat=30) as scripted:
        yield scripted


@pytest.fixture(params=["aio", "blocking"])
def front(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_properties_follow_the_connection(front: str, broker: ScriptedBroker) -> None:
    async def scenario() -> None:
        async with connected(front, broker) as (conn, peer):
            assert conn.is_open and not conn.is_closed and not conn.is_blocked
            assert dict(conn.server_properties) == SERVER_PROPERTIES
            with pytest.raises(TypeError):
                conn.server_properties["product"] = "changed"  # a read-only view
            assert conn.server_version == "3.12.1"
            assert (conn.heartbeat, conn.frame_max, conn.channel_max) == (
                30,
                65536,
                100,
            )
            assert conn.peer_address == ("127.0.0.1", broker.port)
            local = conn.local_address
            assert local is not None and local[0] == "127.0.0.1"
            assert local[1] not in (0, broker.port)

            peer.block("low on memory")
            await wait_until_async(lambda: conn.is_blocked, what="blocked")
            assert conn.is_open
            peer.unblock()
            await wait_until_async(lambda: not conn.is_blocked, what="unblocked")

            ch = await conn.channel(timeout=STEP)
            assert ch.is_open and not ch.is_closed and ch.channel_id == 1
            await asyncio.wait_for(ch.close(), STEP)
            assert not ch.is_open and ch.is_closed
        assert not conn.is_open and conn.is_closed
        assert conn.local_address is None and conn.peer_address is None

    run(scenario)


def test_before_connection_tune_there_is_nothing_to_tell() -> None:
    """A connection not connected yet says "", nothing and None, rather
    than failing."""
    params = uri.parse_url("amqp://127.0.0.1:1")

    async def unconnected_aio() -> aio.Connection:
        return aio.Connection(params)

    unconnected = blocking.Connection(params)
    try:
        for conn in (asyncio.run(unconnected_aio()), unconnected):
            assert conn.server_version == ""
            assert dict(conn.server_properties) == {}
            assert conn.local_address is None and conn.peer_address is None
            assert not conn.is_open and not conn.is_blocked
    finally:
        unconnected._driver.shutdown()
