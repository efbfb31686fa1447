"""Unit tests of amqp_client.auth: each mechanism's response byte for byte
(against hand-built bytes and against pika's and pamqp's encoders), the
refused challenge, mechanism selection, and that no password reaches a repr
or an error message.
"""

from __future__ import annotations

import pickle
import struct

import pamqp.encode
import pika.credentials
import pika.spec
import pytest

from amqp_client import auth
from amqp_client.auth import (
    MECHANISMS,
    AMQPlain,
    External,
    Mechanism,
    Plain,
    choose,
    mechanism_for,
)
from amqp_client.errors import (
    AuthenticationError,
    ConnectionClosed,
    FrameSequenceError,
    ProtocolError,
)
from amqp_client.wire import decode_table

SECRET = "s3cr\u00e9t:@/pw"


def _longstr_entry(key: str, value: bytes) -> bytes:
    name = key.encode()
    return bytes([len(name)]) + name + b"S" + struct.pack(">I", len(value)) + value


# -- PLAIN -----------------------------------------------------------------------


def test_plain_response_bytes() -> None:
    assert Plain("guest", "guest").response() == b"\x00guest\x00guest"


def test_plain_response_is_utf8() -> None:
    response = Plain("j\u00fcrgen", SECRET).response()
    assert response == b"\x00" + "j\u00fcrgen".encode() + b"\x00" + SECRET.encode()


def test_plain_empty_credentials() -> None:
    assert Plain("", "").response() == b"\x00\x00"


def test_plain_matches_pika() -> None:
    credentials = pika.credentials
    pika_spec = pika.spec
    start = pika_spec.Connection.Start(mechanisms=b"PLAIN AMQPLAIN")
    for user, password in [("guest", "guest"), ("user", "p@ss:w/rd"), ("", "")]:
        name, expected = credentials.PlainCredentials(user, password).response_for(
            start
        )
        assert name == Plain.name
        assert Plain(user, password).response() == expected


@pytest.mark.parametrize("field", ["username", "password"])
def test_plain_rejects_nul_without_showing_it(field: str) -> None:
    values = {"username": "guest", "password": "guest"}
    values[field] = "sec\0ret"
    with pytest.raises(ValueError, match=field) as info:
        Plain(**values)
    assert "sec" not in str(info.value)


# -- AMQPLAIN --------------------------------------------------------------------


def test_amqplain_response_bytes() -> None:
    expected = _longstr_entry("LOGIN", b"guest") + _longstr_entry("PASSWORD", b"guest")
    assert AMQPlain("guest", "guest").response() == expected
    # Spelled out once, so the helper above cannot hide a mistake.
    assert expected == (
        b"\x05LOGINS\x00\x00\x00\x05guest\x08PASSWORDS\x00\x00\x00\x05guest"
    )


def test_amqplain_has_no_length_prefix() -> None:
    response = AMQPlain("u", SECRET).response()
    assert response.startswith(b"\x05LOGIN")
    # RabbitMQ parses the response as a table body: with a length prefix
    # added back it is exactly the table.
    table, end = decode_table(struct.pack(">I", len(response)) + response, 0)
    assert table == {"LOGIN": "u", "PASSWORD": SECRET}
    assert end == len(response) + 4


def test_amqplain_matches_pamqp_table_contents() -> None:
    encode = pamqp.encode
    for user, password in [("guest", "guest"), ("j\u00fcrgen", SECRET), ("", "")]:
        table = encode.field_table({"LOGIN": user, "PASSWORD": password})
        assert AMQPlain(user, password).response() == table[4:]


def test_amqplain_allows_nul() -> None:
    # A longstr carries any byte; only PLAIN uses NUL as a separator.
    response = AMQPlain("a\0b", "c\0d").response()
    assert response == _longstr_entry("LOGIN", b"a\0b") + _longstr_entry(
        "PASSWORD", b"c\0d"
    )


# -- EXTERNAL --------------------------------------------------------------------


def test_external_response_is_empty() -> None:
    assert External().response() == b""
    assert External.name == "EXTERNAL"


def test_external_matches_pika() -> None:
    credentials = pika.credentials
    pika_spec = pika.spec
    start = pika_spec.Connection.Start(mechanisms=b"PLAIN EXTERNAL")
    name, expected = credentials.ExternalCredentials().response_for(start)
    assert name == External.name
    assert External().response() == expected


# -- common behaviour ------------------------------------------------------------


