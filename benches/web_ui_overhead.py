#!/usr/bin/env python3
"""What an open web UI costs the load: horde headless vs. horde with the UI being polled.

    python benches/web_ui_overhead.py [--duration 15] [--users 50] [--names 500] [--tabs 2] [--rounds 3]

The same locustfile (FastHttpUser, no think time, each request under one of --names distinct names,
so the statistics table has that many rows) runs pinned to core 0 against horde's demo target on
core 1, first with --headless, then with --autostart and the web UI while --tabs pollers (also on
core 1, standing in for open browser tabs) each fetch /stats/requests and /stats/history every
second, as the page does. Rounds alternate the two modes; the medians of requests/s (the run's
Aggregated "Requests/s" from --csv), of the horde process's CPU time per request, and their ratios
are printed. On a shared machine the CPU time per request varies less than the rate.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

LOCUSTFILE = """
import random

from locust import FastHttpUser, constant, task

NAMES = [f"/item/{{i}}" for i in range({names})]


class Many(FastHttpUser):
    wait_time = constant(0)

    @task
    def one_of_many(self):
        self.client.get("/", name=random.choice(NAMES))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} is not listening on port {port} after {timeout} s")


def command(name: str, module: str) -> list[str]:
    exe = Path(sys.executable).parent / name
    return [str(exe)] if exe.exists() else [sys.executable, "-m", module]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def aggregated_rps(prefix: Path) -> tuple[float, int]:
    with open(f"{prefix}_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                return float(row["Requests/s"]), int(row["Request Count"])
    raise SystemExit(f"no Aggregated row in {prefix}_stats.csv")


def poll_tab(base: str, stop_event: threading.Event, counts: dict[str, int]) -> None:
    """One open page: /stats/requests and /stats/history?since= every second."""
    since = None
    while not stop_event.is_set():
        started = time.monotonic()
        try:
            with urllib.request.urlopen(base + "/stats/requests", timeout=5) as r:
                r.read()
            query = f"?since={since}" if since is not None else ""
            with urllib.request.urlopen(base + "/stats/history" + query, timeout=5) as r:
                points = json.loads(r.read())["history"]
            if points:
                since = points[-1]["time"]
            counts["polls"] += 1
        except OSError:
            counts["errors"] += 1  # the process is starting or quitting
        stop_event.wait(max(0.0, 1.0 - (time.monotonic() - started)))


def run(mode: str, args: argparse.Namespace, workdir: Path, locustfile: Path, host: str, n: int) -> dict:
    prefix = workdir / f"{mode}-{n}"
    cmd = ["taskset", "-c", "0", *command("horde", "horde"), "-f", str(locustfile), "-H", host]
    cmd += ["-u", str(args.users), "-r", str(args.users), "-t", f"{args.duration}s", "--csv", str(prefix)]
    cmd += ["--only-summary"]
    port = free_port()
    if mode == "headless":
        cmd += ["--headless"]
    else:
        cmd += ["--autostart", "--autoquit", "0", "--web-port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    counts = {"polls": 0, "errors": 0}
    # CPU time of waited-for children: this run's horde process only (the target is still running).
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    stop_event = threading.Event()
    tabs: list[threading.Thread] = []
    with open(workdir / f"{mode}-{n}.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            if mode == "ui":
                wait_listening(port, proc, "horde's web UI")
                for _ in range(args.tabs):
                    tab = threading.Thread(
                        target=poll_tab, args=(f"http://127.0.0.1:{port}", stop_event, counts), daemon=True
                    )
                    tab.start()
                    tabs.append(tab)
            proc.wait(timeout=args.duration + 60)
        finally:
            stop_event.set()
            for tab in tabs:
                tab.join()
            stop(proc)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run exited with {proc.returncode}; see {workdir / f'{mode}-{n}.log'}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rps, count = aggregated_rps(prefix)
    return {"rps": rps, "requests": count, "cpu_us_per_request": 1e6 * cpu / max(count, 1), **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds per run")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--names", type=int, default=500, help="distinct request names (table rows)")
    parser.add_argument("--tabs", type=int, default=2, help="pollers standing in for open browser tabs")
    parser.add_argument("--rounds", type=int, default=3, help="headless/UI pairs; medians are reported")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, CSV)")
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is needed to pin the processes to cores")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("two cores are needed: horde on core 0, the target and the pollers on core 1")

    # The pollers (and this script) share core 1 with the target, away from the measured process.
    os.sched_setaffinity(0, {1})
    workdir = Path(tempfile.mkdtemp(prefix="horde-web-ui-bench-"))
    locustfile = workdir / "many_names.py"
    locustfile.write_text(LOCUSTFILE.format(names=args.names))
    target_port = free_port()
    with open(workdir / "demo.log", "wb") as out:
        target = subprocess.Popen(
            ["taskset", "-c", "1", *command("horde-demo", "horde.demo"), "serve", "--port", str(target_port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    results: dict[str, list[dict]] = {"headless": [], "ui": []}
    try:
        wait_listening(target_port, target, "the demo target")
        host = f"http://127.0.0.1:{target_port}"
        for n in range(args.rounds):
            for mode in ("headless", "ui") if n % 2 == 0 else ("ui", "headless"):
                result = run(mode, args, workdir, locustfile, host, n)
                results[mode].append(result)
                extra = f", {result['polls']} polls ({result['errors']} failed)" if mode == "ui" else ""
                print(
                    f"round {n + 1} {mode:8}: {result['rps']:10,.0f} req/s, "
                    f"{result['cpu_us_per_request']:.2f} µs CPU/request{extra}",
                    flush=True,
                )
    finally:
        stop(target)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs and CSV files in {workdir}")

    headless = statistics.median(r["rps"] for r in results["headless"])
    ui = statistics.median(r["rps"] for r in results["ui"])
    ratios = [u["rps"] / h["rps"] for h, u in zip(results["headless"], results["ui"])]
    print()
    print(
        f"{args.users} users, {args.names} names, {args.duration} s runs, {args.tabs} polling tabs, "
        f"{args.rounds} rounds"
    )
    cpu_headless = statistics.median(r["cpu_us_per_request"] for r in results["headless"])
    cpu_ui = statistics.median(r["cpu_us_per_request"] for r in results["ui"])
    print(f"headless          : {headless:10,.0f} req/s, {cpu_headless:.2f} µs CPU/request (medians)")
    print(f"web UI, polled    : {ui:10,.0f} req/s, {cpu_ui:.2f} µs CPU/request (medians)")
    print(f"CPU per request, UI / headless: {cpu_ui / cpu_headless:.3f} (steadier than the rates on a busy machine)")
    print(
        f"UI / headless     : {ui / headless:10.3f} (median of medians); per round: "
        + ", ".join(f"{r:.3f}" for r in ratios)
    )


if __name__ == "__main__":
    main()
