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
import inspect
import os
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import amqp_client
from amqp_client import blocking

T = TypeVar("T")

#: The shared broker (never stopped, reset or reconfigured by the tests).
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"

#: Default deadline of one scenario, seconds (the pytest timeout is larger).
SCENARIO_TIMEOUT = 60.0
#: Default deadline of one step inside a scenario, seconds.
STEP = 10.0


def amqp_url() -> str:
    return os.environ.get("AMQP_URL") or DEFAULT_URL


def broker_address() -> tuple[str, int]:
    """Host and port of the shared broker (``AMQP_URL`` or 127.0.0.1:5672):
    what a test's proxy forwards to."""
    url = urlsplit(amqp_url())
    return url.hostname or "127.0.0.1", url.port or 5672


def unique(prefix: str) -> str:
    """A name no other test (or test run) uses."""
    return f"amqp-client-test.{prefix}.{uuid.uuid4().hex[:12]}"


#: The event loop the asyncio scenarios run on: "asyncio" (the default) or
#: "uvloop" (``AMQP_TEST_LOOP=uvloop``; test_uvloop.py runs the core of the
#: suite that way).
LOOP = os.environ.get("AMQP_TEST_LOOP", "asyncio")
_LOOP_TYPES: dict[str, type[asyncio.AbstractEventLoop]] = {}


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the loop of an asyncio scenario (None: asyncio's own)."""
    if LOOP == "asyncio":
        return None
    if LOOP != "uvloop":
        raise ValueError(f"AMQP_TEST_LOOP={LOOP!r}: expected asyncio or uvloop")
    import uvloop

    _LOOP_TYPES[LOOP] = uvloop.Loop
    return uvloop.new_event_loop


class Front:
    """How a scenario reaches one client front (see the module docstring)."""

    name = "abstract"

    def connect(self, url: str | Sequence[str] | None = None, **kwargs: Any) -> Any:
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

    def connect(self, url: str | Sequence[str] | None = None, **kwargs: Any) -> Any:
        return amqp_client.connect(url or amqp_url(), **kwargs)

    def run(
        self,
        scenario: Callable[..., Coroutine[Any, Any, T]],
        *args: Any,
        timeout: float = SCENARIO_TIMEOUT,
    ) -> T:
        loop_factory = event_loop_factory()

        async def main() -> T:
            if loop_factory is not None:
                # The loop asked for is the loop that runs (see test_uvloop.py).
                assert isinstance(asyncio.get_running_loop(), _LOOP_TYPES[LOOP])
            async with asyncio.timeout(timeout):
                return await scenario(self, *args)

        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main())


class BlockingFront(Front):
    """The blocking front, ``amqp_client.blocking.connect``, seen through
    :class:`AsyncView`: each blocking call runs in a worker thread and is
    awaited, so the same scenario coroutines drive it. Callbacks the
    scenario registers run on the event loop, as they would with asyncio.
    """

    name = "blocking"

    def connect(self, url: str | Sequence[str] | None = None, **kwargs: Any) -> Any:
        return _BlockingConnect(url or amqp_url(), kwargs)

    def run(
        self,
        scenario: Callable[..., Coroutine[Any, Any, T]],
        *args: Any,
        timeout: float = SCENARIO_TIMEOUT,
    ) -> T:
        return AioFront.run(self, scenario, *args, timeout=timeout)  # type: ignore[arg-type]


FRONTS: dict[str, Front] = {"aio": AioFront(), "blocking": BlockingFront()}


# --- the blocking front as an awaitable surface ------------------------------------

#: blocking class -> its asyncio counterpart, which says which members are
#: coroutines (run in a thread and awaited) and which are plain.
_COUNTERPARTS: dict[type, type] = {
    blocking.Connection: amqp_client.aio.Connection,
    blocking.Channel: amqp_client.aio.Channel,
    blocking.Consumer: amqp_client.aio.Consumer,
    blocking.Delivery: amqp_client.aio.Delivery,
}


#: Plain methods of the asyncio front that return an awaitable.
_RETURNS_AWAITABLE = frozenset({"wait_closed"})


def view(value: Any) -> Any:
    """Wrap the blocking client's objects; leave everything else alone."""
    if isinstance(value, blocking.Confirmation):
        return _ConfirmationView(value)
    if type(value) in _COUNTERPARTS:
        return AsyncView(value)
    return value


class _ThreadCall:
    """An awaitable running one blocking call in a worker thread.

    :func:`raises_at_once` instead runs it right here and checks that it
    raised without writing a byte to the socket.
    """

    def __init__(
        self, owner: Any, fn: Callable[..., Any], args: Any, kwargs: Any
    ) -> None:
        self.owner = owner
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def __await__(self) -> Any:
        return self._run().__await__()

    async def _run(self) -> Any:
        try:
            result = await asyncio.to_thread(self.fn, *self.args, **self.kwargs)
            if isinstance(result, blocking.Confirmation):
                return _ConfirmationView(result, _connection_of(self.owner))
            return view(result)
        finally:
            # Callbacks run on the blocking front's own thread; let those the
            # call triggered run (and reach the loop) before the scenario
            # looks, as they would have with asyncio.
            connection = _connection_of(self.owner)
            await asyncio.to_thread(connection._drain_callbacks, STEP)
            await asyncio.sleep(0)

    def raise_without_io(self) -> BaseException:
        connection = _connection_of(self.owner)
        before = connection._driver.commands
        try:
            self.fn(*self.args, **self.kwargs)
        except BaseException as exc:
            # Raised before issuing anything to the broker (the I/O thread
            # may be writing other output meanwhile: that does not count).
            assert connection._driver.commands == before, "sent a command first"
            return exc
        raise AssertionError("completed, no error")


