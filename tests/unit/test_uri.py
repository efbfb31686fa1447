"""Unit tests of amqp_client.uri: the RabbitMQ URI spec's examples, every
query key, percent-decoding, IPv6 hosts, each malformed part naming itself,
keyword overrides, and that the password never shows in a repr, a str or an
error message.
"""

from __future__ import annotations

import dataclasses
import ssl
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from amqp_client.uri import (
    DEFAULT_PORT,
    DEFAULT_TLS_PORT,
    ConnectionParameters,
    parse_url,
)
from tests.support.tls_node import TLS_USER, TlsFiles, make_tls_files

SECRET = "Sup3rSecretPw"


def _error(url: str) -> str:
    """The message of the ValueError ``parse_url(url)`` raises."""
    with pytest.raises(ValueError) as info:
        parse_url(url)
    return str(info.value)


# -- defaults --------------------------------------------------------------------


def test_defaults() -> None:
    params = ConnectionParameters()
    assert params.tls is False
    assert params.host == "localhost"
    assert params.port == 5672 == DEFAULT_PORT
    assert params.username == "guest"
    assert params.password == "guest"
    assert params.vhost == "/"
    assert params.heartbeat is None
    assert params.frame_max is None
    assert params.channel_max is None
    assert params.connection_timeout == 10.0
    assert params.auth_mechanism == "PLAIN"
    assert params.locale == "en_US"
    assert params.connection_name is None
    assert params.client_properties is None
    assert params.ssl_context is None


def test_bare_url_is_all_defaults() -> None:
    assert parse_url("amqp://") == ConnectionParameters()


def test_full_url() -> None:
    params = parse_url("amqp://user:pass@host:10000/vhost")
    assert (params.username, params.password) == ("user", "pass")
    assert (params.host, params.port, params.vhost) == ("host", 10000, "vhost")
    assert params.tls is False


def test_amqps_default_port_and_tls() -> None:
    params = parse_url("amqps://host")
    assert params.tls is True
    assert params.port == 5671 == DEFAULT_TLS_PORT
    assert parse_url("amqps://host:5999").port == 5999


def test_scheme_is_case_insensitive() -> None:
    assert parse_url("AMQPS://host").tls is True
    assert parse_url("Amqp://host").tls is False


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse_url("  amqp://host\n").host == "host"


def test_parameters_are_frozen_and_slotted() -> None:
    params = ConnectionParameters()
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.host = "other"  # type: ignore[misc]
    assert not hasattr(params, "__dict__")
    assert hash(params) == hash(ConnectionParameters())


# -- the URI spec's table of examples (https://www.rabbitmq.com/docs/uri-spec) ----
# All but the vhost of "amqp://:@/" and "amqp://host/": the spec reads a lone
# "/" as the empty vhost, amqp091-go (which this client follows) as "/".


@pytest.mark.parametrize(
    ("url", "username", "password", "host", "port", "vhost"),
    [
        ("amqp://user:pass@host:10000/vhost", "user", "pass", "host", 10000, "vhost"),
        (
            "amqp://user%61:%61pass@ho%61st:10000/v%2fhost",
            "usera",
            "apass",
            "hoast",
            10000,
            "v/host",
        ),
        ("amqp://", "guest", "guest", "localhost", 5672, "/"),
        ("amqp://:@/", "", "", "localhost", 5672, "/"),
        ("amqp://user@", "user", "guest", "localhost", 5672, "/"),
        ("amqp://user:pass@", "user", "pass", "localhost", 5672, "/"),
        ("amqp://host", "guest", "guest", "host", 5672, "/"),
        ("amqp://:10000", "guest", "guest", "localhost", 10000, "/"),
        ("amqp:///vhost", "guest", "guest", "localhost", 5672, "vhost"),
        ("amqp://host/", "guest", "guest", "host", 5672, "/"),
        ("amqp://host/%2f", "guest", "guest", "host", 5672, "/"),
        ("amqp://[::1]", "guest", "guest", "::1", 5672, "/"),
    ],
)
def test_uri_spec_examples(
    url: str, username: str, password: str, host: str, port: int, vhost: str
) -> None:
    params = parse_url(url)
    assert params.username == username
    assert params.password == password
    assert params.host == host
    assert params.port == port
    assert params.vhost == vhost


def test_empty_port_is_default() -> None:
    assert parse_url("amqp://host:").port == 5672
    assert parse_url("amqps://host:").port == 5671


# -- vhost: amqp091-go's uri.go rule ------------------------------------------------


