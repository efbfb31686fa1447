"""Mutation fuzzing of the sans-IO core: one harness, two drivers.

(It replaced an earlier, smaller fuzz module with the same scripts idea;
every check that one made is made here too.)

Valid broker byte streams (*scripts*: the handshake, channel opens, QoS and
consume replies, deliveries with header and body frames, publisher
confirms, returns, blocked/unblocked, channel and connection closes,
heartbeats), each with the client's own commands at their place, are
mutated and fed to a fresh :class:`~amqp_client.protocol.Connection` in
random chunks, with a fake clock that also drives ``handle_timers``. The
mutators: bit flips, truncation, byte and frame-boundary splices of two
streams, a wrong frame size field, a wrong body size in a content header,
unknown class/method ids, another method's ids, unknown frame types, a bad
frame-end octet, wrong channel ids, content frames out of place, injected
methods, dropped/repeated/swapped frames, random bytes.

The checker (:func:`run_case`) asserts only documented outcomes happen:

* ``receive_data``, ``receive_eof``, ``handle_timers``, ``reading_paused``
  and ``connection_lost`` never raise; the script's commands raise nothing
  but ``AMQPError`` (``UsageError`` or the connection's error) when the
  mutated stream took the connection elsewhere;
* events are the documented types; at most one ``ConnectionTerminated``,
  last, after which nothing is emitted or sent; its error is None (only
  after the client's own close), a ``ConnectionClosed`` (the broker's close,
  a lost transport, a heartbeat timeout, a refused login) or a
  ``ProtocolError`` -- then exactly ``FrameDecodeError`` (501) or
  ``FrameSequenceError`` (505), and the last bytes queued are a
  connection.close carrying that code and the error's text;
* everything queued decodes as well-formed client frames;
* output and events are bounded by the input (no amplification, no loop);
* targeted mutations are *detected*: an unknown frame type, a bad frame-end,
  a frame over frame_max, unknown method ids or a heartbeat on a channel
  give 501; a frame moved to a channel never opened, a body or header frame
  with no content in progress, or a content header announcing fewer bytes
  than follow give a ``ProtocolError`` -- whenever the connection was in a
  state where it reads such frames when the bad one arrived.

Hangs: the per-test timeout guards the pytest run; the long run reports the
slowest input.

Drivers:

* pytest (CI): hypothesis draws each case through ``st.randoms()`` (so a
  failure shrinks), ``MUTATION_EXAMPLES`` examples (default 400).
* the long run, without hypothesis (its per-example overhead is too high
  for millions of inputs): a seeded ``random.Random`` per input drives the
  very same :func:`make_case` and :func:`run_case`::

      .venv/bin/python -m tests.property.test_protocol_mutation 1000000 --seed 1

  ``make fuzz`` runs it with ``FUZZ_INPUTS`` (default 1,000,000). Input
  ``i`` of seed ``s`` is ``make_case(random.Random(s * 10**9 + i))``; a
  failure prints ``--replay s:i``, which reruns that input alone with its
  traceback. A crasher found that way becomes an explicit regression test
  here (its bytes and chunking, not its seed: seeds follow the generator).
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import random
import struct
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqp_client import auth, spec
from amqp_client._spec_base import Method
from amqp_client.errors import (
    AMQPError,
    AuthenticationError,
    ConnectionClosed,
    FrameDecodeError,
    FrameSequenceError,
    ProtocolError,
    UsageError,
)
from amqp_client.frames import (
    PROTOCOL_HEADER,
    Frame,
    FrameReader,
    HeartbeatFrame,
    MethodFrame,
)
from amqp_client.protocol import Connection, ConnectionState
from amqp_client.protocol import events as ev
from tests.support.scripted_peer import (
    body,
    channel_open_ok,
    content,
    deliver,
    header,
    heartbeat,
    method,
    raw_frame,
    start,
    tune,
    valid_kwargs,
)

#: Hypothesis examples per pytest run (CI keeps it modest).
MUTATION_EXAMPLES = int(os.environ.get("MUTATION_EXAMPLES", "400"))

EVENT_TYPES = (
    ev.ConnectionOpened,
    ev.ConnectionTerminated,
    ev.ConnectionBlocked,
    ev.ConnectionUnblocked,
    ev.ChannelOpened,
    ev.ChannelTerminated,
    ev.ReplyReceived,
    ev.GetReceived,
    ev.DeliveryReceived,
    ev.ReturnReceived,
    ev.PublishAcked,
    ev.PublishNacked,
    ev.ChannelFlowChanged,
    ev.ConsumerCancelled,
)

ALIVE = frozenset(ConnectionState) - {ConnectionState.INITIAL, ConnectionState.CLOSED}
#: States in which frames on channels other than 0 are read (not discarded).
READING_CHANNELS = ALIVE - {ConnectionState.CLOSING}

#: The largest frame_max any script negotiates: a frame size field over
#: ``LARGEST_FRAME_MAX - 8`` is over the limit in every state.
LARGEST_FRAME_MAX = 131072

#: Channel ids at or above this are never opened by a script.
UNUSED_CHANNELS = 8


# -- scripts: valid broker streams with the client's commands in place -------------


@dataclass(frozen=True)
class Command:
    """A client command the script runs at a byte offset of its stream."""

    name: str
    run: Callable[[Connection], object]

    def __repr__(self) -> str:
        return self.name


@dataclass
class Script:
    """Broker bytes, and client commands at byte offsets into them."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: the terminal error type of the unmutated script (None: a clean close)
    outcome: type[AMQPError] | None = None
    data: bytes = b""
    commands: list[tuple[int, Command]] = field(default_factory=list)

    def recv(self, *chunks: bytes) -> Script:
        self.data += b"".join(chunks)
        return self

    def do(self, name: str, run: Callable[[Connection], object]) -> Script:
        self.commands.append((len(self.data), Command(name, run)))
        return self

    def call(self, channel: int, m: Method) -> Script:
        return self.do(f"call({channel}, {m.NAME})", lambda c: c.call(channel, m))

    def send(self, channel: int, m: Method) -> Script:
        return self.do(f"send({channel}, {m.NAME})", lambda c: c.send(channel, m))

    def publish(
        self, channel: int, payload: bytes, *, mandatory: bool = False
    ) -> Script:
        def run(conn: Connection) -> object:
            return conn.publish(
                channel,
                spec.BasicPublish("ex", "rk", mandatory=mandatory),
                spec.BasicProperties(content_type="text/plain", headers={"n": 1}),
                payload,
            )

        return self.do(f"publish({channel}, {len(payload)} bytes)", run)

    def handshake(self, **tune_values: int) -> Script:
        return self.recv(
            start(), tune(**tune_values), method(0, spec.ConnectionOpenOk())
        )

    def open(self, channel: int) -> Script:
        self.do("open_channel()", lambda c: c.open_channel())
        return self.recv(channel_open_ok(channel))

    def connection(self, factory: type[Connection] = Connection) -> Connection:
        kwargs = {"mechanism": auth.Plain("guest", "guest"), **self.kwargs}
        return factory(**kwargs)

    def __repr__(self) -> str:
        return f"<script {self.name}>"


