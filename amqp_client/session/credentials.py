"""Credentials that change: which user name and password each connection
attempt logs in with, when to ask the provider again, and the refresh as
a plan of steps each front drives (like :func:`recovery_loop`).

What an attempt logs in with (``connect(credentials=...)``):

* a provider (a zero-argument callable returning ``Credentials``; in
  asyncio it may be a coroutine function): the front asks it before every
  connection attempt, the first and each recovery attempt, and its answer
  is used;
* a fixed ``Credentials``: its user name and password;
* neither: the URL's user name and password.

A secret the broker accepted through ``connection.update-secret`` (sent by
hand with ``conn.update_secret(...)`` or by a refresh) replaces the
password for later attempts, until the provider answers again.

The refresh (:func:`refresh_plan`): when the provider's answer has an
``expires_at``, at 80% of the lifetime it had left when it was obtained,
the front asks the provider again and sends ``connection.update-secret``
with the new password. A failure (the provider raised or answered
nonsense, the update timed out) is logged, reported to the
credentials-error callbacks and retried with backoff; it never closes
the connection by itself. The plan covers one open connection: the front
drops it when the connection is lost or closed, and starts a new one once
a recovery attempt (which asks the provider anyway) has brought it back.

No I/O, no waiting. The one clock read here is the wall clock, since
``expires_at`` is wall-clock time; it is injectable (``wall_clock``).
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import logging
from collections.abc import Awaitable, Callable, Generator
from typing import cast

from amqp_client import auth, uri
from amqp_client.auth import Credentials
from amqp_client.errors import CredentialsError
from amqp_client.session.recovery import (
    RESTORE_TIMEOUT,
    Backoff,
    RecoveryOptions,
    Sleep,
)
from amqp_client.spec import ConnectionUpdateSecret

__all__ = [
    "REFRESH_AT",
    "CredentialsSource",
    "CredentialsState",
    "Fetch",
    "RefreshPlan",
    "Update",
    "check_source",
    "is_async_provider",
    "refresh_plan",
]

log = logging.getLogger("amqp_client.credentials")

#: What ``connect(credentials=...)`` takes.
CredentialsSource = (
    Credentials | Callable[[], Credentials] | Callable[[], Awaitable[Credentials]]
)

#: The share of the remaining lifetime after which credentials are refreshed.
REFRESH_AT = 0.8

#: The least delay between two tries of a failing refresh, seconds (so a
#: provider that fails at once with ``recovery_delay=0`` cannot spin).
MIN_RETRY_DELAY = 0.1

#: The ``reason`` a refresh sends with connection.update-secret.
REFRESH_REASON = "credentials refresh"


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def check_source(value: object) -> CredentialsSource | None:
    """Check ``connect(credentials=...)`` (before any I/O).

    Raises:
        TypeError: neither None, ``Credentials`` nor a callable.
    """
    if value is None or isinstance(value, Credentials) or callable(value):
        return cast(CredentialsSource | None, value)
    raise TypeError(
        "credentials: expected Credentials or a callable returning them, got "
        f"{type(value).__name__}"
    )


def is_async_provider(source: CredentialsSource | None) -> bool:
    """Whether ``source`` is a coroutine function (or an object whose
    ``__call__`` is one): asyncio only."""
    if source is None or isinstance(source, Credentials):
        return False
    # An object whose __call__ is a coroutine function counts too.
    call = getattr(type(source), "__call__", None)  # noqa: B004  (not a callable() test)
    return inspect.iscoroutinefunction(source) or inspect.iscoroutinefunction(call)


@dataclasses.dataclass(frozen=True, slots=True)
class Fetch:
    """Ask the provider; send back what :meth:`CredentialsState.accept`
    made of its answer, or the exception (a :class:`CredentialsError`)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Update:
    """Send ``method`` (connection.update-secret) and wait at most
    ``timeout`` seconds for update-secret-ok; send back None, or the
    failure."""

    method: ConnectionUpdateSecret
    timeout: float


#: Steps of :func:`refresh_plan` and what a front sends back after each.
RefreshPlan = Generator[
    Sleep | Fetch | Update, Credentials | BaseException | None, None
]


