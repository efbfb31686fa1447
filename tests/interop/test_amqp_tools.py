"""rabbitmq-c's command-line tools (Debian's amqp-tools) and our client agree.

``make tools`` (scripts/ensure-amqp-tools.sh) installs the tools; without
them these tests fail, they do not skip.

What the tools can show (amqp-tools 0.11, checked with --help, the man pages
and by trying): ``amqp-publish`` sets content-type (-C), content-encoding
(-E), reply-to (-t), headers (-H "key: value", each a longstr) and the
delivery mode (1, or 2 with -p), and nothing else. ``amqp-get`` writes only
the body to stdout; ``amqp-consume`` feeds only the body to its command's
stdin and passes no property to it, neither as an argument nor in the
environment. So in the direction client -> tools the properties are checked
only as far as the tools see them: rabbitmq-c must decode the content header
carrying every property without an error, and hand out the exact body.
"""

from __future__ import annotations

import asyncio
import decimal
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from amqp_client import BasicProperties
from tests.integration.helpers import (
    Front,
    amqp_url,
    next_delivery,
    no_delivery,
    ready_count,
    unique,
    wait_count,
    within,
)
from tests.interop.common import WHEN, delete_queues, every_property

pytestmark = pytest.mark.integration

#: Deadline of one tool run, seconds.
TOOL_TIMEOUT = 20.0

#: More than the default frame_max (131,072 bytes), so the body travels in
#: several body frames; every byte value, NULs included.
BIG_BODY = bytes(range(256)) * 1200


def tools_url() -> str:
    """The broker of the other tests, as rabbitmq-c parses a URL (it knows
    no query string)."""
    scheme, netloc, path, _, _ = urlsplit(amqp_url())
    return urlunsplit((scheme, netloc, path, "", ""))


def tool(name: str, *args: str, stdin: bytes | None = None) -> bytes:
    """Run one amqp-tools program against the broker; return its stdout.

    Fails the test (never skips) when the program is missing, and when it
    exits non-zero or writes anything to stderr.
    """
    result = run_tool(name, *args, stdin=stdin)
    assert result.returncode == 0 and not result.stderr, (
        f"{name} {' '.join(args)}: exit {result.returncode}, "
        f"stderr {result.stderr.decode(errors='replace')!r}"
    )
    return result.stdout


def run_tool(
    name: str, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run `make tools` (scripts/ensure-amqp-tools.sh)",
            pytrace=False,
        )
    return subprocess.run(
        [path, "--url", tools_url(), *args],
        input=stdin,
        capture_output=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )


# --- amqp-publish -> our client ------------------------------------------------


def test_amqp_publish_is_read_by_client(front: Front) -> None:
    queue = unique("tools-in")
    try:
        # amqp-declare-queue prints the name it declared.
        assert tool("amqp-declare-queue", "--queue", queue) == f"{queue}\n".encode()
        tool(
            "amqp-publish",
            "--routing-key",
            queue,
            "--persistent",
            "--content-type",
            "application/json",
            "--content-encoding",
            "utf-8",
            "--reply-to",
            "replies.here",
            "--header",
            "x-trace: abc-123",
            "--header",
            "note: two words",
            "--header",
            "empty:",
            "--body",
            '{"grüße": 1}',
        )
        # The body from stdin, in several frames; no option: delivery mode 1
        # (amqp-publish always sets it), no other property.
        tool("amqp-publish", "--routing-key", queue, stdin=BIG_BODY)
        front.run(read_tool_messages, queue)
    finally:
        delete_queues(queue)


