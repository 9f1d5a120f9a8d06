"""Running the ``horde`` command in a subprocess, as a user would, for the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILES = ROOT / "locustfiles"


def run_horde(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 90, env: dict | None = None):
    """Runs ``python -m horde ARGS``; returns the CompletedProcess (text stdout/stderr)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    full_env["PYTHONWARNINGS"] = "ignore"
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "horde", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def stats_rows(csv_path: Path) -> dict[tuple[str, str], dict[str, str]]:
    """The rows of a ``_stats.csv`` keyed by (Type, Name)."""
    import csv

    with open(csv_path, newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}
