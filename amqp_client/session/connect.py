"""What ``connect()`` takes, and connecting as a plan of steps.

Both fronts' ``connect()`` check their arguments here (before any I/O) and
reach a broker by driving :func:`connect_plan`: a generator that yields the
endpoint to try next and is sent how that try ended, then raises the one
error that says why no endpoint answered. How a front dials (a socket and
a thread, or ``loop.create_connection``) and how it waits is its own; the
order, the failures and the final error are decided here, once.

No I/O here.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from amqp_client import auth, checks, uri
from amqp_client._spec_base import check_timeout
from amqp_client.auth import Credentials
from amqp_client.errors import ConnectionLost
from amqp_client.protocol.core import DEFAULT_MAX_MESSAGE_SIZE
from amqp_client.session.consumers import (
    DEFAULT_MAX_BUFFERED_BYTES,
    DEFAULT_MAX_BUFFERED_MESSAGES,
)
from amqp_client.session.credentials import CredentialsSource, check_source
from amqp_client.session.recovery import RecoveryOptions
from amqp_client.telemetry import check_telemetry

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = [
    "ConnectKeywords",
    "ConnectOptions",
    "check_timeout",
    "connect_arguments",
    "connect_error",
    "connect_plan",
    "endpoints",
    "parse_connect",
]

#: One try: the endpoint, and (sent back) None on success or its failure.
ConnectPlan = Generator[uri.ConnectionParameters, BaseException | None, None]


class ConnectOptions:
    """What a connection needs besides its endpoints (checked at once)."""

    __slots__ = (
        "backoff",
        "busy_poll",
        "credentials",
        "max_buffered_bytes",
        "max_buffered_messages",
        "max_message_size",
        "meter_provider",
        "recovery",
        "telemetry",
        "tracer_provider",
    )

    def __init__(
        self,
        recovery: RecoveryOptions | None = None,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        max_buffered_messages: int = DEFAULT_MAX_BUFFERED_MESSAGES,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        credentials: CredentialsSource | None = None,
        backoff: RecoveryOptions | None = None,
        *,
        telemetry: bool = True,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        busy_poll: float = 0.0,
    ) -> None:
        check_telemetry(telemetry, tracer_provider, meter_provider)
        #: How long a caller waiting for a reply polls the socket before it
        #: sleeps, seconds (0: it sleeps at once).
        self.busy_poll = checks.busy_poll(busy_poll)
        #: Report to OpenTelemetry (when opentelemetry-api is installed).
        self.telemetry = telemetry
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.recovery = recovery
        #: The delays between tries of something failing (recovery's, also
        #: when recovery is off: a failing credentials refresh uses them).
        self.backoff = backoff or recovery or RecoveryOptions()
        self.credentials = check_source(credentials)
        self.max_buffered_bytes = checks.at_least_one(
            "max_buffered_bytes", max_buffered_bytes
        )
        self.max_buffered_messages = checks.at_least_one(
            "max_buffered_messages", max_buffered_messages
        )
        self.max_message_size = checks.at_least_one(
            "max_message_size", max_message_size
        )


def connect_plan(
    order: Sequence[uri.ConnectionParameters], closing: Callable[[], bool]
) -> ConnectPlan:
    """Try each endpoint of ``order`` until one answers.

    Yields the endpoint to dial; the front sends back None when the
    connection is open, or the ``ConnectionLost``/``TimeoutError`` it
    failed with. ``closing()`` True stops the plan (the application
    closed the connection meanwhile).

    Raises:
        ConnectionLost, TimeoutError: no endpoint answered (see
            :func:`connect_error`).
    """
    failures: list[tuple[str, BaseException]] = []
    for params in order:
        if closing():
            raise ConnectionLost("the connection was closed by the application")
        failure = yield params
        if failure is None:
            return
        failures.append((params.address, failure))
    raise connect_error(failures)


class ConnectKeywords(TypedDict, total=False):
    """The keyword arguments of both fronts' ``connect()``; each overrides
    what the URL says (see ``amqp_client.connect`` for what they do).

    Keys: hosts, shuffle, recover, recovery_delay (0.5 s),
    recovery_max_delay (10 s), recovery_attempts (None: no limit),
    heartbeat, frame_max, channel_max, ssl, auth_mechanism,
    client_properties, connection_name, connection_timeout, locale,
    max_buffered_bytes (64 MiB), max_buffered_messages (20,000),
    max_message_size (128 MiB), credentials (a ``Credentials`` or a
    callable returning one; an async one in asyncio only), telemetry (True:
    report to OpenTelemetry when opentelemetry-api is installed),
    tracer_provider and meter_provider (None: the global ones),
    busy_poll (0 s: off; at most 0.01 s).
    """

    hosts: Sequence[str] | None
    shuffle: bool
    recover: bool
    recovery_delay: float
    recovery_max_delay: float
    recovery_attempts: int | None
    heartbeat: int | None
    frame_max: int | None
    channel_max: int | None
    ssl: bool | ssl.SSLContext | None
    auth_mechanism: str | None
    client_properties: Mapping[str, Any] | None
    connection_name: str | None
    connection_timeout: float | None
    locale: str | None
    max_buffered_bytes: int
    max_buffered_messages: int
    max_message_size: int
    telemetry: bool
    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None
    credentials: CredentialsSource | None
    busy_poll: float


def parse_connect(
    url: str | Sequence[str] | None, keywords: ConnectKeywords
) -> tuple[list[uri.ConnectionParameters], ConnectOptions]:
    """Check ``connect(url, **keywords)`` (before any I/O): the endpoints
    to try and the connection's options.

    Raises:
        TypeError, ValueError: a malformed URL or argument, or an unknown
            keyword.
    """
    for name in keywords:
        if name not in ConnectKeywords.__optional_keys__:
            raise TypeError(f"connect() got an unexpected keyword argument {name!r}")
    params, options = connect_arguments(
        url,
        keywords.get("hosts"),
        keywords.get("shuffle", False),
        keywords.get("recover", False),
        keywords.get("recovery_delay", 0.5),
        keywords.get("recovery_max_delay", 10.0),
        keywords.get("recovery_attempts"),
        keywords.get("max_buffered_bytes", DEFAULT_MAX_BUFFERED_BYTES),
        keywords.get("max_buffered_messages", DEFAULT_MAX_BUFFERED_MESSAGES),
        keywords.get("max_message_size", DEFAULT_MAX_MESSAGE_SIZE),
        credentials=keywords.get("credentials"),
        heartbeat=keywords.get("heartbeat"),
        frame_max=keywords.get("frame_max"),
        channel_max=keywords.get("channel_max"),
        ssl=keywords.get("ssl"),
        auth_mechanism=keywords.get("auth_mechanism"),
        client_properties=keywords.get("client_properties"),
        connection_name=keywords.get("connection_name"),
        connection_timeout=keywords.get("connection_timeout"),
        locale=keywords.get("locale"),
    )
    telemetry = keywords.get("telemetry", True)
    tracer_provider = keywords.get("tracer_provider")
    meter_provider = keywords.get("meter_provider")
    check_telemetry(telemetry, tracer_provider, meter_provider)
    options.telemetry = telemetry
    options.tracer_provider = tracer_provider
    options.meter_provider = meter_provider
    options.busy_poll = checks.busy_poll(keywords.get("busy_poll", 0.0))
    return params, options


def connect_arguments(
    url: str | Sequence[str] | None,
    hosts: Sequence[str] | None,
    shuffle: bool,
    recover: bool,
    recovery_delay: float,
    recovery_max_delay: float,
    recovery_attempts: int | None,
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    max_buffered_messages: int = DEFAULT_MAX_BUFFERED_MESSAGES,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    credentials: CredentialsSource | None = None,
    **overrides: Any,
) -> tuple[list[uri.ConnectionParameters], ConnectOptions]:
    """Check what both fronts' ``connect()`` take (before any I/O).

    Raises:
        TypeError, ValueError: a malformed URL or argument.
    """
    for name, flag in (("shuffle", shuffle), ("recover", recover)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name}: expected bool, got {type(flag).__name__}")
    params = endpoints(url, hosts, shuffle, overrides)
    credentials = check_source(credentials)
    if isinstance(credentials, Credentials):
        # Fixed credentials the auth mechanism cannot carry fail here, as a
        # URL's would (a provider's answers are checked when they come).
        for endpoint in params:
            auth.mechanism_for(
                endpoint.auth_mechanism, credentials.username, credentials.password
            )
    # Checked whether or not recovery is on: a bad value is a bug either way.
    options = RecoveryOptions(recovery_delay, recovery_max_delay, recovery_attempts)
    recovery = options if recover else None
    return params, ConnectOptions(
        recovery,
        max_buffered_bytes,
        max_buffered_messages,
        max_message_size,
        credentials=credentials,
        backoff=options,
    )


def endpoints(
    url: str | Sequence[str] | None,
    hosts: Sequence[str] | None,
    shuffle: bool,
    overrides: Mapping[str, Any],
) -> list[uri.ConnectionParameters]:
    """The brokers to try, in order: each URL of ``url`` (one or a list),
    then each ``"host"`` or ``"host:port"`` of ``hosts`` with the first
    URL's other settings. Keyword ``overrides`` apply to all.

    Raises:
        ValueError, TypeError: a malformed URL, host or argument.
    """
    if url is None:
        urls = ["amqp://"]
    elif isinstance(url, str):
        urls = [url]
    else:
        urls = list(url)
        if not urls:
            raise ValueError("url: an empty list of URLs")
        for item in urls:
            if not isinstance(item, str):
                raise TypeError(f"url: expected str items, got {type(item).__name__}")
    result = [uri.parse_url(item).with_overrides(**overrides) for item in urls]
    if hosts is not None:
        if isinstance(hosts, str):
            raise TypeError("hosts: expected a list of 'host' or 'host:port' strings")
        base = result[0]
        if url is None:
            result = []
        for host in hosts:
            result.append(_with_host(base, host))
        if not result:
            raise ValueError("hosts: an empty list")
    if shuffle:
        random.shuffle(result)
    return result


def _with_host(base: uri.ConnectionParameters, host: str) -> uri.ConnectionParameters:
    if not isinstance(host, str):
        raise TypeError(f"hosts: expected str items, got {type(host).__name__}")
    name, port = host, None
    if host.startswith("["):  # [IPv6]:port
        close = host.find("]")
        if close < 0:
            raise ValueError(f"hosts: unclosed '[' in {host!r}")
        name, rest = host[1:close], host[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"hosts: malformed {host!r}")
            port = rest[1:]
    elif host.count(":") == 1:
        name, port = host.split(":")
    if port is not None:
        # ASCII digits only: int() reads full-width digits (U+FF10..) too.
        if not (port.isascii() and port.isdigit()):
            raise ValueError(f"hosts: the port of {host!r} is not a number")
        digits = port.lstrip("0") or "0"
        if len(digits) > 5:  # out of range; and int() refuses 4,300 digits
            raise ValueError(f"hosts: the port of {host!r} is over 65535")
        return base.replace(host=name, port=int(digits))
    return base.replace(host=name, port=None)


def connect_error(
    failures: Sequence[tuple[str, BaseException]],
) -> BaseException:
    """The one error that says why no endpoint could be reached.

    One endpoint: its own error. Several: a TimeoutError if every attempt
    timed out, else ConnectionLost; the message names each address and why.
    """
    if len(failures) == 1:
        return failures[0][1]
    detail = "; ".join(f"{address}: {_reason(exc)}" for address, exc in failures)
    message = f"cannot connect to any of {len(failures)} brokers ({detail})"
    if all(isinstance(exc, TimeoutError) for _, exc in failures):
        return TimeoutError(message)
    return ConnectionLost(message)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text or type(exc).__name__
