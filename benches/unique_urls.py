"""Unique URLs without ``name=``: memory and rate against the same flow with a name.

A locustfile that requests ``/item/{id}`` without ``name=`` makes a stats row per request, one of
the most common Locust mistakes. horde keeps rows of few requests small (exact values instead of
an HdrHistogram) and folds names past ``--max-request-names`` (10,000) into one row, so such a
run should cost little more than the named one. Each round runs both flows for the same time,
horde pinned to core 0 and the demo target to core 1; the numbers:

- peak RSS of the horde process (MB, from ``/usr/bin/time``'s maximum resident set size);
- requests/s over the run (from ``--json``'s Aggregated row), and the ratio unique/named within
  the round; the summary is the median of the rounds' ratios;
- the rows in the final table (the cap folds the rest into one).

Targets (issue 14): the unique-URL run stays under 150 MB and keeps at least 80% of the named
run's rate.

    python benches/unique_urls.py [--rounds 3] [--users 20] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

FLOWS = {
    "unique": 'self.client.get(f"/anything/{random.randrange(10**9)}")',
    "named": 'self.client.get(f"/anything/{random.randrange(10**9)}", name="/anything/[id]")',
}


def locustfile(directory: Path, flow: str) -> Path:
    path = directory / f"{flow}.py"
    path.write_text(
        textwrap.dedent(
            f"""\
            import random

            from locust import FastHttpUser, constant, task


            class Visitor(FastHttpUser):
                wait_time = constant(0)

                @task
                def item(self):
                    {FLOWS[flow]}
            """
        )
    )
    return path


def run(path: Path, host: str, users: int, seconds: int) -> dict:
    cmd = [
        "/usr/bin/time", "-f", "maxrss_kb=%M",
        "taskset", "-c", "0", sys.executable, "-m", "horde", "-f", str(path), "--headless",
        "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "-H", host, "--only-summary",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode not in (0, 1):
        raise SystemExit(f"horde failed ({out.returncode}):\n{out.stderr[-3000:]}")
    rss = int(re.search(r"maxrss_kb=(\d+)", out.stderr).group(1))
    # The final table: one line per row, then the Aggregated line with the request count.
    table = out.stderr[: out.stderr.index("Response time percentiles")]
    rows = len(re.findall(r"^GET ", table, re.MULTILINE))
    requests = int(re.search(r"^\s+Aggregated\s+(\d+)", table, re.MULTILINE).group(1))
    return {
        "rss_mb": rss / 1024,
        "requests": requests,
        "rps": requests / seconds,
        "rows": rows,
        "warned": "distinct request names" in out.stderr,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()

    from horde import DemoServer  # noqa: F401 - fails early when horde is not installed

    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, "-m", "horde.demo", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = f"http://127.0.0.1:{port}"
    ratios, unique_rss = [], []
    try:
        time.sleep(1.0)
        with tempfile.TemporaryDirectory() as tmp:
            files = {flow: locustfile(Path(tmp), flow) for flow in FLOWS}
            print(f"{args.users} users, {args.seconds} s per run, horde on core 0, demo target on core 1")
            print(f"{'round':>5} {'flow':>7} {'req/s':>9} {'peak RSS MB':>12} {'rows':>6}  notes")
            for i in range(1, args.rounds + 1):
                results = {flow: run(files[flow], host, args.users, args.seconds) for flow in FLOWS}
                for flow, r in results.items():
                    note = "warned about names" if r["warned"] else ""
                    print(f"{i:>5} {flow:>7} {r['rps']:>9,.0f} {r['rss_mb']:>12.1f} {r['rows']:>6}  {note}")
                ratio = results["unique"]["rps"] / results["named"]["rps"]
                ratios.append(ratio)
                unique_rss.append(results["unique"]["rss_mb"])
                print(f"{i:>5} {'ratio':>7} {ratio:>9.2f}")
    finally:
        server.terminate()
        server.wait(10)
    ratio = statistics.median(ratios)
    peak = max(unique_rss)
    print()
    print(f"unique/named requests/s, median of {len(ratios)} rounds: {ratio:.2f} (target >= 0.80): "
          f"{'PASS' if ratio >= 0.8 else 'FAIL'}")  # fmt: skip
    print(f"unique-URL peak RSS, highest round: {peak:.1f} MB (target < 150 MB): {'PASS' if peak < 150 else 'FAIL'}")
    return 0 if ratio >= 0.8 and peak < 150 else 1


if __name__ == "__main__":
    sys.exit(main())
