"""A broker that refuses the handshake: the error is raised, not also
logged as a warning (a library reports through its exceptions)."""

from __future__ import annotations

import logging

import pytest

import amqp_client
from amqp_client import blocking
from tests.integration.helpers import amqp_url


def test_a_refused_connection_raises_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An unknown vhost: RabbitMQ answers connection.open with 530.
    url = amqp_url().rsplit("/", 1)[0] + "/no-such-vhost-for-amqp-client-tests"
    with (
        caplog.at_level(logging.INFO, logger="amqp_client"),
        pytest.raises(amqp_client.NotAllowedError),
    ):
        blocking.connect(url, connection_timeout=10)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []
    assert any("refused" in r.getMessage() for r in caplog.records)
