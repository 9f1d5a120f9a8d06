#!/usr/bin/env python3
"""horde's distributed mode next to Locust 2.47.0's, in one run on one machine (2 cores).

    python benches/distributed.py [--rounds 3] [--window 8] [--duration 15] [--only processes,scale,worker]
                                  [--sizes 50,200,1000] [--scale-window 15] [--scale-rounds 3]
                                  [--names 100] [--quick] [--keep]

Defaults take about 12 minutes; --quick (one round, short windows) about 2.

Three cases, each run side by side and round by round; every ratio is computed within a round and
the reported figure is the median of the per-round ratios:

  processes  `horde --processes 2` (master + 2 workers) against one horde process, same locustfile
             (FastHttpUser, 50 users, constant(0), GET / against nginx). Every horde process on
             core 0, nginx on core 1. CPU seconds (user+sys from /proc/<pid>/stat, all threads) per
             request over a steady window, requests counted at nginx (stub_status); also the whole
             run's CPU (wait4) per request in horde's CSV. Targets: CPU per request of --processes 2
             within 1.1x of one process; the master's CPU under 3% of its workers'.
  scale      A swarm of simulated workers in one process (benches/worker_swarm.py: DEALER sockets,
             a heartbeat every second and a 100-name stats report every 3 s each) on core 0 against
             a horde master and a Locust 2.47 master on core 1, at each of --sizes workers: the
             master's CPU over --scale-window seconds after every worker is connected and spawned,
             and the workers it marked missing (its log) or left without heartbeat replies (the
             swarm's count). Targets: horde's master at most a fifth of Locust's master CPU at
             every size; no worker lost at 1,000.
  worker     A real Locust master (headless, --expect-workers 1, 50 users) with one horde worker,
             against the same with one Locust worker. The worker on core 0; the Locust master
             and nginx on core 1 (the master merges one worker's reports: a few % of a core).
             Requests/s = the master CSV's Aggregated Request Count / -t; nginx's count is checked
             against the CSV in every round. Target: horde's worker at least 10x the requests/s.

Installs what it lacks as benches/vs_locust.py does (nginx-light from Debian's packages, Locust
2.47.0 into <repo>/.venv-locust). The machine is shared and noisy: other processes' use of each core
during a window is measured and shown when above 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_locust as vs  # noqa: E402  (its process, install and CSV helpers)

ROOT = vs.ROOT
SWARM = Path(__file__).resolve().parent / "worker_swarm.py"
USERS = 50
TICK_S = os.sysconf("SC_CLK_TCK")
MISSING_LINE = "failed to send heartbeat, setting state to missing"

LOCUSTFILE = """
from locust import FastHttpUser, constant, task


class Hello(FastHttpUser):
    wait_time = constant(0)

    @task
    def index(self):
        self.client.get("/")
"""

log = vs.log


# ---------------------------------------------------------------------------------------------------
# measuring


def proc_cpu(pid: int) -> float | None:
    """utime + stime of a process (all its threads), in seconds; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK_S
    except (OSError, ValueError, IndexError):
        return None


def children_of(pid: int) -> list[int]:
    """Direct children of pid (from each process's stat in /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return sorted(out)


def pinning(pid: int) -> set[str]:
    """The CPU lists its threads may run on (one element when they are all pinned alike)."""
    lists = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                    if line.startswith("Cpus_allowed_list:"):
                        lists.add(line.split(":", 1)[1].strip())
            except OSError:
                continue
    except OSError:
        pass
    return lists


def core_busy() -> dict[int, float]:
    """Seconds each core has spent running processes (user, nice, system) or stolen by the hypervisor.
    Interrupts are left out: the softirqs of our own loopback traffic are counted there, not in a process."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            parts = line.split()
            user, nice, system, _idle, _iowait, _irq, _softirq, steal = map(int, parts[1:9])
            out[int(parts[0][3:])] = (user + nice + system + steal) / TICK_S
    return out


class Window:
    """CPU of some processes, requests at nginx and every core's busy time between start() and stop()."""

    def __init__(self, pids: dict[str, int], nginx: Nginx | None) -> None:
        self.pids = pids
        self.nginx = nginx

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.cpu0 = {k: proc_cpu(p) for k, p in self.pids.items()}
        self.busy0 = core_busy()
        self.n0 = self.nginx.requests() if self.nginx else None

    def stop(self) -> None:
        self.cpu1 = {k: proc_cpu(p) for k, p in self.pids.items()}
        self.busy1 = core_busy()
        self.n1 = self.nginx.requests() if self.nginx else None
        self.seconds = time.monotonic() - self.t0

    def cpu(self, key: str) -> float | None:
        a, b = self.cpu0.get(key), self.cpu1.get(key)
        return None if a is None or b is None else b - a

    @property
    def requests(self) -> int | None:
        return None if self.n0 is None else self.n1 - self.n0

    def others(self, core: int, ours: float) -> float:
        """Share of the core that processes other than ours used during the window."""
        return max(0.0, (self.busy1[core] - self.busy0[core] - ours) / self.seconds)


