#!/usr/bin/env python3
"""What exporting metrics costs the load: workload a) plain, with --otel, and scraped by Prometheus.

    python benches/metrics_overhead.py [--duration 10] [--rounds 5] [--users 50] [--horde-core 1]
                                       [--otel-interval-ms 1000] [--keep]

Workload a) of vs_locust.py (FastHttpUser, GET /, constant(0), 50 users, closed model) runs against
horde's demo target, horde pinned to --horde-core and the target on the other core, in three modes:

  plain       --headless
  otel        --headless --otel, every exporter (metrics, traces, logs) over OTLP/HTTP to a receiver
              in this script (on the target's core) that reads each export and answers 200, the
              metrics every --otel-interval-ms (Locust's default is 60 s; 1 s is the worst case a
              collector is usually set to). FastHttpUser requests have no spans, as in Locust.
  prometheus  --headless --prometheus-port, scraped every second by this script

Each round runs the three modes in a rotated order. Per run, over the steady window from --settle
seconds after the start to one second before -t (so that the start-up, e.g. importing the
OpenTelemetry SDK, and the shutdown are left out): the requests/s (from the --csv history) and the
horde process's CPU time per request (/proc/PID/stat, all its threads); also the whole run's CPU per
request (os.wait4), start-up included. Per round, each mode relative to plain; at the end, the
medians. The machine is shared: the CPU per request is steadier than the rate.

    python benches/metrics_overhead.py --instructions [--every 2000] [--small 2000] [--large 12000]

counts instead the userspace instructions per request of each mode with valgrind's callgrind (as
instructions_per_request.py does: two runs of --small and --large requests, the difference divided
by the difference of requests), which repeat whatever else the machine does. The same users run
from the library; otel exports (to the receiver here) and prometheus renders /metrics once every
--every requests, counted, in place of once a second (at 2,000 requests per export, a second's
worth at 2,000 req/s; at the tens of thousands of req/s of workload a) they come that much rarer).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_locust as vs  # noqa: E402  (its workload a), process and CSV helpers)

MODES = ("plain", "otel", "prometheus")
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of every thread of process ``pid`` so far; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    # After the command's name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


class OtlpSink:
    """An OTLP/HTTP endpoint that reads every export whole and answers 200, counting them."""

    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.exports += 1
                sink.bytes += len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def scrape_every_second(url: str, stop: threading.Event, counts: dict[str, int]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                response.read()
            counts["scrapes"] += 1
        except OSError:
            counts["failed"] += 1  # not listening yet, or gone
        stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))


def start_demo(workdir: Path, port: int, core: int) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "horde-demo"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys, horde.demo; sys.exit(horde.demo.main())"]
    with (workdir / "demo.log").open("wb") as out:
        proc = vs.spawn(
            ["taskset", "-c", str(core), *cmd, "serve", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    vs.wait_listening(port, proc, "the demo target")
    return proc


def run(
    mode: str, args: argparse.Namespace, workdir: Path, locustfile: Path, host: str, sink: OtlpSink, n: int
) -> dict:
    prefix = workdir / f"{mode}-{n}"
    cmd = ["taskset", "-c", str(args.horde_core), *vs.horde_command(), "-f", str(locustfile), "-H", host]
    cmd += ["--headless", "-u", str(args.users), "-r", str(args.users), "-t", f"{args.duration}s"]
    cmd += ["--csv", str(prefix), "--only-summary"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "HORDE_", "OTEL_"))}
    port = vs.free_port()
    if mode == "otel":
        cmd += ["--otel"]
        env.update(
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_ENDPOINT=sink.url,
            OTEL_METRIC_EXPORT_INTERVAL=str(args.otel_interval_ms),
        )
    elif mode == "prometheus":
        cmd += ["--prometheus-port", str(port)]
    counts = {"scrapes": 0, "failed": 0}
    exports_before = sink.exports
    stop = threading.Event()
    scraper = None
    with (workdir / f"{mode}-{n}.log").open("wb") as out:
        proc = vs.spawn(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if mode == "prometheus":
        scraper = threading.Thread(
            target=scrape_every_second, args=(f"http://127.0.0.1:{port}/metrics", stop, counts), daemon=True
        )
        scraper.start()
    started = time.time()
    window = (started + args.settle, started + args.duration - 1.0)
    marks: list[tuple[float, float]] = []  # (time, horde's CPU seconds) at the window's two ends
    try:
        deadline = time.monotonic() + args.duration + 90
        while True:
            # taskset execs horde: this pid is horde's, and wait4 gives its own CPU time.
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if len(marks) < 2 and time.time() >= window[len(marks)]:
                cpu = cpu_seconds(proc.pid)
                if cpu is not None:
                    marks.append((time.time(), cpu))
            if time.monotonic() > deadline:
                vs.end(proc)
                raise SystemExit(f"{mode} run did not end; see {workdir / f'{mode}-{n}.log'}")
            time.sleep(0.02)
    finally:
        stop.set()
        if scraper is not None:
            scraper.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    vs._children.remove(proc)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run exited with {proc.returncode}; see {workdir / f'{mode}-{n}.log'}")
    if len(marks) < 2:
        raise SystemExit(f"{mode} run ended before its steady window did; see {workdir / f'{mode}-{n}.log'}")
    (t0, cpu0), (t1, cpu1) = marks
    history = vs.read_history(prefix)
    in_window = vs.count_at(history, t1) - vs.count_at(history, t0)
    requests = int(vs.read_aggregated(prefix)["Request Count"])
    return {
        "rps": in_window / (t1 - t0),
        "cpu_us": 1e6 * (cpu1 - cpu0) / max(in_window, 1),
        "run_cpu_us": 1e6 * (usage.ru_utime + usage.ru_stime) / max(requests, 1),
        "scrapes": counts["scrapes"],
        "exports": sink.exports - exports_before,
    }


def measured_program(mode: str, host: str, users: int, requests: int, every: int) -> None:
    """Under callgrind: ``users`` users of workload a) until ``requests`` requests are done, with
    the exporter of ``mode`` run every ``every`` requests."""
    import gevent
    import gevent.event

    from horde import FastHttpUser, constant, task
    from horde.env import Environment

    done = [0]
    finished = gevent.event.Event()
    export = None

    class Hello(FastHttpUser):
        wait_time = constant(0)

        @task
        def index(self) -> None:
            self.client.get("/")
            done[0] += 1
            if export is not None and done[0] % every == 0:
                export()
            if done[0] >= requests:
                finished.set()

    Hello.host = host
    environment = Environment(user_classes=[Hello])
    runner = environment.create_local_runner()
    if mode == "otel":
        from horde.otel import setup_opentelemetry

        telemetry = setup_opentelemetry("workload_a.py", None)
        assert telemetry is not None
        telemetry.watch(runner)

        def export() -> None:
            telemetry.export(5.0)

    elif mode == "prometheus":
        from horde.prometheus import Exposition

        exposition = Exposition(environment)

        def export() -> None:
            exposition.render()

    running = [gevent.spawn(Hello(environment).run) for _ in range(users)]
    finished.wait()
    gevent.killall(running)
    if mode == "otel":
        telemetry.shutdown()


def count_instructions(mode: str, host: str, sink: OtlpSink, args: argparse.Namespace, requests: int) -> int:
    """Userspace instructions of one measured run, whole process."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={os.path.join(tmp, 'callgrind.out')}"]
        cmd += [sys.executable, __file__, "--measured", mode, "--host", host, "--users", str(args.users)]
        cmd += ["--requests", str(requests), "--every", str(args.every)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "HORDE_", "OTEL_"))}
        # The engine on the Python thread, as on one core; the periodic export is ours to call.
        env.update(
            HORDE_RUNTIME_THREADS="0",
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_ENDPOINT=sink.url,
            OTEL_METRIC_EXPORT_INTERVAL=str(10**9),
        )
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"the {mode} run under valgrind failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def instructions(args: argparse.Namespace) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if args.large <= args.small:
        raise SystemExit("--large must be more requests than --small")
    workdir = Path(tempfile.mkdtemp(prefix="horde-metrics-bench-"))
    sink = OtlpSink()
    per_request = {}
    try:
        port = vs.free_port()
        start_demo(workdir, port, sorted(os.sched_getaffinity(0))[-1])
        host = f"http://127.0.0.1:{port}"
        for mode in args.modes:
            small = count_instructions(mode, host, sink, args, args.small)
            large = count_instructions(mode, host, sink, args, args.large)
            per_request[mode] = (large - small) / (args.large - args.small)
            extra = ""
            if "plain" in per_request and mode != "plain":
                extra = f" ({per_request[mode] / per_request['plain']:.4f}× plain)"
            print(f"{mode:10}: {per_request[mode]:9,.0f} userspace instructions per request{extra}", flush=True)
    finally:
        vs.end_all()
        sink.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"{args.users} FastHttpUsers, GET /, one core; otel exported and prometheus rendered once every "
        f"{args.every} requests; {sink.exports} OTLP exports received"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds after the start before the window opens")
    parser.add_argument("--users", type=int, default=vs.SMALL_USERS)
    parser.add_argument("--horde-core", type=int, default=1, help="the core horde runs on; the target gets another")
    parser.add_argument(
        "--otel-interval-ms", type=int, default=1000, help="OTEL_METRIC_EXPORT_INTERVAL of the otel runs"
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, CSV)")
    parser.add_argument("--instructions", action="store_true", help="count instructions with callgrind instead")
    parser.add_argument("--every", type=int, default=2000, help="--instructions: requests per export or scrape")
    parser.add_argument("--small", type=int, default=2000, help="--instructions: requests in the short run")
    parser.add_argument("--large", type=int, default=12000, help="--instructions: requests in the long run")
    parser.add_argument(
        "--modes", type=lambda text: text.split(","), default=list(MODES), help="--instructions: modes to count"
    )
    parser.add_argument("--measured", choices=MODES, help=argparse.SUPPRESS)  # internal: the measured program
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measured is not None:
        measured_program(args.measured, args.host, args.users, args.requests, args.every)
        return
    if args.instructions:
        instructions(args)
        return
    if args.duration - 1.0 - args.settle < 3:
        raise SystemExit("--duration must leave a steady window of 3 s or more after --settle")
    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is needed to pin the processes to cores")
    cores = sorted(os.sched_getaffinity(0))
    others = [c for c in cores if c != args.horde_core]
    if args.horde_core not in cores or not others:
        raise SystemExit(f"two cores are needed: horde on core {args.horde_core} and the target on another")
    try:
        import horde.otel  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"--otel needs the OpenTelemetry SDK: pip install -e '.[otel]' ({e})") from None
    signal.signal(signal.SIGTERM, vs._interrupt)
    signal.signal(signal.SIGINT, vs._interrupt)

    # This script (the OTLP receiver, the scraper) shares the target's core, away from horde.
    target_core = others[0]
    os.sched_setaffinity(0, {target_core})
    workdir = Path(tempfile.mkdtemp(prefix="horde-metrics-bench-"))
    locustfile = workdir / "workload_a.py"
    locustfile.write_text(vs.LOCUSTFILES["fast"])
    sink = OtlpSink()
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    try:
        port = vs.free_port()
        start_demo(workdir, port, target_core)
        host = f"http://127.0.0.1:{port}"
        print(
            f"workload a): {args.users} FastHttpUsers, constant(0), demo target on core {target_core}, horde on core "
            f"{args.horde_core}, {args.duration} s runs; otel exports every {args.otel_interval_ms} ms",
            flush=True,
        )
        for n in range(args.rounds):
            order = MODES[n % 3 :] + MODES[: n % 3]
            for mode in order:
                results[mode].append(run(mode, args, workdir, locustfile, host, sink, n))
            plain = results["plain"][-1]
            parts = []
            for mode in MODES:
                r = results[mode][-1]
                extra = {"otel": f", {r['exports']} exports", "prometheus": f", {r['scrapes']} scrapes"}.get(mode, "")
                ratio = "" if mode == "plain" else f" ({r['rps'] / plain['rps']:.3f}× rate, "
                ratio += "" if mode == "plain" else f"{r['cpu_us'] / plain['cpu_us']:.3f}× CPU/req)"
                parts.append(
                    f"{mode} {r['rps']:,.0f} req/s {r['cpu_us']:.2f} µs/req (run {r['run_cpu_us']:.2f}){ratio}{extra}"
                )
            print(f"round {n + 1} [{' → '.join(order)}]: " + "; ".join(parts), flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        vs.end_all()
        sink.close()
        if args.keep:
            print(f"logs and CSV files in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    rounds = len(results["prometheus"])
    if not rounds:
        return
    print()
    plain = results["plain"][:rounds]
    print(f"medians of {rounds} rounds:")
    for mode in MODES:
        runs = results[mode][:rounds]
        line = (
            f"  {mode:10}: {statistics.median(r['rps'] for r in runs):10,.0f} req/s, "
            f"{statistics.median(r['cpu_us'] for r in runs):.2f} µs CPU/request "
            f"(whole run, start-up included: {statistics.median(r['run_cpu_us'] for r in runs):.2f})"
        )
        if mode != "plain":
            rate = [r["rps"] / p["rps"] for r, p in zip(runs, plain)]
            cpu = [r["cpu_us"] / p["cpu_us"] for r, p in zip(runs, plain)]
            line += (
                f"; vs plain per round: rate {statistics.median(rate):.3f}× (median; "
                + ", ".join(f"{x:.3f}" for x in rate)
                + f"), CPU/request {statistics.median(cpu):.3f}× ("
                + ", ".join(f"{x:.3f}" for x in cpu)
                + ")"
            )
        print(line)


if __name__ == "__main__":
    main()
