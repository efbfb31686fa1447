"""A consumer that rides through a lost connection (blocking).

The same as recovering_consumer_aio.py with the threaded client: the
consumer connects with ``recover=True`` through a small TCP relay (threads
here) that cuts every connection once the first batch has been consumed.
The connection's recovery thread reconnects with backoff, reopens the
channel with its prefetch, redeclares the queue and restarts the consumer
under the same tag, so the same ``for`` loop gets the second batch. The
program checks that every message arrived, deletes the queue and exits
(1 on failure).

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/recovering_consumer_blocking.py
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import uuid
from urllib.parse import urlsplit

from amqp_client import blocking
from amqp_client.uri import parse_url

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
BATCH = 10
TIMEOUT = 10.0


class Relay:
    """Forwards TCP connections to the broker; ``cut()`` drops them all."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            broker = socket.create_connection(self.target, timeout=TIMEOUT)
            with self.lock:
                self.sockets += [client, broker]
            for source, sink in ((client, broker), (broker, client)):
                threading.Thread(
                    target=self._pipe, args=(source, sink), daemon=True
                ).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the relay's."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return parts._replace(netloc=netloc).geturl()


def main() -> int:
    # The client logs the loss and the recovery (warnings): show them.
    logging.basicConfig(stream=sys.stdout, format="log: %(message)s")
    params = parse_url(URL)
    relay = Relay(params.host, params.port)
    queue = f"amqp-client-example.recovering.{uuid.uuid4().hex[:8]}"
    seen: set[int] = set()
    redelivered = 0
    recovered = threading.Event()
    try:
        with (
            blocking.connect(URL) as publisher,
            blocking.connect(
                through(URL, relay.port),
                recover=True,
                recovery_delay=0.1,
                recovery_max_delay=1.0,
            ) as conn,
        ):
            conn.add_on_lost_callback(lambda error: print(f"connection lost: {error}"))

            def on_recovered() -> None:
                print("recovered: channel, queue and consumer restored")
                recovered.set()

            conn.add_on_recovered_callback(on_recovered)
            ch = conn.channel()
            ch.basic_qos(prefetch_count=5, timeout=TIMEOUT)
            ch.queue_declare(queue, arguments={"x-expires": 60_000}, timeout=TIMEOUT)
            consumer = ch.basic_consume(queue, timeout=TIMEOUT)

            pub = publisher.channel()
            pub.confirm_select(timeout=TIMEOUT)

            def publish(first: int) -> None:
                confirmations = [
                    pub.basic_publish(str(n).encode(), routing_key=queue)
                    for n in range(first, first + BATCH)
                ]
                for confirmation in confirmations:
                    assert confirmation is not None
                    confirmation.wait(TIMEOUT)

            publish(0)
            while len(seen) < 2 * BATCH:
                delivery = consumer.get(TIMEOUT)
                if delivery is None:
                    break
                redelivered += delivery.redelivered
                seen.add(int(delivery.body))
                delivery.ack()
                if len(seen) == BATCH and not recovered.is_set():
                    print(f"consumed the first {BATCH}; cutting the connection")
                    relay.cut()
                    if not recovered.wait(TIMEOUT):
                        print("FAILED: no recovery", file=sys.stderr)
                        return 1
                    publish(BATCH)
            print(f"consumer tag kept: {consumer.consumer_tag}")
            pub.queue_delete(queue, timeout=TIMEOUT)
    finally:
        relay.close()
    if seen != set(range(2 * BATCH)):
        print(
            f"FAILED: missing {sorted(set(range(2 * BATCH)) - seen)}", file=sys.stderr
        )
        return 1
    print(
        f"the consumer rode through the cut and got all {2 * BATCH} messages "
        f"({redelivered} redelivered)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
