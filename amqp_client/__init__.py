"""amqp-client: an AMQP 0-9-1 client for RabbitMQ.

The protocol layer (``amqp_client.spec``) is generated from the official XML
specification; this package is the hand-written runtime around it.
``amqp_client.connect()`` is the asyncio client (``amqp_client.blocking``
the threaded one). Every exception class, the reply-code ones included, and
``BasicProperties`` are importable from here.
"""

from __future__ import annotations

import logging as _logging

from amqp_client import spec
from amqp_client._version import __version__
from amqp_client.aio import (
    Channel,
    Confirmation,
    Connection,
    Consumer,
    Delivery,
    connect,
)
from amqp_client.auth import Credentials
from amqp_client.errors import (
    AMQPError,
    AuthenticationError,
    ChannelClosed,
    ConnectionClosed,
    ConnectionLost,
    CredentialsError,
    FrameDecodeError,
    FrameSequenceError,
    HeartbeatTimeout,
    MessageNacked,
    MessageReturned,
    ProtocolError,
    UsageError,
)
from amqp_client.spec import BasicProperties
from amqp_client.spec.errors import *  # noqa: F403  (one class per reply code)
from amqp_client.spec.errors import __all__ as _reply_code_errors

__all__ = [
    "AMQPError",
    "Channel",
    "Confirmation",
    "Connection",
    "Consumer",
    "Delivery",
    "connect",
    "AuthenticationError",
    "BasicProperties",
    "ChannelClosed",
    "ConnectionClosed",
    "ConnectionLost",
    "Credentials",
    "CredentialsError",
    "FrameDecodeError",
    "FrameSequenceError",
    "HeartbeatTimeout",
    "MessageNacked",
    "MessageReturned",
    "ProtocolError",
    "UsageError",
    "__version__",
    "spec",
]
__all__ += _reply_code_errors

# A library's logger gets a NullHandler (Python's logging HOWTO, "Configuring
# Logging for a Library"): without it, an application that never configured
# logging would have our warnings printed to stderr by logging's last-resort
# handler. Once the application configures logging, records propagate to its
# handlers as usual.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
