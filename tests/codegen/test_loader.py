"""The loader: a typed model, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen.loader import load, parse
from codegen.model import SpecError
from tests.codegen.conftest import BASE, DATA


def write(tmp_path: Path, body: str, name: str = "t.xml") -> Path:
    path = tmp_path / name
    path.write_text(
        f'<?xml version="1.0"?>\n<amqp major="0" minor="9" revision="1" port="1">\n{body}\n</amqp>\n'
    )
    return path


def test_model_of_the_real_spec() -> None:
    spec = load(BASE)
    queue = spec.amqp_class("queue")
    declare = queue.method("declare")
    assert queue.index == 50 and declare.index == 10
    assert declare.synchronous and declare.client_sent and not declare.server_sent
    assert declare.responses == ("declare-ok",)
    fields = {f.name: f for f in declare.fields}
    assert fields["queue"].type == "shortstr"
    assert fields["queue"].domain == "queue-name"
    assert [a.check for a in fields["queue"].asserts] == ["length", "regexp"]
    assert fields["reserved-1"].reserved
    assert fields["no-wait"].type == "bit"
    assert any(r.on_failure == "resource-locked" for r in fields["exclusive"].rules)
    assert "creates or checks a queue" in declare.docs[0].text
    assert (
        declare.source.file == "amqp0-9-1.extended.xml" and declare.source.line > 1000
    )
    basic = spec.amqp_class("basic")
    assert len(basic.properties) == 14
    assert basic.method("deliver").content
    assert spec.amqp_class("connection").docs[1].kind == "grammar"
    constants = {c.name: c for c in spec.constants}
    assert constants["frame-end"].value == 206
    assert constants["not-found"].error_class == "soft-error"


def test_unknown_domain_names_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '<class name="x" index="1">\n<method name="m" index="1">\n'
        '<field name="f" domain="nope"/>\n</method>\n</class>',
    )
    with pytest.raises(SpecError, match=r"t\.xml:5: unknown domain 'nope'"):
        load(path)


def test_unknown_attribute_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '<constant name="a" value="1" colour="red"/>')
    with pytest.raises(SpecError, match=r"t\.xml:3: unknown attribute 'colour'"):
        parse(path)


def test_unknown_element_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '<class name="x" index="1"><frobnicate/></class>')
    with pytest.raises(SpecError, match=r"t\.xml:3: <frobnicate> is not allowed"):
        parse(path)


def test_malformed_xml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '<constant name="a" value="1">')
    with pytest.raises(SpecError, match=r"t\.xml:\d+:"):
        parse(path)


def test_non_integer_index(tmp_path: Path) -> None:
    path = write(tmp_path, '<class name="x" index="ten"/>')
    with pytest.raises(SpecError, match=r"t\.xml:3: index='ten' is not an integer"):
        parse(path)


def test_response_to_a_missing_method(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '<class name="x" index="1"><method name="m" index="1">'
        '<response name="m-ok"/></method></class>',
    )
    with pytest.raises(SpecError, match=r"t\.xml:3: x\.m names response 'm-ok'"):
        load(path)


def test_domain_cycle(tmp_path: Path) -> None:
    path = write(tmp_path, '<domain name="a" type="b"/>\n<domain name="b" type="a"/>')
    with pytest.raises(SpecError, match="domain cycle"):
        load(path)


def test_domain_chain_collects_asserts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '<domain name="a" type="b"><assert check="notnull"/></domain>\n'
        '<domain name="b" type="shortstr"><assert check="length" value="9"/></domain>\n'
        '<class name="x" index="1"><method name="m" index="1">'
        '<field name="f" domain="a"><assert check="regexp" value="x"/></field>'
        "</method></class>",
    )
    field = load(path).amqp_class("x").method("m").fields[0]
    assert field.type == "shortstr"
    assert [a.check for a in field.asserts] == ["notnull", "length", "regexp"]
    assert field.required


def test_tiny_spec_loads() -> None:
    spec = load(DATA / "tiny.xml")
    assert [c.name for c in spec.classes] == ["connection", "thing"]
    assert len(spec.amqp_class("thing").properties) == 4
