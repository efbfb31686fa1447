"""Credentials that change, against the real broker (issue 16, item 1).
Both fronts, one scenario each.

Each test that needs its own user creates one with a unique name
(``rabbitmqctl add_user``, permissions on ``/``) and deletes it at the
end; nothing else on the shared broker changes. ``rabbitmqctl
close_all_user_connections`` closes that user's connections only (the
broker sends connection.close 320 connection-forced, which a recovering
client recovers from).

* The user's password changes (``rabbitmqctl change_password``) while
  three recovering connections of it are open, then the broker closes
  them. The one with a provider recovers with the provider's new answer,
  after the provider failed twice (each failure reported to the
  credentials-error callback, the client trying again); the one that
  sent the new password with ``update_secret()`` by hand recovers with
  it; the one that only has the URL's old password cannot recover
  (AuthenticationError once recovery gives up).
* A provider whose answers expire in 1.5 s is asked again before that,
  and the broker answers the connection.update-secret the client sends
  with update-secret-ok; the connection stays usable. RabbitMQ's internal
  user database (3.10) accepts update-secret without checking the new
  secret (its backend has no state that expires), so what the broker can
  show here is that it took the method; that recovery then logs in with
  the secret is the first test's business.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from amqp_client import AuthenticationError, Credentials, CredentialsError, uri
from tests.integration.helpers import STEP, Front, amqp_url, first_call, within
from tests.integration.test_secrets import assert_absent, capture_logs, exception_texts
from tests.support.rabbitmqctl import BrokerUser

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_user() -> Iterator[BrokerUser]:
    user = BrokerUser.create(amqp_url())
    try:
        yield user
    finally:
        user.delete()


async def wait_for(predicate: Any, what: str, timeout: float = STEP) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def works(conn: Any) -> None:
    """The connection takes requests: a channel, a declare, a close."""
    ch = await within(conn.channel())
    ok = await within(ch.queue_declare("", exclusive=True))
    assert ok.queue.startswith("amq.gen-")
    await within(ch.close())


# --- a rotated password: only what knows the new one recovers ---------------------------


async def rotation_scenario(front: Front, user: BrokerUser) -> None:
    loop = asyncio.get_running_loop()
    calls = 0
    failing = 0

    def provider() -> Credentials:
        nonlocal calls, failing
        calls += 1
        if failing:
            failing -= 1
            raise RuntimeError(f"token service unavailable (call {calls})")
        return Credentials(user.name, user.password)

    recovery = {"recover": True, "recovery_delay": 0.2, "recovery_max_delay": 1.0}
    # The URL's guest:guest is not what the provider's connection uses.
    by_provider = await within(
        front.connect(amqp_url(), credentials=provider, **recovery)
    )
    by_hand = await within(front.connect(user.url(), **recovery))
    stale = await within(front.connect(user.url(), recovery_attempts=3, **recovery))
    try:
        assert calls == 1
        errors: list[BaseException] = []
        by_provider.add_on_credentials_error_callback(errors.append)
        recovered: asyncio.Future[Any] = loop.create_future()
        by_provider.add_on_recovered_callback(first_call(recovered))
        hand_recovered: asyncio.Future[Any] = loop.create_future()
        by_hand.add_on_recovered_callback(first_call(hand_recovered))

        new_password = f"rotated-{uuid.uuid4().hex}"
        await asyncio.to_thread(user.change_password, new_password)
        await within(by_hand.update_secret(new_password.encode(), "rotated by hand"))
        failing = 2
        await asyncio.to_thread(user.close_connections)

        # The stale connection tries its old password and gives up.
        error = await within(stale.closed, 30)
        assert isinstance(error, AuthenticationError), repr(error)
        assert stale.is_closed

        # The provider's connection: two attempts failed in the provider
        # (reported), the third logged in with its new answer.
        await within(recovered, 30)
        assert by_provider.is_open
        assert calls == 4
        await wait_for(lambda: len(errors) == 2, "two credentials errors")
        for reported in errors:
            assert isinstance(reported, CredentialsError), repr(reported)
            assert isinstance(reported.__cause__, RuntimeError)
        await works(by_provider)

        # The connection updated by hand logged in with the new password.
        await within(hand_recovered, 30)
        await works(by_hand)
    finally:
        for conn in (by_provider, by_hand, stale):
            await within(conn.close(), 20)


def test_only_the_new_password_recovers(front: Front, broker_user: BrokerUser) -> None:
    old_password = broker_user.password
    with capture_logs() as logs:
        front.run(rotation_scenario, broker_user, timeout=120)
    # Neither password shows in any log record (the stale connection's
    # refused logins included).
    assert_absent([old_password, broker_user.password], list(logs.texts()), "logs")
    assert any("credentials" in r.getMessage() for r in logs.records), logs.records


def test_a_refused_login_through_a_provider_never_shows_the_password(
    front: Front,
) -> None:
    params = uri.parse_url(amqp_url())
    secret = f"wrong-{uuid.uuid4().hex}"

    def provider() -> Credentials:
        return Credentials(params.username, secret)

    async def scenario(front: Front) -> BaseException:
        try:
            conn = await within(front.connect(amqp_url(), credentials=provider))
        except AuthenticationError as exc:
            return exc
        await conn.close()
        raise AssertionError("logged in with a wrong password")

    with capture_logs() as logs:
        error = front.run(scenario)
    assert isinstance(error, AuthenticationError) and error.reply_code == 403
    texts = [*exception_texts(error), *logs.texts(), repr(provider())]
    assert_absent([secret], texts, f"a refused login ({front.name})")


# --- a refresh before expiry sends update-secret ------------------------------------------


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def refresh_scenario(front: Front) -> None:
    params = uri.parse_url(amqp_url())
    calls = 0

    def answer() -> Credentials:
        nonlocal calls
        calls += 1
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1.5)
        return Credentials(params.username, params.password, expires)

    async def async_provider() -> Credentials:
        await asyncio.sleep(0)
        return answer()

    # asyncio takes a coroutine function too; the blocking client a function.
    provider: Any = async_provider if front.name == "aio" else answer
    logger = logging.getLogger("amqp_client.credentials")
    records = Records()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(records)
    try:
        async with front.connect(amqp_url(), credentials=provider) as conn:
            errors: list[BaseException] = []
            conn.add_on_credentials_error_callback(errors.append)
            # Refreshes at 1.2 s, 2.4 s...: two within 3.5 s.
            await wait_for(
                lambda: (
                    records.messages.count(
                        "credentials refreshed (connection.update-secret)"
                    )
                    >= 2
                ),
                "two refreshes",
            )
            assert calls >= 3
            assert errors == []
            assert conn.is_open
            await works(conn)
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)


def test_a_refresh_before_expiry_sends_update_secret(front: Front) -> None:
    front.run(refresh_scenario)
