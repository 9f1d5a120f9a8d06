#!/usr/bin/env python3
"""Soak: does horde hold steady over a long run at full rate? (Not part of the test run.)

    python benches/soak.py [--minutes 30] [--users 20] [--interval 10] [--json soak.json]

horde runs headless pinned to core 1 (one core: the engine on the Python thread, the
configuration the benchmarks measure) against horde's demo target pinned to core 0, with no think
time, for --minutes. Every --interval seconds the horde process's resident memory (VmRSS in
/proc/PID/status), its open file descriptors (/proc/PID/fd) and its request rate (from the
Aggregated rows of its --csv stats history) are sampled. At the end: the RSS slope in KB/min (a
least-squares line through the samples after the first minute, which holds the warm-up), the fd
count at the start and end, and the rate over time. The target is no growth after the first
minute: a slope within a few KB/min is allocator noise; a leak of one object per request would
show as megabytes per minute at these rates.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOCUSTFILE = """
from locust import FastHttpUser, constant, task


class Soak(FastHttpUser):
    wait_time = constant(0)

    @task(8)
    def home(self):
        self.client.get("/")

    @task(4)
    def json(self):
        self.client.get("/json")

    @task(2)
    def payload(self):
        self.client.get("/bytes/4096", name="/bytes/[n]")

    @task(1)
    def failure(self):
        # Failures too: the errors table must stay one row, whatever the number of failures.
        self.client.get("/status/500")
"""

# Samples in the first minute hold the warm-up (allocator arenas, caches filling): left out of the fit.
WARM_UP_S = 60.0


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
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class HistoryTail:
    """The newest Aggregated row of a growing ``_stats_history.csv``: (timestamp, total requests)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.columns: list[str] | None = None
        self.partial = ""
        self.latest: tuple[int, int] | None = None

    def read(self) -> tuple[int, int] | None:
        try:
            with open(self.path, newline="") as f:
                f.seek(self.offset)
                chunk = f.read()
                self.offset = f.tell()
        except FileNotFoundError:
            return self.latest
        text = self.partial + chunk
        lines = text.split("\n")
        self.partial = lines.pop()  # a line the writer has not finished yet
        for row in csv.reader(lines):
            if not row:
                continue
            if self.columns is None:
                self.columns = row
                continue
            record = dict(zip(self.columns, row))
            if record.get("Name") == "Aggregated":
                self.latest = (int(record["Timestamp"]), int(record["Total Request Count"]))
        return self.latest


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of (seconds, value) pairs, per minute."""
    n = len(points)
    if n < 2:
        return float("nan")
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return 60.0 * cov / var if var else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run (5 for the short mode)")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--json", help="also write the samples and the summary to this file")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, CSV)")
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is needed to pin the processes to cores")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("two cores are needed: the target on core 0, horde on core 1")

    workdir = Path(tempfile.mkdtemp(prefix="horde-soak-"))
    locustfile = workdir / "soak_locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    prefix = workdir / "soak"
    target_port = free_port()
    run_seconds = round(args.minutes * 60)
    samples: list[dict[str, float | int | None]] = []
    target = horde = None
    try:
        with open(workdir / "demo.log", "wb") as out:
            target = subprocess.Popen(
                ["taskset", "-c", "0", *command("horde-demo", "horde.demo"), "serve", "--port", str(target_port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_listening(target_port, target, "the demo target")
        cmd = ["taskset", "-c", "1", *command("horde", "horde"), "-f", str(locustfile), "--headless"]
        cmd += ["-H", f"http://127.0.0.1:{target_port}", "-u", str(args.users), "-r", str(args.users)]
        cmd += ["-t", f"{run_seconds}s", "--csv", str(prefix), "--only-summary"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "HORDE_"))}
        with open(workdir / "horde.log", "wb") as log:
            # taskset execs horde: the pid is horde's own process.
            horde = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        history = HistoryTail(Path(f"{prefix}_stats_history.csv"))
        started = time.monotonic()
        previous: tuple[int, int] | None = None
        print(f"{'t (s)':>7} {'RSS (KB)':>10} {'fds':>5} {'req/s':>10}", flush=True)
        while horde.poll() is None:
            # Sleep to the next multiple of the interval, so samples do not drift; none at 0 s,
            # where the pid may still be taskset's.
            time.sleep(max(0.0, args.interval * (len(samples) + 1) - (time.monotonic() - started)))
            elapsed = time.monotonic() - started
            latest = history.read()
            rate = None
            if latest is not None and previous is not None and latest[0] > previous[0]:
                rate = (latest[1] - previous[1]) / (latest[0] - previous[0])
            if latest is not None:
                previous = latest
            sample = {"t": round(elapsed, 1), "rss_kb": rss_kb(horde.pid), "fds": fd_count(horde.pid), "rps": rate}
            if sample["rss_kb"] is None:
                break  # exiting
            samples.append(sample)
            rps = f"{rate:10,.0f}" if rate is not None else f"{'-':>10}"
            print(f"{elapsed:7.0f} {sample['rss_kb']:>10,} {sample['fds']:>5} {rps}", flush=True)
        horde.wait(timeout=run_seconds + 120)
        if horde.returncode not in (0, 1):  # 1: the failures the locustfile makes on purpose
            raise SystemExit(f"horde exited with {horde.returncode}; see {workdir / 'horde.log'}")
    finally:
        for proc in (horde, target):
            if proc is not None:
                stop(proc)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs and CSV files in {workdir}")

    steady = [s for s in samples if float(s["t"] or 0) >= WARM_UP_S]
    if len(steady) < 2:
        raise SystemExit(f"too few samples after the first minute ({len(steady)}): run longer")
    rss_slope = slope_per_minute([(float(s["t"] or 0), float(s["rss_kb"] or 0)) for s in steady])
    rates = [float(s["rps"]) for s in steady if s["rps"] is not None]
    summary = {
        "minutes": args.minutes,
        "users": args.users,
        "interval_s": args.interval,
        "rss_kb_after_first_minute": steady[0]["rss_kb"],
        "rss_kb_end": steady[-1]["rss_kb"],
        "rss_kb_max": max(int(s["rss_kb"] or 0) for s in samples),
        "rss_slope_kb_per_min": round(rss_slope, 1),
        "fds_first_sample": samples[0]["fds"],
        "fds_after_first_minute": steady[0]["fds"],
        "fds_end": steady[-1]["fds"],
        "rps_first_steady": rates[0] if rates else None,
        "rps_median": statistics.median(rates) if rates else None,
        "rps_min": min(rates) if rates else None,
        "rps_max": max(rates) if rates else None,
        "rps_last": rates[-1] if rates else None,
    }
    print()
    print(f"{args.minutes:g} min, {args.users} users, horde on core 1, demo target on core 0")
    print(
        f"RSS: {summary['rss_kb_after_first_minute']:,} KB at 1 min -> {summary['rss_kb_end']:,} KB at the end "
        f"(max {summary['rss_kb_max']:,} KB); slope after the first minute {rss_slope:+.1f} KB/min"
    )
    print(
        f"fds: {summary['fds_first_sample']} at {samples[0]['t']:g} s, {summary['fds_after_first_minute']} at 1 min, "
        f"{summary['fds_end']} at the end"
    )
    if rates:
        print(
            f"req/s after the first minute: median {summary['rps_median']:,.0f}, min {summary['rps_min']:,.0f}, "
            f"max {summary['rps_max']:,.0f}, first {summary['rps_first_steady']:,.0f}, last {summary['rps_last']:,.0f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "samples": samples}, f, indent=2)


if __name__ == "__main__":
    main()
