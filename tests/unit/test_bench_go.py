"""bench/e2e.py: the schedule of its runs, and its Go peer (amqp091-go).

Every e2e run is interleaved (run 1 of every client, run 2 in the reverse
order, ...): a noisy machine's drift then hits every client alike. Without
a Go toolchain the Go client is reported unavailable, never left out. With
one (`make bench-go`), the Go worker is built and one W4 job runs through
the parent's own child path against the shared broker (integration; it
skips when Go or amqp091-go is missing, unless AMQP_BENCH_GO=1). No timing
is asserted anywhere here.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.integration.helpers import amqp_url, unique

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


def test_go_client_without_go_is_reported_unavailable(
    e2e: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No `go` on PATH: the build says why, and a run keeps amqp091-go in
    its table as unavailable (and fails) without starting its children."""
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory
    built = e2e.build_go_worker(str(tmp_path / "worker"))
    assert built.path is None
    assert "no `go` on PATH" in built.reason

    started: list[str] = []

    class FakeAdmin:
        server_version = "test"

        def __init__(self, url: str) -> None:
            pass

        def close(self) -> None:
            pass

    def fake_child(
        job: dict[str, object], hard_timeout: float, shim: str | None = None
    ) -> dict[str, object]:
        started.append(str(job["client"]))
        return {"ok": True, "n": job["n"], "wall_s": 1.0, "cpu_share": 0.5,
                "value": 1.0, "p50_us": 1.0, "p99_us": 2.0}  # fmt: skip

    monkeypatch.setattr(e2e, "Admin", FakeAdmin)
    monkeypatch.setattr(e2e, "run_child", fake_child)
    out = tmp_path / "e2e.json"
    status = e2e.main(
        ["--clients", "py-amqp,amqp091-go", "--workloads", "W4", "--json", str(out)]
    )
    assert status == 1
    assert started == ["py-amqp"] * 3
    cell = json.loads(out.read_text())["results"]["W4"]["clients"]["amqp091-go"]
    assert not cell["ok"]
    assert cell["error"].startswith("unavailable: no `go` on PATH")


# --- the Go worker against the real broker -------------------------------------

#: AMQP_BENCH_GO=1: a missing Go toolchain or amqp091-go fails the test
#: instead of skipping it (set it where `make bench-go` has run).
GO_REQUIRED = os.environ.get("AMQP_BENCH_GO") == "1"


@pytest.fixture(scope="module")
def go_worker(e2e: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> str:
    built = e2e.build_go_worker(str(tmp_path_factory.mktemp("go") / "worker"))
    if built.path is None:
        if GO_REQUIRED:
            pytest.fail(f"AMQP_BENCH_GO=1 but {built.reason}", pytrace=False)
        pytest.skip(
            f"amqp091-go worker not built: {built.reason}; "
            "AMQP_BENCH_GO=1 turns this skip into a failure"
        )
    return str(built.path)


@pytest.mark.integration
@pytest.mark.slow
def test_go_worker_runs_w4_through_run_child(e2e: ModuleType, go_worker: str) -> None:
    """One W4 job of the Go client, through the same child path as every
    client (run_child -> e2e.py --worker -> GoAdapter -> the Go worker)."""
    n = 50
    job = {
        "client": "amqp091-go",
        "workload": "W4",
        "n": n,
        "scale": 1,
        "url": amqp_url(),
        "timeout": 30.0,
        "queue": unique("bench-go"),
        "go_worker": go_worker,
    }
    res = e2e.run_child(job, 120.0)
    assert res["ok"], res
    assert res["n"] == n
    assert res["round_trips"] == n
    assert 0 < res["p50_us"] <= res["p99_us"]
    assert res["value"] == res["p50_us"]
    assert res["wall_s"] > 0 and res["cpu_share"] >= 0
