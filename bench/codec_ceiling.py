"""How fast pure Python can go on bench/codec.py's two workloads, at best.

Not the client and not a test: each workload written out by hand for
exactly the messages the benchmark uses, with everything a real codec
needs left out: no validation of arguments, no error handling, no other
field types or property flags, no frame-max or channel checks, no
registries. The output is checked against amqp_client's (the same bytes;
the same methods, properties and bodies) before anything is timed, and
pika runs in the same process as the yardstick, as in bench/codec.py.

What it shows: the ratio to pika that no pure-Python codec doing this
work can beat by much on this interpreter, since object creation, struct
calls and bytes joins cost the same whoever makes them. amqp_client's own
row runs with its C speedups when they are built (``AMQP_CLIENT_NO_SPEEDUPS=1``
for its pure-Python code). Run with
``python bench/codec_ceiling.py`` (``--quick`` for fewer repeats).
"""

from __future__ import annotations

import argparse
import platform
import struct
import sys
from typing import Any

from codec import (
    BODY,
    DELIVERIES,
    FRAME_MAX,
    HEADERS,
    _messages,
    best_rate,
    chunks,
    decode_ours,
    decode_pika,
    delivery_stream,
    encode_ours,
    encode_pika,
)

from amqp_client import spec
from amqp_client.frames import FrameReader

_OCTETS = tuple(bytes((i,)) for i in range(256))
_METHOD_HEAD = struct.Struct(">BHIHH").pack
_HEADER_HEAD = struct.Struct(">BBHIHHQH").pack
_BODY_HEAD = struct.Struct(">BBHI").pack
_TAG_U32 = struct.Struct(">BI").pack
_TAG_I32 = struct.Struct(">Bi").pack
_U32 = struct.Struct(">I").pack


def encode_by_hand() -> bytes:
    """(a) with the same objects made, then every byte placed inline."""
    method = spec.BasicPublish(exchange="", routing_key="bench")
    props = spec.BasicProperties(
        content_type="text/plain", delivery_mode=2, headers=HEADERS
    )
    exchange = method.exchange.encode()
    routing_key = method.routing_key.encode()
    content_type = props.content_type.encode()  # type: ignore[union-attr]
    table: list[bytes] = []
    for key, value in props.headers.items():  # type: ignore[union-attr]
        raw = key.encode()
        table += (_OCTETS[len(raw)], raw)
        if type(value) is str:
            data = value.encode()
            table += (_TAG_U32(0x53, len(data)), data)
        else:
            table.append(_TAG_I32(0x49, value))
    headers = b"".join(table)
    size = len(BODY)
    props_size = 2 + 1 + len(content_type) + 4 + len(headers) + 1
    args_size = 2 + 1 + len(exchange) + 1 + len(routing_key) + 1
    return b"".join(
        (
            _METHOD_HEAD(1, 1, 4 + args_size, 60, 40),
            b"\x00\x00",
            _OCTETS[len(exchange)],
            exchange,
            _OCTETS[len(routing_key)],
            routing_key,
            b"\x00",
            _HEADER_HEAD(0xCE, 2, 1, props_size + 12, 60, 0, size, 0xB000),
            _OCTETS[len(content_type)],
            content_type,
            _U32(len(headers)),
            headers,
            _OCTETS[props.delivery_mode],  # type: ignore[index]
            _BODY_HEAD(0xCE, 3, 1, size),
            BODY,
            b"\xce",
        )
    )


_FRAME_HEAD = struct.Struct(">BHI").unpack_from
_HEADER_FRAME = struct.Struct(">BHIHHQH").unpack_from
_DELIVER_FIXED = struct.Struct(">QBB").unpack_from
_READ_U32 = struct.Struct(">I").unpack_from
_READ_I32 = struct.Struct(">i").unpack_from


def _decode_buffer(data: bytes, out: list[Any]) -> int:
    """(b) for whole deliveries in ``data``; returns where the tail starts."""
    new = object.__new__
    deliver, properties = spec.BasicDeliver, spec.BasicProperties
    append = out.append
    n = len(data)
    pos = 0
    while n - pos >= 8:
        size = _FRAME_HEAD(data, pos)[2]
        end = pos + 7 + size
        hpos = end + 1
        if n - hpos < 22:
            break
        _, _, hsize, _, _, body_size, _ = _HEADER_FRAME(data, hpos)
        hend = hpos + 7 + hsize
        bpos = hend + 1
        bend = bpos + 7 + body_size
        if bend >= n:
            break
        o = pos + 11  # past the frame head, class-id and method-id
        m = new(deliver)
        k = data[o]
        o += 1
        m.consumer_tag = data[o : o + k].decode()
        o += k
        m.delivery_tag, bits, k = _DELIVER_FIXED(data, o)
        o += 10
        m.redelivered = bits & 1 == 1
        m.exchange = data[o : o + k].decode()
        o += k
        k = data[o]
        o += 1
        m.routing_key = data[o : o + k].decode()
        o = hpos + 21  # past the header frame head, class, weight, size, flags
        p = new(properties)
        k = data[o]
        p.content_type = data[o + 1 : o + 1 + k].decode()
        o += 1 + k
        table_end = o + 4 + _READ_U32(data, o)[0]
        o += 4
        headers: dict[str, object] = {}
        while o < table_end:
            start = o + 1
            o = start + data[o]
            key = data[start:o].decode()
            if data[o] == 0x53:
                start = o + 5
                o = start + _READ_U32(data, o + 1)[0]
                headers[key] = data[start:o].decode()
            else:
                headers[key] = _READ_I32(data, o + 1)[0]
                o += 5
        p.headers = headers
        p.delivery_mode = data[o]
        p.content_encoding = p.priority = p.correlation_id = p.reply_to = None
        p.expiration = p.message_id = p.timestamp = p.type = None
        p.user_id = p.app_id = p.cluster_id = None
        append((1, m, p, data[bpos + 7 : bend]))
        pos = bend + 1
    return pos


def decode_by_hand(pieces: list[bytes]) -> list[Any]:
    out: list[Any] = []
    tail = b""
    for piece in pieces:
        data = tail + piece if tail else piece
        tail = data[_decode_buffer(data, out) :]
    return out


def check() -> None:
    assert encode_by_hand() == encode_ours()
    stream = delivery_stream(DELIVERIES)
    expected = _messages(FrameReader(FRAME_MAX).feed(stream))
    got = decode_by_hand(chunks(stream, 256 * 1024))
    assert [(m, p, b) for _, m, p, b in got] == expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    repeats = 3 if parser.parse_args().quick else 7
    check()
    stream = delivery_stream(DELIVERIES)
    ours_pieces = chunks(stream, 256 * 1024)
    pika_pieces = chunks(stream, 4096)
    rates = {
        "(a) encode": (
            best_rate(encode_ours, 1, repeats),
            best_rate(encode_by_hand, 1, repeats),
            best_rate(encode_pika, 1, repeats),
        ),
        "(b) decode": (
            best_rate(lambda: decode_ours(ours_pieces), DELIVERIES, repeats),
            best_rate(lambda: decode_by_hand(ours_pieces), DELIVERIES, repeats),
            best_rate(lambda: decode_pika(pika_pieces), DELIVERIES, repeats),
        ),
    }
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"{'':12} {'amqp_client':>14} {'by hand':>14} {'pika':>14}")
    for name, (ours, by_hand, pika) in rates.items():
        print(
            f"{name:12} {ours:>12,.0f}/s {by_hand:>12,.0f}/s {pika:>12,.0f}/s"
            f"   vs pika: amqp_client {ours / pika:.2f}x, by hand {by_hand / pika:.2f}x"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
