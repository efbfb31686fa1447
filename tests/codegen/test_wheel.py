"""amqp_client.spec is importable from a built wheel in a fresh venv."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.codegen.conftest import ROOT


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_wheel_installs_and_imports_spec(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    # The build backend (setuptools, wheel) comes from the dev extra, so the
    # build works offline.
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = dist.glob("amqp_client-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    probe = (
        "import amqp_client, amqp_client.spec as s, sys;"
        "assert 'site-packages' in s.__file__, s.__file__;"
        "assert len(s.METHODS) == 64;"
        "m = s.QueueDeclare('q', durable=True);"
        "assert s.QueueDeclare.decode(m.encode()) == m;"
        "assert amqp_client.NotFoundError.REPLY_CODE == 404;"
        # The wheel carries the compiled speedups, and wire uses them.
        "from amqp_client import wire, _speedups;"
        "assert wire._c_decode_table is _speedups.decode_table;"
        "assert wire.decode_table(wire.encode_table({'a': 1}), 0)[0] == {'a': 1};"
        "import lxml"
    )
    result = subprocess.run(
        [str(python), "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # The runtime must not need the codegen extra: lxml is absent in the venv.
    assert "No module named 'lxml'" in result.stderr, result.stderr
    assert "AssertionError" not in result.stderr
    result = subprocess.run(
        [str(python), "-m", "amqp_client", "doc", "basic.publish"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "basic.publish (60/40)" in result.stdout
    with zipfile_names(wheel) as names:
        assert "amqp_client/spec/py.typed" in names
        assert "amqp_client/py.typed" in names
        assert not any(
            n.startswith(("codegen/", "generated/", "tests/")) for n in names
        )


class zipfile_names:
    def __init__(self, path: Path) -> None:
        import zipfile

        self._zip = zipfile.ZipFile(path)

    def __enter__(self) -> set[str]:
        return set(self._zip.namelist())

    def __exit__(self, *exc: object) -> None:
        self._zip.close()