@pytest.mark.parametrize(
    ("url", "vhost"),
    [
        ("amqp://host", "/"),  # no path: the default
        ("amqp://host/", "/"),  # a lone "/": the default too
        ("amqp://guest:guest@localhost:5672/", "/"),  # the Go client's example
        ("amqp://host//", "/"),  # what follows the first "/" is "/"
        ("amqp://host/%2f", "/"),
        ("amqp://host/%2F", "/"),
        ("amqp://host/%2Fprod", "/prod"),
        ("amqp://host/prod", "prod"),
        ("amqp://host/vh", "vh"),
        ("amqp://host/a%2fb", "a/b"),
        ("amqp://host/a%2Fb%2Fc", "a/b/c"),
        ("amqp://host/a/b", "a/b"),  # amqp091-go keeps an unencoded "/"
        ("amqp://host//vh", "/vh"),
        ("amqp://host/caf%C3%A9", "caf\u00e9"),
        ("amqp://host/%2f?heartbeat=5", "/"),
        ("amqp://host?heartbeat=5", "/"),
        ("amqp://host/?heartbeat=5", "/"),
        ("amqps://host/", "/"),
    ],
)
def test_vhost(url: str, vhost: str) -> None:
    assert parse_url(url).vhost == vhost


def test_vhost_longer_than_a_shortstr() -> None:
    assert len(parse_url("amqp://host/" + "v" * 255).vhost) == 255
    assert _error("amqp://host/" + "v" * 256).startswith("vhost:")


# -- user name and password ------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("p%40ss", "p@ss"),
        ("p%3Ass", "p:ss"),
        ("p%2Fss", "p/ss"),
        ("p%3Fss", "p?ss"),
        ("p%23ss", "p#ss"),
        ("p%25ss", "p%ss"),
        ("%40%3A%2F%3F%23%25%26%3D%20", "@:/?#%&= "),
        ("p%C3%A4ss", "p\u00e4ss"),
        ("", ""),
    ],
)
def test_password_percent_decoding(encoded: str, decoded: str) -> None:
    params = parse_url(f"amqp://user:{encoded}@host/%2f")
    assert params.password == decoded
    assert params.username == "user"
    assert params.host == "host"
    assert params.vhost == "/"


def test_username_percent_decoding() -> None:
    params = parse_url("amqp://us%40er%3Aname:pw@host")
    assert params.username == "us@er:name"
    assert params.password == "pw"


def test_unencoded_colon_in_password_splits_at_the_first_colon() -> None:
    assert parse_url("amqp://user:pa:ss@host").password == "pa:ss"


def test_unencoded_at_in_password_uses_the_last_at() -> None:
    params = parse_url("amqp://user:p@ss@host")
    assert params.password == "p@ss"
    assert params.host == "host"


@pytest.mark.parametrize(
    "url",
    [
        f"amqp://user:{SECRET}/x@host",
        f"amqp://user:{SECRET}?x@host",
        f"amqp://user:{SECRET}#x@host",
        f"amqp://user:{SECRET}/x@host/vhost?heartbeat=5",
    ],
)
def test_unencoded_delimiter_in_password_is_an_error_that_hides_it(url: str) -> None:
    message = _error(url)
    assert SECRET not in message
    assert "x@host" not in message
    assert "%2F" in message or "%23" in message


@pytest.mark.parametrize(
    "password", [f"{SECRET}%zz", f"{SECRET}%4", f"{SECRET}%", f"{SECRET}%ff"]
)
def test_bad_percent_escape_in_password_hides_it(password: str) -> None:
    with pytest.raises(ValueError, match=r"^password: ") as info:
        parse_url(f"amqp://user:{password}@host")
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("amqp://us%zzer@host", "username"),
        ("amqp://host/v%zz", "vhost"),
        ("amqp://ho%zzst", "host"),
        ("amqp://host/v%ff", "vhost"),
    ],
)
def test_bad_percent_escape_names_the_part(url: str, key: str) -> None:
    assert _error(url).startswith(f"{key}: ")


# -- hosts and ports -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port", "address"),
    [
        ("amqp://[::1]", "::1", 5672, "[::1]:5672"),
        ("amqp://[::1]:5673", "::1", 5673, "[::1]:5673"),
        ("amqps://[2001:db8::7]", "2001:db8::7", 5671, "[2001:db8::7]:5671"),
        ("amqp://u:p@[::1]:1/v", "::1", 1, "[::1]:1"),
        ("amqp://[fe80::1%25eth0]:5672", "fe80::1%eth0", 5672, "[fe80::1%eth0]:5672"),
        ("amqp://127.0.0.1:65535", "127.0.0.1", 65535, "127.0.0.1:65535"),
        ("amqp://rabbit.example.com", "rabbit.example.com", 5672, None),
    ],
)
def test_hosts(url: str, host: str, port: int, address: str | None) -> None:
    params = parse_url(url)
    assert params.host == host
    assert params.port == port
    assert params.address == (address or f"{host}:{port}")


