"""The command line: ``amqp-client`` or ``python -m amqp_client``.

Commands (``amqp-client COMMAND --help`` for each one's options)::

    publish [BODY]        publish a message (BODY, --file PATH, or stdin)
    consume QUEUE         print messages as they arrive
    get QUEUE             print one message (basic.get)
    declare-queue NAME    declare a queue; print its name and counts
    declare-exchange NAME declare an exchange
    bind QUEUE EXCHANGE   bind a queue to an exchange
    delete-queue NAME     delete a queue; print how many messages went
    delete-exchange NAME  delete an exchange
    purge NAME            purge a queue; print how many messages went
    doc [NAME]            the AMQP spec's text of a method or class

The broker is ``--url``, else the ``AMQP_URL`` environment variable, else
``amqp://guest:guest@localhost:5672/%2f``. A password is never printed.

Output:

* ``consume`` and ``get`` print each body as it is, one per line; with
  ``--json`` one JSON object per line (see
  :func:`amqp_client._cli_format.delivery_json`): ``body`` (the UTF-8
  text, or base64 when the body is not UTF-8, as ``body_encoding``
  says), ``exchange``, ``routing_key``, ``delivery_tag``, ``redelivered``,
  ``properties`` (those set, headers included; bytes become
  ``{"base64": ...}``, datetimes ISO 8601, decimals strings) and, for
  ``get``, ``message_count``.
* ``get`` on an empty queue prints nothing on stdout, ``queue 'NAME' is
  empty`` on stderr, and exits 0 (empty is an answer, not an error).
* ``consume`` acknowledges each message after printing it (unless
  ``--no-ack``) and stops after ``--count`` messages or ``--timeout``
  seconds without one (exit 0 either way; without either it runs until
  Ctrl-C). With ``--no-ack`` the broker pushes messages without waiting:
  those it sent past ``--count`` are lost.
* ``publish``, ``consume``: a progress line with the rate goes to stderr,
  rewritten with ``\\r``, when stderr is a terminal (for ``consume``: and
  stdout is not) and the run lasts over half a second.

Exit status: 0 done; 1 the broker refused (the line names the reply code
and text: ``error: 406 PRECONDITION_FAILED - ...``), a nacked or returned
publish, a consumer cancelled by the broker, a connection failure or a
timeout; 2 a usage error (bad option or value); 130 interrupted (Ctrl-C).
Errors are one line on stderr; ``--debug`` adds the traceback and the
library's log.

Booleans and numbers in ``--header``/``--argument`` ``KEY=VALUE``: ``12``
is an int, ``true``/``false`` a bool, ``"12"`` (quoted) the string, other
values strings.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from amqp_client import spec, uri
from amqp_client._cli_commands import COMMANDS, DEFAULT_PREFETCH, Streams
from amqp_client._cli_format import (
    EscapingFormatter,
    Failure,
    UsageProblem,
    error_line,
    parse_pair,
    parse_timestamp,
    write_traceback,
)
from amqp_client._spec_base import Method
from amqp_client.errors import AMQPError

__all__ = ["DEFAULT_URL", "build_parser", "list_methods", "main", "resolve_url", "show"]

DEFAULT_URL = "amqp://guest:guest@localhost:5672/%2f"

WIDTH = 80


def _classes() -> dict[int, list[type[Method]]]:
    grouped: dict[int, list[type[Method]]] = {}
    for cls in spec.METHODS.values():
        grouped.setdefault(cls.CLASS_ID, []).append(cls)
    return grouped


def _class_module_doc(class_id: int) -> str:
    first = _classes()[class_id][0]
    module = sys.modules[first.__module__]
    return inspect.cleandoc(module.__doc__ or "")


def list_methods(out: TextIO) -> None:
    """Every class and method: ids, direction, label."""
    for class_id, methods in sorted(_classes().items()):
        class_name = methods[0].NAME.split(".")[0]
        summary = _class_module_doc(class_id).splitlines()[0]
        label = summary.split(": ", 1)[-1] if ": " in summary else summary
        out.write(f"{class_name} ({class_id}): {label}\n")
        for cls in sorted(methods, key=lambda c: c.METHOD_ID):
            label = (cls.__doc__ or "").strip().splitlines()[0].rstrip(".")
            flags = "sync" if cls.SYNCHRONOUS else ""
            if cls.HAS_CONTENT:
                flags = (flags + " content").strip()
            line = f"  {cls.NAME:<24} {class_id}/{cls.METHOD_ID:<4} {label}"
            if flags:
                line += f" [{flags}]"
            if len(line) > WIDTH:
                line = line[: WIDTH - 3] + "..."
            out.write(line + "\n")
    for props in spec.PROPERTIES.values():
        out.write(f"\n{props.__name__}: {len(props.FIELDS)} content properties\n")
        out.write(f"  (python -m amqp_client doc {props.NAME.split()[0]}.properties)\n")


def show(name: str, out: TextIO) -> bool:
    """Print the documentation of a method, a class or a properties class."""
    key = name.strip().lower().replace("_", "-")
    if key in spec.BY_NAME:
        cls = spec.BY_NAME[key]
        out.write(f"{cls.NAME} ({cls.CLASS_ID}/{cls.METHOD_ID}): {cls.__name__}\n")
        out.write("=" * min(WIDTH, len(cls.NAME) + 30) + "\n\n")
        out.write(inspect.cleandoc(cls.__doc__ or "") + "\n")
        return True
    for props in spec.PROPERTIES.values():
        if key in (f"{props.NAME.split()[0]}.properties", props.__name__.lower()):
            out.write(f"{props.__name__} (class {props.CLASS_ID})\n\n")
            out.write(inspect.cleandoc(props.__doc__ or "") + "\n")
            return True
    for class_id, methods in _classes().items():
        if methods[0].NAME.split(".")[0] == key:
            out.write(_class_module_doc(class_id) + "\n\nMethods:\n")
            for cls in sorted(methods, key=lambda c: c.METHOD_ID):
                label = (cls.__doc__ or "").strip().splitlines()[0]
                out.write(f"  {cls.NAME:<24} {label}\n")
            return True
    return False


def resolve_url(url: str | None, environ: Any = None) -> str:
    """``--url``, else ``$AMQP_URL``, else :data:`DEFAULT_URL`."""
    if url:
        return url
    environ = os.environ if environ is None else environ
    return str(environ.get("AMQP_URL") or DEFAULT_URL)


# --- argument types: bad values exit 2 with argparse's message ----------------------


def _argument_type(parse: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except UsageProblem as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name  # argparse names it in "invalid NAME value"
    return convert


def _int_in(low: int, high: int | None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise UsageProblem(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            limit = f"{low}..{high}" if high is not None else f">= {low}"
            raise UsageProblem(f"expected an integer {limit}, got {value}")
        return value

    return _argument_type(parse, "integer")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageProblem(f"expected seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise UsageProblem(f"expected a positive number of seconds, got {text!r}")
    return value


_pair = _argument_type(parse_pair, "KEY=VALUE")
_timestamp = _argument_type(parse_timestamp, "timestamp")
_positive_seconds = _argument_type(_seconds, "seconds")


# --- the parser ------------------------------------------------------------------


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


def _prog() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name == "amqp-client" else "python -m amqp_client"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of every command."""
    # Given before or after the command; SUPPRESS keeps the subcommand's
    # absent option from overwriting one given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help="broker URL (default: $AMQP_URL, else amqp://guest:guest@localhost:5672/%%2f)",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="on errors, print the traceback too; log the library's debug output",
    )
    parser = argparse.ArgumentParser(
        prog=prog or _prog(),
        description="amqp-client command line: publish, consume and manage "
        "queues and exchanges on an AMQP 0-9-1 broker (RabbitMQ).",
        epilog="exit status: 0 ok, 1 broker refusal or connection failure, "
        "2 usage error, 130 interrupted",
        parents=[common],
        formatter_class=_Formatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str = "") -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help,
            description=description or help,
            parents=[common],
            formatter_class=_Formatter,
        )
        return sub

    # publish
    pub = command(
        "publish",
        "publish a message",
        "Publish a message. The body is BODY, the content of --file PATH, or "
        "stdin (when BODY is - or absent and stdin is not a terminal).",
    )
    pub.add_argument("body", nargs="?", metavar="BODY", help="the body, or - for stdin")
    pub.add_argument("-f", "--file", metavar="PATH", help="read the body from PATH")
    pub.add_argument("-e", "--exchange", default="", help='exchange (default: "")')
    pub.add_argument(
        "-r", "--routing-key", default="", metavar="KEY", help="routing key"
    )
    props = pub.add_argument_group("message properties")
    props.add_argument("--content-type", metavar="MIME")
    props.add_argument("--content-encoding", metavar="ENCODING")
    mode = props.add_mutually_exclusive_group()
    mode.add_argument(
        "--delivery-mode",
        type=_int_in(1, 2),
        metavar="{1,2}",
        help="1 transient, 2 persistent",
    )
    mode.add_argument(
        "--persistent", action="store_true", help="same as --delivery-mode 2"
    )
    props.add_argument("--priority", type=_int_in(0, 255), metavar="0-255")
    props.add_argument("--correlation-id", metavar="ID")
    props.add_argument("--reply-to", metavar="QUEUE")
    props.add_argument(
        "--expiration", metavar="MS", help="per-message TTL in milliseconds"
    )
    props.add_argument("--message-id", metavar="ID")
    props.add_argument("--type", metavar="TYPE", help="message type name")
    props.add_argument("--app-id", metavar="ID")
    props.add_argument(
        "--user-id", metavar="USER", help="must be the connection's user (RabbitMQ)"
    )
    props.add_argument(
        "--timestamp",
        type=_timestamp,
        metavar="WHEN",
        help="now, seconds since the epoch, or ISO 8601",
    )
    props.add_argument(
        "-H",
        "--header",
        type=_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a header (repeat for more); 12 is an int, true/false a bool, "
        '"12" a string',
    )
    pub.add_argument(
        "--mandatory",
        action="store_true",
        help="an unroutable message comes back: exit 1",
    )
    pub.add_argument(
        "--confirm",
        action="store_true",
        help="publisher confirms: wait for the broker to take each message; "
        "exit 1 on a nack or a return",
    )
    pub.add_argument(
        "-n",
        "--count",
        type=_int_in(1, None),
        default=1,
        metavar="N",
        help="publish the message N times (default 1)",
    )
    pub.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="with --confirm: how long to wait for a confirmation (default 30)",
    )

    # consume / get
    con = command(
        "consume",
        "print messages from a queue as they arrive",
        "Consume from QUEUE and print each body on a line (or a JSON object "
        "with --json). Each message is acknowledged after it is printed.",
    )
    con.add_argument("queue", metavar="QUEUE")
    con.add_argument("--json", action="store_true", help="one JSON object per message")
    con.add_argument(
        "-n",
        "--count",
        type=_int_in(1, None),
        metavar="N",
        help="stop after N messages",
    )
    con.add_argument(
        "--timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        help="stop after SECONDS without a message",
    )
    con.add_argument(
        "--no-ack",
        action="store_true",
        help="no acknowledgements (messages delivered past --count are lost)",
    )
    con.add_argument(
        "--prefetch",
        type=_int_in(0, 65535),
        metavar="N",
        help=f"unacknowledged messages in flight (default {DEFAULT_PREFETCH}, "
        "at most --count)",
    )
    got = command(
        "get",
        "print one message from a queue",
        "Take one message from QUEUE (basic.get) and print it. An empty queue "
        "prints nothing on stdout, a note on stderr, and exits 0.",
    )
    got.add_argument("queue", metavar="QUEUE")
    got.add_argument("--json", action="store_true", help="print a JSON object")
    got.add_argument(
        "--requeue",
        action="store_true",
        help="put the message back (it comes back marked redelivered)",
    )

    # topology
    dq = command(
        "declare-queue",
        "declare a queue",
        'Declare a queue ("" for a server-named one) and print its name, '
        "message count and consumer count, tab-separated.",
    )
    dq.add_argument("name", metavar="NAME")
    dq.add_argument("--durable", action="store_true")
    dq.add_argument(
        "--exclusive",
        action="store_true",
        help="(deleted when this command disconnects)",
    )
    dq.add_argument("--auto-delete", action="store_true")
    dq.add_argument("--passive", action="store_true", help="only check that it exists")
    _arguments(dq, "x-queue-type=quorum, x-max-length=1000")
    dx = command("declare-exchange", "declare an exchange")
    dx.add_argument("name", metavar="NAME")
    dx.add_argument(
        "-t",
        "--type",
        default="direct",
        help="direct (default), fanout, topic, headers...",
    )
    dx.add_argument("--durable", action="store_true")
    dx.add_argument("--auto-delete", action="store_true")
    dx.add_argument("--internal", action="store_true")
    dx.add_argument("--passive", action="store_true", help="only check that it exists")
    _arguments(dx, "alternate-exchange=NAME")
    bd = command("bind", "bind a queue to an exchange")
    bd.add_argument("queue", metavar="QUEUE")
    bd.add_argument("exchange", metavar="EXCHANGE")
    bd.add_argument("-r", "--routing-key", default="", metavar="KEY")
    _arguments(bd, "x-match=all for a headers exchange")
    rq = command("delete-queue", "delete a queue; print how many messages it held")
    rq.add_argument("name", metavar="NAME")
    rq.add_argument("--if-unused", action="store_true", help="only without consumers")
    rq.add_argument("--if-empty", action="store_true", help="only when empty")
    rx = command("delete-exchange", "delete an exchange")
    rx.add_argument("name", metavar="NAME")
    rx.add_argument("--if-unused", action="store_true", help="only without bindings")
    pg = command("purge", "purge a queue; print how many messages it held")
    pg.add_argument("name", metavar="NAME")

    # doc
    doc = commands.add_parser(
        "doc",
        help="show the AMQP spec's documentation of a method or class",
        description="Show the spec text of a method (queue.declare), a class "
        "(basic) or content properties (basic.properties).",
    )
    doc.add_argument(
        "name", nargs="?", help="e.g. queue.declare, basic, basic.properties"
    )
    doc.add_argument("--list", action="store_true", help="list every class and method")
    return parser


