"""OpenTelemetry traces and metrics, once for both fronts.

Imported only by :func:`amqp_client.telemetry.make_telemetry`, and only
when ``opentelemetry-api`` is installed and telemetry is on: the rest of
the client never imports ``opentelemetry``.

Follows the OpenTelemetry semantic conventions for messaging and RabbitMQ,
version 1.44.0 (``SCHEMA_URL``):

* a PRODUCER span ``publish <exchange>`` (``publish amq.default`` for the
  default exchange) per basic.publish; the message carries its context in
  its headers (the global propagator's fields, W3C ``traceparent`` by
  default; a header the application set is never overwritten). In confirm
  mode the span ends at the broker's ack or nack, or at the return that
  precedes it, with ``amqp_client.confirm.outcome`` ack/nack/returned (nack
  and returned also set error status and ``error.type``); otherwise it ends
  once the frames are handed to the transport;
* a CONSUMER span ``process <queue>`` around the processing of a delivery
  (:meth:`Telemetry.processing`): a child of the producer's span (the
  message's creation context, single-message processing per the
  conventions), with a link to that context and, when processing runs
  under another span, a link to that span as well;
* the metrics ``messaging.client.sent.messages``,
  ``messaging.client.consumed.messages``,
  ``messaging.client.operation.duration`` (publish to confirm, or the write
  without confirms), ``messaging.process.duration``, and the client's own
  ``amqp_client.connection.recoveries``, ``amqp_client.delivery_buffer.size``
  and ``amqp_client.connection.blocked.time``.

Nothing here does I/O or waits. Every call is cheap when no SDK is
configured (the global providers are the API's proxies): no span is made
and nothing is recorded, and headers are only touched when the current
context has something to propagate.
"""

from __future__ import annotations

import copy
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from amqp_client._delivery import DeliveryData, ReturnedMessage
from amqp_client._version import __version__
from amqp_client.spec import BasicProperties

__all__ = [
    "SCHEMA_URL",
    "SEMCONV_VERSION",
    "DeliveryTrace",
    "PublishTrace",
    "Telemetry",
]

#: The semantic conventions these spans and metrics follow.
SEMCONV_VERSION = "1.44.0"
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
#: Instrumentation scope name.
SCOPE = "amqp_client"

_SYSTEM = "rabbitmq"
#: Seconds between two looks at a global provider that is still unset.
_RECHECK = 1.0
#: Attribute recording how a confirm-mode publish ended.
OUTCOME = "amqp_client.confirm.outcome"