@pytest.mark.parametrize(
    "url",
    [
        "amqp://::1",
        "amqp://[::1",
        "amqp://[::1]x",
        "amqp://[not-ipv6]",
        "amqp://[127.0.0.1]",
        "amqp://ho st",
        "amqp://ho%2Fst",
    ],
)
def test_bad_hosts(url: str) -> None:
    assert _error(url).startswith("host: ")


@pytest.mark.parametrize(
    "port",
    ["0", "65536", "99999999999999999999", "x", "-1", "+1", " 1", "1_0", "\u00b2"],
)
def test_bad_ports(port: str) -> None:
    assert _error(f"amqp://host:{port}").startswith("port: ")


def test_port_range_edges() -> None:
    assert parse_url("amqp://host:1").port == 1
    assert parse_url("amqp://host:65535").port == 65535


@pytest.mark.parametrize("port", ["1" * 5000, "0" * 5000 + "1" * 6])
def test_port_past_the_int_digit_limit_names_the_port(port: str) -> None:
    # int() refuses 4,300 digits with a ValueError of its own, whose message
    # would not say which part of the URL is wrong.
    assert _error(f"amqp://host:{port}").startswith("port: ")


def test_port_leading_zeros_past_the_int_digit_limit() -> None:
    assert parse_url("amqp://host:" + "0" * 5000 + "5673").port == 5673


@pytest.mark.parametrize(
    "url", ["amqp://user:hunter2x", "amqp://user:hunter2x/vhost", "amqps://u:hunter2x?"]
)
def test_bad_port_text_is_not_shown_when_it_may_be_a_password(url: str) -> None:
    # "@host" left out: the password reads as a port. Neither the message
    # nor the URL it quotes shows it.
    message = _error(url)
    assert message.startswith("port: ")
    assert "hunter2x" not in message
    assert ":***" in message


# -- scheme ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://host", "amqp+ssl://host", "rabbitmq://h", "amqp:/host", "host:5672"]
)
def test_bad_scheme(url: str) -> None:
    assert _error(url).startswith("scheme: ")


def test_url_must_be_str() -> None:
    with pytest.raises(TypeError, match="url"):
        parse_url(b"amqp://host")  # type: ignore[arg-type]


# -- query parameters ------------------------------------------------------------


def test_every_query_key() -> None:
    params = parse_url(
        "amqp://host/%2f?heartbeat=30&frame_max=131072&channel_max=2047"
        "&connection_timeout=2500&auth_mechanism=AMQPLAIN"
    )
    assert params.heartbeat == 30
    assert params.frame_max == 131072
    assert params.channel_max == 2047
    assert params.connection_timeout == 2.5
    assert params.auth_mechanism == "AMQPLAIN"


@pytest.mark.parametrize(
    ("query", "attribute", "value"),
    [
        ("heartbeat=0", "heartbeat", 0),
        ("heartbeat=65535", "heartbeat", 65535),
        ("frame_max=0", "frame_max", 0),
        ("frame_max=4096", "frame_max", 4096),
        ("frame_max=4294967295", "frame_max", 4294967295),
        ("channel_max=0", "channel_max", 0),
        ("channel_max=65535", "channel_max", 65535),
        ("connection_timeout=1", "connection_timeout", 0.001),
        ("connection_timeout=10000", "connection_timeout", 10.0),
        ("auth_mechanism=plain", "auth_mechanism", "PLAIN"),
        ("auth_mechanism=amqplain", "auth_mechanism", "AMQPLAIN"),
        ("auth_mechanism=external", "auth_mechanism", "EXTERNAL"),
        ("auth_mechanism=EXTERNAL", "auth_mechanism", "EXTERNAL"),
        ("heart%62eat=7", "heartbeat", 7),
        ("heartbeat=%37", "heartbeat", 7),
    ],
)
def test_query_values(query: str, attribute: str, value: object) -> None:
    assert getattr(parse_url(f"amqp://host?{query}"), attribute) == value


def test_empty_query_items_are_ignored() -> None:
    assert parse_url("amqp://host?").heartbeat is None
    assert parse_url("amqp://host/?heartbeat=5&&frame_max=4096&").frame_max == 4096


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("heartbeat=abc", "heartbeat"),
        ("heartbeat=-1", "heartbeat"),
        ("heartbeat=1.5", "heartbeat"),
        ("heartbeat=", "heartbeat"),
        ("heartbeat", "heartbeat"),
        ("heartbeat=65536", "heartbeat"),
        ("frame_max=4095", "frame_max"),
        ("frame_max=1", "frame_max"),
        ("frame_max=-4096", "frame_max"),
        ("frame_max=4294967296", "frame_max"),
        ("channel_max=65536", "channel_max"),
        ("channel_max=-1", "channel_max"),
        ("connection_timeout=0", "connection_timeout"),
        ("connection_timeout=-5", "connection_timeout"),
        ("connection_timeout=1.5", "connection_timeout"),
        ("auth_mechanism=CRAM-MD5", "auth_mechanism"),
        ("auth_mechanism=", "auth_mechanism"),
        ("heartbeat=5&heartbeat=6", "heartbeat"),
    ],
)
def test_bad_query_values_name_the_key(query: str, key: str) -> None:
    message = _error(f"amqp://user:{SECRET}@host/?{query}")
    assert message.startswith(f"{key}: ")
    assert SECRET not in message
    assert "***" in message