def _arguments(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument(
        "-a",
        "--argument",
        type=_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"an argument (repeat for more), e.g. {example}",
    )


# --- running ---------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (see the module doc)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    debug = bool(getattr(args, "debug", False))
    stderr = sys.stderr
    # The library's log goes to stderr with --debug, its records escaped
    # (they quote the broker); otherwise nowhere (the error line says what
    # matters).
    library_log = logging.getLogger("amqp_client")
    previous_level = library_log.level
    handler: logging.Handler
    if debug:
        handler = logging.StreamHandler(stderr)
        handler.setFormatter(EscapingFormatter("%(name)s %(levelname)s: %(message)s"))
        library_log.setLevel(logging.DEBUG)
    else:
        handler = logging.NullHandler()
    library_log.addHandler(handler)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `... | head`: the reader went away
        _silence_stdout()
        return 0
    except (AMQPError, Failure, OSError) as exc:  # TimeoutError is an OSError
        _report(exc, debug, stderr)
        return 1
    except ValueError as exc:  # a bad value, found before anything is sent
        _report(exc, debug, stderr)
        return 2
    except Exception as exc:
        _report(exc, True, stderr)
        return 1
    finally:
        library_log.removeHandler(handler)
        library_log.setLevel(previous_level)


def _report(exc: BaseException, debug: bool, stderr: TextIO) -> None:
    if debug:
        write_traceback(exc, stderr)
    stderr.write(error_line(exc) + "\n")
    stderr.flush()


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the flush at exit does not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _run(args: argparse.Namespace) -> int:
    if args.command == "doc":
        if args.list or not args.name:
            list_methods(sys.stdout)
            return 0
        if not show(args.name, sys.stdout):
            close = [n for n in spec.BY_NAME if args.name.split(".")[-1] in n][:5]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            sys.stderr.write(f"unknown method or class: {args.name}{hint}\n")
            return 2
        return 0
    args.url = resolve_url(getattr(args, "url", None))
    try:
        uri.parse_url(args.url)
    except ValueError as exc:  # the message shows the URL without password
        raise UsageProblem(f"--url: {exc}") from None
    streams = Streams(sys.stdin, sys.stdout, sys.stderr)
    return COMMANDS[args.command](args, streams)
