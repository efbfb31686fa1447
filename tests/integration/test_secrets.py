"""A password never shows: not in a repr or str of the connection or its
parameters, not in an error (its str, repr, args, chain or traceback text),
not in a log record at any level (DESIGN.md §4). Both fronts.

Every log record of the whole process is captured at DEBUG from the root
logger while the client connects, works and fails; each record is searched
whole (message, args, exception text, stack, every attribute).

* A failed login with a distinctive wrong password (:data:`SECRET`): that
  string must appear nowhere, not even in the error that reports the
  refused login. The same for a URL the client rejects, an unreachable
  port, and a list of brokers that all fail.
* A successful login with the shared broker's credentials (guest/guest:
  "guest" alone is too common to search for, so the whole ``user:password``
  pair, the URL with its password and SASL PLAIN's response are searched),
  including a channel error and a clean close.

No user is created on the shared broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

import amqp_client
from amqp_client import AuthenticationError, NotFoundError, blocking, uri
from tests.integration.helpers import STEP, amqp_url, unique

pytestmark = pytest.mark.integration

#: The wrong password: distinctive enough that any hit is a leak.
SECRET = "s3cr3t-Zq9-pw"

FRONTS = ("aio", "blocking")


# -- capturing and searching ---------------------------------------------------------------


class Capture(logging.Handler):
    """Every record that reaches the root logger, kept whole."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> Iterator[str]:
        formatter = logging.Formatter()
        for record in self.records:
            yield record.getMessage()
            yield repr(record.args)
            yield repr(vars(record))
            if record.exc_info:
                yield formatter.formatException(record.exc_info)
            if record.stack_info:
                yield record.stack_info


@contextlib.contextmanager
def capture_logs() -> Iterator[Capture]:
    """Capture all logging at DEBUG (the client's loggers included, whatever
    level an earlier test left them at)."""
    handler = Capture()
    root = logging.getLogger()
    loggers = [root, logging.getLogger("amqp_client"), logging.getLogger("asyncio")]
    levels = [logger.level for logger in loggers]
    disabled = logging.root.manager.disable
    logging.disable(logging.NOTSET)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        logging.disable(disabled)


