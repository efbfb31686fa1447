"""Both fronts over a real socket, against a scripted broker (no RabbitMQ).

Each test connects the asyncio or the blocking front to a
:class:`~tests.support.socket_peer.ScriptedBroker` on 127.0.0.1, drives it
through one scenario, and checks what the client sent (the broker records
every method) and the connection's own state (delivery budget, read pause).

A scenario both fronts share is one coroutine: the asyncio front is used
as it is, the blocking one through :class:`Threaded`, which runs each of
its calls in a worker thread (so the event loop, and with it the polling
waits, keeps running). What only one front has (cancelling a task, a
blocking ``timeout=``) is tested on that front alone, the blocking tests
as plain blocking code.

Every wait is bounded: client calls take ``timeout=STEP``, deliveries are
taken with a deadline, the broker's waits fail after ``STEP``, and each
scenario has a deadline of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest

import amqp_client
from amqp_client import aio, blocking, spec
from tests.support import scripted_peer as sp
from tests.support.socket_peer import (
    STEP,
    ScriptedBroker,
    ScriptedConnection,
    wait_until,
    wait_until_async,
)

FRONTS = ["aio", "blocking"]
#: Deadline of one whole scenario, seconds.
SCENARIO = 10.0
#: How long a test looks for something that must not happen, seconds.
QUIET = 0.05


@pytest.fixture
def broker() -> Iterator[ScriptedBroker]:
    with ScriptedBroker() as scripted:
        yield scripted


@pytest.fixture(params=FRONTS)
def front(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one scenario on a fresh event loop, under its deadline."""

    async def main() -> None:
        async with asyncio.timeout(SCENARIO):
            await scenario()

    asyncio.run(main())


# --- the blocking front with the asyncio front's surface ------------------------------

#: Each blocking class and its asyncio counterpart, which says which
#: members are coroutines (run in a thread and awaited).
_COUNTERPARTS: dict[type, type] = {
    blocking.Connection: aio.Connection,
    blocking.Channel: aio.Channel,
    blocking.Consumer: aio.Consumer,
    blocking.Delivery: aio.Delivery,
}


def _wrap(value: Any) -> Any:
    return Threaded(value) if type(value) in _COUNTERPARTS else value


class Threaded:
    """A blocking-front object seen as its asyncio counterpart: a method
    that is a coroutine in the asyncio front runs in a worker thread and is
    awaited; anything else (properties, private state) is the object's own."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __repr__(self) -> str:
        return f"Threaded({self._target!r})"

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        model = getattr(_COUNTERPARTS[type(self._target)], name, None)
        if not inspect.iscoroutinefunction(model):
            return value

        async def call(*args: Any, **kwargs: Any) -> Any:
            return _wrap(await asyncio.to_thread(value, *args, **kwargs))

        return call

    async def __aenter__(self) -> Threaded:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self._target.__exit__, None, None, None)

    def __aiter__(self) -> Threaded:
        return self

    async def __anext__(self) -> Any:
        delivery = await asyncio.to_thread(self._target.get, STEP)
        if delivery is None:
            raise StopAsyncIteration
        return _wrap(delivery)


@contextlib.asynccontextmanager
async def connected(
    front: str, broker: ScriptedBroker, **kwargs: Any
) -> AsyncIterator[tuple[Any, ScriptedConnection]]:
    """A connection of ``front`` to ``broker`` and the broker's side of it;
    closed at the end."""
    index = len(broker.connections)
    kwargs.setdefault("connection_timeout", STEP)
    if front == "aio":
        async with amqp_client.connect(broker.url, **kwargs) as conn:
            yield conn, await broker.wait_connection_async(index)
        return
    target = await asyncio.to_thread(blocking.connect, broker.url, **kwargs)
    try:
        yield Threaded(target), await broker.wait_connection_async(index)
    finally:
        await asyncio.to_thread(target.close)


# --- helpers -------------------------------------------------------------------------


async def take(consumer: Any) -> Any:
    """The consumer's next delivery, within STEP."""
    return await asyncio.wait_for(anext(consumer), STEP)


