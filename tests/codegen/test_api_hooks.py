"""The runtime hooks of the generated channel API (codegen.api.HOOKS).

basic.publish, basic.get and basic.consume hand over to ``_publish``,
``_get`` and ``_consume``, whose results are the API classes' type
parameters; basic_consume has no no_wait; every method that waits checks
its ``timeout`` before anything is sent; the API classes are abstract until
a runtime implements every hook; and a method that needs a hook it has not
got (content out, or a reply with content) is refused when the plan is made.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import inspect
import subprocess
import sys
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from amqp_client.spec import (
    AsyncChannelMethods,
    AsyncConnectionMethods,
    BasicConsume,
    BasicGet,
    BasicProperties,
    ChannelMethods,
    ConnectionMethods,
)
from amqp_client.spec.api import ReplyT

from amqp_client._spec_base import Method
from codegen import api as api_plan
from codegen import plan as planning
from codegen.loader import load
from codegen.model import SpecError
from tests.codegen.conftest import BASE, DATA, OVERLAY, ROOT, TINY_HOOKS

API = ROOT / "generated" / "api.py"
TINY = DATA / "tiny.xml"
CHANNEL_HOOKS = frozenset({"_rpc", "_send", "_publish", "_get", "_consume"})
#: What the behaviour tests pass for a required parameter, by annotation.
REQUIRED = {"str": "x", "bytes": b"x"}


@pytest.fixture(scope="module")
def real_plan() -> planning.SpecPlan:
    return planning.build(load(BASE, (OVERLAY,)))


def _api(plan: planning.SpecPlan, name: str) -> api_plan.ApiMethod:
    return next(a for a in plan.channel_api if a.method.name == name)


# --- the plan ----------------------------------------------------------------------


def test_the_hooks_table() -> None:
    assert dict(api_plan.HOOKS) == {
        "basic.publish": "_publish",
        "basic.get": "_get",
        "basic.consume": "_consume",
    }
    assert dict(api_plan.HOOK_KINDS) == {
        "_publish": "publish",
        "_get": "get",
        "_consume": "consume",
    }


def test_hooked_methods_get_the_hook_kinds(real_plan: planning.SpecPlan) -> None:
    hooked = {
        a.method.name: (a.kind, a.hook, a.returns)
        for a in real_plan.channel_api
        if a.hook
    }
    assert hooked == {
        "basic.publish": ("publish", "_publish", "PublishT"),
        "basic.get": ("get", "_get", "GetT | None"),
        "basic.consume": ("consume", "_consume", "ConsumerT"),
    }
    # Everything else is a plain send or send-and-await-reply, without content.
    for api in (*real_plan.channel_api, *real_plan.connection_api):
        if api.method.name in hooked:
            continue
        assert not api.hook
        assert api.kind in ("rpc", "rpc_no_wait", "send"), api.method.name
        assert not api.method.method.content
        assert api.returns != "object"
    assert _api(real_plan, "basic.publish").hook_args == (
        "body",
        "exchange",
        "routing_key",
        "mandatory",
        "immediate",
        "properties",
        "check_timeout(timeout)",
    )


def test_the_hook_declarations(real_plan: planning.SpecPlan) -> None:
    hooks = {h.name: h for h in real_plan.channel_hooks}
    assert list(hooks) == ["_publish", "_get", "_consume"]
    assert hooks["_publish"].params == (
        "body: bytes",
        "exchange: str",
        "routing_key: str",
        "mandatory: bool",
        "immediate: bool",
        "properties: BasicProperties | None",
        "timeout: float | None",
    )
    assert hooks["_publish"].returns == "PublishT"
    assert hooks["_get"].params == ("method: BasicGet", "timeout: float | None")
    assert hooks["_get"].returns == "GetT | None"
    assert hooks["_consume"].params == (
        "method: BasicConsume",
        "timeout: float | None",
        "callback: CallbackT | None",
        "concurrency: int",
    )
    assert hooks["_consume"].returns == "ConsumerT"
    for cls in (ChannelMethods, AsyncChannelMethods):
        publish = inspect.signature(cls._publish)
        assert list(publish.parameters) == [
            "self",
            "body",
            "exchange",
            "routing_key",
            "mandatory",
            "immediate",
            "properties",
            "timeout",
        ]
        assert publish.return_annotation == "PublishT"
        assert list(inspect.signature(cls._get).parameters) == [
            "self",
            "method",
            "timeout",
        ]
        assert list(inspect.signature(cls._consume).parameters) == [
            "self",
            "method",
            "timeout",
            "callback",
            "concurrency",
        ]
    for name in CHANNEL_HOOKS:
        assert inspect.iscoroutinefunction(getattr(AsyncChannelMethods, name))
        assert not inspect.iscoroutinefunction(getattr(ChannelMethods, name))


def test_basic_consume_has_no_no_wait(real_plan: planning.SpecPlan) -> None:
    api = _api(real_plan, "basic.consume")
    assert api.no_wait == ""
    assert not any(p.startswith("no_wait") for p in api.params)
    assert "no_wait" not in api.call
    assert "no_wait" not in api.docstring
    for cls in (ChannelMethods, AsyncChannelMethods):
        assert list(inspect.signature(cls.basic_consume).parameters) == [
            "self",
            "queue",
            "consumer_tag",
            "no_local",
            "no_ack",
            "exclusive",
            "arguments",
            "callback",
            "concurrency",
            "timeout",
        ]
        assert inspect.signature(cls.basic_consume).return_annotation == "ConsumerT"
        assert typing.get_overloads(cls.basic_consume) == []
    # The method class keeps its field: the API leaves it at False.
    assert "no_wait" in {f.name for f in BasicConsume.FIELDS}
    assert BasicConsume("q").no_wait is False
    # Others keep theirs.
    assert _api(real_plan, "basic.cancel").no_wait == "no_wait"


# --- the generated text ---------------------------------------------------------------


def _is_abstract(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        ast.unparse(d) in ("abc.abstractmethod", "overload") for d in fn.decorator_list
    )


def _functions() -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every method of the API classes in generated/api.py that has a body."""
    tree = ast.parse(API.read_text(encoding="utf-8"))
    found: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []
    for cls in tree.body:
        if isinstance(cls, ast.ClassDef):
            found += [
                (cls.name, fn)
                for fn in cls.body
                if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
                and not _is_abstract(fn)
            ]
    return found


