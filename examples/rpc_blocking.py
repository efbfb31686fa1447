"""RPC over direct reply-to (blocking): a fib(n) server thread and a client.

The server, in a thread of its own, consumes a request queue and answers
each request by publishing fib(n) to the request's ``reply_to`` with its
``correlation_id``. The client uses RabbitMQ's direct reply-to: it consumes
the pseudo-queue ``amq.rabbitmq.reply-to`` (with ``no_ack=True``, which
direct reply-to requires) and publishes requests with
``reply_to="amq.rabbitmq.reply-to"`` on the same channel; the broker routes
the answers straight back to that consumer, with no reply queue to declare.
Each call waits for the answer carrying its correlation id (and skips any
late answer to an earlier call that gave up). Server and client use separate
connections, as they would in separate programs. The program checks every
answer, deletes the request queue and exits (1 on a wrong answer).

Run it against a broker (``make broker`` starts one on localhost)::

    python examples/rpc_blocking.py
    AMQP_URL=amqp://user:pass@host:5672/vhost python examples/rpc_blocking.py
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid

import amqp_client
from amqp_client import blocking

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2f")
REPLY_TO = "amq.rabbitmq.reply-to"
#: The longest any single step may wait for the broker, seconds.
TIMEOUT = 10


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def serve(ch: blocking.Channel, requests: blocking.Consumer, served: list[int]) -> None:
    """Answer requests until the consumer is cancelled (a real server would
    call ``requests.get()`` with no timeout: here an idle server stops too)."""
    while True:
        try:
            request = requests.get(timeout=TIMEOUT)
        except TimeoutError:  # no request for TIMEOUT seconds: idle, stop
            return
        if request is None:  # the consumer was cancelled
            return
        n = int(request.body)
        reply_to = request.properties.reply_to
        if reply_to is None:  # nobody to answer: drop it
            request.reject(requeue=False)
            continue
        print(f"  server: fib({n}) = {fib(n)}")
        ch.basic_publish(
            str(fib(n)).encode(),
            routing_key=reply_to,  # the broker's name for the client's consumer
            properties=amqp_client.BasicProperties(
                correlation_id=request.properties.correlation_id
            ),
        )
        request.ack()
        served.append(n)


class FibClient:
    """Calls the server, one call at a time."""

    def __init__(self, ch: blocking.Channel, request_queue: str) -> None:
        self._ch = ch
        self._request_queue = request_queue
        # Consume the pseudo-queue before the first request names it in reply_to.
        self._replies = ch.basic_consume(REPLY_TO, no_ack=True, timeout=TIMEOUT)

    def call(self, n: int) -> int:
        correlation_id = uuid.uuid4().hex
        self._ch.basic_publish(
            str(n).encode(),
            routing_key=self._request_queue,
            properties=amqp_client.BasicProperties(
                reply_to=REPLY_TO, correlation_id=correlation_id
            ),
        )
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._replies.get(timeout=max(0.0, deadline - time.monotonic()))
            if reply is None:
                raise RuntimeError("the reply consumer was cancelled")
            if reply.properties.correlation_id == correlation_id:
                return int(reply.body)
            # else: a late answer to an earlier call; skip it

    def close(self) -> None:
        self._replies.cancel(timeout=TIMEOUT)


def main() -> int:
    request_queue = f"amqp-client-example.rpc.{uuid.uuid4().hex[:8]}"
    numbers = [*range(11), 30, 60, 90]
    with (
        blocking.connect(
            URL, connection_name="fib server", connection_timeout=TIMEOUT
        ) as server_conn,
        blocking.connect(
            URL, connection_name="fib client", connection_timeout=TIMEOUT
        ) as client_conn,
    ):
        server_ch: blocking.Channel = server_conn.channel(timeout=TIMEOUT)
        server_ch.queue_declare(request_queue, timeout=TIMEOUT)
        try:
            server_ch.basic_qos(prefetch_count=10, timeout=TIMEOUT)
            requests = server_ch.basic_consume(request_queue, timeout=TIMEOUT)
            served: list[int] = []
            server = threading.Thread(target=serve, args=(server_ch, requests, served))
            server.start()
            print(f"server: serving fib(n) on {request_queue}")

            client = FibClient(client_conn.channel(timeout=TIMEOUT), request_queue)
            print(f"client: calling fib(n) for n in {numbers}")
            answers = []
            for n in numbers:
                answer = client.call(n)
                print(f"client: fib({n}) -> {answer}")
                answers.append(answer)
            client.close()

            requests.cancel(timeout=TIMEOUT)  # the server's get() returns None
            server.join(timeout=TIMEOUT)
        finally:
            server_ch.queue_delete(request_queue, timeout=TIMEOUT)
            print(f"deleted {request_queue}")

    wrong = [
        (n, answer)
        for n, answer in zip(numbers, answers, strict=True)
        if answer != fib(n)
    ]
    if wrong or served != numbers or server.is_alive():
        print(f"FAILED: wrong answers {wrong}, served {served}", file=sys.stderr)
        return 1
    print(f"all {len(numbers)} calls answered correctly over direct reply-to")
    return 0


if __name__ == "__main__":
    sys.exit(main())