async def assert_ended(consumer: Any) -> None:
    """The consumer's iteration is over."""
    with pytest.raises(StopAsyncIteration):
        await take(consumer)


def budget_free(conn: Any) -> bool:
    """Nothing buffered, and reading not paused."""
    session = conn._session
    return (
        session.budget.messages == 0
        and session.budget.size == 0
        and not session.reading_paused
    )


async def wait_budget_free(conn: Any) -> None:
    await wait_until_async(
        lambda: budget_free(conn),
        what="the delivery budget to be free and reading resumed",
        detail=lambda: (
            f"{conn._session.budget!r}, paused={conn._session.reading_paused}"
        ),
    )


def rejects(peer: ScriptedConnection) -> list[tuple[int, spec.BasicReject]]:
    return [
        (item.channel, item.method)
        for item in peer.methods(spec.BasicReject)
        if isinstance(item.method, spec.BasicReject)
    ]


# --- 1. a consumer that ends hands back what it buffered ------------------------------

ENDINGS = ["cancel", "context_exit", "server_cancel", "channel_closed"]


@pytest.mark.parametrize("ending", ENDINGS)
def test_ending_consumer_returns_buffered_deliveries(
    front: str, broker: ScriptedBroker, ending: str
) -> None:
    """Three deliveries buffered, one handed out, then the consumer ends:
    the other two are rejected with requeue (on an open channel), the
    budget is back at 0, reading goes on, and the next RPC works."""

    async def scenario() -> None:
        async with connected(front, broker) as (conn, peer):
            ch = await conn.channel(timeout=STEP)
            consumer = await ch.basic_consume("q", timeout=STEP)
            channel = ch.channel_id
            for body in (b"m1", b"m2", b"m3"):
                peer.deliver(channel, consumer.consumer_tag, body)
            await wait_until_async(
                lambda: consumer._state.buffered == 3, what="3 buffered deliveries"
            )

            if ending == "context_exit":
                async with consumer:
                    async for delivery in consumer:
                        first = delivery
                        break
            else:
                first = await take(consumer)
            assert first.delivery_tag == 1
            if ending == "cancel":
                await consumer.cancel(timeout=STEP)
            elif ending == "server_cancel":
                peer.cancel_consumer(channel, consumer.consumer_tag)
                await peer.wait_method_async(spec.BasicCancelOk, channel)
            elif ending == "channel_closed":
                peer.close_channel(channel)
                await peer.wait_method_async(spec.ChannelCloseOk, channel)

            await wait_budget_free(conn)
            if ending == "channel_closed":
                # The channel is gone: nothing to reject on (the broker
                # requeues what it delivered there); the consumer raises
                # the channel's error once, then is over.
                with pytest.raises(amqp_client.PreconditionFailedError):
                    await take(consumer)
                await assert_ended(consumer)
                ch = await conn.channel(timeout=STEP)
                expected: list[tuple[int, spec.BasicReject]] = []
            else:
                await peer.wait_for_async(
                    lambda: len(peer.methods(spec.BasicReject)) >= 2,
                    what="2 rejects",
                )
                await assert_ended(consumer)
                expected = [
                    (channel, spec.BasicReject(2, requeue=True)),
                    (channel, spec.BasicReject(3, requeue=True)),
                ]
            ok = await ch.queue_declare("next", timeout=STEP)
            assert ok.queue == "next"
            # Everything the client sent before the declare is in by now.
            assert rejects(peer) == expected
            assert budget_free(conn)

    run(scenario)


