"""amqp_client.telemetry and amqp_client._otel without a broker: the
connect() keywords, header injection, naming, the no-SDK fast path and the
client's own connection metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import amqp_client
from amqp_client import BasicProperties, _otel, blocking
from amqp_client.session.connect import parse_connect


@pytest.fixture
def meter() -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield provider, reader
    provider.shutdown()


def _points(
    reader: InMemoryMetricReader, name: str
) -> list[tuple[dict[str, Any], Any]]:
    data = reader.get_metrics_data()
    found: list[tuple[dict[str, Any], Any]] = []
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        found.append(
                            (
                                dict(point.attributes or {}),
                                getattr(point, "value", None),
                            )
                        )
    return found


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"telemetry": "yes"}, "telemetry: expected bool"),
        ({"telemetry": 1}, "telemetry: expected bool"),
        ({"tracer_provider": object()}, "tracer_provider: expected"),
        ({"meter_provider": "global"}, "meter_provider: expected"),
    ],
)
def test_bad_telemetry_keywords_fail_before_io(
    keywords: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        parse_connect("amqp://", keywords)  # type: ignore[arg-type]  # wrong on purpose
    with pytest.raises(TypeError, match=message):
        amqp_client.connect("amqp://127.0.0.1:1", **keywords)
    with pytest.raises(TypeError, match=message):
        blocking.connect("amqp://127.0.0.1:1", **keywords)


def test_telemetry_keywords_reach_the_options() -> None:
    tracer_provider = TracerProvider()
    _, options = parse_connect(
        "amqp://", {"telemetry": False, "tracer_provider": tracer_provider}
    )
    assert options.telemetry is False
    assert options.tracer_provider is tracer_provider
    assert options.meter_provider is None
    _, options = parse_connect("amqp://", {})
    assert options.telemetry is True


def test_injected_into_a_copy_and_a_users_header_kept() -> None:
    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("s")
    context = trace.set_span_in_context(span)
    headers = {"traceparent": "mine", "x": 1}
    properties = BasicProperties(headers=headers, message_id="m")
    injected = _otel._inject(properties, context)
    assert injected is not properties
    assert injected is not None and injected.headers == {"traceparent": "mine", "x": 1}
    assert injected.message_id == "m"
    assert properties.headers is headers and headers == {"traceparent": "mine", "x": 1}
    fresh = _otel._inject(BasicProperties(content_type="a/b"), context)
    assert fresh is not None and fresh.content_type == "a/b"
    assert fresh.headers is not None
    assert fresh.headers["traceparent"].startswith("00-")
    only = _otel._inject(None, context)
    assert only is not None and set(only.headers or {}) == {"traceparent"}
    # An empty context has nothing to propagate: nothing is copied.
    assert _otel._inject(properties, trace.set_span_in_context(trace.INVALID_SPAN)) is (
        properties
    )
    span.end()
    provider.shutdown()


@pytest.mark.parametrize(
    ("exchange", "routing_key", "name"),
    [
        ("logs", "warn", "logs:warn"),
        ("logs", "", "logs"),
        ("", "tasks", "tasks"),
        ("", "", "amq.default"),
    ],
)
def test_publish_destination(exchange: str, routing_key: str, name: str) -> None:
    assert _otel._publish_destination(exchange, routing_key) == name


@pytest.mark.parametrize(
    ("exchange", "routing_key", "queue", "name"),
    [
        ("logs", "warn", "q", "logs:warn:q"),
        ("", "tasks", "tasks", "tasks"),
        ("logs", "", "q", "logs:q"),
        ("", "", "", "amq.default"),
    ],
)
def test_consume_destination(
    exchange: str, routing_key: str, queue: str, name: str
) -> None:
    assert _otel._consume_destination(exchange, routing_key, queue) == name


def test_no_sdk_no_work() -> None:
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        pytest.skip("a global tracer provider was set in this process")
    telemetry = _otel.Telemetry(None, None, lambda: 0)
    assert telemetry.tracer() is None
    assert telemetry.instruments() is None
    assert not telemetry.active()
    properties = BasicProperties(message_id="m")
    assert telemetry.publish_start(3, properties, "", "q") == (properties, None)
    assert telemetry.delivered(properties, "q", False) is None


def test_no_op_providers_record_nothing() -> None:
    telemetry = _otel.Telemetry(
        trace.NoOpTracerProvider(), NoOpMeterProvider(), lambda: 0
    )
    assert telemetry.tracer() is None
    assert telemetry.instruments() is None


def test_blocked_time_counted(
    meter: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    provider, reader = meter
    telemetry = _otel.Telemetry(None, provider, lambda: 0)
    telemetry.set_server("broker", 5672)
    telemetry.unblocked(5.0)  # not blocked: nothing
    telemetry.blocked(10.0)
    telemetry.blocked(11.0)  # still the same block
    telemetry.unblocked(12.5)
    telemetry.unblocked(20.0)
    ((attributes, value),) = _points(reader, "amqp_client.connection.blocked.time")
    assert value == pytest.approx(2.5)
    assert attributes == {
        "messaging.system": "rabbitmq",
        "server.address": "broker",
        "server.port": 5672,
    }


def test_delivery_buffer_observed_while_open(
    meter: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    provider, reader = meter
    size = [123]
    telemetry = _otel.Telemetry(None, provider, lambda: size[0])
    assert telemetry.instruments() is not None
    ((_, value),) = _points(reader, "amqp_client.delivery_buffer.size")
    assert value == 123
    # A second connection on the same provider shares the instruments.
    other = _otel.Telemetry(None, provider, lambda: 7)
    other.set_server("other", 1)
    assert other.instruments() is telemetry.instruments()
    assert sorted(
        v for _, v in _points(reader, "amqp_client.delivery_buffer.size")
    ) == [
        7,
        123,
    ]
    other.closed()
    size[0] = 5
    ((_, value),) = _points(reader, "amqp_client.delivery_buffer.size")
    assert value == 5


def test_confirm_outcomes_on_the_span(
    meter: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )
    from opentelemetry.trace import StatusCode

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = _otel.Telemetry(provider, meter[0], lambda: 0)
    outcomes: dict[str, Any] = {}
    for name in ("ack", "nack", "lost", "failed"):
        properties, record = telemetry.publish_start(1, None, "x", name)
        assert record is not None and properties is not None
        if name == "failed":
            telemetry.publish_failed(record, ValueError("bad"))
            continue
        telemetry.publish_written(record, True)
        if name == "lost":
            telemetry.publish_lost(record, amqp_client.ConnectionLost("gone"))
        else:
            telemetry.publish_confirmed(record, name == "ack", None)
    for span in spans.get_finished_spans():
        attributes = dict(span.attributes or {})
        outcomes[str(attributes["messaging.rabbitmq.destination.routing_key"])] = (
            attributes.get("amqp_client.confirm.outcome"),
            attributes.get("error.type"),
            span.status.status_code,
        )
    assert outcomes == {
        "ack": ("ack", None, StatusCode.UNSET),
        "nack": ("nack", "MessageNacked", StatusCode.ERROR),
        "lost": (None, "ConnectionLost", StatusCode.ERROR),
        "failed": (None, "ValueError", StatusCode.ERROR),
    }
    provider.shutdown()


def test_processing_under_another_span_links_it() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    from amqp_client._delivery import DeliveryData, attach_trace
    from amqp_client.telemetry import processing

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = _otel.Telemetry(provider, None, lambda: 0)
    properties, record = telemetry.publish_start(1, None, "logs", "warn")
    assert properties is not None and record is not None
    telemetry.publish_written(record, False)
    delivery = DeliveryData(None, b"x", properties, 7, False, "logs", "warn", "ctag")
    arrived = telemetry.delivered(properties, "q", False)
    assert arrived is not None
    attach_trace(delivery, arrived)
    assert delivery.trace_context is not None
    with (
        provider.get_tracer("app").start_as_current_span("handler") as ambient,
        processing(delivery) as span,
    ):
        assert span is not None
        assert trace.get_current_span() is span
    by_name = {span.name: span for span in spans.get_finished_spans()}
    assert set(by_name) == {"publish logs", "process q", "handler"}
    publish, process = by_name["publish logs"], by_name["process q"]
    assert process.parent is not None
    assert process.parent.span_id == publish.context.span_id
    assert [link.context.span_id for link in process.links] == [
        publish.context.span_id,
        ambient.get_span_context().span_id,
    ]
    assert dict(process.attributes or {})["messaging.destination.name"] == (
        "logs:warn:q"
    )
    provider.shutdown()


def test_no_sdk_still_passes_a_context_on() -> None:
    # No SDK: nothing is recorded, but a context the caller runs under (a
    # remote parent, as when handling a message) still goes into the headers.
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        pytest.skip("a global tracer provider was set in this process")
    from opentelemetry import context as otel_context

    telemetry = _otel.Telemetry(None, None, lambda: 0)
    remote = trace.SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
    )
    token = otel_context.attach(
        trace.set_span_in_context(trace.NonRecordingSpan(remote))
    )
    try:
        assert telemetry.wants_publish()
        properties, record = telemetry.publish_start(1, None, "", "q")
    finally:
        otel_context.detach(token)
    assert record is None
    assert properties is not None and properties.headers == {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    }
    assert not telemetry.wants_publish()
