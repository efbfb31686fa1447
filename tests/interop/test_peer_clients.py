"""pika and aio-pika exchange field tables and properties with our client.

Each peer publishes a headers table with a value of every type its encoder
writes, plus all the properties it can set, and both our fronts must read the
same values; then our client publishes every type it writes and each peer
must decode it. The expected values are spelled out per peer, type included
(``assert_same`` compares types, not only ``==``), and every place where a
peer reads or writes something other than the plain value says why.

What the peers' encoders write (pika 1.3/1.4 ``pika.data``; aio-pika through
aiormq and pamqp 3/4 ``pamqp.encode``):

=====================  =============================  ===========================
Python value           pika writes                    aio-pika (pamqp) writes
=====================  =============================  ===========================
str                    S                              S
bytes                  x                              (TypeError: bytearray only)
bytearray              (UnsupportedAMQPField)         x
int                    I, l beyond int32              smallest of b s u I i l
pika.compat.long       l                              --
bool                   t                              t
float                  (UnsupportedAMQPField)         f (float32: 0.1 is rounded)
Decimal                D                              D
datetime               T (naive taken as UTC)         T (naive taken as UTC)
dict / list / None     F / A / V                      F / A / V
=====================  =============================  ===========================
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aio_pika
import pamqp.encode
import pika
import pika.compat
import pika.data
import pika.exceptions
import pytest

from amqp_client import BasicProperties
from tests.integration.helpers import (
    STEP,
    Front,
    amqp_url,
    next_delivery,
    ready_count,
    unique,
    within,
)
from tests.interop.common import (
    WHEN,
    declare_queue,
    delete_queues,
    every_property,
    login_user,
)

pytestmark = pytest.mark.integration

UTC = datetime.UTC
#: Naive: every client here takes it as UTC and decodes it to an aware UTC.
NAIVE = datetime.datetime(2001, 9, 9, 1, 46, 40)
NAIVE_AS_UTC = NAIVE.replace(tzinfo=UTC)
BODY = "grüße, \x00 binary \xff".encode()
#: Every property but the headers (those are compared with assert_same).
OTHER_PROPERTIES = [f.name for f in BasicProperties.FIELDS if f.name != "headers"]


def properties_dict(properties: Any) -> dict[str, object]:
    """Every property but the headers, by name, of a BasicProperties or of
    what a peer decoded (the same attribute names)."""
    return {name: getattr(properties, name) for name in OTHER_PROPERTIES}


def float32(value: float) -> float:
    """``value`` rounded to the nearest float32, as an 'f' field carries it."""
    result: float = struct.unpack(">f", struct.pack(">f", value))[0]
    return result


# --- what each peer writes, and what our client must read ----------------------

PIKA_WRITES: dict[str, object] = {
    "str": "grüße ✓",
    "str_empty": "",
    "bytes": b"\x00\x01\xfe\xff",
    "int": 42,
    "int32_min": -(2**31),
    "int64": 2**40,
    "int64_min": -(2**63),
    "int64_max": 2**63 - 1,
    # pika's marker type: a small int it writes as 'l' (int64) all the same.
    "long_marker": pika.compat.long(7),
    "true": True,
    "false": False,
    "decimal": Decimal("3.14"),
    "decimal_neg": Decimal("-2.5"),
    # pika normalizes to 1E+2 and writes scale 0, value 100.
    "decimal_whole": Decimal("100"),
    "datetime": WHEN,
    "datetime_naive": NAIVE,
    "table": {"nested": {"deep": [1, "two"]}, "empty": {}},
    "list": [1, "two", True, None, Decimal("0.5"), b"\x00", WHEN, [], {"k": "v"}],
    "list_empty": [],
    "none": None,
}

CLIENT_READS_PIKA: dict[str, object] = {
    **PIKA_WRITES,
    "long_marker": 7,  # an 'l' decodes to a plain int
    "datetime_naive": NAIVE_AS_UTC,
}

AIO_PIKA_WRITES: dict[str, object] = {
    "str": "grüße ✓",
    "str_empty": "",
    "bytearray": bytearray(b"\x00\x01\xfe\xff"),
    # pamqp picks the smallest integer type: these travel as b, s, u, I, i, l
    # (tags our client reads but never writes).
    "int8": -100,
    "int16": -300,
    "uint16": 40000,
    "int32_min": -(2**31),
    "uint32": 3_000_000_000,
    "int64": 2**40,
    "int64_min": -(2**63),
    "true": True,
    "false": False,
    "float": 1.5,
    "float_inexact": 0.1,
    "decimal": Decimal("3.14"),
    "decimal_neg": Decimal("-2.5"),
    "decimal_whole": Decimal("1E+2"),
    "datetime": WHEN,
    "datetime_naive": NAIVE,
    "table": {"nested": {"deep": [1, "two"]}, "empty": {}},
    "list": [1, "two", True, None, Decimal("0.5"), bytearray(b"\x00"), WHEN, []],
    "list_empty": [],
    "none": None,
}

CLIENT_READS_AIO_PIKA: dict[str, object] = {
    **AIO_PIKA_WRITES,
    "bytearray": b"\x00\x01\xfe\xff",  # 'x' decodes to bytes
    # pamqp writes floats as float32 ('f'): 1.5 survives, 0.1 arrives as the
    # nearest float32, which our client reads exactly.
    "float_inexact": float32(0.1),
    "decimal_whole": Decimal("100"),
    "datetime_naive": NAIVE_AS_UTC,
    "list": [1, "two", True, None, Decimal("0.5"), b"\x00", WHEN, []],
}

# --- what our client writes, and what each peer must read -------------------------

CLIENT_WRITES: dict[str, object] = {
    "str": "grüße ✓",
    "str_empty": "",
    "bytes": b"\x00\x01\xfe\xff",
    "bytearray": bytearray(b"ba"),
    "memoryview": memoryview(b"mv"),
    "int": 42,
    "int32_min": -(2**31),
    "int64": 2**40,
    "int64_min": -(2**63),
    "int64_max": 2**63 - 1,
    "true": True,
    "false": False,
    "float": 2.75,
    "float_neg": -0.5,
    "decimal": Decimal("3.14"),
    "decimal_neg": Decimal("-2.5"),
    "decimal_exp": Decimal("1E+3"),
    "datetime": WHEN,
    "datetime_naive": NAIVE,
    "table": {"nested": {"deep": [1, "two"]}, "empty": {}},
    "list": [1, "two", True, None, Decimal("0.5"), b"\x00", WHEN, [], {"k": "v"}],
    "tuple": (1, "x"),
    "list_empty": [],
    "none": None,
}

long = pika.compat.long

PIKA_READS: dict[str, object] = {
    **CLIENT_WRITES,
    "bytearray": b"ba",
    "memoryview": b"mv",
    # pika decodes 'l' to its pika.compat.long (an int subclass).
    "int64": long(2**40),
    "int64_min": long(-(2**63)),
    "int64_max": long(2**63 - 1),
    # pika decodes a 'd' (float64) through long(): the value is truncated
    # to an integer (pika.data.decode_value). Its bug, not ours: the bytes
    # on the wire are the double 2.75 (aio-pika below reads it exactly).
    "float": long(2),
    "float_neg": long(0),
    "decimal_exp": Decimal("1000"),
    "datetime_naive": NAIVE_AS_UTC,
    "tuple": [1, "x"],
}

AIO_PIKA_READS: dict[str, object] = {
    **CLIENT_WRITES,
    # pamqp decodes 'x' to bytearray.
    "bytes": bytearray(b"\x00\x01\xfe\xff"),
    "bytearray": bytearray(b"ba"),
    "memoryview": bytearray(b"mv"),
    "decimal_exp": Decimal("1000"),
    "datetime_naive": NAIVE_AS_UTC,
    "list": [
        1,
        "two",
        True,
        None,
        Decimal("0.5"),
        bytearray(b"\x00"),
        WHEN,
        [],
        {"k": "v"},
    ],
    "tuple": [1, "x"],
}


def assert_same(got: object, expected: object, path: str = "headers") -> None:
    """``got == expected`` with the same types all the way down (so 1 is not
    True, b"x" is not bytearray(b"x"), an aware datetime is not a naive one)."""
    assert type(got) is type(expected), (
        f"{path}: got {type(got).__name__} {got!r}, "
        f"expected {type(expected).__name__} {expected!r}"
    )
    if isinstance(expected, Mapping):
        assert isinstance(got, Mapping)
        assert sorted(got) == sorted(expected), f"{path}: keys differ"
        for key, value in expected.items():
            assert_same(got[key], value, f"{path}[{key!r}]")
    elif isinstance(expected, list):
        assert isinstance(got, list)
        assert len(got) == len(expected), f"{path}: {got!r} != {expected!r}"
        for index, (item, value) in enumerate(zip(got, expected, strict=True)):
            assert_same(item, value, f"{path}[{index}]")
    else:
        if isinstance(expected, datetime.datetime):
            assert isinstance(got, datetime.datetime)
            assert got.utcoffset() == expected.utcoffset(), path
        assert got == expected, f"{path}: {got!r} != {expected!r}"


# --- the peers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """A message as a peer decoded it: body, headers, the other properties."""

    body: bytes
    headers: Any
    properties: dict[str, object]


@dataclass(frozen=True)
class Peer:
    name: str
    #: Publish ``body`` with every property the peer can set and its
    #: <PEER>_WRITES as headers.
    publish: Callable[[str, bytes], None]
    #: The properties (headers aside) our client must read from ``publish``.
    client_reads: Callable[[], BasicProperties]
    #: The headers our client must read from ``publish``.
    client_reads_headers: dict[str, object]
    #: Take one message; what the peer decoded.
    get: Callable[[str], Received]
    #: What the peer must decode of every_property(CLIENT_WRITES) (headers aside).
    reads: Callable[[], dict[str, object]]
    reads_headers: dict[str, object]


def pika_connection() -> Any:
    params = pika.URLParameters(amqp_url())
    params.connection_attempts = 1
    params.socket_timeout = STEP
    params.blocked_connection_timeout = STEP
    return pika.BlockingConnection(params)


def pika_publish(queue: str, body: bytes) -> None:
    properties = pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers=PIKA_WRITES,
        delivery_mode=2,
        priority=7,
        correlation_id="corr-pika",
        reply_to="reply.pika",
        expiration="600000",
        message_id="msg-pika",
        timestamp=int(WHEN.timestamp()),  # pika takes int seconds
        type="interop.pika",
        user_id=login_user(),
        app_id="pika",
        cluster_id="cluster-pika",
    )
    conn = pika_connection()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish("", queue, body, properties, mandatory=True)
    finally:
        conn.close()


def client_reads(tag: str, cluster_id: str | None) -> BasicProperties:
    """The properties (headers aside) a peer's publish sets, named after
    ``tag``, as our client must read them."""
    return BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=2,
        priority=7,
        correlation_id=f"corr-{tag}",
        reply_to=f"reply.{tag}",
        expiration="600000",
        message_id=f"msg-{tag}",
        timestamp=WHEN,  # we decode a timestamp to an aware UTC datetime
        type=f"interop.{tag}",
        user_id=login_user(),
        app_id=tag,
        cluster_id=cluster_id,
    )


def pika_get(queue: str) -> Received:
    conn = pika_connection()
    try:
        ch = conn.channel()
        method, props, body = ch.basic_get(queue, auto_ack=True)
        assert method is not None, f"pika: {queue} is empty"
    finally:
        conn.close()
    return Received(body, props.headers, properties_dict(props))


def pika_reads() -> dict[str, object]:
    expected = properties_dict(every_property(CLIENT_WRITES))
    expected["timestamp"] = int(WHEN.timestamp())  # pika decodes int seconds
    return expected


async def with_aio_pika(work: Callable[[Any], Any]) -> Any:
    async with asyncio.timeout(STEP * 3):
        connection = await aio_pika.connect(amqp_url(), timeout=STEP)
        async with connection:
            return await work(await connection.channel(publisher_confirms=True))


def aio_pika_publish(queue: str, body: bytes) -> None:
    message = aio_pika.Message(
        body,
        headers=AIO_PIKA_WRITES,  # type: ignore[arg-type]
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=7,
        correlation_id="corr-aio-pika",
        reply_to="reply.aio-pika",
        expiration=600,  # seconds; aio-pika sends "600000" (milliseconds)
        message_id="msg-aio-pika",
        timestamp=WHEN,
        type="interop.aio-pika",
        user_id=login_user(),
        app_id="aio-pika",
    )

    async def publish(channel: Any) -> None:
        await channel.default_exchange.publish(message, routing_key=queue, timeout=STEP)

    asyncio.run(with_aio_pika(publish))


def aio_pika_get(queue: str) -> Received:
    async def get(channel: Any) -> Received:
        q = await channel.get_queue(queue, ensure=False)
        message = await q.get(no_ack=True, fail=True, timeout=STEP)
        return Received(message.body, message.headers, properties_dict(message))

    result: Received = asyncio.run(with_aio_pika(get))
    return result


def aio_pika_reads() -> dict[str, object]:
    expected = properties_dict(every_property(CLIENT_WRITES))
    # aio-pika turns the expiration into float seconds ("600000" ms).
    expected["expiration"] = 600.0
    return expected


PEERS = {
    "pika": Peer(
        "pika",
        pika_publish,
        functools.partial(client_reads, "pika", cluster_id="cluster-pika"),
        CLIENT_READS_PIKA,
        pika_get,
        pika_reads,
        PIKA_READS,
    ),
    "aio-pika": Peer(
        "aio-pika",
        aio_pika_publish,
        # aio-pika's Message has no cluster_id: the flag stays clear.
        functools.partial(client_reads, "aio-pika", cluster_id=None),
        CLIENT_READS_AIO_PIKA,
        aio_pika_get,
        aio_pika_reads,
        AIO_PIKA_READS,
    ),
}


@pytest.fixture(params=sorted(PEERS))
def peer(request: pytest.FixtureRequest) -> Peer:
    return PEERS[request.param]


# --- our client's side -----------------------------------------------------------------


async def client_get(front: Front, queue: str) -> tuple[bytes, BasicProperties]:
    async with front.connect() as conn:
        ch = await within(conn.channel())
        async with await within(ch.basic_consume(queue)) as consumer:
            delivery = await next_delivery(consumer)
            await within(delivery.ack())
        assert await ready_count(conn, queue) == 0
        await within(ch.close())
    return delivery.body, delivery.properties


async def client_publish(front: Front, queue: str) -> None:
    async with front.connect() as conn:
        ch = await within(conn.channel())
        await within(ch.confirm_select())
        confirmation = await within(
            ch.basic_publish(
                BODY, routing_key=queue, properties=every_property(CLIENT_WRITES)
            )
        )
        await within(confirmation)
        await within(ch.close())


# --- the tests ----------------------------------------------------------------------------


def test_peer_message_is_read_by_client(front: Front, peer: Peer) -> None:
    queue = unique(f"peer-{peer.name}-in")
    declare_queue(queue)
    try:
        peer.publish(queue, BODY)
        body, properties = front.run(client_get, queue)
        assert body == BODY
        assert_same(properties.headers, peer.client_reads_headers)
        assert properties_dict(properties) == properties_dict(peer.client_reads())
    finally:
        delete_queues(queue)


def test_client_message_is_read_by_peer(front: Front, peer: Peer) -> None:
    queue = unique(f"peer-{peer.name}-out")
    declare_queue(queue)
    try:
        front.run(client_publish, queue)
        received = peer.get(queue)
        assert received.body == BODY
        assert_same(received.headers, peer.reads_headers)
        assert received.properties == peer.reads()
    finally:
        delete_queues(queue)


def test_expectations_cover_every_type() -> None:
    """The tables above hold a value of every type each side writes (so a
    type added to an encoder, or dropped from a table, shows here)."""
    ours = {type(value) for value in CLIENT_WRITES.values()}
    assert ours == {
        str, bytes, bytearray, memoryview, int, bool, float, Decimal,
        datetime.datetime, dict, list, tuple, type(None),
    }  # fmt: skip
    assert {type(value) for value in PIKA_WRITES.values()} == {
        str, bytes, int, pika.compat.long, bool, Decimal, datetime.datetime,
        dict, list, type(None),
    }  # fmt: skip
    assert {type(value) for value in AIO_PIKA_WRITES.values()} == {
        str, bytearray, int, bool, float, Decimal, datetime.datetime, dict, list,
        type(None),
    }  # fmt: skip


def test_what_the_peers_cannot_write() -> None:
    """The gaps in the tables above are the peers' own: pika writes no float
    and no bytearray; pamqp (aio-pika) writes no bytes, only bytearray."""
    for value in (1.5, bytearray(b"x")):
        with pytest.raises(pika.exceptions.UnsupportedAMQPFieldException):
            pika.data.encode_table([], {"k": value})
    with pytest.raises(TypeError):
        pamqp.encode.field_table({"k": b"x"})
