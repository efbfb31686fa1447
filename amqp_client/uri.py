"""AMQP URIs and the connection parameters they describe.

:func:`parse_url` reads ``amqp://`` and ``amqps://`` URIs as the RabbitMQ
URI specification defines them (https://www.rabbitmq.com/docs/uri-spec)::

    amqp[s]://[username[:password]@]host[:port][/vhost][?key=value&...]

into a :class:`ConnectionParameters`; keyword arguments to ``connect()``
then override the URL through :meth:`ConnectionParameters.with_overrides`.

How the parts read (the URI spec's table of examples holds for all of
them but the vhost of a lone ``/``):

* The scheme is case-insensitive. ``amqps`` means TLS and port 5671;
  ``amqp`` port 5672.
* A part that is absent takes its default: host ``localhost``, user and
  password ``guest``, vhost ``/``. A part that is present but empty is
  empty: ``amqp://:@host`` logs in as ``""`` with password ``""``.
* The vhost is the path after the authority with its leading ``/``
  removed, percent-decoded; an empty result means the default vhost ``/``.
  This is amqp091-go's rule (its uri.go), so a URL that works with the Go
  client works here, and it differs from the RabbitMQ URI spec, which reads
  ``amqp://host/`` as the *empty* vhost (a vhost RabbitMQ never has):

  =========================  =========  ================================
  URL                        vhost      why
  =========================  =========  ================================
  ``amqp://host``            ``/``      no path: the default
  ``amqp://host/``           ``/``      a lone ``/``: the default
  ``amqp://host/%2f``        ``/``      ``%2f`` (any case) is ``/``
  ``amqp://host//``          ``/``      the ``/`` after the first one
  ``amqp://host/vh``         ``vh``
  ``amqp://host/a%2fb``      ``a/b``
  ``amqp://host/a/b``        ``a/b``    an unencoded ``/`` is kept too
  ``amqp://host/%2Fprod``    ``/prod``
  =========================  =========  ================================

  The empty vhost ``""`` has no URL; ``ConnectionParameters(vhost="")``
  still sets it.
* User name, password and host are percent-decoded as UTF-8 too, so a
  password with ``@``, ``:``, ``/``, ``?`` or ``#`` works when those are
  written ``%40``, ``%3A``, ``%2F``, ``%3F``, ``%23``. A ``%`` that does not
  start a ``%XX`` escape is an error, not a literal.
* An IPv6 host is written in brackets, ``amqp://[::1]:5673``; the
  :attr:`~ConnectionParameters.host` attribute holds it without them.
* The port is ASCII digits. A host may be an internationalised name, but
  not one with a non-ASCII digit or a character that stands for an ASCII
  one (``127.0.0.1`` written in full-width digits, U+FF11 and so on):
  name resolution would silently read it as another host.
* Query keys are the ones RabbitMQ's URI query parameters page gives the
  Erlang client (https://www.rabbitmq.com/docs/uri-query-parameters):
  ``heartbeat`` (seconds), ``frame_max``, ``channel_max``,
  ``connection_timeout`` (**milliseconds** in the URL, as RabbitMQ,
  amqp091-go and lapin read it; the attribute is seconds, at most
  :data:`MAX_CONNECTION_TIMEOUT`) and ``auth_mechanism`` (``plain``,
  ``amqplain``, ``external``, any case).
* On an ``amqps`` URL, also the TLS keys of that page (amqp091-go reads
  them too; pika has none, it takes a Python literal ``ssl_options``);
  they are an error on an ``amqp`` URL:

  ==========================  ============================================
  key                         effect
  ==========================  ============================================
  ``cacertfile``              PEM file of the CAs that verify the server
                              (instead of the system's CAs)
  ``certfile``                PEM client certificate (its key too, unless
                              ``keyfile`` is given)
  ``keyfile``                 PEM private key of ``certfile``; not
                              encrypted
  ``verify``                  ``verify_peer`` (the default) or
                              ``verify_none`` (no certificate or host name
                              check: for tests only)
  ``server_name_indication``  the name sent as SNI and checked against the
                              server certificate, when it is not the host
                              (:attr:`~ConnectionParameters.server_hostname`);
                              Erlang's ``disable`` is an error
  ==========================  ============================================

  Files are looked for when the URL is parsed (relative to the working
  directory); the first four keys make the URL's
  :attr:`~ConnectionParameters.ssl_context`. An ``ssl=`` context passed to
  ``connect()`` replaces it.
* Any other key (RabbitMQ's other TLS keys included: those settings go in
  an ``ssl.SSLContext``) is an error, and so is a key given twice.

Rules:

* Every malformed value raises ``ValueError`` (``TypeError`` for a wrong
  type passed as a keyword) whose message starts with the name of the part
  or key at fault, such as ``heartbeat: expected a non-negative integer,
  got 'abc'``. URL errors then quote the URL with the password replaced by
  ``***``.
* The password never appears in a repr, a str, an exception message or a
  log record (this module does not log). An error about the password says
  what is wrong with it without showing it.
* An ``amqps`` URL asks for TLS: ``connect()``'s ``ssl=False`` on it is a
  ``ValueError``, never a silent fall-back to plain text (and the password
  sent in the clear).
* No network I/O: nothing here resolves names or opens sockets. The TLS
  keys' files are read when the URL is parsed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import ssl
import unicodedata
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypedDict, TypeVar, Unpack
from urllib.parse import quote, unquote

from amqp_client import checks
from amqp_client.auth import MECHANISMS
from amqp_client.wire import encode_table

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TLS_PORT",
    "MAX_CONNECTION_TIMEOUT",
    "ConnectionParameters",
    "parse_url",
]

_T = TypeVar("_T")

#: The IANA port of AMQP over TCP.
DEFAULT_PORT = 5672
#: The IANA port of AMQP over TLS.
DEFAULT_TLS_PORT = 5671

_DEFAULT_CONNECTION_TIMEOUT = 10.0
#: The largest ``connection_timeout``, in seconds (about 31 years): more
#: than any wait needs, and within what socket and thread timeouts hold
#: (1e20 overflows them). ``None`` waits forever.
MAX_CONNECTION_TIMEOUT = 1e9


_SCHEMES = {"amqp": False, "amqps": True}
# More digits than any URL integer needs (connection_timeout's maximum in
# milliseconds has 13).
_MAX_DIGITS = 20
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://", re.ASCII)
# Percent-encoding is "%" HEXDIG HEXDIG (RFC 3986 §2.1).
_BAD_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_BAD_HOST_CHARS = frozenset(" \t\r\n/?#@[]\\")
# Dots that IDNA (RFC 3490 §3.1) reads as "." without NFKC saying so.
_IDNA_DOTS = frozenset("\u3002\uff0e\uff61")

_QUERY_KEYS = (
    "auth_mechanism",
    "channel_max",
    "connection_timeout",
    "frame_max",
    "heartbeat",
)
# The TLS keys an amqps URL may have (RabbitMQ's URI query parameters,
# also read by amqp091-go).
_TLS_KEYS = (
    "cacertfile",
    "certfile",
    "keyfile",
    "server_name_indication",
    "verify",
)
_VERIFY_VALUES = ("verify_peer", "verify_none")
# RabbitMQ's other Erlang-client TLS keys: named in the error so the user
# knows where that setting goes instead.
_OTHER_TLS_KEYS = frozenset({"depth", "fail_if_no_peer_cert", "password"})


class _Fields(TypedDict, total=False):
    """The keyword arguments :meth:`ConnectionParameters.replace` takes."""

    tls: bool
    host: str
    port: int | None
    username: str
    password: str
    vhost: str
    heartbeat: int | None
    frame_max: int | None
    channel_max: int | None
    connection_timeout: float | None
    auth_mechanism: str
    locale: str
    connection_name: str | None
    client_properties: Mapping[str, object] | None
    ssl_context: ssl.SSLContext | None
    server_hostname: str | None


class _Overrides(TypedDict, total=False):
    """The keyword arguments :meth:`ConnectionParameters.with_overrides`
    takes: the fields, ``None`` meaning "keep", plus ``ssl``."""

    tls: bool | None
    ssl: bool | ssl.SSLContext | None
    host: str | None
    port: int | None
    username: str | None
    password: str | None
    vhost: str | None
    heartbeat: int | None
    frame_max: int | None
    channel_max: int | None
    connection_timeout: float | None
    auth_mechanism: str | None
    locale: str | None
    connection_name: str | None
    client_properties: Mapping[str, object] | None
    ssl_context: ssl.SSLContext | None
    server_hostname: str | None


def _default_port(tls: bool) -> int:
    return DEFAULT_TLS_PORT if tls else DEFAULT_PORT


def _check_timeout(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise checks.type_error("connection_timeout", "a number of seconds", value)
    # An int is checked as an int: float(10**400) and math.isfinite(10**400)
    # raise OverflowError, and its repr may be too long to make.
    if not value > 0:  # NaN included
        raise ValueError(
            f"connection_timeout: expected a positive number of seconds, got {value!r}"
        )
    if value > MAX_CONNECTION_TIMEOUT:
        raise ValueError(
            "connection_timeout: more than the maximum of "
            f"{MAX_CONNECTION_TIMEOUT:.0e} seconds (None waits forever)"
        )
    return float(value)


def _disguised_ascii(char: str) -> bool:
    """True for a non-ASCII character that name resolution could read as
    ASCII: a digit of another script, or a compatibility form (full-width
    U+FF11 is ``1`` after NFKC, which IDNA applies)."""
    if char.isascii():
        return False
    if char.isdigit() or char in _IDNA_DOTS:
        return True
    return any(c.isascii() for c in unicodedata.normalize("NFKC", char))


def _check_host(value: object, key: str = "host") -> str:
    host = checks.text(key, value)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError(f"{key}: empty")
    if ":" in host:
        # Only an IPv6 literal (with an optional %zone) has colons.
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            ok = False
        else:
            ok = True
        if not ok:
            raise ValueError(
                f"{key}: {host!r} is neither a host name nor an IPv6 address"
            )
    elif any(c in _BAD_HOST_CHARS or not c.isprintable() for c in host):
        raise ValueError(f"{key}: {host!r} is not a valid host name")
    elif any(_disguised_ascii(c) for c in host):
        raise ValueError(
            f"{key}: {host!r} has a non-ASCII digit or a full-width form of "
            "an ASCII character; write it in ASCII"
        )
    return host


def _check_mechanism(value: object) -> str:
    name = checks.text("auth_mechanism", value).upper()
    if name not in MECHANISMS:
        raise ValueError(
            f"auth_mechanism: unknown mechanism {value!r}; "
            f"expected one of {', '.join(MECHANISMS)}"
        )
    return name


def _check_client_properties(value: object) -> Mapping[str, object] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise checks.type_error("client_properties", "a mapping", value)
    # Fail now, not at connection.start-ok: encode it once.
    encode_table(value, "client_properties")
    return MappingProxyType(dict(value))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, init=False, repr=False)
class ConnectionParameters:
    """Where and how to connect: the parsed URL plus keyword overrides.

    Build one with :func:`parse_url`, or directly with keyword arguments
    (every one has a default, so ``ConnectionParameters()`` is
    ``amqp://guest:guest@localhost:5672/%2F``). Instances are immutable and
    validated on construction; derive changed copies with :meth:`replace`
    or :meth:`with_overrides`.

    Attributes:
        tls: connect over TLS (the ``amqps`` scheme).
        host: host name or IP address; an IPv6 address without brackets.
        port: TCP port, 1..65535. Passing ``None`` (the default) picks 5671
            with TLS and 5672 without.
        username: user name for the SASL mechanism.
        password: password for the SASL mechanism; shown as ``'***'``.
        vhost: virtual host; ``"/"`` by default, may be ``""``.
        heartbeat: heartbeat interval to ask for, in seconds, 0..65535.
            RabbitMQ's negotiation applies: if either side says 0 the larger
            value wins, else the smaller; so ``None`` or 0 accept the
            broker's proposal, and heartbeats are off only when both sides
            say 0.
        frame_max: largest frame to ask for, 0 (no limit) or
            4096..4294967295; ``None`` accepts the broker's proposal.
        channel_max: most channels to ask for, 0 (no limit) or up to 65535;
            ``None`` accepts the broker's proposal.
        connection_timeout: seconds for the TCP connect, the TLS handshake
            and the AMQP handshake together, at most
            :data:`MAX_CONNECTION_TIMEOUT`; ``None`` waits forever.
            Default 10.
        auth_mechanism: ``"PLAIN"`` (default), ``"AMQPLAIN"`` or
            ``"EXTERNAL"``; stored upper case.
        locale: the locale for connection.start-ok, default ``"en_US"``.
        connection_name: sent as the ``connection_name`` client property
            (shown in the management UI), or ``None``.
        client_properties: extra client properties (a read-only copy), or
            ``None``.
        ssl_context: the ``ssl.SSLContext`` for TLS, or ``None`` for one
            that verifies the server against the system CAs. Requires
            ``tls``.
        server_hostname: the name sent in TLS SNI and checked against the
            server certificate (the URL's ``server_name_indication``), or
            ``None`` for :attr:`host`. Requires ``tls``.

    Raises:
        TypeError: a value has the wrong type (``heartbeat="30"``).
        ValueError: a value is out of range; the message starts with the
            attribute's name and never shows the password.
    """

    tls: bool = False
    host: str = "localhost"
    port: int = DEFAULT_PORT
    username: str = "guest"
    password: str = "guest"
    vhost: str = "/"
    heartbeat: int | None = None
    frame_max: int | None = None
    channel_max: int | None = None
    connection_timeout: float | None = _DEFAULT_CONNECTION_TIMEOUT
    auth_mechanism: str = "PLAIN"
    locale: str = "en_US"
    connection_name: str | None = None
    client_properties: Mapping[str, object] | None = dataclasses.field(
        default=None, hash=False
    )
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None

    def __init__(
        self,
        *,
        tls: bool = False,
        host: str = "localhost",
        port: int | None = None,
        username: str = "guest",
        password: str = "guest",
        vhost: str = "/",
        heartbeat: int | None = None,
        frame_max: int | None = None,
        channel_max: int | None = None,
        connection_timeout: float | None = _DEFAULT_CONNECTION_TIMEOUT,
        auth_mechanism: str = "PLAIN",
        locale: str = "en_US",
        connection_name: str | None = None,
        client_properties: Mapping[str, object] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        if not isinstance(tls, bool):
            raise checks.type_error("tls", "bool", tls)
        if ssl_context is not None:
            if not isinstance(ssl_context, ssl.SSLContext):
                raise checks.type_error("ssl_context", "ssl.SSLContext", ssl_context)
            if not tls:
                raise ValueError("ssl_context: given for a connection without TLS")
        if server_hostname is not None:
            _check_host(server_hostname, "server_hostname")
            if not tls:
                raise ValueError("server_hostname: given for a connection without TLS")
        port = _default_port(tls) if port is None else port
        if connection_name is not None:
            checks.text("connection_name", connection_name)
        values = {
            "tls": tls,
            "host": _check_host(host),
            "port": checks.integer("port", port, 1, checks.U16_MAX),
            "username": checks.text("username", username),
            "password": checks.text("password", password),
            "vhost": checks.shortstr("vhost", vhost),
            "heartbeat": checks.optional_integer(
                "heartbeat", heartbeat, 0, checks.U16_MAX
            ),
            "frame_max": checks.frame_max(frame_max),
            "channel_max": checks.optional_integer(
                "channel_max", channel_max, 0, checks.U16_MAX
            ),
            "connection_timeout": _check_timeout(connection_timeout),
            "auth_mechanism": _check_mechanism(auth_mechanism),
            "locale": checks.shortstr("locale", locale),
            "connection_name": connection_name,
            "client_properties": _check_client_properties(client_properties),
            "ssl_context": ssl_context,
            "server_hostname": server_hostname,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "password":
                parts.append("password='***'")
            elif f.name == "client_properties" and value is not None:
                parts.append(f"client_properties={dict(value)!r}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    @property
    def address(self) -> str:
        """``"host:port"`` for messages, an IPv6 host in brackets:
        ``"[::1]:5672"``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def redacted_url(self) -> str:
        """This connection as an AMQP URI with the password shown as ``***``.

        Scheme, user, host, port and vhost are always written out (the vhost
        percent-encoded, so ``/`` is ``%2F``); the query holds
        ``heartbeat``, ``frame_max`` and ``channel_max`` when set,
        ``connection_timeout`` (in milliseconds) when not the default 10 s,
        ``auth_mechanism`` when not PLAIN and ``server_name_indication``
        when :attr:`server_hostname` is set. Parsing it back gives the same
        URL-expressible parameters (only the password differs) except the
        ``ssl_context``: the URL's TLS file keys are not written back. The
        empty vhost ``""`` has no URL: its ``.../`` reads back as ``/``.
        """
        scheme = "amqps" if self.tls else "amqp"
        user = quote(self.username, safe="")
        host = quote(self.host, safe=":")  # a %zone becomes %25zone
        if ":" in self.host:
            host = f"[{host}]"
        url = f"{scheme}://{user}:***@{host}:{self.port}/{quote(self.vhost, safe='')}"
        query = []
        for key in ("heartbeat", "frame_max", "channel_max"):
            value = getattr(self, key)
            if value is not None:
                query.append(f"{key}={value}")
        timeout = self.connection_timeout
        if timeout is not None and timeout != _DEFAULT_CONNECTION_TIMEOUT:
            millis = max(1, round(timeout * 1000))
            query.append(f"connection_timeout={millis}")
        if self.auth_mechanism != "PLAIN":
            query.append(f"auth_mechanism={self.auth_mechanism.lower()}")
        if self.server_hostname is not None:
            sni = quote(self.server_hostname, safe=":")
            query.append(f"server_name_indication={sni}")
        return url + ("?" + "&".join(query) if query else "")

    def replace(self, **changes: Unpack[_Fields]) -> ConnectionParameters:
        """A copy with the given attributes changed, validated like the
        constructor.

        Two attributes follow others unless given too: a non-``None``
        ``ssl_context`` turns ``tls`` on, and when ``tls`` changes, a port
        that is the old scheme's default becomes the new one's (so
        ``parse_url("amqp://h").replace(tls=True).port == 5671``).
        ``port=None`` means the scheme's default port.

        Raises:
            TypeError: an unknown attribute name or a value of the wrong
                type.
            ValueError: a value out of range (see the class).
        """
        unknown = sorted(set(changes) - _FIELD_NAMES)
        if unknown:
            raise TypeError(
                f"{unknown[0]}: not a connection parameter; expected one of "
                f"{', '.join(sorted(_FIELD_NAMES))}"
            )
        values: dict[str, Any] = {n: getattr(self, n) for n in _FIELD_NAMES}
        values.update(changes)
        if changes.get("ssl_context") is not None and "tls" not in changes:
            values["tls"] = True
        tls = values["tls"]
        if (
            "port" not in changes
            and isinstance(tls, bool)
            and tls != self.tls
            and self.port == _default_port(self.tls)
        ):
            values["port"] = _default_port(tls)
        return ConnectionParameters(**values)

    def with_overrides(self, **overrides: Unpack[_Overrides]) -> ConnectionParameters:
        """Apply ``connect()``'s keyword arguments over these (URL) values.

        A keyword whose value is ``None`` means "not given" and keeps the
        current value, so ``connect()`` can pass all its keywords straight
        through; use :meth:`replace` to set an attribute to ``None``.
        ``ssl`` is ``connect()``'s spelling: ``True``/``False`` set ``tls``,
        an ``ssl.SSLContext`` sets ``ssl_context`` (replacing one the URL's
        TLS keys made) and turns TLS on. ``ssl=False`` (or ``tls=False``)
        on TLS parameters (an ``amqps`` URL) is an error, not a fall-back to
        plain text.

        Raises:
            TypeError: an unknown keyword, or a value of the wrong type.
            ValueError: a value out of range (see the class), or
                ``ssl=False``/``tls=False`` over TLS parameters.
        """
        given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        if "ssl" in given:
            value = given.pop("ssl")
            if isinstance(value, ssl.SSLContext):
                given.setdefault("ssl_context", value)
                given.setdefault("tls", True)
            elif isinstance(value, bool):
                given.setdefault("tls", value)
            else:
                raise checks.type_error("ssl", "bool or ssl.SSLContext", value)
            if self.tls and value is False:
                raise _plain_text_error("ssl")
        if self.tls and given.get("tls") is False:
            raise _plain_text_error("tls")
        return self.replace(**given)


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(ConnectionParameters))


def _plain_text_error(key: str) -> ValueError:
    return ValueError(
        f"{key}: False, but the URL is amqps://, which asks for TLS; connecting "
        "without it would send the credentials in plain text. Use an amqp:// "
        "URL to connect without TLS"
    )


# --------------------------------------------------------------------------
# Parsing


def _redact_text(url: str) -> str:
    """``url`` as an error message may quote it: the password and the values
    of unknown query keys replaced by ``***``.

    Works on text that does not parse: everything between the first ``:``
    after the scheme and the *last* ``@`` is hidden, so a password with an
    unencoded ``/``, ``?``, ``#`` or ``@`` is still covered (at worst more
    than the password is hidden). Without an ``@``, a "port" that is not a
    number is hidden too: it is likely a password whose host was left out.
    """
    match = _SCHEME_RE.match(url)
    start = match.end() if match else 0
    head, rest = url[:start], url[start:]
    at = rest.rfind("@")
    if at >= 0:
        userinfo = rest[:at]
        colon = userinfo.find(":")
        if colon >= 0:
            head += userinfo[:colon] + ":***"
            rest = rest[at:]
    else:
        # "amqp://user:secret" (the "@host" forgotten) reads as host "user"
        # and port "secret": hide a port that is not a number.
        end = min(
            (i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest)
        )
        authority = rest[:end]
        if authority.startswith("["):  # an IPv6 literal: look after the "]"
            close = authority.find("]") + 1 or len(authority)
            host, after = authority[:close], authority[close:]
            port = after[1:] if after.startswith(":") else ""
        else:
            host, _, port = authority.partition(":")
        if port and not (port.isascii() and port.isdigit()):
            head += host + ":***"
            rest = rest[end:]
    before, sep, query = rest.partition("?")
    if sep:
        items = []
        for item in query.split("&"):
            key, eq, _ = item.partition("=")
            if eq and unquote(key) not in _QUERY_KEYS + _TLS_KEYS:
                item = key + "=***"
            items.append(item)
        rest = before + "?" + "&".join(items)
    return head + rest


def _unquote(text: str, key: str, *, secret: bool = False) -> str:
    """Percent-decode one URI part as UTF-8; errors name ``key`` and show
    the text only if it is not ``secret``."""
    shown = "" if secret else f" in {text!r}"
    if _BAD_PERCENT_RE.search(text):
        raise ValueError(
            f"{key}: '%' not followed by two hex digits{shown} (write '%' as %25)"
        )
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        pass
    # Raised outside the except block so the UnicodeDecodeError, which holds
    # the decoded bytes, is not chained to it.
    raise ValueError(f"{key}: percent-encoded bytes are not UTF-8{shown}")


def _parse_uint(key: str, text: str) -> int:
    # str.isdigit() alone accepts "²" and int() accepts "+1", " 1", "1_0".
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{key}: expected a non-negative integer, got {text!r}")
    digits = text.lstrip("0") or "0"
    if len(digits) > _MAX_DIGITS:
        # Past every limit; and int() refuses 4,300 digits and more.
        raise ValueError(f"{key}: {text[:_MAX_DIGITS]}... is too large")
    # Leading zeros stripped for the same reason: "000...07" is 7.
    return int(digits)


def _parse_host_port(hostport: str, values: dict[str, Any]) -> None:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError("host: '[' without a closing ']'")
        host_text, after = hostport[1:end], hostport[end + 1 :]
        if after and not after.startswith(":"):
            raise ValueError(f"host: unexpected {after!r} after ']'")
        port_text = after[1:]
        host = _unquote(host_text, "host")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            ok = False
        else:
            ok = True
        if not ok:
            raise ValueError(f"host: [{host_text}] is not an IPv6 address")
    else:
        host_text, _, port_text = hostport.partition(":")
        if ":" in port_text:
            raise ValueError("host: an IPv6 address must be written in brackets")
        host = _unquote(host_text, "host")
    if host:
        values["host"] = host
    if port_text:
        # The port text is not quoted back: with a mis-encoded password it
        # could be a piece of it. The redacted URL shows it.
        digits = port_text.lstrip("0") or "0"
        # More than 5 digits is out of range, and int() refuses 4,300.
        if not (port_text.isascii() and port_text.isdigit()) or len(digits) > 5:
            raise ValueError("port: expected an integer from 1 to 65535")
        values["port"] = int(digits)


def _parse_query(query: str, tls: bool) -> dict[str, str]:
    """The query's items, decoded and checked for unknown, repeated and
    valueless keys (TLS keys only when ``tls``)."""
    items: dict[str, str] = {}
    for item in query.split("&"):
        if not item:
            continue  # "?", "a=1&", "a=1&&b=2"
        key_text, eq, value_text = item.partition("=")
        key = _unquote(key_text, "query key")
        if key in _TLS_KEYS and not tls:
            raise ValueError(
                f"{key}: a TLS setting in an amqp:// URL; use amqps:// for TLS"
            )
        if key not in _QUERY_KEYS + _TLS_KEYS:
            hint = (
                "; other TLS settings go in an ssl.SSLContext passed as ssl="
                if key in _OTHER_TLS_KEYS
                else ""
            )
            raise ValueError(
                f"{key}: unknown URL query parameter; expected one of "
                f"{', '.join(_QUERY_KEYS)} (and on amqps:// "
                f"{', '.join(_TLS_KEYS)}){hint}"
            )
        if key in items:
            raise ValueError(f"{key}: given more than once in the URL query")
        if not eq:
            raise ValueError(f"{key}: no value (expected {key}=...)")
        items[key] = _unquote(value_text, key)
    return items


def _query_values(items: Mapping[str, str], values: dict[str, Any]) -> None:
    """Put the non-TLS query items into ``values``, as the class takes them."""
    for key in _QUERY_KEYS:
        value = items.get(key)
        if value is None:
            continue
        if key == "auth_mechanism":
            values[key] = value  # validated (and upper-cased) by the class
        elif key == "connection_timeout":
            millis = _parse_uint(key, value)
            if millis == 0:
                raise ValueError(
                    f"{key}: expected a positive number of milliseconds, got '0'"
                )
            if millis > MAX_CONNECTION_TIMEOUT * 1000:
                raise ValueError(
                    f"{key}: more than the maximum of "
                    f"{MAX_CONNECTION_TIMEOUT * 1000:.0e} milliseconds"
                )
            values[key] = millis / 1000
        else:
            values[key] = _parse_uint(key, value)


def _tls_file(items: Mapping[str, str], key: str) -> str | None:
    path = items.get(key)
    if path is None:
        return None
    if not path:
        raise ValueError(f"{key}: empty (expected a file path)")
    if not os.path.isfile(path):
        raise ValueError(f"{key}: no such file: {path!r}")
    return path


def _tls_context(items: Mapping[str, str]) -> ssl.SSLContext | None:
    """The ``ssl.SSLContext`` the URL's TLS keys describe, or ``None``
    (the default context) when they leave everything at its default."""
    cafile = _tls_file(items, "cacertfile")
    certfile = _tls_file(items, "certfile")
    keyfile = _tls_file(items, "keyfile")
    verify = items.get("verify")
    if verify is not None and verify.lower() not in _VERIFY_VALUES:
        raise ValueError(
            f"verify: expected {' or '.join(_VERIFY_VALUES)}, got {verify!r}"
        )
    if keyfile is not None and certfile is None:
        raise ValueError("keyfile: given without certfile")
    if cafile is None and certfile is None and verify is None:
        return None
    # With cafile: those CAs instead of the system's (load_verify_locations),
    # as RabbitMQ's cacertfile means.
    context, reason = _loaded(lambda: ssl.create_default_context(cafile=cafile))
    if context is None:
        raise ValueError(f"cacertfile: cannot load CAs from {cafile!r}: {reason}")
    if verify is not None and verify.lower() == "verify_none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if certfile is not None:
        # A password callback, so an encrypted key fails here instead of
        # OpenSSL prompting for its passphrase on the terminal.
        _, reason = _loaded(
            lambda: context.load_cert_chain(certfile, keyfile, password=_no_password)
        )
        if reason is not None:
            files = repr(certfile) + (f" and {keyfile!r}" if keyfile else "")
            key = "certfile/keyfile" if keyfile else "certfile"
            raise ValueError(
                f"{key}: cannot load a certificate and key from {files}: {reason}"
            )
    return context


def _loaded(load: Callable[[], _T]) -> tuple[_T | None, Exception | None]:
    """``load()``'s result, or its ``OSError``/``ValueError`` (a bad file;
    ``ssl.SSLError`` is an ``OSError``), returned so that the caller's
    ``ValueError`` does not chain it."""
    try:
        return load(), None
    except (OSError, ValueError) as exc:
        return None, exc


def _no_password() -> str:
    raise ValueError("the key is encrypted (pass an ssl.SSLContext as ssl= to load it)")


def _parse(url: str) -> ConnectionParameters:
    match = _SCHEME_RE.match(url)
    if match is None:
        raise ValueError("scheme: expected a URL starting amqp:// or amqps://")
    scheme = match.group(1).lower()
    if scheme not in _SCHEMES:
        raise ValueError(
            f"scheme: unknown scheme {match.group(1)!r}; expected amqp or amqps"
        )
    values: dict[str, Any] = {"tls": _SCHEMES[scheme]}
    rest = url[match.end() :]
    if "#" in rest:
        # RFC 3986 would read a fragment; AMQP URIs have none, and an
        # unencoded '#' is far more likely part of a password.
        raise ValueError("url: contains '#'; percent-encode it as %23")
    # The authority ends at the first '/' or '?' (RFC 3986 §3.2).
    end = len(rest)
    for stop in "/?":
        index = rest.find(stop)
        if 0 <= index < end:
            end = index
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hostport = authority.rpartition("@")
    if not at and "@" in tail:
        # "amqp://user:pa/ss@host": the '/' cut the authority short, so the
        # password would be read as host, port, vhost or query.
        raise ValueError(
            "url: '@' after the host; percent-encode '/', '?', '#' and '@' "
            "in the user name, password and vhost (%2F, %3F, %23, %40)"
        )
    if at:
        user_text, colon, password_text = userinfo.partition(":")
        values["username"] = _unquote(user_text, "username")
        if colon:
            values["password"] = _unquote(password_text, "password", secret=True)
    _parse_host_port(hostport, values)
    path, _, query = tail.partition("?")
    # amqp091-go's rule: the path without its leading "/", decoded; empty
    # (no path, or a lone "/") is the default vhost "/".
    values["vhost"] = _unquote(path[1:], "vhost") or "/"
    items = _parse_query(query, values["tls"])
    _query_values(items, values)
    if "server_name_indication" in items:
        sni = items["server_name_indication"]
        if sni.lower() == "disable":
            # Erlang's ssl reads "disable" as "send no SNI and check no host
            # name"; read as a host name it would fail every handshake.
            raise ValueError(
                "server_name_indication: 'disable' (no SNI and no host name "
                "check) is not supported; to skip the host name check, pass "
                "ssl= an ssl.SSLContext with check_hostname=False"
            )
        values["server_hostname"] = _check_host(sni, "server_name_indication")
    context = _tls_context(items)
    if context is not None:
        values["ssl_context"] = context
    return ConnectionParameters(**values)


def parse_url(url: str) -> ConnectionParameters:
    """Parse an ``amqp://`` or ``amqps://`` URI (see the module docstring).

    The vhost follows amqp091-go: the path without its leading ``/``,
    percent-decoded, and ``/`` when that is empty:

    ======================  =========
    URL                     vhost
    ======================  =========
    ``amqp://host``         ``/``
    ``amqp://host/``        ``/``
    ``amqp://host/%2f``     ``/``
    ``amqp://host//``       ``/``
    ``amqp://host/vh``      ``vh``
    ``amqp://host/a%2fb``   ``a/b``
    ======================  =========

    An ``amqps`` URL's TLS keys (``cacertfile``, ``certfile``,
    ``keyfile``, ``verify``, ``server_name_indication``) are checked and
    their files loaded here, into :attr:`~ConnectionParameters.ssl_context`
    and :attr:`~ConnectionParameters.server_hostname`.

    Args:
        url: the URI. Leading and trailing whitespace is ignored.

    Returns:
        The parameters, every part the URL leaves out at its default.

    Raises:
        TypeError: ``url`` is not a ``str``.
        ValueError: the URL is malformed: an unknown scheme, a bad or
            out-of-range port or query value, a host with non-ASCII digits,
            an unknown or repeated query key, a TLS key on an ``amqp`` URL,
            a TLS file that does not exist or does not load, a bad
            percent-escape. The message starts with the name of the part or
            key and ends with the URL, its password replaced by ``***``.
    """
    if not isinstance(url, str):
        raise checks.type_error("url", "str", url)
    url = url.strip()
    try:
        return _parse(url)
    except ValueError as exc:
        message = str(exc)
    # Raised outside the except block: nothing chains to the original.
    raise ValueError(f"{message} (in URL {_redact_text(url)!r})")
