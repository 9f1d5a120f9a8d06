#!/usr/bin/env python3
"""horde's open workload model (--arrival-rate, issue 13): corrected latency next to oha's, rate accuracy on
one core, and exact counts of dropped iterations.

    python benches/open_model.py [--quick] [--rounds N] [--only stall,rate,dropped] [--users N]
                                 [--stall-path PATH] [--oha PATH] [--markdown FILE] [--keep]

The default takes about 6 minutes, --quick (one round of short runs) about 2. The target is horde's
demo server (horde._core.DemoServer) in a process of its own; horde runs as horde.run() in a child
process, so that its per-request samples can be read, and oha as itself. Every process is pinned
(taskset). oha is built once with `cargo install oha --locked` into ~/.cache/horde-bench/oha (niced,
one job) unless --oha names one.

  stall    The target freezes every response for 1 s once every 5 s (DemoServer(stall=(5, 1)), the
           demo's --stall 1/5) on core 1. On core 0, horde at 200 iterations/s with a small pool
           (-u 5 --max-users 5 --arrival-max-wait 2) and oha -q 200 -c 5 --latency-correction, 20 s
           each, alternately first, each started 3.25 s into a stall period so that every run holds four
           whole freezes (horde's set-up time varies: its run is repeated once when its first arrival
           falls outside 1.6-4.9 s into a period). In a freeze the arrivals wait for a free user
           (horde) or connection (oha): the uncorrected service times stay a few ms, the corrected ones
           show the freeze. /delay/5 by default: on / the p50 is a fraction of a millisecond, where
           the two clients' own overheads and ~1 ms timers, not the correction, decide a 10%
           difference.
  rate     horde alone on core 1 (the target, one thread, on core 0) at 1,000, 10,000 and 40,000
           arrivals/s, 10 s each, GET /. achieved/s = requests sent per second from the first send
           to the last, where a send is when an iteration's (only) request was written: start_us +
           latency_us - service_us (= its end - its service time); the gaps between successive
           sends against 1/R; lateness = send - scheduled start (latency_us - service_us). The
           samples' times are wall-clock, converted to the monotonic clock that the schedule keeps
           (a VM's wall clock may be slewed: a run notes it when the two differ by over 0.1%).
  dropped  10 users (at most 10) on /delay/100 at 200 arrivals/s for 10 s: the pool starts about 100
           iterations/s, so about 100/s are dropped; with --arrival-max-wait 0 at once, with the
           default 1 s after waiting. started + dropped must equal scheduled exactly (arrivals still
           waiting when the run stops count as dropped).

Targets (PASS/FAIL; exit status 1 if one is missed): the median over the rounds of horde/oha within 10%
at p50, p90 and p99 of the corrected times; achieved rate within 1% of every rate; about 100 dropped/s
(within 10%); started + dropped == scheduled in every horde run (Result.meta["arrivals"]; when it is off,
the arrivals left in horde's backlog after the run are shown beside it). The machine is shared: each run
notes the share of its core that other processes took, and only numbers of the same run compare.
Results: printed, and as Markdown with the command line to /tmp/open_model_results.md (--markdown).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_locust as vs  # noqa: E402  (its process helpers)

HERE = Path(__file__).resolve()
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "horde-bench"
OHA_ROOT = CACHE / "oha"
MARKDOWN = Path("/tmp/open_model_results.md")

STALL_PERIOD = 5.0
STALL_FREEZE = 1.0
STALL_PHASE = 3.25  # each run starts here in a stall period: its freezes fall 1.75, 6.75, ... s in
# A run whose first arrival falls outside these bounds (s into a stall period) would cut a freeze or
# its backlog at either end; horde's is run again once.
STALL_PHASE_OK = (1.6, 4.9)
STALL_RATE = 200
STALL_MAX_WAIT = 2.0  # longer than a freeze: arrivals wait for a user, none is dropped

RATES = (1_000, 10_000, 40_000)

DROP_USERS = 10
DROP_RATE = 200
DROP_PATH = "/delay/100"
DROP_EXPECTED = 100.0  # dropped/s: 10 users each start about 10 iterations/s of 100 ms
DROP_WAITS = (0.0, 1.0)  # --arrival-max-wait: dropped at once (k6's rule), and horde's default

QS = ("p50", "p90", "p99")
Q = {"p50": 0.5, "p90": 0.9, "p99": 0.99}

log = vs.log


# ---------------------------------------------------------------------------------------------------
# the children: the target, and horde.run


def child_target(spec: dict) -> int:
    """A demo target until stdin closes; each line "count" on stdin is answered with its count."""
    from horde._core import DemoServer

    stall = (STALL_PERIOD, STALL_FREEZE) if spec["stall"] else None
    before = time.time()
    server = DemoServer(port=0, threads=1, stall=stall)
    after = time.time()
    # The stall counts from the server's start, somewhere inside the constructor.
    print(json.dumps({"url": server.url, "t0": (before + after) / 2}), flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            print(server.requests_served, flush=True)
    server.stop()
    return 0


def _pct(values, q: float) -> float | None:
    import numpy as np

    return float(np.percentile(values, q * 100)) if len(values) else None


def proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system, every thread) a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def child_horde(spec: dict) -> int:
    """One horde.run at an arrival rate; its figures go as JSON to spec["out"]."""
    import numpy as np

    import horde
    from horde import FastHttpUser, task

    path = spec["path"]

    class OpenModel(FastHttpUser):
        @task
        def get(self) -> None:
            self.client.get(path)

    if spec.get("t0") is not None:
        # The first arrival STALL_PHASE s into a stall period: horde.run takes `lead` s to get there
        # (the pool's start). Reckoned here, after the imports, whose time varies.
        lead = spec["lead"]
        time.sleep(max(0.0, next_phase(spec["t0"], lead + 0.2) - lead - time.time()))
    called = time.time()
    epoch0 = time.time()
    usage0, wall0, target0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic(), proc_cpu(spec["target_pid"])
    result = horde.run(
        OpenModel,
        host=spec["host"],
        users=spec["users"],
        max_users=spec["max_users"],
        run_time=spec["duration"],
        arrival_rate=spec["rate"],
        arrival_max_wait=spec["max_wait"],
        arrival_distribution="even",
        progress=False,
    )
    usage1, wall1, target1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic(), proc_cpu(spec["target_pid"])
    # The samples' times are wall-clock (the engine stamps each end with the system time), the
    # schedule runs on the monotonic clock, and a VM's wall clock can be slewed against it (by 0.5% on
    # the machine this was written on): spans from the samples are turned into monotonic seconds.
    wall_per_mono = (time.time() - epoch0) / (wall1 - wall0)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    s = result.samples
    out: dict = {
        "open_model": bool(s.open_model),
        "arrivals": result.meta.get("arrivals", {}),
        "completed": len(s),
        "failures": int((~s.ok).sum()),
        "cpu_share": cpu / (wall1 - wall0),
        "wall_per_mono": wall_per_mono,
        "target_cpu_share": None if target0 is None or target1 is None else (target1 - target0) / (wall1 - wall0),
        "corrected": {k: result.quantile(q) for k, q in Q.items()},
        "service": {k: result.service_quantile(q) for k, q in Q.items()},
    }
    # Not in the Result: arrivals still waiting for a user after the run, which the runner's stop
    # should have counted as dropped (a private attribute, read to explain a count that is off).
    arrivals = getattr(result.environment.runner, "arrivals", None)
    out["waiting"] = len(arrivals._backlog) if arrivals is not None else None
    if len(s) > 1 and s.open_model:
        # One request per iteration: every sample is an iteration's first request.
        start = s.start_us.astype(np.int64)  # the scheduled start, or the write if that was earlier
        lateness = s.latency_us.astype(np.int64) - s.service_us.astype(np.int64)
        sends = np.sort(start + lateness)  # when each was written
        gaps = np.diff(sends) / 1000.0 / wall_per_mono
        span_s = (sends[-1] - sends[0]) / 1e6 / wall_per_mono
        out.update(
            startup_s=s.origin + start.min() / 1e6 - called,
            achieved=(len(sends) - 1) / span_s if span_s > 0 else None,
            gaps_ms={"p50": _pct(gaps, 0.5), "p99": _pct(gaps, 0.99), "max": float(gaps.max())},
            lateness_ms={"p50": _pct(lateness / 1000.0, 0.5), "p99": _pct(lateness / 1000.0, 0.99)},
        )
        if spec.get("t0") is not None:
            out["phase_s"] = (s.origin + start.min() / 1e6 - spec["t0"]) % STALL_PERIOD
    Path(spec["out"]).write_text(json.dumps(out))
    return 0


# ---------------------------------------------------------------------------------------------------
# processes


def core_busy(core: int) -> float | None:
    """Seconds a core has spent running anything (user, nice, system, or stolen by the hypervisor)."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith(f"cpu{core} "):
                user, nice, system, _idle, _iowait, _irq, _softirq, steal = map(int, line.split()[1:9])
                return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    return None