@pytest.mark.parametrize(
    "key",
    [
        "foo",
        "heartbeats",
        "Heartbeat",
        "depth",
        "fail_if_no_peer_cert",
        "connection_name",
        "socket_timeout",
    ],
)
def test_unknown_query_key_names_it(key: str) -> None:
    message = _error(f"amqp://host?{key}=1")
    assert message.startswith(f"{key}: unknown URL query parameter")
    assert "heartbeat" in message  # lists the known keys


def test_unknown_query_value_is_not_echoed() -> None:
    # RabbitMQ's TLS "password" key holds the key file's passphrase.
    message = _error(f"amqps://host?password={SECRET}")
    assert message.startswith("password: unknown URL query parameter")
    assert "SSLContext" in message
    assert SECRET not in message


def test_fragment_is_an_error() -> None:
    assert _error("amqp://host/vhost#frag").startswith("url: ")


# -- the password never shows ----------------------------------------------------


def test_repr_and_str_hide_password() -> None:
    params = parse_url(f"amqp://user:{SECRET}@host/%2f")
    for text in (repr(params), str(params), f"{params}", f"{params!r}"):
        assert SECRET not in text
        assert "password='***'" in text
        assert "username='user'" in text
    assert params.password == SECRET


def test_redacted_url() -> None:
    params = parse_url(f"amqps://us%40er:{SECRET}@[::1]:5999/%2Fprod?heartbeat=5")
    url = params.redacted_url()
    assert SECRET not in url
    assert url == "amqps://us%40er:***@[::1]:5999/%2Fprod?heartbeat=5"


def test_redacted_url_of_defaults() -> None:
    assert (
        ConnectionParameters().redacted_url() == "amqp://guest:***@localhost:5672/%2F"
    )
    assert parse_url("amqp://h/").redacted_url() == "amqp://guest:***@h:5672/%2F"


@pytest.mark.parametrize(
    "url",
    [
        "amqp://",
        "amqp://h/",
        "amqps://u%3Ax:pw@[fe80::1%25eth0]:1/a%2Fb%20c",
        "amqp://h?heartbeat=0&frame_max=0&channel_max=0",
        "amqp://h?connection_timeout=1500&auth_mechanism=external",
        "amqp://h?frame_max=131072&auth_mechanism=amqplain",
    ],
)
def test_redacted_url_round_trips_all_but_the_password(url: str) -> None:
    params = parse_url(url)
    again = parse_url(params.redacted_url())
    assert again.password == "***"
    assert again == params.replace(password="***")


def test_errors_redact_the_password() -> None:
    message = _error(f"amqp://user:{SECRET}@host/?heartbeat=x")
    assert SECRET not in message
    assert "amqp://user:***@host/?heartbeat=x" in message


def test_errors_do_not_chain_the_password() -> None:
    with pytest.raises(ValueError) as info:
        parse_url(f"amqp://user:{SECRET}@host:99999")
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert SECRET not in str(info.value)


def test_encoded_password_is_hidden_in_errors_too() -> None:
    message = _error("amqp://user:p%40ssw0rd@host?frame_max=1")
    assert "p%40ssw0rd" not in message
    assert "p@ssw0rd" not in message


# -- constructor validation ------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("tls", "yes", TypeError),
        ("host", "", ValueError),
        ("host", 1, TypeError),
        ("host", "a b", ValueError),
        ("port", 0, ValueError),
        ("port", 65536, ValueError),
        ("port", "5672", TypeError),
        ("port", True, TypeError),
        ("username", None, TypeError),
        ("password", None, TypeError),
        ("vhost", "v" * 256, ValueError),
        ("vhost", 1, TypeError),
        ("heartbeat", -1, ValueError),
        ("heartbeat", 65536, ValueError),
        ("heartbeat", 1.5, TypeError),
        ("heartbeat", "30", TypeError),
        ("heartbeat", True, TypeError),
        ("frame_max", 4095, ValueError),
        ("frame_max", 2**32, ValueError),
        ("frame_max", 0.0, TypeError),
        ("channel_max", 65536, ValueError),
        ("channel_max", -1, ValueError),
        ("connection_timeout", 0, ValueError),
        ("connection_timeout", -1.0, ValueError),
        ("connection_timeout", float("inf"), ValueError),
        ("connection_timeout", float("nan"), ValueError),
        ("connection_timeout", "10", TypeError),
        ("auth_mechanism", "GSSAPI", ValueError),
        ("auth_mechanism", None, TypeError),
        ("locale", "x" * 256, ValueError),
        ("connection_name", 1, TypeError),
        ("client_properties", [("a", 1)], TypeError),
        ("client_properties", {"a": object()}, TypeError),
        ("client_properties", {1: "a"}, TypeError),
        ("ssl_context", "ctx", TypeError),
    ],
)
def test_constructor_validation_names_the_field(
    key: str, value: object, error: type[Exception]
) -> None:
    kwargs: dict[str, Any] = {key: value}
    if key == "ssl_context":
        kwargs["tls"] = True
    with pytest.raises(error, match=f"^{key}"):
        ConnectionParameters(**kwargs)


