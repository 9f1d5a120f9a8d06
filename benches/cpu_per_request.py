"""CPU per request of horde's two sides: the Python thread (users, client, bridge) and the engine's
threads, for 50 FastHttpUsers looping ``GET /`` with no wait, in one process. Pinned to one core the
engine has no threads (it runs on the Python thread, whose figure is then the total);
``HORDE_RUNTIME_THREADS=1`` gives it its worker thread back, for comparison.

    taskset -c 0 python benches/cpu_per_request.py --host http://127.0.0.1:8080 [--seconds 3]

Run the target on another core (e.g. ``taskset -c 1 nginx ...``). The Python thread's CPU comes
from ``time.thread_time()``, the engine's from its threads' ticks in /proc, both over a window that
starts a second after the users. On a shared machine the request rate swings with other load;
per-request CPU, and the ratio of the two sides, hold much steadier, so compare builds by
alternating runs (e.g. ``PYTHONPATH=<unpacked wheel>``) and taking medians.
"""

from __future__ import annotations

import argparse
import os
import time

import gevent

from horde import FastHttpUser, constant, task
from horde.env import Environment


def _ticks() -> dict[str, int]:
    """utime + stime of each thread of this process, in clock ticks."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out[tid] = int(fields[11]) + int(fields[12])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", required=True, help="base URL of the target")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the measured window")
    args = parser.parse_args()
    done = [0]

    class Hello(FastHttpUser):
        host = args.host
        wait_time = constant(0)

        @task
        def index(self) -> None:
            self.client.get("/")
            done[0] += 1

    users = [Hello(Environment(user_classes=[Hello])) for _ in range(args.users)]
    greenlets = [gevent.spawn(u.run) for u in users]
    gevent.sleep(1.0)
    c0, w0, t0, k0 = done[0], time.perf_counter(), time.thread_time(), _ticks()
    gevent.sleep(args.seconds)
    c1, w1, t1, k1 = done[0], time.perf_counter(), time.thread_time(), _ticks()
    gevent.killall(greenlets)
    n = max(1, c1 - c0)
    main_tid = str(os.getpid())
    engine_s = sum(k1[t] - k0.get(t, 0) for t in k1 if t != main_tid) / os.sysconf("SC_CLK_TCK")
    python_us, engine_us = (t1 - t0) * 1e6 / n, engine_s * 1e6 / n
    from horde import _bridge

    mode = "engine on the python thread" if _bridge.bridge().completions.local else "engine on its own threads"
    print(
        f"{mode}: req/s {n / (w1 - w0):,.0f}  python thread {python_us:.2f} us/req  "
        f"engine threads {engine_us:.2f} us/req  total {python_us + engine_us:.2f} us/req  "
        f"engine/python {engine_us / python_us:.3f}"
    )


if __name__ == "__main__":
    main()
