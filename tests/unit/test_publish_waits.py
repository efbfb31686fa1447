"""basic_publish waits, bounded by ``timeout=``, and never half-writes.

A publish waits while the broker has blocked the connection
(connection.blocked), while channel.flow paused its channel, while the
output is full (the peer stopped reading: above the asyncio transport's
high-water mark, or the blocking front's unsent-output limit), and while
the connection recovers. Each test puts one front (asyncio, or blocking
through :class:`~tests.unit.test_front_scripted.Threaded`) in one of those
states against a :class:`~tests.support.socket_peer.ScriptedBroker` and
checks:

* ``timeout=`` bounds the wait: TimeoutError, and nothing of that message
  reaches the broker, not even its method frame (the broker has no
  content pending), nor later; in confirm mode it took no delivery tag;
* once the state clears, the next publish arrives whole, with the next tag;
* ``timeout=None`` (the default) waits, and the publish completes once the
  state clears;
* bad arguments (a body that is not bytes, a shortstr over 255 bytes,
  properties that are not BasicProperties, a bad ``timeout=``) raise at
  once, also while the connection is blocked, and send nothing.

"Nothing reached the broker" is checked after a round trip (a
queue.declare and its reply): the client writes in order, so whatever it
had written before is in by then.

Every wait is bounded: client calls take explicit timeouts, the broker's
waits fail after ``STEP``, each scenario has a deadline of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import amqp_client
from amqp_client import blocking, spec
from tests.support.proxy import Proxy
from tests.support.socket_peer import (
    STEP,
    ScriptedBroker,
    ScriptedConnection,
    wait_until_async,
)
from tests.unit.test_front_scripted import Threaded, run

FRONTS = ["aio", "blocking"]
#: What a publish that must time out is given, seconds.
SHORT = 0.1
#: How long a test looks for something that must not happen, seconds.
QUIET = 0.1
#: Bound of a call that must fail at once (no wait), seconds.
AT_ONCE = 0.5
#: One big body: a few fill the socket's and the client's buffers.
MIB = 1 << 20


@pytest.fixture
def broker() -> Iterator[ScriptedBroker]:
    with ScriptedBroker() as scripted:
        yield scripted


@pytest.fixture(params=FRONTS)
def front(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@contextlib.asynccontextmanager
async def connected(front: str, url: str, **kwargs: Any) -> AsyncIterator[Any]:
    """A connection of ``front`` to ``url`` (a blocking one wrapped in
    Threaded); closed at the end."""
    kwargs.setdefault("connection_timeout", STEP)
    if front == "aio":
        async with amqp_client.connect(url, **kwargs) as conn:
            yield conn
        return
    target = await asyncio.to_thread(blocking.connect, url, **kwargs)
    try:
        yield Threaded(target)
    finally:
        await asyncio.to_thread(target.close)


async def confirming_channel(conn: Any) -> Any:
    """A channel in confirm mode: a publish that went out takes a tag."""
    ch = await conn.channel(timeout=STEP)
    await ch.confirm_select(timeout=STEP)
    return ch


def bodies(peer: ScriptedConnection, channel: int | None = None) -> list[bytes]:
    """The bodies of the basic.publish the broker received (on ``channel``)."""
    return [item.body or b"" for item in peer.methods(spec.BasicPublish, channel)]


async def round_trip(ch: Any, peer: ScriptedConnection) -> None:
    """A queue.declare and its reply: what the client wrote before it is
    in; then no message may be half received."""
    await ch.queue_declare("marker", timeout=STEP)
    assert peer.pending_content() == [], "a basic.publish without all its content"


async def times_out(ch: Any, body: bytes, timeout: float = SHORT) -> None:
    """``basic_publish(body, timeout=timeout)`` raises TimeoutError after
    about ``timeout`` seconds."""
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            ch.basic_publish(body, routing_key="q", timeout=timeout), STEP
        )
    elapsed = time.monotonic() - start
    assert timeout * 0.9 <= elapsed < STEP, f"timed out after {elapsed:.3f} s"


async def publish_confirmed(ch: Any, peer: ScriptedConnection, body: bytes) -> None:
    """Publish ``body``; it arrives whole, as the channel's next confirm
    tag, and the broker's ack of that tag settles it."""
    before = len(bodies(peer, ch.channel_id))
    confirmation = await ch.basic_publish(body, routing_key="q", timeout=STEP)
    await peer.wait_for_async(
        lambda: len(bodies(peer, ch.channel_id)) > before, what="the publish"
    )
    assert bodies(peer, ch.channel_id)[before:] == [body]
    assert confirmation.delivery_tag == peer.published(ch.channel_id)
    peer.ack(ch.channel_id, confirmation.delivery_tag)
    await settled(confirmation)


