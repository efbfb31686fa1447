"""Codec benchmark: amqp_client against pamqp and pika, in one run.

(a) encode one publish: the basic.publish method frame, a content header
    with content_type, delivery_mode=2 and headers {"x-trace": "abc", "n": 1},
    and one 128-byte body frame, joined into the bytes a transport writes.
(b) decode a buffer of 10,000 basic.deliver + header + 128-byte body frames
    into what a consumer that reads only the body needs: method objects
    (delivery tag, routing) and bodies. amqp_client decodes a delivery's
    properties on first access (its C speedups check them on arrival);
    pika and pamqp decode them all, always.
(b2) the same, then one property of every delivery read (its headers),
    which makes amqp_client decode every delivery's properties too.

Each library runs the way it runs inside its own client:

amqp_client runs with its optional C speedups (field tables, the generated
classes' decoders and the properties encoder) when they are built, as an
installed client does; ``AMQP_CLIENT_NO_SPEEDUPS=1`` measures its pure
Python code instead; the output says which ran.

* amqp_client: ``BasicPublish.frames`` to encode, as ``basic_publish``
  does through the protocol core (the frames made straight from the
  arguments, no method object); ``FrameReader.feed`` on the
  256 KiB chunks asyncio's transport hands over (its ``max_size``), with
  ``coalesce=True`` as the protocol core makes it: a deliver whose header
  and body are in the same chunk comes back as one ContentFrame.
* pika: its own ``Connection`` with the I/O adapter cut off:
  ``_send_message`` marshals the frames it would write; ``_on_data_available``
  (append, ``frame.decode_frame``, trim) runs on pika's 4 KiB socket reads.
* pamqp: ``pamqp.frame.marshal`` per frame as aiormq does; to decode, each
  frame cut out of the buffer and passed to ``pamqp.frame.unmarshal``, as
  aiormq's reader does after ``readexactly`` (its socket reads not counted).

Best of several rounds, each round timing every library once in turn (so a
busy machine slows them alike); prints ops/s and the ratios. Not a test: timings
are never asserted. Run with ``make bench`` or ``python bench/codec.py``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import struct
import sys
import time
from collections.abc import Callable

import pamqp
import pamqp.body
import pamqp.commands
import pamqp.frame
import pamqp.header
import pika
import pika.compat
import pika.connection
import pika.frame
import pika.spec

import amqp_client
from amqp_client import spec, wire
from amqp_client.frames import (
    BodyFrame,
    ContentFrame,
    Frame,
    FrameReader,
    HeaderFrame,
    MethodFrame,
    content_frames,
)

BODY = bytes(range(128))
HEADERS = {"x-trace": "abc", "n": 1}
FRAME_MAX = 131072
DELIVERIES = 10_000


# --- (a) encode one publish ------------------------------------------------------


def encode_ours() -> bytes:
    # Connection.basic_publish's body in the protocol core (the channel and
    # connection checks aside): the generated writer of basic.publish.
    frames = spec.BasicPublish.frames(
        1,
        FRAME_MAX,
        spec.BasicProperties(
            content_type="text/plain", delivery_mode=2, headers=HEADERS
        ),
        BODY,
        "",
        "bench",
    )
    return frames[0] if len(frames) == 1 else b"".join(frames)


class _PikaConnection(pika.connection.Connection):
    """pika's own Connection with the I/O adapter cut off: what it would
    write is collected, the frames it reads are collected."""

    def __init__(self) -> None:
        super().__init__(
            pika.ConnectionParameters(), internal_connection_workflow=False
        )
        self._body_max_length = FRAME_MAX - 8  # as after connection.tune
        self.written: list[bytes] = []
        self.frames: list[object] = []

    def _adapter_call_later(self, delay: float, callback: Callable[[], None]) -> None:
        raise NotImplementedError

    def _adapter_remove_timeout(self, timeout_id: object) -> None:
        raise NotImplementedError

    def _adapter_add_callback_threadsafe(self, callback: Callable[[], None]) -> None:
        raise NotImplementedError

    def _adapter_connect_stream(self) -> None:
        raise NotImplementedError

    def _adapter_disconnect_stream(self) -> None:
        raise NotImplementedError

    def _adapter_emit_data(self, data: bytes) -> None:
        self.written.append(data)

    def _process_frame(self, frame_value: object) -> None:
        self.frames.append(frame_value)


_PIKA = _PikaConnection()


def encode_pika() -> bytes:
    # Channel.basic_publish's body, then pika's own Connection._send_message
    # (Method, Header and Body frames marshalled and handed to the adapter).
    body = pika.compat.as_bytes(BODY)
    properties = pika.spec.BasicProperties(
        content_type="text/plain", delivery_mode=2, headers=HEADERS
    )
    method = pika.spec.Basic.Publish(exchange="", routing_key="bench", mandatory=False)
    _PIKA.written = []
    _PIKA._send_message(1, method, (properties, body))
    return b"".join(_PIKA.written)


def encode_pamqp() -> bytes:
    props = pamqp.commands.Basic.Properties(
        content_type="text/plain", delivery_mode=2, headers=HEADERS
    )
    return b"".join(
        (
            pamqp.frame.marshal(
                pamqp.commands.Basic.Publish(exchange="", routing_key="bench"), 1
            ),
            pamqp.frame.marshal(pamqp.header.ContentHeader(0, len(BODY), props), 1),
            pamqp.frame.marshal(pamqp.body.ContentBody(BODY), 1),
        )
    )


# --- (b) decode 10,000 deliveries ---------------------------------------------------


def delivery_stream(count: int) -> bytes:
    props = spec.BasicProperties(
        content_type="text/plain", delivery_mode=2, headers=HEADERS
    )
    parts = []
    for tag in range(1, count + 1):
        method = spec.BasicDeliver("ctag-1", tag, exchange="", routing_key="bench")
        parts.extend(content_frames(1, method, props, BODY, FRAME_MAX))
    return b"".join(parts)


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def decode_ours(pieces: list[bytes]) -> int:
    # The reader as the protocol core makes it: a deliver, its header and its
    # body found together come back as one ContentFrame.
    reader = FrameReader(FRAME_MAX, coalesce=True)
    frames = []
    for piece in pieces:
        frames.extend(reader.feed(piece))
    return len(frames)


def _messages(frames: list[Frame]) -> list[tuple[object, object, bytes]]:
    """(method, properties, body) per message, whether coalesced or not."""
    out: list[tuple[object, object, bytes]] = []
    method: object = None
    properties: object = None
    for frame in frames:
        if isinstance(frame, ContentFrame):
            out.append((frame.method, frame.properties, frame.body))
        elif isinstance(frame, MethodFrame):
            method = frame.method
        elif isinstance(frame, HeaderFrame):
            properties = frame.properties
        elif isinstance(frame, BodyFrame):
            out.append((method, properties, frame.payload))
    return out


def decode_ours_touching(pieces: list[bytes]) -> int:
    # (b2): every delivery's properties read, so decoded.
    reader = FrameReader(FRAME_MAX, coalesce=True)
    count = 0
    for piece in pieces:
        for frame in reader.feed(piece):
            if isinstance(frame, ContentFrame | HeaderFrame):
                _ = frame.properties.headers  # type: ignore[attr-defined]  # BasicProperties here
            count += 1
    return count


def decode_pika_touching(pieces: list[bytes]) -> int:
    connection = _PikaConnection()
    for piece in pieces:
        connection._on_data_available(piece)
    for frame in connection.frames:
        if isinstance(frame, pika.frame.Header):
            _ = frame.properties.headers
    return len(connection.frames)


def decode_pamqp_touching(data: bytes) -> int:
    frames = []
    unmarshal = pamqp.frame.unmarshal
    header = struct.Struct(">BHI").unpack_from
    offset, end = 0, len(data)
    while offset < end:
        size = header(data, offset)[2]
        stop = offset + size + 8
        frame = unmarshal(data[offset:stop])[2]
        if isinstance(frame, pamqp.header.ContentHeader):
            _ = frame.properties.headers
        frames.append(frame)
        offset = stop
    return len(frames)


def decode_pika(pieces: list[bytes]) -> int:
    # pika's own Connection._on_data_available on each 4 KiB socket read.
    connection = _PikaConnection()
    for piece in pieces:
        connection._on_data_available(piece)
    return len(connection.frames)


def decode_pamqp(data: bytes) -> int:
    # aiormq: read the 7-byte frame header, then payload + frame-end, unmarshal.
    frames = []
    unmarshal = pamqp.frame.unmarshal
    header = struct.Struct(">BHI").unpack_from
    offset, end = 0, len(data)
    while offset < end:
        size = header(data, offset)[2]
        stop = offset + size + 8
        frames.append(unmarshal(data[offset:stop]))
        offset = stop
    return len(frames)


def boundaries_only(data: bytes) -> int:
    """The floor: find the frame boundaries and do nothing else."""
    header = struct.Struct(">BHI").unpack_from
    count, offset, end = 0, 0, len(data)
    while offset < end:
        offset += header(data, offset)[2] + 8
        count += 1
    return count


# --- measuring ---------------------------------------------------------------------


def codecs() -> str:
    """Which codecs amqp_client runs: its C speedups or pure Python."""
    if wire.c_decode_fields is not None:
        return "with the C speedups (amqp_client._speedups)"
    if os.environ.get("AMQP_CLIENT_NO_SPEEDUPS"):
        return "pure Python (AMQP_CLIENT_NO_SPEEDUPS is set)"
    return "pure Python (the C speedups are not built)"


def best_rates(
    fns: dict[str, tuple[Callable[[], object], int]],
    repeats: int,
    min_time: float = 0.2,
) -> dict[str, float]:
    """Best ops/s of each ``fn`` (each run does ``ops`` ops) over ``repeats``
    rounds. Each round times every library once, one after the other, so
    that a busy machine slows them alike and the ratios hold."""
    loops: dict[str, int] = {}
    for name, (fn, _) in fns.items():
        n = 1
        while True:
            start = time.perf_counter()
            for _ in range(n):
                fn()
            if time.perf_counter() - start >= min_time:
                break
            n *= 2
        loops[name] = n
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, (fn, _) in fns.items():
            gc.collect()
            start = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / loops[name])
    return {name: fns[name][1] / best[name] for name in fns}


def best_rate(
    fn: Callable[[], object], ops: int, repeats: int, min_time: float = 0.2
) -> float:
    """Best ops/s over ``repeats`` runs of ``fn`` (each run does ``ops`` ops)."""
    return best_rates({"fn": (fn, ops)}, repeats, min_time)["fn"]


def check_agreement(stream: bytes) -> None:
    """All three libraries must agree on the bytes before speed is compared."""
    ours, theirs_pika, theirs_pamqp = encode_ours(), encode_pika(), encode_pamqp()
    reader = FrameReader(FRAME_MAX)
    for other in (theirs_pika, theirs_pamqp):
        a, b = reader.feed(ours), reader.feed(other)
        assert [type(f) for f in a] == [MethodFrame, HeaderFrame, BodyFrame], a
        assert a == b, (a, b)
    frames = FrameReader(FRAME_MAX).feed(stream)
    assert len(frames) == 3 * DELIVERIES
    # Coalesced or not, the reader finds the same deliveries.
    separate = _messages(frames)
    assert len(separate) == DELIVERIES
    reader = FrameReader(FRAME_MAX, coalesce=True)
    joined = [reader.feed(piece) for piece in chunks(stream, 256 * 1024)]
    assert _messages([f for part in joined for f in part]) == separate
    assert decode_pika(chunks(stream, 4096)) == 3 * DELIVERIES
    assert decode_pamqp(stream) == 3 * DELIVERIES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats

    stream = delivery_stream(DELIVERIES)
    check_agreement(stream)
    ours_pieces = chunks(stream, 256 * 1024)
    pika_pieces = chunks(stream, 4096)

    print(
        f"python {platform.python_version()} on {platform.machine()}; amqp_client "
        f"{amqp_client.__version__}, pamqp {pamqp.__version__}, pika {pika.__version__}"
    )
    print(f"amqp_client codecs: {codecs()}")
    print(
        f"stream: {DELIVERIES:,} deliveries, {len(stream):,} bytes, {3 * DELIVERIES:,} frames\n"
    )

    encode = best_rates(
        {
            "amqp_client": (encode_ours, 1),
            "pamqp": (encode_pamqp, 1),
            "pika": (encode_pika, 1),
        },
        repeats,
    )
    decode = best_rates(
        {
            "amqp_client": (lambda: decode_ours(ours_pieces), DELIVERIES),
            "pamqp": (lambda: decode_pamqp(stream), DELIVERIES),
            "pika": (lambda: decode_pika(pika_pieces), DELIVERIES),
        },
        repeats,
    )
    touching = best_rates(
        {
            "amqp_client": (lambda: decode_ours_touching(ours_pieces), DELIVERIES),
            "pamqp": (lambda: decode_pamqp_touching(stream), DELIVERIES),
            "pika": (lambda: decode_pika_touching(pika_pieces), DELIVERIES),
        },
        repeats,
    )
    floor = best_rates(
        {"floor": (lambda: boundaries_only(stream), DELIVERIES)}, repeats
    )["floor"]

    for title, rates, unit in (
        (
            "(a) encode one publish (method + header + 128 B body)",
            encode,
            "publishes/s",
        ),
        ("(b) decode deliver + header + 128 B body", decode, "deliveries/s"),
        (
            "(b2) decode, and read every delivery's properties",
            touching,
            "deliveries/s",
        ),
    ):
        peer = max(rates["pamqp"], rates["pika"])
        print(title)
        for name, rate in rates.items():
            print(
                f"  {name:<12} {rate:>12,.0f} {unit}   {rate / peer:5.2f}x the faster peer"
            )
        print(
            f"  amqp_client / pamqp = {rates['amqp_client'] / rates['pamqp']:.2f}x, "
            f"amqp_client / pika = {rates['amqp_client'] / rates['pika']:.2f}x\n"
        )
    print(f"(b) floor: finding frame boundaries only: {floor:,.0f} deliveries/s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
