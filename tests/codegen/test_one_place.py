"""Every protocol fact is generated once and the runtime uses it from there.

The frame constants, the reply codes and the C decoders' layouts live in
generated/ (amqp_client.spec). The proof: generate from a copy of the spec
with frame-end and frame-error changed and an overlay method added, run the
runtime on that output (amqp_client.spec redirected to it, in a child
process), and see each change arrive: in the frame writer and reader, in
the errors' reply codes, and in a C layout for the new method.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from amqp_client import errors, frames, spec, wire
from amqp_client.session import recovery
from codegen.codec import C_KINDS
from codegen.loader import load
from codegen.render import write
from tests.codegen.conftest import BASE, OVERLAY, ROOT

SPEC_CONSTANTS = ROOT / "generated" / "constants.py"

PEEK = """<?xml version="1.0"?>
<amqp>
  <class name="queue">
    <method name="peek" synchronous="1" index="92" label="peek at a queue">
      <chassis name="server" implement="MUST"/>
      <response name="peek-ok"/>
      <field name="queue" domain="queue-name"/>
      <field name="depth" domain="long"/>
      <field name="no-wait" domain="no-wait"/>
    </method>
    <method name="peek-ok" synchronous="1" index="93" label="what was seen">
      <chassis name="client" implement="MUST"/>
      <field name="count" domain="long"/>
      <field name="first" domain="shortstr"/>
    </method>
  </class>
</amqp>
"""

# Runs the runtime with amqp_client.spec imported from argv[1] and prints
# what it took from there.
CHILD = """
import importlib.abc, importlib.util, json, sys
from pathlib import Path

OUT = Path(sys.argv[1])


