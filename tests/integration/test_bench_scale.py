"""bench/scale.py runs end to end (``--tiny``: a few items per scenario,
every client), so the script cannot rot. No timing is asserted: only that
every (scenario, client) finished and what it counted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import amqp_url

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "scale.py"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_scale_bench_tiny_runs_every_scenario_and_client(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--tiny",
            "--url",
            amqp_url(),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())["results"]
    assert sorted(results) == ["chans/3", "conns/3", "cons/5"]
    for key, cells in results.items():
        assert sorted(cells) == sorted(
            ["amqp_client", "amqp_client.blocking", "aio-pika", "pika"]
        )
        for client, figures in cells.items():
            assert figures["ok"], (key, client, figures)
            assert figures["publish_per_s"] > 0 and figures["open_s"] > 0
    # One I/O thread per blocking connection, none for asyncio.
    assert results["conns/3"]["amqp_client.blocking"]["threads"] == 3
    assert results["conns/3"]["amqp_client"]["threads"] == 0
