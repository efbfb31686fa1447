"""The release artefacts: the sdist and the wheel hold what they must, build
without a warning about this project's configuration, and amqp_client.spec
is importable from the wheel in a fresh venv.

Both are built once for the module, the way ``python -m build`` makes a
release: the sdist from the source tree, then the wheel from the sdist. So
the wheel test also proves the sdist is complete, and no stale file under
the tree's ``build/`` directory can slip into the wheel.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.codegen.conftest import ROOT

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path
    #: stdout and stderr of the build, one line each.
    output: list[str]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    dist = tmp_path_factory.mktemp("dist")
    # The build backend (setuptools, wheel) and ``build`` come from the dev
    # extra, so the build works offline.
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "-o", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = dist.glob("amqp_client-*.tar.gz")
    (wheel,) = dist.glob("amqp_client-*.whl")
    return Built(sdist, wheel, (result.stdout + result.stderr).splitlines())


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def sdist_names(sdist: Path) -> set[str]:
    """The sdist's files, without the ``amqp_client-0.1.0/`` top folder."""
    with tarfile.open(sdist) as archive:
        return {m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name}


def tree(folder: str, pattern: str) -> set[str]:
    """Files of the source tree under ``folder``, relative to it."""
    base = ROOT / folder
    return {p.relative_to(base).as_posix() for p in base.glob(pattern)}


@pytest.mark.timeout(600)
def test_wheel_contents(built: Built) -> None:
    names = wheel_names(built.wheel)
    # generated/ is the package amqp_client.spec; every module of it.
    generated = tree("generated", "**/*.py")
    assert len(generated) > 5
    assert {f"amqp_client/spec/{n}" for n in generated} <= names
    assert "amqp_client/py.typed" in names
    assert "amqp_client/spec/py.typed" in names
    assert "amqp_client/_speedups.pyi" in names
    # The runtime's modules, the session layer's included, and no others
    # (a module deleted from the tree must not come back from a stale build/).
    runtime = {
        n
        for n in names
        if n.startswith("amqp_client/")
        and n.endswith(".py")
        and not n.startswith("amqp_client/spec/")
    }
    assert runtime == {f"amqp_client/{n}" for n in tree("amqp_client", "**/*.py")}
    session = tree("amqp_client/session", "*.py")
    assert {"__init__.py", "channel.py", "router.py"} <= session
    assert {f"amqp_client/session/{n}" for n in session} <= names
    # The compiled speedups (optional at install, but built here).
    assert any(re.fullmatch(r"amqp_client/_speedups\..*\.so", n) for n in names)
    assert not any(n.startswith(("codegen/", "generated/", "tests/")) for n in names)
    with zipfile.ZipFile(built.wheel) as archive:
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
    assert "\nLicense-Expression: MIT\n" in text


@pytest.mark.timeout(600)
def test_sdist_contents(built: Built) -> None:
    names = sdist_names(built.sdist)
    assert "amqp_client/_speedups.c" in names
    assert "setup.py" in names
    assert "pyproject.toml" in names
    # The generator's input (so a source release can be regenerated and its
    # provenance checked) and its output.
    xml = tree("spec", "*.xml")
    assert {"amqp0-9-1.extended.xml", "rabbitmq-extensions.xml"} <= xml
    assert {f"spec/{n}" for n in xml} <= names
    assert {f"generated/{n}" for n in tree("generated", "**/*.py")} <= names
    assert "generated/py.typed" in names
    # The header _speedups.c includes, so the sdist builds its extension.
    assert "generated/spec.h" in names
    assert {
        f"amqp_client/session/{n}" for n in tree("amqp_client/session", "*.py")
    } <= names
    with tarfile.open(built.sdist) as archive:
        (pkg_info,) = (
            m
            for m in archive.getmembers()
            if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")
        )
        member = archive.extractfile(pkg_info)
        assert member is not None
        text = member.read().decode()
    assert "\nLicense-Expression: MIT\n" in text


#: Warnings in the build output that are the environment's, not ours.
NOT_OURS = (
    # PYTHONDONTWRITEBYTECODE in the environment (the test runner's).
    re.compile(r"warning: (build_py|install_lib): byte-compiling is disabled"),
)


@pytest.mark.timeout(600)
def test_the_build_warns_about_nothing_of_ours(built: Built) -> None:
    """No warning or deprecation from setuptools about pyproject.toml,
    setup.py or the licence (``project.license`` as a table is deprecated
    since setuptools 77), nor from compiling the C speedups."""
    flagged = [
        line
        for line in built.output
        if re.search(r"warn|deprecat", line, re.IGNORECASE)
        and not any(p.search(line) for p in NOT_OURS)
    ]
    assert flagged == []
    assert not any("project.license" in line for line in built.output)


@pytest.mark.timeout(600)
def test_wheel_installs_and_imports_spec(built: Built, tmp_path: Path) -> None:
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
            str(built.wheel),
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
