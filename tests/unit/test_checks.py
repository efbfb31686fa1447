"""One validation module (amqp_client.checks): the URL layer and the sans-IO
core refuse the same bad arguments with the same errors, before anything
is sent."""

from __future__ import annotations

from typing import Any

import pytest

from amqp_client import auth, checks, uri
from amqp_client.protocol import Connection as Core

BAD = [
    ("heartbeat", -1, ValueError, "heartbeat: -1 is outside 0..65535"),
    ("heartbeat", 65536, ValueError, "heartbeat: 65536 is outside 0..65535"),
    ("heartbeat", True, TypeError, "heartbeat: expected int, got bool"),
    ("heartbeat", 1.5, TypeError, "heartbeat: expected int, got float"),
    ("frame_max", 4095, ValueError, "frame_max: 4095 is outside 4096..4294967295"),
    ("frame_max", 2**32, ValueError, "frame_max: 4294967296 is outside"),
    ("frame_max", "4096", TypeError, "frame_max: expected int, got str"),
    ("channel_max", 70000, ValueError, "channel_max: 70000 is outside 0..65535"),
    ("channel_max", False, TypeError, "channel_max: expected int, got bool"),
]


@pytest.mark.parametrize(("key", "value", "error", "message"), BAD)
def test_the_url_layer_and_the_core_say_the_same(
    key: str, value: object, error: type[Exception], message: str
) -> None:
    bad: dict[str, Any] = {key: value}  # wrong on purpose: not type-checked
    with pytest.raises(error, match=f"^{message}"):
        uri.parse_url("amqp://localhost").with_overrides(**bad)
    with pytest.raises(error, match=f"^{message}"):
        Core(mechanism=auth.Plain("guest", "guest"), **bad)


def test_frame_max_zero_means_no_limit() -> None:
    assert checks.frame_max(0) == 0
    assert checks.frame_max(None) is None
    assert checks.frame_max(checks.FRAME_MIN_SIZE) == checks.FRAME_MIN_SIZE


def test_shortstr_limits() -> None:
    assert checks.shortstr("vhost", "é" * 127) == "é" * 127
    with pytest.raises(ValueError, match="vhost: 256 bytes in UTF-8"):
        checks.shortstr("vhost", "é" * 128)
    with pytest.raises(ValueError, match="lone surrogate"):
        checks.shortstr("vhost", "\udc80")
    with pytest.raises(TypeError, match="vhost: expected str, got bytes"):
        checks.shortstr("vhost", b"/")


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (-5, ValueError), (True, TypeError)]
)
def test_limits_are_ints_of_at_least_one(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"^max_buffered_bytes: "):
        checks.at_least_one("max_buffered_bytes", value)
