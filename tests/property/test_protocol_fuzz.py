"""Fuzzing the sans-IO core: mutated broker byte streams never break it.

Valid broker streams (scripts: a handshake, channels, deliveries, confirms,
closes) are mutated (bit flips, truncation, splices of two streams, wrong
frame sizes, unknown class/method ids, inserted or overwritten bytes,
dropped, repeated or swapped frames, random bytes) and fed to a fresh
``Connection`` in random chunks, with the client's own commands run at
their place in the script and a fake clock driving the timers.

Whatever the bytes, the core must:

* never raise from ``receive_data``, ``receive_eof``, ``handle_timers``
  (commands may raise ``AMQPError``, ``UsageError`` included, when the
  stream took the connection elsewhere);
* end, if it ends, with exactly one ``ConnectionTerminated`` as its last
  event, carrying None or an ``AMQPError``; peer garbage gives a
  ``ProtocolError`` and a connection.close with its reply code as the
  last frame sent;
* do nothing at all after that;
* only ever hand out ``bytes``/``memoryview`` buffers that are
  well-formed client frames;
* finish (a per-test timeout guards against hangs).

The front's ``reading_paused`` switch is flipped at random too.

The default run is short (``FUZZ_EXAMPLES``, 200 examples). For a long run::

    FUZZ_EXAMPLES=100000 .venv/bin/python -m tests.property.test_protocol_fuzz

(``make fuzz`` is meant to run exactly that.)
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqp_client import auth, spec
from amqp_client.errors import AMQPError, ProtocolError
from amqp_client.frames import PROTOCOL_HEADER, MethodFrame
from amqp_client.protocol import Connection, ConnectionState
from amqp_client.protocol import events as ev
from tests.support.scripted_peer import (
    body,
    channel_open_ok,
    content,
    decode_client_bytes,
    deliver,
    header,
    heartbeat,
    method,
    start,
    tune,
)

#: Examples per run; ``make fuzz`` raises it.
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))

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

Command = Callable[[Connection], object]


# -- scripts: valid broker streams with the client's commands in place -------------------


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

    def do(self, command: Command) -> Script:
        self.commands.append((len(self.data), command))
        return self

    def connection(self) -> Connection:
        kwargs = {"mechanism": auth.Plain("guest", "guest"), **self.kwargs}
        return Connection(**kwargs)

    def __repr__(self) -> str:
        return f"Script({self.name!r})"


def _publish(channel: int, payload: bytes, mandatory: bool = False) -> Command:
    def command(conn: Connection) -> object:
        return conn.publish(
            channel,
            spec.BasicPublish("ex", "rk", mandatory=mandatory),
            spec.BasicProperties(content_type="text/plain", headers={"n": 1}),
            payload,
        )

    return command


def _call(channel: int, m: Any) -> Command:
    return lambda conn: conn.call(channel, m)


def _handshake(script: Script, **tune_values: int) -> Script:
    return script.recv(start(), tune(**tune_values), method(0, spec.ConnectionOpenOk()))


def _open(script: Script, channel: int) -> Script:
    return script.do(lambda conn: conn.open_channel()).recv(channel_open_ok(channel))


def _consume_script() -> Script:
    s = _handshake(Script("consume", outcome=None), heartbeat=30)
    _open(s, 1)
    s.do(_call(1, spec.BasicQos(prefetch_count=10))).recv(method(1, spec.BasicQosOk()))
    s.do(_call(1, spec.BasicConsume("q", "ctag"))).recv(
        method(1, spec.BasicConsumeOk("ctag"))
    )
    props = spec.BasicProperties(
        content_type="application/json",
        headers={"x-death": [{"count": 1, "reason": "expired"}], "flag": True},
        delivery_mode=2,
        priority=3,
        timestamp=None,
        message_id="m-1",
    )
    for tag, payload in enumerate([b"{}", b"", b"x" * 300], start=1):
        s.recv(
            deliver(1, payload, delivery_tag=tag, consumer_tag="ctag", properties=props)
        )
    s.do(lambda conn: conn.send(1, spec.BasicAck(3, multiple=True)))
    s.recv(
        method(1, spec.ChannelFlow(active=False)),
        heartbeat(),
        method(1, spec.ChannelFlow(active=True)),
    )
    s.do(_call(1, spec.BasicGet("q")))
    s.recv(content(1, spec.BasicGetOk(4, "", "q", 1), b"got it"))
    s.do(_call(1, spec.BasicGet("q"))).recv(method(1, spec.BasicGetEmpty()))
    s.recv(method(1, spec.BasicCancel("ctag")))
    s.do(_call(1, spec.QueueDeclare("missing", passive=True)))
    s.recv(method(1, spec.ChannelClose(404, "NOT_FOUND - no queue 'missing'", 50, 10)))
    s.do(lambda conn: conn.close())
    s.recv(method(0, spec.ConnectionCloseOk()))
    return s


def _confirms_script() -> Script:
    s = _handshake(
        Script(
            "confirms",
            kwargs={"heartbeat": 10, "connection_name": "fuzz"},
            outcome=spec.ConnectionForcedError,
        ),
        heartbeat=60,
    )
    _open(s, 1)
    _open(s, 2)
    s.do(_call(1, spec.ConfirmSelect())).recv(method(1, spec.ConfirmSelectOk()))
    for i in range(5):
        s.do(_publish(1, b"message %d" % i, mandatory=i == 4))
    s.recv(
        method(1, spec.BasicAck(2)),
        heartbeat(),
        method(1, spec.BasicAck(4, multiple=True)),
        content(1, spec.BasicReturn(312, "NO_ROUTE", "ex", "rk"), b"message 4"),
        method(1, spec.BasicNack(5)),
    )
    s.recv(
        method(0, spec.ConnectionBlocked("low on memory")),
        method(0, spec.ConnectionUnblocked()),
    )
    s.do(_call(2, spec.QueueDeclare("", exclusive=True)))
    s.do(_call(2, spec.QueueBind("amq.gen-1", "ex", "rk")))
    s.recv(method(2, spec.QueueDeclareOk("amq.gen-1", 0, 0)))
    s.recv(method(2, spec.QueueBindOk()))
    s.do(_call(0, spec.ConnectionUpdateSecret(b"token", "rotation")))
    s.recv(method(0, spec.ConnectionUpdateSecretOk()))
    s.do(lambda conn: conn.close_channel(2))
    s.recv(method(2, spec.ChannelCloseOk()))
    s.recv(method(0, spec.ConnectionClose(320, "CONNECTION_FORCED - shutdown")))
    return s


def _frames_script() -> Script:
    s = _handshake(Script("frames", kwargs={"frame_max": 4096}), frame_max=4096)
    _open(s, 1)
    _open(s, 2)
    big = bytes(range(256)) * 40
    s.recv(deliver(1, big, frame_max=4096))
    # Content of two channels interleaved frame by frame.
    s.recv(
        method(1, spec.BasicDeliver("c1", 2)),
        method(2, spec.BasicDeliver("c2", 1)),
        header(1, 5000),
        header(2, 4),
        body(1, big[:4000]),
        body(2, b"two!"),
        body(1, big[:1000]),
        deliver(2, b"", delivery_tag=2),
    )
    s.do(_publish(2, big))
    s.do(lambda conn: conn.close())
    s.recv(method(0, spec.ConnectionClose(200, "bye")))
    return s


def _auth_script() -> Script:
    s = Script("auth", outcome=spec.NotAllowedError)
    return s.recv(
        start(b"AMQPLAIN PLAIN"),
        tune(),
        method(0, spec.ConnectionClose(530, "NOT_ALLOWED - vhost / not found", 10, 40)),
    )


SCRIPTS: tuple[Script, ...] = (
    _consume_script(),
    _confirms_script(),
    _frames_script(),
    _auth_script(),
)


def _frame_offsets(data: bytes) -> list[tuple[int, int]]:
    """(offset, frame type) of each whole frame of a valid stream."""
    offsets = []
    pos = 0
    while pos + 8 <= len(data):
        ftype, _channel, size = struct.unpack_from(">BHI", data, pos)
        offsets.append((pos, ftype))
        pos += size + 8
    return offsets


# -- the harness --------------------------------------------------------------------------


@dataclass
class Case:
    """One fuzz input: a script's commands with (maybe mutated) bytes."""

    script: Script
    mutation: str
    data: bytes
    chunks: list[int]
    steps: list[float]
    timers: bool
    ending: str
    #: reading paused (True) or resumed (False) before the chunk, cycled;
    #: None leaves it alone
    pauses: list[bool | None] = field(default_factory=list)

    def __repr__(self) -> str:
        return (
            f"Case(script={self.script.name!r}, mutation={self.mutation!r}, "
            f"data={self.data!r}, chunks={self.chunks!r}, steps={self.steps!r}, "
            f"timers={self.timers!r}, ending={self.ending!r}, "
            f"pauses={self.pauses!r})"
        )


