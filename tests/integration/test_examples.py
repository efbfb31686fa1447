"""Every program in examples/ runs to completion against the test broker.

Each ``examples/*.py`` (found by globbing, so a new example is run without
touching this file) runs as its own process with this interpreter, the
broker from ``AMQP_URL`` and a deadline. It must exit 0, write nothing to
stderr (no traceback, no warning: warnings are errors, as in the test run)
and print its closing line, which the example prints only once it has
checked what it demonstrates. A new example needs its closing line in
``CLOSING``; the test names any example that lacks one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.helpers import amqp_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

#: Seconds one example may run (each takes a few; the machine may be busy).
DEADLINE = 60

#: example file -> a line it prints only when it succeeded.
CLOSING = {
    "callback_consumer_aio.py": "all 40 orders handled, at most 4 at a time",
    "callback_consumer_blocking.py": "all 40 orders handled, at most 4 at a time",
    "codec_demo.py": "The spec's own words",
    "confirms_aio.py": "the broker confirmed and held every one of the 20,000 messages",
    "confirms_blocking.py": "the broker confirmed and held every one of the 20,000 messages",
    "credentials_aio.py": "refreshed the credentials twice with update-secret; the connection never dropped",
    "credentials_blocking.py": "refreshed the credentials twice with update-secret; the connection never dropped",
    "demo.py": "closed the channel and the connection cleanly",
    "recovering_consumer_aio.py": "the consumer rode through the cut and got all 20",
    "recovering_consumer_blocking.py": "the consumer rode through the cut and got all 20",
    "pubsub_fanout_aio.py": "each of the 2 subscribers got all 5 messages",
    "pubsub_fanout_blocking.py": "each of the 2 subscribers got all 5 messages",
    "rpc_aio.py": "all 14 calls answered correctly over direct reply-to",
    "rpc_blocking.py": "all 14 calls answered correctly over direct reply-to",
    "topic_routing_aio.py": "every message reached exactly the queues its routing key matches",
    "topic_routing_blocking.py": "every message reached exactly the queues its routing key matches",
    "tracing_aio.py": "every processing span continued its publisher's trace",
    "tracing_blocking.py": "every processing span continued its publisher's trace",
    "work_queue_aio.py": "all 20 tasks done, shared by both workers",
    "work_queue_blocking.py": "all 20 tasks done, shared by both workers",
}


def test_examples_found() -> None:
    # The glob must see the examples (a wrong path would run nothing).
    assert {path.name for path in EXAMPLES} >= set(CLOSING)


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_runs(example: Path) -> None:
    env = {**os.environ, "AMQP_URL": amqp_url(), "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-W", "error", str(example)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(
            f"{example.name} still ran after {DEADLINE} s\n"
            f"stdout:\n{_text(expired.stdout)}\nstderr:\n{_text(expired.stderr)}"
        )
    elapsed = time.monotonic() - start
    report = (
        f"{example.name}: exit {result.returncode} after {elapsed:.1f} s\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert result.returncode == 0, report
    assert result.stderr == "", report
    closing = CLOSING.get(example.name)
    assert closing is not None, (
        f"add the line {example.name} prints on success to CLOSING\n{report}"
    )
    assert closing in result.stdout, report


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""
