"""generated/ reads like hand-written code: lines of at most 100 characters
(spec URLs apart), ruff-formatted, clean under the project's ruff rules, no
nested conditional expressions, and the spec's prose once per method."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from amqp_client import spec
from tests.codegen.conftest import ROOT

GENERATED = ROOT / "generated"
MODULES = sorted(GENERATED.rglob("*.py"))


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(GENERATED)))
def test_no_generated_line_over_100_characters_apart_from_urls(path: Path) -> None:
    long = [
        (number, line)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if len(line) > 100 and "://" not in line
    ]
    assert not long, long[:3]


def test_generated_passes_ruff_format_check() -> None:
    done = _ruff("format", "--check", "generated")
    assert done.returncode == 0, done.stdout + done.stderr


def test_generated_passes_ruff_check() -> None:
    done = _ruff("check", "generated")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(GENERATED)))
def test_no_nested_conditional_expressions(path: Path) -> None:
    nested = [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.IfExp)
        and any(isinstance(n, ast.IfExp) for n in (node.body, node.orelse))
    ]
    assert not nested


def test_spec_prose_is_in_the_docstring_only() -> None:
    # The text of queue.declare's field "queue" is in QueueDeclare's
    # docstring, and nowhere else in its module: FIELDS does not copy it.
    phrase = "identifies the queue within the vhost"
    module = (GENERATED / "methods" / "queue.py").read_text()
    doc = spec.QueueDeclare.__doc__ or ""
    assert phrase in " ".join(doc.split())
    flat = " ".join(module.split())
    declare = flat.split("class QueueDeclare(Method):")[1].split(
        "class QueueDeclareOk"
    )[0]
    assert " ".join(declare.split()).count(phrase) == 1
    assert not hasattr(spec.QueueDeclare.FIELDS[0], "doc")