def run_pinned(cmd: list[str], core: int, logfile: Path, timeout: float) -> tuple[int, float | None]:
    """Runs cmd on one core; its exit code and the share of that core other processes took meanwhile."""
    busy0 = core_busy(core)
    with logfile.open("wb") as out:
        proc = vs.spawn(["taskset", "-c", str(core), *cmd], stdout=out, stderr=subprocess.STDOUT)
    wall0 = time.monotonic()
    try:
        # wait4, not Popen.wait: it gives the child's CPU time, to tell it apart from the others'.
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > wall0 + timeout:
                log(f"  {Path(cmd[0]).name} still running after {timeout:.0f} s: killing it")
                os.killpg(proc.pid, signal.SIGKILL)
                timeout = math.inf
            time.sleep(0.05)
    except BaseException:
        vs.end(proc, grace=3.0)
        raise
    wall = time.monotonic() - wall0
    busy1 = core_busy(core)
    proc.returncode = os.waitstatus_to_exitcode(status)
    vs._children.remove(proc)
    if busy0 is None or busy1 is None or wall <= 0:
        return proc.returncode, None
    return proc.returncode, max(0.0, (busy1 - busy0 - usage.ru_utime - usage.ru_stime) / wall)


def next_phase(t0: float, lead: float) -> float:
    """The next epoch time, at least `lead` s from now, STALL_PHASE s into a stall period that began at t0."""
    k = math.ceil((time.time() + lead - t0 - STALL_PHASE) / STALL_PERIOD)
    return t0 + k * STALL_PERIOD + STALL_PHASE