def _consume_script() -> Script:
    s = Script("consume", kwargs={"heartbeat": 10})
    s.handshake(heartbeat=60).open(1)
    s.call(1, spec.BasicQos(prefetch_count=10)).recv(method(1, spec.BasicQosOk()))
    s.call(1, spec.BasicConsume("q", "ctag")).recv(
        method(1, spec.BasicConsumeOk("ctag"))
    )
    props = spec.BasicProperties(
        content_type="application/json",
        headers={"x-death": [{"count": 1, "reason": "expired"}], "flag": True},
        delivery_mode=2,
        priority=3,
        message_id="m-1",
    )
    for tag, payload in enumerate([b"", b"hello", b"x" * 300], start=1):
        s.recv(deliver(1, payload, delivery_tag=tag, properties=props))
    s.send(1, spec.BasicAck(3, multiple=True))
    s.recv(
        method(1, spec.ChannelFlow(active=False)),
        heartbeat(),
        method(1, spec.ChannelFlow(active=True)),
    )
    s.call(1, spec.BasicGet("q")).recv(
        content(1, spec.BasicGetOk(4, "", "q", 1), b"got it")
    )
    s.call(1, spec.BasicGet("q")).recv(method(1, spec.BasicGetEmpty()))
    s.recv(method(1, spec.BasicCancel("ctag")))
    s.call(1, spec.QueueDeclare("missing", passive=True))
    s.recv(method(1, spec.ChannelClose(404, "NOT_FOUND - no queue 'missing'", 50, 10)))
    s.do("close()", lambda c: c.close())
    return s.recv(method(0, spec.ConnectionCloseOk()))


def _confirms_script() -> Script:
    s = Script(
        "confirms",
        kwargs={"connection_name": "fuzz"},
        outcome=spec.ConnectionForcedError,
    )
    s.handshake().open(1).open(2)
    s.call(1, spec.ConfirmSelect()).recv(method(1, spec.ConfirmSelectOk()))
    for i in range(5):
        s.publish(1, b"message %d" % i, mandatory=i == 4)
    s.recv(
        method(1, spec.BasicAck(2)),
        heartbeat(),
        method(1, spec.BasicAck(4, multiple=True)),
        content(1, spec.BasicReturn(312, "NO_ROUTE", "ex", "rk"), b"message 4"),
        method(1, spec.BasicNack(5)),
        method(0, spec.ConnectionBlocked("low on memory")),
        method(0, spec.ConnectionUnblocked()),
    )
    # Pipelined requests: the second call and the publish wait for the first.
    s.call(2, spec.QueueDeclare("", exclusive=True, arguments={"x-max-length": 10}))
    s.call(2, spec.QueueBind("amq.gen-1", "ex", "rk"))
    s.publish(2, b"queued behind the bind")
    s.recv(
        method(2, spec.QueueDeclareOk("amq.gen-1", 0, 0)),
        method(2, spec.QueueBindOk()),
    )
    s.call(0, spec.ConnectionUpdateSecret(b"token", "rotation"))
    s.recv(method(0, spec.ConnectionUpdateSecretOk()))
    s.do("close_channel(2)", lambda c: c.close_channel(2))
    s.recv(method(2, spec.ChannelCloseOk()))
    return s.recv(method(0, spec.ConnectionClose(320, "CONNECTION_FORCED - shutdown")))


def _frames_script() -> Script:
    s = Script("frames", kwargs={"frame_max": 4096})
    s.handshake(frame_max=4096).open(1).open(2)
    big = bytes(range(256)) * 40  # three body frames at frame_max 4096
    s.recv(deliver(1, big, frame_max=4096))
    # Content of two channels interleaved frame by frame (§4.2.6 allows it).
    s.recv(
        method(1, spec.BasicDeliver("c1", 2)),
        method(2, spec.BasicDeliver("c2", 1)),
        header(1, 5000),
        header(2, 4),
        body(1, big[:4000]),
        body(2, b"two!"),
        body(1, big[:1000]),
    )
    s.publish(2, big)
    # A delivery still arriving on a channel the client is closing.
    s.do("close_channel(1)", lambda c: c.close_channel(1))
    s.recv(deliver(1, b"late", delivery_tag=3), method(1, spec.ChannelCloseOk()))
    s.do("close()", lambda c: c.close())
    return s.recv(method(0, spec.ConnectionClose(200, "bye")))  # simultaneous


def _auth_script() -> Script:
    s = Script("auth", outcome=AuthenticationError)
    return s.recv(
        start(b"AMQPLAIN PLAIN"),
        method(0, spec.ConnectionClose(403, "ACCESS_REFUSED - Login was refused")),
    )


