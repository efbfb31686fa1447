"""Extending the spec is how the surface grows: an overlay method becomes a
class, a registry entry, docs and an API method with no hand-written code."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from tests.codegen.conftest import BASE, OVERLAY, Recorder, generate_package

SYNTHETIC = """<?xml version="1.0"?>
<amqp>
  <class name="queue">
    <method name="frobnicate" synchronous="1" index="90" label="frobnicate a queue">
      <doc>Frobnicates the queue by the given amount.</doc>
      <rule name="bounded" on-failure="precondition-failed">
        <doc>The amount MUST be below 1000.</doc>
      </rule>
      <chassis name="server" implement="MUST"/>
      <response name="frobnicate-ok"/>
      <field name="reserved-1" type="short" reserved="1"/>
      <field name="queue" domain="queue-name"/>
      <field name="amount" domain="long" label="how much">
        <doc>The amount of frobnication.</doc>
      </field>
      <field name="no-wait" domain="no-wait"/>
      <field name="arguments" domain="table"/>
    </method>
    <method name="frobnicate-ok" synchronous="1" index="91" label="queue frobnicated">
      <chassis name="client" implement="MUST"/>
      <field name="level" domain="long"/>
    </method>
  </class>
  <class name="connection">
    <method name="wave" index="90" label="wave at the broker">
      <chassis name="server" implement="MUST"/>
      <field name="hand" domain="shortstr"/>
    </method>
  </class>
</amqp>
"""


@pytest.mark.usefixtures("cleanup_modules")
def test_overlay_method_appears_everywhere(tmp_path: Path) -> None:
    extra = tmp_path / "synthetic.xml"
    extra.write_text(SYNTHETIC)
    pkg, _ = generate_package(BASE, (OVERLAY, extra), tmp_path)

    cls = pkg.QueueFrobnicate
    assert cls.NAME == "queue.frobnicate"
    assert (cls.CLASS_ID, cls.METHOD_ID) == (50, 90)
    assert pkg.METHODS[(50 << 16) | 90] is cls
    assert pkg.BY_NAME["queue.frobnicate-ok"] is pkg.QueueFrobnicateOk
    assert (pkg.QueueFrobnicateOk,) == cls.RESPONSES
    assert len(pkg.METHODS) == 64 + 3

    method = cls("q", 5, no_wait=True, arguments={"x": 1})
    assert cls.decode(method.encode()) == method

    doc = inspect.getdoc(cls) or ""
    assert "Frobnicates the queue by the given amount." in doc
    assert "amount (long, default 0): How much. The amount of frobnication." in doc
    assert "The amount MUST be below 1000." in doc
    assert "PreconditionFailedError" in doc

    for api in (pkg.AsyncChannelMethods, pkg.ChannelMethods):
        fn = api.queue_frobnicate
        params = inspect.signature(fn).parameters
        assert list(params) == [
            "self",
            "queue",
            "amount",
            "no_wait",
            "arguments",
            "timeout",
        ]
        assert params["no_wait"].kind is inspect.Parameter.KEYWORD_ONLY
        assert "Frobnicates the queue" in (fn.__doc__ or "")
        assert "QueueFrobnicateOk" in (fn.__doc__ or "")
    assert inspect.iscoroutinefunction(pkg.AsyncChannelMethods.queue_frobnicate)

    for api in (pkg.AsyncConnectionMethods, pkg.ConnectionMethods):
        assert "hand" in inspect.signature(api.wave).parameters


@pytest.mark.usefixtures("cleanup_modules")
def test_api_hands_the_method_to_the_hooks(tmp_path: Path) -> None:
    extra = tmp_path / "synthetic.xml"
    extra.write_text(SYNTHETIC)
    pkg, _ = generate_package(BASE, (OVERLAY, extra), tmp_path)

    class Runtime(Recorder, pkg.ChannelMethods):  # type: ignore[misc, name-defined]
        pass

    ok = pkg.QueueFrobnicateOk(level=3)
    rt = Runtime(ok)
    assert rt.queue_frobnicate("q", 7, timeout=2.5) is ok
    assert rt.sent == [("rpc", pkg.QueueFrobnicate("q", 7), 2.5)]
    assert rt.queue_frobnicate("q", 7, no_wait=True) is None
    assert rt.sent[-1] == ("send", pkg.QueueFrobnicate("q", 7, no_wait=True))
    # Bad arguments fail before anything reaches a hook.
    with pytest.raises(ValueError, match="amount"):
        rt.queue_frobnicate("q", -1)
    with pytest.raises(ValueError, match="queue"):
        rt.queue_frobnicate("q" * 256, 1)
    # So does a bad timeout, checked before the method waits (or not).
    with pytest.raises(ValueError, match="timeout"):
        rt.queue_frobnicate("q", 7, timeout=-1)
    with pytest.raises(ValueError, match="timeout"):
        rt.queue_frobnicate("q", 7, no_wait=True, timeout=float("nan"))
    with pytest.raises(TypeError, match="timeout"):
        rt.queue_frobnicate("q", 7, timeout="1")
    assert len(rt.sent) == 2
    # The overlay leaves the hooked methods of the real spec as they were.
    props = pkg.BasicProperties(content_type="text/plain")
    assert rt.basic_publish(b"hi", routing_key="q", properties=props) is ok
    assert rt.basic_get("q", timeout=1) is ok
    assert rt.basic_consume("q", no_ack=True) is ok
    assert rt.sent[2:] == [
        ("publish", b"hi", "", "q", False, False, props, None),
        ("get", pkg.BasicGet("q"), 1),
        ("consume", pkg.BasicConsume("q", no_ack=True), None),
    ]
