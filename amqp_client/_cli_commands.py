"""The broker commands of the command line: publish, consume, get, declare...

Each command takes the parsed arguments and the streams, talks to the
broker through the blocking front, and returns the exit code. Errors
propagate: :func:`amqp_client.cli.main` turns them into one line on
stderr and an exit code. Option values are checked (and the body read)
before connecting, so a usage error never touches the broker.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from amqp_client import blocking
from amqp_client._cli_format import (
    Failure,
    Progress,
    UsageProblem,
    delivery_json,
    escape,
    is_terminal,
    parse_pairs,
    plural,
    returned_text,
)
from amqp_client._delivery import DeliveryData, ReturnedMessage
from amqp_client.errors import AMQPError
from amqp_client.spec import BasicProperties

__all__ = ["COMMANDS", "Streams"]

#: Seconds to wait for any reply of the broker (declare, bind, qos...).
REPLY_TIMEOUT = 60.0
#: Unconfirmed publishes in flight with ``publish --confirm``.
CONFIRM_WINDOW = 1000
#: Default ``consume --prefetch`` (capped by ``--count``).
DEFAULT_PREFETCH = 100
#: Shown in the management UI.
CONNECTION_NAME = "amqp-client command line"


@dataclasses.dataclass
class Streams:
    stdin: TextIO | None
    stdout: TextIO
    stderr: TextIO


@contextmanager
def _session(url: str) -> Iterator[blocking.Channel]:
    """A connection and one channel on it, closed on the way out."""
    with blocking.connect(url, connection_name=CONNECTION_NAME) as connection:
        channel: blocking.Channel = connection.channel(timeout=REPLY_TIMEOUT)
        yield channel


def _table(args: argparse.Namespace) -> dict[str, Any] | None:
    return parse_pairs(args.argument, "argument")


# --- output ------------------------------------------------------------------------


class _Output:
    """Deliveries to stdout: raw bodies one per line, or JSON lines."""

    def __init__(self, stream: TextIO, json_lines: bool) -> None:
        self.stream = stream
        self.json_lines = json_lines
        self._buffer = getattr(stream, "buffer", None)

    def delivery(self, delivery: DeliveryData) -> None:
        stream = self.stream
        if self.json_lines:
            stream.write(json.dumps(delivery_json(delivery)) + "\n")
        elif self._buffer is not None:
            stream.flush()  # text written before stays before
            self._buffer.write(bytes(delivery.body) + b"\n")
        else:
            stream.write(bytes(delivery.body).decode("utf-8", "replace") + "\n")
        stream.flush()


# --- publish -----------------------------------------------------------------------


def read_body(args: argparse.Namespace, stdin: TextIO | None) -> bytes:
    """The body from BODY, ``--file``, or stdin (BODY ``-``, or no BODY and
    stdin not a terminal).

    Raises:
        UsageProblem: both BODY and --file, an unreadable file, or no body.
    """
    if args.file is not None:
        if args.body is not None:
            raise UsageProblem("give the body as BODY or with --file, not both")
        try:
            return Path(args.file).read_bytes()
        except OSError as exc:
            raise UsageProblem(f"--file {args.file}: {exc.strerror or exc}") from None
    if args.body is not None and args.body != "-":
        return os.fsencode(args.body)  # the bytes the shell passed
    if stdin is None or (args.body is None and is_terminal(stdin)):
        raise UsageProblem("no body: give BODY or --file PATH, or pipe it to stdin")
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        return bytes(buffer.read())
    return stdin.read().encode("utf-8", "surrogateescape")


def build_properties(args: argparse.Namespace) -> BasicProperties:
    """The content properties the options set.

    Raises:
        UsageProblem: a header given twice.
        ValueError: a value the wire cannot carry (checked by encoding now).
    """
    properties = BasicProperties(
        content_type=args.content_type,
        content_encoding=args.content_encoding,
        headers=parse_pairs(args.header, "header"),
        delivery_mode=2 if args.persistent else args.delivery_mode,
        priority=args.priority,
        correlation_id=args.correlation_id,
        reply_to=args.reply_to,
        expiration=args.expiration,
        message_id=args.message_id,
        timestamp=args.timestamp,
        type=args.type,
        user_id=args.user_id,
        app_id=args.app_id,
    )
    properties.encode()  # a bad value fails here, before connecting
    return properties


def publish(args: argparse.Namespace, streams: Streams) -> int:
    body = read_body(args, streams.stdin)
    properties = build_properties(args)
    returned: list[ReturnedMessage] = []
    progress = Progress(streams.stderr, "published", args.count)
    with _session(args.url) as channel:
        if args.mandatory and not args.confirm:
            channel.add_on_return_callback(returned.append)
        if args.confirm:
            channel.confirm_select(timeout=REPLY_TIMEOUT)
        send = {
            "exchange": args.exchange,
            "routing_key": args.routing_key,
            "mandatory": args.mandatory,
            "properties": properties,
        }
        try:
            if args.confirm:
                pending: deque[blocking.Confirmation] = deque()
                for _ in range(args.count):
                    confirmation = channel.basic_publish(body, **send)
                    assert confirmation is not None
                    pending.append(confirmation)
                    if len(pending) >= CONFIRM_WINDOW:
                        _confirmed(pending.popleft(), args.timeout)
                    progress.add()
                while pending:
                    _confirmed(pending.popleft(), args.timeout)
            else:
                for _ in range(args.count):
                    channel.basic_publish(body, **send)
                    progress.add()
                # One round trip: a publish the broker refused (a missing
                # exchange...) closes the channel before this reply, so the
                # error raises here rather than being lost in the close.
                channel.basic_qos(prefetch_count=0, timeout=REPLY_TIMEOUT)
        finally:
            progress.finish()
    # Closing the connection ran every queued callback: returns are all in.
    if returned:
        first = returned[0]
        raise Failure(
            f"{plural(len(returned), 'message')} returned: "
            + returned_text(
                first.reply_code, first.reply_text, first.exchange, first.routing_key
            )
        )
    return 0


def _confirmed(confirmation: blocking.Confirmation, timeout: float) -> None:
    try:
        confirmation.wait(timeout)
    except TimeoutError:
        raise TimeoutError(
            f"no confirmation of publish #{confirmation.delivery_tag} "
            f"within {timeout:g} s"
        ) from None


# --- consume and get -----------------------------------------------------------------


def consume(args: argparse.Namespace, streams: Streams) -> int:
    output = _Output(streams.stdout, args.json)
    prefetch = args.prefetch
    if prefetch is None:
        prefetch = min(args.count or DEFAULT_PREFETCH, DEFAULT_PREFETCH)
    # Progress on a terminal's stderr, unless the bodies go to that
    # terminal too (the \r line would garble them).
    progress = Progress(
        streams.stderr,
        "consumed",
        args.count,
        enabled=is_terminal(streams.stderr) and not is_terminal(streams.stdout),
    )
    ended = False
    with _session(args.url) as channel:
        if not args.no_ack:
            channel.basic_qos(prefetch_count=prefetch, timeout=REPLY_TIMEOUT)
        consumer = channel.basic_consume(
            args.queue, no_ack=args.no_ack, timeout=REPLY_TIMEOUT
        )
        try:
            while args.count is None or progress.count < args.count:
                try:
                    delivery = consumer.get(timeout=args.timeout)
                except TimeoutError:
                    break  # idle for --timeout seconds: done
                if delivery is None:
                    ended = True
                    break
                output.delivery(delivery)
                if not args.no_ack:
                    delivery.ack()
                progress.add()
        finally:
            progress.finish()
            if channel.is_open and channel.connection.is_open:
                # Best effort: closing the channel ends the consumer anyway,
                # and a failure here must not hide the one that got us here.
                with contextlib.suppress(AMQPError, TimeoutError):
                    consumer.cancel(timeout=REPLY_TIMEOUT)
    if ended:
        raise Failure(f"the broker cancelled the consumer of queue {args.queue!r}")
    return 0


def get(args: argparse.Namespace, streams: Streams) -> int:
    output = _Output(streams.stdout, args.json)
    with _session(args.url) as channel:
        delivery = channel.basic_get(args.queue, timeout=REPLY_TIMEOUT)
        if delivery is None:
            streams.stderr.write(f"queue {args.queue!r} is empty\n")
            return 0
        output.delivery(delivery)
        if args.requeue:
            delivery.reject(requeue=True)
        else:
            delivery.ack()
    return 0


# --- topology ------------------------------------------------------------------------


def declare_queue(args: argparse.Namespace, streams: Streams) -> int:
    arguments = _table(args)
    with _session(args.url) as channel:
        ok = channel.queue_declare(
            args.name,
            passive=args.passive,
            durable=args.durable,
            exclusive=args.exclusive,
            auto_delete=args.auto_delete,
            arguments=arguments,
            timeout=REPLY_TIMEOUT,
        )
    # The name is the broker's (server-named with NAME ""): escaped, so
    # the line stays one line of three tab-separated columns.
    streams.stdout.write(
        f"{escape(ok.queue)}\t{plural(ok.message_count, 'message')}\t"
        f"{plural(ok.consumer_count, 'consumer')}\n"
    )
    return 0


def declare_exchange(args: argparse.Namespace, streams: Streams) -> int:
    arguments = _table(args)
    with _session(args.url) as channel:
        channel.exchange_declare(
            args.name,
            args.type,
            passive=args.passive,
            durable=args.durable,
            auto_delete=args.auto_delete,
            internal=args.internal,
            arguments=arguments,
            timeout=REPLY_TIMEOUT,
        )
    return 0


def bind(args: argparse.Namespace, streams: Streams) -> int:
    arguments = _table(args)
    with _session(args.url) as channel:
        channel.queue_bind(
            args.queue,
            args.exchange,
            args.routing_key,
            arguments=arguments,
            timeout=REPLY_TIMEOUT,
        )
    return 0


def delete_queue(args: argparse.Namespace, streams: Streams) -> int:
    with _session(args.url) as channel:
        ok = channel.queue_delete(
            args.name,
            if_unused=args.if_unused,
            if_empty=args.if_empty,
            timeout=REPLY_TIMEOUT,
        )
    streams.stdout.write(f"{plural(ok.message_count, 'message')} deleted\n")
    return 0


def delete_exchange(args: argparse.Namespace, streams: Streams) -> int:
    with _session(args.url) as channel:
        channel.exchange_delete(
            args.name, if_unused=args.if_unused, timeout=REPLY_TIMEOUT
        )
    return 0


def purge(args: argparse.Namespace, streams: Streams) -> int:
    with _session(args.url) as channel:
        ok = channel.queue_purge(args.name, timeout=REPLY_TIMEOUT)
    streams.stdout.write(f"{plural(ok.message_count, 'message')} purged\n")
    return 0


COMMANDS = {
    "publish": publish,
    "consume": consume,
    "get": get,
    "declare-queue": declare_queue,
    "declare-exchange": declare_exchange,
    "bind": bind,
    "delete-queue": delete_queue,
    "delete-exchange": delete_exchange,
    "purge": purge,
}