def _short_script() -> Script:
    s = Script("short", outcome=spec.ConnectionForcedError)
    s.handshake(channel_max=16).open(1)
    s.recv(heartbeat(), deliver(1, b"hi"), method(1, spec.ChannelFlow(active=True)))
    return s.recv(method(0, spec.ConnectionClose(320, "CONNECTION_FORCED")))


SCRIPTS: tuple[Script, ...] = (
    _consume_script(),
    _confirms_script(),
    _frames_script(),
    _auth_script(),
    _short_script(),
)

#: How often each script is drawn (the short one is cheapest to run).
SCRIPT_WEIGHTS = (3, 3, 2, 1, 3)


# -- frames of a stream ---------------------------------------------------------------


@dataclass(frozen=True)
class FrameAt:
    pos: int
    ftype: int
    channel: int
    size: int

    @property
    def end(self) -> int:
        """Offset just past the frame-end octet."""
        return self.pos + self.size + 8


def frames_of(data: bytes) -> list[FrameAt]:
    """The whole frames at the start of ``data`` (stops at the first that
    does not fit)."""
    out = []
    pos = 0
    n = len(data)
    while pos + 8 <= n:
        ftype, channel, size = struct.unpack_from(">BHI", data, pos)
        if pos + size + 8 > n:
            break
        out.append(FrameAt(pos, ftype, channel, size))
        pos += size + 8
    return out


#: Content-carrying methods the broker sends (basic.deliver, return, get-ok).
_CONTENT_KEYS = frozenset(
    m.INDEX for m in (spec.BasicDeliver, spec.BasicReturn, spec.BasicGetOk)
)


@dataclass(frozen=True)
class ContentAt:
    """A content header in a clean stream and where its content ends."""

    header: FrameAt
    body_size: int
    end: int  # just past the last body frame (or the header if empty)


def contents_of(
    data: bytes, frames: list[FrameAt]
) -> tuple[list[ContentAt], list[frozenset[int]]]:
    """Content headers of a clean stream, and for each frame index the
    channels that are in the middle of content right before that frame."""
    busy: dict[int, list[Any]] = {}  # channel -> [header frame, size, received]
    contents: list[ContentAt] = []
    busy_before: list[frozenset[int]] = []
    for f in frames:
        busy_before.append(frozenset(busy))
        if f.ftype == 1:
            (key,) = struct.unpack_from(">I", data, f.pos + 7)
            if key in _CONTENT_KEYS:
                busy[f.channel] = [None, 0, 0]
        elif f.ftype == 2:
            (size,) = struct.unpack_from(">Q", data, f.pos + 11)
            if size == 0:
                contents.append(ContentAt(f, 0, f.end))
                busy.pop(f.channel, None)
            else:
                busy[f.channel] = [f, size, 0]
        elif f.ftype == 3:
            state = busy[f.channel]
            state[2] += f.size
            if state[2] == state[1]:
                contents.append(ContentAt(state[0], state[1], f.end))
                del busy[f.channel]
    return contents, busy_before


# -- cases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """A targeted mutation that must be detected.

    If, after feeding ``data[:mark]`` (and running the commands placed
    there), the connection is in one of ``states``, then feeding
    ``data[mark:until]`` in one call must end it with one of ``errors``.
    """

    mark: int
    until: int
    errors: tuple[type[ProtocolError], ...]
    states: frozenset[ConnectionState]


@dataclass
class Case:
    """One fuzz input: a script's commands with (maybe mutated) bytes."""

    script: Script
    mutations: list[str]
    data: bytes
    chunks: list[int]
    steps: list[float]
    timers: bool
    ending: str
    pauses: list[bool | None] = field(default_factory=list)
    expect: Expect | None = None

    def __repr__(self) -> str:
        return (
            f"Case(script={self.script.name!r}, mutations={self.mutations!r}, "
            f"expect={self.expect!r}, data={self.data!r}, chunks={self.chunks!r}, "
            f"steps={self.steps!r}, timers={self.timers!r}, ending={self.ending!r}, "
            f"pauses={self.pauses!r})"
        )


# -- mutators -------------------------------------------------------------------------------
#
# Each takes the random source, the bytes and the script they came from, and
# returns the new bytes and, for a targeted mutation of a clean stream, what
# must then happen. They only use randrange/randint/choice/random/randbytes,
# which both random.Random and hypothesis's random support.

Mutated = tuple[bytes, Expect | None]
Mutator = Callable[[random.Random, bytes, Script], Mutated]


def _pick_frame(
    rng: random.Random, data: bytes, ftypes: tuple[int, ...] = ()
) -> FrameAt | None:
    frames = [f for f in frames_of(data) if not ftypes or f.ftype in ftypes]
    return rng.choice(frames) if frames else None


def _patch(data: bytes, pos: int, new: bytes) -> bytes:
    return data[:pos] + new + data[pos + len(new) :]


def _is_clean(data: bytes, script: Script) -> bool:
    return script.data.startswith(data)


def _bit_flips(rng: random.Random, data: bytes, script: Script) -> Mutated:
    out = bytearray(data)
    frame = _pick_frame(rng, data) if rng.random() < 0.5 else None
    lo, hi = (frame.pos, min(frame.end, frame.pos + 40)) if frame else (0, len(out))
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(lo, hi)
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out), None


def _truncate(rng: random.Random, data: bytes, script: Script) -> Mutated:
    return data[: rng.randrange(len(data) + 1)], None


def _other(rng: random.Random) -> bytes:
    return rng.choice(SCRIPTS).data


def _splice(rng: random.Random, data: bytes, script: Script) -> Mutated:
    other = _other(rng)
    return data[: rng.randrange(len(data) + 1)] + other[
        rng.randrange(len(other) + 1) :
    ], None


