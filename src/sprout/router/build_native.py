"""`python -m sprout.router.build_native [build|status]`: compile the router's hot path, or say what runs."""

from __future__ import annotations

import sys

from sprout.router.native import build, state


def main(argv: list[str]) -> int:
    """`python -m sprout.router.build_native build|status`."""
    if argv == ["status"]:
        print(state())
        return 0
    if argv not in ([], ["build"]):
        print("usage: python -m sprout.router.build_native build|status", file=sys.stderr)
        return 2
    try:
        where = build()
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error
        print(f"router hot path: not compiled ({type(exc).__name__}: {exc}); the router runs as pure Python",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"router hot path: compiled in {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