class Target:
    """A demo target in a process of its own on one core; served() reads its request counter."""

    def __init__(self, workdir: Path, name: str, core: int, stall: bool = False) -> None:
        self.log = (workdir / f"target-{name}.log").open("wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(core), sys.executable, str(HERE), "--child", "target", json.dumps({"stall": stall})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            start_new_session=True,
            text=True,
        )
        vs._children.append(self.proc)
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the demo target did not start (see {self.log.name})")
        info = json.loads(line)
        self.url, self.t0 = info["url"], info["t0"]

    def served(self) -> int:
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def stop(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        vs.end(self.proc)
        self.log.close()


def ensure_oha(explicit: Path | None) -> Path:
    """oha from --oha, or built once into the cache (niced, one job) and reused."""
    if explicit is not None:
        return explicit
    binary = OHA_ROOT / "bin" / "oha"
    if binary.exists():
        return binary
    if shutil.which("cargo") is None:
        raise SystemExit("oha is not built and cargo is not found: install Rust, or give --oha PATH")
    CACHE.mkdir(parents=True, exist_ok=True)
    build_log = CACHE / "oha-build.log"
    log(f"building oha into {OHA_ROOT} (once; several minutes, niced, one job; log {build_log})...")
    env = {**os.environ, "CARGO_BUILD_JOBS": "1", "CARGO_TARGET_DIR": str(CACHE / "oha-build")}
    # --locked: oha's newest dependencies need a newer rustc than the machine's.
    cmd = ["nice", "-n", "10", "cargo", "install", "oha", "--locked", "--root", str(OHA_ROOT)]
    with build_log.open("wb") as out:
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0 or not binary.exists():
        raise SystemExit(f"cargo install oha failed: {vs.tail(build_log, 3)}")
    return binary


def oha_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    return out.stdout.strip() or "oha (version unknown)"


# ---------------------------------------------------------------------------------------------------
# one run of each tool


def run_horde(target: Target, core: int, workdir: Path, name: str, spec: dict) -> dict:
    """horde.run in a child on `core`; its figures, the target's count and notes."""
    out = workdir / f"{name}.json"
    spec = {**spec, "host": target.url, "target_pid": target.proc.pid, "out": str(out)}
    before = target.served()
    cmd = [sys.executable, str(HERE), "--child", "horde", json.dumps(spec)]
    code, others = run_pinned(cmd, core, workdir / f"{name}.log", spec["duration"] + 120)
    time.sleep(0.3)  # the target answers what was in flight when the run stopped
    run: dict = {"served": target.served() - before, "others": others, "notes": []}
    try:
        run.update(json.loads(out.read_text()))
    except (OSError, ValueError) as exc:
        run["notes"].append(f"no result (exit {code}: {exc}; {vs.tail(workdir / f'{name}.log', 2)})")
        return run
    a = run["arrivals"]
    run["diff"] = a["started"] + a["dropped"] - a["scheduled"] if a else None
    if run["diff"]:
        run["notes"].append(f"started + dropped - scheduled = {run['diff']} ({run['waiting']} left waiting)")
    if abs(run["wall_per_mono"] - 1) > 0.001:
        run["notes"].append(f"the wall clock ran {run['wall_per_mono'] - 1:+.2%} against the monotonic one")
    if not run["open_model"]:
        run["notes"].append("samples.open_model is False: the extension predates samples.service_us")
    if run["failures"]:
        run["notes"].append(f"{run['failures']:,} failed requests")
    note_noise(run, core)
    return run


def run_oha(oha: Path, target: Target, workdir: Path, name: str, path: str, duration: int, connections: int) -> dict:
    """oha -q STALL_RATE --latency-correction on core 0, started STALL_PHASE s into a stall period."""
    import numpy as np

    out, db = workdir / f"{name}.json", workdir / f"{name}.sqlite"
    cmd = [str(oha), "-z", f"{duration}s", "-q", str(STALL_RATE), "-c", str(connections), "--latency-correction"]
    cmd += ["--no-tui", "--output-format", "json", "-o", str(out), "--db-url", str(db), target.url + path]
    # oha sends its first request within milliseconds of its launch.
    time.sleep(max(0.0, next_phase(target.t0, 0.5) - 0.01 - time.time()))
    code, others = run_pinned(cmd, 0, workdir / f"{name}.log", duration + 60)
    run: dict = {"others": others, "notes": []}
    try:
        doc = json.loads(out.read_text())
        with sqlite3.connect(db) as conn:
            rows = np.array(conn.execute("SELECT start, end FROM oha").fetchall(), float)
    except (OSError, ValueError, sqlite3.Error) as exc:
        run["notes"].append(f"no result (exit {code}: {exc}; {vs.tail(workdir / f'{name}.log', 2)})")
        return run
    pct = doc["latencyPercentiles"]  # with --latency-correction: from each request's tick
    run["corrected"] = {k: pct[k] * 1000 for k in QS}
    # Its --db-url rows (successes) have the uncorrected times: end - start.
    service = (rows[:, 1] - rows[:, 0]) * 1000 if len(rows) else rows
    run["service"] = {k: _pct(service, q) for k, q in Q.items()}
    run["completed"] = len(rows)
    # At -z oha cancels every connection's task, busy or idle, as "aborted due to deadline".
    errors = {k: v for k, v in doc.get("errorDistribution", {}).items() if "deadline" not in k}
    if errors:
        run["notes"].append(f"errors: {errors}")
    note_noise(run, 0)
    return run


def note_noise(run: dict, core: int) -> None:
    if run["others"] is not None and run["others"] > 0.1:
        run["notes"].append(f"other processes used {run['others']:.0%} of core {core}")


# ---------------------------------------------------------------------------------------------------
# the cases


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or not b else a / b


def median(values: list) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def triple(d: dict | None, spec: str = ".1f") -> str:
    return "/".join(fmt((d or {}).get(k), spec) for k in QS)


def case_stall(oha: Path, workdir: Path, rounds: int, duration: int, users: int, path: str) -> list[dict]:
    target = Target(workdir, "stall", core=1, stall=True)
    lead = 1.0  # horde.run's time to its first arrival (its set-up), learnt from each run
    out = []
    try:
        for i in range(1, rounds + 1):
            order = ("horde", "oha") if i % 2 else ("oha", "horde")
            log(f"[stall] round {i} of {rounds}: {order[0]} then {order[1]}, {duration} s each...")
            r: dict = {"round": i, "first": order[0]}
            for tool in order:
                if tool == "oha":
                    r["oha"] = run_oha(oha, target, workdir, f"stall{i}-oha", path, duration, users)
                    continue
                spec = {
                    "path": path,
                    "rate": STALL_RATE,
                    "users": users,
                    "max_users": users,
                    "max_wait": STALL_MAX_WAIT,
                    "duration": duration,
                    "t0": target.t0,
                    "lead": lead,
                }
                for attempt in (1, 2):
                    r["horde"] = run = run_horde(target, 0, workdir, f"stall{i}-horde{attempt}", spec)
                    # horde.run's set-up time varies with the machine's load: learn it again.
                    lead = spec["lead"] = run.get("startup_s", lead)
                    phase = run.get("phase_s")
                    if phase is None or STALL_PHASE_OK[0] <= phase <= STALL_PHASE_OK[1]:
                        break
                    run["notes"].append(f"first arrival {phase:.2f} s into a stall period: a freeze is cut")
                    log(f"  horde's first arrival came {phase:.2f} s into a stall period: running it again")
            h, o = r["horde"], r["oha"]
            r["ratio"] = {k: ratio(h.get("corrected", {}).get(k), o.get("corrected", {}).get(k)) for k in QS}
            out.append(r)
            print(
                f"[stall] round {i} ({order[0]} first): horde corrected p50/p90/p99 {triple(h.get('corrected'), '.2f')}"
                f" ms, uncorrected {triple(h.get('service'), '.2f')} ms; oha corrected "
                f"{triple(o.get('corrected'), '.2f')} ms, uncorrected {triple(o.get('service'), '.2f')} ms; "
                f"horde/oha {triple(r['ratio'], '.3f')}; horde arrivals {h.get('arrivals')}, "
                f"lateness p99 {fmt(h.get('lateness_ms', {}).get('p99'), '.1f')} ms, first arrival "
                f"{fmt(h.get('phase_s'), '.2f')} s into a stall period"
                + "".join(f"; horde: {n}" for n in h["notes"])
                + "".join(f"; oha: {n}" for n in o["notes"]),
                flush=True,
            )
    finally:
        target.stop()
    return out


def case_rate(workdir: Path, rounds: int, duration: int) -> list[dict]:
    target = Target(workdir, "rate", core=0)
    out = []
    try:
        for i in range(1, rounds + 1):
            for rate in RATES:
                log(f"[rate {rate:,}/s] round {i} of {rounds}: {duration} s...")
                users = max(50, rate // 100)  # 50, 100, 400: a response takes well under 1 ms
                spec = {
                    "path": "/",
                    "rate": rate,
                    "users": users,
                    "max_users": 2 * users,
                    "max_wait": 1.0,
                    "duration": duration,
                }
                run = run_horde(target, 1, workdir, f"rate{i}-{rate}", spec)
                run.update(round=i, rate=rate)
                out.append(run)
                a, g, late = run.get("arrivals", {}), run.get("gaps_ms", {}), run.get("lateness_ms", {})
                print(
                    f"[rate {rate:,}/s] round {i}: achieved {fmt(run.get('achieved'), ',.1f')}/s "
                    f"({fmt(ratio(run.get('achieved'), rate), '.2%')}); scheduled {fmt(a.get('scheduled'), ',')}, "
                    f"started {fmt(a.get('started'), ',')}, dropped {fmt(a.get('dropped'), ',')}, completed "
                    f"{fmt(run.get('completed'), ',')}, target counted {fmt(run['served'], ',')}; gaps p50/p99/max "
                    f"{fmt(g.get('p50'), '.3f')}/{fmt(g.get('p99'), '.3f')}/{fmt(g.get('max'), '.2f')} ms (1/R "
                    f"{1000 / rate:.3f}); lateness p50/p99 {fmt(late.get('p50'), '.2f')}/{fmt(late.get('p99'), '.2f')}"
                    f" ms; CPU: horde {fmt(run.get('cpu_share'), '.0%')} of core 1, target "
                    f"{fmt(run.get('target_cpu_share'), '.0%')} of core 0" + "".join(f"; {n}" for n in run["notes"]),
                    flush=True,
                )
                time.sleep(1)  # let the closed connections drain
    finally:
        target.stop()
    return out


def case_dropped(workdir: Path, rounds: int, duration: int) -> list[dict]:
    target = Target(workdir, "dropped", core=1)
    out = []
    try:
        for i in range(1, rounds + 1):
            for wait in DROP_WAITS:
                log(f"[dropped, max wait {wait:g} s] round {i} of {rounds}: {duration} s...")
                spec = {
                    "path": DROP_PATH,
                    "rate": DROP_RATE,
                    "users": DROP_USERS,
                    "max_users": DROP_USERS,
                    "max_wait": wait,
                    "duration": duration,
                }
                run = run_horde(target, 0, workdir, f"dropped{i}-wait{wait:g}", spec)
                a = run.get("arrivals") or {}
                run.update(
                    round=i,
                    wait=wait,
                    # Even arrivals: the scheduled ones span scheduled/R seconds.
                    per_s=a["dropped"] / (a["scheduled"] / DROP_RATE) if a.get("scheduled") else None,
                )
                out.append(run)
                print(
                    f"[dropped, max wait {wait:g} s] round {i}: scheduled {fmt(a.get('scheduled'), ',')}, started "
                    f"{fmt(a.get('started'), ',')}, dropped {fmt(a.get('dropped'), ',')} "
                    f"({fmt(run['per_s'], '.1f')}/s); started + dropped - scheduled = {fmt(run.get('diff'), 'd')}; "
                    f"completed {fmt(run.get('completed'), ',')}, target counted {fmt(run['served'], ',')}"
                    + "".join(f"; {n}" for n in run["notes"]),
                    flush=True,
                )
    finally:
        target.stop()
    return out


# ---------------------------------------------------------------------------------------------------
# the summary


def exactness(run: dict) -> str:
    return f"{fmt(run.get('diff'), 'd')} ({fmt(run.get('waiting'), 'd')})"


def summarise_stall(rounds: list[dict], verdicts: list) -> list[list[str]]:
    header = [
        "round",
        "first",
        "horde corrected p50/p90/p99 ms",
        "horde uncorrected p50/p90/p99 ms",
        "oha corrected p50/p90/p99 ms",
        "oha uncorrected p50/p90/p99 ms",
        "horde/oha p50/p90/p99",
        "others on core 0 (horde/oha)",
    ]
    rows = [
        [
            str(r["round"]),
            r["first"],
            triple(r["horde"].get("corrected"), ".2f"),
            triple(r["horde"].get("service"), ".2f"),
            triple(r["oha"].get("corrected"), ".2f"),
            triple(r["oha"].get("service"), ".2f"),
            triple(r["ratio"], ".3f"),
            f"{fmt(r['horde']['others'], '.0%')}/{fmt(r['oha']['others'], '.0%')}",
        ]
        for r in rounds
    ]
    medians = {k: median([r["ratio"][k] for r in rounds]) for k in QS}
    rows.append(["median", "", "", "", "", "", triple(medians, ".3f"), ""])
    for k in QS:
        m = medians[k]
        verdicts.append(
            (
                f"stall: median horde/oha of the corrected {k} {fmt(m, '.3f')} (target 0.90-1.10)",
                m is not None and abs(m - 1) <= 0.1,
            )
        )
    return [header, *rows]


def summarise_rate(runs: list[dict], verdicts: list) -> list[list[str]]:
    header = [
        "rate/s",
        "round",
        "achieved/s",
        "achieved/rate",
        "scheduled/started/dropped",
        "started+dropped-scheduled (left waiting)",
        "gap p50/p99/max ms (1/R)",
        "lateness p50/p99 ms",
        "CPU horde / target",
        "others on core 1",
    ]
    rows = []
    for run in runs:
        a, g, late = run.get("arrivals", {}), run.get("gaps_ms", {}), run.get("lateness_ms", {})
        rows.append(
            [
                f"{run['rate']:,}",
                str(run["round"]),
                fmt(run.get("achieved"), ",.1f"),
                fmt(ratio(run.get("achieved"), run["rate"]), ".2%"),
                "/".join(fmt(a.get(k), ",") for k in ("scheduled", "started", "dropped")),
                exactness(run),
                f"{fmt(g.get('p50'), '.3f')}/{fmt(g.get('p99'), '.3f')}/{fmt(g.get('max'), '.2f')} "
                f"({1000 / run['rate']:.3f})",
                f"{fmt(late.get('p50'), '.2f')}/{fmt(late.get('p99'), '.2f')}",
                f"{fmt(run.get('cpu_share'), '.0%')} / {fmt(run.get('target_cpu_share'), '.0%')}",
                fmt(run["others"], ".0%"),
            ]
        )
    for rate in RATES:
        m = median([ratio(r.get("achieved"), rate) for r in runs if r["rate"] == rate])
        verdicts.append(
            (
                f"rate {rate:,}/s: median achieved/rate {fmt(m, '.2%')} (target 99-101%)",
                m is not None and abs(m - 1) <= 0.01,
            )
        )
    return [header, *rows]


def summarise_dropped(runs: list[dict], verdicts: list) -> list[list[str]]:
    header = [
        "round",
        "max wait",
        "scheduled",
        "started",
        "dropped",
        "dropped/s",
        "started+dropped-scheduled (left waiting)",
        "completed / target count",
    ]
    rows = []
    for run in runs:
        a = run.get("arrivals") or {}
        rows.append(
            [
                str(run["round"]),
                f"{run['wait']:g} s",
                fmt(a.get("scheduled"), ","),
                fmt(a.get("started"), ","),
                fmt(a.get("dropped"), ","),
                fmt(run["per_s"], ".1f"),
                exactness(run),
                f"{fmt(run.get('completed'), ',')} / {fmt(run['served'], ',')}",
            ]
        )
    exact = [run.get("diff") == 0 for run in runs]
    verdicts.append((f"dropped: started + dropped == scheduled in {sum(exact)}/{len(exact)} runs", all(exact)))
    for wait in DROP_WAITS:
        m = median([run["per_s"] for run in runs if run["wait"] == wait])
        ok = m is not None and abs(m - DROP_EXPECTED) <= 0.1 * DROP_EXPECTED
        verdicts.append((f"dropped, max wait {wait:g} s: median {fmt(m, '.1f')}/s (target 90-110/s)", ok))
    return [header, *rows]


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(rows[0]), line(["-" * w for w in widths]), *(line(r) for r in rows[1:])])


