"""Helpers for generator tests: generate into a temp dir and import it."""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType

import pytest

from amqp_client._spec_base import Method
from codegen.api import HOOKS
from codegen.loader import load
from codegen.render import write

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
BASE = ROOT / "spec" / "amqp0-9-1.extended.xml"
OVERLAY = ROOT / "spec" / "rabbitmq-extensions.xml"

#: The runtime hooks of tiny.xml's thing class, whose put, fetch and watch
#: stand in for basic.publish, basic.get and basic.consume (codegen.api.HOOKS).
TINY_HOOKS = {"thing.put": "_publish", "thing.fetch": "_get", "thing.watch": "_consume"}

_counter = itertools.count()


def generate_package(
    base: Path,
    overlays: tuple[Path, ...],
    tmp: Path,
    hooks: Mapping[str, str] = HOOKS,
) -> tuple[ModuleType, Path]:
    """Generate into ``tmp/<unique name>`` and import it as that package."""
    name = f"generated_under_test_{next(_counter)}"
    out = tmp / name
    write(load(base, overlays), out, hooks=hooks)
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


class Recorder:
    """A stand-in runtime for a generated ``ChannelMethods``: records what the
    generated API hands each hook, and answers with ``reply``."""

    def __init__(self, reply: object = None) -> None:
        self.sent: list[tuple[object, ...]] = []
        self.reply = reply

    def _rpc(self, method: Method, timeout: float | None, reply: type) -> object:
        # The generated API names the class of the method's reply.
        assert reply in method.RESPONSES, (method, reply)
        self.sent.append(("rpc", method, timeout))
        return self.reply

    def _send(self, method: object) -> None:
        self.sent.append(("send", method))

    def _publish(self, body: bytes, *args: object) -> object:
        self.sent.append(("publish", body, *args))
        return self.reply

    def _get(self, method: object, timeout: float | None) -> object:
        self.sent.append(("get", method, timeout))
        return self.reply

    def _consume(
        self, method: object, timeout: float | None, *callback: object
    ) -> object:
        self.sent.append(("consume", method, timeout))
        return self.reply
