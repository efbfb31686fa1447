"""TLS: ``amqps://`` verifies the server certificate by default; ``ssl=``
takes an ``ssl.SSLContext`` with one's own CA.

A TLS relay started by the test (a self-signed certificate made with the
openssl command) forwards to the shared broker, so no broker is
reconfigured. Both fronts run the same scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import amqp_client
from tests.integration.helpers import Front, within

pytestmark = pytest.mark.integration


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "server.pem", directory / "server.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


class TLSRelay:
    """TLS on a local port, plain TCP to the shared broker; own loop thread."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="tls-relay")
        self._thread.start()
        assert self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5672)
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ssl.SSLError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError, RuntimeError):
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TLSRelay, Path]]:
    cert, key = make_certificate(tmp_path_factory.mktemp("tls"))
    server = TLSRelay(cert, key)
    try:
        yield server, cert
    finally:
        server.close()


async def tls_scenario(front: Front, port: int, cert: Path) -> None:
    url = f"amqps://guest:guest@localhost:{port}/%2f"
    # Verified by default: a self-signed certificate is refused.
    with pytest.raises(amqp_client.ConnectionLost) as info:
        await within(front.connect(url, connection_timeout=5), 10)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) or "certificate" in str(
        info.value
    )
    assert f"localhost:{port}" in str(info.value)
    # Trusting its CA through ssl= works, with hostname checks on.
    context = ssl.create_default_context(cafile=str(cert))
    async with front.connect(url, ssl=context) as conn:
        ch = await within(conn.channel())
        ok = await within(ch.queue_declare("", exclusive=True))
        await within(ch.basic_publish(b"over tls", routing_key=ok.queue))
        got = None
        while got is None:
            got = await within(ch.basic_get(ok.queue, no_ack=True))
        assert got.body == b"over tls"


def test_amqps_verifies_and_accepts_its_own_ca(
    front: Front, relay: tuple[TLSRelay, Path]
) -> None:
    server, cert = relay
    front.run(tls_scenario, server.port, cert)


async def busy_poll_scenario(front: Front, port: int, cert: Path) -> int:
    """Round trips over TLS with ``busy_poll``: what the spin read."""
    url = f"amqps://guest:guest@localhost:{port}/%2f"
    context = ssl.create_default_context(cafile=str(cert))
    async with front.connect(url, ssl=context, busy_poll=0.01) as conn:
        ch = await within(conn.channel())
        ok = await within(ch.queue_declare("", exclusive=True))
        for _ in range(50):
            assert (await within(ch.queue_declare(ok.queue, passive=True))).queue
        polled: int = conn._driver.polled
        return polled


def test_busy_poll_over_tls(front: Front, relay: tuple[TLSRelay, Path]) -> None:
    # The blocking front polls its TLS socket like a plain one; the asyncio
    # front leaves TLS to its transport (which holds decrypted input of its
    # own), and its requests work as without busy_poll.
    server, cert = relay
    polled = front.run(busy_poll_scenario, server.port, cert)
    if front.name == "blocking":
        assert polled > 0
    else:
        assert polled == 0