def test_ending_no_ack_consumer_keeps_its_deliveries(
    front: str, broker: ScriptedBroker
) -> None:
    """A no_ack consumer's deliveries already belong to the application:
    after cancel() nothing is rejected and the budget is free, but the
    consumer still hands out what it buffered, then ends."""

    async def scenario() -> None:
        async with connected(front, broker) as (conn, peer):
            ch = await conn.channel(timeout=STEP)
            consumer = await ch.basic_consume("q", no_ack=True, timeout=STEP)
            for body in (b"m1", b"m2", b"m3"):
                peer.deliver(ch.channel_id, consumer.consumer_tag, body)
            await wait_until_async(
                lambda: consumer._state.buffered == 3, what="3 buffered deliveries"
            )
            assert (await take(consumer)).body == b"m1"
            await consumer.cancel(timeout=STEP)
            await wait_budget_free(conn)
            assert [(await take(consumer)).body for _ in range(2)] == [b"m2", b"m3"]
            await assert_ended(consumer)
            await ch.queue_declare("next", timeout=STEP)
            assert rejects(peer) == []
            assert budget_free(conn)

    run(scenario)


# --- 2. the read pause by message count ------------------------------------------------


def test_read_pause_by_count_never_holds_back_replies(
    front: str, broker: ScriptedBroker
) -> None:
    """max_buffered_messages=10 and a consumer that reads nothing: reading
    pauses at 10; an RPC and the consumer's cancel still get their replies;
    once the consumer ended every delivery was rejected with requeue and
    reading goes on."""

    async def scenario() -> None:
        async with connected(front, broker, max_buffered_messages=10) as (conn, peer):
            session = conn._session
            ch = await conn.channel(timeout=STEP)
            consumer = await ch.basic_consume("q", timeout=STEP)
            channel, tag = ch.channel_id, consumer.consumer_tag
            for _ in range(10):
                peer.deliver(channel, tag, b"x")
            await wait_until_async(lambda: session.reading_paused, what="a read pause")
            assert session.budget.messages == 10
            for _ in range(40):
                peer.deliver(channel, tag, b"x")
            await asyncio.sleep(QUIET)
            assert session.budget.messages == 10  # not reading

            # A reply is read although reading was paused; the deliveries in
            # front of it are read with it, and reading pauses again.
            ok = await ch.queue_declare("while-paused", timeout=STEP)
            assert ok.queue == "while-paused"
            assert session.budget.messages == 50
            await wait_until_async(lambda: session.reading_paused, what="pause again")

            await consumer.cancel(timeout=STEP)
            await peer.wait_for_async(
                lambda: len(peer.methods(spec.BasicReject)) >= 50, what="50 rejects"
            )
            assert rejects(peer) == [
                (channel, spec.BasicReject(n, requeue=True)) for n in range(1, 51)
            ]
            await wait_budget_free(conn)
            await assert_ended(consumer)
            ok = await ch.queue_declare("after", timeout=STEP)
            assert ok.queue == "after"

    run(scenario)


def test_close_while_reading_is_paused_reads_close_ok(
    front: str, broker: ScriptedBroker
) -> None:
    async def scenario() -> None:
        async with connected(front, broker, max_buffered_messages=10) as (conn, peer):
            ch = await conn.channel(timeout=STEP)
            consumer = await ch.basic_consume("q", timeout=STEP)
            for _ in range(10):
                peer.deliver(ch.channel_id, consumer.consumer_tag, b"x")
            await wait_until_async(
                lambda: conn._session.reading_paused, what="a read pause"
            )
            closing = asyncio.ensure_future(conn.close())
            done, _ = await asyncio.wait({closing}, timeout=0.5)
            if closing not in done:
                # Unstick it so the test ends soon: handing deliveries out
                # brings the budget under its limit, and reading resumes.
                with contextlib.suppress(StopAsyncIteration):
                    for _ in range(10):
                        await take(consumer)
            await asyncio.wait_for(closing, STEP)
            assert closing in done, "close() did not finish within 0.5 s"
            assert peer.names()[-1] == (0, "connection.close")

    run(scenario)


# --- 3. the read pause by bytes ----------------------------------------------------------


