#!/usr/bin/env python3
"""horde next to Locust 2.47.0, wrk and Goose 0.19 on the same locustfiles, one core each.

    python benches/vs_locust.py [--duration 15] [--only a,b,c,d] [--skip-goose] [--skip-locust] [--big-users 15000]
                                [--big-duration 40] [--rounds 1] [--markdown FILE] [--keep]

Installs what it lacks (nginx and wrk from Debian's packages, Locust 2.47.0 into <repo>/.venv-locust,
Goose 0.19 built once into <repo>/target/goose-bench/), starts the target pinned to core 1 and runs
every load generator pinned to core 0, with the same locustfile for Locust and horde:

  a) FastHttpUser, GET /, constant(0), 50 users, against nginx; also wrk -c50 and Goose -u50
  b) the same with HttpUser; also wrk -c50
  c) a four-task flow (catch_response, JSON checks, per-user token) with 200 users, between(0, 0.01),
     against horde's demo target
  d) --big-users users (default 15,000), between(2, 4), GET / against nginx: memory per user and
     whether the request rate keeps up with users / mean wait

Each run's CPU time and peak RSS come from os.wait4() on the generator process. Prints one table,
the ratios with their targets (PASS/FAIL) and, with --markdown, writes the same as Markdown.
The machine is shared and noisy: compare only numbers from the same run. A run during which other
processes took more than a tenth of core 0 says so in its notes; --rounds N repeats a) to c) and
keeps each tool's median run. A quick check: --duration 5 --big-users 2000 --big-duration 20 --skip-goose.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOOSE_TEMPLATE = Path(__file__).resolve().parent / "goose_scenario"
GOOSE_DIR = ROOT / "target" / "goose-bench"
LOCUST_VERSION = "2.47.0"
SMALL_USERS = 50
FLOW_USERS = 200
BIG_MEAN_WAIT = 3.0  # between(2, 4)
BIG_SETTLE = 4.0  # seconds after the last user started before the rate counts as steady

LOCUSTFILES = {
    "fast": """
from locust import FastHttpUser, constant, task


class Hello(FastHttpUser):
    wait_time = constant(0)

    @task
    def index(self):
        self.client.get("/")
""",
    "http": """
from locust import HttpUser, constant, task


class Hello(HttpUser):
    wait_time = constant(0)

    @task
    def index(self):
        self.client.get("/")
""",
    "flow": """
import itertools

from locust import HttpUser, between, task

_ids = itertools.count(1)


class Flow(HttpUser):
    wait_time = between(0, 0.01)

    def on_start(self):
        self.username = f"user{next(_ids)}"
        self.sent = 0
        self.token = ""
        with self.client.post("/login", json={"username": self.username, "password": "secret"},
                              catch_response=True) as resp:
            token = resp.json().get("token") if resp.status_code == 200 else None
            if token:
                self.token = token
            else:
                resp.failure(f"no token: {resp.status_code}")
        self.auth = {"Authorization": f"Bearer {self.token}"}

    @task
    def me(self):
        with self.client.get("/me", headers=self.auth, catch_response=True) as resp:
            if resp.status_code != 200 or resp.json().get("username") != self.username:
                resp.failure(f"/me did not return {self.username}")

    @task
    def slideshow(self):
        with self.client.get("/json", catch_response=True) as resp:
            slides = resp.json().get("slideshow", {}).get("slides") if resp.status_code == 200 else None
            if not slides or "title" not in slides[0]:
                resp.failure("no slides")

    @task
    def echo(self):
        self.sent += 1
        body = {"user": self.username, "n": self.sent}
        with self.client.post("/echo", json=body, headers=self.auth, catch_response=True) as resp:
            doc = resp.json() if resp.status_code == 200 else {}
            if doc.get("method") != "POST" or doc.get("json") != body:
                resp.failure("echo mismatch")
            elif doc.get("headers", {}).get("authorization") != self.auth["Authorization"]:
                resp.failure("token not echoed")

    @task
    def articles(self):
        with self.client.get("/api/articles?limit=5", name="/api/articles", catch_response=True) as resp:
            doc = resp.json() if resp.status_code == 200 else {}
            articles = doc.get("articles")
            if not isinstance(articles, list) or len(articles) > 5 or not isinstance(doc.get("articlesCount"), int):
                resp.failure("bad article list")
""",
    "big": """
from locust import HttpUser, between, task


class Visitor(HttpUser):
    wait_time = between(2, 4)

    @task
    def index(self):
        self.client.get("/")
