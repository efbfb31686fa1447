"""What a connection and a channel tell about themselves, checked against
RabbitMQ's own view (issue 16, item 4). Both fronts.

The broker's version is what ``rabbitmqctl version`` says; the client's
local address is a connection the broker lists (``rabbitmqctl
list_connections``), from its peer address to the broker's port. The
blocked state under a real memory alarm is tested on a node of its own
(tests/integration/test_faults.py::test_memory_alarm_blocks_publishing);
the scripted broker covers it too (tests/unit/test_introspection.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from typing import Any

import pytest

from amqp_client import uri
from tests.integration.helpers import Front, amqp_url, within
from tests.support.rabbitmqctl import list_connections, rabbitmqctl

pytestmark = pytest.mark.integration


def address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as rabbitmqctl's JSON gives it: Erlang's tuple of 4
    octets or 8 16-bit groups, as a list."""
    if isinstance(value, list) and len(value) == 4:
        return ipaddress.IPv4Address(bytes(value))
    if isinstance(value, list) and len(value) == 8:
        return ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in value))
    return ipaddress.ip_address(str(value))


async def introspection_scenario(front: Front) -> None:
    params = uri.parse_url(amqp_url())
    version = (await asyncio.to_thread(rabbitmqctl, "version")).strip()
    async with front.connect(
        amqp_url(), heartbeat=30, frame_max=65536, channel_max=64
    ) as conn:
        assert conn.is_open and not conn.is_blocked and not conn.is_closed
        properties = conn.server_properties
        assert properties["product"] == "RabbitMQ"
        assert isinstance(properties["capabilities"], dict)
        assert properties["capabilities"]["publisher_confirms"] is True
        assert re.fullmatch(r"\d+\.\d+\.\d+\S*", conn.server_version)
        assert conn.server_version == version
        assert (conn.heartbeat, conn.frame_max, conn.channel_max) == (30, 65536, 64)

        local, peer = conn.local_address, conn.peer_address
        assert local is not None and peer is not None
        assert peer[1] == params.port
        rows = await asyncio.to_thread(
            list_connections, "peer_host", "peer_port", "port", "user"
        )
        me = (ipaddress.ip_address(local[0]), local[1])
        mine = [
            row for row in rows if (address(row["peer_host"]), row["peer_port"]) == me
        ]
        assert len(mine) == 1, rows
        assert mine[0]["port"] == peer[1]
        assert mine[0]["user"] == params.username

        ch = await within(conn.channel())
        assert ch.is_open and not ch.is_closed
        await within(ch.close())
        assert not ch.is_open and ch.is_closed
        assert conn.is_open
    assert not conn.is_open and conn.is_closed
    assert conn.local_address is None and conn.peer_address is None


def test_connection_and_channel_introspection(front: Front) -> None:
    front.run(introspection_scenario)