def md_table(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows[1:]])


# ---------------------------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        return {"target": child_target, "horde": child_horde}[sys.argv[2]](json.loads(sys.argv[3]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: one round of short runs")
    parser.add_argument("--rounds", type=int, help="rounds of every case (default 3; 1 with --quick)")
    parser.add_argument("--only", default="stall,rate,dropped", help="cases to run, e.g. stall,rate (default all)")
    parser.add_argument("--users", type=int, default=5, help="stall: horde's users and oha's connections (5)")
    parser.add_argument("--stall-path", default="/delay/5", help="stall: the route (default /delay/5)")
    parser.add_argument("--oha", type=Path, help=f"an oha binary (default: built once into {OHA_ROOT})")
    parser.add_argument("--markdown", type=Path, default=MARKDOWN, help=f"the results as Markdown ({MARKDOWN})")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with the logs and raw results")
    args = parser.parse_args()
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    if not only or set(only) - {"stall", "rate", "dropped"}:
        parser.error(f"--only takes a comma list of stall, rate, dropped (got {args.only!r})")
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if rounds < 1 or args.users < 1:
        parser.error("--rounds and --users must be at least 1")
    # Whole stall periods: 20 s holds four freezes, 10 s two.
    stall_s, rate_s, drop_s = (10, 4, 5) if args.quick else (20, 10, 10)
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores: the target on one, the load generator on the other")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    # A SIGTERM ends the run like Ctrl-C, through the finally clauses that stop the children.
    signal.signal(signal.SIGTERM, vs._interrupt)

    started = time.monotonic()
    machine = vs.machine_line()
    command = "python benches/open_model.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    print(f"{machine}; {time.strftime('%Y-%m-%d %H:%M %Z')}; {command}", flush=True)
    oha = ensure_oha(args.oha) if "stall" in only else None
    if oha is not None:
        print(f"{oha_version(oha)} ({oha})", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="horde-open-model-"))
    stall, rate, dropped = [], [], []
    try:
        if "stall" in only:
            stall = case_stall(oha, workdir, rounds, stall_s, args.users, args.stall_path)
        if "rate" in only:
            rate = case_rate(workdir, rounds, rate_s)
        if "dropped" in only:
            dropped = case_dropped(workdir, rounds, drop_s)
    except KeyboardInterrupt:
        log("interrupted: stopping the target and generators")
        return 130
    finally:
        vs.end_all()
        if args.keep:
            log(f"logs and raw results kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    verdicts: list[tuple[str, bool]] = []
    sections: list[tuple[str, list[list[str]], list[str]]] = []
    if stall:
        title = (
            f"Stall: GET {args.stall_path} at {STALL_RATE}/s for {stall_s} s per run, the target freezing "
            f"{STALL_FREEZE:g} s every {STALL_PERIOD:g} s (core 1); horde -u {args.users} --max-users {args.users} "
            f"--arrival-max-wait {STALL_MAX_WAIT:g} vs {oha_version(oha)} -c {args.users} -q {STALL_RATE} "
            "--latency-correction (core 0)"
        )
        note = (
            "horde counts an iteration from its scheduled time (i/R after the first; handed out up to 1 ms early, "
            "and then counted from the write), oha from when its rate ticker woke for it (tokio's sleep_until(i/R), "
            "a little late). oha's uncorrected times: end - start of its --db-url rows."
        )
        sections.append((title, summarise_stall(stall, verdicts), [note]))
    if rate:
        title = f"Rate accuracy: horde alone on core 1, GET / of a one-thread demo target on core 0, {rate_s} s per run"
        note = (
            "left waiting: arrivals still in horde's backlog (waiting for a free user) after the run, which the "
            "runner's stop should have counted as dropped; a negative started+dropped-scheduled is exactly these."
        )
        sections.append((title, summarise_rate(rate, verdicts), [note]))
    if dropped:
        title = f"Dropped iterations: {DROP_USERS} users (at most {DROP_USERS}), GET {DROP_PATH} at {DROP_RATE}/s"
        sections.append((title + f" for {drop_s} s per run", summarise_dropped(dropped, verdicts), []))
    others = [r["horde"] for r in stall] + rate
    if others:
        exact = [r.get("diff") == 0 for r in others]
        verdicts.append(
            (f"stall and rate: started + dropped == scheduled in {sum(exact)}/{len(exact)} runs", all(exact))
        )
    shares = sorted(
        x
        for x in [*(r[t]["others"] for r in stall for t in ("horde", "oha")), *(r["others"] for r in rate + dropped)]
        if x is not None
    )
    noise = (
        f"Other processes' share of the generator's core during the runs: median {statistics.median(shares):.0%}, "
        f"max {shares[-1]:.0%} (a shared machine: above ~10% the numbers are disturbed)."
        if shares
        else ""
    )
    verdict_lines = [f"{'PASS' if ok else 'FAIL'}  {text}" for text, ok in verdicts]
    print()
    for title, rows, notes in sections:
        print(title)
        print(text_table(rows))
        print("".join(f"  {n}\n" for n in notes))
    print(noise)
    print("\n".join(verdict_lines))
    print(f"total time {(time.monotonic() - started) / 60:.1f} min")
    md = [f"Command: `{command}`. Machine: {machine}. {noise}", ""]
    for title, rows, notes in sections:
        md += [f"**{title}**", "", md_table(rows), ""] + [f"{n}\n" for n in notes]
    md += [f"- {line}" for line in verdict_lines]
    args.markdown.write_text("\n".join(md) + "\n")
    print(f"wrote {args.markdown}")
    return 0 if all(ok for _, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
