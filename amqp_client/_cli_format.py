"""Pure helpers of the command line: option values in, text out.

``key=value`` options (``--header``, ``--argument``) and ``--timestamp``
parse here; deliveries become JSON lines here; the progress line and the
one-line error messages are built here. Nothing here connects to a broker
or reads ``sys``: streams and clocks are passed in, so the tests drive it
directly.

Text that came from the broker (reply texts, names it chose, anything in an
exception's message or a log record) is passed through :func:`escape`
before it reaches a terminal: an escape sequence in a reply text must not
recolour, retitle or rewrite the user's terminal, nor a newline forge a
second line of output.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import logging
import math
import re
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO

from amqp_client._delivery import DeliveryData
from amqp_client.errors import (
    ChannelClosed,
    ConnectionClosed,
    ConnectionLost,
    MessageNacked,
    MessageReturned,
)
from amqp_client.spec import BasicProperties, ReplyCode

__all__ = [
    "EscapingFormatter",
    "Failure",
    "Progress",
    "UsageProblem",
    "delivery_json",
    "error_line",
    "escape",
    "jsonable",
    "parse_pair",
    "parse_pairs",
    "parse_timestamp",
    "parse_value",
    "plural",
    "returned_text",
]

_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_INT64 = (-(1 << 63), (1 << 63) - 1)

#: Seconds between two progress lines.
PROGRESS_INTERVAL = 0.5


class Failure(Exception):
    """A command failed for a reason the broker gave (exit status 1)."""


class UsageProblem(ValueError):
    """A bad option value found after argparse accepted the command line;
    the command line exits 2 with this message."""


# --- option values -----------------------------------------------------------------


def parse_value(text: str) -> Any:
    """The value of a ``--header``/``--argument`` ``key=value`` pair.

    ``12`` and ``-3`` become ints (int64; a leading zero such as ``007``
    keeps it a string), ``true``/``false`` (any case) bools, ``"..."``
    the string between the quotes as it is (so ``"12"`` is the string
    ``12``); anything else stays a string.

    Raises:
        UsageProblem: an integer outside int64.
    """
    if _INT.fullmatch(text):
        number = int(text)
        if not _INT64[0] <= number <= _INT64[1]:
            raise UsageProblem(f"integer {text} is outside int64")
        return number
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def parse_pair(text: str) -> tuple[str, Any]:
    """``key=value`` into ``(key, parse_value(value))``.

    Raises:
        UsageProblem: no ``=``, an empty key, or a bad value.
    """
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageProblem(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, parse_value(value)
    except UsageProblem as exc:
        raise UsageProblem(f"{key}: {exc}") from None


def parse_pairs(pairs: Iterable[tuple[str, Any]], what: str) -> dict[str, Any] | None:
    """A table from parsed pairs; None if there are none.

    Raises:
        UsageProblem: a key given twice.
    """
    table: dict[str, Any] = {}
    for key, value in pairs:
        if key in table:
            raise UsageProblem(f"{what} {key!r} given twice")
        table[key] = value
    return table or None


def parse_timestamp(
    text: str, now: Callable[[], _dt.datetime] | None = None
) -> _dt.datetime | int:
    """``--timestamp``: ``now``, seconds since the epoch, or ISO 8601
    (``2024-05-01T12:00:00Z``; without an offset it is UTC).

    Raises:
        UsageProblem: none of those.
    """
    if text == "now":
        current = now() if now is not None else _dt.datetime.now(_dt.UTC)
        return current.replace(microsecond=0)
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        value = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageProblem(
            f"expected now, seconds since the epoch or ISO 8601, got {text!r}"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value


# --- output ------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """A field-table value as JSON can hold it.

    bytes become ``{"base64": "..."}``, datetimes ISO 8601 strings,
    Decimals strings (exact), non-finite floats strings; tables and arrays
    are converted recursively.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def properties_dict(properties: BasicProperties) -> dict[str, Any]:
    """The properties that are set, by their Python names, JSON-able."""
    return {
        field.name: jsonable(getattr(properties, field.name))
        for field in properties.FIELDS
        if getattr(properties, field.name) is not None
    }


def delivery_json(delivery: DeliveryData) -> dict[str, Any]:
    """One delivery as the ``--json`` object.

    ``body`` is the UTF-8 text of the body, or its base64 when it is not
    UTF-8; ``body_encoding`` says which (``"utf-8"`` or ``"base64"``).
    ``message_count`` is there for basic.get only.
    """
    body = bytes(delivery.body)
    try:
        text, encoding = body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(body).decode("ascii"), "base64"
    result: dict[str, Any] = {
        "body": text,
        "body_encoding": encoding,
        "exchange": delivery.exchange,
        "routing_key": delivery.routing_key,
        "delivery_tag": delivery.delivery_tag,
        "redelivered": delivery.redelivered,
        "properties": properties_dict(delivery.properties),
    }
    if delivery.message_count is not None:
        result["message_count"] = delivery.message_count
    return result