async def settled(confirmation: Any) -> None:
    if isinstance(confirmation, amqp_client.aio.Confirmation):
        await asyncio.wait_for(confirmation, STEP)
    else:
        await asyncio.to_thread(confirmation.wait, STEP)


async def still_waiting(task: asyncio.Future[Any], peer: ScriptedConnection) -> None:
    """A publish that must wait has not returned, and sent nothing."""
    await asyncio.sleep(QUIET)
    assert not task.done(), f"the publish returned while it had to wait: {task!r}"
    assert bodies(peer) == []


# --- connection.blocked ----------------------------------------------------------------


async def blocked(conn: Any, peer: ScriptedConnection) -> None:
    peer.block()
    await wait_until_async(lambda: conn.is_blocked, what="connection.blocked")


async def unblocked(conn: Any, peer: ScriptedConnection) -> None:
    peer.unblock()
    await wait_until_async(lambda: not conn.is_blocked, what="connection.unblocked")


def test_publish_while_blocked_times_out_and_sends_nothing(
    front: str, broker: ScriptedBroker
) -> None:
    async def scenario() -> None:
        async with connected(front, broker.url) as conn:
            peer = await broker.wait_connection_async()
            ch = await confirming_channel(conn)
            await blocked(conn, peer)
            await times_out(ch, b"timed out")
            await times_out(ch, b"timed out at once", timeout=0)
            await round_trip(ch, peer)
            assert bodies(peer) == []
            await unblocked(conn, peer)
            await publish_confirmed(ch, peer, b"after the alarm")
            await round_trip(ch, peer)
            assert bodies(peer) == [b"after the alarm"]

    run(scenario)


def test_publish_while_blocked_waits_by_default(
    front: str, broker: ScriptedBroker
) -> None:
    async def scenario() -> None:
        async with connected(front, broker.url) as conn:
            peer = await broker.wait_connection_async()
            ch = await confirming_channel(conn)
            await blocked(conn, peer)
            task = asyncio.ensure_future(ch.basic_publish(b"waited", routing_key="q"))
            await still_waiting(task, peer)
            await unblocked(conn, peer)
            confirmation = await asyncio.wait_for(task, STEP)
            await peer.wait_method_async(spec.BasicPublish)
            assert bodies(peer) == [b"waited"]
            assert confirmation.delivery_tag == 1
            peer.ack(ch.channel_id, 1)
            await settled(confirmation)

    run(scenario)


ENDINGS: list[tuple[str, type[Exception]]] = [
    ("broker closes the channel", amqp_client.PreconditionFailedError),
    ("channel close()", amqp_client.ChannelClosed),
    ("connection close()", amqp_client.ConnectionClosed),
    ("connection lost", amqp_client.ConnectionLost),
]


