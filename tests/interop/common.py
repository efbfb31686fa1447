"""What the interop tests share: the login user, a message with every
property set, and queue setup/cleanup on a connection of its own."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from amqp_client import BasicProperties, blocking
from tests.integration.helpers import STEP, amqp_url

WHEN = datetime.datetime(2024, 2, 29, 12, 34, 56, tzinfo=datetime.UTC)


def login_user() -> str:
    """The user we log in as (RabbitMQ checks user_id against it)."""
    return unquote(urlsplit(amqp_url()).username or "guest")


def every_property(headers: Mapping[str, object]) -> BasicProperties:
    """A BasicProperties with all 14 fields set, ``headers`` among them."""
    return BasicProperties(
        content_type="application/octet-stream",
        content_encoding="identity",
        headers=headers,
        delivery_mode=2,
        priority=7,
        correlation_id="corr-1",
        reply_to="reply.queue",
        expiration="600000",
        message_id="msg-1",
        timestamp=WHEN,
        type="interop.client",
        user_id=login_user(),
        app_id="amqp-client-tests",
        cluster_id="cluster-a",
    )


def declare_queue(queue: str) -> None:
    with blocking.connect(amqp_url(), connection_timeout=STEP) as conn:
        ch = conn.channel(timeout=STEP)
        ch.queue_declare(queue, timeout=STEP)
        ch.close(timeout=STEP)


def delete_queues(*queues: str) -> None:
    """Cleanup on a connection of its own, whatever the test broke."""
    with blocking.connect(amqp_url(), connection_timeout=STEP) as conn:
        ch = conn.channel(timeout=STEP)
        for queue in queues:
            ch.queue_delete(queue, timeout=STEP)
        ch.close(timeout=STEP)