def escape(text: str, *, one_line: bool = True) -> str:
    """``text`` safe to write to a terminal: each character that is not
    printable (control characters such as ESC, C1 controls, bidirectional
    overrides, lone surrogates) written as Python writes it in a string
    literal, so ``"\\x1b[31m"`` shows as ``\\x1b[31m``. Printable characters,
    non-ASCII ones included, stay as they are.

    With ``one_line`` (the default) newlines, tabs and carriage returns are
    escaped too (``\\n``, ``\\t``, ``\\r``); otherwise newlines and tabs are
    kept, for multi-line output such as a traceback or a log record.
    """
    if text.isprintable():  # the common case: nothing to do
        return text
    keep = "" if one_line else "\n\t"
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def error_line(exc: BaseException) -> str:
    """The one line (without newline) the command line prints for ``exc``.

    Broker refusals name the reply code and text:
    ``error: 406 PRECONDITION_FAILED - inequivalent arg 'durable' ...``.
    The broker's text is escaped (:func:`escape`, newlines included); in
    the rest, runs of whitespace become one space and other unprintable
    characters are escaped.
    """
    if isinstance(exc, ConnectionLost):
        text = str(exc)
    elif isinstance(exc, ChannelClosed | ConnectionClosed):
        reply_text = escape(exc.reply_text)
        if not reply_text:
            try:
                reply_text = ReplyCode(exc.reply_code).name
            except ValueError:
                reply_text = "(no reply text)"
        text = f"{exc.reply_code} {reply_text}"
    elif isinstance(exc, MessageReturned):
        message = exc.message
        text = "message returned: " + returned_text(
            exc.reply_code,
            exc.reply_text,
            getattr(message, "exchange", None),
            getattr(message, "routing_key", None),
        )
    elif isinstance(exc, MessageNacked):
        text = str(exc)
    elif isinstance(exc, Failure | UsageProblem | TimeoutError):
        text = str(exc) or type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return "error: " + escape(_one_line(text))


def returned_text(
    reply_code: int,
    reply_text: str,
    exchange: str | None = None,
    routing_key: str | None = None,
) -> str:
    """``312 NO_ROUTE (exchange 'x', routing key 'k')`` for a returned message
    (the parenthesis only when both are known); the broker's text escaped
    (:func:`escape`), the names as Python literals."""
    text = f"{reply_code} {escape(reply_text)}"
    if exchange is not None and routing_key is not None:
        text += f" (exchange {exchange!r}, routing key {routing_key!r})"
    return text


def write_traceback(exc: BaseException, stream: TextIO) -> None:
    """The traceback of ``exc``; its messages may hold the broker's text,
    so unprintable characters are escaped (newlines and tabs kept)."""
    stream.write(escape("".join(traceback.format_exception(exc)), one_line=False))


class EscapingFormatter(logging.Formatter):
    """A log formatter for a terminal: the formatted record (its message
    may quote the broker, its traceback too) with :func:`escape` applied,
    newlines and tabs kept."""

    def format(self, record: logging.LogRecord) -> str:
        return escape(super().format(record), one_line=False)


class Progress:
    """The ``\\r`` progress line of long publishes and consumes.

    Shown only when ``enabled`` (by default: when ``stream`` is a
    terminal), first after ``interval`` seconds, then at most every
    ``interval`` seconds, so short runs print nothing. :meth:`finish` ends
    a shown line with a summary and a newline.
    """

    def __init__(
        self,
        stream: TextIO,
        verb: str,
        total: int | None = None,
        *,
        enabled: bool | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.verb = verb
        self.total = total
        self.enabled = is_terminal(stream) if enabled is None else enabled
        # Read at each construction: tests (and users) may change the module's
        # PROGRESS_INTERVAL.
        self.interval = PROGRESS_INTERVAL if interval is None else interval
        self.count = 0
        self.shown = False
        self._clock = clock
        self._start = clock()
        self._last = self._start
        self._width = 0

    def add(self, count: int = 1) -> None:
        self.count += count
        if self.enabled:
            now = self._clock()
            if now - self._last >= self.interval:
                self._last = now
                self._show(now, final=False)

    def finish(self) -> None:
        """Print the summary line if a progress line was shown."""
        if self.enabled and self.shown:
            self._show(self._clock(), final=True)

    def _show(self, now: float, *, final: bool) -> None:
        elapsed = now - self._start
        rate = self.count / elapsed if elapsed > 0 else 0.0
        count = str(self.count)
        if self.total is not None and not final:
            count += f"/{self.total}"
        line = f"{self.verb} {count} messages"
        if final:
            line += f" in {elapsed:.1f} s"
        line += f", {rate:,.0f} msg/s"
        padding = " " * max(0, self._width - len(line))
        self._width = len(line)
        self.stream.write(f"\r{line}{padding}" + ("\n" if final else ""))
        self.stream.flush()
        self.shown = True


def is_terminal(stream: object) -> bool:
    """``stream.isatty()``, False for streams that cannot say."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None:
        return False
    try:
        return bool(isatty())
    except (OSError, ValueError):
        return False