@pytest.mark.parametrize(
    "mechanism",
    [Plain("guest", SECRET), AMQPlain("guest", SECRET), External()],
    ids=["PLAIN", "AMQPLAIN", "EXTERNAL"],
)
def test_challenge_is_a_protocol_error(mechanism: Mechanism) -> None:
    with pytest.raises(FrameSequenceError, match=mechanism.name) as info:
        mechanism.challenge(b"some challenge")
    assert isinstance(info.value, ProtocolError)
    assert info.value.reply_code == 505
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "mechanism",
    [Plain("guest", SECRET), AMQPlain("guest", SECRET), External()],
    ids=["PLAIN", "AMQPLAIN", "EXTERNAL"],
)
def test_mechanisms_satisfy_the_protocol(mechanism: Mechanism) -> None:
    assert isinstance(mechanism, Mechanism)
    assert mechanism.name in MECHANISMS
    assert isinstance(mechanism.response(), bytes)


@pytest.mark.parametrize("cls", [Plain, AMQPlain])
def test_repr_hides_password(cls: type[Plain] | type[AMQPlain]) -> None:
    mechanism = cls("guest", SECRET)
    for text in (repr(mechanism), str(mechanism)):
        assert SECRET not in text
        assert "***" in text
        assert "guest" in text
    assert mechanism.username == "guest"
    assert not hasattr(mechanism, "password")
    assert not hasattr(mechanism, "__dict__")


def test_external_repr() -> None:
    assert repr(External()) == "External()"


@pytest.mark.parametrize("cls", [Plain, AMQPlain])
@pytest.mark.parametrize("field", ["username", "password"])
def test_credentials_must_be_str(cls: type[Plain] | type[AMQPlain], field: str) -> None:
    values: dict[str, object] = {"username": "guest", "password": "guest"}
    values[field] = b"bytes"
    with pytest.raises(TypeError, match=field):
        cls(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [Plain, AMQPlain])
def test_lone_surrogate_password_is_named_not_shown(
    cls: type[Plain] | type[AMQPlain],
) -> None:
    with pytest.raises(ValueError, match="password") as info:
        cls("guest", "bad\udcffsecret")
    assert "secret" not in str(info.value)
    assert info.value.__context__ is None


# -- mechanism_for ---------------------------------------------------------------


def test_mechanism_for_each_name() -> None:
    plain = mechanism_for("PLAIN", "u", "p")
    assert isinstance(plain, Plain)
    assert plain.response() == b"\x00u\x00p"
    amqplain = mechanism_for("AMQPLAIN", "u", "p")
    assert isinstance(amqplain, AMQPlain)
    assert amqplain.response() == AMQPlain("u", "p").response()
    external = mechanism_for("EXTERNAL", "u", "p")
    assert isinstance(external, External)
    assert external.response() == b""


def test_mechanism_for_is_case_insensitive() -> None:
    assert isinstance(mechanism_for("plain", "u", "p"), Plain)
    assert isinstance(mechanism_for("AmqPlain", "u", "p"), AMQPlain)
    assert isinstance(mechanism_for("external", "u", "p"), External)


def test_mechanism_for_unknown_name() -> None:
    with pytest.raises(ValueError, match="CRAM-MD5") as info:
        mechanism_for("CRAM-MD5", "u", SECRET)
    assert "PLAIN" in str(info.value)
    assert SECRET not in str(info.value)


def test_mechanisms_constant() -> None:
    assert MECHANISMS == ("PLAIN", "AMQPLAIN", "EXTERNAL")
    assert set(auth.__all__) >= {"Mechanism", "Plain", "AMQPlain", "External"}


# -- choose ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "offered",
    [b"AMQPLAIN PLAIN", "AMQPLAIN PLAIN", bytearray(b"PLAIN"), memoryview(b"PLAIN")],
)
def test_choose_offered(offered: str | bytes | bytearray | memoryview) -> None:
    assert choose(offered, "PLAIN") == "PLAIN"
    assert choose(offered, "plain") == "PLAIN"


def test_choose_ignores_extra_whitespace() -> None:
    assert choose(b"  PLAIN   EXTERNAL ", "EXTERNAL") == "EXTERNAL"


def test_choose_not_offered_names_the_offer() -> None:
    with pytest.raises(AuthenticationError) as info:
        choose(b"AMQPLAIN PLAIN", "EXTERNAL")
    exc = info.value
    assert isinstance(exc, ConnectionClosed)
    assert exc.reply_code == 403
    assert "EXTERNAL" in exc.reply_text
    assert "AMQPLAIN PLAIN" in exc.reply_text
    assert "EXTERNAL" in str(exc)
    # Values live in args, so the error pickles.
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is AuthenticationError
    assert again.reply_text == exc.reply_text


def test_choose_does_not_match_substrings() -> None:
    with pytest.raises(AuthenticationError, match="PLAIN"):
        choose(b"AMQPLAIN", "PLAIN")


def test_choose_nothing_offered() -> None:
    with pytest.raises(AuthenticationError, match="none"):
        choose(b"", "PLAIN")
