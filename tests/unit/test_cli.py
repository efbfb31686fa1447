"""The command line without a broker: `doc` (the spec's text, readable at 80
columns), and for the broker commands the argument parsing, option values,
usage errors, JSON output, error lines and the progress line."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import decimal
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from amqp_client.spec import (
    AccessRefusedError,
    BasicProperties,
    PreconditionFailedError,
)

from amqp_client import _cli_format as fmt
from amqp_client import spec
from amqp_client._cli_commands import build_properties, read_body
from amqp_client._delivery import DeliveryData
from amqp_client.cli import DEFAULT_URL, build_parser, main, resolve_url
from amqp_client.errors import ConnectionLost, MessageNacked, MessageReturned
from tests.support.broker import free_port


def run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "amqp_client", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_doc_queue_declare_shows_fields_replies_and_rules() -> None:
    out = run("doc", "queue.declare")
    assert out.startswith("queue.declare (50/10): QueueDeclare")
    assert "This method creates or checks a queue." in out
    for field in spec.QueueDeclare.FIELDS:
        assert f"    {field.name} (" in out
    assert 'queue (queue-name: shortstr, default ""):' in out
    assert "durable (bit, default False):" in out
    assert "replies:" in out and "QueueDeclareOk" in out
    assert "Rules:" in out and "PreconditionFailedError" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_doc_list_lists_every_method_within_80_columns() -> None:
    out = run("doc", "--list")
    for cls in spec.METHODS.values():
        assert f"  {cls.NAME} " in out
    assert "connection.update-secret" in out
    assert max(len(line) for line in out.splitlines()) <= 80


@pytest.mark.parametrize(
    "name", ["basic", "basic.properties", "connection.blocked", "tx.select"]
)
def test_doc_other_targets_fit_80_columns(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doc", name]) == 0
    out = capsys.readouterr().out
    assert out.strip()
    assert max(len(line) for line in out.splitlines()) <= 80


def test_every_method_doc_fits_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    for name in spec.BY_NAME:
        assert main(["doc", name]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_unknown_name_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doc", "queue.frobnicate"]) == 2
    assert "unknown method or class: queue.frobnicate" in capsys.readouterr().err


def test_help_of_a_method_class_shows_the_spec_text() -> None:
    import pydoc

    text = pydoc.render_doc(spec.QueueDeclare, renderer=pydoc.plaintext)  # type: ignore[attr-defined]
    assert "This method creates or checks a queue." in text
    assert "auto_delete (bit, default False)" in text


# --- the broker commands: parsing, values, formatting (no broker here) -------------

SECRET = "s3cr3t-pw"


def dead_url() -> str:
    """A URL whose connection is refused: a command line that wrongly got
    past its usage checks fails with 1, never 2."""
    return f"amqp://guest:{SECRET}@127.0.0.1:{free_port()}/%2f"


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12),
        ("-3", -3),
        ("0", 0),
        (str(2**63 - 1), 2**63 - 1),
        (str(-(2**63)), -(2**63)),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("quorum", "quorum"),
        ("", ""),
        ("007", "007"),
        ("1.5", "1.5"),
        ("1_000", "1_000"),
        (" 12", " 12"),
        ('"12"', "12"),
        ('"true"', "true"),
        ('"', '"'),
        ("a=b", "a=b"),
    ],
)
def test_parse_value_types(text: str, value: object) -> None:
    parsed = fmt.parse_value(text)
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize("text", [str(2**63), str(-(2**63) - 1), "9" * 30])
def test_parse_value_rejects_integers_outside_int64(text: str) -> None:
    with pytest.raises(fmt.UsageProblem, match="outside int64"):
        fmt.parse_value(text)


def test_parse_pair_splits_at_the_first_equals_sign() -> None:
    assert fmt.parse_pair("x-max-length=10") == ("x-max-length", 10)
    assert fmt.parse_pair("k=a=b") == ("k", "a=b")
    assert fmt.parse_pair("k=") == ("k", "")
    for bad in ("novalue", "=v", ""):
        with pytest.raises(fmt.UsageProblem, match="KEY=VALUE"):
            fmt.parse_pair(bad)
    with pytest.raises(fmt.UsageProblem, match=r"^big: integer"):
        fmt.parse_pair("big=" + "9" * 20)


def test_parse_pairs_builds_a_table_and_refuses_a_repeated_key() -> None:
    assert fmt.parse_pairs([], "header") is None
    assert fmt.parse_pairs([("a", 1), ("b", "x")], "header") == {"a": 1, "b": "x"}
    with pytest.raises(fmt.UsageProblem, match="header 'a' given twice"):
        fmt.parse_pairs([("a", 1), ("a", 2)], "header")


def test_parse_timestamp_forms() -> None:
    fixed = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    assert fmt.parse_timestamp("now", lambda: fixed) == fixed.replace(microsecond=0)
    assert fmt.parse_timestamp("1700000000") == 1700000000
    assert fmt.parse_timestamp("2024-05-01T12:00:00Z") == dt.datetime(
        2024, 5, 1, 12, tzinfo=dt.UTC
    )
    naive = fmt.parse_timestamp("2024-05-01T12:00:00")
    assert isinstance(naive, dt.datetime) and naive.tzinfo == dt.UTC
    with pytest.raises(fmt.UsageProblem, match="ISO 8601"):
        fmt.parse_timestamp("yesterday")


def test_publish_options_parse_into_properties() -> None:
    args = build_parser().parse_args(
        [
            "publish", "hello", "-e", "ex", "-r", "rk",
            "--content-type", "text/plain", "--content-encoding", "gzip",
            "--persistent", "--priority", "5", "--correlation-id", "c1",
            "--reply-to", "replies", "--expiration", "60000",
            "--message-id", "m1", "--type", "greeting", "--app-id", "app",
            "--user-id", "guest", "--timestamp", "1700000000",
            "-H", "n=42", "--header", "flag=true", "-H", "s=text",
            "-H", 'q="7"', "--mandatory", "--confirm", "-n", "3",
        ]
    )  # fmt: skip
    assert (args.command, args.body, args.exchange, args.routing_key) == (
        "publish", "hello", "ex", "rk",
    )  # fmt: skip
    assert args.mandatory and args.confirm and args.count == 3
    assert args.timeout == 30.0
    props = build_properties(args)
    assert props == BasicProperties(
        content_type="text/plain",
        content_encoding="gzip",
        headers={"n": 42, "flag": True, "s": "text", "q": "7"},
        delivery_mode=2,
        priority=5,
        correlation_id="c1",
        reply_to="replies",
        expiration="60000",
        message_id="m1",
        timestamp=1700000000,
        type="greeting",
        user_id="guest",
        app_id="app",
    )


def test_publish_defaults_set_no_property() -> None:
    args = build_parser().parse_args(["publish", "x"])
    assert (args.exchange, args.routing_key, args.count) == ("", "", 1)
    assert not args.mandatory and not args.confirm
    props = build_properties(args)
    assert all(getattr(props, f.name) is None for f in props.FIELDS)
    args = build_parser().parse_args(["publish", "x", "--delivery-mode", "1"])
    assert build_properties(args).delivery_mode == 1


def test_other_commands_parse() -> None:
    parse = build_parser().parse_args
    args = parse(
        ["consume", "q", "--json", "-n", "5", "--no-ack", "--prefetch", "7",
         "--timeout", "1.5"]
    )  # fmt: skip
    assert (args.queue, args.json, args.count, args.no_ack, args.prefetch) == (
        "q", True, 5, True, 7,
    )  # fmt: skip
    assert args.timeout == 1.5
    args = parse(["consume", "q"])
    assert (args.count, args.timeout, args.prefetch, args.no_ack) == (
        None, None, None, False,
    )  # fmt: skip
    args = parse(["get", "q", "--json", "--requeue"])
    assert (args.queue, args.json, args.requeue) == ("q", True, True)
    args = parse(
        ["declare-queue", "q", "--durable", "--auto-delete", "--passive",
         "--exclusive", "-a", "x-queue-type=quorum", "--argument", "x-max-length=9"]
    )  # fmt: skip
    assert args.durable and args.auto_delete and args.passive and args.exclusive
    assert args.argument == [("x-queue-type", "quorum"), ("x-max-length", 9)]
    args = parse(["declare-exchange", "x", "-t", "topic", "--internal"])
    assert (args.name, args.type, args.internal, args.durable) == (
        "x", "topic", True, False,
    )  # fmt: skip
    assert parse(["declare-exchange", "x"]).type == "direct"
    args = parse(["bind", "q", "x", "-r", "a.*", "-a", "x-match=all"])
    assert (args.queue, args.exchange, args.routing_key) == ("q", "x", "a.*")
    assert args.argument == [("x-match", "all")]
    args = parse(["delete-queue", "q", "--if-unused", "--if-empty"])
    assert args.if_unused and args.if_empty
    assert parse(["purge", "q"]).name == "q"
    assert parse(["delete-exchange", "x", "--if-unused"]).if_unused


def test_url_and_debug_go_before_or_after_the_command() -> None:
    parse = build_parser().parse_args
    assert parse(["--url", "amqp://a", "get", "q"]).url == "amqp://a"
    assert parse(["get", "q", "--url", "amqp://b"]).url == "amqp://b"
    assert parse(["--url", "amqp://a", "get", "q", "--url", "amqp://b"]).url == (
        "amqp://b"
    )
    args = parse(["get", "q"])
    assert not hasattr(args, "url") and not hasattr(args, "debug")
    assert parse(["--debug", "get", "q"]).debug
    assert parse(["get", "q", "--debug"]).debug


def test_resolve_url_prefers_the_option_then_the_environment() -> None:
    env = {"AMQP_URL": "amqp://env"}
    assert resolve_url("amqp://opt", env) == "amqp://opt"
    assert resolve_url(None, env) == "amqp://env"
    assert resolve_url(None, {}) == DEFAULT_URL
    assert resolve_url(None, {"AMQP_URL": ""}) == DEFAULT_URL
    assert DEFAULT_URL == "amqp://guest:guest@localhost:5672/%2f"


def test_resolve_url_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://from-env")
    assert resolve_url(None) == "amqp://from-env"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["publish", "x", "--header", "nokey"], "expected KEY=VALUE"),
        (["publish", "x", "-H", "=v"], "expected KEY=VALUE"),
        (["publish", "x", "-H", "a=1", "-H", "a=2"], "header 'a' given twice"),
        (["publish", "x", "-H", "big=99999999999999999999"], "outside int64"),
        (["publish", "x", "--delivery-mode", "1", "--persistent"], "not allowed"),
        (["publish", "x", "--delivery-mode", "3"], "1..2"),
        (["publish", "x", "--priority", "256"], "0..255"),
        (["publish", "x", "--priority", "high"], "expected an integer"),
        (["publish", "x", "--count", "0"], ">= 1"),
        (["publish", "x", "--timeout", "0"], "positive"),
        (["publish", "x", "--timestamp", "yesterday"], "ISO 8601"),
        (["publish", "x", "--correlation-id", "c" * 300], "correlation_id"),
        (["publish", "--file", "/nonexistent/body"], "No such file"),
        (["declare-queue", "q", "-a", "x-max-length"], "expected KEY=VALUE"),
        (["declare-queue", "q", "-a", "k=1", "-a", "k=2"], "argument 'k' given"),
        (["declare-queue"], "required: NAME"),
        (["consume", "q", "--timeout", "-1"], "positive"),
        (["consume", "q", "--prefetch", "70000"], "0..65535"),
        (["bind", "q"], "required: EXCHANGE"),
        (["frobnicate"], "invalid choice"),
        ([], "required: COMMAND"),
    ],
)
def test_usage_errors_exit_2_before_connecting(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", dead_url(), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert SECRET not in captured.err


def test_body_and_file_together_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "body"
    path.write_bytes(b"x")
    assert main(["--url", dead_url(), "publish", "x", "--file", str(path)]) == 2
    assert capsys.readouterr().err == (
        "error: give the body as BODY or with --file, not both\n"
    )


def test_no_body_and_a_terminal_on_stdin_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal())
    assert main(["--url", dead_url(), "publish", "-r", "q"]) == 2
    assert "no body" in capsys.readouterr().err


def test_a_bad_url_is_a_usage_error_that_hides_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"amqp://user:{SECRET}@host:notaport/%2f"
    assert main(["get", "q", "--url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --url: port:")
    assert err.count("\n") == 1
    assert SECRET not in err and "***" in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("publish", "consume", "get", "declare-queue", "bind", "purge"):
        assert name in out
    assert main(["publish", "--help"]) == 0
    assert "--header KEY=VALUE" in capsys.readouterr().out


def body_args(body: str | None, file: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(body=body, file=file)


def binary_stdin(data: bytes) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(data))


def test_read_body_sources(tmp_path: Path) -> None:
    assert read_body(body_args("héllo"), None) == "héllo".encode()
    # Undecodable argv bytes come back as the shell passed them.
    assert read_body(body_args(os.fsdecode(b"\xff\xfe")), None) == b"\xff\xfe"
    assert read_body(body_args("-"), binary_stdin(b"\x00\xff\n")) == b"\x00\xff\n"
    assert read_body(body_args(None), binary_stdin(b"piped")) == b"piped"
    assert read_body(body_args(None), io.StringIO("text only")) == b"text only"
    path = tmp_path / "body.bin"
    path.write_bytes(b"\x01\x02file")
    assert read_body(body_args(None, str(path)), Terminal()) == b"\x01\x02file"
    # "-" reads stdin even from a terminal (type, then Ctrl-D).
    assert read_body(body_args("-"), Terminal("typed")) == b"typed"
    with pytest.raises(fmt.UsageProblem, match="no body"):
        read_body(body_args(None), Terminal())
    with pytest.raises(fmt.UsageProblem, match="no body"):
        read_body(body_args(None), None)


def delivery(
    body: bytes, properties: BasicProperties, message_count: int | None = None
) -> DeliveryData:
    return DeliveryData(
        None, body, properties, 7, True, "ex", "rk", "ctag", message_count
    )


def test_delivery_json_of_a_utf8_body_with_every_kind_of_header() -> None:
    when = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    props = BasicProperties(
        content_type="application/json",
        delivery_mode=2,
        timestamp=when,
        headers={
            "int": 1,
            "bool": False,
            "str": "s",
            "bytes": b"\x00\xff",
            "when": when,
            "dec": decimal.Decimal("3.14"),
            "float": 1.5,
            "nan": float("nan"),
            "none": None,
            "list": [1, b"a", {"deep": decimal.Decimal("-1.0")}],
            "table": {"inner": when},
        },
    )
    obj = fmt.delivery_json(delivery("grüße".encode(), props))
    text = json.dumps(obj, allow_nan=False)  # JSON-able, strictly
    assert json.loads(text) == {
        "body": "grüße",
        "body_encoding": "utf-8",
        "exchange": "ex",
        "routing_key": "rk",
        "delivery_tag": 7,
        "redelivered": True,
        "properties": {
            "content_type": "application/json",
            "delivery_mode": 2,
            "timestamp": "2024-05-01T12:00:00+00:00",
            "headers": {
                "int": 1,
                "bool": False,
                "str": "s",
                "bytes": {"base64": "AP8="},
                "when": "2024-05-01T12:00:00+00:00",
                "dec": "3.14",
                "float": 1.5,
                "nan": "nan",
                "none": None,
                "list": [1, {"base64": "YQ=="}, {"deep": "-1.0"}],
                "table": {"inner": "2024-05-01T12:00:00+00:00"},
            },
        },
    }


def test_delivery_json_of_a_binary_body_is_base64_and_says_so() -> None:
    body = b"\xff\xfe\x00binary"
    obj = fmt.delivery_json(delivery(body, BasicProperties(), message_count=3))
    assert obj["body_encoding"] == "base64"
    assert base64.b64decode(obj["body"]) == body
    assert obj["properties"] == {}
    assert obj["message_count"] == 3
    assert "message_count" not in fmt.delivery_json(delivery(b"", BasicProperties()))
    assert fmt.delivery_json(delivery(b"", BasicProperties()))["body"] == ""


def test_jsonable_keeps_plain_values() -> None:
    assert fmt.jsonable(("a", 1)) == ["a", 1]
    assert fmt.jsonable(bytearray(b"\x01")) == {"base64": "AQ=="}
    assert fmt.jsonable(float("inf")) == "inf"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_writes_nothing_when_not_a_terminal() -> None:
    stream = io.StringIO()
    clock = Clock()
    progress = fmt.Progress(stream, "published", 10, clock=clock)
    assert not progress.enabled
    for _ in range(10):
        clock.now += 1
        progress.add()
    progress.finish()
    assert stream.getvalue() == ""
    assert progress.count == 10


def test_progress_on_a_terminal_shows_count_and_rate() -> None:
    stream = Terminal()
    clock = Clock()
    progress = fmt.Progress(stream, "published", 1000, interval=0.5, clock=clock)
    assert progress.enabled
    progress.add(100)
    clock.now += 0.4
    progress.add(100)
    assert stream.getvalue() == ""  # short runs print nothing
    clock.now += 0.6  # 1 s in, 300 messages
    progress.add(100)
    assert stream.getvalue() == "\rpublished 300/1000 messages, 300 msg/s"
    clock.now += 0.1
    progress.add(100)  # within the interval: no new line
    clock.now += 1.9  # 3 s in
    progress.add(8600)
    assert stream.getvalue().endswith("\rpublished 9000/1000 messages, 3,000 msg/s")
    clock.now += 1.5  # 4.5 s in
    progress.finish()
    assert stream.getvalue().endswith(
        "\rpublished 9000 messages in 4.5 s, 2,000 msg/s\n"
    )


def test_progress_pads_a_shorter_line_over_the_longer_one() -> None:
    stream = Terminal()
    clock = Clock()
    progress = fmt.Progress(stream, "consumed", interval=0, clock=clock)
    clock.now += 1
    progress.add(1000)
    clock.now += 99
    progress.add(1)
    assert stream.getvalue() == (
        "\rconsumed 1000 messages, 1,000 msg/s\rconsumed 1001 messages, 10 msg/s   "
    )


def test_progress_finish_is_silent_when_nothing_was_shown() -> None:
    stream = Terminal()
    progress = fmt.Progress(stream, "consumed", clock=Clock())
    progress.add(5)
    progress.finish()
    assert stream.getvalue() == ""


def test_progress_can_be_forced_either_way() -> None:
    clock = Clock()
    on = io.StringIO()
    forced = fmt.Progress(on, "consumed", enabled=True, interval=0, clock=clock)
    clock.now += 1
    forced.add()
    assert on.getvalue() == "\rconsumed 1 messages, 1 msg/s"
    off = Terminal()
    quiet = fmt.Progress(off, "consumed", enabled=False, interval=0, clock=clock)
    clock.now += 1
    quiet.add()
    assert off.getvalue() == ""


def test_error_lines_name_reply_code_and_text() -> None:
    refused = PreconditionFailedError(
        406, "PRECONDITION_FAILED - inequivalent arg 'durable'\nfor queue 'q'", 50, 10
    )
    assert fmt.error_line(refused) == (
        "error: 406 PRECONDITION_FAILED - inequivalent arg 'durable'\\nfor queue 'q'"
    )
    assert fmt.error_line(AccessRefusedError(403, "")) == "error: 403 ACCESS_REFUSED"
    assert fmt.error_line(ConnectionLost("cannot connect to h:1: refused")) == (
        "error: cannot connect to h:1: refused"
    )
    assert fmt.error_line(MessageNacked(4)) == "error: the broker nacked publish #4"
    assert fmt.error_line(TimeoutError("too slow")) == "error: too slow"
    assert fmt.error_line(RuntimeError("boom")) == "error: RuntimeError: boom"


def test_connection_refused_is_one_line_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = dead_url()
    assert main(["get", "q", "--url", url]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: cannot connect to 127.0.0.1:")
    assert captured.err.count("\n") == 1
    assert SECRET not in captured.err


def test_debug_adds_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "get", "q", "--url", dead_url()]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "ConnectionLost" in err
    assert err.splitlines()[-1].startswith("error: cannot connect to 127.0.0.1:")
    assert SECRET not in err


def test_the_library_log_is_left_as_it_was() -> None:
    log = logging.getLogger("amqp_client")
    handlers, level = list(log.handlers), log.level
    main(["--debug", "get", "q", "--url", dead_url()])
    main(["get", "q", "--url", dead_url()])
    assert (log.handlers, log.level) == (handlers, level)


def test_plural() -> None:
    assert fmt.plural(1, "message") == "1 message"
    assert fmt.plural(0, "message") == "0 messages"


# --- the library's logger, and broker text on a terminal ---------------------------


def test_the_library_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("amqp_client").handlers
    assert any(type(h) is logging.NullHandler for h in handlers)


@pytest.mark.slow
def test_an_application_without_logging_configured_prints_nothing() -> None:
    """No handler anywhere in the hierarchy would make logging's last-resort
    handler print the library's warnings; once the application configures
    logging, they reach its handlers."""
    warn = "logging.getLogger('amqp_client.aio').warning('x')"
    quiet = f"import amqp_client, logging; {warn}"
    configured = f"import amqp_client, logging; logging.basicConfig(); {warn}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    for code, expected in ((quiet, ""), (configured, "WARNING:amqp_client.aio:x\n")):
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env=env,
        )
        assert (result.stdout, result.stderr) == ("", expected)


#: Text a hostile broker (or a hostile name echoed by an honest one) could
#: send: colour, a title change, a line rewrite, a forged line, a bidi
#: override, a C1 control and DEL; and printable non-ASCII, which stays.
HOSTILE = "\x1b[31mred\x1b]0;title\x07\rgone\nerror: forged\tx\u202e\x9b\x7f grüße"
HOSTILE_ONE_LINE = (
    "\\x1b[31mred\\x1b]0;title\\x07\\rgone\\nerror: forged\\tx\\u202e\\x9b\\x7f grüße"
)


def test_escape_shows_control_characters_and_keeps_printable_unicode() -> None:
    assert fmt.escape(HOSTILE) == HOSTILE_ONE_LINE
    assert fmt.escape("plain ascii and ünïcödé ✓") == "plain ascii and ünïcödé ✓"
    assert fmt.escape("lone \ud800 surrogate") == "lone \\ud800 surrogate"
    # Multi-line output keeps its newlines and tabs, nothing else.
    assert fmt.escape("a\n\tb\x1b[0m\r", one_line=False) == "a\n\tb\\x1b[0m\\r"
    # Escaped text is printable: escaping again changes nothing.
    assert fmt.escape(fmt.escape(HOSTILE)) == fmt.escape(HOSTILE)


def assert_terminal_safe(text: str, keep: str = "") -> None:
    """No character a terminal would act on, except those in ``keep``."""
    assert all(c.isprintable() or c in keep for c in text), repr(text)


def test_error_lines_escape_the_brokers_text() -> None:
    refused = PreconditionFailedError(406, "PRECONDITION_FAILED - " + HOSTILE, 50, 10)
    line = fmt.error_line(refused)
    assert line == "error: 406 PRECONDITION_FAILED - " + HOSTILE_ONE_LINE
    assert_terminal_safe(line)
    returned = MessageReturned(
        312,
        "NO_ROUTE " + HOSTILE,
        DeliveryData(
            None, b"", BasicProperties(), 0, False, "ex\x1b[0m", "rk\n", "", None
        ),
    )
    line = fmt.error_line(returned)
    assert line.startswith("error: message returned: 312 NO_ROUTE " + HOSTILE_ONE_LINE)
    assert "(exchange 'ex\\x1b[0m', routing key 'rk\\n')" in line
    assert_terminal_safe(line)
    # Any other exception's message may quote the broker too.
    for exc in (ConnectionLost("lost: " + HOSTILE), RuntimeError(HOSTILE)):
        line = fmt.error_line(exc)
        assert "\\x1b[31mred" in line and "grüße" in line
        assert_terminal_safe(line)


def test_returned_text_escapes_the_reply_text() -> None:
    text = fmt.returned_text(312, "NO_ROUTE\x1b[2J", "x\x1b", "k")
    assert text == "312 NO_ROUTE\\x1b[2J (exchange 'x\\x1b', routing key 'k')"


def test_the_debug_traceback_and_log_are_escaped() -> None:
    stream = io.StringIO()
    fmt.write_traceback(PreconditionFailedError(406, HOSTILE, 50, 10), stream)
    assert "\\x1b[31mred" in stream.getvalue() and "grüße" in stream.getvalue()
    assert_terminal_safe(stream.getvalue(), keep="\n\t")
    record = logging.LogRecord(
        "amqp_client.aio", logging.WARNING, __file__, 1, "closed: %s", (HOSTILE,), None
    )
    text = fmt.EscapingFormatter("%(levelname)s %(message)s").format(record)
    assert text == "WARNING closed: " + fmt.escape(HOSTILE, one_line=False)
    assert "\\x1b" in text and "\nerror: forged\tx" in text


def test_debug_routes_the_library_log_through_the_escaping_formatter(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --debug the library's records reach stderr escaped."""
    seen: list[logging.Handler] = []
    log = logging.getLogger("amqp_client")
    real_add = log.addHandler

    def add(handler: logging.Handler) -> None:
        seen.append(handler)
        real_add(handler)
        log.warning("broker said %s", HOSTILE)

    monkeypatch.setattr(log, "addHandler", add)
    main(["--debug", "get", "q", "--url", dead_url()])
    err = capsys.readouterr().err
    assert isinstance(seen[0].formatter, fmt.EscapingFormatter)
    assert "amqp_client WARNING: broker said \\x1b[31mred" in err
    assert "\x1b" not in err


@pytest.mark.integration
def test_broker_text_and_names_reach_the_terminal_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Against the shared broker: its reply text quotes a hostile queue name,
    and declare-queue prints the name the broker returns."""
    url = os.environ.get("AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/%2f"
    name = f"amqp-client-test.cli\x1b[31m\t{os.getpid()}\nx"
    assert main(["get", name, "--url", url]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: 404 NOT_FOUND - no queue ")
    assert f"cli\\x1b[31m\\t{os.getpid()}\\nx'" in captured.err
    assert captured.err.count("\n") == 1
    assert_terminal_safe(captured.err.removesuffix("\n"))
    assert main(["declare-queue", name, "--exclusive", "--url", url]) == 0
    line = capsys.readouterr().out.removesuffix("\n")
    # RabbitMQ drops the newline from the name; the rest comes back escaped.
    queue, *counts = line.split("\t")
    assert queue.startswith(f"amqp-client-test.cli\\x1b[31m\\t{os.getpid()}")
    assert counts == ["0 messages", "0 consumers"]
    assert_terminal_safe(line, keep="\t")