def test_constructor_normalises() -> None:
    params = ConnectionParameters(
        host="[::1]",
        auth_mechanism="external",
        connection_timeout=3,
        tls=True,
    )
    assert params.host == "::1"
    assert params.auth_mechanism == "EXTERNAL"
    assert params.connection_timeout == 3.0
    assert isinstance(params.connection_timeout, float)
    assert params.port == 5671


def test_constructor_accepts_none_for_optional_limits() -> None:
    params = ConnectionParameters(
        heartbeat=None, frame_max=None, channel_max=None, connection_timeout=None
    )
    assert params.connection_timeout is None


def test_client_properties_are_a_read_only_copy() -> None:
    source = {"product": "test", "capabilities": {"x": True}}
    params = ConnectionParameters(client_properties=source)
    source["product"] = "changed"
    assert params.client_properties is not None
    assert params.client_properties["product"] == "test"
    with pytest.raises(TypeError):
        params.client_properties["product"] = "x"  # type: ignore[index]
    assert "client_properties={'product': 'test'" in repr(params)
    assert params == ConnectionParameters(
        client_properties={"product": "test", "capabilities": {"x": True}}
    )
    hash(params)


def test_ssl_context_needs_tls() -> None:
    context = ssl.create_default_context()
    with pytest.raises(ValueError, match=r"^ssl_context"):
        ConnectionParameters(ssl_context=context)
    assert ConnectionParameters(tls=True, ssl_context=context).ssl_context is context


def test_constructor_errors_hide_password() -> None:
    with pytest.raises(ValueError) as info:
        ConnectionParameters(password=SECRET, heartbeat=-1)
    assert SECRET not in str(info.value)


# -- replace and with_overrides --------------------------------------------------


def test_replace_overrides_the_url() -> None:
    params = parse_url("amqp://user:pw@host/v?heartbeat=30")
    changed = params.replace(heartbeat=5, vhost="other", connection_name="app")
    assert changed.heartbeat == 5
    assert changed.vhost == "other"
    assert changed.connection_name == "app"
    assert (changed.username, changed.password, changed.host) == ("user", "pw", "host")
    assert params.heartbeat == 30  # unchanged
    assert params.replace() == params


def test_replace_can_set_none() -> None:
    params = parse_url("amqp://host?heartbeat=30")
    assert params.replace(heartbeat=None).heartbeat is None


@pytest.mark.parametrize(
    ("changes", "key", "error"),
    [
        ({"heartbeat": -1}, "heartbeat", ValueError),
        ({"frame_max": 100}, "frame_max", ValueError),
        ({"channel_max": 70000}, "channel_max", ValueError),
        ({"port": 0}, "port", ValueError),
        ({"auth_mechanism": "NOPE"}, "auth_mechanism", ValueError),
        ({"heartbeat": "5"}, "heartbeat", TypeError),
        ({"heartbaet": 5}, "heartbaet", TypeError),
    ],
)
def test_replace_validates(changes: dict[str, Any], key: str, error: type) -> None:
    params = parse_url(f"amqp://u:{SECRET}@host")
    with pytest.raises(error, match=f"^{key}") as info:
        params.replace(**changes)
    assert SECRET not in str(info.value)


def test_replace_tls_moves_a_default_port() -> None:
    assert parse_url("amqp://h").replace(tls=True).port == 5671
    assert parse_url("amqps://h").replace(tls=False).port == 5672
    assert parse_url("amqp://h:1234").replace(tls=True).port == 1234
    assert parse_url("amqp://h").replace(tls=True, port=99).port == 99
    assert parse_url("amqps://h").replace(port=None).port == 5671


def test_replace_ssl_context_turns_tls_on() -> None:
    context = ssl.create_default_context()
    params = parse_url("amqp://h").replace(ssl_context=context)
    assert params.tls is True
    assert params.port == 5671
    assert params.ssl_context is context
    with pytest.raises(ValueError, match=r"^ssl_context"):
        parse_url("amqp://h").replace(ssl_context=context, tls=False)