def _self_calls(node: ast.AST) -> list[ast.Call]:
    return [
        c
        for c in ast.walk(node)
        if isinstance(c, ast.Call)
        and isinstance(c.func, ast.Attribute)
        and isinstance(c.func.value, ast.Name)
        and c.func.value.id == "self"
    ]


def test_every_method_with_a_timeout_checks_it_before_sending() -> None:
    checked: dict[str, set[str]] = {}
    for cls, fn in _functions():
        params = [a.arg for a in (*fn.args.args, *fn.args.kwonlyargs)]
        checks = [
            c
            for c in ast.walk(fn)
            if isinstance(c, ast.Call) and ast.unparse(c.func) == "check_timeout"
        ]
        hooks = {ast.unparse(c.func) for c in _self_calls(fn)}
        if "timeout" not in params:
            # Nothing to wait for: it only sends.
            assert not checks, fn.name
            assert hooks == {"self._send"}, fn.name
            continue
        assert [ast.unparse(c) for c in checks] == ["check_timeout(timeout)"], fn.name
        assert hooks, fn.name
        # The check comes first: in an earlier statement than every hook
        # call, or as one of its arguments (evaluated before the call).
        body = fn.body
        where = next(i for i, s in enumerate(body) if checks[0] in ast.walk(s))
        for i, statement in enumerate(body):
            for call in _self_calls(statement):
                assert i > where or (i == where and checks[0] in ast.walk(call)), (
                    f"{cls}.{fn.name}: {ast.unparse(call)} before check_timeout"
                )
        checked.setdefault(cls, set()).add(fn.name)
    assert set(checked) == {
        "AsyncChannelMethods",
        "ChannelMethods",
        "AsyncConnectionMethods",
        "ConnectionMethods",
    }
    assert checked["ChannelMethods"] == checked["AsyncChannelMethods"]
    assert {"basic_publish", "basic_get", "basic_consume", "queue_declare"} <= (
        checked["ChannelMethods"]
    )


# --- the generated classes --------------------------------------------------------


def test_the_api_classes_are_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        ChannelMethods()  # type: ignore[abstract]
    with pytest.raises(TypeError, match="abstract"):
        AsyncChannelMethods()  # type: ignore[abstract]
    with pytest.raises(TypeError, match="abstract"):
        ConnectionMethods()  # type: ignore[abstract]
    with pytest.raises(TypeError, match="abstract"):
        AsyncConnectionMethods()  # type: ignore[abstract]
    assert ChannelMethods.__abstractmethods__ == CHANNEL_HOOKS
    assert AsyncChannelMethods.__abstractmethods__ == CHANNEL_HOOKS
    assert ConnectionMethods.__abstractmethods__ == {"_rpc", "_send"}
    assert AsyncConnectionMethods.__abstractmethods__ == {"_rpc", "_send"}
    for cls in (ChannelMethods, AsyncChannelMethods):
        params = vars(cls)["__parameters__"]
        assert [p.__name__ for p in params] == [
            "PublishT",
            "GetT",
            "ConsumerT",
            "CallbackT",
        ]
    # Implementing every hook is enough.
    assert isinstance(Runtime(), ChannelMethods)
    assert isinstance(AsyncRuntime(), AsyncChannelMethods)


