"""Run mypy --strict over amqp_client (with amqp_client.spec), codegen and tests.

generated/ is installed as ``amqp_client.spec`` through setuptools'
package-dir mapping, which mypy cannot follow (it does not run import
hooks). This script lays out the installed shape under build/typecheck with
symlinks (``amqp_client/spec`` -> ``generated``, plus ``codegen`` and
``tests``) and runs mypy there with ``-p amqp_client -p codegen -p tests``,
so the runtime, the generator, the generated code and the test suite are
checked as one program.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    tree = ROOT / "build" / "typecheck"
    shutil.rmtree(tree, ignore_errors=True)
    package = tree / "amqp_client"
    package.mkdir(parents=True)
    for entry in (ROOT / "amqp_client").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    (package / "spec").symlink_to(ROOT / "generated", target_is_directory=True)
    (tree / "codegen").symlink_to(ROOT / "codegen", target_is_directory=True)
    (tree / "tests").symlink_to(ROOT / "tests", target_is_directory=True)
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "-p",
        "amqp_client",
        "-p",
        "codegen",
        "-p",
        "tests",
        *sys.argv[1:],
    ]
    return subprocess.call(command, cwd=tree, env={**os.environ, "MYPYPATH": str(tree)})


if __name__ == "__main__":
    sys.exit(main())
