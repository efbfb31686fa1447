"""Shared pieces of the integration tests: the front adapter, names, cleanup.

The scenarios are written once, as coroutines that receive a :class:`Front`
and talk to the client through it. Only the asyncio front exists today
(:class:`AioFront`); a blocking front can reuse every scenario by exposing
the same awaitable surface (for instance wrapping each blocking call in
``asyncio.to_thread``) and joining the ``front`` fixture's parameters.

Every wait in here is bounded: :meth:`Front.run` puts a deadline on the
whole scenario and the helpers put their own on each step.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import amqp_client

T = TypeVar("T")

#: The shared broker (never stopped, reset or reconfigured by the tests).
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"

#: Default deadline of one scenario, seconds (the pytest timeout is larger).
SCENARIO_TIMEOUT = 60.0
#: Default deadline of one step inside a scenario, seconds.
STEP = 10.0


def amqp_url() -> str:
    return os.environ.get("AMQP_URL") or DEFAULT_URL


def unique(prefix: str) -> str:
    """A name no other test (or test run) uses."""
    return f"amqp-client-test.{prefix}.{uuid.uuid4().hex[:12]}"


class Front:
    """How a scenario reaches one client front (see the module docstring)."""

    name = "abstract"

    def connect(self, url: str | None = None, **kwargs: Any) -> Any:
        """``async with front.connect(...) as conn`` or ``await front.connect()``."""
        raise NotImplementedError

    def run(
        self,
        scenario: Callable[..., Coroutine[Any, Any, T]],
        *args: Any,
        timeout: float = SCENARIO_TIMEOUT,
    ) -> T:
        raise NotImplementedError


class AioFront(Front):
    """The asyncio front, ``amqp_client.connect``."""

    name = "aio"

    def connect(self, url: str | None = None, **kwargs: Any) -> Any:
        return amqp_client.connect(url or amqp_url(), **kwargs)

    def run(
        self,
        scenario: Callable[..., Coroutine[Any, Any, T]],
        *args: Any,
        timeout: float = SCENARIO_TIMEOUT,
    ) -> T:
        async def main() -> T:
            async with asyncio.timeout(timeout):
                return await scenario(self, *args)

        return asyncio.run(main())


FRONTS: dict[str, Front] = {"aio": AioFront()}


async def within(awaitable: Awaitable[T], timeout: float = STEP) -> T:
    """Await with a deadline (TimeoutError when it passes)."""
    async with asyncio.timeout(timeout):
        return await awaitable


def first_call(future: asyncio.Future[Any]) -> Callable[..., None]:
    """A callback that resolves ``future`` with its first argument, once."""

    def callback(value: Any = None, *rest: Any) -> None:
        if not future.done():
            future.set_result(value)

    return callback


async def next_delivery(consumer: Any, timeout: float = STEP) -> Any:
    """The consumer's next delivery (TimeoutError if none comes in time)."""
    async with asyncio.timeout(timeout):
        return await anext(consumer)


async def no_delivery(consumer: Any, wait: float = 0.5) -> None:
    """Assert that the consumer hands out nothing within ``wait`` seconds."""
    try:
        async with asyncio.timeout(wait):
            delivery = await anext(consumer)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected delivery {delivery!r}")


async def raises_at_once(awaitable: Awaitable[Any]) -> BaseException:
    """Return the exception ``awaitable`` raises without waiting for I/O.

    The awaitable must fail in its first step, before it could suspend to
    wait for a reply: that is what "raises at once, without a round trip"
    means. (The blocking front would check that no frame was written.)
    """
    coro = awaitable.__await__()
    try:
        coro.send(None)
    except StopIteration as stop:
        raise AssertionError(f"completed with {stop.value!r}, no error") from None
    except BaseException as exc:
        return exc
    coro.close()
    raise AssertionError("suspended (waited for the broker) instead of raising")


async def ready_count(conn: Any, queue: str) -> int:
    """Messages ready in ``queue`` (passive declare on a throw-away channel)."""
    ch = await within(conn.channel())
    try:
        ok = await within(ch.queue_declare(queue, passive=True))
        return int(ok.message_count)
    finally:
        await within(ch.close())


async def wait_count(conn: Any, queue: str, expected: int, timeout: float = 5) -> None:
    """Wait until ``queue`` holds ``expected`` ready messages (the broker
    settles requeues and publishes asynchronously to other channels)."""
    count = -1
    try:
        async with asyncio.timeout(timeout):
            while (count := await ready_count(conn, queue)) != expected:
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{queue}: {count} messages, not {expected}") from None


class Resources:
    """Names a scenario declares, deleted at the end on a fresh connection
    (so that cleanup works even when the scenario broke its own)."""

    def __init__(self, front: Front, url: str | None) -> None:
        self.front = front
        self.url = url
        self.queues: list[str] = []
        self.exchanges: list[str] = []

    def queue(self, prefix: str = "q") -> str:
        name = unique(prefix)
        self.queues.append(name)
        return name

    def exchange(self, prefix: str = "x") -> str:
        name = unique(prefix)
        self.exchanges.append(name)
        return name

    async def cleanup(self) -> None:
        if not self.queues and not self.exchanges:
            return
        async with asyncio.timeout(STEP), self.front.connect(self.url) as conn:
            ch = await conn.channel()
            for queue in self.queues:
                await ch.queue_delete(queue)
            for exchange in self.exchanges:
                await ch.exchange_delete(exchange)
            await ch.close()


@asynccontextmanager
async def resources(front: Front, url: str | None = None) -> AsyncIterator[Resources]:
    res = Resources(front, url)
    try:
        yield res
    finally:
        await res.cleanup()