""",
}

# Every child process we started and have not reaped yet, so Ctrl-C and errors can end them all.
_children: list[subprocess.Popen] = []


@dataclass
class Run:
    """One generator run: what the table shows."""

    workload: str
    tool: str
    rps: float | None = None
    p50: float | None = None
    p99: float | None = None
    rss_mb: float | None = None
    cpu_s: float | None = None
    whole_ms: bool = False  # the generator only knows percentiles in whole milliseconds
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# processes


def spawn(cmd: list[str], **kwargs) -> subprocess.Popen:
    # Its own session: a Ctrl-C on the terminal reaches only this script, which then ends the children
    # itself (Locust would otherwise print its summary into the middle of the output).
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
    _children.append(proc)
    return proc


def end(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate a child's process group, then kill it if it lingers."""
    if proc.returncode is None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    if proc in _children:
        _children.remove(proc)


def end_all() -> None:
    for proc in list(_children):
        end(proc, grace=3.0)


@dataclass
class Measured:
    code: int
    usage: resource.struct_rusage
    wall_s: float
    core0_busy_s: float | None  # all of core 0's busy time during the run, ours and everyone else's
    killed: bool


def core0_busy() -> float | None:
    """Seconds core 0 has spent running anything (user, nice, system, or stolen by the hypervisor)."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu0 "):
                user, nice, system, _idle, _iowait, _irq, _softirq, steal = map(int, line.split()[1:9])
                return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    return None


def measure(cmd: list[str], logfile: Path, timeout: float, cwd: Path | None = None) -> Measured:
    """Run cmd pinned to core 0; its rusage (it and its waited-for descendants) comes from wait4()."""
    busy_before = core0_busy()
    with logfile.open("wb") as out:
        proc = spawn(["taskset", "-c", "0", *cmd], stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    started = time.monotonic()
    deadline = started + timeout
    signalled = 0
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline + 15 * signalled:
                log(f"  {Path(cmd[0]).name} still running after {timeout:.0f} s: stopping it")
                os.killpg(proc.pid, signal.SIGKILL if signalled else signal.SIGTERM)
                signalled += 1
            time.sleep(0.1)
    except BaseException:
        end(proc, grace=3.0)
        raise
    wall = time.monotonic() - started
    busy_after = core0_busy()
    # Reaped by wait4: tell Popen so it does not wait again.
    proc.returncode = os.waitstatus_to_exitcode(status)
    _children.remove(proc)
    busy = None if busy_before is None or busy_after is None else busy_after - busy_before
    return Measured(proc.returncode, usage, wall, busy, killed=signalled > 0)


def fill_usage(run: Run, m: Measured) -> None:
    run.rss_mb = m.usage.ru_maxrss / 1024  # ru_maxrss is in KB on Linux
    run.cpu_s = m.usage.ru_utime + m.usage.ru_stime
    if m.killed:
        run.notes.append(f"stopped by this script after {m.wall_s:.0f} s")
    # The machine is shared: say so when other processes took a noticeable share of the generator's core.
    if m.core0_busy_s is not None and m.wall_s > 0:
        others = (m.core0_busy_s - run.cpu_s) / m.wall_s
        run.extra["core0_others"] = others
        if others > 0.1:
            run.notes.append(f"other processes used {others:.0%} of core 0")


def tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no output)"


# ---------------------------------------------------------------------------------------------------
# installing and starting things


def ensure_debian_tools() -> None:
    missing = [tool for tool in ("nginx", "wrk", "taskset") if shutil.which(tool) is None]
    if not missing:
        return
    pkgs = {"nginx": "nginx-light", "wrk": "wrk", "taskset": "util-linux"}
    names = " ".join(pkgs[t] for t in missing)
    log(f"installing {names} from Debian's packages...")
    if os.geteuid() != 0:
        raise SystemExit(f"{', '.join(missing)} missing and not root: apt-get install {names}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *names.split()], check=True, env=env)


def ensure_locust(venv: Path) -> Path:
    locust = venv / "bin" / "locust"
    if locust.exists():
        out = subprocess.run([str(locust), "--version"], capture_output=True, text=True).stdout
        if LOCUST_VERSION in out:
            return locust
    log(f"installing Locust {LOCUST_VERSION} into {venv}...")
    if not (venv / "bin" / "pip").exists():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"locust=={LOCUST_VERSION}"], check=True)
    return locust


def horde_command() -> list[str]:
    exe = Path(sys.executable).parent / "horde"
    if exe.exists():
        return [str(exe)]
    probe = subprocess.run([sys.executable, "-c", "import horde"], capture_output=True)
    if probe.returncode != 0:
        raise SystemExit("horde is not installed in this Python: activate its virtualenv (pip install -e .)")
    return [sys.executable, "-m", "horde"]


def build_goose() -> tuple[Path | None, str]:
    """Build the Goose scenario once (cached in target/goose-bench); return (binary, reason if none)."""
    if shutil.which("cargo") is None:
        return None, "cargo not found"
    GOOSE_DIR.mkdir(parents=True, exist_ok=True)
    # Copy only what changed: a fresh mtime would make cargo rebuild the scenario crate.
    for src in GOOSE_TEMPLATE.rglob("*"):
        if src.is_file():
            dst = GOOSE_DIR / src.relative_to(GOOSE_TEMPLATE)
            if not dst.exists() or dst.read_bytes() != src.read_bytes():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    binary = GOOSE_DIR / "target" / "release" / "goose-bench"
    if binary.exists():
        log(f"Goose 0.19: checking the cached build in {GOOSE_DIR}...")
    else:
        log(f"building Goose 0.19 in {GOOSE_DIR} (the first build downloads and compiles for several minutes)...")
    env = {**os.environ, "CARGO_TARGET_DIR": str(GOOSE_DIR / "target")}
    build_log = GOOSE_DIR / "build.log"
    with build_log.open("wb") as out:
        proc = spawn(["cargo", "build", "--release"], cwd=GOOSE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)
        started = time.monotonic()
        last = started
        while proc.poll() is None:
            time.sleep(0.5)
            if time.monotonic() - last >= 15:
                last = time.monotonic()
                log(f"  still building ({last - started:.0f} s): {tail(build_log, 1).strip()}")
    _children.remove(proc)
    if proc.returncode != 0 or not binary.exists():
        lines = build_log.read_text(errors="replace").splitlines()
        first_error = next((line.strip() for line in lines if line.startswith("error")), tail(build_log, 1))
        return None, f"cargo build failed: {first_error[:160]} (see {build_log})"
    log(f"  Goose ready: {binary}")
    return binary, ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, what: str) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} is not listening on port {port}")


def start_nginx(workdir: Path, port: int, connections: int) -> subprocess.Popen:
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if nofile == resource.RLIM_INFINITY or nofile > 1 << 20:
        nofile = 1 << 16
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
worker_rlimit_nofile {nofile};
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 'Hello, World!'; }}
    }}
}}
""")
    proc = spawn(["taskset", "-c", "1", "nginx", "-c", str(conf), "-p", str(workdir)])
    wait_listening(port, proc, "nginx")
    return proc


