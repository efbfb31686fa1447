"""The asyncio front on uvloop: the core of the asyncio suite, run again
with ``AMQP_TEST_LOOP=uvloop`` (helpers.py then runs every asyncio scenario
on a uvloop loop, and checks that it is one).

uvloop is a dev dependency, so it is installed wherever the suite runs
(except on Windows, which uvloop does not support).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: The files whose asyncio scenarios run again on uvloop.
CORE = [
    "test_basics.py",
    "test_connection.py",
    "test_bodies.py",
    "test_events.py",
    "test_errors.py",
    "test_backpressure.py",
    "test_concurrency.py",
    "test_limits.py",
    "test_session_defects.py",
    "test_busy_poll.py",
]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_asyncio_core_suite_passes_on_uvloop() -> None:
    import uvloop  # noqa: F401  # a dev dependency: a missing one fails here

    env = dict(os.environ, AMQP_TEST_LOOP="uvloop")
    files = [str(ROOT / "tests" / "integration" / name) for name in CORE]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(
        [*command, "-k", "aio", *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, summary
    last = proc.stdout.strip().splitlines()[-1]
    assert " passed" in last and "skipped" not in last, summary