class _HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads propagation fields from AMQP headers (longstr may be bytes)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            return None
        if isinstance(value, bytes | bytearray):
            return [bytes(value).decode("utf-8", "replace")]
        return [str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_GETTER = _HeaderGetter()
_current_context = otel_context.get_current


def _publish_destination(exchange: str, routing_key: str) -> str:
    """``messaging.destination.name`` of a publish (RabbitMQ conventions:
    ``{exchange}:{routing key}``, or the one that is not empty, or
    ``amq.default``)."""
    if exchange and routing_key:
        return f"{exchange}:{routing_key}"
    return exchange or routing_key or "amq.default"


def _consume_destination(exchange: str, routing_key: str, queue: str) -> str:
    """``messaging.destination.name`` on the consumer side:
    ``{exchange}:{routing key}:{queue}`` without the empty parts, and the
    queue left out when it equals the routing key."""
    parts = [part for part in (exchange, routing_key) if part]
    if queue and queue != routing_key:
        parts.append(queue)
    return ":".join(parts) or "amq.default"


class PublishTrace:
    """One traced publish, until it is written or confirmed."""

    __slots__ = ("attributes", "span", "start")

    def __init__(self, span: trace.Span | None, start: float) -> None:
        self.span = span
        self.start = start
        self.attributes: dict[str, Any] | None = None


class DeliveryTrace:
    """What a delivery carries for its processing span: the context
    extracted from its headers (None if it had none), its queue."""

    __slots__ = ("context", "queue", "telemetry")

    def __init__(
        self, telemetry: Telemetry, context: otel_context.Context | None, queue: str
    ) -> None:
        self.telemetry = telemetry
        self.context = context
        self.queue = queue


def _is_proxy_tracer_provider(provider: object) -> bool:
    # The API's stand-in until the application sets a global provider.
    return isinstance(provider, trace.ProxyTracerProvider)


def _is_proxy_meter_provider(provider: object) -> bool:
    return type(provider).__name__ == "_ProxyMeterProvider"


class _Instruments:
    """The instruments of one meter (one set per meter provider: an SDK
    hands back the first instrument of a name, and drops the callbacks of
    a second observable one)."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.sent = meter.create_counter(
            "messaging.client.sent.messages",
            unit="{message}",
            description="Number of messages producer attempted to send to the broker.",
        )
        self.consumed = meter.create_counter(
            "messaging.client.consumed.messages",
            unit="{message}",
            description="Number of messages that were delivered to the application.",
        )
        self.operation = meter.create_histogram(
            "messaging.client.operation.duration",
            unit="s",
            description="Duration of messaging operation initiated by a producer "
            "or consumer client.",
        )
        self.process = meter.create_histogram(
            "messaging.process.duration",
            unit="s",
            description="Duration of processing operation.",
        )
        self.recoveries = meter.create_counter(
            "amqp_client.connection.recoveries",
            unit="{recovery}",
            description="Connections recovered after the loss of their broker.",
        )
        self.blocked = meter.create_counter(
            "amqp_client.connection.blocked.time",
            unit="s",
            description="Time the broker kept connections blocked "
            "(connection.blocked to connection.unblocked).",
        )
        #: Live connections whose delivery buffers the gauge reports.
        self.buffers: weakref.WeakSet[Telemetry] = weakref.WeakSet()
        meter.create_observable_up_down_counter(
            "amqp_client.delivery_buffer.size",
            callbacks=[self._observe_buffers],
            unit="By",
            description="Bytes of message bodies received and not yet handed "
            "to the application.",
        )

    def watch(self, telemetry: Telemetry, watched: bool) -> None:
        """Report (or stop reporting) a connection's delivery buffer."""
        with _LOCK:
            if watched:
                self.buffers.add(telemetry)
            else:
                self.buffers.discard(telemetry)

    def _observe_buffers(
        self, options: metrics.CallbackOptions
    ) -> Iterator[metrics.Observation]:
        # Called on the metric reader's thread; connections come and go on
        # others (the blocking front's).
        with _LOCK:
            watched = list(self.buffers)
        for telemetry in watched:
            yield metrics.Observation(telemetry.buffered_bytes(), telemetry.base)


_INSTRUMENTS: weakref.WeakKeyDictionary[object, _Instruments] = (
    weakref.WeakKeyDictionary()
)
#: Guards _INSTRUMENTS and each _Instruments.buffers (connections are made
#: and closed on any thread).
_LOCK = threading.Lock()


def _instruments(provider: metrics.MeterProvider) -> _Instruments:
    with _LOCK:
        found = _INSTRUMENTS.get(provider)
        if found is None:
            meter = provider.get_meter(SCOPE, __version__, schema_url=SCHEMA_URL)
            found = _INSTRUMENTS[provider] = _Instruments(meter)
        return found


def _error_type(error: BaseException) -> str:
    return type(error).__qualname__


class Telemetry:
    """One connection's telemetry.

    Args:
        tracer_provider: None for the global one.
        meter_provider: None for the global one.
        buffered_bytes: reads the connection's delivery-buffer bytes.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        buffered_bytes: Callable[[], int],
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.buffered_bytes = buffered_bytes
        #: True: record; False: never (a no-op provider); None: the global
        #: proxy, live once the application sets a global provider.
        self._tracing: bool | None = None
        self._metering: bool | None = None
        self._tracer: trace.Tracer | None = None
        self._instr: _Instruments | None = None
        self._next_check = 0.0
        #: Attributes every span and metric point carries.
        self.base: dict[str, Any] = {"messaging.system": _SYSTEM}
        self._blocked_since: float | None = None
        self.active()

    def __repr__(self) -> str:
        return f"<Telemetry tracing={self._tracing} metering={self._metering}>"

    # --- are traces and metrics recorded? ------------------------------------------------

    def active(self) -> bool:
        """Spans or metrics are recorded. A global provider still unset
        (the API's proxy: no SDK configured) is looked at again at most
        once a second, so this stays a few attribute reads per call."""
        tracing, metering = self._tracing, self._metering
        if tracing is None or metering is None:
            now = time.monotonic()
            if now >= self._next_check:
                self._next_check = now + _RECHECK
                self._resolve()
                tracing, metering = self._tracing, self._metering
        return bool(tracing or metering)

    def wants_publish(self) -> bool:
        """A publish has something to record, or a context to pass on (the
        hot path when no SDK is configured: kept to a few reads)."""
        if self._tracing or self._metering:
            return True
        if (
            (self._tracing is None or self._metering is None)
            and time.monotonic() >= self._next_check
            and self.active()
        ):
            return True
        return bool(_current_context())

    def tracer(self) -> trace.Tracer | None:
        """The tracer, or None while nothing records spans."""
        return self._tracer if self._tracing else None

    def instruments(self) -> _Instruments | None:
        """The instruments, or None while nothing records metrics."""
        return self._instr if self._metering else None

    def _resolve(self) -> None:
        """Decide, for each provider not decided yet, whether it records."""
        if self._tracing is None:
            tracer_provider = self._tracer_provider
            if tracer_provider is None:
                tracer_provider = trace.get_tracer_provider()
            if not _is_proxy_tracer_provider(tracer_provider):
                self._tracing = not isinstance(
                    tracer_provider, trace.NoOpTracerProvider
                )
                if self._tracing:
                    self._tracer = tracer_provider.get_tracer(
                        SCOPE, __version__, schema_url=SCHEMA_URL
                    )
        if self._metering is None:
            meter_provider = self._meter_provider
            if meter_provider is None:
                meter_provider = metrics.get_meter_provider()
            if not _is_proxy_meter_provider(meter_provider):
                self._metering = not isinstance(
                    meter_provider, metrics.NoOpMeterProvider
                )
                if self._metering:
                    self._instr = _instruments(meter_provider)
                    self._instr.watch(self, True)

    def set_server(self, host: str, port: int) -> None:
        """The broker of the current connection attempt."""
        self.base = {
            "messaging.system": _SYSTEM,
            "server.address": host,
            "server.port": port,
        }

    def closed(self) -> None:
        """The connection is over: its buffer is no longer reported."""
        if self._instr is not None:
            self._instr.watch(self, False)

    # --- publishing ----------------------------------------------------------------------

    def publish_start(
        self,
        body_size: int,
        properties: BasicProperties | None,
        exchange: str,
        routing_key: str,
    ) -> tuple[BasicProperties | None, PublishTrace | None]:
        """A publish is about to be written: its span (if spans are
        recorded) and the properties with the trace context in the headers.
        (None for the trace when nothing is recorded.)"""
        tracer = self.tracer()
        instruments = self.instruments()
        if tracer is None:
            # Nothing records spans: pass on what the caller's context
            # holds (a remote parent, baggage), if anything.
            if otel_context.get_current():
                properties = _inject(properties, None)
            if instruments is None:
                return properties, None
            return properties, PublishTrace(None, time.monotonic())
        attributes = dict(self.base)
        attributes["messaging.operation.name"] = "publish"
        attributes["messaging.operation.type"] = "send"
        attributes["messaging.destination.name"] = _publish_destination(
            exchange, routing_key
        )
        if routing_key:
            attributes["messaging.rabbitmq.destination.routing_key"] = routing_key
        if properties is not None:
            if properties.message_id:
                attributes["messaging.message.id"] = properties.message_id
            if properties.correlation_id:
                attributes["messaging.message.conversation_id"] = (
                    properties.correlation_id
                )
        attributes["messaging.message.body.size"] = body_size
        span = tracer.start_span(
            f"publish {exchange or 'amq.default'}",
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        )
        properties = _inject(properties, trace.set_span_in_context(span))
        return properties, PublishTrace(span, time.monotonic())

    def publish_failed(self, record: PublishTrace, error: BaseException) -> None:
        """The publish raised before it was written."""
        span = record.span
        if span is not None:
            span.record_exception(error)
            span.set_attribute("error.type", _error_type(error))
            span.set_status(Status(StatusCode.ERROR, str(error)))
            span.end()

    def publish_written(self, record: PublishTrace, confirming: bool) -> None:
        """The frames are handed over; without confirms the publish is done."""
        instruments = self._instr if self._metering else None
        if instruments is not None:
            attributes = self._metric_attributes()
            record.attributes = attributes
            instruments.sent.add(1, attributes)
        if not confirming:
            self._publish_done(record, None, None)

    def publish_confirmed(
        self, record: PublishTrace, acked: bool, returned: ReturnedMessage | None
    ) -> None:
        """The broker acked or nacked the publish (``returned``: the
        ReturnedMessage that came back before its ack)."""
        outcome = "returned" if returned is not None else "ack" if acked else "nack"
        error = None
        if returned is not None:
            error = "MessageReturned"
        elif not acked:
            error = "MessageNacked"
        span = record.span
        if span is not None:
            span.set_attribute(OUTCOME, outcome)
            if returned is not None:
                span.set_attribute(
                    "amqp_client.return.reply_code", int(returned.reply_code)
                )
        self._publish_done(record, outcome, error)

    def publish_lost(self, record: PublishTrace, error: BaseException) -> None:
        """The channel or connection ended before the confirm."""
        span = record.span
        if span is not None:
            span.record_exception(error)
        self._publish_done(record, None, _error_type(error), str(error))

    def _publish_done(
        self,
        record: PublishTrace,
        outcome: str | None,
        error: str | None,
        description: str | None = None,
    ) -> None:
        span = record.span
        if span is not None:
            if error is not None:
                span.set_attribute("error.type", error)
                span.set_status(Status(StatusCode.ERROR, description or error))
            span.end()
        instruments = self._instr if self._metering else None
        if instruments is not None:
            attributes = record.attributes or self._metric_attributes()
            attributes = dict(attributes)
            if error is not None:
                attributes["error.type"] = error
            instruments.operation.record(time.monotonic() - record.start, attributes)

    def _metric_attributes(self) -> dict[str, Any]:
        attributes = dict(self.base)
        attributes["messaging.operation.name"] = "publish"
        attributes["messaging.operation.type"] = "send"
        return attributes

    # --- consuming ---------------------------------------------------------------------

    def delivered(
        self, properties: BasicProperties, queue: str, pulled: bool
    ) -> DeliveryTrace | None:
        """A delivery arrived (basic.deliver, or basic.get-ok if ``pulled``):
        what it carries for its processing span, None when nothing is
        recorded."""
        if not self.active():
            return None
        tracer = self.tracer()
        instruments = self.instruments()
        if instruments is not None:
            attributes = dict(self.base)
            attributes["messaging.operation.name"] = "get" if pulled else "consume"
            instruments.consumed.add(1, attributes)
        context = None
        headers = properties.headers
        if headers and tracer is not None:
            propagator = propagate.get_global_textmap()
            if any(field in headers for field in propagator.fields):
                context = propagator.extract(headers, otel_context.Context(), _GETTER)
        return DeliveryTrace(self, context, queue)

    @contextmanager
    def processing(
        self, delivery: DeliveryData, trace_record: DeliveryTrace
    ) -> Iterator[trace.Span | None]:
        """Run the block as the processing of ``delivery``: a CONSUMER span
        (current inside the block) and ``messaging.process.duration``. An
        exception is recorded on the span (error status, ``error.type``)
        and propagates."""
        tracer = self.tracer()
        instruments = self.instruments()
        queue = trace_record.queue
        attributes = dict(self.base)
        attributes["messaging.operation.name"] = "process"
        attributes["messaging.operation.type"] = "process"
        start = time.monotonic()
        error: BaseException | None = None
        if tracer is None:
            try:
                yield None
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._processed(instruments, attributes, start, error)
            return
        metric_attributes = dict(attributes)
        attributes["messaging.destination.name"] = _consume_destination(
            delivery.exchange, delivery.routing_key, queue
        )
        if delivery.routing_key:
            attributes["messaging.rabbitmq.destination.routing_key"] = (
                delivery.routing_key
            )
        attributes["messaging.rabbitmq.message.delivery_tag"] = delivery.delivery_tag
        properties = delivery.properties
        if properties.message_id:
            attributes["messaging.message.id"] = properties.message_id
        if properties.correlation_id:
            attributes["messaging.message.conversation_id"] = properties.correlation_id
        attributes["messaging.message.body.size"] = len(delivery.body)
        anonymous = queue.startswith("amq.gen-")
        if anonymous:
            attributes["messaging.destination.anonymous"] = True
        name = "process" if anonymous or not queue else f"process {queue}"
        links: list[Link] = []
        parent = trace_record.context
        if parent is not None:
            creation = trace.get_current_span(parent).get_span_context()
            if creation.is_valid:
                links.append(Link(creation))
            else:
                parent = None
        ambient = trace.get_current_span().get_span_context()
        if ambient.is_valid and parent is not None:
            links.append(Link(ambient))
        span = tracer.start_span(
            name,
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
        )
        try:
            with trace.use_span(
                span,
                end_on_exit=False,
                record_exception=False,
                set_status_on_exception=False,
            ):
                yield span
        except BaseException as exc:
            error = exc
            span.record_exception(exc)
            span.set_attribute("error.type", _error_type(exc))
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            raise
        finally:
            span.end()
            self._processed(instruments, metric_attributes, start, error)

    def _processed(
        self,
        instruments: _Instruments | None,
        attributes: dict[str, Any],
        start: float,
        error: BaseException | None,
    ) -> None:
        if instruments is None:
            return
        if error is not None:
            attributes["error.type"] = _error_type(error)
        instruments.process.record(time.monotonic() - start, attributes)

    # --- the connection ------------------------------------------------------------------

    def recovered(self) -> None:
        self.active()
        instruments = self.instruments()
        if instruments is not None:
            instruments.recoveries.add(1, self.base)

    def blocked(self, now: float) -> None:
        if self._blocked_since is None:
            self._blocked_since = now

    def unblocked(self, now: float) -> None:
        since = self._blocked_since
        if since is None:
            return
        self._blocked_since = None
        self.active()
        instruments = self.instruments()
        if instruments is not None:
            instruments.blocked.add(max(0.0, now - since), self.base)


def _inject(
    properties: BasicProperties | None, context: otel_context.Context | None
) -> BasicProperties | None:
    """``properties`` with the context's propagation fields added to a copy
    of its headers; a header the application set is kept as it is. The
    caller's objects are never changed."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    if not carrier:
        return properties
    if properties is None:
        return BasicProperties(headers=carrier)
    headers: MutableMapping[str, Any] = dict(properties.headers or {})
    for key, value in carrier.items():
        headers.setdefault(key, value)
    copied = copy.copy(properties)
    copied.headers = dict(headers)
    return copied