class CredentialsState:
    """One connection's credentials: their source, the last answer, the
    last secret the broker accepted, and when to refresh.

    Args:
        source: what ``connect(credentials=...)`` was given (checked).
        backoff: the delays between tries of a failing refresh (the
            connection's recovery delays).
        wall_clock: the time now, an aware ``datetime``.
    """

    def __init__(
        self,
        source: CredentialsSource | None = None,
        backoff: RecoveryOptions | None = None,
        wall_clock: Callable[[], datetime.datetime] = _utc_now,
    ) -> None:
        self.provider: (
            Callable[[], Credentials] | Callable[[], Awaitable[Credentials]] | None
        ) = None
        #: The credentials the last attempt (or refresh) used, if not the URL's.
        self.current: Credentials | None = None
        if isinstance(source, Credentials):
            self.current = source
        elif source is not None:
            self.provider = source
        #: The last secret the broker accepted with update-secret-ok.
        self.secret: str | None = None
        #: When to refresh, on the front's monotonic clock (None: never).
        self.refresh_due: float | None = None
        self.backoff = backoff or RecoveryOptions()
        self.wall_clock = wall_clock
        #: How long the provider may take to answer, and a refresh waits
        #: for update-secret-ok, seconds (the session sets it).
        self.timeout = RESTORE_TIMEOUT
        #: Reports a failure: the session logs it and runs the callbacks.
        self.report: Callable[[BaseException], None] = lambda error: None

    def __repr__(self) -> str:
        source = "provider" if self.provider is not None else "fixed"
        return f"<CredentialsState {source} {self.current!r}>"

    # --- an attempt -------------------------------------------------------------------

    def accept(self, answer: object, params: uri.ConnectionParameters) -> Credentials:
        """Check the provider's ``answer``: ``Credentials`` that the auth
        mechanism of ``params`` can carry.

        Raises:
            CredentialsError: anything else.
        """
        if inspect.isawaitable(answer):
            if inspect.iscoroutine(answer):
                answer.close()  # never awaited: no "never awaited" warning
            raise CredentialsError(
                "the credentials provider returned an awaitable: an async "
                "provider needs the asyncio client"
            )
        if not isinstance(answer, Credentials):
            raise CredentialsError(
                "the credentials provider returned "
                f"{type(answer).__name__}, not Credentials"
            )
        try:
            auth.mechanism_for(params.auth_mechanism, answer.username, answer.password)
        except (TypeError, ValueError) as exc:
            raise CredentialsError(
                f"the credentials provider's answer is not usable: {exc}"
            ) from None
        return answer

    def no_answer(self) -> CredentialsError:
        """The provider did not answer within :attr:`timeout` (to report
        with :meth:`failed`)."""
        return CredentialsError(
            f"the credentials provider did not answer within {self.timeout:g} s"
        )

    def failed(self, error: BaseException) -> CredentialsError:
        """The provider raised ``error`` (or its answer was refused): the
        :class:`CredentialsError` to raise or send back, with ``error`` as
        its cause. Reported (``report``: logged, callbacks) here."""
        if isinstance(error, CredentialsError):
            failure = error
        else:
            failure = CredentialsError(
                f"the credentials provider failed: {type(error).__name__}: {error}"
            )
            failure.__cause__ = error
        self.report(failure)
        return failure

    def obtained(self, credentials: Credentials, now: float) -> None:
        """The provider answered ``credentials`` (at ``now``, the front's
        monotonic clock): use them, and schedule their refresh."""
        self.current = credentials
        self.secret = None
        self.refresh_due = None
        if credentials.expires_at is not None:
            left = (credentials.expires_at - self.wall_clock()).total_seconds()
            self.refresh_due = now + max(0.0, REFRESH_AT * left)

    def secret_accepted(self, secret: bytes) -> None:
        """The broker accepted ``secret`` (update-secret-ok): later attempts
        log in with it."""
        try:
            self.secret = secret.decode()
        except UnicodeDecodeError:
            # Not a password SASL PLAIN could send: keep the old one.
            log.warning("the updated secret is not UTF-8; recovery keeps the old one")

    def apply(self, params: uri.ConnectionParameters) -> uri.ConnectionParameters:
        """``params`` with the user name and password an attempt logs in with."""
        username, password = params.username, params.password
        if self.current is not None:
            username, password = self.current.username, self.current.password
        if self.secret is not None:
            password = self.secret
        if (username, password) == (params.username, params.password):
            return params
        return params.replace(username=username, password=password)


def refresh_plan(state: CredentialsState, now: Callable[[], float]) -> RefreshPlan:
    """Refresh ``state``'s credentials while one connection is open.

    Sleeps until the refresh is due, then asks the provider (:class:`Fetch`)
    and sends the new password (:class:`Update`); after a failure (reported
    through ``state.report``) it tries again after a backoff delay, for as
    long as the front drives it. Returns when the credentials in use do not
    expire (or there is no provider). ``now`` is the front's monotonic clock.
    """
    if state.provider is None:
        return
    while True:
        due = state.refresh_due
        if due is None:
            return
        delay = due - now()
        if delay > 0:
            yield Sleep(delay)
        initial = max(MIN_RETRY_DELAY, state.backoff.initial_delay)
        backoff = Backoff(initial, max(initial, state.backoff.max_delay))
        backoff.next()  # the first retry waits too
        tries = 0
        while True:
            tries += 1
            answer = yield Fetch()
            if isinstance(answer, Credentials):
                secret = answer.password.encode()
                method = ConnectionUpdateSecret(secret, REFRESH_REASON)
                failure = yield Update(method, state.timeout)
                if not isinstance(failure, BaseException):
                    state.obtained(answer, now())
                    log.info("credentials refreshed (connection.update-secret)")
                    break
                state.report(failure)
            # Else the provider failed, and the front reported it (failed()).
            delay = backoff.next()
            log.info(
                "retrying the credentials refresh in %.1f s (try %d failed)",
                delay,
                tries,
            )
            yield Sleep(delay)
