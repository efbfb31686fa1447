"""The checks of connection arguments, in one place.

Owns: how a URL's parts and ``connect()``'s keywords are checked (types,
ranges, the protocol's field limits) and what their errors say
(``"<key>: ..."``). Used by :mod:`amqp_client.uri` (the URL and its
keyword overrides), the sans-IO core (:class:`amqp_client.protocol.Connection`
checks what it is given, for users who drive it without a URL) and the
session (buffer limits). It may not touch sockets, the clock or the
session; a method's own fields are checked by the generated classes
(:mod:`amqp_client._spec_base`), not here.

Every check returns the value (normalised where it says so) or raises
``TypeError`` for a wrong type and ``ValueError`` for a value out of range;
``bool`` is never accepted where an ``int`` is (``heartbeat=True`` is a
mistake, not 1).
"""

from __future__ import annotations

from amqp_client.spec.constants import FRAME_MIN_SIZE

__all__ = [
    "FRAME_MIN_SIZE",
    "BUSY_POLL_MAX",
    "SHORTSTR_MAX",
    "U16_MAX",
    "U32_MAX",
    "at_least_one",
    "busy_poll",
    "frame_max",
    "integer",
    "optional_integer",
    "shortstr",
    "text",
    "type_error",
]

# Field limits of AMQP 0-9-1: heartbeat and channel-max are shorts,
# frame-max a long of at least frame-min-size unless 0 (no limit); vhost
# and locale are shortstrs.
U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF
SHORTSTR_MAX = 255

#: The longest ``busy_poll``, seconds: a spin avoids the wake-up of a
#: sleeping thread (tens of microseconds), so only replies that come
#: within a few hundred microseconds gain from one.
BUSY_POLL_MAX = 0.01


def type_error(key: str, expected: str, value: object) -> TypeError:
    """``key: expected <expected>, got <type>``."""
    return TypeError(f"{key}: expected {expected}, got {type(value).__name__}")


def text(key: str, value: object) -> str:
    """A ``str``."""
    if not isinstance(value, str):
        raise type_error(key, "str", value)
    return value


def shortstr(key: str, value: object) -> str:
    """A ``str`` of at most 255 bytes in UTF-8."""
    string = text(key, value)
    try:
        size = len(string.encode())
    except UnicodeEncodeError:
        raise ValueError(f"{key}: not encodable as UTF-8 (a lone surrogate?)") from None
    if size > SHORTSTR_MAX:
        raise ValueError(
            f"{key}: {size} bytes in UTF-8, longer than the "
            f"{SHORTSTR_MAX} of a shortstr"
        )
    return string


def integer(key: str, value: object, low: int, high: int) -> int:
    """An ``int`` in ``low..high`` (``bool`` refused)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise type_error(key, "int", value)
    if not low <= value <= high:
        raise ValueError(f"{key}: {value} is outside {low}..{high}")
    return value


def optional_integer(key: str, value: object, low: int, high: int) -> int | None:
    """None, or an ``int`` in ``low..high``."""
    return None if value is None else integer(key, value, low, high)


def frame_max(value: object, key: str = "frame_max") -> int | None:
    """None, 0 ("no limit", connection.tune) or frame-min-size..2**32-1."""
    if value is None:
        return None
    if type(value) is int and value == 0:
        return 0
    return integer(key, value, FRAME_MIN_SIZE, U32_MAX)


def at_least_one(key: str, value: object) -> int:
    """An ``int`` >= 1: a limit (buffered bytes or messages, message size)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise type_error(key, "int", value)
    if value < 1:
        raise ValueError(f"{key}: must be at least 1, got {value}")
    return value


def busy_poll(value: object) -> float:
    """Seconds in ``0..BUSY_POLL_MAX`` (an ``int`` or ``float``; 0 is off)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise type_error("busy_poll", "seconds (float)", value)
    if not 0 <= value <= BUSY_POLL_MAX:  # (NaN fails this too)
        raise ValueError(f"busy_poll: expected 0..{BUSY_POLL_MAX:g} s, got {value!r}")
    return float(value)
