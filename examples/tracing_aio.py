"""OpenTelemetry, built in (asyncio): one trace from publisher to consumer.

With ``opentelemetry-api`` installed (``pip install 'amqp-client[otel]'``)
the client reports to the global tracer and meter providers; this program
configures the SDK (``opentelemetry-sdk``) as an application would, with a
console exporter printing one line per span. It publishes three orders with
confirms under a "checkout" span, consumes them and processes each inside
``amqp_client.telemetry.processing(delivery)``: the CONSUMER span
``process <queue>`` is a child of the PRODUCER span ``publish amq.default``,
whose context travelled in the message's ``traceparent`` header. Then it
reads the messaging metrics, checks what it shows, deletes its queue and
exits (1 if a check failed).

``connect(telemetry=False)`` turns all of it off; ``tracer_provider=`` and
``meter_provider=`` report to providers other than the global ones.

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/tracing_aio.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

import amqp_client
from amqp_client.telemetry import processing

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
ORDERS = 3
#: The longest any single step may wait for the broker, seconds.
TIMEOUT = 10


def one_line(span: ReadableSpan) -> str:
    parent = f"{span.parent.span_id:016x}" if span.parent else "-" * 16
    return (
        f"span {span.name!r:32} trace {span.context.trace_id:032x} "
        f"id {span.context.span_id:016x} parent {parent}\n"
    )


def setup() -> tuple[InMemorySpanExporter, InMemoryMetricReader]:
    """The application's own OpenTelemetry setup (global providers)."""
    kept = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line))
    )
    tracer_provider.add_span_processor(SimpleSpanProcessor(kept))
    trace.set_tracer_provider(tracer_provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return kept, reader


def total(reader: InMemoryMetricReader, name: str) -> float:
    """The sum of a counter's points (the count of a histogram's)."""
    data = reader.get_metrics_data()
    found: float = 0
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        if isinstance(point, NumberDataPoint):
                            found += point.value
                        else:
                            found += point.count
    return found


async def main() -> int:
    spans, reader = setup()
    tracer = trace.get_tracer("example shop")
    queue = f"amqp-client-example.orders.{uuid.uuid4().hex[:8]}"
    async with amqp_client.connect(URL, connection_timeout=TIMEOUT) as conn:
        ch = await conn.channel(timeout=TIMEOUT)
        await ch.queue_declare(queue, exclusive=True, timeout=TIMEOUT)
        await ch.confirm_select(timeout=TIMEOUT)
        with tracer.start_as_current_span("checkout"):
            for n in range(ORDERS):
                confirmation = await ch.basic_publish(
                    b"order %d" % n,
                    routing_key=queue,
                    properties=amqp_client.BasicProperties(message_id=f"order-{n}"),
                )
                assert confirmation is not None  # confirm mode
                await asyncio.wait_for(confirmation, TIMEOUT)
        async with await ch.basic_consume(queue, timeout=TIMEOUT) as consumer:
            for _ in range(ORDERS):
                delivery = await asyncio.wait_for(anext(consumer), TIMEOUT)
                with processing(delivery):
                    # The application's work: its spans join the same trace.
                    with tracer.start_as_current_span("charge card"):
                        pass
                    await delivery.ack()
        await ch.queue_delete(queue, timeout=TIMEOUT)

    finished = spans.get_finished_spans()
    by_id = {span.context.span_id: span for span in finished}
    processed = [s for s in finished if s.name == f"process {queue}"]
    (checkout,) = [s for s in finished if s.name == "checkout"]
    ok = len(processed) == ORDERS
    for span in processed:
        publish = by_id.get(span.parent.span_id) if span.parent else None
        ok = ok and publish is not None and publish.name == "publish amq.default"
        ok = ok and span.context.trace_id == checkout.context.trace_id
    sent = total(reader, "messaging.client.sent.messages")
    consumed = total(reader, "messaging.client.consumed.messages")
    print(f"metrics: {sent} sent, {consumed} consumed")
    if not ok or sent != ORDERS or consumed != ORDERS:
        print(
            "a processing span did not continue its publisher's trace", file=sys.stderr
        )
        return 1
    print("every processing span continued its publisher's trace")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
