"""What one round trip costs each client in instructions: a quiet measure.

W4's p50 on this kind of machine moves by 15% from run to run, and more
when the machine is idle (every wake-up of an idle virtual CPU is slow).
The client's own share of a round trip does not: this runs each Python
client's W4 loop (passive queue.declare, one channel) under valgrind's
callgrind, twice, with ``--small`` and ``--large`` round trips, and
reports ``(instructions(large) - instructions(small)) / (large - small)``:
the user-space instructions the client process executes per round trip,
start-up, connecting and interpreter warm-up cancelled out. The broker's
work and the kernel's are not counted (they are the same for everyone).

Not a test, and not a timing: the counts are exact to within a few
hundred instructions from run to run. Needs valgrind and the broker;
``python bench/rpc_cost.py --help`` lists the options.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence

URL = "amqp://guest:guest@127.0.0.1:5672/%2f"


def _py_amqp(n: int, url: str, queue: str) -> None:
    from urllib.parse import unquote, urlsplit

    import amqp

    u = urlsplit(url)
    conn = amqp.Connection(
        f"{u.hostname}:{u.port or 5672}",
        userid=unquote(u.username or "guest"),
        password=unquote(u.password or "guest"),
        virtual_host=unquote(u.path[1:]) or "/",
    )
    conn.connect()
    ch = conn.channel()
    ch.queue_declare(queue, exclusive=True)
    for _ in range(n):
        ch.queue_declare(queue, passive=True)
    conn.close()


def _pika(n: int, url: str, queue: str) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(queue, exclusive=True)
    for _ in range(n):
        ch.queue_declare(queue, passive=True)
    conn.close()


def _blocking(n: int, url: str, queue: str) -> None:
    import amqp_client.blocking

    with amqp_client.blocking.connect(url) as conn:
        ch = conn.channel()
        ch.queue_declare(queue, exclusive=True)
        for _ in range(n):
            ch.queue_declare(queue, passive=True)


async def _aio_main(n: int, url: str, queue: str) -> None:
    import amqp_client

    async with await amqp_client.connect(url) as conn:
        ch = await conn.channel()
        await ch.queue_declare(queue, exclusive=True)
        for _ in range(n):
            await ch.queue_declare(queue, passive=True)


def _asyncio(n: int, url: str, queue: str) -> None:
    asyncio.run(_aio_main(n, url, queue))


def _uvloop(n: int, url: str, queue: str) -> None:
    import uvloop

    uvloop.run(_aio_main(n, url, queue))


async def _aio_pika_main(n: int, url: str, queue: str) -> None:
    import aio_pika

    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        await ch.declare_queue(queue, exclusive=True)
        for _ in range(n):
            await ch.declare_queue(queue, passive=True)


def _aio_pika(n: int, url: str, queue: str) -> None:
    asyncio.run(_aio_pika_main(n, url, queue))


CLIENTS: dict[str, Callable[[int, str, str], None]] = {
    "py-amqp": _py_amqp,
    "pika": _pika,
    "aio-pika": _aio_pika,
    "amqp_client": _asyncio,
    "amqp_client+uvloop": _uvloop,
    "amqp_client.blocking": _blocking,
}


def instructions(client: str, n: int, url: str) -> int:
    """Instructions callgrind counts for a child running ``n`` round trips."""
    queue = f"bench-rpc-cost-{uuid.uuid4().hex[:8]}"
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        client,
        str(n),
        "--url",
        url,
        "--queue",
        queue,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    found = re.findall(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or not found:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{client}: exit {proc.returncode}: {tail}")
    return sum(int(x) for x in found)  # one line per thread's part


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=URL)
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--large", type=int, default=1100)
    ap.add_argument("--child", nargs=2, metavar=("CLIENT", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--queue", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        client, n = args.child
        CLIENTS[client](int(n), args.url, args.queue)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = [c for c in clients if c not in CLIENTS]
    if unknown or args.large <= args.small:
        ap.error(
            f"unknown clients {unknown}" if unknown else "--large must exceed --small"
        )
    print(f"instructions per passive queue.declare round trip "
          f"({args.large} - {args.small} round trips, callgrind)")  # fmt: skip
    rows: list[tuple[str, float]] = []
    for client in clients:
        try:
            small = instructions(client, args.small, args.url)
            large = instructions(client, args.large, args.url)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"{client:24s} failed: {exc}", flush=True)
            continue
        per = (large - small) / (args.large - args.small)
        rows.append((client, per))
        print(f"{client:24s} {per:10,.0f}", flush=True)
    peers = [per for name, per in rows if not name.startswith("amqp_client")]
    if peers:
        best = min(peers)
        print(f"\nrelative to the leanest peer ({best:,.0f}):")
        for name, per in rows:
            print(f"{name:24s} {per / best:10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
