"""What the session layer does per item stays per item as items grow
(bench/scale.py measures it against a broker; here the work is counted,
never timed).

A :class:`ConnectionSession` is driven by scripted broker bytes fed to its
core (tests/support/scripted_peer.py): no front, no socket. The work is
counted as the elements the session iterates over in its dicts of consumers
and bindings.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from amqp_client import spec
from amqp_client._delivery import DeliveryData
from amqp_client._spec_base import Method
from amqp_client.session.channel import ChannelSession
from amqp_client.session.connect import parse_connect
from amqp_client.session.connection import ConnectionSession
from amqp_client.session.link import Callback
from tests.support.scripted_peer import channel_open_ok, handshake, method

K = TypeVar("K")
V = TypeVar("V")


class CountingDict(dict[K, V]):
    """A dict that counts the elements iteration yields."""

    visited = 0

    def __iter__(self) -> Iterator[K]:
        for key in super().__iter__():
            CountingDict.visited += 1
            yield key

    def values(self) -> Any:  # a generator stands in for the view
        return (self[key] for key in self)

    def items(self) -> Any:
        return ((key, self[key]) for key in self)

    def keys(self) -> Any:
        return iter(self)


class Hooks:
    """The front: nothing to write to, callbacks run at once."""

    def flush(self, urgent: bool, size: int = 0) -> None:
        pass

    def run_callbacks(self, callbacks: Sequence[Callback], *args: object) -> None:
        for callback in callbacks:
            callback(*args)

    def state_changed(self) -> None:
        pass

    def pause_reading(self, paused: bool) -> None:
        pass

    def now(self) -> float:
        return 0.0


class Done:
    """A waiter that only records its result."""

    def __init__(self) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self.finished = False

    def done(self) -> bool:
        return self.finished

    def set_result(self, result: object) -> None:
        self.finished, self.result = True, result

    def set_exception(self, exception: BaseException) -> None:
        self.finished, self.error = True, exception


#: How the session makes a delivery (a front passes its own class).
make_delivery = functools.partial(DeliveryData, None)


def session_with_channel(
    recover: bool,
) -> tuple[ConnectionSession[DeliveryData], ChannelSession[DeliveryData]]:
    endpoints, options = parse_connect(
        "amqp://guest:guest@localhost/", {"recover": recover}
    )
    session: ConnectionSession[DeliveryData] = ConnectionSession(
        endpoints, options, Hooks()
    )
    handshake(session.core)
    session.handle_events()
    channel = session.open_channel(make_delivery, Done())
    reply(session, channel_open_ok(channel.channel_id))
    assert channel.opened
    return session, channel


def reply(session: ConnectionSession[DeliveryData], data: bytes) -> None:
    session.core.data_to_send()
    session.core.receive_data(data, 0.0)
    session.handle_events()


def call(
    session: ConnectionSession[DeliveryData],
    channel: ChannelSession[DeliveryData],
    request: Method,
    response: Method,
) -> Done:
    done = Done()
    consumer = (
        channel.new_consumer(request)
        if isinstance(request, spec.BasicConsume)
        else None
    )
    channel.request(request, done, consumer=consumer)
    reply(session, method(channel.channel_id, response))
    assert done.finished and done.error is None, done.error
    return done


def test_cancelling_consumers_of_auto_delete_queues_is_linear() -> None:
    # One consumer on each of M auto-delete queues (each bound to an
    # exchange), with recovery on: each cancel must forget its queue and
    # its binding without visiting every other consumer or binding. Before,
    # each cancel looked at every consumer of every channel, and forgetting
    # the queue at every binding: M x M.
    m = 300
    session, channel = session_with_channel(recover=True)
    topology = session.topology
    assert topology is not None
    for i in range(m):
        queue = f"q{i}"
        call(session, channel, spec.QueueDeclare(queue, auto_delete=True),
             spec.QueueDeclareOk(queue, 0, 0))  # fmt: skip
        call(session, channel, spec.QueueBind(queue, "x", "rk"), spec.QueueBindOk())
        call(session, channel, spec.BasicConsume(queue, f"c{i}"),
             spec.BasicConsumeOk(f"c{i}"))  # fmt: skip
    assert len(topology.queues) == m and len(topology.bindings) == m
    channel.consumers = CountingDict(channel.consumers)
    topology._bindings = CountingDict(topology._bindings)  # white box: the scan
    CountingDict.visited = 0
    for i in range(m):
        call(session, channel, spec.BasicCancel(f"c{i}"), spec.BasicCancelOk(f"c{i}"))
    assert topology.queues == [] and topology.bindings == []
    assert CountingDict.visited <= 4 * m  # M x M = 90,000 before


def test_auto_delete_queue_is_kept_while_any_consumer_is_left() -> None:
    session, channel = session_with_channel(recover=True)
    other = session.open_channel(make_delivery, Done())
    reply(session, channel_open_ok(other.channel_id))
    topology = session.topology
    assert topology is not None
    call(session, channel, spec.QueueDeclare("shared", auto_delete=True),
         spec.QueueDeclareOk("shared", 0, 0))  # fmt: skip
    call(session, channel, spec.BasicConsume("shared", "a"), spec.BasicConsumeOk("a"))
    call(session, other, spec.BasicConsume("shared", "b"), spec.BasicConsumeOk("b"))
    call(session, channel, spec.BasicCancel("a"), spec.BasicCancelOk("a"))
    assert topology.queues == ["shared"]  # "b" still consumes from it
    # The broker cancels the last one (consumer-cancel notification).
    reply(session, method(other.channel_id, spec.BasicCancel("b")))
    assert topology.queues == []


def test_a_closed_channels_consumers_no_longer_count() -> None:
    session, channel = session_with_channel(recover=True)
    other = session.open_channel(make_delivery, Done())
    reply(session, channel_open_ok(other.channel_id))
    topology = session.topology
    assert topology is not None
    call(session, channel, spec.QueueDeclare("shared", auto_delete=True),
         spec.QueueDeclareOk("shared", 0, 0))  # fmt: skip
    call(session, channel, spec.BasicConsume("shared", "a"), spec.BasicConsumeOk("a"))
    call(session, other, spec.BasicConsume("shared", "b"), spec.BasicConsumeOk("b"))
    other.close(200, "")
    reply(session, method(other.channel_id, spec.ChannelCloseOk()))
    assert session.router.get(other.channel_id) is None
    call(session, channel, spec.BasicCancel("a"), spec.BasicCancelOk("a"))
    assert topology.queues == []  # "a" was the last consumer left


def test_renamed_server_named_queue_keeps_its_bindings() -> None:
    session, channel = session_with_channel(recover=True)
    topology = session.topology
    assert topology is not None
    call(session, channel, spec.QueueDeclare("", auto_delete=True),
         spec.QueueDeclareOk("amq.gen-1", 0, 0))  # fmt: skip
    call(session, channel, spec.QueueBind("amq.gen-1", "x", "a"), spec.QueueBindOk())
    call(session, channel, spec.QueueBind("amq.gen-1", "x", "b"), spec.QueueBindOk())
    call(
        session, channel, spec.BasicConsume("amq.gen-1", "c"), spec.BasicConsumeOk("c")
    )
    steps = topology.steps()
    declare = next(step for step in steps if isinstance(step.method, spec.QueueDeclare))
    assert declare.on_reply is not None
    declare.on_reply(spec.QueueDeclareOk("amq.gen-2", 0, 0))
    assert topology.bindings == [("amq.gen-2", "x", "a"), ("amq.gen-2", "x", "b")]
    assert channel.consumers["c"].queue == "amq.gen-2"
    call(session, channel, spec.BasicCancel("c"), spec.BasicCancelOk("c"))
    assert topology.queues == [] and topology.bindings == []
