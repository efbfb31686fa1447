"""Helpers for generator tests: generate into a temp dir and import it."""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from codegen.loader import load
from codegen.render import write

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
BASE = ROOT / "spec" / "amqp0-9-1.extended.xml"
OVERLAY = ROOT / "spec" / "rabbitmq-extensions.xml"

_counter = itertools.count()


def generate_package(
    base: Path, overlays: tuple[Path, ...], tmp: Path
) -> tuple[ModuleType, Path]:
    """Generate into ``tmp/<unique name>`` and import it as that package."""
    name = f"generated_under_test_{next(_counter)}"
    out = tmp / name
    write(load(base, overlays), out)
    sys.path.insert(0, str(tmp))
    try:
        importlib.invalidate_caches()
        return importlib.import_module(name), out
    finally:
        sys.path.remove(str(tmp))


@pytest.fixture
def cleanup_modules() -> Iterator[None]:
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("generated_under_test_"):
            del sys.modules[name]
