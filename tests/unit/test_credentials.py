"""Credentials that change (issue 16, item 1), without RabbitMQ.

* ``Credentials`` itself: checked at construction, the password never in
  its repr.
* ``CredentialsState`` and ``refresh_plan`` (amqp_client/session/credentials.py):
  which user name and password an attempt logs in with, when the refresh
  is due (80% of the remaining lifetime), and the refresh's steps, walked
  by hand with a fake clock.
* Both fronts against the scripted broker (tests/support/socket_peer.py):
  the provider is asked before the first attempt and before each recovery
  attempt, and connection.start-ok carries its answer; a secret accepted
  by update-secret-ok is what recovery logs in with; a refresh sends
  connection.update-secret; a provider that raises is reported and the
  client keeps trying.

Real-broker tests of the same are in tests/integration/test_credentials.py.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import amqp_client
from amqp_client import Credentials, CredentialsError, blocking, spec, uri
from amqp_client.session import connect as conn_args
from amqp_client.session.credentials import (
    REFRESH_AT,
    CredentialsState,
    Fetch,
    Update,
    refresh_plan,
)
from amqp_client.session.recovery import RecoveryOptions, Sleep
from tests.support.socket_peer import (
    STEP,
    ScriptedBroker,
    ScriptedConnection,
    wait_until_async,
)
from tests.unit.test_front_scripted import connected, run

UTC = datetime.UTC
T0 = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def in_seconds(seconds: float) -> datetime.datetime:
    return datetime.datetime.now(UTC) + datetime.timedelta(seconds=seconds)


# --- Credentials ----------------------------------------------------------------------


def test_repr_never_shows_the_password() -> None:
    creds = Credentials("app", "s3cr3t-token", T0)
    assert "s3cr3t" not in repr(creds)
    assert "s3cr3t" not in str(creds)
    assert repr(creds) == (
        "Credentials(username='app', password='***', expires_at="
        "datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.timezone.utc))"
    )
    assert creds.password == "s3cr3t-token"


def test_methods_that_carry_secrets_hide_them_in_their_repr() -> None:
    update = spec.ConnectionUpdateSecret(b"t0ken-Zq9", "rotation")
    assert repr(update) == "ConnectionUpdateSecret(new_secret='***', reason='rotation')"
    start_ok = spec.ConnectionStartOk("PLAIN", b"\0app\0t0ken-Zq9", "en_US")
    assert "t0ken-Zq9" not in repr(start_ok) and "mechanism='PLAIN'" in repr(start_ok)
    assert "t0ken-Zq9" not in repr(spec.ConnectionSecureOk(b"t0ken-Zq9"))
    assert "t0ken-Zq9" not in repr(Update(update, 1.0))  # a refresh step
    assert update.new_secret == b"t0ken-Zq9"  # only the repr hides it


def test_credentials_are_checked_and_frozen() -> None:
    with pytest.raises(ValueError, match="naive"):
        Credentials("app", "pw", datetime.datetime(2026, 12, 6, 12, 0))
    with pytest.raises(TypeError, match="expires_at"):
        Credentials("app", "pw", 1234567890)  # type: ignore[arg-type]  # the misuse tested
    with pytest.raises(TypeError, match="password"):
        Credentials("app", b"pw")  # type: ignore[arg-type]  # the misuse tested
    with pytest.raises(TypeError, match="username"):
        Credentials(None, "pw")  # type: ignore[arg-type]  # the misuse tested
    creds = Credentials("app", "pw")
    with pytest.raises(AttributeError):
        creds.password = "other"  # type: ignore[misc]  # frozen: the misuse tested
    assert creds == Credentials("app", "pw", None)
    assert Credentials("a", "b", in_seconds(60)).expires_at is not None


def test_connect_checks_credentials_before_any_io() -> None:
    with pytest.raises(TypeError, match="credentials"):
        conn_args.parse_connect(None, {"credentials": 42})  # type: ignore[typeddict-item]  # the misuse tested
    with pytest.raises(TypeError, match="credentials"):
        amqp_client.connect("amqp://127.0.0.1:1", credentials="user:pw")  # type: ignore[arg-type]  # the misuse tested
    with pytest.raises(TypeError, match="credentials"):
        blocking.connect("amqp://127.0.0.1:1", credentials=42)  # type: ignore[arg-type]  # the misuse tested

    # Fixed credentials that SASL PLAIN cannot carry: refused at once, as
    # in a URL, without showing the password.
    with pytest.raises(ValueError, match="password: contains NUL") as info:
        amqp_client.connect("amqp://127.0.0.1:1", credentials=Credentials("u", "p\0w"))
    assert "p\0w" not in str(info.value)
    with pytest.raises(ValueError, match="password"):
        blocking.connect("amqp://127.0.0.1:1", credentials=Credentials("u", "p\0w"))

    async def async_provider() -> Credentials:
        return Credentials("u", "p")

    # Nothing listens on port 1: a TypeError, not ConnectionLost, proves
    # that the check came first.
    with pytest.raises(TypeError, match="async provider"):
        blocking.connect("amqp://127.0.0.1:1", credentials=async_provider)


# --- CredentialsState -------------------------------------------------------------------

URL = uri.parse_url("amqp://url-user:url-pw@broker/%2f")


def test_an_attempt_logs_in_with_the_newest_source() -> None:
    # Nothing given: the URL's.
    state = CredentialsState()
    assert state.apply(URL) is URL
    # A secret the broker accepted replaces the URL's password.
    state.secret_accepted(b"rotated")
    assert (state.apply(URL).username, state.apply(URL).password) == (
        "url-user",
        "rotated",
    )
    # Fixed credentials replace the URL's; an accepted secret, their password.
    fixed = CredentialsState(Credentials("fixed", "fixed-pw"))
    assert (fixed.apply(URL).username, fixed.apply(URL).password) == (
        "fixed",
        "fixed-pw",
    )
    fixed.secret_accepted(b"new-pw")
    assert fixed.apply(URL).password == "new-pw"
    # A provider's answer is newer than any secret sent before it.
    provided = CredentialsState(lambda: Credentials("p", "p1"))
    provided.secret_accepted(b"by-hand")
    provided.obtained(Credentials("p", "p2"), now=0.0)
    assert (provided.apply(URL).username, provided.apply(URL).password) == ("p", "p2")
    # The rest of the endpoint is kept.
    assert provided.apply(URL).host == "broker"
    # A secret that is not UTF-8 cannot be a PLAIN password: the old one stays.
    provided.secret_accepted(b"\xff\xfe")
    assert provided.apply(URL).password == "p2"


def test_the_refresh_is_due_at_80_percent_of_the_remaining_lifetime() -> None:
    state = CredentialsState(lambda: Credentials("u", "p"), wall_clock=lambda: T0)
    state.obtained(Credentials("u", "p", T0 + datetime.timedelta(seconds=100)), 50.0)
    assert state.refresh_due == pytest.approx(50.0 + REFRESH_AT * 100)
    assert REFRESH_AT == 0.8
    # Already expired: at once.
    state.obtained(Credentials("u", "p", T0 - datetime.timedelta(seconds=5)), 7.0)
    assert state.refresh_due == 7.0
    # No expiry: never.
    state.obtained(Credentials("u", "p"), 9.0)
    assert state.refresh_due is None


def test_the_providers_answer_is_checked() -> None:
    state = CredentialsState(lambda: Credentials("u", "p"))
    assert state.accept(Credentials("u", "p"), URL) == Credentials("u", "p")
    with pytest.raises(CredentialsError, match="returned str, not Credentials"):
        state.accept("u:p", URL)
    with pytest.raises(CredentialsError, match="NUL") as info:
        state.accept(Credentials("u", "p\0w"), URL)  # PLAIN cannot carry it
    assert "p\0w" not in str(info.value)

    async def coroutine() -> Credentials:
        return Credentials("u", "p")

    with pytest.raises(CredentialsError, match="asyncio"):
        state.accept(coroutine(), URL)  # closed, so no "never awaited" warning


def test_a_provider_failure_is_reported_with_its_cause() -> None:
    reported: list[BaseException] = []
    state = CredentialsState(lambda: Credentials("u", "p"))
    state.report = reported.append
    cause = OSError("vault unreachable")
    failure = state.failed(cause)
    assert isinstance(failure, CredentialsError)
    assert failure.__cause__ is cause
    assert "vault unreachable" in str(failure)
    assert reported == [failure]
    # Already a CredentialsError: reported as it is.
    again = CredentialsError("bad answer")
    assert state.failed(again) is again
    assert reported == [failure, again]


# --- refresh_plan, by hand ----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def expiring(seconds: float, password: str = "pw") -> Credentials:
    return Credentials("u", password, T0 + datetime.timedelta(seconds=seconds))


def sleep(seconds: float) -> Sleep:
    """A Sleep step equal to one of about ``seconds``."""
    return Sleep(pytest.approx(seconds))  # type: ignore[arg-type]  # compares as a float


def test_no_provider_or_no_expiry_means_no_refresh(clock: Clock) -> None:
    fixed = CredentialsState(expiring(10))
    assert list(refresh_plan(fixed, clock)) == []
    lasting = CredentialsState(lambda: Credentials("u", "p"))
    lasting.obtained(Credentials("u", "p"), clock())
    assert list(refresh_plan(lasting, clock)) == []


def test_refresh_sleeps_asks_and_sends_update_secret(clock: Clock) -> None:
    state = CredentialsState(
        lambda: expiring(0), RecoveryOptions(0.5, 4.0), wall_clock=lambda: T0
    )
    reported: list[BaseException] = []
    state.report = reported.append
    state.obtained(expiring(100), clock())
    plan = refresh_plan(state, clock)
    assert next(plan) == sleep(80.0)
    clock.now += 80
    assert plan.send(None) == Fetch()
    step = plan.send(expiring(50, "pw-2"))
    assert isinstance(step, Update)
    assert step.method == spec.ConnectionUpdateSecret(b"pw-2", "credentials refresh")
    assert step.timeout == state.timeout
    # update-secret-ok: in use now; the next refresh at 80% of its 50 s.
    assert plan.send(None) == sleep(40.0)
    assert state.current == expiring(50, "pw-2")
    assert reported == []


def test_a_failed_refresh_is_reported_and_retried_with_backoff(clock: Clock) -> None:
    state = CredentialsState(
        lambda: expiring(0), RecoveryOptions(0.5, 4.0), wall_clock=lambda: T0
    )
    reported: list[BaseException] = []
    state.report = reported.append
    state.obtained(expiring(10), clock())
    plan = refresh_plan(state, clock)
    assert isinstance(next(plan), Sleep)
    assert plan.send(None) == Fetch()
    # The provider failed (the front reported it through failed()).
    delays = []
    step = plan.send(CredentialsError("vault unreachable"))
    for _ in range(6):
        assert isinstance(step, Sleep)
        delays.append(step.delay)
        assert plan.send(None) == Fetch()
        step = plan.send(CredentialsError("still unreachable"))
    assert all(0.5 <= d <= 4.0 for d in delays), delays
    assert reported == []  # provider failures are the front's to report
    # The update itself fails: reported here, and retried.
    assert plan.send(None) == Fetch()
    assert isinstance(plan.send(expiring(10, "pw-2")), Update)
    lost = amqp_client.ConnectionClosed(530, "NOT_ALLOWED")
    assert isinstance(plan.send(lost), Sleep)
    assert reported == [lost]
    assert state.current == expiring(10)  # not the one that failed
    # Then it works.
    assert plan.send(None) == Fetch()
    assert isinstance(plan.send(expiring(10, "pw-3")), Update)
    assert plan.send(None) == sleep(8.0)
    assert state.current == expiring(10, "pw-3")


def test_a_failing_refresh_never_spins(clock: Clock) -> None:
    state = CredentialsState(lambda: expiring(0), RecoveryOptions(0.0, 0.0))
    state.obtained(expiring(-1), clock())
    plan = refresh_plan(state, clock)
    assert next(plan) == Fetch()  # due already: no sleep first
    step = plan.send(CredentialsError("no"))
    assert isinstance(step, Sleep) and step.delay >= 0.1


# --- both fronts, against the scripted broker ------------------------------------------


@pytest.fixture
def broker() -> Iterator[ScriptedBroker]:
    with ScriptedBroker() as scripted:
        yield scripted


@pytest.fixture(params=["aio", "blocking"])
def front(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def login(peer: ScriptedConnection) -> bytes:
    """The SASL PLAIN response of the connection's start-ok."""
    (start_ok,) = peer.sent(spec.ConnectionStartOk)
    return start_ok.response


