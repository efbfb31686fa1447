"""Every generated channel method is exercised by an integration test.

A static check: each public name of ``amqp_client.spec.AsyncChannelMethods``
must be called as ``.name(`` somewhere in the other modules of this
directory. Adding a method to the spec overlay without a test fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from amqp_client.spec import AsyncChannelMethods

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent


def public_channel_methods() -> list[str]:
    return sorted(
        name
        for name, value in vars(AsyncChannelMethods).items()
        if not name.startswith("_") and callable(value)
    )


def test_every_channel_method_is_called_by_an_integration_test() -> None:
    names = public_channel_methods()
    # The contract's methods are all there (DESIGN.md §4), so this check
    # cannot pass by enumerating nothing.
    assert {
        "exchange_declare",
        "queue_declare",
        "basic_publish",
        "basic_recover_async",
        "tx_rollback",
        "confirm_select",
        "channel_flow",
    } <= set(names)
    sources = "\n".join(
        path.read_text()
        for path in sorted(HERE.glob("*.py"))
        if path.name != Path(__file__).name
    )
    missing = [
        name for name in names if not re.search(rf"\.{re.escape(name)}\(", sources)
    ]
    assert not missing, f"no integration test calls: {', '.join(missing)}"