class Runtime(ChannelMethods[str, str, str, Callable[[str], object]]):
    """A blocking runtime that records what each hook is handed."""

    def __init__(self) -> None:
        self.sent: list[tuple[object, ...]] = []

    def _rpc(
        self, method: Method, timeout: float | None, reply: type[ReplyT]
    ) -> ReplyT:
        assert reply in method.RESPONSES, (method, reply)  # the method's reply class
        self.sent.append(("rpc", method, timeout))
        return reply.__new__(reply)

    def _send(self, method: Method) -> None:
        self.sent.append(("send", method))

    def _publish(
        self,
        body: bytes,
        exchange: str,
        routing_key: str,
        mandatory: bool,
        immediate: bool,
        properties: BasicProperties | None,
        timeout: float | None,
    ) -> str:
        args = (body, exchange, routing_key, mandatory, immediate, properties)
        self.sent.append(("publish", *args, timeout))
        return "confirmation"

    def _get(self, method: BasicGet, timeout: float | None) -> str | None:
        self.sent.append(("get", method, timeout))
        return "delivery"

    def _consume(
        self,
        method: BasicConsume,
        timeout: float | None,
        callback: Callable[[str], object] | None,
        concurrency: int,
    ) -> str:
        self.sent.append(("consume", method, callback, concurrency, timeout))
        return "consumer"


class AsyncRuntime(AsyncChannelMethods[str, str, str, Callable[[str], object]]):
    """The same for asyncio."""

    def __init__(self) -> None:
        self.sent: list[tuple[object, ...]] = []

    async def _rpc(
        self, method: Method, timeout: float | None, reply: type[ReplyT]
    ) -> ReplyT:
        assert reply in method.RESPONSES, (method, reply)  # the method's reply class
        self.sent.append(("rpc", method, timeout))
        return reply.__new__(reply)

    async def _send(self, method: Method) -> None:
        self.sent.append(("send", method))

    async def _publish(
        self,
        body: bytes,
        exchange: str,
        routing_key: str,
        mandatory: bool,
        immediate: bool,
        properties: BasicProperties | None,
        timeout: float | None,
    ) -> str:
        args = (body, exchange, routing_key, mandatory, immediate, properties)
        self.sent.append(("publish", *args, timeout))
        return "confirmation"

    async def _get(self, method: BasicGet, timeout: float | None) -> str | None:
        self.sent.append(("get", method, timeout))
        return "delivery"

    async def _consume(
        self,
        method: BasicConsume,
        timeout: float | None,
        callback: Callable[[str], object] | None,
        concurrency: int,
    ) -> str:
        self.sent.append(("consume", method, callback, concurrency, timeout))
        return "consumer"


def _calls(runtime: object) -> list[tuple[str, Callable[..., Any], tuple[object, ...]]]:
    """Each public API method of ``runtime``, bound, with its required
    arguments."""
    calls: list[tuple[str, Callable[..., Any], tuple[object, ...]]] = []
    for name, fn in inspect.getmembers(runtime, inspect.ismethod):
        if name.startswith("_"):
            continue
        required = tuple(
            REQUIRED[p.annotation]
            for p in inspect.signature(fn).parameters.values()
            if p.default is inspect.Parameter.empty
        )
        calls.append((name, fn, required))
    assert len(calls) == 24
    return calls


def _check(
    sent: list[tuple[object, ...]],
    name: str,
    call: Callable[..., object],
    args: tuple[object, ...],
) -> None:
    """``call`` refuses each bad timeout with nothing sent, then hands a good
    one to exactly one hook, unchanged."""
    params = inspect.signature(call).parameters
    if "timeout" not in params:
        call(*args)
        assert [s[0] for s in sent] == ["send"], name
        return
    variants: list[Mapping[str, object]] = [{}]
    if "no_wait" in params:
        variants.append({"no_wait": True})
    for kwargs in variants:
        for bad, error in (
            (-1, ValueError),
            (float("nan"), ValueError),
            (float("inf"), ValueError),
            ("1", TypeError),
            (True, TypeError),
        ):
            with pytest.raises(error, match="timeout"):
                call(*args, **kwargs, timeout=bad)
        assert sent == [], name
    call(*args, timeout=2.5)
    assert len(sent) == 1, name
    assert sent[0][0] in ("rpc", "publish", "get", "consume"), name
    assert sent[0][-1] == 2.5, name


def test_a_bad_timeout_reaches_no_hook() -> None:
    rt = Runtime()
    for name, fn, args in _calls(rt):
        rt.sent.clear()
        _check(rt.sent, name, fn, args)


