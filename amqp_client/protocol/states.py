"""States of the sans-IO core, and which frames each state accepts.

The connection walks the handshake of AMQP 0-9-1 §4.2 (protocol header,
start/start-ok, secure/secure-ok, tune/tune-ok, open/open-ok), is OPEN,
then CLOSING (after sending or receiving connection.close) and CLOSED.
Channels go OPENING -> OPEN -> CLOSING -> (freed). The tables below say
which method each connection state accepts from the broker; anything else
is an unexpected frame (505).
"""

from __future__ import annotations

import enum

from amqp_client._spec_base import Method
from amqp_client.spec import (
    ConnectionBlocked,
    ConnectionClose,
    ConnectionCloseOk,
    ConnectionOpenOk,
    ConnectionSecure,
    ConnectionStart,
    ConnectionTune,
    ConnectionUnblocked,
    ConnectionUpdateSecretOk,
)

__all__ = ["ACCEPTS", "ChannelState", "ConnectionState", "ContentState"]


class ConnectionState(enum.Enum):
    """Where the connection is in its life (AMQP 0-9-1 §4.2.3)."""

    INITIAL = "initial"  # nothing sent yet
    AWAIT_START = "await-start"  # protocol header sent
    AWAIT_TUNE = "await-tune"  # start-ok sent (secure may come first)
    AWAIT_OPEN_OK = "await-open-ok"  # tune-ok and open sent
    OPEN = "open"
    CLOSING = "closing"  # connection.close sent, waiting for close-ok
    CLOSED = "closed"


class ChannelState(enum.Enum):
    OPENING = "opening"  # channel.open sent
    OPEN = "open"
    CLOSING = "closing"  # channel.close sent, waiting for close-ok


class ContentState(enum.Enum):
    """Content assembly on one channel (§4.2.6): after a content-bearing
    method the header must come, then body frames up to the body size."""

    IDLE = "idle"
    AWAIT_HEADER = "await-header"
    AWAIT_BODY = "await-body"


#: (connection state) -> the connection-class methods the broker may send on
#: channel 0 in it. Anything not in the table is a 505 unexpected frame.
ACCEPTS: dict[ConnectionState, frozenset[type[Method]]] = {
    ConnectionState.INITIAL: frozenset(),
    ConnectionState.AWAIT_START: frozenset({ConnectionStart, ConnectionClose}),
    ConnectionState.AWAIT_TUNE: frozenset(
        {ConnectionSecure, ConnectionTune, ConnectionClose}
    ),
    ConnectionState.AWAIT_OPEN_OK: frozenset({ConnectionOpenOk, ConnectionClose}),
    ConnectionState.OPEN: frozenset(
        {
            ConnectionClose,
            ConnectionBlocked,
            ConnectionUnblocked,
            ConnectionUpdateSecretOk,
        }
    ),
    # After sending close, a peer discards everything but close and close-ok
    # (§4.2.3.2 "Closing").
    ConnectionState.CLOSING: frozenset({ConnectionClose, ConnectionCloseOk}),
    ConnectionState.CLOSED: frozenset(),
}
