"""The asyncio client: ``amqp_client.connect()`` and what it returns."""

from amqp_client.aio.channel import Channel, Confirmation, Consumer, Delivery
from amqp_client.aio.connection import Connection, connect

__all__ = ["Channel", "Confirmation", "Connection", "Consumer", "Delivery", "connect"]