def start_demo(workdir: Path, port: int) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "horde-demo"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys, horde.demo; sys.exit(horde.demo.main())"]
    with (workdir / "demo.log").open("wb") as out:
        proc = spawn(["taskset", "-c", "1", *cmd, "serve", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    wait_listening(port, proc, "the demo target")
    return proc


# ---------------------------------------------------------------------------------------------------
# the generators


def _float(text: str | None) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def read_aggregated(prefix: Path) -> dict:
    with open(f"{prefix}_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                return row
    raise ValueError(f"no Aggregated row in {prefix}_stats.csv")


def read_history(prefix: Path) -> list[tuple[float, int, int]]:
    """(timestamp, users, total requests) of each Aggregated row of _stats_history.csv."""
    rows = []
    with open(f"{prefix}_stats_history.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                rows.append((float(row["Timestamp"]), int(row["User Count"]), int(row["Total Request Count"])))
    if not rows:
        raise ValueError("no Aggregated rows")
    return rows


def count_at(rows: list[tuple[float, int, int]], t: float) -> float:
    """Total requests at time t, interpolated between the history rows around it."""
    before = [r for r in rows if r[0] <= t]
    after = [r for r in rows if r[0] > t]
    if not before:
        return rows[0][2]
    if not after:
        return before[-1][2]
    (t0, _, n0), (t1, _, n1) = before[-1], after[0]
    return n0 + (n1 - n0) * (t - t0) / (t1 - t0)


def steady_rate(prefix: Path, duration: int) -> dict:
    """What the history says about a run with waits: ramp-up, requests until -t, steady requests/s.

    The steady part starts BIG_SETTLE seconds after the last user started (every user has been through
    a whole wait by then) and ends at -t: a generator that needs long to stop its users keeps counting
    requests after -t, and those are left out. Timestamps are whole seconds, hence the interpolation.
    """
    rows = read_history(prefix)
    first = rows[0][0]
    stop = first + duration
    peak = max(users for _, users, _ in rows)
    reached = next(ts for ts, users, _ in rows if users == peak)
    result = {
        "peak_users": peak,
        "ramp_s": reached - first,
        "requests_at_stop": count_at(rows, stop),
        "steady_rps": None,
        "steady_s": 0.0,
    }
    begin = reached + BIG_SETTLE
    if stop - begin >= 5 and rows[-1][0] >= stop - 1:
        result.update(steady_rps=(count_at(rows, stop) - count_at(rows, begin)) / (stop - begin), steady_s=stop - begin)
    return result


def run_locustish(
    tool: str,
    cmd: list[str],
    workload: str,
    locustfile: Path,
    host: str,
    users: int,
    rate: int,
    duration: int,
    workdir: Path,
    hdr: bool,
    history: bool = False,
) -> Run:
    """Run Locust or horde (same command line) and read its CSV (and horde's --hdr-json).

    With history, requests/s counts only the requests until -t, from _stats_history.csv.
    """
    run = Run(workload, tool)
    name = f"{workload}-{tool.split()[0].lower()}"
    prefix = workdir / name
    args = [
        *cmd,
        "-f",
        str(locustfile),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(rate),
        "-t",
        f"{duration}s",
        "-H",
        host,
        "--csv",
        str(prefix),
        "--only-summary",
    ]
    if hdr:
        args += ["--hdr-json", str(workdir / f"{name}-hdr.json")]
    logfile = workdir / f"{name}.log"
    log(f"  {tool}: {users} users, {duration} s...")
    m = measure(args, logfile, timeout=2 * duration + 120)
    code = m.code
    fill_usage(run, m)
    if m.wall_s > duration + 10:
        run.notes.append(f"exited {m.wall_s - duration:.0f} s after -t")
    try:
        agg = read_aggregated(prefix)
    except (OSError, ValueError) as exc:
        run.notes.append(f"no stats (exit {code}: {exc}; {tail(logfile, 2)})")
        return run
    count, failures = int(agg["Request Count"]), int(agg["Failure Count"])
    run.rps = count / duration
    run.extra.update(requests=count, failures=failures)
    if failures:
        errors = ""
        try:
            with open(f"{prefix}_failures.csv", newline="") as f:
                top = max(csv.DictReader(f), key=lambda r: int(r["Occurrences"]))
            errors = f": {top['Error'][:60]}"
        except (OSError, ValueError, KeyError):
            pass
        run.notes.append(f"{failures:,} failures of {count:,}{errors}")
    precise = None
    if hdr:
        try:
            precise = json.loads((workdir / f"{name}-hdr.json").read_text())["total"]["percentiles"]
            run.p50, run.p99 = precise["0.5"], precise["0.99"]
        except (OSError, ValueError, KeyError) as exc:
            precise = None
            run.notes.append(f"no --hdr-json ({type(exc).__name__})")
    if precise is None:
        run.p50, run.p99 = _float(agg["50%"]), _float(agg["99%"])
        run.whole_ms = True
        run.notes.append("p50/p99 in whole ms")
    if history:
        try:
            run.extra.update(steady_rate(prefix, duration))
            run.rps = run.extra["requests_at_stop"] / duration
        except (OSError, ValueError, KeyError) as exc:
            run.notes.append(f"no history ({exc})")
    return run


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _WRK_UNITS[m.group(2)]


def run_wrk(workload: str, url: str, connections: int, duration: int, workdir: Path) -> Run:
    run = Run(workload, "wrk")
    logfile = workdir / f"{workload}-wrk.log"
    log(f"  wrk: {connections} connections, {duration} s...")
    measured = measure(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url], logfile, timeout=duration + 60
    )
    code = measured.code
    fill_usage(run, measured)
    out = logfile.read_text(errors="replace")
    try:
        run.rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        run.p50 = _wrk_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
        run.p99 = _wrk_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    except (AttributeError, ValueError) as exc:
        run.notes.append(f"unreadable output (exit {code}: {exc})")
    errors = re.search(r"Socket errors:.*|Non-2xx or 3xx responses: \d+", out)
    if errors:
        run.notes.append(errors.group(0))
    run.notes.append("-t1, no think time")
    return run


def run_goose(workload: str, binary: Path, host: str, users: int, duration: int, workdir: Path) -> Run:
    run = Run(workload, "Goose 0.19")
    report = workdir / f"{workload}-goose.json"
    logfile = workdir / f"{workload}-goose.log"
    log(f"  Goose: {users} users, {duration} s...")
    # Goose's -t counts from the moment the last user started, so the run is ramp-up + duration; the
    # rate below divides by the time from the first user to the stop, read from the report.
    args = [
        str(binary),
        "--host",
        host,
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{duration}s",
        "--no-reset-metrics",
        "--report-file",
        str(report),
        "--quiet",
    ]
    measured = measure(args, logfile, timeout=2 * duration + 120, cwd=workdir)
    code = measured.code
    fill_usage(run, measured)
    try:
        numbers = read_goose_report(json.loads(report.read_text()))
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
        run.notes.append(f"no report (exit {code}: {exc!r}; {tail(logfile, 2)})")
        return run
    run.rps = numbers["requests"] / numbers["seconds"]
    run.p50, run.p99 = numbers["p50"], numbers["p99"]
    run.extra.update(numbers)
    if numbers["failures"]:
        run.notes.append(f"{numbers['failures']} failures of {numbers['requests']}")
    if numbers["resolution"] != "microsecond":
        run.whole_ms = True
        run.notes.append("p50/p99 in whole ms")
    return run


def _iso_seconds(stamp: str) -> float:
    # Goose writes nanoseconds ("...:03.847755740Z"); datetime takes at most microseconds.
    m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z", stamp)
    if not m:
        raise ValueError(f"cannot read timestamp {stamp!r}")
    whole = datetime.fromisoformat(m.group(1)).replace(tzinfo=timezone.utc).timestamp()
    return whole + float(f"0.{m.group(2) or 0}")


def _histogram_percentile(counts: dict[int, int], q: float) -> float:
    total = sum(counts.values())
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= q * total:
            return value
    return max(counts)


def read_goose_report(doc: dict) -> dict:
    """Requests, failures, seconds under load and p50/p99 (ms) of the GET / row of a Goose JSON report."""
    row = next(r for r in doc["raw_request_metrics"] if r["method"] == "GET")
    history = doc["raw_metrics"]["history"]
    first = _iso_seconds(history[0]["timestamp"])
    stop = next((h for h in history if h["action"] in ("Decreasing", "Finished")), history[-1])
    numbers = {
        "requests": int(row["number_of_requests"]),
        "failures": int(row["number_of_failures"]),
        "seconds": _iso_seconds(stop["timestamp"]) - first,
    }
    # 0.19.0 keeps a microsecond histogram (times_us) beside the whole-millisecond percentiles;
    # 0.19.1 also writes percentile_NN_us. Use the finest there is.
    raw = next(iter(doc["raw_metrics"]["requests"].values()))["raw_data"]
    if raw.get("times_us"):
        counts = {int(k): int(v) for k, v in raw["times_us"].items()}
        numbers.update(
            p50=_histogram_percentile(counts, 0.5) / 1000,
            p99=_histogram_percentile(counts, 0.99) / 1000,
            resolution="microsecond",
        )
        return numbers
    pct = next(r for r in doc["raw_response_metrics"] if r["method"] == "GET")
    if "percentile_50_us" in pct:
        numbers.update(p50=pct["percentile_50_us"] / 1000, p99=pct["percentile_99_us"] / 1000, resolution="microsecond")
    else:
        numbers.update(p50=_float(pct["percentile_50"]), p99=_float(pct["percentile_99"]), resolution="whole-ms")
    return numbers


# ---------------------------------------------------------------------------------------------------
# the workloads


@dataclass
class Setup:
    workdir: Path
    locust: list[str] | None  # None with --skip-locust
    horde: list[str]
    goose: Path | None
    goose_reason: str
    duration: int
    big_users: int
    big_duration: int
    nginx_url: str = ""


def run_locust(s: Setup, workload: str, locustfile: Path, host: str, users: int, rate: int, duration: int) -> Run:
    if s.locust is None:
        return Run(workload, "Locust", notes=["n/a: skipped (--skip-locust)"])
    return run_locustish("Locust", s.locust, workload, locustfile, host, users, rate, duration, s.workdir, hdr=False)


def workload_a(s: Setup, lf: dict[str, Path]) -> list[Run]:
    log("a) FastHttpUser, GET /, constant(0), 50 users")
    runs = [
        run_wrk("a", s.nginx_url + "/", SMALL_USERS, s.duration, s.workdir),
        run_locust(s, "a", lf["fast"], s.nginx_url, SMALL_USERS, SMALL_USERS, s.duration),
        run_locustish(
            "horde", s.horde, "a", lf["fast"], s.nginx_url, SMALL_USERS, SMALL_USERS, s.duration, s.workdir, hdr=True
        ),
    ]
    if s.goose is not None:
        runs.append(run_goose("a", s.goose, s.nginx_url, SMALL_USERS, s.duration, s.workdir))
    else:
        runs.append(Run("a", "Goose 0.19", notes=[f"n/a: {s.goose_reason}"]))
    return runs


def workload_b(s: Setup, lf: dict[str, Path]) -> list[Run]:
    log("b) HttpUser, GET /, constant(0), 50 users")
    return [
        run_wrk("b", s.nginx_url + "/", SMALL_USERS, s.duration, s.workdir),
        run_locust(s, "b", lf["http"], s.nginx_url, SMALL_USERS, SMALL_USERS, s.duration),
        run_locustish(
            "horde", s.horde, "b", lf["http"], s.nginx_url, SMALL_USERS, SMALL_USERS, s.duration, s.workdir, hdr=True
        ),
    ]


def workload_c(s: Setup, lf: dict[str, Path]) -> list[Run]:
    log("c) four-task flow with catch_response and JSON checks, 200 users, against the demo target")
    port = free_port()
    demo = start_demo(s.workdir, port)
    host = f"http://127.0.0.1:{port}"
    try:
        return [
            run_locust(s, "c", lf["flow"], host, FLOW_USERS, FLOW_USERS, s.duration),
            run_locustish(
                "horde", s.horde, "c", lf["flow"], host, FLOW_USERS, FLOW_USERS, s.duration, s.workdir, hdr=True
            ),
        ]
    finally:
        end(demo)


def workload_d(s: Setup, lf: dict[str, Path]) -> list[Run]:
    users = s.big_users
    rate = max(1, -(-users // 10))  # everyone started within about 10 s
    log(f"d) {users} users, between(2, 4), GET /, -r {rate}, {s.big_duration} s")
    runs = []
    for tool, cmd, hdr in (("Locust", s.locust, False), ("horde", s.horde, True)):
        if cmd is None:
            runs.append(Run("d", tool, notes=["n/a: skipped (--skip-locust)"]))
            continue
        run = run_locustish(
            tool, cmd, "d", lf["big"], s.nginx_url, users, rate, s.big_duration, s.workdir, hdr=hdr, history=True
        )
        expected = users / BIG_MEAN_WAIT
        run.extra["expected_rps"] = expected
        if run.rss_mb is not None:
            run.extra["kb_per_user"] = run.rss_mb * 1024 / users
            run.notes.append(f"{run.extra['kb_per_user']:.1f} KB RSS/user")
        peak = run.extra.get("peak_users")
        if peak is not None and peak < users:
            run.notes.append(f"reached only {peak:,} of {users:,} users")
        elif peak is not None:
            run.notes.append(f"all users in {run.extra['ramp_s']:.0f} s")
        steady = run.extra.get("steady_rps")
        if steady is not None:
            run.notes.append(
                f"steady {steady:,.0f} req/s over {run.extra['steady_s']:.0f} s "
                f"= {steady / expected:.1%} of {expected:,.0f}"
            )
        elif peak is not None:
            run.notes.append("no steady part (too short a run)")
        runs.append(run)
        time.sleep(2)  # let the closed connections drain before the next 15,000 open
    return runs


def median_runs(runs: list[Run], rounds: int) -> list[Run]:
    """Of each (workload, tool), the run with the median requests/s; the order of first appearance kept."""
    if rounds == 1:
        return runs
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.workload, run.tool), []).append(run)
    chosen = []
    for group in groups.values():
        measured = sorted((r for r in group if r.rps is not None), key=lambda r: r.rps)
        if not measured:
            chosen.append(group[0])
            continue
        median = measured[(len(measured) - 1) // 2]
        median.notes.insert(
            0, f"median of {len(measured)} rounds ({measured[0].rps:,.0f}-{measured[-1].rps:,.0f} req/s)"
        )
        chosen.append(median)
    return chosen


# ---------------------------------------------------------------------------------------------------
# output


def fmt_num(value: float | None, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "whole ms":
        return f"{value:.0f}"
    if kind == "ms":
        return f"{value:.3f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"
    if kind == "rps":
        return f"{value:,.0f}"
    return f"{value:.1f}"


FOOTNOTE = (
    "Every generator ran pinned to core 0, the target (nginx; horde's demo target in c) on core 1. "
    "req/s = requests / run time, ramp-up included; in d) only the requests until -t count. Locust's p50/p99 "
    "are rounded (whole milliseconds below 100 ms, coarser above); horde's come from its HdrHistograms "
    "(--hdr-json, microseconds), Goose's from its microsecond histogram. Max RSS and CPU s (user+sys) of the "
    "generator from wait4()."
)
HEADER = ["workload", "tool", "req/s", "p50 ms", "p99 ms", "max RSS MB", "CPU s", "notes"]
WORKLOAD_NAMES = {
    "a": "a) FastHttpUser 50u",
    "b": "b) HttpUser 50u",
    "c": "c) flow 200u",
    "d": "d) {big}u between(2,4)",
}


def table_rows(runs: list[Run], big_users: int) -> list[list[str]]:
    rows = []
    for r in runs:
        rows.append(
            [
                WORKLOAD_NAMES[r.workload].format(big=f"{big_users:,}"),
                r.tool,
                fmt_num(r.rps, "rps"),
                fmt_num(r.p50, "whole ms" if r.whole_ms else "ms"),
                fmt_num(r.p99, "whole ms" if r.whole_ms else "ms"),
                fmt_num(r.rss_mb, "mb"),
                fmt_num(r.cpu_s, "s"),
                "; ".join(r.notes),
            ]
        )
    return rows


def ratio_lines(runs: list[Run]) -> list[str]:
    def get(workload: str, tool: str) -> Run | None:
        return next((r for r in runs if r.workload == workload and r.tool == tool), None)

    lines: list[str] = []

    def ratio(
        label: str, num: float | None, den: float | None, target: str | None = None, check=None, suffix: str = "×"
    ) -> None:
        if num is None or den is None or den == 0:
            lines.append(f"{label}: n/a" + (f"  (target {target})" if target else ""))
            return
        value = num / den
        verdict = ""
        if check is not None:
            verdict = "  PASS" if check(value) else "  FAIL"
        lines.append(f"{label}: {value:.2f}{suffix}" + (f"  (target {target}){verdict}" if target else ""))

    def attr(run: Run | None, name: str) -> float | None:
        return None if run is None else getattr(run, name)

    if any(r.workload == "a" for r in runs):
        horde, locust, wrk, goose = get("a", "horde"), get("a", "Locust"), get("a", "wrk"), get("a", "Goose 0.19")
        ratio(
            "a) horde / Locust FastHttpUser req/s", attr(horde, "rps"), attr(locust, "rps"), ">= 5×", lambda v: v >= 5
        )
        ratio("a) horde / wrk req/s", attr(horde, "rps"), attr(wrk, "rps"), ">= 0.6×, aim 0.8×", lambda v: v >= 0.6)
        ratio("a) horde / Goose req/s", attr(horde, "rps"), attr(goose, "rps"))
        ratio("a) horde p50 / wrk p50", attr(horde, "p50"), attr(wrk, "p50"), "<= 2×", lambda v: v <= 2)
        ratio(
            "a) Locust p50 / wrk p50 (for comparison; Locust's p50 is whole ms)", attr(locust, "p50"), attr(wrk, "p50")
        )
        ratio("a) Goose p50 / wrk p50 (for comparison)", attr(goose, "p50"), attr(wrk, "p50"))
    if any(r.workload == "b" for r in runs):
        ratio(
            "b) horde / Locust HttpUser req/s",
            attr(get("b", "horde"), "rps"),
            attr(get("b", "Locust"), "rps"),
            ">= 15×",
            lambda v: v >= 15,
        )
        ratio("b) horde / wrk req/s", attr(get("b", "horde"), "rps"), attr(get("b", "wrk"), "rps"))
    if any(r.workload == "c" for r in runs):
        ratio(
            "c) horde / Locust req/s",
            attr(get("c", "horde"), "rps"),
            attr(get("c", "Locust"), "rps"),
            ">= 5×",
            lambda v: v >= 5,
        )
    if any(r.workload == "d" for r in runs):
        for tool, target in (("horde", True), ("Locust", False)):
            run, small = get("d", tool), get("b", tool)
            kb = None if run is None else run.extra.get("kb_per_user")
            if kb is None:
                lines.append(f"d) {tool} RSS per user: n/a")
                continue
            verdict = f"  (target <= 15 KB)  {'PASS' if kb <= 15 else 'FAIL'}" if target else ""
            # What each further user costs, with the 50-user run of b) as the baseline.
            if small is not None and small.rss_mb is not None and run.rss_mb is not None:
                users = run.extra.get("peak_users") or 0
                if users > SMALL_USERS:
                    extra_kb = (run.rss_mb - small.rss_mb) * 1024 / (users - SMALL_USERS)
                    verdict += f"; {extra_kb:.1f} KB per user above b)'s 50-user run"
            lines.append(f"d) {tool} RSS per user (max RSS / users): {kb:.1f} KB{verdict}")
        for tool, target in (("horde", True), ("Locust", False)):
            run = get("d", tool)
            steady = None if run is None else run.extra.get("steady_rps")
            expected = None if run is None else run.extra.get("expected_rps")
            if steady is None or not expected:
                lines.append(f"d) {tool} steady req/s vs expected: n/a")
                continue
            share = steady / expected
            verdict = f"  (target within 5%)  {'PASS' if abs(share - 1) <= 0.05 else 'FAIL'}" if target else ""
            lines.append(
                f"d) {tool} steady req/s vs expected (users / 3 s): {steady:,.0f} / {expected:,.0f} "
                f"= {share:.1%}{verdict}"
            )
    return lines


def render_text(rows: list[list[str]]) -> str:
    widths = [max(len(HEADER[i]), *(len(r[i]) for r in rows)) for i in range(len(HEADER) - 1)]
    right = {2, 3, 4, 5, 6}

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts) + "  " + cells[-1]

    out = [line(HEADER), line(["-" * w for w in widths] + ["-----"])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def render_markdown(rows: list[list[str]], ratios: list[str], machine: str, args_line: str) -> str:
    out = [f"Machine: {machine}. Command: `{args_line}`.", ""]
    out.append("| " + " | ".join(HEADER) + " |")
    out.append("|" + "|".join("---:" if i in {2, 3, 4, 5, 6} else "---" for i in range(len(HEADER))) + "|")
    for r in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    out.append("")
    out += [f"- {line}" for line in ratios]
    out.append("")
    out.append(FOOTNOTE)
    return "\n".join(out) + "\n"


def machine_line() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    return f"{os.cpu_count()} cores ({model}){mem}, Linux {platform.release()}"


# ---------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds per run of a), b), c) (default 15)")
    parser.add_argument("--only", default="a,b,c,d", help="workloads to run, e.g. a,c (default a,b,c,d)")
    parser.add_argument("--skip-goose", action="store_true", help="do not build or run Goose")
    parser.add_argument("--skip-locust", action="store_true", help="do not install or run Locust")
    parser.add_argument("--big-users", type=int, default=15000, help="users in d) (default 15000)")
    parser.add_argument("--big-duration", type=int, default=40, help="seconds of the d) runs (default 40)")
    parser.add_argument(
        "--locust-venv",
        type=Path,
        default=ROOT / ".venv-locust",
        help="virtualenv for Locust 2.47.0 (created if missing; default <repo>/.venv-locust)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat a), b), c) and show each tool's median run (default 1)"
    )
    parser.add_argument("--markdown", type=Path, help="also write the table and ratios as Markdown to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with the logs and CSVs")
    args = parser.parse_args()

    only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = set(only) - set("abcd")
    if unknown or not only:
        parser.error(f"--only takes a comma list of a, b, c, d (got {args.only!r})")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores: the target on core 1, the load generator on core 0")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    if "d" in only and args.big_users + 1000 > hard:
        raise SystemExit(f"--big-users {args.big_users} needs more file descriptors than the limit {hard} allows")
    # A SIGTERM ends the run like Ctrl-C, through the finally clauses that stop the children.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)

    started = time.monotonic()
    machine = machine_line()
    print(f"machine: {machine}", flush=True)
    print(
        f"nproc {os.cpu_count()}; generators on core 0, targets on core 1; {time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )

    ensure_debian_tools()
    locust = None if args.skip_locust else [str(ensure_locust(args.locust_venv))]
    horde = horde_command()

    workdir = Path(tempfile.mkdtemp(prefix="horde-vs-locust-"))
    runs: list[Run] = []
    try:
        goose, goose_reason = None, "skipped (--skip-goose)"
        if "a" in only and not args.skip_goose:
            goose, goose_reason = build_goose()
            if goose is None:
                log(f"Goose not available: {goose_reason}")
        lf = {}
        for name, text in LOCUSTFILES.items():
            lf[name] = workdir / f"locustfile_{name}.py"
            lf[name].write_text(text.lstrip())
        setup = Setup(workdir, locust, horde, goose, goose_reason, args.duration, args.big_users, args.big_duration)
        nginx = None
        if set(only) & {"a", "b", "d"}:
            port = free_port()
            nginx = start_nginx(workdir, port, max(4096, args.big_users + 1024))
            setup.nginx_url = f"http://127.0.0.1:{port}"
        steps = {"a": workload_a, "b": workload_b, "c": workload_c}
        rounds: list[Run] = []
        for i in range(args.rounds if set(only) & set(steps) else 0):
            if args.rounds > 1:
                log(f"round {i + 1} of {args.rounds}")
                setup.workdir = workdir / f"round{i + 1}"
                setup.workdir.mkdir()
            for w in "abc":
                if w in only:
                    rounds += steps[w](setup, lf)
        runs += median_runs(rounds, args.rounds)
        setup.workdir = workdir
        if "d" in only:
            runs += workload_d(setup, lf)
        if nginx is not None:
            end(nginx)
    except KeyboardInterrupt:
        log("interrupted: stopping the target and generators")
        end_all()
        return 130
    finally:
        end_all()
        if args.keep:
            log(f"logs and CSVs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    rows = table_rows(runs, args.big_users)
    ratios = ratio_lines(runs)
    elapsed = time.monotonic() - started
    print()
    print(render_text(rows))
    print()
    for line in ratios:
        print(line)
    print()
    print(FOOTNOTE)
    print(f"total time {elapsed / 60:.1f} min")
    if args.markdown:
        args_line = "python benches/vs_locust.py " + " ".join(sys.argv[1:])
        args.markdown.write_text(render_markdown(rows, ratios, machine, args_line.strip()))
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
