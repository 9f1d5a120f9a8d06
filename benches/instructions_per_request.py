"""Userspace instructions per request of horde on one core (Python, engine and libraries together),
counted by valgrind's callgrind: unlike time, the count repeats to within ~0.5% whatever else the
machine is doing, so it can compare two builds on a shared, noisy machine.

    python benches/instructions_per_request.py --host http://127.0.0.1:8080 [--users 50]

50 FastHttpUsers loop ``GET /`` with no wait (workload a of vs_locust.py) until N requests are done,
once with N = --small and once with N = --large; the difference of the two totals divided by the
difference of N leaves out start-up and shutdown. The engine runs on the Python thread
(``HORDE_RUNTIME_THREADS=0``), as it does on one core. Kernel time is not counted. Each run is about
50 times slower than natively (~30 s in all). Needs valgrind (``apt-get install valgrind``).
To compare builds, point PYTHONPATH at each (e.g. an unpacked wheel) and run this once per build.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def _users(host: str, users: int, requests: int) -> None:
    """The measured program: runs until `requests` requests are done."""
    import gevent
    import gevent.event

    from horde import FastHttpUser, constant, task
    from horde.env import Environment

    done = [0]
    finished = gevent.event.Event()

    class Hello(FastHttpUser):
        wait_time = constant(0)

        @task
        def index(self) -> None:
            self.client.get("/")
            done[0] += 1
            if done[0] >= requests:
                finished.set()

    Hello.host = host
    environment = Environment(user_classes=[Hello])
    # A runner, as in every real run: its stats listener is what the engine logs requests for.
    environment.create_local_runner()
    running = [gevent.spawn(Hello(environment).run) for _ in range(users)]
    finished.wait()
    gevent.killall(running)


def _count(host: str, users: int, requests: int) -> int:
    """Instructions of one run of `requests` requests, whole process."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={os.path.join(tmp, 'callgrind.out')}",
            sys.executable,
            __file__,
            "--run",
            str(requests),
            "--host",
            host,
            "--users",
            str(users),
        ]
        env = {**os.environ, "HORDE_RUNTIME_THREADS": "0"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"the run under valgrind failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", required=True, help="base URL of the target (run it on another core)")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--small", type=int, default=2000, help="requests in the short run")
    parser.add_argument("--large", type=int, default=12000, help="requests in the long run")
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)  # internal: the measured program
    args = parser.parse_args()
    if args.run is not None:
        _users(args.host, args.users, args.run)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if args.large <= args.small:
        raise SystemExit("--large must be more requests than --small")
    small = _count(args.host, args.users, args.small)
    large = _count(args.host, args.users, args.large)
    per_request = (large - small) / (args.large - args.small)
    print(f"{per_request:,.0f} userspace instructions per request ({args.users} users, GET /, one core)")


if __name__ == "__main__":
    main()