def test_a_bad_timeout_reaches_no_hook_asyncio() -> None:
    rt = AsyncRuntime()

    def sync(fn: Callable[..., Any]) -> Callable[..., object]:
        @functools.wraps(fn)  # and its signature
        def call(*args: object, **kwargs: object) -> object:
            return asyncio.run(fn(*args, **kwargs))

        return call

    for name, fn, args in _calls(rt):
        rt.sent.clear()
        _check(rt.sent, name, sync(fn), args)


def test_the_hooks_get_what_the_api_is_given() -> None:
    rt = Runtime()
    props = BasicProperties(content_type="text/plain")
    assert (
        rt.basic_publish(b"hi", exchange="x", routing_key="k", properties=props)
        == "confirmation"
    )
    assert rt.basic_get("q", no_ack=True) == "delivery"
    assert rt.basic_consume("q", exclusive=True, timeout=0) == "consumer"
    assert rt.basic_consume("q", callback=print, concurrency=3) == "consumer"
    assert rt.sent == [
        ("publish", b"hi", "x", "k", False, False, props, None),
        ("get", BasicGet("q", no_ack=True), None),
        ("consume", BasicConsume("q", exclusive=True), None, 1, 0),
        ("consume", BasicConsume("q"), print, 3, None),
    ]
    # Bad arguments fail before anything reaches a hook.
    with pytest.raises(ValueError, match="queue"):
        rt.basic_get("q" * 256)
    with pytest.raises(TypeError):
        rt.basic_consume(7)  # type: ignore[arg-type]
    assert len(rt.sent) == 4


# --- methods without the hook they need -----------------------------------------------


def _without(name: str) -> dict[str, str]:
    return {k: v for k, v in TINY_HOOKS.items() if k != name}


@pytest.mark.parametrize(
    ("hooks", "message"),
    [
        (
            api_plan.HOOKS,
            r"^tiny\.xml:\d+: thing\.put is a client-sent content method without a "
            r"runtime hook; add one to codegen\.api\.HOOKS$",
        ),
        (
            _without("thing.put"),
            r"^tiny\.xml:\d+: thing\.put is a client-sent content method without a "
            r"runtime hook; add one to codegen\.api\.HOOKS$",
        ),
        (
            _without("thing.fetch"),
            r"^tiny\.xml:\d+: thing\.fetch has a reply with content but no runtime "
            r"hook; add one to codegen\.api\.HOOKS$",
        ),
        (
            {**TINY_HOOKS, "thing.poke": "_poke"},
            r"thing\.poke: unknown runtime hook '_poke' in codegen\.api\.HOOKS",
        ),
        (
            {**TINY_HOOKS, "thing.make": "_publish"},
            r"thing\.make: its runtime hook _publish \(codegen\.api\.HOOKS\) "
            "drives a content method",
        ),
        (
            {**TINY_HOOKS, "thing.put": "_get"},
            r"thing\.put: its runtime hook _get \(codegen\.api\.HOOKS\) drives a "
            "method whose reply carries content",
        ),
        (
            {**TINY_HOOKS, "thing.poke": "_consume"},
            r"thing\.poke: its runtime hook _consume \(codegen\.api\.HOOKS\) "
            r"drives a method with a reply",
        ),
        (
            {**TINY_HOOKS, "thing.make": "_consume"},
            r"thing\.watch and thing\.make both hand over to _consume",
        ),
        (
            {**TINY_HOOKS, "connection.ping": "_get"},
            r"connection\.ping: a connection method cannot have a runtime hook",
        ),
        (
            {**TINY_HOOKS, "thing.make-ok": "_get", "thing.shake": "_get"},
            r"codegen\.api\.HOOKS names thing\.make-ok, thing\.shake: no "
            "client-sent method",
        ),
    ],
)
def test_methods_and_hooks_that_do_not_fit_are_refused(
    hooks: Mapping[str, str], message: str
) -> None:
    spec = load(TINY)
    with pytest.raises(ValueError, match=message) as info:
        planning.build(spec, hooks)
    # A spec problem like any other: `python -m codegen` reports it.
    assert isinstance(info.value, SpecError)


def test_the_tiny_spec_renders_with_its_hooks() -> None:
    plan = planning.build(load(TINY), TINY_HOOKS)
    kinds = {a.method.name: a.kind for a in plan.channel_api}
    assert kinds == {
        "thing.make": "rpc_no_wait",
        "thing.put": "publish",
        "thing.poke": "send",
        "thing.fetch": "get",
        "thing.watch": "consume",
    }
    assert [h.name for h in plan.channel_hooks] == ["_publish", "_get", "_consume"]


def test_the_cli_reports_an_unhooked_method(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "codegen", "--spec", str(TINY), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: tiny.xml:")
    assert "thing.put is a client-sent content method without a runtime hook" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not out.exists()
