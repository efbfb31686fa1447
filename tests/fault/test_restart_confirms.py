"""A broker restart in the middle of 10,000 confirmed publishes, without
connection recovery, on a RabbitMQ node of the test's own (both fronts,
graceful restart and kill + start).

The publisher keeps a window of unconfirmed publishes; once ~3,000 are
confirmed another thread restarts the node. Every one of the 10,000
publishes must end exactly once, either confirmed or failed (the publish
raises, or its confirmation does, with the connection's error), with none
left pending or hanging; and every confirmed message (persistent, to a
durable queue) must still be in the queue after the restart.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from amqp_client.spec import BasicProperties, ConnectionForcedError, NotFoundError

import amqp_client
from amqp_client import blocking
from tests.integration.helpers import threads_left, unique
from tests.support.broker import BrokerNode

pytestmark = [pytest.mark.fault, pytest.mark.slow]

TOTAL = 10_000
WINDOW = 200  # most unconfirmed publishes at a time
RESTART_AFTER = 3_000  # confirmed publishes before the restart begins
#: Once the restart began, publish at most this many per second, so that
#: the node goes down while publishes are still being made however long
#: the stop takes to begin (10,000 unpaced publishes take well under 1 s).
SLOW_RATE = 250.0
STEP = 30.0  # the longest a single wait may take, seconds
RESTART_TIMEOUT = 120.0
PERSISTENT = BasicProperties(delivery_mode=2)


@dataclass
class Tally:
    """How each publish ended: index -> "confirmed", or where it failed
    ("publish" raised, or its "confirmation" did) and the error's class."""

    outcomes: list[str | None] = field(default_factory=lambda: [None] * TOTAL)
    errors: list[BaseException] = field(default_factory=list)
    restart_began_at: int | None = None  # publishes made when it began

    def settle(
        self, index: int, error: BaseException | None, where: str = "confirmation"
    ) -> None:
        assert self.outcomes[index] is None, f"publish #{index} settled twice"
        if error is None:
            self.outcomes[index] = "confirmed"
        else:
            self.outcomes[index] = f"{where}: {type(error).__name__}"
            self.errors.append(error)

    @property
    def confirmed(self) -> int:
        return self.outcomes.count("confirmed")

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if o is not None and o != "confirmed")


#: What a publish or its confirmation may raise when the broker goes away.
FAILURES = (amqp_client.ConnectionClosed, amqp_client.MessageNacked)


class Pacer:
    """Full speed until the restart began, then SLOW_RATE publishes/s
    (until the first failure: then the connection is gone)."""

    def __init__(self) -> None:
        self.slow_since: float | None = None
        self.published_slow = 0

    def delay(self) -> float:
        if self.slow_since is None:
            return 0.0
        self.published_slow += 1
        due = self.slow_since + self.published_slow / SLOW_RATE
        return max(0.0, due - time.monotonic())


# --- asyncio ---------------------------------------------------------------------


async def aio_publish_through_restart(
    node: BrokerNode, queue: str, restart: Callable[[], None]
) -> Tally:
    tally = Tally()
    pacer = Pacer()
    conn = await asyncio.wait_for(amqp_client.connect(node.url), STEP)
    restarting: asyncio.Future[None] | None = None
    try:
        ch = await asyncio.wait_for(conn.channel(), STEP)
        await asyncio.wait_for(ch.queue_declare(queue, durable=True), STEP)
        await asyncio.wait_for(ch.confirm_select(), STEP)
        window: deque[tuple[int, asyncio.Future[None]]] = deque()

        async def settle_oldest() -> None:
            index, confirmation = window.popleft()
            try:
                await asyncio.wait_for(confirmation, STEP)
            except FAILURES as exc:
                tally.settle(index, exc)
            else:
                tally.settle(index, None)

        for index in range(TOTAL):
            if restarting is None and tally.confirmed >= RESTART_AFTER:
                tally.restart_began_at = index
                pacer.slow_since = time.monotonic()
                restarting = asyncio.ensure_future(asyncio.to_thread(restart))
            if not tally.errors and (wait := pacer.delay()):
                await asyncio.sleep(wait)
            try:
                confirmation = await asyncio.wait_for(
                    ch.basic_publish(
                        b"%d" % index, routing_key=queue, properties=PERSISTENT
                    ),
                    STEP,
                )
            except FAILURES as exc:
                tally.settle(index, exc, "publish")
                continue
            assert confirmation is not None
            window.append((index, asyncio.ensure_future(confirmation)))
            while len(window) >= WINDOW or (window and window[0][1].done()):
                await settle_oldest()
        while window:
            await settle_oldest()
    finally:
        await asyncio.wait_for(conn.close(), STEP)
        if restarting is not None:
            await asyncio.wait_for(restarting, RESTART_TIMEOUT)
    return tally


# --- blocking ----------------------------------------------------------------------


