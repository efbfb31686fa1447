"""The committed spec input is the official file, unmodified."""

from __future__ import annotations

import hashlib

from codegen.loader import load
from tests.codegen.conftest import BASE, OVERLAY

SHA256 = "2157a4b1328b43f6027f95f00ef944b9fe5571985745f43fffc490dbc01589cc"


def test_base_spec_is_the_npm_amqp_0_2_7_file() -> None:
    data = BASE.read_bytes()
    assert len(data) == 137_418
    assert hashlib.sha256(data).hexdigest() == SHA256


def test_base_spec_keeps_its_licence_header() -> None:
    head = BASE.read_text(encoding="utf-8")[:6000]
    assert "Copyright Notice" in head
    assert "Licensed Claims" in head


def test_spec_has_60_methods_and_the_overlay_adds_4() -> None:
    base = load(BASE)
    merged = load(BASE, (OVERLAY,))
    assert sum(len(c.methods) for c in base.classes) == 60
    assert sum(len(c.methods) for c in merged.classes) == 64
    connection = merged.amqp_class("connection")
    ids = {m.name: m.index for m in connection.methods}
    assert ids["blocked"] == 60
    assert ids["unblocked"] == 61
    assert ids["update-secret"] == 70
    assert ids["update-secret-ok"] == 71
    fields = [(f.name, f.type) for f in connection.method("update-secret").fields]
    assert fields == [("new-secret", "longstr"), ("reason", "shortstr")]
    assert [(f.name, f.type) for f in connection.method("blocked").fields] == [
        ("reason", "shortstr")
    ]
