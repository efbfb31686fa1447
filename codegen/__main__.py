"""``python -m codegen``: generate (or check) generated/ from spec/.

Usage::

    python -m codegen                 # write generated/
    python -m codegen --check         # exit 1 and show a diff if stale
    python -m codegen --spec BASE.xml --overlay X.xml --out DIR

Without ``--overlay``, every ``*.xml`` in the base spec's directory other
than the base itself is merged over it, in file-name order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codegen.loader import load
from codegen.model import SpecError
from codegen.render import check, write

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m codegen", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--spec", type=Path, default=ROOT / "spec" / "amqp0-9-1.extended.xml"
    )
    parser.add_argument(
        "--overlay", type=Path, action="append", help="overlay XML (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "generated")
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if --out is stale"
    )
    args = parser.parse_args(argv)
    overlays = args.overlay
    if overlays is None:
        overlays = sorted(p for p in args.spec.parent.glob("*.xml") if p != args.spec)
    try:
        spec = load(args.spec, tuple(overlays))
        if args.check:
            diff = check(spec, args.out)
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
        written = write(spec, args.out)
    except SpecError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stderr.write(f"generated {len(written)} files in {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