def test_read_pause_by_bytes(front: str, broker: ScriptedBroker) -> None:
    """max_buffered_bytes=1 MiB: two 512 KiB deliveries pause reading, the
    next two wait in the socket; taking the deliveries resumes reading."""

    async def scenario() -> None:
        limit = 1 << 20
        body = bytes(512 * 1024)
        async with connected(front, broker, max_buffered_bytes=limit) as (conn, peer):
            session = conn._session
            ch = await conn.channel(timeout=STEP)
            consumer = await ch.basic_consume("q", timeout=STEP)
            channel, tag = ch.channel_id, consumer.consumer_tag

            peer.deliver(channel, tag, body)
            await wait_until_async(lambda: session.budget.messages == 1, what="one")
            assert not session.reading_paused
            peer.deliver(channel, tag, body)
            await wait_until_async(lambda: session.reading_paused, what="a read pause")
            assert (session.budget.messages, session.budget.size) == (2, limit)

            peer.deliver(channel, tag, body)
            peer.deliver(channel, tag, body)
            await asyncio.sleep(QUIET)
            assert session.budget.messages == 2  # not reading

            taken = [await take(consumer) for _ in range(4)]
            assert [d.delivery_tag for d in taken] == [1, 2, 3, 4]
            assert all(d.body == body for d in taken)
            await wait_budget_free(conn)

    run(scenario)


# --- 4. a confirmation outlives a wait that gave up -----------------------------------


@pytest.mark.parametrize("how", ["wait_for", "task_cancel"])
def test_aio_confirmation_outlives_an_abandoned_wait(
    broker: ScriptedBroker, how: str
) -> None:
    """Awaiting a Confirmation under a timeout, or from a task that is
    cancelled, does not cancel it: the broker's later ack resolves it."""

    async def scenario() -> None:
        async with amqp_client.connect(broker.url, connection_timeout=STEP) as conn:
            peer = await broker.wait_connection_async()
            ch = await conn.channel(timeout=STEP)
            await ch.confirm_select(timeout=STEP)
            confirmation = await ch.basic_publish(b"x", routing_key="q")
            assert confirmation is not None
            await peer.wait_method_async(spec.BasicPublish)

            if how == "wait_for":
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(confirmation, 0.01)
            else:

                async def waiter() -> None:
                    await confirmation

                task = asyncio.create_task(waiter())
                await asyncio.sleep(QUIET)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            assert not confirmation.done()

            peer.ack(ch.channel_id, confirmation.delivery_tag)
            await asyncio.wait_for(confirmation, STEP)
            assert confirmation.done()
            assert repr(confirmation) == "<Confirmation #1 acked>"

    run(scenario)


def test_blocking_confirmation_outlives_a_timed_out_wait(
    broker: ScriptedBroker,
) -> None:
    with blocking.connect(broker.url, connection_timeout=STEP) as conn:
        peer = broker.wait_connection()
        ch = conn.channel(timeout=STEP)
        ch.confirm_select(timeout=STEP)
        confirmation = ch.basic_publish(b"x", routing_key="q")
        assert confirmation is not None
        peer.wait_method(spec.BasicPublish)
        with pytest.raises(TimeoutError):
            confirmation.wait(0.01)
        assert not confirmation.done()

        peer.ack(ch.channel_id, confirmation.delivery_tag)
        confirmation.wait(STEP)
        assert repr(confirmation) == "<Confirmation #1 acked>"


# --- 5. channel() given up before open-ok ------------------------------------------------


async def _after_open_ok_the_id_is_closed_and_free(
    conn: Any, peer: ScriptedConnection
) -> None:
    assert peer.names(3) == [(1, "channel.open")]
    assert peer.release(spec.ChannelOpen) == 1
    await peer.wait_method_async(spec.ChannelClose, 1)
    await wait_until_async(
        lambda: conn._session.router.get(1) is None, what="channel 1 to be freed"
    )
    ch = await conn.channel(timeout=STEP)
    assert ch.channel_id == 1
    assert peer.names(3) == [
        (1, "channel.open"),
        (1, "channel.close"),
        (1, "channel.open"),
    ]


