"""The demo target: horde's bundled HTTP server (written in Rust, in the engine) for examples,
tests and benchmarks.

    horde-demo serve --port 8080 [--tls]     # serve until Ctrl-C or SIGTERM

``horde -f locustfile.py --demo-target`` starts one in-process instead; ``DemoServer()`` does from
Python.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from horde._core import DemoServer

__all__ = ["DemoServer", "main"]


def _serve(args: argparse.Namespace) -> int:
    try:
        server = DemoServer(host=args.host, port=args.port, tls=args.tls, threads=args.threads, stall=args.stall)
    except OSError as e:
        print(f"horde-demo: {e}", file=sys.stderr)
        return 1
    if args.cert_out and server.cert_pem:
        with open(args.cert_out, "w") as f:
            f.write(server.cert_pem)
    print(f"horde demo target listening on {server.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


def _stall(text: str) -> tuple[float, float]:
    """``FREEZE/PERIOD`` seconds as DemoServer's ``stall=(period, freeze)``."""
    try:
        freeze, period = (float(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FREEZE/PERIOD seconds such as 1/5, not {text!r}") from None
    if not 0 <= freeze < period:
        raise argparse.ArgumentTypeError(f"need 0 <= FREEZE < PERIOD, not {text!r}")
    return period, freeze


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="horde-demo", description="horde's bundled demo target")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve the demo target until interrupted")
    for p in (parser, serve):
        p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
        p.add_argument("--port", type=int, default=8080, help="port (default 8080, 0 = any free port)")
        p.add_argument("--tls", action="store_true", help="serve HTTPS with a fresh self-signed certificate")
        p.add_argument("--cert-out", help="write the self-signed certificate (PEM) here")
        p.add_argument("--threads", type=int, default=1, help="server threads (default 1)")
        p.add_argument(
            "--stall",
            type=_stall,
            metavar="FREEZE/PERIOD",
            help="hold every response for FREEZE seconds once every PERIOD seconds, e.g. 1/5 (a stalling "
            "server, to see coordinated omission)",
        )
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
