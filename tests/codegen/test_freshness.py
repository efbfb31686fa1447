"""`python -m codegen --check`: clean on the committed tree, failing (and
naming the stale files) after a change to an overlay or a template."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.codegen.conftest import ROOT


def run_check(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codegen", "--check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_committed_generated_tree_is_fresh() -> None:
    result = run_check()
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_fails_after_an_overlay_change(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    shutil.copytree(ROOT / "spec", spec)
    overlay = spec / "rabbitmq-extensions.xml"
    text = overlay.read_text()
    overlay.write_text(
        text.replace(
            "</amqp>",
            '<class name="tx"><method name="peek" index="90">'
            '<chassis name="server" implement="MUST"/></method></class>\n</amqp>',
        )
    )
    result = run_check(
        "--spec", str(spec / "amqp0-9-1.extended.xml"), "--out", str(ROOT / "generated")
    )
    assert result.returncode == 1
    assert "generated code is stale" in result.stderr
    assert "methods/tx.py" in result.stderr
    assert "api.py" in result.stderr
    assert "+class TxPeek(Method):" in result.stdout


def test_check_fails_after_a_template_change(tmp_path: Path) -> None:
    # A copy of the generator with one template edited, run against the
    # committed generated/ tree.
    shutil.copytree(
        ROOT / "codegen",
        tmp_path / "codegen",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    template = tmp_path / "codegen" / "templates" / "constants.py.j2"
    template.write_text(
        template.read_text().replace(
            "class ReplyCode(IntEnum):", "class ReplyCode(IntEnum):  # edited"
        )
    )
    result = run_check(
        "--spec",
        str(ROOT / "spec" / "amqp0-9-1.extended.xml"),
        "--out",
        str(ROOT / "generated"),
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "constants.py" in result.stderr
    assert "# edited" in result.stdout


def test_check_reports_an_extra_file(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    shutil.copytree(
        ROOT / "generated", out, ignore=shutil.ignore_patterns("__pycache__")
    )
    (out / "leftover.py").write_text("x = 1\n")
    result = run_check("--out", str(out))
    assert result.returncode == 1
    assert "leftover.py is not generated any more" in result.stdout


def test_generate_writes_a_tree_identical_to_the_committed_one(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "codegen", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for path in sorted((ROOT / "generated").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(ROOT / "generated")
            assert (out / rel).read_bytes() == path.read_bytes(), rel


def test_spec_error_exits_2_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text(
        '<?xml version="1.0"?>\n<amqp>\n<class name="x" index="1" bogus="1"/>\n</amqp>\n'
    )
    result = run_check(
        "--spec", str(bad), "--overlay", str(bad), "--out", str(tmp_path / "o")
    )
    assert result.returncode == 2
    assert "bad.xml:3: unknown attribute 'bogus'" in result.stderr
