"""The benchmarks measure what they say: before timing anything,
bench/codec.py and bench/codec_ceiling.py check that every library (and
the hand-written ceiling) produces the same bytes and decodes the same
messages. Those checks run here, so a change to the codec that breaks a
benchmark's premise fails a test instead of printing a flattering figure.
No timing is asserted.
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
def bench_modules() -> Iterator[tuple[ModuleType, ModuleType]]:
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("codec"), importlib.import_module("codec_ceiling")
    finally:
        sys.path.remove(str(BENCH))
        for name in ("codec", "codec_ceiling"):
            sys.modules.pop(name, None)


def test_codec_bench_libraries_agree(
    bench_modules: tuple[ModuleType, ModuleType],
) -> None:
    codec, _ = bench_modules
    stream = codec.delivery_stream(codec.DELIVERIES)
    codec.check_agreement(stream)
    pieces = codec.chunks(stream, 256 * 1024)
    # Every delivery is decoded, joined or not.
    assert len(codec._messages(_frames(codec, pieces))) == codec.DELIVERIES


def _frames(codec: ModuleType, pieces: list[bytes]) -> list[object]:
    reader = codec.FrameReader(codec.FRAME_MAX, coalesce=True)
    return [frame for piece in pieces for frame in reader.feed(piece)]


def test_ceiling_does_the_same_work(
    bench_modules: tuple[ModuleType, ModuleType],
) -> None:
    _, ceiling = bench_modules
    ceiling.check()