def test_with_overrides_skips_none() -> None:
    params = parse_url("amqp://host?heartbeat=30&channel_max=10")
    changed = params.with_overrides(
        heartbeat=None,
        channel_max=20,
        frame_max=None,
        ssl=None,
        client_properties=None,
        connection_name=None,
        connection_timeout=None,
        auth_mechanism=None,
        locale=None,
    )
    assert changed.heartbeat == 30
    assert changed.channel_max == 20
    assert changed.tls is False
    assert changed.connection_timeout == 10.0


def test_with_overrides_ssl() -> None:
    context = ssl.create_default_context()
    params = parse_url("amqp://host").with_overrides(ssl=context)
    assert (params.tls, params.port, params.ssl_context) == (True, 5671, context)
    params = parse_url("amqp://host").with_overrides(ssl=True)
    assert (params.tls, params.port, params.ssl_context) == (True, 5671, None)
    params = parse_url("amqp://host").with_overrides(ssl=False)
    assert (params.tls, params.port) == (False, 5672)
    with pytest.raises(TypeError, match=r"^ssl"):
        parse_url("amqp://host").with_overrides(ssl="yes")  # type: ignore[arg-type]


def test_with_overrides_validates() -> None:
    params = parse_url("amqp://host")
    with pytest.raises(ValueError, match=r"^heartbeat"):
        params.with_overrides(heartbeat=-5)
    with pytest.raises(TypeError, match=r"^bogus"):
        params.with_overrides(bogus=1)  # type: ignore[call-arg]


# -- connection_timeout limits (no OverflowError) --------------------------------


@pytest.mark.parametrize("value", [1e300, 10**20, 10**400, 1e9 + 1])
def test_huge_connection_timeout_is_a_value_error(value: float) -> None:
    with pytest.raises(ValueError, match=r"^connection_timeout: more than"):
        ConnectionParameters(connection_timeout=value)
    with pytest.raises(ValueError, match=r"^connection_timeout: more than"):
        parse_url("amqp://h").with_overrides(connection_timeout=value)


def test_largest_connection_timeout() -> None:
    assert ConnectionParameters(connection_timeout=10**9).connection_timeout == 1e9
    assert parse_url(
        "amqp://h?connection_timeout=1000000000000"
    ).connection_timeout == (1e9)


@pytest.mark.parametrize(
    "millis", ["1000000000001", "1" * 30, "9" * 400, "9" * 5000, "0" * 30 + "1" * 21]
)
def test_huge_connection_timeout_in_the_url(millis: str) -> None:
    assert _error(f"amqp://h?connection_timeout={millis}").startswith(
        "connection_timeout: "
    )


def test_leading_zeros_do_not_count_as_size() -> None:
    assert parse_url("amqp://h?heartbeat=" + "0" * 40 + "7").heartbeat == 7


def test_leading_zeros_past_the_int_digit_limit() -> None:
    # int() refuses 4,300 digits and more, leading zeros included.
    zeros = "0" * 5000
    params = parse_url(
        f"amqp://h?heartbeat={zeros}7&frame_max={zeros}0&connection_timeout={zeros}5"
    )
    assert (params.heartbeat, params.frame_max) == (7, 0)
    assert params.connection_timeout == 0.005


def test_huge_integer_query_values_name_the_key() -> None:
    for key in ("heartbeat", "frame_max", "channel_max"):
        assert _error(f"amqp://h?{key}={'9' * 5000}").startswith(f"{key}: ")


# -- non-ASCII digits in hosts ---------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "\uff11\uff12\uff17.0.0.1",  # full-width digits
        "127\uff0e0.0.1",  # a full-width full stop
        "127\u30020.0.1",  # an ideographic full stop (IDNA reads it as ".")
        "\u0661\u0662\u0667.0.0.1",  # Arabic-Indic digits
        "rabbit\uff4d.example",  # a full-width letter
    ],
)
def test_host_with_disguised_ascii_is_rejected(host: str) -> None:
    message = _error(f"amqp://{host}")
    assert message.startswith("host: ")
    assert "ASCII" in message
    with pytest.raises(ValueError, match=r"^host: .*ASCII"):
        ConnectionParameters(host=host)


def test_internationalised_host_name_is_accepted() -> None:
    assert parse_url("amqp://b%C3%BCcher.example").host == "b\u00fccher.example"
    assert parse_url("amqp://b\u00fccher.example").host == "b\u00fccher.example"


# -- ssl=False on an amqps URL ---------------------------------------------------