def _frame_splice(rng: random.Random, data: bytes, script: Script) -> Mutated:
    other = _other(rng)
    mine = [f.pos for f in frames_of(data)] + [len(data)]
    theirs = [f.pos for f in frames_of(other)] + [len(other)]
    return data[: rng.choice(mine)] + other[rng.choice(theirs) :], None


def _frame_size(rng: random.Random, data: bytes, script: Script) -> Mutated:
    frame = _pick_frame(rng, data)
    if frame is None:
        return _bit_flips(rng, data, script)
    roll = rng.random()
    if roll < 0.4:
        new = max(0, frame.size + rng.randint(-8, 8))
    elif roll < 0.7:
        new = rng.randrange(1 << 32)
    else:
        new = rng.randint(LARGEST_FRAME_MAX - 7, (1 << 32) - 1)
    out = _patch(data, frame.pos + 3, struct.pack(">I", new))
    expect = None
    if new > LARGEST_FRAME_MAX - 8 and _is_clean(data, script):
        # Rejected from the 7-byte frame header alone, in any state.
        expect = Expect(frame.pos, frame.pos + 7, (FrameDecodeError,), ALIVE)
    return out, expect


def _body_size(rng: random.Random, data: bytes, script: Script) -> Mutated:
    clean = _is_clean(data, script)
    frames = frames_of(data)
    if clean:
        contents = [c for c in contents_of(data, frames)[0] if c.end <= len(data)]
    else:
        contents = [
            ContentAt(f, struct.unpack_from(">Q", data, f.pos + 11)[0], f.end)
            for f in frames
            if f.ftype == 2 and f.size >= 14
        ]
    if not contents:
        return _frame_size(rng, data, script)
    c = rng.choice(contents)
    roll = rng.random()
    if roll < 0.45 and c.body_size > 0:
        new = rng.randrange(c.body_size)  # fewer bytes than follow
    elif roll < 0.8:
        new = c.body_size + rng.randint(1, 5000)
    else:
        new = rng.randrange(1 << 64)
    out = _patch(data, c.header.pos + 11, struct.pack(">Q", new))
    expect = None
    if clean and new < c.body_size:
        # Body frames past the declared size: 501; a body frame after an
        # empty content: 505. Channel frames are read only when not closing.
        errors = (FrameDecodeError, FrameSequenceError)
        expect = Expect(c.header.pos, c.end, errors, frozenset({ConnectionState.OPEN}))
    return out, expect


_KNOWN_KEYS = frozenset(spec.METHODS)
_KNOWN_KEY_LIST = sorted(_KNOWN_KEYS)
_UNKNOWN_TYPES = [t for t in range(256) if t not in (1, 2, 3, 8)]
_NOT_FRAME_END = [b for b in range(256) if b != 0xCE]


def _unknown_ids(rng: random.Random, data: bytes, script: Script) -> Mutated:
    frame = _pick_frame(rng, data, (1,))
    if frame is None or frame.size < 4:
        return _bit_flips(rng, data, script)
    while True:
        class_id = rng.choice([10, 20, 40, 50, 60, 85, 90, rng.randrange(1 << 16)])
        method_id = rng.choice([rng.randrange(130), rng.randrange(1 << 16)])
        if (class_id << 16 | method_id) not in _KNOWN_KEYS:
            break
    out = _patch(data, frame.pos + 7, struct.pack(">HH", class_id, method_id))
    expect = None
    if _is_clean(data, script):
        expect = Expect(frame.pos, frame.end, (FrameDecodeError,), ALIVE)
    return out, expect


def _other_method(rng: random.Random, data: bytes, script: Script) -> Mutated:
    frame = _pick_frame(rng, data, (1,))
    if frame is None or frame.size < 4:
        return _bit_flips(rng, data, script)
    key = rng.choice(_KNOWN_KEY_LIST)
    return _patch(data, frame.pos + 7, struct.pack(">I", key)), None


def _frame_type(rng: random.Random, data: bytes, script: Script) -> Mutated:
    frame = _pick_frame(rng, data)
    if frame is None:
        return _bit_flips(rng, data, script)
    roll = rng.random()
    if roll < 0.5:  # another valid type: a different frame grammar
        ftype = rng.choice([t for t in (1, 2, 3, 8) if t != frame.ftype])
        return _patch(data, frame.pos, bytes([ftype])), None
    ftype = rng.choice(_UNKNOWN_TYPES)
    out = _patch(data, frame.pos, bytes([ftype]))
    expect = None
    if _is_clean(data, script):
        expect = Expect(frame.pos, frame.pos + 7, (FrameDecodeError,), ALIVE)
    return out, expect


def _frame_end(rng: random.Random, data: bytes, script: Script) -> Mutated:
    frame = _pick_frame(rng, data)
    if frame is None:
        return _bit_flips(rng, data, script)
    octet = rng.choice(_NOT_FRAME_END)
    out = _patch(data, frame.end - 1, bytes([octet]))
    expect = None
    if _is_clean(data, script):
        expect = Expect(frame.pos, frame.end, (FrameDecodeError,), ALIVE)
    return out, expect


def _wrong_channel(rng: random.Random, data: bytes, script: Script) -> Mutated:
    frame = _pick_frame(rng, data)
    if frame is None:
        return _bit_flips(rng, data, script)
    roll = rng.random()
    if roll < 0.3:
        channel = rng.randrange(UNUSED_CHANNELS)  # maybe another open channel
    elif roll < 0.4 and frame.ftype in (2, 3):
        channel = 0
    else:
        channel = rng.randint(UNUSED_CHANNELS, 0xFFFF)
    out = _patch(data, frame.pos + 1, struct.pack(">H", channel))
    expect = None
    if _is_clean(data, script) and channel != frame.channel:
        if frame.ftype == 8:  # heartbeats belong on channel 0
            expect = Expect(frame.pos, frame.end, (FrameDecodeError,), ALIVE)
        elif channel == 0:  # content frames never go on channel 0
            expect = Expect(frame.pos, frame.end, (FrameSequenceError,), ALIVE)
        elif channel >= UNUSED_CHANNELS:  # a channel that was never opened
            expect = Expect(
                frame.pos, frame.end, (FrameSequenceError,), READING_CHANNELS
            )
    return out, expect