async def read_tool_messages(front: Front, queue: str) -> None:
    expected = [
        (
            '{"grüße": 1}'.encode(),
            BasicProperties(
                content_type="application/json",
                content_encoding="utf-8",
                # Header values are longstrs ("S"): we decode them to str.
                headers={"x-trace": "abc-123", "note": "two words", "empty": ""},
                delivery_mode=2,
                reply_to="replies.here",
            ),
        ),
        (BIG_BODY, BasicProperties(delivery_mode=1)),
    ]
    async with front.connect() as conn:
        ch = await within(conn.channel())
        async with await within(ch.basic_consume(queue)) as consumer:
            for body, properties in expected:
                delivery = await next_delivery(consumer)
                assert delivery.body == body
                # Equality covers all 14 properties: none is set that the
                # tool did not set.
                assert delivery.properties == properties
                assert delivery.exchange == ""
                assert delivery.routing_key == queue
                assert delivery.redelivered is False
                await within(delivery.ack())
            await no_delivery(consumer)
        assert await ready_count(conn, queue) == 0
        await within(ch.close())


# --- our client -> amqp-get and amqp-consume -------------------------------------


#: Headers of the common value types for every_property()
#: (tests/interop/test_peer_clients.py covers every type).
TOOLS_HEADERS: dict[str, object] = {
    "str": "grüße",
    "bytes": b"\x00\xff",
    "int": -5,
    "int64": 2**40,
    "bool": True,
    "float": 0.25,
    "decimal": decimal.Decimal("-3.14"),
    "datetime": WHEN,
    "table": {"nested": [1, "two", None]},
    "none": None,
}


async def publish_for_tools(
    front: Front, queue: str, bodies: list[bytes], properties: BasicProperties
) -> None:
    async with front.connect() as conn:
        ch = await within(conn.channel())
        await within(ch.queue_declare(queue))
        await within(ch.confirm_select())
        confirmations: list[Any] = [
            await within(
                ch.basic_publish(body, routing_key=queue, properties=properties)
            )
            for body in bodies
        ]
        # Every message is in the queue before a tool looks.
        await within(asyncio.gather(*confirmations))
        assert await ready_count(conn, queue) == len(bodies)
        # What the broker hands back is what we sent, all 14 properties, so
        # the tools below decode exactly this content header. (Read all,
        # stop consuming, then requeue all: they keep their order.)
        await within(ch.basic_qos(prefetch_count=len(bodies)))
        async with await within(ch.basic_consume(queue)) as consumer:
            for body in bodies:
                delivery = await next_delivery(consumer)
                assert (delivery.body, delivery.properties) == (body, properties)
        await within(delivery.nack(multiple=True, requeue=True))
        await wait_count(conn, queue, len(bodies))
        await within(ch.close())


async def queue_is_empty(front: Front, queue: str) -> None:
    async with front.connect() as conn:
        assert await ready_count(conn, queue) == 0


def test_client_message_is_read_by_amqp_get(front: Front) -> None:
    queue = unique("tools-get")
    bodies = [b"small body \x00 with a NUL", BIG_BODY]
    try:
        front.run(publish_for_tools, queue, bodies, every_property(TOOLS_HEADERS))
        for body in bodies:
            # amqp-get takes one message (no-ack) and writes its body only.
            assert tool("amqp-get", "--queue", queue) == body
        # Now empty: amqp-get says so with exit status 2 and no output.
        empty = run_tool("amqp-get", "--queue", queue)
        assert (empty.returncode, empty.stdout) == (2, b"")
        front.run(queue_is_empty, queue)
    finally:
        delete_queues(queue)


def test_client_message_is_read_by_amqp_consume(front: Front) -> None:
    queue = unique("tools-consume")
    bodies = [BIG_BODY, "grüße\n".encode()]
    try:
        front.run(publish_for_tools, queue, bodies, every_property(TOOLS_HEADERS))
        # amqp-consume runs `cat` once per message with the body on its
        # stdin, acknowledges when it exits 0, and stops after --count.
        out = tool("amqp-consume", "--queue", queue, "--count", "2", "--", "cat")
        assert out == b"".join(bodies)
        front.run(queue_is_empty, queue)
    finally:
        delete_queues(queue)
