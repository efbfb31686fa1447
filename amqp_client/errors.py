"""The exception tree of amqp-client.

This module is the hand-written root of every exception the library raises.
It imports nothing from the package but the generated constants (a module
that imports nothing itself), so any module, the generated code included,
can import it without cycles; the reply codes below are the spec's. Per-reply-code classes such as
``NotFoundError`` are generated from the spec into ``amqp_client.spec.errors``
and subclass :class:`ChannelClosed` (soft errors) or :class:`ConnectionClosed`
(hard errors).

Rules:

* Constructor values go into ``args`` so every exception pickles.
* Messages are built in ``__str__``; a password never reaches one.
* Blame is precise: :class:`ProtocolError` is the peer's fault,
  :class:`UsageError` the caller's.
"""

from __future__ import annotations

from amqp_client.spec.constants import ReplyCode

__all__ = [
    "AMQPError",
    "AuthenticationError",
    "ChannelClosed",
    "ConnectionClosed",
    "ConnectionLost",
    "CredentialsError",
    "FrameDecodeError",
    "FrameSequenceError",
    "HeartbeatTimeout",
    "MessageNacked",
    "MessageReturned",
    "ProtocolError",
    "UsageError",
]


class AMQPError(Exception):
    """Root of every exception raised by amqp-client."""


class UsageError(AMQPError):
    """The caller used the library in a way it does not allow.

    Raised at once, before anything is sent: a call on a closed channel
    from the wrong state, a blocking call that would deadlock, and the like.
    """


class ProtocolError(AMQPError):
    """The peer broke the AMQP framing or the method grammar.

    Attributes:
        reply_code: the reply code the client closes the connection with
            (501 frame-error or 505 unexpected-frame).
    """

    reply_code: int = ReplyCode.FRAME_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class FrameDecodeError(ProtocolError, ValueError):
    """Bytes from the peer do not decode: bad frame-end, unknown frame type,
    an oversized frame, a payload that does not match its method or
    properties. Closes the connection with frame-error (501)."""

    reply_code = ReplyCode.FRAME_ERROR


class FrameSequenceError(ProtocolError):
    """A well-formed frame arrived where the grammar does not allow it
    (a body frame without a header, a method in the middle of content, an
    unexpected reply). Closes the connection with unexpected-frame (505)."""

    reply_code = ReplyCode.UNEXPECTED_FRAME


class _CloseError(AMQPError):
    """Common shape of ChannelClosed and ConnectionClosed."""

    #: The reply code this class stands for; 0 on the family classes.
    REPLY_CODE: int = 0

    def __init__(
        self,
        reply_code: int | None = None,
        reply_text: str = "",
        class_id: int = 0,
        method_id: int = 0,
    ) -> None:
        if reply_code is None:
            reply_code = self.REPLY_CODE
        super().__init__(reply_code, reply_text, class_id, method_id)

    @property
    def reply_code(self) -> int:
        return int(self.args[0])

    @property
    def reply_text(self) -> str:
        return str(self.args[1])

    @property
    def class_id(self) -> int:
        return int(self.args[2])

    @property
    def method_id(self) -> int:
        return int(self.args[3])

    def __str__(self) -> str:
        text = f"({self.reply_code}) {self.reply_text}".rstrip()
        if self.class_id or self.method_id:
            text += f" [caused by method {self.class_id}/{self.method_id}]"
        return text


class ChannelClosed(_CloseError):
    """A channel was closed: by the broker with a soft-error reply code, or
    by the client. The connection and its other channels keep working."""


class ConnectionClosed(_CloseError):
    """The connection was closed: by the broker with a hard-error reply code,
    by the client, or because the transport failed."""


class AuthenticationError(ConnectionClosed):
    """The broker refused the credentials (RabbitMQ closes the connection
    with 403 access-refused once ``authentication_failure_close`` is
    offered)."""

    REPLY_CODE = ReplyCode.ACCESS_REFUSED


class ConnectionLost(ConnectionClosed):
    """The transport went away without a close handshake (reset, EOF, a
    refused or failed TCP connect). Safe to retry on a new connection."""

    def __init__(self, reply_text: str = "connection lost") -> None:
        super().__init__(0, reply_text, 0, 0)

    def __reduce__(self) -> tuple[type[ConnectionLost], tuple[str]]:
        return (type(self), (self.reply_text,))

    def __str__(self) -> str:
        return self.reply_text


class HeartbeatTimeout(ConnectionLost):
    """No frame arrived from the broker for two heartbeat intervals."""

    def __init__(self, reply_text: str = "missed heartbeats from the broker") -> None:
        super().__init__(reply_text)


class CredentialsError(AMQPError):
    """The credentials provider given to ``connect(credentials=...)``
    raised, or returned something other than usable ``Credentials``.

    The provider's own exception is the ``__cause__``. A connection
    attempt that needs the provider fails with it (recovery retries, with
    backoff); a failed refresh is reported to the connection's
    credentials-error callbacks and retried, and never closes the
    connection by itself.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class MessageNacked(AMQPError):
    """The broker answered a confirm-mode publish with basic.nack."""

    def __init__(self, delivery_tag: int) -> None:
        super().__init__(delivery_tag)

    @property
    def delivery_tag(self) -> int:
        return int(self.args[0])

    def __str__(self) -> str:
        return f"the broker nacked publish #{self.delivery_tag}"


class MessageReturned(AMQPError):
    """A mandatory publish could not be routed and came back (basic.return).

    Attributes:
        message: the returned message as the runtime represents it.
    """

    def __init__(
        self, reply_code: int, reply_text: str, message: object = None
    ) -> None:
        super().__init__(reply_code, reply_text, message)

    @property
    def reply_code(self) -> int:
        return int(self.args[0])

    @property
    def reply_text(self) -> str:
        return str(self.args[1])

    @property
    def message(self) -> object:
        return self.args[2]

    def __str__(self) -> str:
        return f"message returned: ({self.reply_code}) {self.reply_text}"