def exception_texts(exc: BaseException) -> Iterator[str]:
    """Everything an error shows: str, repr, args and attributes of it and of
    every exception chained to it, and the formatted traceback."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        error = todo.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield str(error)
        yield repr(error)
        yield repr(error.args)
        yield repr(getattr(error, "__dict__", {}))
        yield from getattr(error, "__notes__", [])
        todo.extend(e for e in (error.__cause__, error.__context__) if e is not None)
        if isinstance(error, BaseExceptionGroup):
            todo.extend(error.exceptions)
    yield "".join(traceback.format_exception(exc))


def assert_absent(needles: list[str], texts: list[str], where: str) -> None:
    for needle in needles:
        for text in texts:
            assert needle not in text, f"{needle!r} shows in {where}: {text[:500]!r}"


def with_password(url: str, password: str) -> str:
    """``url`` with its password replaced by ``password``."""
    params = uri.parse_url(url)
    host = f"[{params.host}]" if ":" in params.host else params.host
    scheme = "amqps" if params.tls else "amqp"
    return (
        f"{scheme}://{quote(params.username, safe='')}:{quote(password, safe='')}"
        f"@{host}:{params.port}/{quote(params.vhost, safe='')}"
    )


# -- running a scenario on either front -----------------------------------------------------


def fail_to_connect(
    front: str, target: str | list[str], **kwargs: Any
) -> BaseException:
    """Connect with ``front``; return the error it raised (bounded)."""
    if front == "aio":

        async def main() -> BaseException:
            try:
                async with asyncio.timeout(STEP * 2):
                    connection = await amqp_client.connect(target, **kwargs)
            except Exception as exc:
                return exc
            await connection.close()
            raise AssertionError("connected")

        return asyncio.run(main())
    try:
        connection = blocking.connect(target, connection_timeout=STEP, **kwargs)
    except Exception as exc:
        return exc
    connection.close()
    raise AssertionError("connected")


# -- tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("front", FRONTS)
def test_a_refused_login_never_shows_the_password(front: str) -> None:
    url = with_password(amqp_url(), SECRET)
    with capture_logs() as logs:
        error = fail_to_connect(front, url)
    assert isinstance(error, AuthenticationError), repr(error)
    assert error.reply_code == 403
    texts = [*exception_texts(error), *logs.texts()]
    params = uri.parse_url(url)
    texts += [repr(params), str(params), params.redacted_url()]
    texts.append(repr(amqp_client.connect(url)))  # never awaited: no I/O
    assert_absent([SECRET, quote(SECRET)], texts, f"a refused login ({front})")
    # The capture listened: the client logged the refusal.
    assert any(r.name.startswith("amqp_client") for r in logs.records), logs.records


@pytest.mark.parametrize("front", FRONTS)
def test_urls_that_fail_never_show_the_password(front: str) -> None:
    good = uri.parse_url(amqp_url())
    refused = f"amqp://{good.username}:{SECRET}@127.0.0.1:1/"  # nothing listens
    cases: list[tuple[str | list[str], dict[str, Any]]] = [
        (f"amqp://guest:{SECRET}@127.0.0.1:5672/%2f?no_such_key=1", {}),
        (f"amqp://guest:{SECRET}@127.0.0.1:5672/a/b", {}),
        (refused, {}),
        ([refused, with_password(amqp_url(), SECRET)], {}),
        (with_password(amqp_url(), SECRET), {"heartbeat": -1}),
    ]
    for target, kwargs in cases:
        with capture_logs() as logs:
            error = fail_to_connect(front, target, **kwargs)
        assert isinstance(error, ValueError | amqp_client.AMQPError | OSError), repr(
            error
        )
        texts = [*exception_texts(error), *logs.texts()]
        assert_absent([SECRET, quote(SECRET)], texts, f"{target!r} ({front})")


def _credential_needles(url: str) -> list[str]:
    params = uri.parse_url(url)
    pair = f"{params.username}:{params.password}"
    needles = [pair, quote(pair, safe=":"), url]
    # SASL PLAIN's response, raw and as a bytes repr shows it.
    response = f"\0{params.username}\0{params.password}"
    needles += [response, repr(response.encode())[2:-1]]
    if len(params.password) >= 8:  # distinctive enough on its own
        needles.append(params.password)
    return needles


async def _aio_session(url: str) -> list[str]:
    texts: list[str] = []
    async with asyncio.timeout(STEP * 3):
        conn = await amqp_client.connect(url)
        texts += [repr(conn), str(conn)]
        ch = await conn.channel()
        texts += [repr(ch), str(ch)]
        ok = await ch.queue_declare("", exclusive=True)
        await ch.basic_publish(b"body", routing_key=ok.queue)
        delivery = await ch.basic_get(ok.queue, no_ack=True)
        assert delivery is not None and delivery.body == b"body"
        with pytest.raises(NotFoundError) as info:
            await ch.queue_declare(unique("missing"), passive=True)
        texts += exception_texts(info.value)
        await conn.close()
        texts += [repr(conn), str(conn)]
    return texts


def _blocking_session(url: str) -> list[str]:
    texts: list[str] = []
    conn = blocking.connect(url, connection_timeout=STEP)
    try:
        texts += [repr(conn), str(conn)]
        ch = conn.channel(timeout=STEP)
        texts += [repr(ch), str(ch)]
        ok = ch.queue_declare("", exclusive=True, timeout=STEP)
        ch.basic_publish(b"body", routing_key=ok.queue)
        delivery = ch.basic_get(ok.queue, no_ack=True, timeout=STEP)
        assert delivery is not None and delivery.body == b"body"
        with pytest.raises(NotFoundError) as info:
            ch.queue_declare(unique("missing"), passive=True, timeout=STEP)
        texts += exception_texts(info.value)
    finally:
        conn.close()
    texts += [repr(conn), str(conn)]
    return texts


@pytest.mark.parametrize("front", FRONTS)
def test_a_session_never_shows_the_credentials(front: str) -> None:
    url = amqp_url()
    with capture_logs() as logs:
        if front == "aio":
            texts = asyncio.run(_aio_session(url))
        else:
            texts = _blocking_session(url)
    params = uri.parse_url(url)
    texts += [repr(params), str(params), params.redacted_url(), *logs.texts()]
    assert_absent(_credential_needles(url), texts, f"a session ({front})")
    assert any(r.name.startswith("amqp_client") for r in logs.records), logs.records


def test_the_search_finds_a_leak() -> None:
    """The searching helpers are not blind: a record or an error that does
    carry the password is caught."""
    url = with_password(amqp_url(), SECRET)
    with capture_logs() as logs:
        logging.getLogger("amqp_client.test").debug("connecting to %s", url)
    with pytest.raises(AssertionError):
        assert_absent([SECRET], list(logs.texts()), "a planted record")
    try:
        try:
            raise ValueError(url)
        except ValueError as inner:
            raise RuntimeError("connect failed") from inner
    except RuntimeError as exc:
        error = exc
    assert SECRET not in str(error)
    with pytest.raises(AssertionError):
        assert_absent([SECRET], list(exception_texts(error)), "a chained error")
    with pytest.raises(AssertionError):
        assert_absent(_credential_needles(amqp_url()), [amqp_url()], "the URL")
