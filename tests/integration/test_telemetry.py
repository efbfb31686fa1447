"""Built-in OpenTelemetry, through the real broker, both fronts.

Each test gives the connection its own SDK tracer and meter providers
(``tracer_provider=`` / ``meter_provider=``) with an in-memory span
exporter and metric reader; the global providers, which can be set only
once per process, are never touched.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

import amqp_client
from amqp_client.telemetry import processing
from tests.integration.helpers import (
    STEP,
    Front,
    amqp_url,
    broker_address,
    first_call,
    next_delivery,
    resources,
    within,
)
from tests.support.proxy import Proxy

pytestmark = pytest.mark.integration


@dataclass
class Otel:
    """An SDK tracer and meter provider that keep what they record."""

    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def keywords(self) -> dict[str, Any]:
        return {
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
        }

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        spans = list(self.spans.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def metric(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, value or count) of each point of metric ``name``."""
        data = self.reader.get_metrics_data()
        points: list[tuple[dict[str, Any], Any]] = []
        if data is None:
            return points
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:
                            value = getattr(point, "count", None)
                        points.append((dict(point.attributes or {}), value))
        return points

    def total(self, name: str) -> Any:
        return sum(value for _, value in self.metric(name))


@pytest.fixture
def otel() -> Iterator[Otel]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Otel(spans, reader, tracer_provider, meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def _plain(delivery: Any) -> Any:
    """The client's own Delivery (the blocking front's is seen through a view)."""
    return getattr(delivery, "_target", delivery)


def test_one_trace_from_publish_to_processing(front: Front, otel: Otel) -> None:
    async def scenario(front: Front) -> None:
        async with resources(front) as res:
            queue = res.queue()
            async with front.connect(**otel.keywords()) as conn:
                ch = await within(conn.channel())
                await within(ch.queue_declare(queue))
                await within(ch.confirm_select())
                tracer = otel.tracer_provider.get_tracer("the application")
                with tracer.start_as_current_span("user work"):
                    confirmation = await within(
                        ch.basic_publish(
                            b"hello",
                            routing_key=queue,
                            properties=amqp_client.BasicProperties(
                                message_id="m-1", correlation_id="c-1"
                            ),
                        )
                    )
                    await within(confirmation)
                consumer = await within(ch.basic_consume(queue))
                delivery = await next_delivery(consumer)
                assert _plain(delivery).trace_context is not None
                with processing(_plain(delivery)) as span:
                    assert span is not None and span.is_recording()
                    await within(delivery.ack())
                await within(consumer.cancel())

        (user,) = otel.finished("user work")
        (publish,) = otel.finished("publish amq.default")
        (process,) = otel.finished(f"process {queue}")
        trace_id = user.context.trace_id
        assert publish.context.trace_id == trace_id
        assert process.context.trace_id == trace_id  # one trace across the broker
        assert publish.parent is not None
        assert publish.parent.span_id == user.context.span_id
        assert process.parent is not None
        assert process.parent.span_id == publish.context.span_id
        assert [link.context.span_id for link in process.links] == [
            publish.context.span_id
        ]
        assert publish.kind is SpanKind.PRODUCER
        assert process.kind is SpanKind.CONSUMER
        attrs = dict(publish.attributes or {})
        assert attrs["messaging.system"] == "rabbitmq"
        assert attrs["messaging.operation.type"] == "send"
        assert attrs["messaging.operation.name"] == "publish"
        assert attrs["messaging.destination.name"] == queue
        assert attrs["messaging.rabbitmq.destination.routing_key"] == queue
        assert attrs["messaging.message.id"] == "m-1"
        assert attrs["messaging.message.conversation_id"] == "c-1"
        assert attrs["messaging.message.body.size"] == 5
        assert attrs["server.address"] == "127.0.0.1"
        assert isinstance(attrs["server.port"], int)
        assert attrs["amqp_client.confirm.outcome"] == "ack"
        assert publish.status.status_code is StatusCode.UNSET
        attrs = dict(process.attributes or {})
        assert attrs["messaging.operation.type"] == "process"
        assert attrs["messaging.destination.name"] == queue
        assert attrs["messaging.message.id"] == "m-1"
        assert attrs["messaging.rabbitmq.message.delivery_tag"] == 1

    front.run(scenario)


def test_returned_publish_ends_its_span_with_an_error(front: Front, otel: Otel) -> None:
    async def scenario(front: Front) -> None:
        async with front.connect(**otel.keywords()) as conn:
            ch = await within(conn.channel())
            await within(ch.confirm_select())
            exchange = "amq.direct"
            confirmation = await within(
                ch.basic_publish(
                    b"x", exchange=exchange, routing_key="nowhere", mandatory=True
                )
            )
            with pytest.raises(amqp_client.MessageReturned):
                await within(confirmation)

        (span,) = otel.finished("publish amq.direct")
        attrs = dict(span.attributes or {})
        assert attrs["amqp_client.confirm.outcome"] == "returned"
        assert attrs["amqp_client.return.reply_code"] == 312
        assert attrs["error.type"] == "MessageReturned"
        assert attrs["messaging.destination.name"] == "amq.direct:nowhere"
        assert span.status.status_code is StatusCode.ERROR
        (point,) = otel.metric("messaging.client.operation.duration")
        assert point[0]["error.type"] == "MessageReturned"
        assert point[1] == 1

    front.run(scenario)


def test_headers_injected_and_a_users_own_kept(front: Front, otel: Otel) -> None:
    mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    async def scenario(front: Front) -> None:
        async with resources(front) as res:
            queue = res.queue()
            async with front.connect(**otel.keywords()) as conn:
                ch = await within(conn.channel())
                await within(ch.queue_declare(queue))
                headers = {"traceparent": mine, "app": "kept"}
                properties = amqp_client.BasicProperties(headers=headers)
                await within(ch.basic_publish(b"1", routing_key=queue))
                await within(
                    ch.basic_publish(b"2", routing_key=queue, properties=properties)
                )
                # The application's objects are not changed.
                assert headers == {"traceparent": mine, "app": "kept"}
                assert properties.headers is headers
                consumer = await within(ch.basic_consume(queue, no_ack=True))
                first = await next_delivery(consumer)
                second = await next_delivery(consumer)
                await within(consumer.cancel())

        spans = otel.finished("publish amq.default")
        assert len(spans) == 2  # no confirms: each ended once written
        assert all(
            "amqp_client.confirm.outcome" not in (s.attributes or {}) for s in spans
        )
        injected = first.properties.headers["traceparent"]
        assert f"{spans[0].context.trace_id:032x}" in injected
        assert second.properties.headers == {"traceparent": mine, "app": "kept"}

    front.run(scenario)


def test_counters_match_messages_sent_and_consumed(front: Front, otel: Otel) -> None:
    count = 7

    async def scenario(front: Front) -> None:
        async with resources(front) as res:
            queue = res.queue()
            async with front.connect(**otel.keywords()) as conn:
                ch = await within(conn.channel())
                await within(ch.queue_declare(queue))
                for i in range(count):
                    await within(ch.basic_publish(b"%d" % i, routing_key=queue))
                consumer = await within(ch.basic_consume(queue))
                for _ in range(count):
                    delivery = await next_delivery(consumer)
                    with processing(_plain(delivery)):
                        await within(delivery.ack())
                await within(consumer.cancel())
                got = await within(ch.basic_get(queue))
                assert got is None

        assert otel.total("messaging.client.sent.messages") == count
        assert otel.total("messaging.client.consumed.messages") == count
        assert otel.total("messaging.process.duration") == count
        assert otel.total("messaging.client.operation.duration") == count
        ((attrs, _),) = otel.metric("messaging.client.consumed.messages")
        assert attrs["messaging.operation.name"] == "consume"
        assert attrs["messaging.system"] == "rabbitmq"
        assert len(otel.finished(f"process {queue}")) == count

    front.run(scenario)


def test_failed_processing_marks_the_span(front: Front, otel: Otel) -> None:
    async def scenario(front: Front) -> None:
        async with resources(front) as res:
            queue = res.queue()
            async with front.connect(**otel.keywords()) as conn:
                ch = await within(conn.channel())
                await within(ch.queue_declare(queue))
                await within(ch.basic_publish(b"bad", routing_key=queue))
                delivery = await within(ch.basic_get(queue, no_ack=True))
                assert delivery is not None
                with pytest.raises(KeyError), processing(_plain(delivery)):
                    raise KeyError("boom")

        (span,) = otel.finished(f"process {queue}")
        assert span.status.status_code is StatusCode.ERROR
        assert dict(span.attributes or {})["error.type"] == "KeyError"
        (point,) = otel.metric("messaging.process.duration")
        assert point[0]["error.type"] == "KeyError"
        ((attrs, _),) = otel.metric("messaging.client.consumed.messages")
        assert attrs["messaging.operation.name"] == "get"

    front.run(scenario)


def test_telemetry_false_records_nothing(front: Front, otel: Otel) -> None:
    async def scenario(front: Front) -> None:
        async with resources(front) as res:
            queue = res.queue()
            async with front.connect(telemetry=False, **otel.keywords()) as conn:
                ch = await within(conn.channel())
                await within(ch.queue_declare(queue))
                await within(ch.confirm_select())
                tracer = otel.tracer_provider.get_tracer("the application")
                with tracer.start_as_current_span("user work"):
                    await within(
                        await within(ch.basic_publish(b"x", routing_key=queue))
                    )
                delivery = await within(ch.basic_get(queue, no_ack=True))
                assert delivery is not None
                assert delivery.properties.headers is None  # nothing injected
                assert _plain(delivery).trace_context is None
                with processing(_plain(delivery)) as span:
                    assert span is None

        assert [s.name for s in otel.finished()] == ["user work"]
        assert otel.reader.get_metrics_data() is None or not otel.metric(
            "messaging.client.sent.messages"
        )

    front.run(scenario)


def test_recovery_counted_and_unconfirmed_spans_ended(front: Front, otel: Otel) -> None:
    async def scenario(front: Front, proxy: Proxy) -> None:
        async with front.connect(
            proxy.url(amqp_url()), recover=True, recovery_delay=0.05, **otel.keywords()
        ) as conn:
            recovered = asyncio.get_running_loop().create_future()
            conn.add_on_recovered_callback(first_call(recovered))
            ch = await within(conn.channel())
            await within(ch.confirm_select())
            proxy.stall()
            confirmation = await within(ch.basic_publish(b"x", routing_key="nowhere"))
            proxy.cut(rst=True)
            with pytest.raises(amqp_client.ConnectionLost):
                await within(confirmation)
            proxy.resume()
            await within(recovered, STEP)

        (span,) = otel.finished("publish amq.default")
        assert span.status.status_code is StatusCode.ERROR
        assert dict(span.attributes or {})["error.type"] == "ConnectionLost"
        assert otel.total("amqp_client.connection.recoveries") == 1

    with Proxy(broker_address()) as proxy:
        front.run(scenario, proxy)


def test_without_the_package_nothing_is_imported() -> None:
    # opentelemetry made unimportable: the client works, imports none of it
    # and has no telemetry.
    program = textwrap.dedent(
        """
        import sys

        class Blocker:
            tried = []

            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    self.tried.append(name)
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, Blocker())
        import asyncio
        import amqp_client
        from amqp_client import blocking

        url = sys.argv[1]
        with blocking.connect(url) as conn:
            assert conn._session.telemetry is None
            ch = conn.channel()
            ok = ch.queue_declare("", exclusive=True)
            ch.basic_publish(b"x", routing_key=ok.queue)
            assert ch.basic_get(ok.queue, no_ack=True).body == b"x"

        async def main():
            async with amqp_client.connect(url) as conn:
                assert conn._session.telemetry is None
                ch = await conn.channel()
                ok = await ch.queue_declare("", exclusive=True)
                await ch.basic_publish(b"y", routing_key=ok.queue)
                got = await ch.basic_get(ok.queue, no_ack=True)
                assert got.body == b"y" and got.trace_context is None

        asyncio.run(main())
        loaded = [m for m in sys.modules if m.split(".")[0] == "opentelemetry"]
        assert not loaded, loaded
        assert "amqp_client._otel" not in sys.modules
        print("ok", len(Blocker.tried))
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", program, amqp_url()],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok"), done.stdout
    assert done.stderr == ""
