"""SASL mechanisms for the connection.start / start-ok exchange.

AMQP 0-9-1 authenticates with SASL (AMQP 0-9-1 §2.2.4, the connection
class): connection.start lists the mechanisms the broker offers as a
space-separated longstr, the client names one in connection.start-ok with
its initial ``response``, and the broker may answer with connection.secure
challenges. RabbitMQ's three built-in client mechanisms are here:

=========  =================================================================
PLAIN      RFC 4616: ``b"\\0" + username + b"\\0" + password`` in UTF-8.
AMQPLAIN   RabbitMQ's (originally Qpid's) variant: the *contents* of the
           field table ``{"LOGIN": username, "PASSWORD": password}``, both
           longstr (``S``), without the table's 4-byte length prefix.
           RabbitMQ parses the response with ``parse_table/1`` directly
           (rabbit_auth_mechanism_amqplain.erl); py-amqp and the Java
           client send the same bytes.
EXTERNAL   RFC 4422 appendix A: an empty response; the broker takes the
           identity from the TLS client certificate (the
           rabbitmq_auth_mechanism_ssl plugin).
=========  =================================================================

None of the three expects a challenge, so :meth:`Mechanism.challenge` raises
:class:`~amqp_client.errors.FrameSequenceError` (unexpected-frame, 505): a
connection.secure for them is the broker breaking the method grammar the
mechanism defines, not a refused login.

Rules:

* This module does no I/O and keeps no protocol state.
* Credentials are validated when a mechanism is built, so a bad one fails
  before a socket opens; the response bytes are built on demand.
* A password never appears in a repr, a log record or an exception message.
  This module does not log at all.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Protocol, runtime_checkable

from amqp_client.errors import AuthenticationError, FrameSequenceError
from amqp_client.wire import encode_table

__all__ = [
    "MECHANISMS",
    "AMQPlain",
    "Credentials",
    "External",
    "Mechanism",
    "Plain",
    "choose",
    "mechanism_for",
]

#: The mechanism names this client implements, in order of preference.
MECHANISMS: tuple[str, ...] = ("PLAIN", "AMQPLAIN", "EXTERNAL")


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """A user name and password (or token), and when they expire.

    ``connect(credentials=...)`` takes one, or a zero-argument callable
    returning one (a provider: an OAuth2 token source, a Vault lease,
    a rotated password file); see :func:`amqp_client.connect`.

    Attributes:
        username: the user name to log in as.
        password: the password or token; never shown (``repr`` prints
            ``'***'``).
        expires_at: when the password stops being valid, an aware
            ``datetime``; None if it does not expire. With a provider, the
            client asks it again at 80% of the remaining lifetime and sends
            the new password with connection.update-secret.

    Raises:
        TypeError: ``username`` or ``password`` not a ``str``, or
            ``expires_at`` not a ``datetime``.
        ValueError: ``expires_at`` is naive (no tzinfo): a naive time is
            ambiguous, and compared with the wrong clock a token would be
            refreshed hours too early or too late.
    """

    username: str
    password: str
    expires_at: datetime.datetime | None = None

    def __post_init__(self) -> None:
        for what in ("username", "password"):
            value = getattr(self, what)
            if not isinstance(value, str):
                raise TypeError(f"{what}: expected str, got {type(value).__name__}")
        expires_at = self.expires_at
        if expires_at is not None:
            if not isinstance(expires_at, datetime.datetime):
                raise TypeError(
                    "expires_at: expected an aware datetime or None, got "
                    f"{type(expires_at).__name__}"
                )
            if expires_at.utcoffset() is None:
                raise ValueError(
                    "expires_at: a naive datetime; give it a time zone "
                    "(datetime.now(timezone.utc) + timedelta(...))"
                )

    def __repr__(self) -> str:
        return (
            f"Credentials(username={self.username!r}, password='***', "
            f"expires_at={self.expires_at!r})"
        )


@runtime_checkable
class Mechanism(Protocol):
    """What the connection needs from a SASL mechanism."""

    @property
    def name(self) -> str:
        """The SASL name sent in connection.start-ok (``"PLAIN"``)."""
        ...

    def response(self) -> bytes:
        """The initial response for connection.start-ok."""
        ...

    def challenge(self, data: bytes) -> bytes:
        """Answer a connection.secure challenge with a secure-ok response.

        Raises:
            FrameSequenceError: the mechanism takes no challenge.
        """
        ...


def _utf8(value: object, what: str) -> bytes:
    """Encode a credential; errors name it but never show its value."""
    if not isinstance(value, str):
        raise TypeError(f"{what}: expected str, got {type(value).__name__}")
    try:
        return value.encode()
    except UnicodeEncodeError:
        pass
    # Raised outside the except block, so the UnicodeEncodeError (which
    # holds the whole string) is not chained to it as __context__.
    raise ValueError(f"{what}: not encodable as UTF-8 (a lone surrogate?)")


class _NoChallenge:
    """Base of the mechanisms that finish with the initial response."""

    __slots__ = ()

    name = ""

    def challenge(self, data: bytes) -> bytes:
        """Refuse a connection.secure challenge.

        Raises:
            FrameSequenceError: always; PLAIN, AMQPLAIN and EXTERNAL finish
                with the initial response, so a challenge is a protocol
                violation (the client closes with unexpected-frame, 505).
        """
        raise FrameSequenceError(
            f"the broker sent connection.secure ({len(data)} bytes), but the "
            f"{self.name} mechanism takes no challenge"
        )


class Plain(_NoChallenge):
    """SASL PLAIN (RFC 4616), RabbitMQ's default mechanism.

    Args:
        username: the user name; may be empty, must not contain NUL.
        password: the password; must not contain NUL.

    Raises:
        TypeError: a credential is not a ``str``.
        ValueError: a credential contains NUL (PLAIN's separator) or a lone
            surrogate. The message names the credential, never its value.
    """

    __slots__ = ("_password", "_username")

    name = "PLAIN"

    def __init__(self, username: str, password: str) -> None:
        for value, what in ((username, "username"), (password, "password")):
            if b"\0" in _utf8(value, what):
                raise ValueError(f"{what}: contains NUL, which SASL PLAIN cannot carry")
        self._username = username
        self._password = password

    @property
    def username(self) -> str:
        """The user name this mechanism logs in as."""
        return self._username

    def response(self) -> bytes:
        """``b"\\0" + username + b"\\0" + password``, UTF-8 (no authzid)."""
        return b"\0" + self._username.encode() + b"\0" + self._password.encode()

    def __repr__(self) -> str:
        return f"Plain(username={self._username!r}, password='***')"


class AMQPlain(_NoChallenge):
    """RabbitMQ's AMQPLAIN mechanism.

    Args:
        username: the user name (the table's ``LOGIN``).
        password: the password (the table's ``PASSWORD``).

    Raises:
        TypeError: a credential is not a ``str``.
        ValueError: a credential contains a lone surrogate. The message
            names the credential, never its value.
    """

    __slots__ = ("_password", "_username")

    name = "AMQPLAIN"

    def __init__(self, username: str, password: str) -> None:
        _utf8(username, "username")
        _utf8(password, "password")
        self._username = username
        self._password = password

    @property
    def username(self) -> str:
        """The user name this mechanism logs in as."""
        return self._username

    def response(self) -> bytes:
        """The field table ``{"LOGIN": ..., "PASSWORD": ...}`` without its
        4-byte length prefix: ``\\x05LOGIN S <u32 len> <user>`` then
        ``\\x08PASSWORD S <u32 len> <password>``."""
        table = encode_table({"LOGIN": self._username, "PASSWORD": self._password})
        return table[4:]

    def __repr__(self) -> str:
        return f"AMQPlain(username={self._username!r}, password='***')"


class External(_NoChallenge):
    """SASL EXTERNAL: the broker takes the identity from the TLS client
    certificate (RabbitMQ's rabbitmq_auth_mechanism_ssl plugin). Needs an
    ``amqps://`` connection with a client certificate in the SSL context."""

    __slots__ = ()

    name = "EXTERNAL"

    def response(self) -> bytes:
        """The empty response (no authorization identity)."""
        return b""

    def __repr__(self) -> str:
        return "External()"


def mechanism_for(name: str, username: str, password: str) -> Mechanism:
    """Build the mechanism called ``name`` for these credentials.

    Args:
        name: ``"PLAIN"``, ``"AMQPLAIN"`` or ``"EXTERNAL"``, in any case.
        username: the user name (ignored by EXTERNAL).
        password: the password (ignored by EXTERNAL).

    Returns:
        A :class:`Plain`, :class:`AMQPlain` or :class:`External`.

    Raises:
        ValueError: ``name`` is not one of the three, or a credential is
            invalid for the mechanism (see the classes).
        TypeError: ``name`` or a credential is not a ``str``.
    """
    if not isinstance(name, str):
        raise TypeError(f"auth_mechanism: expected str, got {type(name).__name__}")
    key = name.upper()
    if key == "PLAIN":
        return Plain(username, password)
    if key == "AMQPLAIN":
        return AMQPlain(username, password)
    if key == "EXTERNAL":
        return External()
    raise ValueError(
        f"auth_mechanism: unknown mechanism {name!r}; "
        f"expected one of {', '.join(MECHANISMS)}"
    )


def choose(offered: str | bytes | bytearray | memoryview, wanted: str) -> str:
    """Check that the broker offers the mechanism the client wants.

    Args:
        offered: the ``mechanisms`` field of connection.start, a
            space-separated list such as ``b"AMQPLAIN PLAIN"``.
        wanted: the mechanism name the client is configured with, in any
            case.

    Returns:
        ``wanted`` in upper case, ready for connection.start-ok.

    Raises:
        AuthenticationError: the broker does not offer ``wanted``; the
            message lists what it does offer. Its reply code is 403
            (access-refused), as when the broker refuses a login.
    """
    if isinstance(offered, str):
        text = offered
    else:
        text = bytes(offered).decode("utf-8", "replace")
    names = text.split()
    key = wanted.upper()
    if key in names:
        return key
    offers = " ".join(names) if names else "none"
    raise AuthenticationError(
        None,
        f"the broker does not offer the {key} authentication mechanism "
        f"(it offers: {offers})",
    )
