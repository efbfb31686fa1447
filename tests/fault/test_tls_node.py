"""TLS against a real RabbitMQ AMQPS listener, both fronts.

The module shares one :class:`~tests.support.tls_node.TlsBrokerNode`
(``tls_broker_node``): its own CA, a server certificate for localhost, a
client certificate for the user ``amqp-tls-user``, ``verify_peer`` without
requiring a client certificate, and SASL EXTERNAL. What is checked:

* ``amqps://`` verifies the server by default: without the CA the
  connection fails with ``ConnectionLost`` caused by
  ``ssl.SSLCertVerificationError``;
* with an ``ssl.SSLContext`` trusting the CA, PLAIN (guest) works over TLS;
* with the client certificate and ``auth_mechanism="EXTERNAL"`` the broker
  logs the connection in as the certificate's user, whatever the URL says;
* EXTERNAL without a client certificate is refused: ``AuthenticationError``
  (403 ACCESS_REFUSED);
* a client certificate from another CA fails the TLS handshake;
* the URL alone can say all of it: ``cacertfile``, ``certfile``,
  ``keyfile`` and ``auth_mechanism=external`` in the query log in as the
  certificate's user, and ``server_name_indication`` is the name the
  server certificate is checked against.

The broker's own view (``rabbitmqctl list_connections``) confirms user,
mechanism and TLS. The shared broker is not involved.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import amqp_client
from tests.integration.helpers import Front, unique, within
from tests.support.tls_node import TLS_USER, TlsBrokerNode, make_tls_files

pytestmark = pytest.mark.fault

#: Connections tried with a foreign client certificate, and the
#: connection_timeout of each (a refusal must come well before it).
FOREIGN_ATTEMPTS = 40
FOREIGN_TIMEOUT = 4.0


async def broker_connections(node: TlsBrokerNode) -> list[dict[str, Any]]:
    """The broker's ``list_connections`` rows, with ``connection_name``."""
    out = await asyncio.to_thread(
        node.rabbitmqctl,
        "list_connections",
        "user",
        "auth_mechanism",
        "ssl",
        "peer_cert_subject",
        "client_properties",
        "--formatter",
        "json",
        "--quiet",
    )
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    for row in rows:
        props = {key: value for key, _type, value in row.pop("client_properties")}
        row["connection_name"] = props.get("connection_name")
    return rows


async def round_trip(conn: Any) -> None:
    """Declare, publish, get and delete: the connection really works."""
    ch = await within(conn.channel())
    queue = unique("tls")
    await within(ch.queue_declare(queue, auto_delete=True))
    try:
        await within(ch.basic_publish(b"over tls", routing_key=queue))
        got = None
        async with asyncio.timeout(10):
            while got is None:
                got = await ch.basic_get(queue, no_ack=True)
        assert got.body == b"over tls"
    finally:
        await within(ch.queue_delete(queue))


async def logged_in_as(node: TlsBrokerNode, conn_name: str) -> dict[str, Any]:
    rows = [
        r for r in await broker_connections(node) if r["connection_name"] == conn_name
    ]
    assert len(rows) == 1, rows
    return rows[0]


# --- scenarios --------------------------------------------------------------------


async def without_ca(front: Front, node: TlsBrokerNode) -> None:
    with pytest.raises(amqp_client.ConnectionLost) as info:
        await within(front.connect(node.amqps_url, connection_timeout=5), 15)
    error = info.value
    assert isinstance(error.__cause__, ssl.SSLCertVerificationError), repr(
        error.__cause__
    )
    assert "certificate verify failed" in str(error)
    assert f"localhost:{node.tls_port}" in str(error)
    assert not isinstance(error, amqp_client.AuthenticationError)


async def with_ca_and_password(front: Front, node: TlsBrokerNode) -> None:
    name = unique("tls-plain")
    async with front.connect(
        node.amqps_url, ssl=node.client_context(), connection_name=name
    ) as conn:
        await round_trip(conn)
        row = await logged_in_as(node, name)
        assert row["user"] == "guest"
        assert row["auth_mechanism"] == "PLAIN"
        assert row["ssl"] is True
        assert row["peer_cert_subject"] == ""  # no client certificate sent


async def external_with_certificate(front: Front, node: TlsBrokerNode) -> None:
    name = unique("tls-external")
    # The URL's guest:guest are ignored: EXTERNAL takes the certificate's CN.
    async with front.connect(
        node.amqps_url,
        ssl=node.client_context(client_cert=True),
        auth_mechanism="EXTERNAL",
        connection_name=name,
    ) as conn:
        await round_trip(conn)
        row = await logged_in_as(node, name)
        assert row["user"] == TLS_USER
        assert row["auth_mechanism"] == "EXTERNAL"
        assert row["ssl"] is True
        assert f"CN={TLS_USER}" in row["peer_cert_subject"]


