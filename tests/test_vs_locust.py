"""The same locustfiles under real Locust 2.47.0 and under horde: the stats rows (method and name)
and which rows fail must be the same.

Locust lives in its own virtualenv (tests/run.sh makes ``.venv-locust``; ``HORDE_LOCUST`` may
point at another ``locust`` executable), so horde's own tests never import it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import LOCUSTFILES, ROOT, run_horde

LOCUST = os.environ.get("HORDE_LOCUST") or str(ROOT / ".venv-locust" / "bin" / "locust")

pytestmark = pytest.mark.skipif(
    not shutil.which(LOCUST), reason=f"Locust 2.47.0 reference not installed at {LOCUST} (tests/run.sh installs it)"
)

# Files whose every task runs within a few seconds with several users, so both tools see every row.
COMPARED = [
    "conduit.py",
    "weights.py",
    "tasksets.py",
    "markov.py",
    "wait_times.py",
    "catch_response.py",
    "tags.py",
    "custom_client.py",
    "fasthttp.py",
    "stop_and_reschedule.py",
]


def _rows(json_text: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(method, name) of every row in ``--json`` output, and of those that failed. The JSON is
    the final word of both tools: it is written after the users stopped (their on_stop included),
    while Locust's CSV files keep the last one-second sample."""
    # Requests made in on_stop run while the users are being stopped at the end of the run;
    # whether they finish before the final report is a matter of timing, in Locust as in horde.
    entries = [e for e in json.loads(json_text) if "on_stop" not in e["name"]]
    names = {(e["method"], e["name"]) for e in entries}
    failing = {(e["method"], e["name"]) for e in entries if e["num_failures"] > 0}
    return names, failing


def _run_locust(locustfile: Path, host: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    return subprocess.run(
        [LOCUST, "-f", str(locustfile), "--headless", "-u", "8", "-r", "8", "-t", "4s", "-H", host,
         "--json", "--only-summary"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


@pytest.mark.parametrize("name", COMPARED)
def test_same_rows_and_failures_as_locust(name, demo):
    locustfile = LOCUSTFILES / name
    reference = _run_locust(locustfile, demo.url)
    ours = run_horde(
        "-f", str(locustfile), "--headless", "-u", "8", "-r", "8", "-t", "4s", "-H", demo.url,
        "--json", "--only-summary",
    )  # fmt: skip
    assert reference.returncode == ours.returncode, (reference.stderr[-2000:], ours.stderr[-2000:])
    locust_names, locust_failing = _rows(reference.stdout)
    horde_names, horde_failing = _rows(ours.stdout)
    assert horde_names == locust_names
    assert horde_failing == locust_failing
