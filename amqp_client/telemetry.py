"""Whether a connection reports to OpenTelemetry, decided at ``connect()``.

With ``opentelemetry-api`` installed (the ``otel`` extra) a connection
reports spans and metrics to the global tracer and meter providers (which
record nothing until the application configures an SDK), or to the
``tracer_provider=`` / ``meter_provider=`` given to ``connect()``;
``telemetry=False`` turns it off. Without the package nothing is imported:
this module imports ``opentelemetry`` (through ``amqp_client._otel``) only
when a connection with telemetry on is made, and a connection without
telemetry pays one ``is None`` check per publish and per delivery.

What is recorded, and after which version of the semantic conventions:
see ``amqp_client._otel``.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from amqp_client._delivery import DeliveryData, trace_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

    from amqp_client._otel import Telemetry

__all__ = ["check_telemetry", "make_telemetry", "processing"]

_log = logging.getLogger("amqp_client")

#: Whether ``opentelemetry-api`` could be imported (None: not tried yet).
_available: bool | None = None


def check_telemetry(
    telemetry: object, tracer_provider: object, meter_provider: object
) -> None:
    """Check ``connect()``'s telemetry keywords (before any I/O).

    Raises:
        TypeError: ``telemetry`` is not a bool, or a provider is not one.
    """
    if not isinstance(telemetry, bool):
        raise TypeError(f"telemetry: expected bool, got {type(telemetry).__name__}")
    for name, provider, method in (
        ("tracer_provider", tracer_provider, "get_tracer"),
        ("meter_provider", meter_provider, "get_meter"),
    ):
        if provider is not None and not callable(getattr(provider, method, None)):
            raise TypeError(
                f"{name}: expected an OpenTelemetry provider with {method}(), "
                f"got {type(provider).__name__}"
            )


def make_telemetry(
    enabled: bool,
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None,
    buffered_bytes: Callable[[], int],
) -> Telemetry | None:
    """A connection's telemetry: None when it is off or ``opentelemetry-api``
    is not installed (then nothing of it is imported)."""
    global _available
    if not enabled or _available is False:
        return None
    try:
        from amqp_client import _otel
    except ImportError:
        _available = False
        _log.debug("opentelemetry-api is not installed: no telemetry")
        return None
    _available = True
    return _otel.Telemetry(tracer_provider, meter_provider, buffered_bytes)


def processing(delivery: DeliveryData) -> AbstractContextManager[Span | None]:
    """Run a block as the processing of ``delivery``: ``with
    processing(delivery): handle(delivery)``.

    Inside, a CONSUMER span ``process <queue>`` is current (a child of the
    span that published the message, when its headers carried one) and is
    what the context manager gives (None when no spans are recorded); on
    exit ``messaging.process.duration`` is recorded. An exception escaping
    the block marks the span as failed (``error.type``) and propagates.
    With telemetry off, not installed or no SDK configured, it does nothing.

    ``Delivery.process()`` and the consumer callbacks run each delivery in
    it; call it directly to trace processing done some other way.
    """
    record = trace_of(delivery)
    if record is None:
        return nullcontext()
    return record.telemetry.processing(delivery, record)
