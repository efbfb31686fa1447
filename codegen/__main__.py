"""``python -m codegen``: generate (or check) generated/ and docs/reference.md.

Usage::

    python -m codegen                 # write generated/ and docs/reference.md
    python -m codegen --check         # exit 1 and show a diff if either is stale
    python -m codegen --root DIR      # the same for another checkout (or a copy)
    python -m codegen --spec BASE.xml --overlay X.xml --out DIR [--reference FILE]

The outputs belong to a checkout (``--root``, by default the one holding
this package): it reads ``ROOT/spec/amqp0-9-1.extended.xml`` and writes the
package tree ``ROOT/generated`` and the Markdown reference
``ROOT/docs/reference.md``. ``--out`` and ``--reference`` move either one;
an ``--out`` given without ``--root`` or ``--reference`` means a package
tree elsewhere and nothing else, so a scratch build never rewrites the
checkout's reference.

Without ``--overlay``, every ``*.xml`` in the base spec's directory other
than the base itself is merged over it, in file-name order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codegen.loader import load
from codegen.model import SpecError
from codegen.reference import PATH as REFERENCE_PATH
from codegen.render import check, write

ROOT = Path(__file__).resolve().parent.parent
BASE_SPEC = Path("spec") / "amqp0-9-1.extended.xml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m codegen", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--root",
        type=Path,
        help="the checkout whose spec/ is read and whose generated/ and "
        f"{REFERENCE_PATH} are written (default: {ROOT})",
    )
    parser.add_argument("--spec", type=Path, help=f"default: ROOT/{BASE_SPEC}")
    parser.add_argument(
        "--overlay", type=Path, action="append", help="overlay XML (repeatable)"
    )
    parser.add_argument("--out", type=Path, help="default: ROOT/generated")
    parser.add_argument(
        "--reference",
        type=Path,
        help=f"the Markdown reference (default: ROOT/{REFERENCE_PATH}; none when "
        "only --out is given)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if an output is stale",
    )
    args = parser.parse_args(argv)
    root: Path = args.root if args.root is not None else ROOT
    spec_path: Path = args.spec if args.spec is not None else root / BASE_SPEC
    out: Path = args.out if args.out is not None else root / "generated"
    reference: Path | None = args.reference
    if reference is None and (args.out is None or args.root is not None):
        reference = root / REFERENCE_PATH
    overlays = args.overlay
    if overlays is None:
        overlays = sorted(p for p in spec_path.parent.glob("*.xml") if p != spec_path)
    try:
        spec = load(spec_path, tuple(overlays))
        if args.check:
            diff = check(spec, out, reference)
            if diff:
                sys.stdout.writelines(diff)
                stale = [
                    line[len("stale: ") :].strip()
                    for line in diff
                    if line.startswith("stale: ")
                ]
                sys.stderr.write(
                    f"generated code is stale ({len(stale)} file(s)): "
                    f"{', '.join(stale)}\nrun `make generate` and commit the result\n"
                )
                return 1
            return 0
        written = write(spec, out, reference)
    except SpecError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stderr.write(f"generated {len(written)} files in {out}\n")
    if reference is not None:
        sys.stderr.write(f"wrote the reference {reference}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