def blocking_publish_through_restart(
    node: BrokerNode, queue: str, restart: Callable[[], None]
) -> Tally:
    tally = Tally()
    pacer = Pacer()
    restart_errors: list[BaseException] = []

    def restart_in_thread() -> None:
        try:
            restart()
        except BaseException as exc:
            restart_errors.append(exc)

    restarter = threading.Thread(target=restart_in_thread, name="test-restarter")
    conn = blocking.connect(node.url, connection_timeout=STEP)
    try:
        ch = conn.channel(timeout=STEP)
        ch.queue_declare(queue, durable=True, timeout=STEP)
        ch.confirm_select(timeout=STEP)
        window: deque[tuple[int, blocking.Confirmation]] = deque()

        def settle_oldest() -> None:
            index, confirmation = window.popleft()
            try:
                confirmation.wait(STEP)
            except FAILURES as exc:
                tally.settle(index, exc)
            else:
                tally.settle(index, None)

        for index in range(TOTAL):
            if tally.restart_began_at is None and tally.confirmed >= RESTART_AFTER:
                tally.restart_began_at = index
                pacer.slow_since = time.monotonic()
                restarter.start()
            if not tally.errors and (wait := pacer.delay()):
                time.sleep(wait)
            try:
                confirmation = ch.basic_publish(
                    b"%d" % index, routing_key=queue, properties=PERSISTENT
                )
            except FAILURES as exc:
                tally.settle(index, exc, "publish")
                continue
            assert confirmation is not None
            window.append((index, confirmation))
            while len(window) >= WINDOW or (window and window[0][1].done()):
                settle_oldest()
        while window:
            settle_oldest()
    finally:
        conn.close()
        if restarter.ident is not None:
            restarter.join(RESTART_TIMEOUT)
            assert not restarter.is_alive(), "the node did not restart in time"
    if restart_errors:
        raise restart_errors[0]
    return tally


# --- the test --------------------------------------------------------------------------


def declare_durably(node: BrokerNode, queue: str) -> None:
    """Declare the durable queue and make the node put its record on disk.

    RabbitMQ 3.10 answers declare-ok before Mnesia's log is surely on disk:
    under load, a node killed within about two seconds of the declare
    came back without the queue (2 of 20 runs, 1 CI run). What this test
    checks is the client and the messages, so the queue's record is
    synced first (``mnesia:sync_log()``)."""
    with blocking.connect(node.url, connection_timeout=STEP) as conn:
        conn.channel(timeout=STEP).queue_declare(queue, durable=True, timeout=STEP)
    assert node.eval("mnesia:sync_log().") == "ok"


def persisted(node: BrokerNode, queue: str) -> int:
    """Messages in ``queue`` on the restarted node (and delete it). A queue
    the node lost fails with the node's log, which says why."""
    with blocking.connect(node.url, connection_timeout=STEP) as conn:
        ch = conn.channel(timeout=STEP)
        try:
            count = ch.queue_declare(queue, passive=True, timeout=STEP).message_count
        except NotFoundError as exc:
            pytest.fail(f"{exc}\n{node.log_tail(200)}")
        ch.queue_delete(queue, timeout=STEP)
        return int(count)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("how", ["graceful", "kill"])
@pytest.mark.parametrize("front", ["aio", "blocking"])
def test_restart_during_confirmed_publishes(
    broker_node: BrokerNode, front: str, how: str
) -> None:
    node = broker_node
    queue = unique("restart-confirms")
    before = set(threading.enumerate())

    def restart() -> None:
        node.restart(graceful=how == "graceful")

    declare_durably(node, queue)
    began = time.monotonic()
    if front == "aio":
        tally = asyncio.run(aio_publish_through_restart(node, queue, restart))
    else:
        tally = blocking_publish_through_restart(node, queue, restart)
    took = time.monotonic() - began
    kept = persisted(node, queue)
    kinds = Counter(o for o in tally.outcomes if o != "confirmed")
    print(
        f"\n{front}/{how}: confirmed {tally.confirmed:,}, failed {tally.failed:,} "
        f"{dict(kinds)}; restart began after {tally.restart_began_at:,} publishes; "
        f"{kept:,} messages in the queue after the restart; {took:.1f} s"
    )

    # Every publish ended, once (Tally.settle checks "once").
    assert None not in tally.outcomes, "a publish was never settled"
    # The restart happened in the middle.
    assert tally.restart_began_at is not None
    assert tally.confirmed >= RESTART_AFTER
    assert tally.failed > 0, "the node went down only after the last publish"
    # Failures carry the connection's error: one terminal error for all.
    if how == "kill":
        assert all(isinstance(e, amqp_client.ConnectionLost) for e in tally.errors)
    else:
        # RabbitMQ closes connections with 320 CONNECTION_FORCED on shutdown.
        assert all(
            isinstance(e, (ConnectionForcedError, amqp_client.ConnectionLost))
            for e in tally.errors
        ), kinds
    # Confirmed means on disk: a persistent message to a durable queue
    # survives the restart (unconfirmed ones may or may not).
    assert tally.confirmed <= kept <= TOTAL
    # The client's threads (blocking front) are gone.
    assert threads_left(before) == []