class Provider:
    """Answers ``("app", "pw-<n>")`` on its n-th call; raises while
    ``failing`` is above 0 (counting down)."""

    def __init__(self, lifetime: float | None = None) -> None:
        self.calls = 0
        self.failing = 0
        self.lifetime = lifetime

    def __call__(self) -> Credentials:
        self.calls += 1
        if self.failing:
            self.failing -= 1
            raise OSError(f"token endpoint down (call {self.calls})")
        expires = None if self.lifetime is None else in_seconds(self.lifetime)
        return Credentials("app", f"pw-{self.calls}", expires)


def test_the_provider_is_asked_before_every_attempt(
    front: str, broker: ScriptedBroker
) -> None:
    provider = Provider()

    async def scenario() -> None:
        options: dict[str, Any] = {
            "recover": True,
            "recovery_delay": 0.0,
            "credentials": provider,
        }
        async with connected(front, broker, **options) as (conn, first):
            assert login(first) == b"\0app\0pw-1"
            errors: list[BaseException] = []
            conn.add_on_credentials_error_callback(errors.append)
            provider.failing = 2
            await asyncio.to_thread(first.drop)
            second = await broker.wait_connection_async(1)
            await wait_until_async(lambda: conn.is_open, what="the recovery")
            # Two recovery attempts found the provider failing; the third
            # logged in with its answer.
            assert provider.calls == 4
            assert login(second) == b"\0app\0pw-4"
            await wait_until_async(lambda: len(errors) == 2, what="2 reports")
            assert all(isinstance(e, CredentialsError) for e in errors), errors
            assert isinstance(errors[0].__cause__, OSError)

    run(scenario)


