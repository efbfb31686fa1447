"""Edges of connection recovery, through a TCP proxy (tests/support/proxy.py).

Only the connection through the proxy breaks; the shared broker is never
touched (``integration`` tests). Each scenario runs on both fronts where
the edge exists on both:

* recovery's own channel (which redeclares the topology) is closed on the
  broker, not only dropped locally;
* a channel whose close handshake the loss cut off is closed, not
  restored, and its close() returns;
* a call made while the connection recovers honours its ``timeout``;
* a publisher waiting for a full write buffer when the connection drops
  waits for recovery and publishes on the new connection;
* a failure inside recovery that is nobody's plan (here: a rename
  callback that raises) ends the connection instead of leaving calls
  waiting for good;
* blocking ``close()`` during a recovery that outlasts close()'s patience
  (a stalled restore, a slow attempt) still ends the connection, and
  tries no further broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

import amqp_client
from amqp_client import blocking
from amqp_client.blocking import connection as blocking_connection
from tests.integration.helpers import (
    FRONTS,
    STEP,
    Front,
    amqp_url,
    broker_address,
    first_call,
    unique,
    within,
)
from tests.support.proxy import Proxy

pytestmark = pytest.mark.integration


@pytest.fixture(params=sorted(FRONTS))
def front(request: pytest.FixtureRequest) -> Front:
    return FRONTS[request.param]


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    with Proxy(broker_address()) as running:
        yield running


def recovering(front: Front, proxy: Proxy, **kwargs: Any) -> Any:
    """A recovering connection through ``proxy`` that retries quickly."""
    options: dict[str, Any] = {
        "recover": True,
        "recovery_delay": 0.1,
        "recovery_max_delay": 0.5,
    }
    options.update(kwargs)
    return front.connect(proxy.url(amqp_url()), **options)


def on_recovered(conn: Any) -> asyncio.Future[None]:
    """A future resolved at the connection's next recovery."""
    recovered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done() -> None:
        if not recovered.done():
            recovered.set_result(None)

    conn.add_on_recovered_callback(done)
    return recovered


async def closed_within(front: Front, conn: Any, timeout: float) -> Any:
    """The connection's terminal error; TimeoutError if it is not over
    within ``timeout`` (no thread is left waiting for good)."""
    if front.name == "blocking":
        return await conn.wait_closed(timeout)
    return await within(conn.closed, timeout)


async def until(predicate: Any, timeout: float = STEP, step: float = 0.01) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(step)


# --- recovery's own channel --------------------------------------------------------


async def helper_channel_scenario(front: Front, proxy: Proxy) -> None:
    queue = unique("helper")
    async with recovering(front, proxy) as conn:
        ch = await within(conn.channel())
        # Something recorded: recovery redeclares it on a channel of its own.
        await within(ch.queue_declare(queue, arguments={"x-expires": 60_000}))
        recovered = on_recovered(conn)
        await asyncio.to_thread(proxy.cut)
        await within(recovered, 15)
        # The core frees a channel id only on the broker's close-ok: only
        # the application's channel may be open on the new connection.
        assert sorted(conn._session.core._channels) == [ch.channel_id]
        other = await within(conn.channel())
        assert other.channel_id == ch.channel_id + 1
        await within(ch.queue_delete(queue))


def test_recovery_closes_its_helper_channel_on_the_broker(
    front: Front, proxy: Proxy
) -> None:
    front.run(helper_channel_scenario, proxy)


# --- a channel closing when the connection drops ---------------------------------------


async def closing_channel_scenario(front: Front, proxy: Proxy) -> None:
    async with recovering(front, proxy) as conn:
        ch = await within(conn.channel())
        keep = await within(conn.channel())
        recovered = on_recovered(conn)
        # channel.close goes out; its close-ok never comes back.
        await asyncio.to_thread(proxy.stall)
        closing = asyncio.ensure_future(ch.close())
        await asyncio.sleep(0.3)
        assert not closing.done()
        await asyncio.to_thread(proxy.cut)
        await asyncio.to_thread(proxy.resume)
        # The channel went with the connection: close() is done, and
        # recovery does not open it again.
        await within(closing, 5)
        assert ch.is_closed
        await within(recovered, 15)
        assert sorted(conn._session.core._channels) == [keep.channel_id]
        assert keep.is_open
        await within(keep.queue_declare("", exclusive=True))


def test_a_channel_closing_when_the_connection_drops_stays_closed(
    front: Front, proxy: Proxy
) -> None:
    """close() sent channel.close; the connection dropped before close-ok.
    close() used to wait for good (and recovery reopened the channel)."""
    front.run(closing_channel_scenario, proxy)


# --- timeouts while recovering -----------------------------------------------------


async def finishes_within(call: Any, timeout: float) -> asyncio.Future[Any]:
    """Start ``call``; assert it is over within ``timeout`` seconds."""
    task: asyncio.Future[Any] = asyncio.ensure_future(call)
    await asyncio.wait({task}, timeout=timeout)
    assert task.done(), f"still waiting after {timeout} s"
    return task


async def timeout_scenario(front: Front, proxy: Proxy) -> None:
    password = urlsplit(amqp_url()).password or "guest"
    async with recovering(front, proxy) as conn:
        await within(conn.channel())
        lost: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        conn.add_on_lost_callback(first_call(lost))
        recovered = on_recovered(conn)
        await asyncio.to_thread(proxy.refuse, True)
        await asyncio.to_thread(proxy.cut)
        await within(lost)
        assert conn.is_recovering
        calls = [conn.update_secret(password.encode(), "test", timeout=0.5)]
        if front.name == "blocking":  # the asyncio front has no timeout there
            calls.append(conn.channel(timeout=0.5))
        pending = []
        try:
            for call in calls:
                started = time.monotonic()
                task = await finishes_within(call, 3)
                pending.append(task)
                with pytest.raises(TimeoutError):
                    task.result()
                assert time.monotonic() - started >= 0.4
        finally:
            await asyncio.to_thread(proxy.refuse, False)
            await within(recovered, 15)
            for task in pending:
                if not task.done():
                    task.cancel()
        assert conn.is_open