async def external_without_certificate(front: Front, node: TlsBrokerNode) -> None:
    with pytest.raises(amqp_client.AuthenticationError) as info:
        await within(
            front.connect(
                node.amqps_url,
                ssl=node.client_context(),
                auth_mechanism="EXTERNAL",
                connection_timeout=5,
            ),
            15,
        )
    assert info.value.reply_code == 403
    assert "EXTERNAL" in str(info.value)


async def foreign_client_certificate(
    front: Front, node: TlsBrokerNode, other: Path
) -> None:
    """The broker (verify_peer) rejects a client certificate its CA did not
    sign. With TLS 1.3 the client learns it from an alert after its side of
    the handshake, so the refusal can come at the first read or at the
    first write: try many times, so that both timings are met."""
    context = node.client_context()
    context.load_cert_chain(other / "client.pem", other / "client.key")
    for attempt in range(FOREIGN_ATTEMPTS):
        began = time.monotonic()
        with pytest.raises(amqp_client.ConnectionLost) as info:
            await within(
                front.connect(
                    node.amqps_url,
                    ssl=context,
                    auth_mechanism="EXTERNAL",
                    connection_timeout=FOREIGN_TIMEOUT,
                ),
                FOREIGN_TIMEOUT + 5,
            )
        assert "unknown ca" in str(info.value).lower(), f"attempt {attempt}"
        # Refused at once, not after waiting out connection_timeout.
        assert time.monotonic() - began < FOREIGN_TIMEOUT / 2, f"attempt {attempt}"


def tls_url(node: TlsBrokerNode, host: str = "localhost", **query: str | Path) -> str:
    """``amqps://guest:guest@host:<tls port>/?<query>``, values encoded."""
    items = "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in query.items())
    return f"amqps://guest:guest@{host}:{node.tls_port}/?{items}"


async def external_from_the_url_alone(front: Front, node: TlsBrokerNode) -> None:
    name = unique("tls-url")
    url = tls_url(
        node,
        cacertfile=node.ca_path,
        certfile=node.client_cert_path,
        keyfile=node.client_key_path,
        auth_mechanism="external",
    )
    async with front.connect(url, connection_name=name) as conn:
        await round_trip(conn)
        row = await logged_in_as(node, name)
        assert row["user"] == TLS_USER
        assert row["auth_mechanism"] == "EXTERNAL"
        assert row["ssl"] is True
        assert f"CN={TLS_USER}" in row["peer_cert_subject"]


async def server_name_indication_is_checked(front: Front, node: TlsBrokerNode) -> None:
    # The certificate names localhost and 127.0.0.1: dialled by address,
    # the name checked is the URL's server_name_indication, not the host.
    url = tls_url(
        node,
        "127.0.0.1",
        cacertfile=node.ca_path,
        server_name_indication="other.example",
    )
    with pytest.raises(amqp_client.ConnectionLost) as info:
        await within(front.connect(url, connection_timeout=5), 15)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert "other.example" in str(info.value)
    url = tls_url(
        node, "127.0.0.1", cacertfile=node.ca_path, server_name_indication="localhost"
    )
    async with front.connect(url) as conn:
        await round_trip(conn)


# --- tests --------------------------------------------------------------------------


def test_amqps_without_the_ca_fails_verification(
    front: Front, tls_broker_node: TlsBrokerNode
) -> None:
    front.run(without_ca, tls_broker_node)


def test_amqps_with_the_ca_logs_in_with_a_password(
    front: Front, tls_broker_node: TlsBrokerNode
) -> None:
    front.run(with_ca_and_password, tls_broker_node)


def test_external_logs_in_as_the_certificate_user(
    front: Front, tls_broker_node: TlsBrokerNode
) -> None:
    front.run(external_with_certificate, tls_broker_node)


def test_external_without_a_client_certificate_is_refused(
    front: Front, tls_broker_node: TlsBrokerNode
) -> None:
    front.run(external_without_certificate, tls_broker_node)


# The blocking front once hung here until connection_timeout: the failed
# first write (the TLS alert already in) closed the core, and its I/O
# thread exited without dispatching that.
def test_client_certificate_of_another_ca_fails_the_handshake(
    front: Front, tls_broker_node: TlsBrokerNode, tmp_path: Path
) -> None:
    make_tls_files(tmp_path / "other", client_cn=TLS_USER)
    front.run(foreign_client_certificate, tls_broker_node, tmp_path / "other")


def test_tls_files_and_external_from_the_url_alone(
    front: Front, tls_broker_node: TlsBrokerNode
) -> None:
    front.run(external_from_the_url_alone, tls_broker_node)


def test_server_name_indication_is_the_name_checked(
    front: Front, tls_broker_node: TlsBrokerNode
) -> None:
    front.run(server_name_indication_is_checked, tls_broker_node)