def test_the_first_attempt_fails_with_the_providers_error(
    front: str, broker: ScriptedBroker
) -> None:
    provider = Provider()
    provider.failing = 1

    async def scenario() -> None:
        with pytest.raises(CredentialsError) as info:
            async with connected(front, broker, credentials=provider):
                pass
        assert isinstance(info.value.__cause__, OSError)
        assert broker.connections == []  # asked before dialling

    run(scenario)


def test_an_accepted_update_secret_is_what_recovery_logs_in_with(
    front: str, broker: ScriptedBroker
) -> None:
    async def scenario() -> None:
        options = {"recover": True, "recovery_delay": 0.0}
        async with connected(front, broker, **options) as (conn, first):
            assert login(first) == b"\0guest\0guest"
            ok = await conn.update_secret(b"rotated", "by hand", timeout=STEP)
            assert ok == spec.ConnectionUpdateSecretOk()
            assert first.sent(spec.ConnectionUpdateSecret) == [
                spec.ConnectionUpdateSecret(b"rotated", "by hand")
            ]
            await asyncio.to_thread(first.drop)
            second = await broker.wait_connection_async(1)
            await wait_until_async(lambda: conn.is_open, what="the recovery")
            assert login(second) == b"\0guest\0rotated"

    run(scenario)


