"""A broker cannot make the client allocate without bound (real RabbitMQ,
both fronts): ``connect(max_message_size=...)`` refuses a message whose
content header declares more, and ends the connection with frame-error.

The message comes from another connection; it is left in the queue (the
refusing connection never acked it).
"""

from __future__ import annotations

import pytest

import amqp_client
from tests.integration.helpers import Front, resources, wait_count, within

LIMIT = 1024
BODY = b"m" * 2048


async def too_large_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as publisher:
        queue = res.queue("limits")
        pch = await within(publisher.channel())
        await within(pch.queue_declare(queue))
        await within(pch.basic_publish(BODY, routing_key=queue))
        await wait_count(publisher, queue, 1)

        conn = await within(front.connect(max_message_size=LIMIT))
        try:
            ch = await within(conn.channel())
            await within(ch.basic_consume(queue))
            error = await within(conn.closed)
            assert isinstance(error, amqp_client.FrameDecodeError), error
            assert error.reply_code == 501
            assert str(len(BODY)) in str(error), str(error)
            assert f"max_message_size ({LIMIT} bytes)" in str(error), str(error)
            assert not conn.is_open
        finally:
            await within(conn.close())
        # Unacked, so back in the queue for a consumer that can take it.
        await wait_count(publisher, queue, 1)


def test_message_over_max_message_size_ends_the_connection(front: Front) -> None:
    front.run(too_large_scenario)


async def bad_limit_scenario(
    front: Front, value: object, error: type, message: str
) -> None:
    # Port 1: nothing listens there, so a ConnectionLost would mean the
    # argument was not checked before connecting.
    url = "amqp://guest:guest@127.0.0.1:1/%2f"
    with pytest.raises(error, match=message):
        await within(front.connect(url, max_message_size=value))


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, "max_message_size: must be at least 1, got 0"),
        (True, TypeError, "max_message_size: expected int, got bool"),
        ("x", TypeError, "max_message_size: expected int, got str"),
    ],
)
def test_bad_max_message_size_is_refused_before_connecting(
    front: Front, value: object, error: type, message: str
) -> None:
    front.run(bad_limit_scenario, value, error, message)