@pytest.mark.parametrize("keyword", ["ssl", "tls"])
def test_amqps_with_ssl_false_is_a_value_error(keyword: str) -> None:
    params = parse_url(f"amqps://u:{SECRET}@h")
    overrides: dict[str, Any] = {keyword: False}
    with pytest.raises(ValueError) as info:
        params.with_overrides(**overrides)
    message = str(info.value)
    assert message.startswith(f"{keyword}: False")
    assert "amqps" in message
    assert "plain text" in message
    assert SECRET not in message


def test_amqps_with_ssl_true_or_none_keeps_tls() -> None:
    assert parse_url("amqps://h").with_overrides(ssl=True).tls is True
    assert parse_url("amqps://h").with_overrides(ssl=None).tls is True


# -- TLS query keys --------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def encrypted_key(tls_files: TlsFiles) -> Path:
    path = tls_files.client_key.parent / "encrypted.key"
    subprocess.run(
        [
            "openssl",
            "pkey",
            "-in",
            str(tls_files.client_key),
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


def _q(path: Path | str) -> str:
    return quote(str(path), safe="/")


def test_no_tls_keys_means_the_default_context() -> None:
    params = parse_url("amqps://h")
    assert params.ssl_context is None
    assert params.server_hostname is None


def test_cacertfile_is_the_only_ca(tls_files: TlsFiles) -> None:
    params = parse_url(f"amqps://h?cacertfile={_q(tls_files.ca_cert)}")
    context = params.ssl_context
    assert context is not None
    assert len(context.get_ca_certs()) == 1  # not the system's CAs as well
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def _handshake(
    files: TlsFiles, client: ssl.SSLContext, server_hostname: str
) -> dict[str, Any]:
    """A TLS handshake in memory between ``client`` and a server with the
    test CA's localhost certificate that asks for a client certificate;
    returns the client certificate the server saw ({} if none)."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.server_cert, files.server_key)
    server.load_verify_locations(files.ca_cert)
    server.verify_mode = ssl.CERT_OPTIONAL
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    from_client, from_server = ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(to_client, from_client, server_hostname=server_hostname)
    s = server.wrap_bio(to_server, from_server, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(10):
        for name, end in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    end.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                else:
                    done[name] = True
        to_server.write(from_client.read())
        to_client.write(from_server.read())
        if all(done.values()):
            break
    assert all(done.values())
    return s.getpeercert() or {}


def _common_name(cert: dict[str, Any]) -> str | None:
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def test_tls_keys_make_a_working_client_context(tls_files: TlsFiles) -> None:
    url = (
        f"amqps://h?cacertfile={_q(tls_files.ca_cert)}"
        f"&certfile={_q(tls_files.client_cert)}&keyfile={_q(tls_files.client_key)}"
    )
    context = parse_url(url).ssl_context
    assert context is not None
    seen = _handshake(tls_files, context, "localhost")
    assert _common_name(seen) == TLS_USER


def test_certfile_holding_its_key(tls_files: TlsFiles, tmp_path: Path) -> None:
    both = tmp_path / "both.pem"
    both.write_text(
        tls_files.client_cert.read_text() + tls_files.client_key.read_text()
    )
    url = f"amqps://h?cacertfile={_q(tls_files.ca_cert)}&certfile={_q(both)}"
    context = parse_url(url).ssl_context
    assert context is not None
    assert _common_name(_handshake(tls_files, context, "localhost")) == TLS_USER


def test_cacertfile_verifies_the_server(tls_files: TlsFiles) -> None:
    context = parse_url(f"amqps://h?cacertfile={_q(tls_files.ca_cert)}").ssl_context
    assert context is not None
    assert _handshake(tls_files, context, "localhost") == {}  # no client cert
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tls_files, context, "other.example")  # hostname checked


@pytest.mark.parametrize("value", ["verify_none", "VERIFY_NONE"])
def test_verify_none(value: str, tls_files: TlsFiles) -> None:
    context = parse_url(f"amqps://h?verify={value}").ssl_context
    assert context is not None
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_NONE
    # The test CA is not among the system's: only verify_none lets it pass.
    _handshake(tls_files, context, "other.example")


def test_verify_peer() -> None:
    context = parse_url("amqps://h?verify=verify_peer").ssl_context
    assert context is not None
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("value", ["disable", "DISABLE"])
def test_server_name_indication_disable_is_refused(value: str) -> None:
    # Erlang's "disable" (no SNI, no host name check) must not be taken for
    # a host named "disable".
    message = _error(f"amqps://h?server_name_indication={value}")
    assert message.startswith("server_name_indication: 'disable'")
    assert "check_hostname=False" in message


def test_server_name_indication() -> None:
    params = parse_url("amqps://10.0.0.5?server_name_indication=rabbit.example")
    assert params.server_hostname == "rabbit.example"
    assert params.host == "10.0.0.5"
    assert params.ssl_context is None
    url = params.redacted_url()
    assert url.endswith("?server_name_indication=rabbit.example")
    assert parse_url(url).server_hostname == "rabbit.example"


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("verify=maybe", "verify"),
        ("verify=", "verify"),
        ("verify=true", "verify"),
        ("server_name_indication=", "server_name_indication"),
        ("server_name_indication=a%2Fb", "server_name_indication"),
        ("server_name_indication=a%20b", "server_name_indication"),
        ("server_name_indication=%EF%BC%91.example", "server_name_indication"),
        ("cacertfile=", "cacertfile"),
        ("certfile=", "certfile"),
        ("keyfile=", "keyfile"),
        ("verify=verify_peer&verify=verify_none", "verify"),
        ("cacertfile", "cacertfile"),
    ],
)
def test_bad_tls_values_name_the_key(query: str, key: str) -> None:
    message = _error(f"amqps://h?{query}")
    assert message.startswith(f"{key}: ")
    assert "unknown URL query parameter" not in message


@pytest.mark.parametrize("key", ["cacertfile", "certfile", "keyfile"])
def test_missing_tls_file_names_key_and_path(
    key: str, tls_files: TlsFiles, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.pem"
    # keyfile goes with a certfile that exists.
    url = f"amqps://h?certfile={_q(tls_files.client_cert)}&keyfile={_q(missing)}"
    if key != "keyfile":
        url = f"amqps://h?{key}={_q(missing)}"
    message = _error(url)
    assert message.startswith(f"{key}: no such file")
    assert str(missing) in message


def test_tls_file_that_is_a_directory(tmp_path: Path) -> None:
    message = _error(f"amqps://h?cacertfile={_q(tmp_path)}")
    assert message.startswith("cacertfile: no such file")


def test_keyfile_without_certfile(tls_files: TlsFiles) -> None:
    message = _error(f"amqps://h?keyfile={_q(tls_files.client_key)}")
    assert message.startswith("keyfile: given without certfile")


def test_cacertfile_that_is_not_a_certificate(tls_files: TlsFiles) -> None:
    message = _error(f"amqps://h?cacertfile={_q(tls_files.client_key)}")
    assert message.startswith("cacertfile: cannot load")
    assert str(tls_files.client_key) in message


def test_keyfile_that_does_not_match(tls_files: TlsFiles) -> None:
    url = (
        f"amqps://h?certfile={_q(tls_files.client_cert)}"
        f"&keyfile={_q(tls_files.server_key)}"
    )
    message = _error(url)
    assert message.startswith("certfile/keyfile: cannot load")
    assert str(tls_files.server_key) in message


def test_encrypted_keyfile_fails_instead_of_prompting(
    tls_files: TlsFiles, encrypted_key: Path
) -> None:
    url = f"amqps://h?certfile={_q(tls_files.client_cert)}&keyfile={_q(encrypted_key)}"
    message = _error(url)
    assert message.startswith("certfile/keyfile: ")
    assert "encrypted" in message
    assert "SSLContext" in message


@pytest.mark.parametrize(
    "key", ["cacertfile", "certfile", "keyfile", "verify", "server_name_indication"]
)
def test_tls_keys_on_an_amqp_url(key: str, tls_files: TlsFiles) -> None:
    message = _error(f"amqp://h?{key}={_q(tls_files.ca_cert)}")
    assert message.startswith(f"{key}: a TLS setting in an amqp:// URL")
    assert "amqps://" in message


def test_ssl_context_keyword_replaces_the_url_context(tls_files: TlsFiles) -> None:
    params = parse_url(
        f"amqps://h?cacertfile={_q(tls_files.ca_cert)}&server_name_indication=x.example"
    )
    context = ssl.create_default_context()
    changed = params.with_overrides(ssl=context)
    assert changed.ssl_context is context
    assert changed.server_hostname == "x.example"


def test_tls_query_errors_hide_the_password(tmp_path: Path) -> None:
    message = _error(f"amqps://u:{SECRET}@h?cacertfile={_q(tmp_path / 'x')}")
    assert message.startswith("cacertfile: no such file")
    assert SECRET not in message
    assert "***" in message


def test_server_hostname_field() -> None:
    params = ConnectionParameters(tls=True, server_hostname="rabbit.example")
    assert params.server_hostname == "rabbit.example"
    assert "server_hostname='rabbit.example'" in repr(params)
    with pytest.raises(ValueError, match=r"^server_hostname: given for a connection"):
        ConnectionParameters(server_hostname="rabbit.example")
    with pytest.raises(TypeError, match=r"^server_hostname"):
        ConnectionParameters(tls=True, server_hostname=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^server_hostname"):
        ConnectionParameters(tls=True, server_hostname="a b")
    assert ConnectionParameters().server_hostname is None
