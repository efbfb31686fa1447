"""The sans-IO protocol core of amqp-client.

``Connection`` holds every protocol rule; the asyncio and blocking fronts
only move bytes and wake it on time. No I/O, no clocks, no threads here.
"""

from amqp_client.protocol import events
from amqp_client.protocol.core import Connection, Mechanism, negotiate
from amqp_client.protocol.states import ChannelState, ConnectionState

__all__ = [
    "ChannelState",
    "Connection",
    "ConnectionState",
    "Mechanism",
    "events",
    "negotiate",
]