# ---------------------------------------------------------------------------------------------------
# the target


class Nginx:
    """nginx on core 1 answering 'Hello, World!' to anything, with a request counter (stub_status)."""

    def __init__(self, workdir: Path) -> None:
        self.port = vs.free_port()
        self.status_port = vs.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._reads = 0
        conf = workdir / "nginx.conf"
        conf.write_text(f"""
worker_processes 1;
worker_rlimit_nofile 8192;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{self.port} backlog=4096;
        location / {{ return 200 'Hello, World!'; }}
    }}
    server {{
        listen 127.0.0.1:{self.status_port};
        location / {{ stub_status; }}
    }}
}}
""")
        self.proc = vs.spawn(["taskset", "-c", "1", "nginx", "-c", str(conf), "-p", str(workdir)])
        vs.wait_listening(self.port, self.proc, "nginx")
        vs.wait_listening(self.status_port, self.proc, "nginx (status)")

    def requests(self) -> int:
        """Requests nginx has answered on its load port since it started (its status reads left out:
        stub_status counts every server's requests, each read included in its own answer)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.status_port}/", timeout=5) as resp:
            text = resp.read().decode()
        self._reads += 1
        # "Active connections: 1 \nserver accepts handled requests\n 5 5 12 \n..."
        total = int(text.splitlines()[2].split()[2])
        return total - self._reads

    def workers(self) -> list[int]:
        return children_of(self.proc.pid)


def wait_for_traffic(nginx: Nginx, since: int, proc: subprocess.Popen, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if nginx.requests() - since > 1000:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def reap(proc: subprocess.Popen, timeout: float) -> tuple[int, resource.struct_rusage | None, bool]:
    """Waits for a child (and its waited-for descendants' rusage) with wait4; kills it past timeout."""
    deadline = time.monotonic() + timeout
    killed = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc in vs._children:
                vs._children.remove(proc)
            return proc.returncode, usage, killed
        if time.monotonic() > deadline:
            killed = True
            vs.end(proc, grace=5)
            return proc.returncode if proc.returncode is not None else -9, None, killed
        time.sleep(0.05)


def csv_count(prefix: Path) -> tuple[int | None, int | None]:
    try:
        agg = vs.read_aggregated(prefix)
        return int(agg["Request Count"]), int(agg["Failure Count"])
    except (OSError, ValueError, KeyError):
        return None, None


def pinned_note(name: str, pid: int, core: str) -> str | None:
    lists = pinning(pid)
    if lists != {core}:
        return f"{name} pid {pid} NOT pinned to core {core}: {sorted(lists) or 'gone'}"
    return None


# ---------------------------------------------------------------------------------------------------
# case 1: --processes 2 against one process


@dataclass
class CpuRun:
    mode: str
    rps: float | None = None  # at nginx, over the window
    us_per_req: float | None = None  # window CPU of all horde processes / window requests at nginx
    master_pct: float | None = None  # master CPU / workers' CPU, over the window
    master_core_pct: float | None = None  # master CPU / window seconds
    whole_us_per_req: float | None = None  # wait4 CPU of the whole run / CSV requests
    csv: int | None = None
    nginx_total: int | None = None
    notes: list[str] = field(default_factory=list)


def run_cpu_case(s: Setup, mode: str, round_dir: Path, users: int = USERS) -> CpuRun:
    """mode: "single" or "processes N"."""
    run = CpuRun(mode)
    processes = int(mode.split()[1]) if mode.startswith("processes") else 0
    prefix = round_dir / f"processes-{mode.replace(' ', '')}-{users}u"
    run_time = int(s.window + 0.999) + 10
    cmd = [
        *s.horde, "-f", str(s.locustfile), "--headless", "-u", str(users), "-r", str(users), "-t", f"{run_time}s",
        "-H", s.nginx.url, "--csv", str(prefix), "--only-summary",
    ]  # fmt: skip
    if processes:
        cmd += [
            "--processes",
            str(processes),
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(vs.free_port()),
        ]
    logfile = round_dir / f"processes-{mode.replace(' ', '')}-{users}u.log"
    log(f"  horde {mode}: {users} users, -t {run_time}s, window {s.window} s")
    before = s.nginx.requests()
    with logfile.open("wb") as out:
        proc = vs.spawn(["taskset", "-c", "0", *cmd], stdout=out, stderr=subprocess.STDOUT)
    try:
        if not wait_for_traffic(s.nginx, before, proc):
            run.notes.append(f"no traffic ({vs.tail(logfile, 2)})")
            vs.end(proc)
            return run
        time.sleep(2.0)  # all 50 users started (-r 50), connections open
        pids = {"master": proc.pid}
        kids = children_of(proc.pid) if processes else []
        for i, pid in enumerate(kids):
            pids[f"worker{i}"] = pid
        if len(kids) != processes:
            run.notes.append(f"{len(kids)} worker processes, not {processes}")
        for name, pid in pids.items():
            note = pinned_note(name, pid, "0")
            if note:
                run.notes.append(note)
        window = Window(pids, s.nginx)
        window.start()
        time.sleep(s.window)
        window.stop()
        if proc.poll() is not None:
            run.notes.append("horde exited before the window ended")
        code, usage, killed = reap(proc, timeout=run_time + 60)
    except BaseException:
        vs.end(proc)
        raise
    after = s.nginx.requests()
    run.nginx_total = after - before
    run.csv, failures = csv_count(prefix)
    if killed:
        run.notes.append("stopped by this script")
    if code not in (0, None):
        run.notes.append(f"exit {code}")
    if failures:
        run.notes.append(f"{failures} failures")
    cpus = {k: window.cpu(k) for k in pids}
    if any(v is None for v in cpus.values()):
        run.notes.append("a process ended inside the window")
        return run
    total_cpu = sum(cpus.values())
    req = window.requests
    run.rps = req / window.seconds
    run.us_per_req = total_cpu / req * 1e6
    if processes:
        workers_cpu = sum(v for k, v in cpus.items() if k != "master")
        run.master_pct = 100 * cpus["master"] / workers_cpu
        run.master_core_pct = 100 * cpus["master"] / window.seconds
    if usage is not None and run.csv:
        run.whole_us_per_req = (usage.ru_utime + usage.ru_stime) / run.csv * 1e6
    others = window.others(0, total_cpu)
    if others > 0.1:
        run.notes.append(f"other processes used {others:.0%} of core 0")
    if run.csv is not None and run.csv != run.nginx_total:
        run.notes.append(f"CSV {run.csv:,} vs nginx {run.nginx_total:,} requests")
    return run


def case_processes(s: Setup) -> list[tuple[CpuRun, CpuRun]]:
    log("processes) horde --processes 2 against one horde process: CPU per request")
    rounds = []
    for i in range(s.rounds):
        log(f" round {i + 1} of {s.rounds}")
        d = s.round_dir("processes", i)
        order = ["single", "processes 2"] if i % 2 == 0 else ["processes 2", "single"]
        got = {mode: run_cpu_case(s, mode, d) for mode in order}
        rounds.append((got["single"], got["processes 2"]))
        single, multi = got["single"], got["processes 2"]
        print(
            f"  [processes] round {i + 1}: single {fmt(single.us_per_req, '.2f')} µs/req at "
            f"{fmt(single.rps, ',.0f')} req/s; "
            f"processes 2 {fmt(multi.us_per_req, '.2f')} µs/req at {fmt(multi.rps, ',.0f')} req/s; "
            f"ratio {fmt(ratio(multi.us_per_req, single.us_per_req), '.3f')}; "
            f"master {fmt(multi.master_pct, '.2f')}% of workers",
            flush=True,
        )
    return rounds


# ---------------------------------------------------------------------------------------------------
# case 2: a swarm of simulated workers against each master


@dataclass
class ScaleRun:
    tool: str
    size: int
    acked: int = 0
    spawned: int = 0
    connect_s: float | None = None
    master_cpu_pct: float | None = None  # of one core, over the window
    swarm_cpu_pct: float | None = None
    missing_window: int = 0  # "setting state to missing" lines in the master's log during the window
    missing_total: int = 0  # ... during the whole run
    missing_workers: int = 0  # distinct workers ever marked missing
    replies_min: int | None = None
    replies_median: float | None = None
    starved: int = 0  # workers that got fewer than window - 3 heartbeat replies in the window
    window_s: float = 0.0
    sent_again: int = 0
    notes: list[str] = field(default_factory=list)


class SwarmProc:
    def __init__(self, port: int, size: int, names: int, logfile: Path) -> None:
        self._err = logfile.open("wb")
        # Not vs.spawn: the swarm takes its commands on stdin.
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, str(SWARM), "--port", str(port), "--workers", str(size),
             "--names", str(names)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err, start_new_session=True,
        )  # fmt: skip
        vs._children.append(self.proc)

    def ask(self, command: str, timeout: float = 15) -> dict | None:
        try:
            self.proc.stdin.write(f"{command}\n".encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def stop(self) -> None:
        self.ask("stop", timeout=5)
        vs.end(self.proc, grace=5)
        self._err.close()


def count_missing(text: str) -> tuple[int, set[str]]:
    lines = [line for line in text.splitlines() if MISSING_LINE in line]
    workers = set()
    for line in lines:
        # "Worker <id> failed to send heartbeat, ...", in horde's log and Locust's alike.
        part = line.split("Worker ", 1)[-1].split(" failed", 1)[0]
        workers.add(part.strip())
    return len(lines), workers


def run_scale(s: Setup, tool: str, size: int, round_dir: Path) -> ScaleRun:
    run = ScaleRun(tool, size)
    port = vs.free_port()
    cmd = s.horde if tool == "horde" else s.locust
    master_log = round_dir / f"scale-{size}-{tool.lower()}-master.log"
    args = [
        *cmd, "-f", str(s.locustfile), "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
        "--headless", "--expect-workers", str(size), "-u", str(size), "-r", str(size), "-t", "3600s",
        "--only-summary", "-H", s.target_url,
    ]  # fmt: skip
    log(f"  {tool} master, {size} simulated workers")
    with master_log.open("wb") as out:
        master = vs.spawn(["taskset", "-c", "1", *args], stdout=out, stderr=subprocess.STDOUT)
    swarm = None
    try:
        time.sleep(1.0)  # the master binds its port
        if master.poll() is not None:
            run.notes.append(f"master exited {master.returncode}: {vs.tail(master_log, 2)}")
            return run
        started = time.monotonic()
        swarm = SwarmProc(port, size, s.names, round_dir / f"scale-{size}-{tool.lower()}-swarm.log")
        deadline = started + s.connect_timeout(size)
        status = None
        while time.monotonic() < deadline:
            status = swarm.ask("status")
            if status and status["acked"] == size and status["spawned"] == size:
                run.connect_s = time.monotonic() - started
                break
            if master.poll() is not None or swarm.proc.poll() is not None:
                break
            time.sleep(0.5)
        if status:
            run.acked, run.spawned = status["acked"], status["spawned"]
        if run.connect_s is None:
            run.notes.append(f"after {time.monotonic() - started:.0f} s only {run.acked} acked, {run.spawned} spawned")
        if master.poll() is not None:
            run.notes.append(f"master exited {master.returncode}: {vs.tail(master_log, 2)}")
            return run
        for name, pid in (("master", master.pid), ("swarm", swarm.proc.pid)):
            note = pinned_note(name, pid, "1" if name == "master" else "0")
            if note:
                run.notes.append(note)
        time.sleep(s.settle)  # every worker's timers under way, the spawn messages handled
        window = Window({"master": master.pid, "swarm": swarm.proc.pid}, None)
        log_start = master_log.stat().st_size
        swarm.ask("mark")
        window.start()
        time.sleep(s.scale_window)
        window.stop()
        marked = swarm.ask("mark")
        log_end = master_log.stat().st_size
        run.window_s = window.seconds
        master_cpu = window.cpu("master")
        if master_cpu is not None:
            run.master_cpu_pct = 100 * master_cpu / window.seconds
        if marked:
            run.swarm_cpu_pct = 100 * marked["window_cpu_s"] / marked["window_s"]
            replies = marked["replies"]
            run.replies_min = min(replies)
            run.replies_median = statistics.median(replies)
            run.starved = sum(1 for r in replies if r < marked["window_s"] - 3)
            run.sent_again = marked["send_again"]
        else:
            run.notes.append("the swarm did not answer")
        text = master_log.read_bytes()
        run.missing_window, _ = count_missing(text[log_start:log_end].decode(errors="replace"))
        run.missing_total, ever = count_missing(text.decode(errors="replace"))
        run.missing_workers = len(ever)
        if run.swarm_cpu_pct is not None and run.swarm_cpu_pct > 90:
            run.notes.append(f"the swarm used {run.swarm_cpu_pct:.0f}% of core 0: it may be the bottleneck")
        if run.sent_again:
            run.notes.append(f"{run.sent_again} sends refused (high-water mark)")
        for core, ours in ((1, master_cpu or 0.0), (0, (window.cpu("swarm") or 0.0))):
            others = window.others(core, ours)
            if others > 0.1:
                run.notes.append(f"other processes used {others:.0%} of core {core}")
        return run
    finally:
        vs.end(master, grace=10)
        if swarm is not None:
            swarm.stop()


def case_scale(s: Setup) -> list[tuple[ScaleRun, ScaleRun]]:
    log(f"scale) simulated workers against a horde and a Locust master: {', '.join(map(str, s.sizes))} workers")
    rounds = []
    for i in range(s.scale_rounds):
        d = s.round_dir("scale", i)
        for j, size in enumerate(s.sizes):
            order = ["Locust", "horde"] if (i + j) % 2 == 0 else ["horde", "Locust"]
            got = {tool: run_scale(s, tool, size, d) for tool in order}
            rounds.append((got["horde"], got["Locust"]))
            h, lo = got["horde"], got["Locust"]
            print(
                f"  [scale] round {i + 1}, {size} workers: horde master {fmt(h.master_cpu_pct, '.1f')}% CPU, "
                f"{h.missing_total} missing; Locust master {fmt(lo.master_cpu_pct, '.1f')}% CPU, "
                f"{lo.missing_total} missing; "
                f"ratio {fmt(ratio(h.master_cpu_pct, lo.master_cpu_pct), '.3f')}",
                flush=True,
            )
    return rounds


# ---------------------------------------------------------------------------------------------------
# case 3: one worker under a real Locust master


@dataclass
class WorkerRun:
    tool: str
    rps: float | None = None  # master CSV requests / -t
    window_rps: float | None = None  # at nginx, over a window of the steady part
    csv: int | None = None
    nginx_total: int | None = None
    worker_cpu_pct: float | None = None  # of core 0, whole run (wait4)
    master_cpu_pct: float | None = None  # Locust master, of core 1, over the window
    notes: list[str] = field(default_factory=list)


def run_worker_case(s: Setup, tool: str, round_dir: Path) -> WorkerRun:
    run = WorkerRun(tool)
    port = vs.free_port()
    prefix = round_dir / f"worker-{tool.lower()}"
    master_log = round_dir / f"worker-{tool.lower()}-master.log"
    worker_log = round_dir / f"worker-{tool.lower()}-worker.log"
    margin = min(5.0, s.duration / 3)
    log(f"  Locust master + one {tool} worker: {USERS} users, -t {s.duration}s")
    before = s.nginx.requests()
    master_args = [
        *s.locust, "-f", str(s.locustfile), "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
        str(port), "--headless", "--expect-workers", "1", "-u", str(USERS), "-r", str(USERS), "-t", f"{s.duration}s",
        "-H", s.nginx.url, "--csv", str(prefix), "--only-summary",
    ]  # fmt: skip
    worker_cmd = s.horde if tool == "horde" else s.locust
    worker_args = [
        *worker_cmd,
        "-f",
        str(s.locustfile),
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(port),
    ]
    with master_log.open("wb") as out:
        master = vs.spawn(["taskset", "-c", "1", *master_args], stdout=out, stderr=subprocess.STDOUT)
    worker = None
    try:
        time.sleep(0.5)
        with worker_log.open("wb") as out:
            worker = vs.spawn(["taskset", "-c", "0", *worker_args], stdout=out, stderr=subprocess.STDOUT)
        started = time.monotonic()
        if wait_for_traffic(s.nginx, before, master):
            time.sleep(2.0)
            for name, pid, core in (("master", master.pid, "1"), ("worker", worker.pid, "0")):
                note = pinned_note(name, pid, core)
                if note:
                    run.notes.append(note)
            length = max(1.0, s.duration - (time.monotonic() - started) - margin)
            window = Window({"master": master.pid, "worker": worker.pid}, s.nginx)
            window.start()
            time.sleep(length)
            window.stop()
            run.window_rps = window.requests / window.seconds
            mcpu = window.cpu("master")
            if mcpu is not None:
                run.master_cpu_pct = 100 * mcpu / window.seconds
            wcpu = window.cpu("worker")
            if wcpu is not None:
                others = window.others(0, wcpu)
                if others > 0.1:
                    run.notes.append(f"other processes used {others:.0%} of core 0")
        else:
            run.notes.append("no traffic")
        mcode, _, mkilled = reap(master, timeout=s.duration + 90)
        wcode, wusage, wkilled = reap(worker, timeout=30)
        wall = time.monotonic() - started
    except BaseException:
        vs.end(master)
        if worker is not None:
            vs.end(worker)
        raise
    run.nginx_total = s.nginx.requests() - before
    run.csv, failures = csv_count(prefix)
    if run.csv is not None:
        run.rps = run.csv / s.duration
    if wusage is not None:
        run.worker_cpu_pct = 100 * (wusage.ru_utime + wusage.ru_stime) / wall
    if mkilled or wkilled:
        run.notes.append(
            "stopped by this script: " + ", ".join(n for n, k in (("master", mkilled), ("worker", wkilled)) if k)
        )
    if mcode not in (0, None) or wcode not in (0, None):
        run.notes.append(f"exit codes master {mcode}, worker {wcode}")
    if failures:
        run.notes.append(f"{failures} failures")
    if run.csv is None:
        run.notes.append(f"no CSV ({vs.tail(master_log, 2)})")
    elif run.csv != run.nginx_total:
        diff = run.nginx_total - run.csv
        why = " (at most the users' requests in flight at the stop)" if 0 < diff <= USERS else ""
        run.notes.append(f"nginx counted {diff:+,} vs the CSV{why}")
    return run


def case_worker(s: Setup) -> list[tuple[WorkerRun, WorkerRun]]:
    log("worker) a Locust master with one horde worker against one with one Locust worker")
    rounds = []
    for i in range(s.rounds):
        log(f" round {i + 1} of {s.rounds}")
        d = s.round_dir("worker", i)
        order = ["Locust", "horde"] if i % 2 == 0 else ["horde", "Locust"]
        got = {tool: run_worker_case(s, tool, d) for tool in order}
        rounds.append((got["horde"], got["Locust"]))
        h, lo = got["horde"], got["Locust"]
        print(
            f"  [worker] round {i + 1}: horde worker {fmt(h.rps, ',.0f')} req/s, "
            f"Locust worker {fmt(lo.rps, ',.0f')} req/s, "
            f"ratio {fmt(ratio(h.rps, lo.rps), '.2f')}",
            flush=True,
        )
    return rounds


# ---------------------------------------------------------------------------------------------------
# output


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def median(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    last = len(header) - 1

    def line(cells: list[str]) -> str:
        parts = [
            c if i == last else (c.ljust(w) if i == 0 else c.rjust(w)) for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def report_processes(rounds: list[tuple[CpuRun, CpuRun]]) -> list[str]:
    rows = []
    ratios, master_pcts, whole = [], [], []
    for i, (single, multi) in enumerate(rounds, 1):
        r = ratio(multi.us_per_req, single.us_per_req)
        w = ratio(multi.whole_us_per_req, single.whole_us_per_req)
        ratios.append(r)
        master_pcts.append(multi.master_pct)
        whole.append(w)
        notes = [f"single: {n}" for n in single.notes] + [f"processes: {n}" for n in multi.notes]
        counts = (
            f"{fmt(single.csv, ',')}/{fmt(single.nginx_total, ',')}; "
            f"{fmt(multi.csv, ',')}/{fmt(multi.nginx_total, ',')}"
        )
        rows.append(
            [str(i), fmt(single.rps, ",.0f"), fmt(single.us_per_req, ".2f"), fmt(multi.rps, ",.0f"),
             fmt(multi.us_per_req, ".2f"), fmt(r, ".3f"), fmt(multi.master_core_pct, ".2f"),
             fmt(multi.master_pct, ".2f"),
             fmt(single.whole_us_per_req, ".2f"), fmt(multi.whole_us_per_req, ".2f"), fmt(w, ".3f"), counts,
             "; ".join(notes)]
        )  # fmt: skip
    header = [
        "round", "1 proc req/s", "1 proc µs CPU/req", "--processes 2 req/s", "--processes 2 µs CPU/req", "ratio",
        "master % of core", "master % of workers", "whole run 1 proc µs/req", "whole run --processes µs/req",
        "whole-run ratio", "CSV/nginx requests (1 proc; --processes)", "notes",
    ]  # fmt: skip
    m_ratio, m_master, m_whole = median(ratios), median(master_pcts), median(whole)
    out = [
        "Case 1 (processes): horde --processes 2 (master + 2 workers) vs one horde process; FastHttpUser, 50 users,",
        "constant(0), GET / on nginx. Every horde process on core 0, nginx on core 1. µs CPU/req = user+sys of all",
        "horde processes (/proc/<pid>/stat) over the window / requests counted at nginx in that window; whole run =",
        "wait4 CPU of the whole run (startup and stop included) / requests in horde's CSV.",
        "",
        table(header, rows),
        "",
        f"median ratio of CPU per request (--processes 2 / 1 process): {fmt(m_ratio, '.3f')}  (target <= 1.1)  "
        f"{verdict(None if m_ratio is None else m_ratio <= 1.1)}",
        f"median master CPU / workers' CPU: {fmt(m_master, '.2f')}%  (target < 3%)  "
        f"{verdict(None if m_master is None else m_master < 3)}",
        f"median whole-run ratio (CSV counts, startup included): {fmt(m_whole, '.3f')}",
    ]
    return out


def report_scale(rounds: list[tuple[ScaleRun, ScaleRun]], sizes: list[int], rounds_n: int) -> list[str]:
    rows = []
    for i, (h, lo) in enumerate(rounds):
        for run in (lo, h):
            rows.append(
                [str(i // len(sizes) + 1), f"{run.size:,}", run.tool, f"{run.acked}/{run.spawned}",
                 fmt(run.connect_s, ".1f"),
                 fmt(run.master_cpu_pct, ".1f"), fmt(run.swarm_cpu_pct, ".1f"), str(run.missing_window),
                 f"{run.missing_total} ({run.missing_workers})",
                 f"{fmt(run.replies_min, 'd')}/{fmt(run.replies_median, '.0f')}/{run.window_s:.0f}", str(run.starved),
                 fmt(ratio(h.master_cpu_pct, lo.master_cpu_pct), ".3f") if run is h else "", "; ".join(run.notes)]
            )  # fmt: skip
    header = [
        "round", "workers", "master", "acked/spawned", "connect s", "master CPU %", "swarm CPU %",
        "missing (window)", "missing (run; workers)", "replies min/median/window s", "starved", "horde/Locust CPU",
        "notes",
    ]  # fmt: skip
    out = [
        "Case 2 (scale): simulated workers (one process on core 0; a heartbeat every 1 s and a 100-name stats report",
        "every 3 s each, timers spread) against a master on core 1 (headless, --expect-workers N, -u N). Master CPU =",
        "user+sys of the master process over the window, in % of one core. missing = 'failed to send heartbeat,",
        "setting state to missing' lines in the master's log; starved = workers that got fewer heartbeat replies",
        f"than window - 3 during the window. {rounds_n} round(s) per size.",
        "",
        table(header, rows),
        "",
    ]
    all_ok = True
    for size in sizes:
        pairs = [(h, lo) for h, lo in rounds if h.size == size]
        m = median([ratio(h.master_cpu_pct, lo.master_cpu_pct) for h, lo in pairs])
        ok = None if m is None else m <= 0.2
        all_ok = all_ok and bool(ok)
        mh, ml = median([h.master_cpu_pct for h, _ in pairs]), median([lo.master_cpu_pct for _, lo in pairs])
        out.append(
            f"{size:,} workers: median horde/Locust master CPU {fmt(m, '.3f')}  (target <= 0.2)  {verdict(ok)}  "
            f"(medians: horde {fmt(mh, '.1f')}%, Locust {fmt(ml, '.1f')}% of a core); "
            f"missing/starved in all rounds: horde {sum(h.missing_total for h, _ in pairs)}/"
            f"{sum(h.starved for h, _ in pairs)}, "
            f"Locust {sum(lo.missing_total for _, lo in pairs)}/{sum(lo.starved for _, lo in pairs)}"
        )
    if 1000 in sizes:
        pairs = [h for h, _ in rounds if h.size == 1000]
        lost = sum(h.missing_total + h.starved + (h.size - h.acked) for h in pairs)
        out.append(f"horde loses no worker at 1,000 (missing + starved + never acked = {lost})  {verdict(lost == 0)}")
    out.append(f"horde master <= a fifth of Locust's at every size: {verdict(all_ok)}")
    return out


def report_worker(rounds: list[tuple[WorkerRun, WorkerRun]]) -> list[str]:
    rows, ratios, wratios = [], [], []
    for i, (h, lo) in enumerate(rounds, 1):
        r, wr = ratio(h.rps, lo.rps), ratio(h.window_rps, lo.window_rps)
        ratios.append(r)
        wratios.append(wr)
        notes = [f"Locust worker: {n}" for n in lo.notes] + [f"horde worker: {n}" for n in h.notes]
        rows.append(
            [str(i), fmt(lo.rps, ",.0f"), fmt(h.rps, ",.0f"), fmt(r, ".2f"), fmt(lo.window_rps, ",.0f"),
             fmt(h.window_rps, ",.0f"), fmt(wr, ".2f"), f"{fmt(lo.csv, ',')}/{fmt(lo.nginx_total, ',')}",
             f"{fmt(h.csv, ',')}/{fmt(h.nginx_total, ',')}", fmt(lo.worker_cpu_pct, ".0f"),
             fmt(h.worker_cpu_pct, ".0f"),
             f"{fmt(lo.master_cpu_pct, '.1f')}/{fmt(h.master_cpu_pct, '.1f')}", "; ".join(notes)]
        )  # fmt: skip
    header = [
        "round", "Locust worker req/s", "horde worker req/s", "ratio", "Locust (nginx window)", "horde (nginx window)",
        "window ratio", "Locust CSV/nginx", "horde CSV/nginx", "Locust worker CPU %", "horde worker CPU %",
        "master CPU % (L/h)", "notes",
    ]  # fmt: skip
    m, mw = median(ratios), median(wratios)
    return [
        "Case 3 (worker): a real Locust 2.47 master (headless, --expect-workers 1, -u 50) with one worker; the worker",
        "on core 0, the Locust master and nginx on core 1. req/s = the master CSV's Aggregated Request Count / -t;",
        "nginx window = requests counted at nginx / seconds over the steady part; CSV/nginx = requests in the",
        "master's CSV / requests nginx counted during the whole run.",
        "",
        table(header, rows),
        "",
        f"median ratio horde worker / Locust worker requests/s: {fmt(m, '.2f')}  (target >= 10)  "
        f"{verdict(None if m is None else m >= 10)}",
        f"median ratio over the nginx windows: {fmt(mw, '.2f')}",
    ]


# ---------------------------------------------------------------------------------------------------


@dataclass
class Setup:
    workdir: Path
    horde: list[str]
    locust: list[str]
    locustfile: Path
    rounds: int
    window: float
    duration: int
    sizes: list[int]
    scale_window: float
    scale_rounds: int
    settle: float
    names: int
    nginx: Nginx | None = None

    @property
    def target_url(self) -> str:
        # The masters of the scale case send it in their spawn messages; nobody requests it.
        return self.nginx.url if self.nginx else "http://127.0.0.1:9"

    def connect_timeout(self, size: int) -> float:
        return 30 + size / 10

    def round_dir(self, case: str, i: int) -> Path:
        d = self.workdir / f"{case}-round{i + 1}"
        d.mkdir(exist_ok=True)
        return d


CASES = {"processes": "1", "scale": "2", "worker": "3"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="processes,scale,worker", help="cases: processes,scale,worker (or 1,2,3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the processes and worker cases (default 3)")
    parser.add_argument("--window", type=float, default=8, help="processes case: seconds measured per run (default 8)")
    parser.add_argument("--duration", type=int, default=15, help="worker case: -t of each run in seconds (default 15)")
    parser.add_argument("--sizes", default="50,200,1000", help="scale case: simulated workers (default 50,200,1000)")
    parser.add_argument("--scale-window", type=float, default=15, help="scale case: seconds measured (default 15)")
    parser.add_argument("--scale-rounds", type=int, default=3, help="scale case: rounds per size (default 3)")
    parser.add_argument("--names", type=int, default=100, help="scale case: entries per stats report (default 100)")
    parser.add_argument("--quick", action="store_true", help="a ~2-minute smoke run: 1 round, short windows")
    parser.add_argument("--locust-venv", type=Path, default=ROOT / ".venv-locust")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with the logs and CSVs")
    args = parser.parse_args()

    only = set()
    for name in (c.strip() for c in args.only.split(",") if c.strip()):
        key = next((k for k, v in CASES.items() if name in (k, v)), None)
        if key is None:
            parser.error(f"unknown case {name!r}: use processes, scale, worker (or 1, 2, 3)")
        only.add(key)
    if args.quick:
        args.rounds, args.window, args.duration = 1, 4, 8
        args.scale_window, args.scale_rounds = 6, 1
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    if args.rounds < 1 or args.scale_rounds < 1 or not sizes:
        parser.error("--rounds, --scale-rounds and --sizes need at least one")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if "scale" in only and 3 * max(sizes) + 200 > hard:
        raise SystemExit(f"{max(sizes)} simulated workers need more file descriptors than the limit {hard}")
    signal.signal(signal.SIGTERM, vs._interrupt)
    signal.signal(signal.SIGINT, vs._interrupt)

    command = "python benches/distributed.py " + " ".join(sys.argv[1:])
    print(f"command: {command.strip()}", flush=True)
    print(f"machine: {vs.machine_line()}; {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    started = time.monotonic()
    vs.ensure_debian_tools()
    locust = [str(vs.ensure_locust(args.locust_venv))]
    horde = vs.horde_command()
    workdir = Path(tempfile.mkdtemp(prefix="horde-distributed-"))
    lf = workdir / "locustfile.py"
    lf.write_text(LOCUSTFILE.lstrip())
    s = Setup(
        workdir, horde, locust, lf, args.rounds, args.window, args.duration, sizes, args.scale_window,
        args.scale_rounds, settle=3.0 if args.quick else 5.0, names=args.names,
    )  # fmt: skip
    sections: list[list[str]] = []
    try:
        if only & {"processes", "worker"}:
            s.nginx = Nginx(workdir)
        if "processes" in only:
            sections.append(report_processes(case_processes(s)))
        if "scale" in only:
            sections.append(report_scale(case_scale(s), sizes, args.scale_rounds))
        if "worker" in only:
            sections.append(report_worker(case_worker(s)))
    except KeyboardInterrupt:
        log("interrupted: stopping everything this script started")
        vs.end_all()
        return 130
    finally:
        vs.end_all()
        if args.keep:
            log(f"logs and CSVs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"command: {command.strip()}")
    print(f"machine: {vs.machine_line()}")
    for lines in sections:
        print()
        print("\n".join(lines))
    print()
    print(f"total time {(time.monotonic() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
