#!/usr/bin/env python3
"""The engine alone next to wrk, on one core each, against nginx on the other core.

    python benches/engine_vs_wrk.py [--connections 50] [--duration 10] [--rounds 3]

Installs nginx and wrk from Debian's packages when missing, serves a small static body from
nginx pinned to core 1, then alternates wrk and horde's `engine_bench` (built with the release
profile) pinned to core 0, both with the same number of keep-alive connections. Prints
requests/s, p50 and p99 for each round and the ratio engine / wrk. Target: ratio >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ensure_tools() -> None:
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if missing:
        print(f"installing {' '.join(missing)} from Debian's packages...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        pkgs = ["nginx-light" if t == "nginx" else t for t in missing]
        subprocess.run(["apt-get", "install", "-y", "-qq", *pkgs], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(workdir: Path, port: int) -> subprocess.Popen:
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 'Hello, World!'; }}
    }}
}}
""")
    proc = subprocess.Popen(["taskset", "-c", "1", "nginx", "-c", str(conf), "-p", str(workdir)])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("nginx did not start; see " + str(workdir / "error.log"))


def build_engine_bench() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    subprocess.run(
        ["cargo", "build", "--release", "-p", "horde-core", "--example", "engine_bench"],
        cwd=ROOT, check=True,
    )
    return target / "release" / "examples" / "engine_bench"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(url: str, connections: int, duration: int) -> dict:
    out = subprocess.run(
        ["taskset", "-c", "0", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99}


def run_engine(binary: Path, url: str, connections: int, duration: int) -> dict:
    out = subprocess.run(
        ["taskset", "-c", "0", str(binary), "--url", url, "--connections", str(connections),
         "--duration", str(duration), "--threads", "1"],
        capture_output=True, text=True, check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if result["failures"]:
        raise SystemExit(f"engine_bench saw {result['failures']} failures: {result}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating wrk/engine rounds")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores: nginx on core 1, the load generator on core 0")

    ensure_tools()
    binary = build_engine_bench()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        nginx = start_nginx(Path(tmp), port)
        url = f"http://127.0.0.1:{port}/"
        try:
            rows = []
            for i in range(args.rounds):
                w = run_wrk(url, args.connections, args.duration)
                e = run_engine(binary, url, args.connections, args.duration)
                rows.append((w, e))
                print(f"round {i + 1}: wrk {w['rps']:>9.0f} req/s p50 {w['p50_ms']:.3f} ms p99 {w['p99_ms']:.3f} ms | "
                      f"engine {e['rps']:>9.0f} req/s p50 {e['p50_ms']:.3f} ms p99 {e['p99_ms']:.3f} ms | "
                      f"ratio {e['rps'] / w['rps']:.2f}", flush=True)
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)

    def med(key: str, idx: int) -> float:
        return statistics.median(r[idx][key] for r in rows)

    print()
    print(f"{'':<10}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'wrk':<10}{med('rps', 0):>12.0f}{med('p50_ms', 0):>10.3f}{med('p99_ms', 0):>10.3f}")
    print(f"{'engine':<10}{med('rps', 1):>12.0f}{med('p50_ms', 1):>10.3f}{med('p99_ms', 1):>10.3f}")
    ratio = statistics.median(e["rps"] / w["rps"] for w, e in rows)
    print(f"\nengine / wrk requests/s (median of {args.rounds} rounds, {args.connections} connections, "
          f"one core each): {ratio:.2f}  (target >= 0.90)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
