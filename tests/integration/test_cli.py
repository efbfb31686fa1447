"""The command line against the shared broker (issue #6).

Most commands run in-process through ``main([...])`` with capsys; some run
as real processes, ``python -m amqp_client`` and the installed
``amqp-client`` console script, where stray log lines or tracebacks would
show. What the commands did is checked with the library itself where the
command line's own output would prove nothing.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from amqp_client import _cli_format, blocking
from amqp_client.cli import main
from tests.integration.helpers import (
    FRONTS,
    STEP,
    Resources,
    amqp_url,
    default_sigint,
    unique,
)
from tests.support.broker import free_port

pytestmark = pytest.mark.integration

#: The installed console script (pyproject's [project.scripts]).
CONSOLE_SCRIPT = Path(sys.executable).parent / "amqp-client"
PROCESS_TIMEOUT = 60.0


@pytest.fixture
def names() -> Iterator[Resources]:
    """Unique queue and exchange names, deleted after the test (on a
    connection of their own, within helpers.STEP)."""
    found = Resources(FRONTS["aio"], None)
    yield found
    asyncio.run(found.cleanup())


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command line in-process: (exit status, stdout, stderr)."""
    status = main(["--url", amqp_url(), *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def ok(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run a command that must succeed silently on stderr; its stdout."""
    status, out, err = cli(capsys, *args)
    assert (status, err) == (0, ""), (args, out, err)
    return out


def run(
    program: list[str], *args: str, stdin: bytes = b"", url: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the command line as a process, the broker given by $AMQP_URL."""
    env = dict(os.environ, AMQP_URL=url or amqp_url())
    return subprocess.run(
        [*program, *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )


MODULE = [sys.executable, "-m", "amqp_client"]


SCRIPT = [str(CONSOLE_SCRIPT)]


def queue_counts(queue: str) -> tuple[int, int]:
    """(messages, consumers) of ``queue``, asked with the library."""
    with blocking.connect(amqp_url(), connection_timeout=STEP) as connection:
        channel = connection.channel(timeout=STEP)
        reply = channel.queue_declare(queue, passive=True, timeout=STEP)
        return reply.message_count, reply.consumer_count


# --- publish and read back ---------------------------------------------------------


PROPERTY_OPTIONS = [
    "--content-type", "text/plain",
    "--content-encoding", "utf-8",
    "--persistent",
    "--priority", "4",
    "--correlation-id", "corr-1",
    "--reply-to", "replies",
    "--expiration", "600000",
    "--message-id", "msg-1",
    "--type", "greeting",
    "--app-id", "cli-test",
    "--user-id", "guest",
    "--timestamp", "2024-05-01T12:00:00Z",
    "-H", "n=42",
    "--header", "neg=-7",
    "-H", "flag=true",
    "-H", "off=false",
    "-H", "word=hello",
    "-H", 'quoted="12"',
    "-H", "eq=a=b",
]  # fmt: skip

EXPECTED_PROPERTIES = {
    "content_type": "text/plain",
    "content_encoding": "utf-8",
    "delivery_mode": 2,
    "priority": 4,
    "correlation_id": "corr-1",
    "reply_to": "replies",
    "expiration": "600000",
    "message_id": "msg-1",
    "type": "greeting",
    "app_id": "cli-test",
    "user_id": "guest",
    "timestamp": "2024-05-01T12:00:00+00:00",
    "headers": {
        "n": 42,
        "neg": -7,
        "flag": True,
        "off": False,
        "word": "hello",
        "quoted": "12",
        "eq": "a=b",
    },
}


def test_publish_properties_and_headers_then_get_and_consume_read_them_back(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = names.queue()
    assert ok(capsys, "declare-queue", queue) == f"{queue}\t0 messages\t0 consumers\n"
    ok(capsys, "publish", "héllo", "-r", queue, *PROPERTY_OPTIONS, "-n", "2")
    assert queue_counts(queue) == (2, 0)

    got = json.loads(ok(capsys, "get", queue, "--json"))
    assert got == {
        "body": "héllo",
        "body_encoding": "utf-8",
        "exchange": "",
        "routing_key": queue,
        "delivery_tag": 1,
        "redelivered": False,
        "properties": EXPECTED_PROPERTIES,
        "message_count": 1,
    }

    out = ok(capsys, "consume", queue, "--json", "--count", "1", "--timeout", "10")
    lines = out.splitlines()
    assert len(lines) == 1
    consumed = json.loads(lines[0])
    assert consumed == {
        "body": "héllo",
        "body_encoding": "utf-8",
        "exchange": "",
        "routing_key": queue,
        "delivery_tag": 1,
        "redelivered": False,
        "properties": EXPECTED_PROPERTIES,
    }
    # Both were acknowledged: nothing is left.
    assert queue_counts(queue) == (0, 0)


def test_publish_confirm_count_100_then_consume_count_100(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    ok(capsys, "publish", "load", "-r", queue, "--confirm", "--count", "100")
    assert queue_counts(queue) == (100, 0)
    out = ok(capsys, "consume", queue, "--count", "100", "--timeout", "10")
    assert out == "load\n" * 100
    assert queue_counts(queue) == (0, 0)


def test_consume_prints_each_body_on_a_line_in_order(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    for body in ("one", "two", "three"):
        ok(capsys, "publish", body, "-r", queue)
    started = time.monotonic()
    # No --count: it stops after --timeout seconds without a message.
    out = ok(capsys, "consume", queue, "--timeout", "1")
    assert out == "one\ntwo\nthree\n"
    assert time.monotonic() - started < 10
    assert queue_counts(queue) == (0, 0)


def test_consume_no_ack_and_prefetch(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    ok(capsys, "publish", "m", "-r", queue, "-n", "5", "--confirm")
    out = ok(capsys, "consume", queue, "--no-ack", "--timeout", "1")
    assert out == "m\n" * 5
    ok(capsys, "publish", "p", "-r", queue, "-n", "5", "--confirm")
    out = ok(capsys, "consume", queue, "--prefetch", "2", "-n", "3", "--timeout", "5")
    assert out == "p\n" * 3
    assert queue_counts(queue) == (2, 0)


def test_consume_times_out_on_an_empty_queue(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    started = time.monotonic()
    assert ok(capsys, "consume", queue, "--timeout", "0.5", "--count", "3") == ""
    assert time.monotonic() - started < 10
    assert queue_counts(queue) == (0, 0)  # and the consumer is gone


def test_get_an_empty_queue_exits_0_with_a_note_on_stderr(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    status, out, err = cli(capsys, "get", queue, "--json")
    assert (status, out) == (0, "")
    assert err == f"queue {queue!r} is empty\n"


def test_get_requeue_leaves_the_message(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    ok(capsys, "publish", "keep me", "-r", queue, "--confirm")
    assert ok(capsys, "get", queue, "--requeue") == "keep me\n"
    again = json.loads(ok(capsys, "get", queue, "--json"))
    assert (again["body"], again["redelivered"], again["message_count"]) == (
        "keep me",
        True,
        0,
    )
    assert queue_counts(queue) == (0, 0)


def test_body_from_stdin_in_a_real_process(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    body = b"\x00\xff binary\nand more lines\n"
    # No BODY and stdin is a pipe; the URL comes from $AMQP_URL.
    done = run(MODULE, "publish", "-r", queue, "--confirm", stdin=body)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    done = run(MODULE, "publish", "-", "-r", queue, "--confirm", stdin=b"dash")
    assert (done.returncode, done.stderr) == (0, b"")
    got = json.loads(ok(capsys, "get", queue, "--json"))
    assert got["body_encoding"] == "base64"
    assert base64.b64decode(got["body"]) == body
    # Raw output is the body's bytes as they are.
    done = run(MODULE, "get", queue)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"dash\n", b"")


def test_body_from_stdin_dash_in_process(
    names: Resources,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"from stdin")))
    ok(capsys, "publish", "-", "-r", queue)
    assert ok(capsys, "get", queue) == "from stdin\n"


def test_body_from_a_file(
    names: Resources, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    path = tmp_path / "body.txt"
    path.write_bytes("first line\nsecond line ✓".encode())
    ok(capsys, "publish", "--file", str(path), "-r", queue, "--confirm")
    binary = tmp_path / "body.bin"
    binary.write_bytes(bytes(range(256)))
    ok(capsys, "publish", "-f", str(binary), "-r", queue, "--confirm")
    assert ok(capsys, "get", queue) == "first line\nsecond line ✓\n"
    got = json.loads(ok(capsys, "get", queue, "--json"))
    assert base64.b64decode(got["body"]) == bytes(range(256))


# --- topology ------------------------------------------------------------------------


def test_a_refused_declare_exits_1_with_one_line_naming_406(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    status, out, err = cli(capsys, "declare-queue", queue, "--durable")
    assert (status, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("error: 406 PRECONDITION_FAILED - inequivalent arg 'durable'")
    # The same through the installed console script: no log line, no traceback.
    done = run(SCRIPT, "declare-queue", queue, "--durable")
    assert done.returncode == 1
    assert done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: 406 PRECONDITION_FAILED - inequivalent arg")
    # And the console script works when all is well.
    done = run(SCRIPT, "declare-queue", queue, "--passive")
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout == f"{queue}\t0 messages\t0 consumers\n".encode()


def test_passive_declares_of_missing_things_exit_1_with_404(
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = unique("missing")
    status, _, err = cli(capsys, "declare-queue", missing, "--passive")
    assert status == 1
    assert err.startswith(f"error: 404 NOT_FOUND - no queue '{missing}'")
    status, _, err = cli(capsys, "declare-exchange", missing, "--passive")
    assert status == 1
    assert err.startswith(f"error: 404 NOT_FOUND - no exchange '{missing}'")


def test_queue_arguments_reach_the_broker_typed(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    # RabbitMQ refuses x-max-length given as a string (406), so this only
    # passes when "2" travels as an integer.
    queue = names.queue()
    ok(capsys, "declare-queue", queue, "--argument", "x-max-length=2")
    ok(capsys, "publish", "m", "-r", queue, "-n", "5", "--confirm")
    assert queue_counts(queue) == (2, 0)
    status, _, err = cli(capsys, "declare-queue", queue, "-a", 'x-max-length="2"')
    assert status == 1 and err.startswith("error: 406 PRECONDITION_FAILED")

    quorum = names.queue("quorum")
    out = ok(capsys, "declare-queue", quorum, "--durable", "-a", "x-queue-type=quorum")
    assert out == f"{quorum}\t0 messages\t0 consumers\n"
    status, _, err = cli(capsys, "declare-queue", quorum, "--durable")
    assert status == 1
    assert "406 PRECONDITION_FAILED" in err and "x-queue-type" in err


def test_server_named_queue(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ok(capsys, "declare-queue", "")
    name, messages, consumers = out.rstrip("\n").split("\t")
    names.queues.append(name)
    assert name.startswith("amq.gen-")
    assert (messages, consumers) == ("0 messages", "0 consumers")
    assert queue_counts(name) == (0, 0)


def test_exchange_bind_publish_and_returns(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    exchange = names.exchange()
    queue = names.queue()
    assert ok(capsys, "declare-exchange", exchange, "--type", "topic") == ""
    ok(capsys, "declare-queue", queue)
    assert ok(capsys, "bind", queue, exchange, "--routing-key", "a.*") == ""
    ok(capsys, "publish", "routed", "-e", exchange, "-r", "a.b", "--confirm")
    ok(capsys, "publish", "dropped", "-e", exchange, "-r", "zzz")  # no --mandatory
    assert queue_counts(queue) == (1, 0)
    assert ok(capsys, "get", queue) == "routed\n"

    # Unroutable and mandatory: returned, with and without confirms.
    status, _, err = cli(
        capsys, "publish", "x", "-e", exchange, "-r", "zzz", "--mandatory", "--confirm"
    )
    assert status == 1
    assert err == (
        f"error: message returned: 312 NO_ROUTE (exchange {exchange!r}, "
        "routing key 'zzz')\n"
    )
    status, _, err = cli(
        capsys, "publish", "x", "-e", exchange, "-r", "zzz", "--mandatory", "-n", "3"
    )
    assert status == 1
    assert err.startswith("error: 3 messages returned: 312 NO_ROUTE")
    assert err.count("\n") == 1

    # A different type is refused.
    status, _, err = cli(capsys, "declare-exchange", exchange, "-t", "fanout")
    assert status == 1 and err.startswith("error: 406 PRECONDITION_FAILED")

    # Header-exchange binding arguments.
    headers_x = names.exchange("cli-hx")
    ok(capsys, "declare-exchange", headers_x, "-t", "headers")
    ok(capsys, "bind", queue, headers_x, "-a", "x-match=all", "-a", "kind=7")
    ok(capsys, "publish", "seven", "-e", headers_x, "-H", "kind=7", "--confirm")
    ok(capsys, "publish", "eight", "-e", headers_x, "-H", "kind=8", "--confirm")
    assert ok(capsys, "get", queue) == "seven\n"
    assert queue_counts(queue) == (0, 0)

    assert ok(capsys, "delete-exchange", headers_x) == ""
    status, _, err = cli(capsys, "declare-exchange", headers_x, "--passive")
    assert status == 1 and "404 NOT_FOUND" in err


def test_publish_to_a_missing_exchange_exits_1_without_confirms(
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = unique("missing-x")
    status, _, err = cli(capsys, "publish", "x", "-e", missing, "-n", "3")
    assert status == 1
    assert err == f"error: 404 NOT_FOUND - no exchange '{missing}' in vhost '/'\n"


def test_delete_queue_and_purge_print_counts(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    ok(capsys, "publish", "p", "-r", queue, "-n", "7", "--confirm")
    assert ok(capsys, "purge", queue) == "7 messages purged\n"
    assert queue_counts(queue) == (0, 0)
    assert ok(capsys, "purge", queue) == "0 messages purged\n"
    ok(capsys, "publish", "d", "-r", queue, "-n", "3", "--confirm")
    status, _, err = cli(capsys, "delete-queue", queue, "--if-empty")
    assert status == 1 and err.startswith("error: 406 PRECONDITION_FAILED")
    assert queue_counts(queue) == (3, 0)
    assert ok(capsys, "delete-queue", queue, "--if-unused") == "3 messages deleted\n"
    status, _, err = cli(capsys, "declare-queue", queue, "--passive")
    assert status == 1 and "404 NOT_FOUND" in err
    # One message: singular.
    ok(capsys, "declare-queue", queue)
    ok(capsys, "publish", "d", "-r", queue, "--confirm")
    assert ok(capsys, "delete-queue", queue) == "1 message deleted\n"


# --- errors ----------------------------------------------------------------------------


def test_bad_usage_exits_2_and_sends_nothing(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    status, out, err = cli(capsys, "publish", "x", "-r", queue, "--header", "nokey")
    assert (status, out) == (2, "")
    assert "expected KEY=VALUE, got 'nokey'" in err
    status, _, err = cli(capsys, "publish", "x", "-r", queue, "-H", "a=1", "-H", "a=2")
    assert (status, err) == (2, "error: header 'a' given twice\n")
    done = run(MODULE, "publish", "x", "-r", queue, "--priority", "300")
    assert done.returncode == 2
    assert b"0..255" in done.stderr and b"Traceback" not in done.stderr
    done = run(MODULE, "declare-queue", queue, "-a", "oops")
    assert done.returncode == 2 and b"KEY=VALUE" in done.stderr
    done = run(MODULE, "no-such-command")
    assert done.returncode == 2
    assert queue_counts(queue) == (0, 0)


def test_connection_refused_exits_1_with_one_line() -> None:
    """As a process (in-process: tests/unit/test_cli.py)."""
    secret = "n0t-the-pw"
    url = f"amqp://guest:{secret}@127.0.0.1:{free_port()}/%2f"
    done = run(MODULE, "publish", "x", url=url)
    assert (done.returncode, done.stdout) == (1, b"")
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot connect to")
    assert secret not in done.stderr.decode()


def test_refused_login_exits_1_without_showing_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "wr0ng-pw-" + unique("x")[-6:]
    url = amqp_url().replace("guest:guest@", f"guest:{secret}@")
    assert secret in url
    done = run(SCRIPT, "get", "q", url=url)
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: 403 ACCESS_REFUSED")
    assert secret not in done.stderr.decode() + done.stdout.decode()
    status, _, err = cli(capsys, "--debug", "get", "q", "--url", url)
    assert status == 1 and "Traceback" in err and secret not in err


def test_ctrl_c_exits_130_quietly(
    names: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    env = dict(os.environ, AMQP_URL=amqp_url())
    process = subprocess.Popen(
        [*SCRIPT, "consume", queue],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        # Ctrl-C reaches the child even when this run ignores SIGINT (a job
        # started with & from a script does): Python keeps an inherited
        # SIG_IGN and would never raise KeyboardInterrupt.
        preexec_fn=default_sigint,
    )
    try:
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while queue_counts(queue)[1] != 1:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the consumer never started"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=PROCESS_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert (process.returncode, out, err) == (130, b"", b"")
    assert queue_counts(queue) == (0, 0)  # the consumer went with it


# --- the progress line -----------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_only_on_a_terminal(
    names: Resources,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = names.queue()
    ok(capsys, "declare-queue", queue)
    monkeypatch.setattr(_cli_format, "PROGRESS_INTERVAL", 0.0)
    # stderr is not a terminal under capsys: no progress line.
    assert cli(capsys, "publish", "m", "-r", queue, "-n", "50") == (0, "", "")

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["--url", amqp_url(), "publish", "m", "-r", queue, "-n", "50"]) == 0
    text = terminal.getvalue()
    assert text.startswith("\rpublished 1/50 messages, ")
    assert "\rpublished 50/50 messages, " in text
    assert text.endswith(" msg/s\n")
    assert "\rpublished 50 messages in " in text

    # consume: stderr is a terminal and stdout (capsys) is not.
    terminal.seek(0)
    terminal.truncate()
    args = ["--url", amqp_url(), "consume", queue, "-n", "100", "--timeout", "10"]
    assert main(args) == 0
    assert capsys.readouterr().out == "m\n" * 100
    text = terminal.getvalue()
    assert "\rconsumed 100/100 messages, " in text
    assert text.endswith(" msg/s\n")

    # Bodies going to the same terminal: no progress line.
    ok(capsys, "publish", "m", "-r", queue, "-n", "5", "--confirm")
    terminal.seek(0)
    terminal.truncate()
    out_terminal = Terminal()
    monkeypatch.setattr("sys.stdout", out_terminal)
    args = ["--url", amqp_url(), "consume", queue, "-n", "5", "--timeout", "10"]
    assert main(args) == 0
    assert out_terminal.getvalue() == "m\n" * 5  # no .buffer: decoded text
    assert terminal.getvalue() == ""
