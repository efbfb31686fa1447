"""Restoring a recovered connection, as a plan of steps.

:func:`restore_plan` yields what to do, in order: reopen each channel on
its id and put it back in its modes (qos, confirm, tx), redeclare the
recorded topology on a channel of recovery's own, then restart the
consumers under their old tags. A front executes each step its own way
(awaiting, or blocking with a timeout) and sends back the result: None
for an opened or closed channel, the new channel for ``OpenChannel(None)``,
the reply for a ``Request``. A ``ChannelClosed`` that a step raised is
thrown into the plan: what could not be restored is reported and the
plan goes on. Any other failure ends the attempt.

No I/O here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator
from typing import Generic, TypeVar

from amqp_client._delivery import DeliveryData
from amqp_client._spec_base import Method
from amqp_client.errors import ChannelClosed
from amqp_client.session.channel import ChannelSession
from amqp_client.session.connection import ConnectionSession
from amqp_client.session.consumers import ConsumerSession
from amqp_client.session.link import Reply, Waiter
from amqp_client.spec import ReplyCode

__all__ = [
    "CloseChannel",
    "OpenChannel",
    "Request",
    "RestorePlan",
    "Restorer",
    "restore_plan",
]

D = TypeVar("D", bound=DeliveryData)


@dataclasses.dataclass(frozen=True, slots=True)
class OpenChannel(Generic[D]):
    """Reopen ``channel`` on its id; None: open a channel of recovery's own
    (not recorded, never restored) and send it back."""

    channel: ChannelSession[D] | None


@dataclasses.dataclass(frozen=True, slots=True)
class Request(Generic[D]):
    """Send ``method`` on ``channel`` (not recorded again) and send back its
    reply; ``consumer`` is the consumer a basic.consume restarts."""

    channel: ChannelSession[D]
    method: Method
    consumer: ConsumerSession[D] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CloseChannel(Generic[D]):
    """Close recovery's own channel (a real close: the broker would keep
    it open for good otherwise)."""

    channel: ChannelSession[D]


Step = OpenChannel[D] | Request[D] | CloseChannel[D]
#: The plan: yields steps, is sent each step's result.
RestorePlan = Generator[Step[D], object, None]


def restore_plan(session: ConnectionSession[D]) -> RestorePlan[D]:
    """The steps that restore ``session``'s channels, topology and
    consumers on its new core."""
    channels = [channel for channel in session.router if not channel.terminated]
    for channel in channels:
        if channel.terminated:
            continue  # closed by the application meanwhile
        yield OpenChannel(channel)
        for method in channel.session_methods():
            yield Request(channel, method)
    topology = session.topology
    if topology is not None:
        helper: ChannelSession[D] | None = None
        try:
            for step in topology.steps():
                if helper is None or not helper.is_open:
                    opened = yield OpenChannel(None)
                    assert isinstance(opened, ChannelSession)
                    helper = opened
                try:
                    reply = yield Request(helper, step.method)
                except ChannelClosed as exc:
                    session.recovery_failed(step.entity, exc)
                    continue
                if step.on_reply is not None and isinstance(reply, Method):
                    step.on_reply(reply)
            if helper is not None and helper.is_open:
                yield CloseChannel(helper)
        finally:
            if helper is not None:
                helper.drop()  # whatever failed: never restore it as ours
    for channel in channels:
        for consumer, method in channel.consumers_to_restore():
            if channel.terminated:
                break
            try:
                yield Request(channel, method, consumer)
            except ChannelClosed as exc:
                session.recovery_failed(f"consumer {consumer.consumer_tag!r}", exc)
                channel.end_consumer(consumer.consumer_tag, exc)


class Restorer(Generic[D]):
    """Runs :func:`restore_plan` one step at a time for a front.

    The front makes a waiter, calls :meth:`start` (False: all restored),
    waits on the waiter its own way (with the restore timeout), then calls
    :meth:`finished` with the result or :meth:`failed` with a
    ``ChannelClosed``. Anything else it raises ends the attempt.

    Args:
        session: the connection being restored.
        open_helper: opens a channel of recovery's own (not recorded),
            resolving the waiter at its open-ok.
    """

    def __init__(
        self,
        session: ConnectionSession[D],
        open_helper: Callable[[Waiter[None]], ChannelSession[D]],
    ) -> None:
        self._session = session
        self._open_helper = open_helper
        self._plan = restore_plan(session)
        self._result: object = None
        self._error: ChannelClosed | None = None
        self._helper: ChannelSession[D] | None = None

    def start(self, waiter: Waiter[Reply]) -> bool:
        """Start the next step; ``waiter`` gets its outcome. False when the
        plan is over (nothing was started)."""
        while True:
            error, self._error = self._error, None
            try:
                step = (
                    self._plan.throw(error)
                    if error is not None
                    else self._plan.send(self._result)
                )
            except StopIteration:
                return False
            self._result = None
            if self._begin(step, waiter):
                return True

    def _begin(self, step: Step[D], waiter: Waiter[Reply]) -> bool:
        """Issue ``step``; False when it needs no waiting."""
        if isinstance(step, OpenChannel):
            if step.channel is None:
                self._helper = self._open_helper(waiter)
            else:
                self._session.reopen(step.channel, waiter)
            return True
        if isinstance(step, Request):
            step.channel.request(
                step.method, waiter, consumer=step.consumer, internal=True
            )
            return True
        if step.channel.close(ReplyCode.REPLY_SUCCESS, ""):
            step.channel.closed_waiters.append(waiter)
            return True
        return False

    def finished(self, result: Reply) -> None:
        """The step started last succeeded with ``result``."""
        helper, self._helper = self._helper, None
        self._result = helper if helper is not None else result

    def failed(self, error: ChannelClosed) -> None:
        """The step started last failed with a channel error."""
        self._helper = None
        self._error = error

    def close(self) -> None:
        """Give up (the attempt failed): release what the plan holds."""
        self._plan.close()