def _content_out_of_place(rng: random.Random, data: bytes, script: Script) -> Mutated:
    """A header or body frame at a frame boundary where its channel has no
    content in progress (or a channel never opened): 505."""
    frames = frames_of(data)
    clean = _is_clean(data, script)
    busy = contents_of(data, frames)[1] if clean else [frozenset()] * len(frames)
    bounds = [(f.pos, b) for f, b in zip(frames, busy, strict=True)]
    bounds.append((len(data), frozenset()))
    pos, busy_there = rng.choice(bounds)
    channel = rng.choice([1, 2, rng.randint(UNUSED_CHANNELS, 0xFFFF)])
    if rng.random() < 0.5:
        frame = body(channel, rng.randbytes(rng.randrange(20)))
    else:
        frame = header(channel, rng.randrange(100))
    out = data[:pos] + frame + data[pos:]
    expect = None
    if clean and channel not in busy_there and pos < len(data):
        expect = Expect(pos, pos + len(frame), (FrameSequenceError,), READING_CHANNELS)
    return out, expect


#: One instance of every registry method, for injection.
INSTANCES: tuple[Method, ...] = tuple(
    cls(**valid_kwargs(cls)) for cls in spec.METHODS.values()
)


def _inject_method(rng: random.Random, data: bytes, script: Script) -> Mutated:
    bounds = [f.pos for f in frames_of(data)] + [len(data)]
    pos = rng.choice(bounds)
    channel = rng.choice([0, 0, 1, 2, rng.randrange(1 << 16)])
    frame = method(channel, rng.choice(INSTANCES))
    return data[:pos] + frame + data[pos:], None


def _frame_edit(rng: random.Random, data: bytes, script: Script) -> Mutated:
    frames = frames_of(data)
    if not frames:
        return _bit_flips(rng, data, script)
    tail = data[frames[-1].end :]
    parts = [data[f.pos : f.end] for f in frames]
    kinds = [f.ftype for f in frames]
    for _ in range(rng.randint(1, 3)):
        if not parts:
            break
        content_idx = [i for i, t in enumerate(kinds) if t in (2, 3)]
        if content_idx and rng.random() < 0.5:
            i = rng.choice(content_idx)
        else:
            i = rng.randrange(len(parts))
        op = rng.choice(["drop", "repeat", "swap", "move"])
        if op == "drop":
            del parts[i], kinds[i]
        elif op == "repeat":
            parts.insert(i, parts[i])
            kinds.insert(i, kinds[i])
        elif op == "swap" and i + 1 < len(parts):
            parts[i], parts[i + 1] = parts[i + 1], parts[i]
            kinds[i], kinds[i + 1] = kinds[i + 1], kinds[i]
        else:
            j = rng.randrange(len(parts))
            parts.insert(j, parts.pop(i))
            kinds.insert(j, kinds.pop(i))
    return b"".join(parts) + tail, None


def _insert(rng: random.Random, data: bytes, script: Script) -> Mutated:
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.randbytes(rng.randint(1, 64)) + data[i:], None


def _overwrite(rng: random.Random, data: bytes, script: Script) -> Mutated:
    i = rng.randrange(len(data))
    return _patch(data, i, rng.randbytes(rng.randint(1, 32)))[: len(data)], None


def _random_tail(rng: random.Random, data: bytes, script: Script) -> Mutated:
    noise = rng.randbytes(rng.randrange(512))
    bounds = [f.pos for f in frames_of(data)]
    if bounds and rng.random() < 0.7:
        return data[: rng.choice(bounds)] + noise, None  # noise in a deep state
    return noise, None


def _garbage_frame(rng: random.Random, data: bytes, script: Script) -> Mutated:
    """A frame with the right framing and a random payload."""
    bounds = [f.pos for f in frames_of(data)] + [len(data)]
    pos = rng.choice(bounds)
    ftype = rng.choice([1, 1, 2, 3, 8])
    payload = rng.randbytes(rng.randrange(40))
    if ftype == 1 and len(payload) >= 4 and rng.random() < 0.7:
        payload = struct.pack(">I", rng.choice(_KNOWN_KEY_LIST)) + payload[4:]
    frame = raw_frame(ftype, rng.choice([0, 1, 2]), payload)
    return data[:pos] + frame + data[pos:], None


MUTATORS: dict[str, Mutator] = {
    "bit-flips": _bit_flips,
    "truncate": _truncate,
    "splice": _splice,
    "frame-splice": _frame_splice,
    "frame-size": _frame_size,
    "body-size": _body_size,
    "unknown-ids": _unknown_ids,
    "other-method": _other_method,
    "frame-type": _frame_type,
    "frame-end": _frame_end,
    "wrong-channel": _wrong_channel,
    "content-out-of-place": _content_out_of_place,
    "inject-method": _inject_method,
    "frame-edit": _frame_edit,
    "insert": _insert,
    "overwrite": _overwrite,
    "random-tail": _random_tail,
    "garbage-frame": _garbage_frame,
}
MUTATOR_NAMES = sorted(MUTATORS)


