"""`python -m amqp_client doc`: the spec's text, readable at 80 columns."""

from __future__ import annotations

import subprocess
import sys

import pytest

from amqp_client import spec
from amqp_client.cli import main


def run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "amqp_client", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_doc_queue_declare_shows_fields_replies_and_rules() -> None:
    out = run("doc", "queue.declare")
    assert out.startswith("queue.declare (50/10): QueueDeclare")
    assert "This method creates or checks a queue." in out
    for field in spec.QueueDeclare.FIELDS:
        assert f"    {field.name} (" in out
    assert 'queue (queue-name: shortstr, default ""):' in out
    assert "durable (bit, default False):" in out
    assert "replies:" in out and "QueueDeclareOk" in out
    assert "Rules:" in out and "PreconditionFailedError" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_doc_list_lists_every_method_within_80_columns() -> None:
    out = run("doc", "--list")
    for cls in spec.METHODS.values():
        assert f"  {cls.NAME} " in out
    assert "connection.update-secret" in out
    assert max(len(line) for line in out.splitlines()) <= 80


@pytest.mark.parametrize(
    "name", ["basic", "basic.properties", "connection.blocked", "tx.select"]
)
def test_doc_other_targets_fit_80_columns(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doc", name]) == 0
    out = capsys.readouterr().out
    assert out.strip()
    assert max(len(line) for line in out.splitlines()) <= 80


def test_every_method_doc_fits_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    for name in spec.BY_NAME:
        assert main(["doc", name]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_unknown_name_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doc", "queue.frobnicate"]) == 2
    assert "unknown method or class: queue.frobnicate" in capsys.readouterr().err


def test_help_of_a_method_class_shows_the_spec_text() -> None:
    import pydoc

    text = pydoc.render_doc(spec.QueueDeclare, renderer=pydoc.plaintext)
    assert "This method creates or checks a queue." in text
    assert "auto_delete (bit, default False)" in text
