"""bench/e2e.py: the schedule of its runs, and its Go peer (amqp091-go).

Every e2e run is interleaved (run 1 of every client, run 2 in the reverse
order, ...): a noisy machine's drift then hits every client alike. No
timing is asserted anywhere here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def e2e() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("e2e")
    finally:
        sys.path.remove(str(BENCH))
        sys.modules.pop("e2e", None)


def test_schedule_is_interleaved_by_default(e2e: ModuleType) -> None:
    clients = ["py-amqp", "amqp091-go", "amqp_client"]
    order = e2e._schedule(clients, 3)
    assert order == [
        (0, "py-amqp"),
        (0, "amqp091-go"),
        (0, "amqp_client"),
        (1, "amqp_client"),
        (1, "amqp091-go"),
        (1, "py-amqp"),
        (2, "py-amqp"),
        (2, "amqp091-go"),
        (2, "amqp_client"),
    ]


def test_main_run_uses_the_interleaved_schedule(
    e2e: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent's loop, with no --baseline and no --telemetry-cost, runs
    the jobs in the interleaved order (the children are stubbed out)."""
    seen: list[tuple[str, str]] = []

    class FakeAdmin:
        server_version = "test"

        def __init__(self, url: str) -> None:
            pass

        def close(self) -> None:
            pass

    def fake_child(
        job: dict[str, object], hard_timeout: float, shim: str | None = None
    ) -> dict[str, object]:
        seen.append((str(job["workload"]), str(job["client"])))
        return {"ok": True, "n": job["n"], "wall_s": 1.0, "cpu_share": 0.5,
                "value": 1.0, "p50_us": 1.0, "p99_us": 2.0}  # fmt: skip

    monkeypatch.setattr(e2e, "Admin", FakeAdmin)
    monkeypatch.setattr(e2e, "run_child", fake_child)
    status = e2e.main(["--clients", "pika,py-amqp", "--workloads", "W4", "--runs", "2"])
    assert status == 0
    assert seen == [
        ("W4", "pika"),
        ("W4", "py-amqp"),
        ("W4", "py-amqp"),
        ("W4", "pika"),
    ]