def make_case(rng: random.Random) -> Case:
    """Draw one case: a script, 0-3 mutations, chunking, clock, ending."""
    script = rng.choices(SCRIPTS, SCRIPT_WEIGHTS)[0]
    data = script.data
    if rng.random() < 0.2:
        # Stop the broker at a frame boundary (the handshake's more often),
        # so every state meets every ending.
        bounds = [f.pos for f in frames_of(data)]
        data = data[: rng.choice(bounds[:4] if rng.random() < 0.4 else bounds)]
    roll = rng.random()
    count = 0 if roll < 0.05 else 1 if roll < 0.75 else rng.randint(2, 3)
    mutations: list[str] = []
    expect: Expect | None = None
    for _ in range(count):
        if not data:
            break
        name = rng.choice(MUTATOR_NAMES)
        data, expect = MUTATORS[name](rng, data, script)
        mutations.append(name)
    if len(mutations) > 1:
        expect = None  # a later mutation may have moved or removed the target
    if expect is not None and any(
        expect.mark < offset < expect.until for offset, _ in script.commands
    ):
        expect = None
    roll = rng.random()
    if roll < 0.3:
        chunks: list[int] = []  # whole
    elif roll < 0.33 and len(data) <= 1500:
        chunks = [1]  # byte by byte
    elif roll < 0.5:
        chunks = [rng.randint(1, 16) for _ in range(rng.randint(1, 8))]
    else:
        chunks = [
            rng.choice([rng.randint(1, 16), rng.randint(17, 5000), 5000])
            for _ in range(rng.randint(1, 8))
        ]
    return Case(
        script=script,
        mutations=mutations,
        data=data,
        chunks=chunks,
        steps=[
            rng.choice([0.0, 0.5, 3.0, 9.0, 31.0, 130.0])
            for _ in range(rng.randrange(6))
        ],
        timers=rng.random() < 0.5,
        ending=rng.choice(["none", "eof", "lost", "late-timers"]),
        pauses=[rng.choice([None, True, False]) for _ in range(rng.randrange(4))],
        expect=expect,
    )


# -- the checker --------------------------------------------------------------------------


class Failure(AssertionError):
    """The core broke a documented rule on a fuzz input."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise Failure(message)


class Observer:
    """Collects what the connection hands out and checks it as it goes."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.out = bytearray()
        self.events: list[ev.Event] = []
        self.terminated: ev.ConnectionTerminated | None = None
        self.opened: set[int] = set()
        self.client_closed = False

    def collect(self) -> None:
        """Take the outputs and events; check them. (The hot path: messages
        are only built on failure.)"""
        conn = self.conn
        buffers = conn.data_to_send()
        events = conn.events_received()
        if buffers.__class__ is not list or events.__class__ is not list:
            raise Failure(f"outputs are {type(buffers)} and {type(events)}")
        if buffers or events:
            self._take(buffers, events)
        closed = conn.state is ConnectionState.CLOSED
        if closed != (self.terminated is not None):
            raise Failure(f"state {conn.state} after {self.events[-3:]!r}")
        if closed and conn.next_deadline() is not None:
            raise Failure("a deadline after the end")

    def _take(self, buffers: list[bytes | memoryview], events: list[ev.Event]) -> None:
        if self.terminated is not None:
            raise Failure(f"after the end: output {buffers!r}, events {events!r}")
        for buf in buffers:
            check(isinstance(buf, bytes | memoryview), f"buffer {type(buf)}")
            self.out += buf
        for i, event in enumerate(events):
            check(isinstance(event, EVENT_TYPES), f"unknown event {event!r}")
            channel = getattr(event, "channel", 0)
            if channel and channel not in self.opened:
                raise Failure(f"{event!r} for a channel the client never opened")
            if isinstance(event, ev.ConnectionTerminated):
                check(i == len(events) - 1, f"events after {event!r}: {events!r}")
                self.terminated = event
        self.events.extend(events)

    def command(self, command: Command) -> None:
        """Run one of the script's commands: only ``AMQPError`` may escape."""
        try:
            result = command.run(self.conn)
        except AMQPError as exc:
            check(
                isinstance(exc, UsageError) or exc is self.conn.error,
                f"{command!r} raised {exc!r}, neither UsageError nor conn.error",
            )
        except Exception as exc:
            raise Failure(f"{command!r} raised {exc!r}") from exc
        else:
            if command.name == "open_channel()":
                assert isinstance(result, int)
                self.opened.add(result)
            elif command.name == "close()":
                self.client_closed = True
        self.collect()

    def finish(self, case: Case, timer_calls: int, limits: bool) -> None:
        frames = client_frames(bytes(self.out))
        check(frames[:1] == [PROTOCOL_HEADER], "no protocol header first")
        n_in = len(case.data)
        if limits:
            # Each input frame (8+ bytes) triggers at most a small reply
            # (start-ok is the largest, once); commands add what the clean
            # run sent at most.
            bound = 2 * clean_output(case.script) + 4 * n_in + 8 * timer_calls + 1024
            check(len(self.out) <= bound, f"{len(self.out)} bytes out for {n_in} in")
            check(
                len(self.events) <= n_in // 8 + len(case.script.commands) + 4,
                f"{len(self.events)} events for {n_in} bytes in",
            )
        opened = sum(isinstance(e, ev.ConnectionOpened) for e in self.events)
        check(opened <= 1, "opened twice")
        if self.terminated is None:
            return
        error = self.terminated.error
        check(self.conn.error is error, "conn.error is not the terminal error")
        if error is None:
            check(self.client_closed, "a clean end the client did not ask for")
        elif isinstance(error, ProtocolError):
            check(
                type(error) in (FrameDecodeError, FrameSequenceError),
                f"undocumented protocol error {error!r}",
            )
            check(error.reply_code in (501, 505), f"reply code {error.reply_code}")
            last = frames[-1]
            check(
                isinstance(last, MethodFrame)
                and last.channel == 0
                and isinstance(last.method, spec.ConnectionClose),
                f"the last frame sent is {last!r}, not connection.close",
            )
            assert isinstance(last, MethodFrame)
            close = last.method
            assert isinstance(close, spec.ConnectionClose)
            text = str(error)[:255].encode()[:255].decode("utf-8", "ignore")
            check(
                (close.reply_code, close.reply_text) == (error.reply_code, text),
                f"{close!r} does not carry {error!r}",
            )
        else:
            check(
                isinstance(error, ConnectionClosed),
                f"terminal error {error!r} is not a ConnectionClosed",
            )
            if isinstance(error, AuthenticationError):
                check(opened == 0, "an authentication error after open-ok")


