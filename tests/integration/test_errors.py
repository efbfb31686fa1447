"""Errors from a real broker: soft errors close one channel, hard errors
and failed connects raise the typed exception, promptly."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

import amqp_client
from tests.integration.helpers import (
    Front,
    amqp_url,
    raises_at_once,
    resources,
    unique,
    wait_count,
    within,
)
from tests.support.broker import free_port

pytestmark = pytest.mark.integration


def url_with(**parts: str) -> str:
    """The broker URL with some parts replaced (password, path, netloc)."""
    url = urlsplit(amqp_url())
    netloc = parts.get("netloc")
    if netloc is None:
        user = url.username or "guest"
        password = parts.get("password", url.password or "guest")
        netloc = f"{user}:{password}@{url.hostname}:{url.port or 5672}"
    return urlunsplit((url.scheme, netloc, parts.get("path", url.path), url.query, ""))


# --- a soft error closes one channel ----------------------------------------------


async def precondition_scenario(front: Front) -> None:
    async with resources(front) as res, front.connect() as conn:
        queue = res.queue()
        bystander = await conn.channel()
        events: list[object] = []
        ch = await conn.channel()
        ch.add_on_close_callback(events.append)
        await ch.queue_declare(queue, arguments={"x-max-length": 10})
        await ch.basic_publish(b"kept", routing_key=queue)
        got = None
        while got is None:
            got = await within(ch.basic_get(queue))
        with pytest.raises(amqp_client.PreconditionFailedError) as info:
            await within(ch.queue_declare(queue, arguments={"x-max-length": 20}))
        error = info.value
        assert isinstance(error, amqp_client.ChannelClosed)
        assert error.reply_code == 406
        assert "x-max-length" in error.reply_text
        assert (error.class_id, error.method_id) == (50, 10)  # queue.declare
        assert ch.is_closed and not ch.is_open
        assert events == [error]

        # Every further use raises the same error at once, without asking
        # the broker.
        assert await raises_at_once(ch.queue_declare(queue, passive=True)) is error
        assert await raises_at_once(ch.basic_publish(b"x", routing_key=queue)) is error
        assert await raises_at_once(ch.basic_get(queue)) is error
        assert await raises_at_once(ch.basic_consume(queue)) is error
        assert await raises_at_once(ch.basic_qos(0, 1)) is error
        assert await raises_at_once(ch.basic_ack(1)) is error
        assert await raises_at_once(got.ack()) is error  # its tag died with it
        await ch.close()  # closing a closed channel is a no-op

        # The connection and its other channels keep working; the delivery
        # that was unacked on the dead channel is back in the queue.
        assert conn.is_open and bystander.is_open
        assert (await bystander.queue_declare(queue, passive=True)).queue == queue
        await wait_count(conn, queue, 1)  # the broker requeues asynchronously
        fresh = await conn.channel()
        await fresh.basic_publish(b"more", routing_key=queue)
        await wait_count(conn, queue, 2)
        assert not conn.closed.done()


def test_precondition_failed_closes_only_that_channel(front: Front) -> None:
    front.run(precondition_scenario)


async def publish_to_missing_exchange_scenario(front: Front) -> None:
    """A publish to a missing exchange: the broker closes the channel
    (404) asynchronously; the next call on it raises NotFoundError."""
    async with front.connect() as conn:
        ch = await conn.channel()
        await ch.basic_publish(b"x", exchange=unique("missing"), routing_key="k")
        with pytest.raises(amqp_client.NotFoundError) as info:
            await within(ch.basic_qos(0, 1))
        assert info.value.reply_code == 404
        assert (info.value.class_id, info.value.method_id) == (60, 40)
        assert conn.is_open
        other = await conn.channel()
        await other.basic_qos(0, 1)


def test_publish_to_missing_exchange_closes_channel(front: Front) -> None:
    front.run(publish_to_missing_exchange_scenario)


async def bad_arguments_scenario(front: Front) -> None:
    """Bad arguments raise before anything is sent; the channel lives on."""
    async with front.connect() as conn:
        ch = await conn.channel()
        with pytest.raises(ValueError):
            await ch.queue_declare("q" * 256)
        with pytest.raises(TypeError):
            await ch.basic_publish("not bytes", routing_key="x")
        with pytest.raises((TypeError, ValueError)):
            await ch.basic_qos(0, -1)
        with pytest.raises((TypeError, ValueError)):
            await ch.queue_declare("", arguments={"x-bad": object()})
        assert ch.is_open
        ok = await ch.queue_declare("", exclusive=True)
        assert ok.queue


def test_bad_arguments_fail_before_sending(front: Front) -> None:
    front.run(bad_arguments_scenario)


# --- connect failures -----------------------------------------------------------------


async def wrong_password_scenario(front: Front) -> None:
    began = time.monotonic()
    with pytest.raises(amqp_client.AuthenticationError) as info:
        await within(front.connect(url_with(password="wrong-password")), 5)
    assert time.monotonic() - began < 2.0
    error = info.value
    assert isinstance(error, amqp_client.ConnectionClosed)
    assert error.reply_code == 403
    assert "wrong-password" not in str(error)
    assert "wrong-password" not in repr(error)


def test_wrong_password_is_authentication_error(front: Front) -> None:
    front.run(wrong_password_scenario)


async def unknown_vhost_scenario(front: Front) -> None:
    vhost = unique("vhost")
    with pytest.raises(amqp_client.NotAllowedError) as info:
        await within(front.connect(url_with(path="/" + vhost)), 5)
    error = info.value
    assert isinstance(error, amqp_client.ConnectionClosed)
    assert error.reply_code == 530
    assert vhost in error.reply_text


def test_unknown_vhost_is_not_allowed(front: Front) -> None:
    front.run(unknown_vhost_scenario)


async def refused_scenario(front: Front) -> None:
    port = free_port()  # nothing listens there
    began = time.monotonic()
    with pytest.raises(amqp_client.ConnectionClosed) as info:
        await within(front.connect(f"amqp://guest:guest@127.0.0.1:{port}/"), 5)
    assert time.monotonic() - began < 2.0
    assert isinstance(info.value, amqp_client.ConnectionLost)
    assert f"127.0.0.1:{port}" in str(info.value)


def test_refused_connect_is_connection_lost(front: Front) -> None:
    front.run(refused_scenario)


async def silent_server_scenario(front: Front) -> None:
    """A server that accepts and never answers: connection_timeout."""
    accepted: list[asyncio.StreamWriter] = []

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        began = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await within(
                front.connect(
                    f"amqp://guest:guest@127.0.0.1:{port}/", connection_timeout=0.5
                ),
                5,
            )
        elapsed = time.monotonic() - began
        assert 0.4 <= elapsed < 1.5
        assert f"127.0.0.1:{port}" in str(info.value)
        assert accepted  # the TCP connection was made; AMQP never answered
        # the URL key works as well
        with pytest.raises(TimeoutError):
            await within(
                front.connect(
                    f"amqp://guest:guest@127.0.0.1:{port}/?connection_timeout=300"  # ms
                ),
                5,
            )
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


def test_connection_timeout_on_silent_server(front: Front) -> None:
    front.run(silent_server_scenario)