@pytest.mark.parametrize(
    ("ending", "error"),
    [pytest.param(*case, id=case[0].replace(" ", "-")) for case in ENDINGS],
)
def test_publish_waiting_while_blocked_fails_when_its_channel_ends(
    front: str, broker: ScriptedBroker, ending: str, error: type[Exception]
) -> None:
    """The channel or the connection ends while a publish (no timeout)
    waits for an unblock: the publish raises the ending's error then,
    neither waiting on nor sending anything."""

    async def scenario() -> None:
        async with connected(front, broker.url) as conn:
            peer = await broker.wait_connection_async()
            ch = await conn.channel(timeout=STEP)
            await blocked(conn, peer)
            task = asyncio.ensure_future(ch.basic_publish(b"x", routing_key="q"))
            await still_waiting(task, peer)
            if ending == "broker closes the channel":
                peer.close_channel(ch.channel_id)
            elif ending == "channel close()":
                await asyncio.wait_for(ch.close(), STEP)
            elif ending == "connection close()":
                await asyncio.wait_for(conn.close(), STEP)
            else:
                await asyncio.to_thread(peer.drop)
            with pytest.raises(error):
                await asyncio.wait_for(task, AT_ONCE)
            if ending in ("connection close()", "connection lost"):
                assert bodies(peer) == []
                return
            await unblocked(conn, peer)
            other = await conn.channel(timeout=STEP)
            await round_trip(other, peer)
            assert bodies(peer) == []

    run(scenario)


# --- channel.flow --------------------------------------------------------------------------


async def flow(ch: Any, peer: ScriptedConnection, active: bool) -> None:
    count = len(peer.methods(spec.ChannelFlowOk, ch.channel_id))
    peer.flow(ch.channel_id, active)
    await peer.wait_method_async(spec.ChannelFlowOk, ch.channel_id, count=count + 1)
    await wait_until_async(
        lambda: ch._state.flow_active is active, what=f"channel.flow {active}"
    )


def test_publish_while_flow_paused_times_out_and_sends_nothing(
    front: str, broker: ScriptedBroker
) -> None:
    """channel.flow(active=False) pauses publishing on that channel only."""

    async def scenario() -> None:
        async with connected(front, broker.url) as conn:
            peer = await broker.wait_connection_async()
            ch = await confirming_channel(conn)
            other = await confirming_channel(conn)
            await flow(ch, peer, False)
            await times_out(ch, b"timed out")
            await publish_confirmed(other, peer, b"on the other channel")
            await round_trip(ch, peer)
            assert bodies(peer, ch.channel_id) == []
            await flow(ch, peer, True)
            await publish_confirmed(ch, peer, b"after flow")
            await round_trip(ch, peer)
            assert bodies(peer, ch.channel_id) == [b"after flow"]

    run(scenario)


def test_publish_while_flow_paused_waits_by_default(
    front: str, broker: ScriptedBroker
) -> None:
    async def scenario() -> None:
        async with connected(front, broker.url) as conn:
            peer = await broker.wait_connection_async()
            ch = await conn.channel(timeout=STEP)
            await flow(ch, peer, False)
            task = asyncio.ensure_future(ch.basic_publish(b"waited", routing_key="q"))
            await still_waiting(task, peer)
            await flow(ch, peer, True)
            assert await asyncio.wait_for(task, STEP) is None
            await peer.wait_method_async(spec.BasicPublish)
            assert bodies(peer) == [b"waited"]

    run(scenario)


# --- a peer that stopped reading -------------------------------------------------------


#: Publishes of 1 MiB that may go before the output is full (a few MiB of
#: socket buffers, then the transport's 1 MiB or the blocking front's 4 MiB).
MAX_FILL = 48


async def fill(ch: Any, peer: ScriptedConnection) -> list[bytes]:
    """With the broker not reading, publish 1 MiB bodies until one times
    out; the bodies that went."""
    peer.pause_reading()
    went: list[bytes] = []
    for index in range(MAX_FILL):
        body = bytes([index]) * MIB
        try:
            await asyncio.wait_for(
                ch.basic_publish(body, routing_key="q", timeout=SHORT), STEP
            )
        except TimeoutError:
            return went
        went.append(body)
    raise AssertionError(f"{MAX_FILL} MiB went to a broker that does not read")


async def drained(ch: Any, peer: ScriptedConnection, went: list[bytes]) -> None:
    """The broker reads again: what went before arrives whole, and nothing
    more."""
    peer.resume_reading()
    await peer.wait_for_async(
        lambda: len(bodies(peer)) >= len(went),
        timeout=STEP,
        what=f"{len(went)} publishes",
    )
    await round_trip(ch, peer)
    assert bodies(peer) == went