@pytest.mark.parametrize("how", ["task_cancel", "wait_for", "timeout"])
def test_aio_abandoned_channel_is_closed_at_open_ok(
    broker: ScriptedBroker, how: str
) -> None:
    """A channel() cancelled or timed out before channel.open-ok: when the
    open-ok comes, the client closes that channel at once, and after
    close-ok its id is the next one handed out."""

    async def scenario() -> None:
        async with amqp_client.connect(broker.url, connection_timeout=STEP) as conn:
            peer = await broker.wait_connection_async()
            peer.hold(spec.ChannelOpen)
            if how == "task_cancel":
                task = asyncio.create_task(conn.channel())
                await peer.wait_method_async(spec.ChannelOpen)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            elif how == "wait_for":
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(conn.channel(), 0.05)
            else:
                with pytest.raises(TimeoutError):
                    await conn.channel(timeout=0.05)
            await _after_open_ok_the_id_is_closed_and_free(conn, peer)

    run(scenario)


def test_blocking_abandoned_channel_is_closed_at_open_ok(
    broker: ScriptedBroker,
) -> None:
    with blocking.connect(broker.url, connection_timeout=STEP) as conn:
        peer = broker.wait_connection()
        peer.hold(spec.ChannelOpen)
        with pytest.raises(TimeoutError):
            conn.channel(timeout=0.05)
        assert peer.names(3) == [(1, "channel.open")]
        assert peer.release(spec.ChannelOpen) == 1
        peer.wait_method(spec.ChannelClose, 1)
        wait_until(
            lambda: conn._session.router.get(1) is None, what="channel 1 to be freed"
        )
        assert conn.channel(timeout=STEP).channel_id == 1
        assert peer.names(3) == [
            (1, "channel.open"),
            (1, "channel.close"),
            (1, "channel.open"),
        ]


# --- 6. a bad timeout= is refused before anything is sent ------------------------------

BAD_TIMEOUTS: list[tuple[object, type[Exception]]] = [
    (-1, ValueError),
    (math.nan, ValueError),
    (math.inf, ValueError),
    ("5", TypeError),
    (True, TypeError),
]


@pytest.mark.parametrize(
    "call",
    [
        "channel",
        "queue_declare",
        "basic_get",
        "basic_consume",
        "consumer_cancel",
    ],
)
def test_bad_timeout_is_refused_before_anything_is_sent(
    front: str, broker: ScriptedBroker, call: str
) -> None:
    async def scenario() -> None:
        async with connected(front, broker) as (conn, peer):
            ch = await conn.channel(timeout=STEP)
            consumer: Any = None
            if call == "consumer_cancel":
                consumer = await ch.basic_consume("q", timeout=STEP)
            start = len(peer.received)
            for timeout, error in BAD_TIMEOUTS:
                with pytest.raises(error):
                    if call == "channel":
                        await conn.channel(timeout=timeout)
                    elif call == "queue_declare":
                        await ch.queue_declare("q", timeout=timeout)
                    elif call == "basic_get":
                        await ch.basic_get("q", timeout=timeout)
                    elif call == "basic_consume":
                        await ch.basic_consume("q", timeout=timeout)
                    else:
                        await consumer.cancel(timeout=timeout)
                if consumer is not None:
                    assert consumer.is_active, f"cancel(timeout={timeout!r})"
            # The client writes in order: once this reply is back, anything
            # the bad calls had sent would have been received before it.
            await ch.queue_declare("marker", timeout=STEP)
            assert peer.names(start) == [(ch.channel_id, "queue.declare")]
            assert peer.sent(spec.QueueDeclare)[-1].queue == "marker"
            assert conn._session.router.get(2) is None  # no channel was opened
            if consumer is not None:
                # The consumer is still running, and can still be cancelled.
                await consumer.cancel(timeout=STEP)
                assert peer.sent(spec.BasicCancel) == [
                    spec.BasicCancel(consumer.consumer_tag)
                ]

    run(scenario)


