"""A callback consumer rides through a recovery (both fronts).

The connection goes through a TCP proxy (tests/support/proxy.py) to the
shared broker; the proxy cuts it while a callback is in flight. The
callback finishes, its ack is not sent (its tag died with the
connection), the broker redelivers the message to the restored consumer,
and the same callback consumer (same workers) handles it and what follows.
Only the proxied connection breaks (an ``integration`` test).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from tests.integration.helpers import Front, amqp_url, first_call, unique, within
from tests.integration.test_callbacks import Tally, callback_for, until, workers_left
from tests.support.proxy import Proxy

pytestmark = pytest.mark.integration


async def recovery_scenario(front: Front, proxy: Proxy) -> None:
    queue = unique("callback-recovery")
    tally = Tally()
    recovered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    before = set(threading.enumerate())
    async with (
        front.connect() as direct,
        front.connect(
            proxy.url(amqp_url()),
            recover=True,
            recovery_delay=0.1,
            recovery_max_delay=0.5,
            connection_timeout=2,
        ) as conn,
    ):
        conn.add_on_recovered_callback(first_call(recovered))
        ch = await within(conn.channel())
        await within(ch.queue_declare(queue, arguments={"x-expires": 60_000}))
        consumer = await within(
            ch.basic_consume(
                queue, callback=callback_for(front, tally, delay=0.5), concurrency=2
            )
        )
        pub = await within(direct.channel())
        await within(pub.basic_publish(b"slow", routing_key=queue))
        await until(tally.started.is_set, "the callback")
        await asyncio.to_thread(proxy.cut)
        await within(recovered, 15)
        await within(pub.basic_publish(b"after", routing_key=queue))
        # "slow" twice (its first ack went nowhere), then "after".
        await until(lambda: len(tally.finished) == 3, "3 callbacks", 15)
        assert sorted(tally.bodies) == [b"after", b"slow", b"slow"]
        assert consumer.is_active
        deadline = time.monotonic() + 10
        while True:
            ok = await within(pub.queue_declare(queue, passive=True))
            if ok.message_count == 0 and ok.consumer_count == 1:
                break
            assert time.monotonic() < deadline, ok
            await asyncio.sleep(0.05)
        await within(pub.queue_delete(queue))
    assert await workers_left(before) == []


def test_a_callback_consumer_rides_through_a_recovery(
    front: Front, proxy: Proxy
) -> None:
    front.run(recovery_scenario, proxy, timeout=60)


async def close_while_lost_scenario(front: Front, proxy: Proxy) -> None:
    # close(timeout=None) waits for a callback in flight; the connection is
    # lost meanwhile (recovery on): the close stops waiting and ends it.
    queue = unique("callback-close-lost")
    tally = Tally()
    async with front.connect() as direct:
        conn = await front.connect(
            proxy.url(amqp_url()),
            recover=True,
            recovery_delay=0.1,
            connection_timeout=2,
        )
        ch = await within(conn.channel())
        await within(ch.queue_declare(queue, arguments={"x-expires": 60_000}))
        await within(
            ch.basic_consume(queue, callback=callback_for(front, tally, delay=3))
        )
        pub = await within(direct.channel())
        await within(pub.basic_publish(b"slow", routing_key=queue))
        await until(tally.started.is_set, "the callback")
        closing = asyncio.ensure_future(conn.close(timeout=None))
        await asyncio.sleep(0.2)
        assert not closing.done()  # waiting for the callback
        start = time.monotonic()
        await asyncio.to_thread(proxy.cut)
        await within(closing, 5)
        assert time.monotonic() - start < 2.5  # not the callback's 3 s
        assert conn.is_closed
        await within(pub.queue_delete(queue))
        await until(lambda: len(tally.finished) == 1, "the callback's end")


def test_a_close_waiting_for_callbacks_ends_when_the_connection_is_lost(
    front: Front, proxy: Proxy
) -> None:
    front.run(close_while_lost_scenario, proxy, timeout=60)
