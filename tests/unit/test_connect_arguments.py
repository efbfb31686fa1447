"""Both fronts' ``connect()`` refuse bad arguments before connecting.

Each test points ``connect()`` at a port where nothing listens: an argument
that got past the checks would fail there with ``ConnectionLost``, so a
``ValueError``/``TypeError`` shows the check came first. The asyncio front
is awaited inside ``asyncio.run``; the blocking one called directly.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

import amqp_client
from amqp_client import blocking

SECRET = "Sup3rSecretPw"


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _aio_connect(url: str | list[str], **keywords: Any) -> None:
    async def main() -> None:
        conn = await amqp_client.connect(url, **keywords)
        await conn.close()

    asyncio.run(main())


def _blocking_connect(url: str | list[str], **keywords: Any) -> None:
    blocking.connect(url, **keywords).close()


FRONTS: dict[str, Callable[..., None]] = {
    "aio": _aio_connect,
    "blocking": _blocking_connect,
}


@pytest.fixture(params=sorted(FRONTS))
def connect(request: pytest.FixtureRequest) -> Callable[..., None]:
    return FRONTS[request.param]


def test_the_closed_port_is_closed(
    connect: Callable[..., None], closed_port: int
) -> None:
    # What an argument that passed the checks would meet.
    with pytest.raises(amqp_client.ConnectionLost):
        connect(f"amqp://127.0.0.1:{closed_port}", connection_timeout=5)


def test_amqps_with_ssl_false_is_refused_before_connecting(
    connect: Callable[..., None], closed_port: int
) -> None:
    with pytest.raises(ValueError) as info:
        connect(f"amqps://guest:{SECRET}@127.0.0.1:{closed_port}/", ssl=False)
    assert type(info.value) is ValueError
    message = str(info.value)
    assert message.startswith("ssl: False")
    assert "amqps" in message
    assert "plain text" in message
    assert SECRET not in message


@pytest.mark.parametrize("value", [1e300, 10**20, 10**400, float("inf")])
def test_huge_connection_timeout_is_refused(
    connect: Callable[..., None], closed_port: int, value: float
) -> None:
    with pytest.raises(ValueError, match=r"^connection_timeout: "):
        connect(f"amqp://127.0.0.1:{closed_port}", connection_timeout=value)


@pytest.mark.parametrize("millis", ["1" * 30, "9" * 400])
def test_huge_connection_timeout_in_the_url_is_refused(
    connect: Callable[..., None], closed_port: int, millis: str
) -> None:
    with pytest.raises(ValueError, match=r"^connection_timeout: "):
        connect(f"amqp://127.0.0.1:{closed_port}?connection_timeout={millis}")


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:\uff15\uff16\uff17\uff12",  # full-width port digits
        "\uff11\uff12\uff17.0.0.1",  # full-width host digits
        "\uff11\uff12\uff17.0.0.1:5672",
    ],
)
def test_hosts_with_non_ascii_digits_are_refused(
    connect: Callable[..., None], closed_port: int, host: str
) -> None:
    with pytest.raises(ValueError, match=r"^(hosts|host): "):
        connect(f"amqp://127.0.0.1:{closed_port}", hosts=[host])


def test_url_with_non_ascii_digits_is_refused(
    connect: Callable[..., None], closed_port: int
) -> None:
    with pytest.raises(ValueError, match=r"^host: "):
        connect(f"amqp://\uff11\uff12\uff17.0.0.1:{closed_port}")


@pytest.mark.parametrize("port", ["1" * 5000, "0" * 5000 + "1" * 6])
def test_hosts_port_past_the_int_digit_limit_names_hosts(
    connect: Callable[..., None], closed_port: int, port: str
) -> None:
    # int() refuses 4,300 digits with a message that names no argument.
    with pytest.raises(ValueError, match=r"^hosts: the port of .* is over 65535"):
        connect(f"amqp://127.0.0.1:{closed_port}", hosts=[f"127.0.0.1:{port}"])


@pytest.mark.parametrize("value", [-1e-6, 0.0101, 1, float("nan"), float("inf")])
def test_busy_poll_out_of_range_is_refused(
    connect: Callable[..., None], closed_port: int, value: float
) -> None:
    with pytest.raises(ValueError, match=r"^busy_poll: expected 0\.\.0\.01 s"):
        connect(f"amqp://127.0.0.1:{closed_port}", busy_poll=value)


@pytest.mark.parametrize("value", ["0.001", True, None, [0.001]])
def test_busy_poll_of_the_wrong_type_is_refused(
    connect: Callable[..., None], closed_port: int, value: object
) -> None:
    with pytest.raises(TypeError, match=r"^busy_poll: expected seconds"):
        connect(f"amqp://127.0.0.1:{closed_port}", busy_poll=value)


@pytest.mark.parametrize("value", [0, 0.0, 50e-6, 0.01])
def test_busy_poll_in_range_passes_the_checks(
    connect: Callable[..., None], closed_port: int, value: float
) -> None:
    # Past the checks: what it meets is the closed port.
    with pytest.raises(amqp_client.ConnectionLost):
        connect(
            f"amqp://127.0.0.1:{closed_port}", busy_poll=value, connection_timeout=5
        )
