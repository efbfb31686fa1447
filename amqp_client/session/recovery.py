"""What both fronts share to survive a lost connection: the endpoints to
try, the backoff between attempts, and the topology to restore.

Recovery is opt-in (``connect(..., recover=True)``). This module decides
*what* to do; each front does it with its own kind of waiting, by driving
:func:`recovery_loop` (when to try, and when to give up) and
:func:`amqp_client.session.restore.restore_plan` (what to replay). Nothing
here does I/O.

What is recorded, from the replies of calls made through a recovering
connection: exchanges, queues (a server-named queue is redeclared with
``""`` and its new name replaces the old one everywhere), queue and
exchange bindings; each channel's qos, confirm and tx mode; the
consumers, by their tags. Deleting (or unbinding) through the client
removes the entity from the record. Passive declares record nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

from amqp_client import uri
from amqp_client._spec_base import Method
from amqp_client.errors import AMQPError, ConnectionClosed, ConnectionLost
from amqp_client.spec import (
    BasicConsume,
    ExchangeBind,
    ExchangeDeclare,
    ExchangeDelete,
    ExchangeUnbind,
    QueueBind,
    QueueDeclare,
    QueueDeclareOk,
    QueueDelete,
    QueueUnbind,
    ReplyCode,
)

__all__ = [
    "Attempt",
    "Backoff",
    "RecoveryLoop",
    "RecoveryOptions",
    "RecoveryStep",
    "Sleep",
    "Topology",
    "consume_again",
    "give_up_error",
    "gives_up",
    "is_recoverable",
    "lost_error",
    "recovery_loop",
    "recovery_order",
    "restore_timeout",
    "with_fields",
]

_M = TypeVar("_M", bound=Method)

log = logging.getLogger("amqp_client.recovery")

#: Reply codes of a broker-sent connection.close after which a recovering
#: connection reconnects: the node is shutting down or was told to drop
#: us (connection-forced), or failed internally. Other codes say the
#: client broke a rule; reconnecting would only break it again.
RECOVERABLE_CODES = frozenset({ReplyCode.CONNECTION_FORCED, ReplyCode.INTERNAL_ERROR})

#: The longest backoff delay recovery accepts, seconds (a day): a wait the
#: threading and asyncio timers can always represent.
MAX_RECOVERY_DELAY = 86_400.0

#: The least time recovery waits for each of its own requests.
RESTORE_TIMEOUT = 30.0


def restore_timeout(params: uri.ConnectionParameters) -> float:
    """How long recovery waits for each reply: never forever, and not
    less than the connection's own connection_timeout."""
    return max(RESTORE_TIMEOUT, params.connection_timeout or 0.0)


def is_recoverable(error: AMQPError | None) -> bool:
    """Whether a connection that ended with ``error`` should reconnect."""
    if error is None:
        return False
    if isinstance(error, ConnectionLost):
        return True
    return isinstance(error, ConnectionClosed) and error.reply_code in (
        RECOVERABLE_CODES
    )


def lost_error(error: AMQPError | None) -> ConnectionLost:
    """What calls pending at the loss (and unconfirmed publishes) raise
    on a recovering connection: always a retryable ConnectionLost."""
    if isinstance(error, ConnectionLost):
        return error
    lost = ConnectionLost(f"connection lost ({error}); recovering")
    lost.__cause__ = error
    return lost


def recovery_order(
    endpoints: Sequence[uri.ConnectionParameters], lost: uri.ConnectionParameters
) -> list[uri.ConnectionParameters]:
    """The endpoints to try after losing ``lost``: the others first (the
    one we lost is likely down), ``lost`` last."""
    return [params for params in endpoints if params is not lost] + [lost]


def gives_up(options: RecoveryOptions, attempts: int) -> bool:
    """Whether recovery stops after ``attempts`` failed attempts in a row."""
    return options.max_attempts is not None and attempts >= options.max_attempts


def give_up_error(last: BaseException | None) -> AMQPError:
    """The terminal error of a connection whose recovery gave up after
    ``last`` (the last attempt's failure)."""
    return last if isinstance(last, AMQPError) else lost_error(None)


@dataclasses.dataclass(frozen=True)
class RecoveryOptions:
    """How a recovering connection reconnects.

    Attributes:
        initial_delay: the first backoff delay, seconds (the very first
            attempt is immediate).
        max_delay: the cap of the exponential backoff, seconds.
        max_attempts: give up (and close with the last error) after this
            many failed attempts in a row; None tries until ``close()``.
    """

    initial_delay: float = 0.5
    max_delay: float = 10.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        for name, value in (
            ("recovery_delay", self.initial_delay),
            ("recovery_max_delay", self.max_delay),
        ):
            if type(value) is bool or not isinstance(value, int | float):
                raise TypeError(f"{name}: expected seconds, got {type(value).__name__}")
            if not math.isfinite(value) or value > MAX_RECOVERY_DELAY:
                raise ValueError(
                    f"{name}: expected at most {MAX_RECOVERY_DELAY:g} s, got {value!r}"
                )
        attempts = self.max_attempts
        if attempts is not None and (
            type(attempts) is bool or not isinstance(attempts, int)
        ):
            raise TypeError(
                f"recovery_attempts: expected int or None, got {type(attempts).__name__}"
            )
        if not 0 <= self.initial_delay <= self.max_delay:
            raise ValueError(
                "recovery_delay: need 0 <= initial delay <= maximum delay, got "
                f"{self.initial_delay} and {self.max_delay}"
            )
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("recovery_attempts: need at least 1")