_CLIENT_READER: list[FrameReader] = []


def client_frames(data: bytes) -> list[Frame | bytes]:
    """The frames in the client's output (the protocol header first, as
    bytes); a partial frame or bad framing fails. One reader is reused: a
    reader that consumed whole frames is as good as new."""
    if not _CLIENT_READER:
        _CLIENT_READER.append(FrameReader(0))
    reader = _CLIENT_READER[0]
    check(data.startswith(PROTOCOL_HEADER), f"no protocol header: {data[:8]!r}")
    try:
        frames: list[Frame | bytes] = [PROTOCOL_HEADER]
        frames.extend(reader.feed(data[len(PROTOCOL_HEADER) :]))
        check(reader.receive_buffer_size() == 0, "a partial frame sent")
    except BaseException:
        _CLIENT_READER.clear()
        raise
    return frames


_CLEAN_OUTPUT: dict[str, int] = {}


def clean_output(script: Script) -> int:
    """Bytes the unmutated script makes the client send."""
    size = _CLEAN_OUTPUT.get(script.name)
    if size is None:
        seen = run_case(
            Case(script, [], script.data, [], [], False, "none"), limits=False
        )
        size = _CLEAN_OUTPUT[script.name] = len(seen.out)
    return size


def run_case(
    case: Case, factory: type[Connection] = Connection, *, limits: bool = True
) -> Observer:
    """Feed one case to a fresh connection, checking every rule (``limits``:
    the bounds on output and events too)."""
    conn = case.script.connection(factory)
    seen = Observer(conn)
    now = 1000.0
    conn.initiate(now)
    seen.collect()
    commands = list(case.script.commands)
    expect = case.expect
    data = case.data
    pos = 0
    step = 0
    timer_calls = 0

    def run_commands(upto: int) -> None:
        while commands and commands[0][0] <= upto:
            seen.command(commands.pop(0)[1])

    def feed(chunk: bytes) -> None:
        try:
            conn.receive_data(chunk, now)
        except Exception as exc:
            raise Failure(f"receive_data raised {exc!r}") from exc
        seen.collect()

    def safely(what: str, call: Callable[..., object], *args: object) -> None:
        try:
            call(*args)
        except Exception as exc:
            raise Failure(f"{what} raised {exc!r}") from exc
        seen.collect()

    while pos < len(data):
        run_commands(pos)
        if expect is not None and pos == expect.mark:
            state = conn.state
            feed(data[pos : expect.until])
            pos = expect.until
            if state in expect.states:
                error = seen.terminated.error if seen.terminated else None
                check(
                    isinstance(error, expect.errors),
                    f"{case.mutations} at {expect.mark} in state {state}: "
                    f"expected {[e.__name__ for e in expect.errors]}, got {error!r}",
                )
            continue
        size = case.chunks[step % len(case.chunks)] if case.chunks else len(data)
        # Stop at the next command (it runs where the script put it) and at
        # the mark of a targeted mutation.
        stops = [commands[0][0]] if commands else []
        if expect is not None and expect.mark > pos:
            stops.append(expect.mark)
        if stops:
            size = min(size, max(min(stops) - pos, 1))
        chunk = data[pos : pos + size]
        pos += len(chunk)
        now += case.steps[step % len(case.steps)] if case.steps else 0.0
        pause = case.pauses[step % len(case.pauses)] if case.pauses else None
        step += 1
        if pause is not None:
            safely("reading_paused", conn.reading_paused, pause, now)
        feed(chunk)
        if case.timers:
            timer_calls += 1
            safely("handle_timers", conn.handle_timers, now)
    run_commands(sys.maxsize)
    if case.ending == "eof":
        safely("receive_eof", conn.receive_eof)
    elif case.ending == "lost":
        safely("connection_lost", conn.connection_lost, "reset by peer")
    elif case.ending == "late-timers":
        timer_calls += 1
        safely("handle_timers", conn.handle_timers, now + 1e6)
    if seen.terminated is not None:
        # After the end nothing happens any more.
        feed(data or heartbeat())
        safely("receive_eof", conn.receive_eof)
        safely("handle_timers", conn.handle_timers, now + 1e7)
        safely("connection_lost", conn.connection_lost, "again")
    seen.finish(case, timer_calls, limits)
    return seen


# -- tests -------------------------------------------------------------------------------------------


def _script(name: str) -> Script:
    return next(s for s in SCRIPTS if s.name == name)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
@pytest.mark.parametrize(
    "chunks", [[], [1], [7, 1, 300]], ids=["whole", "bytewise", "mixed"]
)
def test_scripts_run_clean(script: Script, chunks: list[int]) -> None:
    """Unmutated, each script reaches its expected end with no protocol error."""
    seen = run_case(Case(script, [], script.data, chunks, [], False, "none"))
    assert seen.terminated is not None, seen.events[-5:]
    error = seen.terminated.error
    if script.outcome is None:
        assert error is None
    else:
        assert isinstance(error, script.outcome), error
    kinds = {type(e) for e in seen.events}
    expected: dict[str, set[type[Any]]] = {
        "consume": {ev.DeliveryReceived, ev.GetReceived, ev.ConsumerCancelled},
        "confirms": {ev.PublishAcked, ev.PublishNacked, ev.ReturnReceived},
        "frames": {ev.DeliveryReceived, ev.ChannelTerminated},
        "auth": set(),
        "short": {ev.DeliveryReceived, ev.ChannelFlowChanged},
    }
    assert expected[script.name] <= kinds


