"""The ``horde`` command. Locust's command line (``horde -f locustfile.py ...``) is built on top
of this entry point; for now it reports the version and runs the demo target's commands."""

from __future__ import annotations

import sys

from horde import __version__


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-V", "--version"):
        print(f"horde {__version__}")
        return 0
    if args and args[0] == "demo":
        from horde.demo import main as demo_main

        return demo_main(args[1:])
    print(
        "usage: horde --version | horde demo {serve,load} ...\n"
        "Running locustfiles (horde -f locustfile.py) is not available in this version yet.",
        file=sys.stderr,
    )
    return 0 if args in ([], ["-h"], ["--help"]) else 2


if __name__ == "__main__":
    sys.exit(main())
