"""Both fronts offer the same names and parameters (DESIGN.md §4).

The blocking front drops ``await`` and adds ``timeout`` where it waits;
everything else must match. Differences are listed here, on purpose.
"""

from __future__ import annotations

import inspect

import pytest

from amqp_client import aio, blocking

PAIRS = [
    (aio.Connection, blocking.Connection),
    (aio.Channel, blocking.Channel),
    (aio.Consumer, blocking.Consumer),
    (aio.Delivery, blocking.Delivery),
    (aio.Confirmation, blocking.Confirmation),
]

#: Names only one front has, and why.
ONLY_ASYNC = {
    "Connection": {"closed"},  # a future to await; blocking has wait_closed(timeout)
    "Confirmation": set(),  # awaitable instead of wait()
}
ONLY_BLOCKING = {
    "Consumer": {
        "get"
    },  # one delivery with a timeout (asyncio: anext with asyncio.timeout)
    "Confirmation": {"wait"},
}


def public(cls: type) -> dict[str, object]:
    names = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if not name.startswith("_"):
                names[name] = value
    return names


def params(fn: object) -> list[tuple[str, object, object]]:
    signature = inspect.signature(fn)  # type: ignore[arg-type]
    return [
        (p.name, p.kind, p.default)
        for p in signature.parameters.values()
        if p.name != "timeout"  # the blocking front adds it where it waits
    ]


@pytest.mark.parametrize(("aio_cls", "blocking_cls"), PAIRS, ids=lambda c: c.__name__)
def test_same_public_names(aio_cls: type, blocking_cls: type) -> None:
    name = aio_cls.__name__
    aio_names = set(public(aio_cls)) - ONLY_ASYNC.get(name, set())
    blocking_names = set(public(blocking_cls)) - ONLY_BLOCKING.get(name, set())
    assert aio_names == blocking_names


@pytest.mark.parametrize(("aio_cls", "blocking_cls"), PAIRS, ids=lambda c: c.__name__)
def test_same_parameters(aio_cls: type, blocking_cls: type) -> None:
    aio_members = public(aio_cls)
    blocking_members = public(blocking_cls)
    for name in sorted(set(aio_members) & set(blocking_members)):
        a, b = aio_members[name], blocking_members[name]
        if not callable(a) or isinstance(a, type):
            continue
        assert params(a) == params(b), name


def test_async_methods_are_coroutines_and_blocking_ones_are_not() -> None:
    for aio_cls, blocking_cls in PAIRS:
        for name, value in public(aio_cls).items():
            other = public(blocking_cls).get(name)
            if inspect.iscoroutinefunction(value) and other is not None:
                assert not inspect.iscoroutinefunction(other), (
                    f"{blocking_cls.__name__}.{name}"
                )


def test_connect_signatures_match() -> None:
    assert params(aio.connect) == params(blocking.connect)
    import amqp_client

    assert amqp_client.connect is aio.connect