def test_publish_to_a_full_socket_times_out_and_sends_nothing(
    front: str, broker: ScriptedBroker
) -> None:
    async def scenario() -> None:
        async with connected(front, broker.url) as conn:
            peer = await broker.wait_connection_async()
            ch = await confirming_channel(conn)
            try:
                went = await fill(ch, peer)
                assert went, "the first publish already timed out"
                await times_out(ch, b"timed out as well")
            finally:
                peer.resume_reading()
            await drained(ch, peer, went)
            assert peer.published(ch.channel_id) == len(went)
            await publish_confirmed(ch, peer, b"after the drain")
            # Settle the fillers too: a graceful close waits for confirms.
            peer.ack(ch.channel_id, peer.published(ch.channel_id), multiple=True)

    run(scenario)


def test_publish_to_a_full_socket_waits_by_default(
    front: str, broker: ScriptedBroker
) -> None:
    async def scenario() -> None:
        async with connected(front, broker.url) as conn:
            peer = await broker.wait_connection_async()
            ch = await confirming_channel(conn)
            try:
                went = await fill(ch, peer)
                task = asyncio.ensure_future(
                    ch.basic_publish(b"waited", routing_key="q")
                )
                await asyncio.sleep(QUIET)
                assert not task.done()
            finally:
                peer.resume_reading()
            confirmation = await asyncio.wait_for(task, STEP)
            await drained(ch, peer, [*went, b"waited"])
            assert confirmation.delivery_tag == len(went) + 1
            peer.ack(ch.channel_id, confirmation.delivery_tag, multiple=True)
            await settled(confirmation)

    run(scenario)


# --- recovery under way --------------------------------------------------------------------

RECOVERY = {"recover": True, "recovery_delay": 0.02, "recovery_max_delay": 0.05}


async def recovering(conn: Any, broker: ScriptedBroker, proxy: Proxy) -> None:
    """The broker goes away and does not take the next connection."""
    await asyncio.to_thread(proxy.refuse, True, mode="unlisten")
    await asyncio.to_thread(broker.connections[0].drop)
    await wait_until_async(lambda: not conn.is_open, what="the connection loss")


async def recovered(conn: Any, broker: ScriptedBroker, proxy: Proxy) -> Any:
    """The broker takes connections again: the second one's broker side,
    once the client recovered."""
    await asyncio.to_thread(proxy.refuse, False)
    second = await broker.wait_connection_async(1)
    await wait_until_async(lambda: conn.is_open, what="the recovery")
    return second


@pytest.fixture
def proxy(broker: ScriptedBroker) -> Iterator[Proxy]:
    with Proxy(("127.0.0.1", broker.port)) as started:
        yield started


def test_publish_while_recovering_times_out_and_sends_nothing(
    front: str, broker: ScriptedBroker, proxy: Proxy
) -> None:
    async def scenario() -> None:
        async with connected(front, proxy.url(broker.url), **RECOVERY) as conn:
            first = await broker.wait_connection_async()
            ch = await confirming_channel(conn)
            await recovering(conn, broker, proxy)
            await times_out(ch, b"timed out")
            second = await recovered(conn, broker, proxy)
            await round_trip(ch, second)
            assert bodies(first) == bodies(second) == []
            await publish_confirmed(ch, second, b"after the recovery")
            await round_trip(ch, second)
            assert bodies(second) == [b"after the recovery"]

    run(scenario)


def test_publish_while_recovering_waits_by_default(
    front: str, broker: ScriptedBroker, proxy: Proxy
) -> None:
    async def scenario() -> None:
        async with connected(front, proxy.url(broker.url), **RECOVERY) as conn:
            first = await broker.wait_connection_async()
            ch = await confirming_channel(conn)
            await recovering(conn, broker, proxy)
            task = asyncio.ensure_future(ch.basic_publish(b"waited", routing_key="q"))
            await still_waiting(task, first)
            second = await recovered(conn, broker, proxy)
            confirmation = await asyncio.wait_for(task, STEP)
            await round_trip(ch, second)
            assert bodies(second) == [b"waited"]
            assert confirmation.delivery_tag == second.published(ch.channel_id) == 1
            second.ack(ch.channel_id, 1)
            await settled(confirmation)

    run(scenario)


