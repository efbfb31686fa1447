"""The blocking client: ``amqp_client.blocking.connect()`` and what it returns.

Same names and parameters as the asyncio client, without ``await``; one
I/O thread per connection keeps heartbeats going whatever user threads do.
"""

from amqp_client.blocking.channel import Channel, Confirmation, Consumer, Delivery
from amqp_client.blocking.connection import Connection, connect

__all__ = ["Channel", "Confirmation", "Connection", "Consumer", "Delivery", "connect"]