# --- the reconnection loop -------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``delay`` seconds before the next attempt (``close()`` may end
    the wait, and the loop with it)."""

    delay: float


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """Connect to the first endpoint of ``order`` that answers and restore
    the session; send back None on success or the failure."""

    order: Sequence[uri.ConnectionParameters]


#: Steps of :func:`recovery_loop`: what a front sends back after each.
RecoveryLoop = Generator[Sleep | Attempt, BaseException | None, None]


def recovery_loop(
    options: RecoveryOptions,
    endpoints: Sequence[uri.ConnectionParameters],
    lost: uri.ConnectionParameters,
    rng: Callable[[float, float], float] = random.uniform,
) -> RecoveryLoop:
    """Reconnect after losing ``lost``: attempts with backoff between them
    (the first at once), until one succeeds (the generator returns) or
    ``options.max_attempts`` failed in a row (it raises the error the
    connection then ends with).

    Raises:
        AMQPError: recovery gave up (see :func:`give_up_error`).
    """
    backoff = Backoff(options.initial_delay, options.max_delay, rng)
    order = recovery_order(endpoints, lost)
    attempts = 0
    while True:
        delay = backoff.next()
        if delay:
            yield Sleep(delay)
        attempts += 1
        failure = yield Attempt(order)
        if failure is None:
            return
        log.warning("recovery attempt %d failed: %s", attempts, failure)
        if gives_up(options, attempts):
            log.error("giving up recovery after %d attempts", attempts)
            raise give_up_error(failure)


# --- backoff -----------------------------------------------------------------------------


class Backoff:
    """Delays between reconnection attempts: exponential, capped, with
    full jitter (each delay uniform in [initial, the current cap])."""

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 10.0,
        rng: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if initial < 0 or maximum < initial:
            raise ValueError("backoff: need 0 <= initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self._rng = rng
        self._attempt = 0

    def reset(self) -> None:
        self._attempt = 0

    def next(self) -> float:
        """The delay before the next attempt (0 before the first)."""
        attempt = self._attempt
        self._attempt += 1
        if attempt == 0:
            return 0.0
        cap = min(self.maximum, self.initial * 2 ** (attempt - 1))
        return self._rng(self.initial, max(self.initial, cap))


# --- the topology ------------------------------------------------------------------------


@dataclasses.dataclass
class _Queue:
    method: QueueDeclare
    name: str  # the current name (a server-named queue's changes)


@dataclasses.dataclass(frozen=True)
class RecoveryStep:
    """One request to replay on the recovery channel.

    ``entity`` describes what is restored (for logs and the recovery-error
    callback); ``on_reply`` takes the reply (a server-named queue's new name).
    """

    entity: str
    method: Method
    on_reply: Callable[[Method], None] | None = None


class Topology:
    """Exchanges, queues and bindings declared through one connection."""

    def __init__(self) -> None:
        self._exchanges: dict[str, ExchangeDeclare] = {}
        self._queues: dict[str, _Queue] = {}
        self._bindings: dict[_Key, QueueBind] = {}
        # The keys of each queue's bindings, in order: forgetting or renaming
        # a queue touches its own bindings, not every binding recorded.
        self._queue_bindings: dict[str, dict[_Key, None]] = {}
        self._exchange_bindings: dict[tuple[str, str, str, str], ExchangeBind] = {}
        #: Called with (old name, new name) when a server-named queue is renamed.
        self.on_rename: Callable[[str, str], None] | None = None

    def __repr__(self) -> str:
        return (
            f"<Topology {len(self._exchanges)} exchanges, {len(self._queues)} "
            f"queues, {len(self._bindings) + len(self._exchange_bindings)} bindings>"
        )

    @property
    def exchanges(self) -> list[str]:
        return list(self._exchanges)

    @property
    def queues(self) -> list[str]:
        return list(self._queues)

    @property
    def bindings(self) -> list[tuple[str, str, str]]:
        """(queue, exchange, routing key) of each queue binding."""
        return [key[:3] for key in self._bindings]

    @property
    def exchange_bindings(self) -> list[tuple[str, str, str]]:
        """(destination, source, routing key) of each exchange binding."""
        return [key[:3] for key in self._exchange_bindings]

    def record(self, method: Method, reply: Method | None) -> None:
        """Note what a successful request (``reply`` None for no-wait)
        created or removed."""
        if isinstance(method, QueueDeclare):
            if method.passive:
                return
            name = reply.queue if isinstance(reply, QueueDeclareOk) else method.queue
            if name:
                self._queues[name] = _Queue(method, name)
        elif isinstance(method, QueueDelete):
            self.forget_queue(method.queue)
        elif isinstance(method, ExchangeDeclare):
            if method.passive or method.exchange.startswith("amq."):
                return
            self._exchanges[method.exchange] = method
        elif isinstance(method, ExchangeDelete):
            name = method.exchange
            self._exchanges.pop(name, None)
            for key in [k for k in self._bindings if k[1] == name]:
                self._unbind(key)
            for key in [k for k in self._exchange_bindings if name in k[:2]]:
                del self._exchange_bindings[key]
        elif isinstance(method, QueueBind):
            self._bind(method)
        elif isinstance(method, QueueUnbind):
            self._unbind(_binding_key(method))
        elif isinstance(method, ExchangeBind):
            self._exchange_bindings[_exchange_binding_key(method)] = method
        elif isinstance(method, ExchangeUnbind):
            self._exchange_bindings.pop(_exchange_binding_key(method), None)

    def _bind(self, method: QueueBind) -> None:
        key = _binding_key(method)
        self._bindings[key] = method
        self._queue_bindings.setdefault(key[0], {})[key] = None

    def _unbind(self, key: _Key) -> None:
        if self._bindings.pop(key, None) is None:
            return
        keys = self._queue_bindings.get(key[0])
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._queue_bindings[key[0]]

    def forget_queue(self, name: str) -> None:
        self._queues.pop(name, None)
        for key in self._queue_bindings.pop(name, {}):
            self._bindings.pop(key, None)

    def is_auto_delete(self, queue: str) -> bool:
        record = self._queues.get(queue)
        return record is not None and record.method.auto_delete

    def steps(self) -> Iterator[RecoveryStep]:
        """The requests that restore the topology, in order: exchanges,
        queues, bindings, exchange bindings. Lazy: a queue's new name is
        applied (through ``on_reply``) before the bindings are produced."""
        for exchange in list(self._exchanges.values()):
            yield RecoveryStep(
                f"exchange {exchange.exchange!r}", _without_no_wait(exchange)
            )
        for record in list(self._queues.values()):
            # Passive declares are never recorded: this is the declare
            # as made, waiting for its reply, under the queue's current name.
            server_named = record.method.queue == ""
            redeclare = with_fields(
                record.method,
                queue="" if server_named else record.name,
                no_wait=False,
            )
            yield RecoveryStep(
                f"queue {record.name!r}",
                redeclare,
                self._renamer(record) if server_named else None,
            )
        for bind in list(self._bindings.values()):
            yield RecoveryStep(
                f"binding of queue {bind.queue!r} to {bind.exchange!r} "
                f"({bind.routing_key!r})",
                _without_no_wait(bind),
            )
        for ebind in list(self._exchange_bindings.values()):
            yield RecoveryStep(
                f"binding of exchange {ebind.destination!r} to {ebind.source!r} "
                f"({ebind.routing_key!r})",
                _without_no_wait(ebind),
            )

    def _renamer(self, record: _Queue) -> Callable[[Method], None]:
        def rename(reply: Method) -> None:
            assert isinstance(reply, QueueDeclareOk)
            old, new = record.name, reply.queue
            if old == new:
                return
            self._queues.pop(old, None)
            record.name = new
            self._queues[new] = record
            for key in self._queue_bindings.pop(old, {}):
                bind = self._bindings.pop(key)
                self._bind(with_fields(bind, queue=new, no_wait=False))
            log.info("server-named queue %r is now %r", old, new)
            if self.on_rename is not None:
                self.on_rename(old, new)

        return rename


def consume_again(method: BasicConsume, queue: str, consumer_tag: str) -> BasicConsume:
    """The basic.consume that restores a consumer under its old tag."""
    return with_fields(method, queue=queue, consumer_tag=consumer_tag, no_wait=False)


#: A binding's identity: (queue or destination, exchange or source, routing
#: key, arguments).
_Key = tuple[str, str, str, str]


def _binding_key(method: QueueBind | QueueUnbind) -> _Key:
    return (method.queue, method.exchange, method.routing_key, _args_key(method))


def _exchange_binding_key(
    method: ExchangeBind | ExchangeUnbind,
) -> tuple[str, str, str, str]:
    return (method.destination, method.source, method.routing_key, _args_key(method))


def _args_key(method: Any) -> str:
    arguments = method.arguments
    return repr(sorted(arguments.items())) if arguments else ""


def with_fields(method: _M, **changes: Any) -> _M:
    """A copy of ``method`` with some fields replaced (validated again)."""
    values = {field.name: getattr(method, field.name) for field in method.FIELDS}
    values.update(changes)
    first = method.FIELDS[0].name
    cls: Any = type(method)  # a generated class: its fields are its parameters
    result: _M = cls(values.pop(first), **values)
    return result


def _without_no_wait(method: Any) -> Any:
    """A copy of a declare or bind that waits for its reply."""
    if not getattr(method, "no_wait", False):
        return method
    return with_fields(method, no_wait=False)