class Redirect(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "amqp_client.spec" and not name.startswith("amqp_client.spec."):
            return None
        base = OUT.joinpath(*name.split(".")[2:])
        if base.is_dir():
            return importlib.util.spec_from_file_location(
                name, base / "__init__.py", submodule_search_locations=[str(base)]
            )
        return importlib.util.spec_from_file_location(name, base.with_suffix(".py"))


sys.meta_path.insert(0, Redirect())
from amqp_client import errors, frames, spec, wire

assert spec.__file__.startswith(str(OUT)), spec.__file__
peek_ok = spec.QueuePeekOk(7, "x")
payload = peek_ok.encode()
layout = sys.modules[spec.QueuePeekOk.__module__]._L_QueuePeekOk
decoded = None
if layout is not None:
    decoded = wire.c_decode_fields(spec.QueuePeekOk, layout, payload, 0, len(payload))
publish = spec.BasicPublish.frames(1, 4096, None, b"body", "", "rk")
reader = frames.FrameReader()
try:
    reader.feed(frames.HEARTBEAT_FRAME[:-1] + bytes([206]))
    refused = None
except errors.FrameDecodeError as exc:
    refused = exc.reply_code
print(json.dumps({
    "frame_end": frames.FRAME_END,
    "end_byte": frames.FRAME_END_BYTE.hex(),
    "heartbeat": frames.HEARTBEAT_FRAME.hex(),
    "method_frame_end": frames.method_frame(1, spec.TxSelect())[-1],
    "publish_end": b"".join(publish)[-1],
    "frame_error": int(errors.FrameDecodeError.reply_code),
    "reply_code": int(spec.ReplyCode.FRAME_ERROR),
    "refused_with": refused,
    "c_kinds": None if layout is None else layout[1].decode(),
    "c_decoded": None if decoded is None else [decoded.count, decoded.first],
}))
"""


def test_runtime_frame_constants_are_the_generated_ones() -> None:
    assert frames.FRAME_METHOD is spec.FRAME_METHOD
    assert frames.FRAME_HEADER is spec.FRAME_HEADER
    assert frames.FRAME_BODY is spec.FRAME_BODY
    assert frames.FRAME_HEARTBEAT is spec.FRAME_HEARTBEAT
    assert frames.FRAME_END is spec.FRAME_END
    assert frames.FRAME_MIN_SIZE is spec.FRAME_MIN_SIZE
    assert bytes([spec.FRAME_END]) == frames.FRAME_END_BYTE


def test_runtime_reply_codes_are_the_generated_ones() -> None:
    assert errors.FrameDecodeError.reply_code is spec.ReplyCode.FRAME_ERROR
    assert errors.FrameSequenceError.reply_code is spec.ReplyCode.UNEXPECTED_FRAME
    assert errors.AuthenticationError.REPLY_CODE is spec.ReplyCode.ACCESS_REFUSED
    assert all(isinstance(c, spec.ReplyCode) for c in recovery.RECOVERABLE_CODES)


def _code_constants(tree: ast.AST) -> list[tuple[int, int]]:
    """(line, value) of each int literal that is a reply code, docstrings
    and other strings aside."""
    codes = {int(code) for code in spec.ReplyCode}
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and type(node.value) is int
        and node.value in codes
    ]


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "amqp_client").rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_runtime_names_reply_codes_by_reply_code(path: Path) -> None:
    found = _code_constants(ast.parse(path.read_text()))
    assert not found, f"{path}: reply codes as literals (use ReplyCode): {found}"


def test_c_layouts_are_generated_tables() -> None:
    # Every generated method class has the layout its module computed from
    # the generator's table (None only without the C extension).
    for cls in spec.METHODS.values():
        layout = getattr(sys.modules[cls.__module__], f"_L_{cls.__name__}")
        assert (layout is not None) == (wire.c_decode_fields is not None)


def test_the_c_extension_reads_the_generated_header() -> None:
    header = (ROOT / "generated" / "spec.h").read_text()
    for name, kind in C_KINDS.items():
        assert f"#define KIND_{name} '{kind}'\n" in header
    assert f"#define AMQP_FRAME_END {spec.FRAME_END}\n" in header
    source = (ROOT / "amqp_client" / "_speedups.c").read_text()
    assert '#include "spec.h"' in source


def test_a_changed_spec_changes_the_runtime(tmp_path: Path) -> None:
    base = tmp_path / "spec" / BASE.name
    base.parent.mkdir()
    text = BASE.read_text()
    frame_end = '<constant name = "frame-end"        value = "206" />'
    frame_error = '<constant name = "frame-error" value = "501"'
    assert frame_end in text and frame_error in text
    text = text.replace(frame_end, frame_end.replace("206", "205"))
    text = text.replace(frame_error, frame_error.replace("501", "591"))
    base.write_text(text)
    peek = tmp_path / "spec" / "zz-peek.xml"
    peek.write_text(PEEK)
    shutil.copy(OVERLAY, base.parent / OVERLAY.name)
    out = tmp_path / "out"
    write(load(base, (base.parent / OVERLAY.name, peek)), out)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["frame_end"] == 205
    # The C extension's header says so too.
    assert "#define AMQP_FRAME_END 205\n" in (out / "spec.h").read_text()
    assert seen["end_byte"] == "cd"
    assert seen["heartbeat"] == "08000000000000cd"
    assert seen["method_frame_end"] == 205
    assert seen["publish_end"] == 205
    assert seen["frame_error"] == seen["reply_code"] == 591
    # 206 is no longer the frame-end: the reader refuses it with the new code.
    assert seen["refused_with"] == 591
    if wire.c_decode_fields is not None:
        # The overlay method got a C layout (long, shortstr) and C decodes it.
        assert seen["c_kinds"] == "Is"
        assert seen["c_decoded"] == [7, "x"]


def test_one_switch_turns_every_codec_to_python_and_back() -> None:
    from amqp_client._spec_base import use_speedups

    def layouts() -> list[object]:
        return [
            getattr(sys.modules[cls.__module__], f"_L_{cls.__name__}")
            for cls in (*spec.METHODS.values(), spec.BasicProperties)
        ]

    was_on = wire.c_decode_fields is not None
    try:
        assert use_speedups(False) is False
        assert wire.c_decode_fields is None
        assert all(layout is None for layout in layouts())
        if use_speedups(True):
            assert all(layout is not None for layout in layouts())
            frame = spec.QueueDeclareOk("q", 1, 2)
            payload = frame.encode()
            assert spec.QueueDeclareOk.decode_from(payload, 0, len(payload)) == frame
    finally:
        use_speedups(was_on)