def _connection_of(target: Any) -> Any:
    if isinstance(target, blocking.Connection):
        return target
    if isinstance(target, blocking.Channel):
        return target.connection
    return target._channel.connection


def _on_loop(callback: Callable[..., Any]) -> Callable[..., Any]:
    loop = asyncio.get_running_loop()

    def call(*args: Any) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(lambda: callback(*(view(a) for a in args)))

    return call


class AsyncView:
    """A blocking object with the asyncio front's surface."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self._counterpart = _COUNTERPARTS[type(target)]
        self._pending: asyncio.Future[Any] | None = None

    def __repr__(self) -> str:
        return f"AsyncView({self._target!r})"

    def __getattr__(self, name: str) -> Any:
        target = self._target
        if name == "closed" and isinstance(target, blocking.Connection):
            return _ClosedView(target)
        value = getattr(target, name)
        model = getattr(self._counterpart, name, None)
        if inspect.iscoroutinefunction(model) or name in _RETURNS_AWAITABLE:
            return lambda *args, **kwargs: _ThreadCall(target, value, args, kwargs)
        if name.startswith("add_on_") and callable(value):
            return lambda callback: value(_on_loop(callback))
        if callable(value) and not isinstance(value, type):
            return lambda *args, **kwargs: view(value(*args, **kwargs))
        return view(value)

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        target = self._target
        if isinstance(target, blocking.Consumer):
            await asyncio.to_thread(target.__exit__, None, None, None)
        else:
            await asyncio.to_thread(target.close)

    def __aiter__(self) -> AsyncView:
        return self

    async def __anext__(self) -> Any:
        # The blocking get() runs on in its thread if the scenario stops
        # waiting (a timeout): what it then returns is kept for the next
        # call instead of being lost.
        if self._pending is None:
            self._pending = asyncio.ensure_future(asyncio.to_thread(self._target.get))
        delivery = await asyncio.shield(self._pending)
        self._pending = None
        if delivery is None:
            raise StopAsyncIteration
        return view(delivery)


class _ConfirmationView:
    def __init__(
        self, target: blocking.Confirmation, connection: Any | None = None
    ) -> None:
        self._target = target
        self._connection = connection
        self.delivery_tag = target.delivery_tag

    def __await__(self) -> Any:
        return self._wait().__await__()

    async def _wait(self) -> Any:
        try:
            return await asyncio.to_thread(self._target.wait)
        finally:
            # As _ThreadCall: the confirm callbacks queued before the waiter
            # woke run (and reach the loop) before the scenario looks.
            if self._connection is not None:
                await asyncio.to_thread(self._connection._drain_callbacks, STEP)
                await asyncio.sleep(0)

    def done(self) -> bool:
        return self._target.done()


class _ClosedView:
    """``conn.closed`` for the blocking front: awaitable, done(), result()."""

    def __init__(self, target: blocking.Connection) -> None:
        self._target = target

    def __await__(self) -> Any:
        return self._wait().__await__()

    async def _wait(self) -> Any:
        error = await asyncio.to_thread(self._target.wait_closed)
        # Close callbacks run on the front's callback thread: let them reach
        # the loop first, as they would have with asyncio.
        await asyncio.to_thread(self._target._drain_callbacks, STEP)
        await asyncio.sleep(0)
        return error

    def done(self) -> bool:
        return self._target.is_closed

    def result(self) -> Any:
        return self._target.wait_closed(0)


class _BlockingConnect:
    """``await front.connect()`` or ``async with front.connect() as conn``."""

    def __init__(self, url: str | Sequence[str], kwargs: dict[str, Any]) -> None:
        self._url = url
        self._kwargs = kwargs
        self._conn: Any = None

    def __await__(self) -> Any:
        return self._open().__await__()

    async def _open(self) -> Any:
        return view(
            await asyncio.to_thread(blocking.connect, self._url, **self._kwargs)
        )

    async def __aenter__(self) -> Any:
        self._conn = await self._open()
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._conn.close()


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
    if isinstance(awaitable, _ThreadCall):
        return awaitable.raise_without_io()
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


def default_sigint() -> None:
    """In a child before exec (``preexec_fn``): SIGINT back to its default
    disposition, so Ctrl-C reaches it even when the test run ignores SIGINT
    (Python keeps an inherited SIG_IGN, and would never raise
    KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def threads_left(before: set[threading.Thread], timeout: float = 5.0) -> list[str]:
    """Names of the threads started since ``before`` still alive after a
    bounded wait (for them to end)."""
    deadline = time.monotonic() + timeout
    while True:
        extra = [t for t in threading.enumerate() if t not in before]
        if not extra or time.monotonic() > deadline:
            return [t.name for t in extra]
        time.sleep(0.02)


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