# --- bad arguments fail at once, blocked or not -------------------------------------------

BAD_ARGUMENTS: list[tuple[str, dict[str, Any], type[Exception]]] = [
    ("str body", {"body": "text"}, TypeError),
    ("int body", {"body": 42}, TypeError),
    ("None body", {"body": None}, TypeError),
    ("list body", {"body": [b"x"]}, TypeError),
    ("256-char routing key", {"routing_key": "k" * 256}, ValueError),
    ("routing key over 255 bytes", {"routing_key": "é" * 128}, ValueError),
    ("256-char exchange", {"exchange": "x" * 256}, ValueError),
    ("int routing key", {"routing_key": 5}, TypeError),
    ("str mandatory", {"mandatory": "yes"}, TypeError),
    ("dict properties", {"properties": {"content_type": "text/plain"}}, TypeError),
    ("timeout -1", {"timeout": -1}, ValueError),
    ("timeout nan", {"timeout": math.nan}, ValueError),
    ("timeout inf", {"timeout": math.inf}, ValueError),
    ("timeout '5'", {"timeout": "5"}, TypeError),
    ("timeout True", {"timeout": True}, TypeError),
]


@pytest.mark.parametrize("state", ["open", "blocked", "flow paused"])
@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [
        pytest.param(*case, id=case[0].replace(" ", "-").replace("'", ""))
        for case in BAD_ARGUMENTS
    ],
)
def test_bad_arguments_fail_at_once_and_send_nothing(
    front: str,
    broker: ScriptedBroker,
    state: str,
    name: str,
    arguments: dict[str, Any],
    error: type[Exception],
) -> None:
    async def scenario() -> None:
        async with connected(front, broker.url) as conn:
            peer = await broker.wait_connection_async()
            ch = await confirming_channel(conn)
            if state == "blocked":
                await blocked(conn, peer)
            elif state == "flow paused":
                await flow(ch, peer, False)
            kwargs: dict[str, Any] = {"body": b"x", "routing_key": "q", **arguments}
            body = kwargs.pop("body")
            start = time.monotonic()
            try:
                with pytest.raises(error):
                    await asyncio.wait_for(ch.basic_publish(body, **kwargs), AT_ONCE)
            finally:
                # Let a publish that wrongly waits go on, so the test ends.
                if state == "blocked":
                    await unblocked(conn, peer)
                elif state == "flow paused":
                    await flow(ch, peer, True)
            assert time.monotonic() - start < AT_ONCE
            await round_trip(ch, peer)
            assert bodies(peer) == []
            # It took no confirm tag: the next publish is #1.
            await publish_confirmed(ch, peer, b"good")

    run(scenario)


@pytest.mark.parametrize("state", ["blocked", "flow paused"])
def test_publish_waiting_while_blocked_goes_on_the_recovered_connection(
    front: str, broker: ScriptedBroker, state: str
) -> None:
    """A block or a flow pause belongs to the connection that was lost: the
    new one starts unblocked, and a publish that waited goes there, once."""

    async def scenario() -> None:
        async with connected(front, broker.url, **RECOVERY) as conn:
            first = await broker.wait_connection_async()
            ch = await confirming_channel(conn)
            if state == "blocked":
                await blocked(conn, first)
            else:
                await flow(ch, first, False)
            task = asyncio.ensure_future(ch.basic_publish(b"waited", routing_key="q"))
            await still_waiting(task, first)
            await asyncio.to_thread(first.drop)
            second = await broker.wait_connection_async(1)
            await wait_until_async(lambda: conn.is_open, what="the recovery")
            confirmation = await asyncio.wait_for(task, STEP)
            assert not conn.is_blocked
            await round_trip(ch, second)
            assert bodies(first) == []
            assert bodies(second) == [b"waited"]
            assert confirmation.delivery_tag == 1
            second.ack(ch.channel_id, 1)
            await settled(confirmation)

    run(scenario)
