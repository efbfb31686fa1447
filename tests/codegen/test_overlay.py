"""Overlays add; a conflicting redefinition names both places."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen.loader import load
from codegen.model import SpecError
from tests.codegen.conftest import BASE, DATA

TINY = DATA / "tiny.xml"


def overlay(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "extra.xml"
    path.write_text(f'<?xml version="1.0"?>\n<amqp>\n{body}\n</amqp>\n')
    return path


def test_overlay_adds_a_method_a_class_a_constant_and_fields(tmp_path: Path) -> None:
    path = overlay(
        tmp_path,
        '<constant name="frame-bogus" value="9"/>\n'
        '<class name="thing"><method name="shake" index="40"><field name="how" domain="short"/></method>\n'
        '<method name="make-ok"><field name="size" domain="long"/></method>\n'
        '<field name="weight" domain="long"/></class>\n'
        '<class name="widget" index="80"><method name="spin" index="10"/></class>',
    )
    spec = load(TINY, (path,))
    thing = spec.amqp_class("thing")
    assert [m.name for m in thing.methods][-1] == "shake"
    assert [f.name for f in thing.method("make-ok").fields] == ["name", "size"]
    assert [f.name for f in thing.properties][-1] == "weight"
    assert spec.amqp_class("widget").index == 80
    assert [c.name for c in spec.constants][-1] == "frame-bogus"
    assert [f.name for f in spec.files] == ["tiny.xml", "extra.xml"]


def test_overlay_adds_a_response_and_makes_the_method_synchronous(
    tmp_path: Path,
) -> None:
    path = overlay(
        tmp_path,
        '<class name="thing"><method name="poke" synchronous="1">'
        "<doc>Erratum: poke is answered.</doc>"
        '<response name="make-ok"/></method></class>',
    )
    poke = load(TINY, (path,)).amqp_class("thing").method("poke")
    assert poke.synchronous
    assert poke.responses == ("make-ok",)
    assert poke.docs[-1].text == "Erratum: poke is answered."


def test_identical_constant_is_a_no_op(tmp_path: Path) -> None:
    path = overlay(tmp_path, '<constant name="frame-end" value="206"/>')
    spec = load(TINY, (path,))
    assert [c.name for c in spec.constants].count("frame-end") == 1


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ('<constant name="frame-end" value="207"/>', "constant frame-end=207"),
        ('<domain name="thing-name" type="longstr"/>', "domain thing-name"),
        (
            '<class name="thing"><method name="grab" index="10"/></class>',
            "index 10 (taken by thing.make)",
        ),
        ('<class name="thing" index="71"/>', "class thing index 71"),
        ('<class name="other" index="70"/>', "class other index 70 (taken by thing)"),
        (
            '<class name="thing"><method name="make"><field name="count" domain="long"/></method></class>',
            "field thing.make.count",
        ),
        (
            '<class name="thing"><method name="make" index="12"/></class>',
            "method thing.make index 12",
        ),
        (
            '<class name="thing"><method name="put"><chassis name="client"/></method></class>',
            "an overlay may only add fields, responses",
        ),
        (
            '<class name="thing"><method name="poke" content="1"/></class>',
            "an overlay may only add fields, responses",
        ),
        (
            '<class name="thing"><method name="make"><response name="make-ok"/></method></class>',
            "method thing.make response 'make-ok'",
        ),
        (
            '<class name="thing"><field name="colour" domain="shortstr"/></class>',
            "field thing.colour",
        ),
    ],
)
def test_conflicts_name_both_places(tmp_path: Path, body: str, what: str) -> None:
    path = overlay(tmp_path, body)
    with pytest.raises(SpecError) as info:
        load(TINY, (path,))
    message = str(info.value)
    assert message.startswith("extra.xml:3: ")
    assert what in message
    assert "conflicts with the definition at tiny.xml:" in message


def test_the_real_overlay_conflicts_with_nothing() -> None:
    spec = load(
        BASE,
        (Path(__file__).resolve().parents[2] / "spec" / "rabbitmq-extensions.xml",),
    )
    assert spec.amqp_class("connection").method("blocked").index == 60