# --- 7. recovery replays the session in order ------------------------------------------


def test_recovery_replays_channel_modes_topology_and_consumers(
    front: str, broker: ScriptedBroker
) -> None:
    """The broker drops the TCP connection; the client reconnects and
    replays, in order: the channel on its id, its qos and confirm mode, the
    queue (on a channel of recovery's own), then the consumer under its
    tag. Deliveries buffered at the loss are dropped; deliveries after
    recovery reach the same Consumer object."""

    async def scenario() -> None:
        options = {"recover": True, "recovery_delay": 0.0}
        async with connected(front, broker, **options) as (conn, first):
            ch = await conn.channel(timeout=STEP)
            await ch.queue_declare("rq", timeout=STEP)
            await ch.basic_qos(prefetch_count=7, timeout=STEP)
            await ch.confirm_select(timeout=STEP)
            consumer = await ch.basic_consume("rq", consumer_tag="ctag-r", timeout=STEP)
            for body in (b"before", b"stale-1", b"stale-2"):
                first.deliver(1, "ctag-r", body)
            assert (await take(consumer)).body == b"before"
            await wait_until_async(
                lambda: conn._session.budget.messages == 2, what="2 buffered"
            )

            await asyncio.to_thread(first.drop)
            second = await broker.wait_connection_async(1)
            await second.wait_method_async(spec.BasicConsume)
            await wait_until_async(lambda: conn.is_open, what="the recovery")
            # What was buffered at the loss is dropped (its delivery tags
            # died with the connection; the broker redelivers it).
            assert budget_free(conn)

            assert second.names() == [
                (0, "connection.start-ok"),
                (0, "connection.tune-ok"),
                (0, "connection.open"),
                (1, "channel.open"),
                (1, "basic.qos"),
                (1, "confirm.select"),
                (2, "channel.open"),
                (2, "queue.declare"),
                (2, "channel.close"),
                (1, "basic.consume"),
            ]
            assert second.sent(spec.BasicQos) == [spec.BasicQos(0, 7)]
            assert second.sent(spec.QueueDeclare) == [spec.QueueDeclare("rq")]
            assert second.sent(spec.BasicConsume) == [spec.BasicConsume("rq", "ctag-r")]

            second.deliver(1, "ctag-r", b"after")
            delivery = await take(consumer)
            assert (delivery.body, delivery.delivery_tag) == (b"after", 1)
            await delivery.ack()
            assert await second.wait_method_async(spec.BasicAck, 1) == spec.BasicAck(1)

    run(scenario)


@pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="asyncio.eager_task_factory is new in 3.12 (make test-matrix runs this)",
)
def test_aio_busy_poll_in_a_task_a_callback_starts_eagerly(
    broker: ScriptedBroker,
) -> None:
    """With an eager task factory, a task that a return callback starts
    runs its first request inside the routing of the return: its spin must
    not read (and route) there; the reply is read after, in order."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]  # 3.12+
        async with connected("aio", broker, busy_poll=0.01) as (conn, peer):
            ch = await conn.channel(timeout=STEP)
            tasks: list[asyncio.Task[spec.QueueDeclareOk]] = []

            def on_return(*_: object) -> None:
                declare = ch.queue_declare("from-callback", passive=True, timeout=STEP)
                tasks.append(loop.create_task(declare))

            ch.add_on_return_callback(on_return)
            returned = spec.BasicReturn(312, "NO_ROUTE", "", "nowhere")
            peer.send_raw(sp.content(ch.channel_id, returned, b"back"))
            await wait_until_async(lambda: bool(tasks), what="the return callback")
            ok = await asyncio.wait_for(tasks[0], STEP)
            assert ok.queue == "from-callback"
            for name in ("after-1", "after-2"):
                assert (await ch.queue_declare(name, timeout=STEP)).queue == name

    run(scenario)
