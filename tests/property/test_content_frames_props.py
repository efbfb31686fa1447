"""A content method's generated ``frames`` against the general writer.

``BasicPublish.frames(channel, frame_max, properties, body, **fields)`` is
the publish path: it packs the method, header and body frames straight from
the arguments, without making the method object. For every content method
of the registry it must return the bytes that ``content_frames(channel,
Cls(**fields), properties, body, frame_max)`` returns, for any valid
arguments (bodies empty, small, over frame_max, bytearray or memoryview;
frame_max 0 or any allowed size; any properties); and for a bad argument it
must raise what the constructor raises, with the same message.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqp_client import spec
from amqp_client._spec_base import Method
from amqp_client.frames import (
    BodyFrame,
    FrameReader,
    HeaderFrame,
    MethodFrame,
    content_frames,
)
from tests.property.strategies import basic_properties, method_kwargs
from tests.support.scripted_peer import valid_kwargs
from tests.unit.test_bad_arguments import BAD_VALUES

#: The content methods a client sends: only they get a generated frames()
#: (the server-sent ones, basic.return/deliver/get-ok, are only decoded).
CONTENT_METHODS: tuple[type[Method], ...] = (spec.BasicPublish,)


def test_only_client_sent_content_methods_have_frames() -> None:
    content = {cls.NAME for cls in spec.METHODS.values() if cls.HAS_CONTENT}
    assert content == {
        "basic.publish",
        "basic.return",
        "basic.deliver",
        "basic.get-ok",
    }
    have = {cls.NAME for cls in spec.METHODS.values() if hasattr(cls, "frames")}
    assert have == {cls.NAME for cls in CONTENT_METHODS}


def _joined(buffers: list[bytes | memoryview]) -> bytes:
    return b"".join(bytes(b) for b in buffers)


bodies = st.one_of(
    st.binary(max_size=300),
    st.integers(0, 20_000).map(lambda n: bytes(n % 251 for n in range(n))),
).flatmap(
    lambda data: st.sampled_from([bytes, bytearray, memoryview]).map(
        lambda kind: kind(data)
    )
)
frame_maxes = st.one_of(st.just(0), st.integers(4096, 20_000), st.just(131072))


@pytest.mark.parametrize("cls", CONTENT_METHODS, ids=lambda c: c.NAME)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_frames_equal_the_general_writer(cls: type[Any], data: st.DataObject) -> None:
    kwargs = data.draw(method_kwargs(cls))
    properties = data.draw(st.none() | basic_properties())
    body = data.draw(bodies)
    frame_max = data.draw(frame_maxes)
    channel = data.draw(st.integers(0, 0xFFFF))
    got = cls.frames(channel, frame_max, properties, body, **kwargs)
    expected = content_frames(channel, cls(**kwargs), properties, body, frame_max)
    assert _joined(got) == _joined(expected)
    # And the reader takes them back to the same method and body.
    frames = FrameReader(frame_max).feed(_joined(got))
    assert isinstance(frames[0], MethodFrame)
    assert frames[0].method == cls(**kwargs)
    assert isinstance(frames[1], HeaderFrame)
    assert frames[1].body_size == len(body)
    payloads = [f.payload for f in frames[2:] if isinstance(f, BodyFrame)]
    assert len(payloads) == len(frames) - 2
    assert b"".join(payloads) == bytes(body)


def _bad_cases() -> list[Any]:
    cases = []
    for cls in CONTENT_METHODS:
        for field in cls.FIELDS:
            for bad in BAD_VALUES[field.type]:
                cases.append(
                    pytest.param(
                        cls,
                        field.name,
                        bad.value,
                        id=f"{cls.NAME}.{field.name}-{bad.label}",
                    )
                )
    return cases


@pytest.mark.parametrize(("cls", "name", "value"), _bad_cases())
def test_a_bad_argument_raises_what_the_constructor_raises(
    cls: type[Any], name: str, value: Any
) -> None:
    kwargs = {**valid_kwargs(cls), name: value}
    try:
        cls(**kwargs).encode()
    except (TypeError, ValueError) as exc:
        expected: BaseException = exc
    else:  # pragma: no cover - every bad value is bad
        raise AssertionError(f"{cls.NAME}.{name}={value!r} was accepted")
    with pytest.raises(type(expected)) as info:
        cls.frames(1, 131072, None, b"body", **kwargs)
    assert str(info.value) == str(expected)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((1, 131072, {"content_type": "x"}, b"b"), TypeError, "properties must be"),
        ((1, 131072, spec.BasicQos(), b"b"), TypeError, "properties must be"),
        ((1, 131072, None, "text"), TypeError, "body"),
        ((-1, 131072, None, b"b"), ValueError, "channel"),
        ((1 << 16, 131072, None, b"b"), ValueError, "channel"),
        ((1, 100, None, b"b"), ValueError, "frame_max"),
        ((1, 1.5, None, b"b"), TypeError, "frame_max"),
    ],
    ids=[
        "properties-dict",
        "properties-method",
        "body-str",
        "channel-negative",
        "channel-too-big",
        "frame-max-small",
        "frame-max-float",
    ],
)
def test_bad_framing_arguments_raise(
    args: tuple[Any, ...], error: type[Exception], match: str
) -> None:
    channel, frame_max, properties, body = args
    with pytest.raises(error, match=match):
        spec.BasicPublish.frames(channel, frame_max, properties, body, "", "rk")


def test_a_bad_property_set_later_raises_naming_it() -> None:
    properties = spec.BasicProperties(priority=1)
    properties.priority = 300
    with pytest.raises(ValueError, match="priority"):
        spec.BasicPublish.frames(1, 131072, properties, b"body")