def test_a_refresh_sends_update_secret_and_survives_a_failing_provider(
    front: str, broker: ScriptedBroker
) -> None:
    # Each answer lives 0.5 s: a refresh every 0.4 s.
    provider = Provider(lifetime=0.5)

    async def scenario() -> None:
        options: dict[str, Any] = {"credentials": provider, "recovery_delay": 0.05}
        async with connected(front, broker, **options) as (conn, peer):
            errors: list[BaseException] = []
            conn.add_on_credentials_error_callback(errors.append)
            assert login(peer) == b"\0app\0pw-1"
            await peer.wait_method_async(spec.ConnectionUpdateSecret, 0)
            provider.failing = 2
            await peer.wait_method_async(spec.ConnectionUpdateSecret, 0, count=2)
            updates = peer.sent(spec.ConnectionUpdateSecret)
            assert [u.new_secret for u in updates[:2]] == [b"pw-2", b"pw-5"]
            assert {u.reason for u in updates} == {"credentials refresh"}
            await wait_until_async(lambda: len(errors) >= 2, what="2 reports")
            assert all(isinstance(e, CredentialsError) for e in errors[:2])
            assert conn.is_open

    run(scenario)


def test_a_provider_that_hangs_is_given_up_on(
    front: str, broker: ScriptedBroker
) -> None:
    """The provider has ``timeout`` seconds (30 s by default, shortened
    here) to answer; then the attempt fails with a CredentialsError, which
    is reported, and recovery goes on."""
    hang = False
    released = threading.Event()

    def answer() -> Credentials:
        if hang:
            released.wait(STEP)
        return Credentials("app", "pw")

    async def async_answer() -> Credentials:
        if hang:
            await asyncio.to_thread(released.wait, STEP)
        return Credentials("app", "pw")

    provider: Any = async_answer if front == "aio" else answer

    async def scenario() -> None:
        nonlocal hang
        options: dict[str, Any] = {
            "recover": True,
            "recovery_delay": 0.0,
            "credentials": provider,
        }
        async with connected(front, broker, **options) as (conn, first):
            conn._session.credentials.timeout = 0.2
            errors: list[BaseException] = []

            def on_error(error: BaseException) -> None:
                errors.append(error)
                released.set()  # the next attempt gets its answer

            conn.add_on_credentials_error_callback(on_error)
            hang = True
            await asyncio.to_thread(first.drop)
            await broker.wait_connection_async(1)
            await wait_until_async(lambda: conn.is_open, what="the recovery")
            assert [str(e) for e in errors] == [
                "the credentials provider did not answer within 0.2 s"
            ]
            assert all(isinstance(e, CredentialsError) for e in errors)

    try:
        run(scenario)
    finally:
        released.set()


def test_the_blocking_refresh_thread_ends_with_the_connection(
    broker: ScriptedBroker,
) -> None:
    provider = Provider(lifetime=0.5)
    conn = blocking.connect(broker.url, credentials=provider, connection_timeout=STEP)
    try:
        broker.wait_connection(0).wait_method(spec.ConnectionUpdateSecret)
        names = [t.name for t in threading.enumerate()]
        assert any(name.startswith("amqp-credentials ") for name in names), names
    finally:
        conn.close()
    left = [t for t in threading.enumerate() if t.name.startswith("amqp-credentials")]
    assert left == []
