"""The demo target: horde's bundled HTTP server (written in Rust, in the engine) for examples,
tests and benchmarks, plus a short load test against it.

    horde-demo serve --port 8080 [--tls]     # serve until Ctrl-C
    horde-demo load -u 50 -t 10              # start one in-process and load it
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from horde._core import DemoServer

__all__ = ["DemoServer", "main"]


def _serve(args: argparse.Namespace) -> int:
    try:
        server = DemoServer(host=args.host, port=args.port, tls=args.tls, threads=args.threads)
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


def _load(args: argparse.Namespace) -> int:
    import gevent

    from horde.clients import HttpSession
    from horde.stats import RequestStats

    server = None
    host = args.host_url
    if host is None:
        server = DemoServer(threads=args.threads)
        host = server.url
    stats = RequestStats()
    deadline = time.monotonic() + args.run_time
    paths = ["/", "/json", "/api/articles?limit=5"]

    def user(i: int) -> None:
        client = HttpSession(base_url=host, stats=stats)
        n = i
        while time.monotonic() < deadline:
            client.get(paths[n % len(paths)])
            n += 1

    print(f"Loading {host} with {args.users} users for {args.run_time:g}s...", flush=True)
    gevent.joinall([gevent.spawn(user, i) for i in range(args.users)])
    entries, total, errors, start = stats.snapshot()
    _print_table(entries, total)
    for method, name, error, occurrences, _, _ in errors:
        print(f"{occurrences:>8}  {method} {name}: {error}")
    if server is not None:
        server.stop()
    return 1 if total.num_failures else 0


def _print_table(entries: list, total: object) -> None:
    header = f"{'Type':<8} {'Name':<28} {'# reqs':>8} {'# fails':>8} {'Avg':>7} {'Min':>7} {'Max':>7} " \
        f"{'p50':>7} {'p95':>7} {'p99':>7} {'req/s':>9}"
    print(header)
    print("-" * len(header))
    for e in [*entries, total]:
        if e is total:
            print("-" * len(header))
        print(
            f"{e.method:<8} {e.name[:28]:<28} {e.num_requests:>8} {e.num_failures:>8} "
            f"{e.avg_response_time:>7.2f} {(e.min_response_time or 0):>7.2f} {e.max_response_time:>7.2f} "
            f"{e.get_response_time_percentile(0.5):>7.2f} {e.get_response_time_percentile(0.95):>7.2f} "
            f"{e.get_response_time_percentile(0.99):>7.2f} {e.total_rps:>9.1f}"
        )
    print("(times in ms)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="horde-demo", description="horde's bundled demo target")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve the demo target until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080, 0 = any free port)")
    serve.add_argument("--tls", action="store_true", help="serve HTTPS with a fresh self-signed certificate")
    serve.add_argument("--cert-out", help="write the self-signed certificate (PEM) here")
    serve.add_argument("--threads", type=int, default=1, help="server threads (default 1)")
    load = sub.add_parser("load", help="run a short load test against an in-process demo target")
    load.add_argument("-u", "--users", type=int, default=20, help="concurrent users (default 20)")
    load.add_argument("-t", "--run-time", type=float, default=5.0, help="seconds to run (default 5)")
    load.add_argument("-H", "--host", dest="host_url", help="load this base URL instead of a fresh demo target")
    load.add_argument("--threads", type=int, default=1, help="demo target threads (default 1)")
    args = parser.parse_args(argv)
    if args.command == "load":
        if args.users < 1 or args.run_time <= 0:
            parser.error("--users must be at least 1 and --run-time positive")
        return _load(args)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv if argv is not None else sys.argv[1:])])
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
