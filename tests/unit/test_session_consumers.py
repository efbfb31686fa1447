"""Delivery accounting: the budget's limits and hysteresis, and every way a
consumer's buffered deliveries leave it (amqp_client.session.consumers)."""

from __future__ import annotations

import tracemalloc

import pytest
from amqp_client.spec import BasicConsume, BasicProperties

from amqp_client._delivery import DeliveryData
from amqp_client.session.consumers import ConsumerSession, DeliveryBudget


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
