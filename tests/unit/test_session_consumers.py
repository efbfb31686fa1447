"""Delivery accounting: the budget's limits and hysteresis, and every way a
consumer's buffered deliveries leave it (amqp_client.session.consumers)."""

from __future__ import annotations

import functools
import tracemalloc
from contextlib import nullcontext

import pytest
from amqp_client.spec import BasicAck, BasicConsume, BasicProperties, BasicReject

from amqp_client._delivery import DeliveryData, Processing
from amqp_client._spec_base import Method
from amqp_client.session.consumers import (
    ConsumerSession,
    DeliveryBudget,
    check_callback,
)


def delivery(tag: int, size: int = 10) -> DeliveryData:
    return DeliveryData(None, b"x" * size, BasicProperties(), tag, False, "", "q", "ct")


def consumer(
    budget: DeliveryBudget, *, no_ack: bool = False
) -> tuple[ConsumerSession[DeliveryData], list[int]]:
    wakes: list[int] = []
    state: ConsumerSession[DeliveryData] = ConsumerSession(
        BasicConsume("q", "ct", no_ack=no_ack), budget
    )
    state.wake = lambda: wakes.append(1)  # as a front sets it
    return state, wakes


def test_budget_pauses_on_either_limit_and_resumes_at_half_of_both() -> None:
    changes: list[bool] = []
    budget = DeliveryBudget(max_bytes=100, max_messages=4)
    budget.on_change = lambda: changes.append(budget.over)
    for _ in range(3):
        budget.add(10)
    assert not budget.over
    budget.add(10)  # the 4th message: the count limit
    assert budget.over and changes == [True]
    budget.release(1, 10)  # 3 messages: above half (2)
    assert budget.over
    budget.release(1, 10)  # 2 messages, 20 bytes: both at half or below
    assert not budget.over and changes == [True, False]
    budget.add(90)  # 3 messages, 110 bytes: the byte limit
    assert budget.over
    budget.release(1, 90)
    assert not budget.over and changes == [True, False, True, False]


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "10"])
def test_budget_limits_are_checked(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        DeliveryBudget(max_bytes=value)  # type: ignore[arg-type]  # the misuse under test
    with pytest.raises((TypeError, ValueError)):
        DeliveryBudget(max_messages=value)  # type: ignore[arg-type]  # the misuse under test


def test_taking_releases_each_share() -> None:
    budget = DeliveryBudget(max_bytes=1000, max_messages=10)
    state, wakes = consumer(budget)
    for tag in (1, 2, 3):
        state.push(delivery(tag, 100))
    assert (budget.messages, budget.size, len(wakes)) == (3, 300, 3)
    taken = state.take()
    assert taken is not None and taken.delivery_tag == 1
    assert (budget.messages, budget.size) == (2, 200)


def test_ending_returns_what_was_never_handed_out() -> None:
    budget = DeliveryBudget(max_bytes=1000, max_messages=10)
    state, wakes = consumer(budget)
    for tag in (1, 2, 3):
        state.push(delivery(tag))
    assert state.take() is not None
    assert state.end() == [2, 3]
    assert (budget.messages, budget.size) == (0, 0)
    assert state.ended and state.take() is None and wakes[-1] == 1
    assert state.end() == []  # idempotent


def test_a_no_ack_consumer_keeps_its_deliveries_but_not_their_share() -> None:
    budget = DeliveryBudget(max_bytes=1000, max_messages=10)
    state, _ = consumer(budget, no_ack=True)
    for tag in (1, 2):
        state.push(delivery(tag))
    assert state.end() == []  # nothing to hand back: they are the application's
    assert (budget.messages, budget.size) == (0, 0)
    first, second = state.take(), state.take()
    assert first is not None and second is not None and state.take() is None
    assert (budget.messages, budget.size) == (0, 0)  # not released twice


def test_a_lost_connection_drops_the_dead_tags() -> None:
    budget = DeliveryBudget(max_bytes=1000, max_messages=10)
    state, _ = consumer(budget)
    state.push(delivery(1))
    state.drop_buffered()
    assert state.take() is None and not state.ended
    assert (budget.messages, budget.size) == (0, 0)


# --- callbacks: arguments, workers, process() ---------------------------------------


async def _coroutine(delivery: object) -> None:
    pass


def _function(delivery: object) -> None:
    pass


class _AsyncCallable:
    async def __call__(self, delivery: object) -> None:
        pass


@pytest.mark.parametrize(
    ("callback", "concurrency", "coroutine", "error"),
    [
        (_coroutine, 0, True, ValueError),
        (_coroutine, -3, True, ValueError),
        (_coroutine, True, True, TypeError),
        (_coroutine, 2.0, True, TypeError),
        (_coroutine, "2", True, TypeError),
        (None, 2, True, ValueError),  # a concurrency needs a callback
        (42, 1, False, TypeError),
        (_function, 1, True, TypeError),  # asyncio wants async def
        (_coroutine, 1, False, TypeError),  # blocking refuses async def
        (functools.partial(_coroutine), 1, False, TypeError),
        (_AsyncCallable(), 1, False, TypeError),
    ],
)
def test_bad_callback_arguments(
    callback: object, concurrency: object, coroutine: bool, error: type[Exception]
) -> None:
    with pytest.raises(error):
        check_callback(callback, concurrency, coroutine)


@pytest.mark.parametrize(
    ("callback", "coroutine"),
    [
        (None, True),
        (_coroutine, True),
        (functools.partial(_coroutine), True),
        (_AsyncCallable(), True),
        (_function, False),
        (print, False),
    ],
)
def test_good_callback_arguments(callback: object, coroutine: bool) -> None:
    check_callback(callback, 1, coroutine)
    if callback is not None:
        check_callback(callback, 64, coroutine)


class _Waiter:
    def __init__(self) -> None:
        self.result: object = "unset"

    def done(self) -> bool:
        return self.result != "unset"

    def set_result(self, result: object) -> None:
        self.result = result

    def set_exception(self, exception: BaseException) -> None:
        self.result = exception


def test_idle_waiters_resolve_when_the_last_worker_exits() -> None:
    state, _ = consumer(DeliveryBudget())
    state.workers = 2
    waiter = _Waiter()
    state.when_idle(waiter)
    state.worker_exited()
    assert not waiter.done()
    state.worker_exited()
    assert waiter.result is None
    late = _Waiter()
    state.when_idle(late)  # nothing runs: at once
    assert late.result is None


def _settles(
    delivery: DeliveryData, requeue: bool, exc: BaseException | None
) -> list[tuple[Method, int]]:
    sent: list[tuple[Method, int]] = []
    span: list[str] = []

    class Span:
        def __enter__(self) -> None:
            span.append("enter")

        def __exit__(self, *exc_info: object) -> None:
            span.append(f"exit {exc_info[1]!r}")

    processing = Processing(delivery, requeue, lambda m, e: sent.append((m, e)), Span())
    processing.enter()
    processing.exit(None if exc is None else type(exc), exc, None)
    assert span == ["enter", f"exit {exc!r}"]  # the span sees the outcome
    return sent


def test_processing_acks_rejects_or_leaves_alone() -> None:
    assert _settles(delivery(1), False, None) == [(BasicAck(1), 0)]
    assert _settles(delivery(2), False, KeyError()) == [
        (BasicReject(2, requeue=False), 0)
    ]
    assert _settles(delivery(3), True, KeyError()) == [
        (BasicReject(3, requeue=True), 0)
    ]
    # An interruption is no verdict on the message: back to the queue.
    assert _settles(delivery(4), False, KeyboardInterrupt()) == [
        (BasicReject(4, requeue=True), 0)
    ]
    no_ack = DeliveryData(
        None, b"", BasicProperties(), 5, False, "", "q", "ct", no_ack=True
    )
    assert no_ack.settled
    assert _settles(no_ack, False, None) == []
    assert _settles(no_ack, False, KeyError()) == []
    done = delivery(6)
    assert _settles(done, False, None) == [(BasicAck(6), 0)]
    assert done.settled
    assert _settles(done, False, None) == []  # settled once only
    with pytest.raises(TypeError):
        Processing(delivery(7), "no", lambda m, e: None, nullcontext())  # type: ignore[arg-type]  # the misuse under test


def test_a_lost_connection_stops_the_wait_for_idle_workers() -> None:
    state, _ = consumer(DeliveryBudget())
    state.workers = 1
    waiter = _Waiter()
    state.when_idle(waiter)
    state.stop_waiting()  # what ChannelSession.interrupt does
    assert waiter.result is None
    assert state.workers == 1  # the worker itself goes on


def test_a_consumer_without_deliveries_holds_no_buffer() -> None:
    # 10,000 consumers on a channel (bench/scale.py): the buffer is made at
    # the first delivery, not with the consumer (an empty deque is 760 B).
    budget = DeliveryBudget()
    method = BasicConsume("q", "ct")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        states = [ConsumerSession[DeliveryData](method, budget) for _ in range(1000)]
        per_consumer = (tracemalloc.get_traced_memory()[0] - before) / len(states)
    finally:
        tracemalloc.stop()
    assert per_consumer < 400
    state = states[0]
    assert state.buffered == 0 and state.take() is None
    state.push(delivery(1))
    assert state.buffered == 1 and state.end() == [1] and state.buffered == 0