@pytest.mark.parametrize("name", MUTATOR_NAMES)
def test_every_mutator_changes_the_stream(name: str) -> None:
    rng = random.Random(7)
    for script in SCRIPTS:
        changed = sum(
            MUTATORS[name](rng, script.data, script)[0] != script.data
            for _ in range(20)
        )
        assert changed >= 10, (name, script.name)


def test_targeted_mutations_carry_expectations() -> None:
    """Each targeted mutator yields checkable expectations, and they hold."""
    rng = random.Random(11)
    checked: collections.Counter[str] = collections.Counter()
    for name in (
        "frame-size",
        "body-size",
        "unknown-ids",
        "frame-type",
        "frame-end",
        "wrong-channel",
        "content-out-of-place",
    ):
        for _ in range(60):
            script = rng.choice(SCRIPTS)
            data, expect = MUTATORS[name](rng, script.data, script)
            if expect is None:
                continue
            checked[name] += 1
            run_case(Case(script, [name], data, [], [], False, "none", expect=expect))
        assert checked[name] >= 5, (name, checked)


class _RaisesOnHeartbeat(Connection):
    """A broken core: a heartbeat frame makes receive_data raise KeyError."""

    def _handle_frame(self, frame: Any) -> None:
        if isinstance(frame, HeartbeatFrame):
            raise KeyError("heartbeat")
        super()._handle_frame(frame)


class _SilentOnGarbage(Connection):
    """A broken core: peer garbage ends it without a connection.close."""

    def _fail(self, error: ProtocolError) -> None:
        self._terminate(error)


class _LenientChannels(Connection):
    """A broken core: frames for channels never opened are ignored."""

    def _handle_frame(self, frame: Any) -> None:
        if frame.channel >= UNUSED_CHANNELS:
            return
        super()._handle_frame(frame)


def test_the_checker_catches_a_raising_core() -> None:
    script = _script("short")
    with pytest.raises(Failure, match="receive_data raised KeyError"):
        run_case(
            Case(script, [], script.data, [], [], False, "none"), _RaisesOnHeartbeat
        )


def test_the_checker_catches_a_missing_close() -> None:
    script = _script("short")
    data = script.data[:-1] + b"\x00"  # a bad frame-end on the last frame
    case = Case(script, ["frame-end"], data, [], [], False, "none")
    run_case(case)
    with pytest.raises(Failure, match=r"not connection\.close"):
        run_case(case, _SilentOnGarbage)


def test_the_checker_catches_undetected_garbage() -> None:
    script = _script("short")
    rng = random.Random(3)
    while True:
        data, expect = _wrong_channel(rng, script.data, script)
        if expect is not None and expect.errors == (FrameSequenceError,):
            break
    case = Case(script, ["wrong-channel"], data, [], [], False, "none", expect=expect)
    run_case(case)
    with pytest.raises(Failure, match="expected"):
        run_case(case, _LenientChannels)


@pytest.mark.timeout(max(120, MUTATION_EXAMPLES // 2))
@settings(
    max_examples=MUTATION_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.randoms(use_true_random=False))
def test_mutated_streams_only_have_documented_outcomes(rng: random.Random) -> None:
    run_case(make_case(rng))


# -- the long run ---------------------------------------------------------------------------------


def _describe(error: AMQPError | None) -> str:
    return "clean close" if error is None else type(error).__name__


def long_run(inputs: int, seed: int, max_failures: int = 5) -> int:
    """Run ``inputs`` seeded cases; print figures; return the failure count."""
    mutations: collections.Counter[str] = collections.Counter()
    outcomes: collections.Counter[str] = collections.Counter()
    failures = 0
    expectations = 0
    slowest = (0.0, -1)
    started = time.perf_counter()
    for i in range(inputs):
        rng = random.Random(seed * 10**9 + i)
        t0 = time.perf_counter()
        case = make_case(rng)
        try:
            seen = run_case(case)
        except Exception:
            failures += 1
            print(f"FAILURE at --replay {seed}:{i}\n{case!r}", file=sys.stderr)
            traceback.print_exc()
            if failures >= max_failures:
                break
            continue
        elapsed = time.perf_counter() - t0
        if elapsed > slowest[0]:
            slowest = (elapsed, i)
        mutations.update(case.mutations or ["none"])
        expectations += case.expect is not None
        outcomes[
            _describe(seen.terminated.error) if seen.terminated else "still open"
        ] += 1
        if (i + 1) % 100_000 == 0:
            rate = (i + 1) / (time.perf_counter() - started)
            print(f"  {i + 1:,} inputs, {rate:,.0f}/s", flush=True)
    total = time.perf_counter() - started
    done = i + 1 if inputs else 0
    print(
        f"seed {seed}: {done:,} inputs in {total:,.1f} s ({done / total:,.0f}/s), "
        f"{failures} failure(s)"
    )
    print(
        f"targeted expectations set: {expectations:,}; slowest input "
        f"{slowest[0] * 1000:.1f} ms (--replay {seed}:{slowest[1]})"
    )
    print("mutations:", ", ".join(f"{k} {v:,}" for k, v in sorted(mutations.items())))
    print("outcomes:", ", ".join(f"{k} {v:,}" for k, v in outcomes.most_common()))
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "inputs",
        nargs="?",
        type=int,
        default=int(os.environ.get("FUZZ_INPUTS", "1000000")),
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--replay", metavar="SEED:INDEX", help="rerun one input")
    args = parser.parse_args(argv)
    # Every garbage input logs a protocol error; keep the terminal readable.
    logging.getLogger("amqp_client").setLevel(logging.CRITICAL)
    if args.replay:
        seed, index = (int(part) for part in args.replay.split(":"))
        case = make_case(random.Random(seed * 10**9 + index))
        print(repr(case))
        run_case(case)
        print("passed")
        return 0
    return 1 if long_run(args.inputs, args.seed) else 0


if __name__ == "__main__":
    sys.exit(main())
