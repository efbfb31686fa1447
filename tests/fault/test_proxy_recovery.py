"""Recovery through a TCP proxy (tests/support/proxy.py), both fronts.

The proxy stalls the connection (heartbeats stop), then refuses new ones
for a while: the recovering consumer must notice the dead connection,
keep retrying with backoff while nothing answers, and resume, on the same
iterator, once the proxy lets traffic through again. Only the connection
through the proxy breaks; the shared broker is untouched (an
``integration`` test).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import amqp_client
from tests.integration.helpers import (
    Front,
    amqp_url,
    first_call,
    next_delivery,
    unique,
    within,
)
from tests.support.proxy import Proxy

pytestmark = pytest.mark.integration

HEARTBEAT = 1


async def resume_scenario(front: Front, proxy: Proxy) -> None:
    queue = unique("resume")
    loop = asyncio.get_running_loop()
    lost: asyncio.Future[Any] = loop.create_future()
    recovered: asyncio.Future[Any] = loop.create_future()

    def on_lost(error: BaseException) -> None:
        if not lost.done():
            lost.set_result((error, time.monotonic()))

    async with (
        front.connect() as direct,
        front.connect(
            proxy.url(amqp_url()),
            recover=True,
            heartbeat=HEARTBEAT,
            recovery_delay=0.1,
            recovery_max_delay=0.5,
            connection_timeout=2,
        ) as conn,
    ):
        conn.add_on_lost_callback(on_lost)
        conn.add_on_recovered_callback(first_call(recovered))
        ch = await within(conn.channel())
        await within(ch.basic_qos(prefetch_count=10))
        await within(ch.queue_declare(queue, arguments={"x-expires": 60_000}))
        consumer = await within(ch.basic_consume(queue))
        tag = consumer.consumer_tag
        pub = await within(direct.channel())
        await within(pub.basic_publish(b"one", routing_key=queue))
        first = await next_delivery(consumer)
        assert first.body == b"one"
        await first.ack()

        await asyncio.to_thread(proxy.refuse, True)
        stalled_at = time.monotonic()
        await asyncio.to_thread(proxy.stall)
        error, noticed_at = await within(lost, 10)
        assert isinstance(error, amqp_client.HeartbeatTimeout)
        assert noticed_at - stalled_at <= 2 * HEARTBEAT + 0.5
        await within(pub.basic_publish(b"two", routing_key=queue))
        # The proxy refuses: attempts fail, the consumer waits.
        await asyncio.sleep(1.5)
        assert conn.is_recovering
        assert not recovered.done()
        # Retried meanwhile, with backoff: each retry waits at least
        # recovery_delay (0.1 s), so not in a tight loop.
        refused = (await asyncio.to_thread(proxy.counters))["refused"]
        elapsed = time.monotonic() - stalled_at
        assert 2 <= refused <= 1 + elapsed / 0.1, (refused, elapsed)
        waiting = asyncio.ensure_future(next_delivery(consumer, 20))
        await asyncio.sleep(0.2)
        assert not waiting.done()

        await asyncio.to_thread(proxy.refuse, False)
        await asyncio.to_thread(proxy.resume)
        await within(recovered, 15)
        second = await within(waiting, 15)
        assert second.body == b"two"
        assert consumer.consumer_tag == tag
        await second.ack()
        assert (await within(ch.queue_declare(queue, passive=True))).consumer_count == 1
        await within(pub.queue_delete(queue))


def test_consumer_resumes_when_the_proxy_lets_traffic_through(
    front: Front, proxy: Proxy
) -> None:
    front.run(resume_scenario, proxy, timeout=90)


async def entity_fails_scenario(front: Front, proxy: Proxy) -> None:
    """A queue that cannot be redeclared as recorded (someone replaced it
    meanwhile with other arguments) is reported to the recovery-error
    callback; recovery goes on with everything else."""
    queue = unique("changed")
    exchange = unique("kept")
    loop = asyncio.get_running_loop()
    lost: asyncio.Future[Any] = loop.create_future()
    recovered: asyncio.Future[Any] = loop.create_future()
    failures: list[tuple[str, Any]] = []
    async with (
        front.connect() as direct,
        front.connect(
            proxy.url(amqp_url()),
            recover=True,
            recovery_delay=0.1,
            recovery_max_delay=0.5,
        ) as conn,
    ):
        conn.add_on_lost_callback(first_call(lost))
        conn.add_on_recovered_callback(first_call(recovered))
        conn.add_on_recovery_error_callback(
            lambda entity, error: failures.append((entity, error))
        )
        ch = await within(conn.channel())
        await within(ch.queue_declare(queue, arguments={"x-max-length": 10}))
        await within(ch.exchange_declare(exchange, "fanout"))
        await within(ch.queue_bind(queue, exchange))
        other = await within(direct.channel())
        try:
            await asyncio.to_thread(proxy.refuse, True)
            await asyncio.to_thread(proxy.cut)
            await within(lost)
            # Replaced while the client is away: same name, other arguments.
            await within(other.queue_delete(queue))
            await within(other.queue_declare(queue, arguments={"x-max-length": 20}))
            await asyncio.to_thread(proxy.refuse, False)
            await within(recovered, 15)
            assert [entity for entity, _ in failures] == [f"queue {queue!r}"]
            assert isinstance(failures[0][1], amqp_client.PreconditionFailedError)
            # The rest was restored: the exchange and the binding work, and
            # the channel is open.
            assert ch.is_open
            await within(ch.basic_publish(b"routed", exchange=exchange))
            got = None
            for _ in range(50):
                got = await within(ch.basic_get(queue, no_ack=True))
                if got is not None:
                    break
                await asyncio.sleep(0.02)
            assert got is not None and got.body == b"routed"
        finally:
            await within(other.queue_delete(queue))
            await within(other.exchange_delete(exchange))


def test_an_entity_that_fails_to_recover_is_reported(
    front: Front, proxy: Proxy
) -> None:
    front.run(entity_fails_scenario, proxy, timeout=90)


async def auto_delete_scenario(front: Front) -> None:
    """Cancelling the last consumer of an auto-delete queue deletes it on
    the broker, so recovery forgets it; other queues stay recorded."""
    gone, kept = unique("auto-delete"), unique("kept")
    async with front.connect(recover=True) as conn:
        ch = await within(conn.channel())
        await within(ch.queue_declare(gone, auto_delete=True))
        await within(ch.queue_declare(kept, arguments={"x-expires": 60_000}))
        first = await within(ch.basic_consume(gone))
        second = await within(ch.basic_consume(gone))
        other = await within(ch.basic_consume(kept))
        assert set(conn.topology.queues) == {gone, kept}
        await within(first.cancel())
        assert gone in conn.topology.queues  # a consumer is left
        await within(second.cancel())
        assert conn.topology.queues == [kept]
        await within(other.cancel())
        assert conn.topology.queues == [kept]
        await within(ch.queue_delete(kept))
        assert conn.topology.queues == []


def test_auto_delete_queue_leaves_recovery_with_its_last_consumer(
    front: Front,
) -> None:
    front.run(auto_delete_scenario)