def test_calls_honour_their_timeout_while_recovering(
    front: Front, proxy: Proxy
) -> None:
    front.run(timeout_scenario, proxy)


# --- a publisher waiting for the write buffer when the connection drops -------------

BIG = b"x" * (1 << 20)
#: More than the write buffers (client, kernel, proxy) hold while stalled.
PUBLISHES = 48


async def publisher_scenario(front: Front, proxy: Proxy) -> None:
    nowhere = unique("nowhere")  # no such queue: the broker drops them
    async with recovering(front, proxy) as conn:
        ch = await within(conn.channel())
        recovered = on_recovered(conn)
        sent = 0

        async def publish_all() -> None:
            nonlocal sent
            for _ in range(PUBLISHES):
                await ch.basic_publish(BIG, routing_key=nowhere)
                sent += 1

        await asyncio.to_thread(proxy.stall)
        publisher = asyncio.ensure_future(publish_all())
        try:
            # Wait until the publisher waits (the buffers are full).
            async with asyncio.timeout(30):
                last = -1
                while sent != last:
                    last = sent
                    await asyncio.sleep(0.5)
            assert not publisher.done()
            assert sent < PUBLISHES
            await asyncio.to_thread(proxy.cut)
            await asyncio.to_thread(proxy.resume)
            await within(recovered, 15)
            # It neither failed nor gave up: it published on the new
            # connection once recovered.
            await within(publisher, 60)
            assert sent == PUBLISHES
            assert ch.is_open
        finally:
            publisher.cancel()
            await asyncio.to_thread(proxy.resume)


def test_publisher_waiting_for_the_buffer_waits_for_recovery(
    front: Front, proxy: Proxy
) -> None:
    front.run(publisher_scenario, proxy, timeout=120)


# --- an unexpected failure inside recovery -----------------------------------------


async def unexpected_failure_scenario(front: Front, proxy: Proxy) -> None:
    async with recovering(front, proxy) as conn:
        ch = await within(conn.channel())
        # A server-named queue gets a new name at recovery: the rename
        # callback runs inside recovery.
        await within(ch.queue_declare("", exclusive=True))

        def broken(old: str, new: str) -> None:
            raise RuntimeError("a bug in a rename callback")

        conn.topology.on_rename = broken
        await asyncio.to_thread(proxy.cut)
        error = await closed_within(front, conn, 15)
        assert isinstance(error, amqp_client.ConnectionLost)
        assert isinstance(error.__cause__, RuntimeError)
        assert not conn.is_recovering
        assert conn.is_closed
        with pytest.raises(amqp_client.ConnectionLost):
            await within(conn.channel())


def test_unexpected_failure_in_recovery_ends_the_connection(
    front: Front, proxy: Proxy
) -> None:
    front.run(unexpected_failure_scenario, proxy)


# --- blocking close() during a long recovery ---------------------------------------

#: close() waits for the recovery thread this long plus 5 s.
CLOSE_TIMEOUT = 0.5
#: Every byte through the proxy waits this long: the new connection's
#: handshake takes several, so the test sees it open before the restore ends.
DELAY = 0.5


@pytest.fixture
def short_close(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blocking_connection, "_CLOSE_TIMEOUT", CLOSE_TIMEOUT)


def wait_for(predicate: Any, timeout: float = STEP) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


@pytest.mark.usefixtures("short_close")
def test_blocking_close_during_a_stalled_restore_ends_the_connection(
    proxy: Proxy,
) -> None:
    conn = blocking.connect(
        proxy.url(amqp_url()),
        recover=True,
        recovery_delay=0.1,
        recovery_max_delay=0.5,
        connection_timeout=30,
    )
    try:
        ch = conn.channel(timeout=STEP)
        ch.basic_qos(prefetch_count=1, timeout=STEP)  # one more restore step
        proxy.slow(delay=DELAY)
        proxy.cut()
        # The new connection is open and recovery restores the channel:
        # stall it there, so that the restore outlasts close()'s patience.
        wait_for(lambda: conn.is_recovering and conn._session.core.is_open, 30)
        proxy.stall()
        assert conn.is_recovering
    finally:
        conn.close()
    # Over, whatever the recovery thread was doing.
    conn.wait_closed(2)
    assert conn.is_closed
    assert not conn.is_recovering
    with pytest.raises(amqp_client.ConnectionClosed):
        conn.channel(timeout=1)


@pytest.mark.usefixtures("short_close")
def test_blocking_close_during_a_slow_attempt_tries_no_other_broker() -> None:
    with Proxy(broker_address()) as first, Proxy(broker_address()) as slow:
        conn = blocking.connect(
            [first.url(amqp_url()), slow.url(amqp_url())],
            recover=True,
            recovery_delay=0.1,
            recovery_max_delay=0.5,
            connection_timeout=30,
        )
        try:
            assert first.counters()["accepted"] == 1
            # Recovery tries the other broker first: its handshake hangs.
            slow.stall()
            first.cut()
            wait_for(lambda: slow.counters()["accepted"] == 1, 15)
        finally:
            conn.close()
        conn.wait_closed(2)
        assert not conn.is_recovering
        time.sleep(0.2)
        # After close(), recovery went on to no further broker.
        assert first.counters()["accepted"] == 1