class Observer:
    """Collects what the connection hands out and checks it as it goes."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.out = bytearray()
        self.events: list[Any] = []
        self.terminated: ev.ConnectionTerminated | None = None

    def collect(self) -> None:
        conn = self.conn
        buffers = conn.data_to_send()
        assert isinstance(buffers, list)
        for buf in buffers:
            assert isinstance(buf, bytes | memoryview), type(buf)
        events = conn.events_received()
        assert isinstance(events, list)
        if self.terminated is not None:
            assert buffers == [], "output after the connection terminated"
            assert events == [], "events after the connection terminated"
        for buf in buffers:
            self.out += buf
        for i, event in enumerate(events):
            assert isinstance(event, EVENT_TYPES), event
            if isinstance(event, ev.ConnectionTerminated):
                assert i == len(events) - 1, "events after ConnectionTerminated"
                assert event.error is None or isinstance(event.error, AMQPError)
                self.terminated = event
        self.events.extend(events)
        closed = conn.state is ConnectionState.CLOSED
        assert closed == (self.terminated is not None), conn.state
        if closed:
            assert conn.next_deadline() is None
        deadline = conn.next_deadline()
        assert deadline is None or isinstance(deadline, float | int)

    def finish(self) -> None:
        frames = decode_client_bytes(bytes(self.out))  # well-formed client output
        assert frames[:1] == [PROTOCOL_HEADER]
        if self.terminated is not None and isinstance(
            self.terminated.error, ProtocolError
        ):
            error = self.terminated.error
            last = frames[-1]
            assert isinstance(last, MethodFrame), last
            assert isinstance(last.method, spec.ConnectionClose)
            assert last.method.reply_code == error.reply_code
            assert error.reply_code in (501, 505)


def run_case(case: Case) -> Observer:
    """Feed one case to a fresh connection, checking every invariant."""
    conn = case.script.connection()
    seen = Observer(conn)
    now = 1000.0
    conn.initiate(now)
    seen.collect()
    commands = list(case.script.commands)
    data = case.data
    pos = 0
    step = 0

    def run_commands(upto: int) -> None:
        while commands and commands[0][0] <= upto:
            _, command = commands.pop(0)
            # A mutated stream may have taken the connection elsewhere.
            with contextlib.suppress(AMQPError):
                command(conn)
            seen.collect()

    while pos < len(data):
        run_commands(pos)
        size = case.chunks[step % len(case.chunks)] if case.chunks else len(data)
        # Stop at the next command, so it runs where the script put it.
        if commands:
            size = min(size, max(commands[0][0] - pos, 1))
        chunk = data[pos : pos + size]
        pos += len(chunk)
        now += case.steps[step % len(case.steps)] if case.steps else 0.0
        pause = case.pauses[step % len(case.pauses)] if case.pauses else None
        step += 1
        if pause is not None:
            conn.reading_paused(pause, now)
            seen.collect()
        conn.receive_data(chunk, now)
        seen.collect()
        if case.timers:
            conn.handle_timers(now)
            seen.collect()
    run_commands(sys.maxsize)
    if case.ending == "eof":
        conn.receive_eof()
    elif case.ending == "lost":
        conn.connection_lost("connection reset by peer")
    elif case.ending == "late-timers":
        conn.handle_timers(now + 1e6)
    seen.collect()
    # After the end nothing happens any more.
    if seen.terminated is not None:
        conn.receive_data(data or b"\x08\x00\x00\x00\x00\x00\x00\xce", now + 1)
        conn.receive_eof()
        conn.handle_timers(now + 1e7)
        conn.connection_lost("again")
        seen.collect()
    seen.finish()
    return seen


# -- mutations ------------------------------------------------------------------------------

Draw = Callable[[st.SearchStrategy[Any]], Any]


def _bit_flips(draw: Draw, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(out) - 1))
        out[i] ^= 1 << draw(st.integers(0, 7))
    return bytes(out)


def _truncate(draw: Draw, data: bytes) -> bytes:
    return data[: draw(st.integers(0, len(data)))]


def _splice(draw: Draw, data: bytes) -> bytes:
    other: bytes = draw(st.sampled_from(SCRIPTS)).data
    return (
        data[: draw(st.integers(0, len(data)))]
        + other[draw(st.integers(0, len(other))) :]
    )


def _frame_splice(draw: Draw, data: bytes) -> bytes:
    # Cut at frame boundaries: well-formed frames in the wrong order.
    other: bytes = draw(st.sampled_from(SCRIPTS)).data
    mine = [pos for pos, _ in _frame_offsets(data)] + [len(data)]
    theirs = [pos for pos, _ in _frame_offsets(other)] + [len(other)]
    return data[: draw(st.sampled_from(mine))] + other[draw(st.sampled_from(theirs)) :]


def _wrong_size(draw: Draw, data: bytes) -> bytes:
    offsets = _frame_offsets(data)
    if not offsets:
        return _bit_flips(draw, data)
    pos, _ = draw(st.sampled_from(offsets))
    (size,) = struct.unpack_from(">I", data, pos + 3)
    new = draw(
        st.one_of(
            st.integers(0, 0xFFFFFFFF),
            st.integers(-8, 8).map(lambda d: max(0, size + d)),
        )
    )
    return data[: pos + 3] + struct.pack(">I", new) + data[pos + 7 :]


def _wrong_ids(draw: Draw, data: bytes) -> bytes:
    methods = [pos for pos, ftype in _frame_offsets(data) if ftype == 1]
    if not methods:
        return _bit_flips(draw, data)
    pos = draw(st.sampled_from(methods)) + 7
    class_id = draw(
        st.one_of(st.sampled_from([10, 20, 40, 50, 60, 85, 90]), st.integers(0, 0xFFFF))
    )
    method_id = draw(st.one_of(st.integers(0, 120), st.integers(0, 0xFFFF)))
    return data[:pos] + struct.pack(">HH", class_id, method_id) + data[pos + 4 :]


def _wrong_type_or_channel(draw: Draw, data: bytes) -> bytes:
    offsets = _frame_offsets(data)
    if not offsets:
        return _bit_flips(draw, data)
    pos, _ = draw(st.sampled_from(offsets))
    ftype = draw(st.one_of(st.sampled_from([1, 2, 3, 8]), st.integers(0, 255)))
    channel = draw(st.one_of(st.integers(0, 3), st.integers(0, 0xFFFF)))
    return data[:pos] + struct.pack(">BH", ftype, channel) + data[pos + 3 :]


def _insert(draw: Draw, data: bytes) -> bytes:
    i = draw(st.integers(0, len(data)))
    noise: bytes = draw(st.binary(min_size=1, max_size=64))
    return data[:i] + noise + data[i:]


def _overwrite(draw: Draw, data: bytes) -> bytes:
    i = draw(st.integers(0, len(data) - 1))
    patch: bytes = draw(st.binary(min_size=1, max_size=32))
    return data[:i] + patch + data[i + len(patch) :]


def _frame_edit(draw: Draw, data: bytes) -> bytes:
    # Well-formed frames in the wrong order or number; content frames
    # (header, body) are picked more often, as content assembly has the
    # most rules.
    offsets = _frame_offsets(data)
    if not offsets:
        return _bit_flips(draw, data)
    bounds = [pos for pos, _ in offsets] + [len(data)]
    frames = [data[a:b] for a, b in itertools.pairwise(bounds)]
    types = [ftype for _, ftype in offsets]
    for _ in range(draw(st.integers(1, 3))):
        if not frames:
            break
        content = [i for i, t in enumerate(types) if t in (2, 3)]
        if content and draw(st.booleans()):
            i = draw(st.sampled_from(content))
        else:
            i = draw(st.integers(0, len(frames) - 1))
        op = draw(st.sampled_from(["drop", "repeat", "swap", "move"]))
        if op == "drop":
            del frames[i], types[i]
        elif op == "repeat":
            frames.insert(i, frames[i])
            types.insert(i, types[i])
        elif op == "swap" and i + 1 < len(frames):
            frames[i], frames[i + 1] = frames[i + 1], frames[i]
            types[i], types[i + 1] = types[i + 1], types[i]
        else:
            j = draw(st.integers(0, len(frames) - 1))
            frames.insert(j, frames.pop(i))
            types.insert(j, types.pop(i))
    return b"".join(frames)


def _random(draw: Draw, data: bytes) -> bytes:
    noise: bytes = draw(st.binary(max_size=512))
    offsets = [pos for pos, _ in _frame_offsets(data)]
    if offsets and draw(st.booleans()):
        # Keep a valid prefix so the noise reaches deeper states.
        prefix = draw(st.sampled_from(offsets))
        return data[:prefix] + noise
    return noise


MUTATIONS: dict[str, Callable[[Draw, bytes], bytes]] = {
    "none": lambda draw, data: data,
    "bit-flips": _bit_flips,
    "truncate": _truncate,
    "splice": _splice,
    "frame-splice": _frame_splice,
    "wrong-size": _wrong_size,
    "wrong-ids": _wrong_ids,
    "wrong-type-or-channel": _wrong_type_or_channel,
    "insert": _insert,
    "overwrite": _overwrite,
    "frame-edit": _frame_edit,
    "random": _random,
}


#: Frame-level mutations reach the grammar rules; byte-level ones the codecs.
WEIGHTED_MUTATIONS = sorted(
    [*MUTATIONS, *["frame-edit"] * 3, "frame-splice", "wrong-ids", "bit-flips"]
)


@st.composite
def cases(draw: Draw) -> Case:
    script = draw(st.sampled_from(SCRIPTS))
    mutation = draw(st.sampled_from(WEIGHTED_MUTATIONS))
    data = script.data
    cut_short = draw(st.integers(0, 3)) == 0
    if cut_short:
        # Stop the broker at a frame boundary (the handshake's more often):
        # every state meets each ending (eof, a lost transport, timers).
        bounds = [pos for pos, _ in _frame_offsets(data)]
        cut = draw(st.sampled_from(bounds[:4]) | st.sampled_from(bounds))
        data = data[:cut]
    if cut_short and draw(st.booleans()):
        mutation = "none"  # a valid stream that just stops
    for _ in range(draw(st.integers(1, 2)) if mutation != "none" else 1):
        if data:
            data = MUTATIONS[mutation](draw, data)
    chunking = draw(st.sampled_from(["whole", "bytewise", "random"]))
    if chunking == "whole":
        chunks: list[int] = []
    elif chunking == "bytewise":
        chunks = [1]
    else:
        chunks = draw(
            st.lists(
                st.one_of(st.integers(1, 16), st.integers(1, 5000)),
                min_size=1,
                max_size=20,
            )
        )
    steps = draw(
        st.lists(st.sampled_from([0.0, 0.5, 4.0, 9.0, 30.0, 130.0]), max_size=8)
    )
    return Case(
        script=script,
        mutation=mutation,
        data=data,
        chunks=chunks,
        steps=steps,
        timers=draw(st.booleans()),
        ending=draw(st.sampled_from(["none", "eof", "lost", "late-timers"])),
        pauses=draw(st.lists(st.sampled_from([None, True, False]), max_size=6)),
    )


def check_cases(batch: list[Case]) -> None:
    """One example runs a few cases: more streams per second of run time."""
    for case in batch:
        run_case(case)


#: What one example is: a few independent cases (shrinks to one).
batches = st.lists(cases(), min_size=1, max_size=4)


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
@pytest.mark.parametrize(
    "chunking", [[], [1], [7, 1, 300]], ids=["whole", "bytewise", "mixed"]
)
def test_the_scripts_are_valid(script: Script, chunking: list[int]) -> None:
    """Unmutated, each script runs to its expected end with no protocol error."""
    seen = run_case(
        Case(script, "none", script.data, chunking, [], timers=False, ending="none")
    )
    assert seen.terminated is not None, seen.events[-5:]
    error = seen.terminated.error
    if script.outcome is None:
        assert error is None
    else:
        assert type(error) is script.outcome
    kinds = {type(e) for e in seen.events}
    assert not any(
        isinstance(e, ev.ConnectionTerminated) and isinstance(e.error, ProtocolError)
        for e in seen.events
    )
    if script.name == "consume":
        assert {ev.DeliveryReceived, ev.GetReceived, ev.ChannelFlowChanged} <= kinds
        assert {ev.ConsumerCancelled, ev.ChannelTerminated} <= kinds
    elif script.name == "confirms":
        assert {ev.PublishAcked, ev.PublishNacked, ev.ReturnReceived} <= kinds
        assert {ev.ConnectionBlocked, ev.ConnectionUnblocked} <= kinds


@pytest.mark.timeout(max(120, FUZZ_EXAMPLES // 2))
@fuzz_settings(FUZZ_EXAMPLES)
@given(batches)
def test_mutated_streams_never_break_the_core(batch: list[Case]) -> None:
    check_cases(batch)


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz test outside pytest: ``python -m
    tests.property.test_protocol_fuzz [EXAMPLES]`` (default FUZZ_EXAMPLES)."""
    args = sys.argv[1:] if argv is None else argv
    examples = int(args[0]) if args else FUZZ_EXAMPLES
    # Every garbage input logs a protocol error; keep the terminal readable.
    logging.getLogger("amqp_client").setLevel(logging.CRITICAL)
    fuzz = fuzz_settings(examples)(given(batches)(check_cases))
    fuzz()
    print(f"fuzzed the protocol core with {examples} examples: no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
