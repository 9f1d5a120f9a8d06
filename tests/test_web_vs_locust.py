"""The web UI's JSON and CSV next to real Locust 2.47.0's: both serve the same locustfile, are
driven through the same requests, and must answer with the same shapes (keys at every level, value
kinds, CSV headers, download names), so scripts written against Locust's UI keep working."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import ROOT
from conftest import free_port, wait_for_port
from test_web_api import Client, until

LOCUST = os.environ.get("HORDE_LOCUST") or str(ROOT / ".venv-locust" / "bin" / "locust")

pytestmark = pytest.mark.skipif(
    not shutil.which(LOCUST), reason=f"Locust 2.47.0 reference not installed at {LOCUST} (tests/run.sh installs it)"
)

LOCUSTFILE = """
from locust import HttpUser, constant, task


class Api(HttpUser):
    wait_time = constant(0.05)

    @task(3)
    def home(self):
        self.client.get("/")

    @task
    def fail(self):
        self.client.get("/status/500", name="broken")

    @task
    def boom(self):
        raise RuntimeError("boom")
"""


class Served:
    """One tool serving its web UI for the locustfile; ``stop()`` always ends it."""

    def __init__(self, command: list[str], tmp: Path, name: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "HORDE_WEB_"))}
        env["PYTHONWARNINGS"] = "ignore"
        self.log = tmp / f"{name}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [*command, "--web-host", "127.0.0.1", "--web-port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp,
            )  # fmt: skip
        try:
            wait_for_port(self.port, self.proc, timeout=60)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"{name}'s web UI did not start:\n{self.log.read_text()[-3000:]}") from None
        self.http = Client()

    def get(self, path: str) -> Any:
        reply = self.http.get(self.base + path)
        assert reply.status_code == 200, (path, reply.status_code, reply.text[:500])
        return reply

    def post(self, path: str, **kwargs: Any) -> Any:
        reply = self.http.post(self.base + path, **kwargs)
        assert reply.status_code == 200, (path, reply.status_code, reply.text[:500])
        return reply

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def shape(value: Any) -> Any:
    """The structure of a JSON value: dicts by their keys, lists by their first item, numbers as
    one kind (Locust writes 0 where horde may write 0.0), None as its own kind."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


@pytest.fixture(scope="module")
def both(demo, tmp_path_factory) -> Iterator[dict[str, Served]]:
    tmp = tmp_path_factory.mktemp("web_vs_locust")
    locustfile = tmp / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    common = ["-f", str(locustfile), "-H", demo.url]
    tools: dict[str, Served] = {}
    try:
        tools["locust"] = Served([LOCUST, *common], tmp, "locust")
        tools["horde"] = Served([sys.executable, "-m", "horde", *common], tmp, "horde")
        yield tools
    finally:
        for tool in tools.values():
            tool.stop()


def _swarm_until_everything_is_counted(tool: Served, host: str) -> dict[str, Any]:
    body = tool.post("/swarm", data={"user_count": "2", "spawn_rate": "10", "host": host}).json()

    def ready() -> dict[str, Any] | None:
        report = tool.get("/stats/requests").json()
        names = {row["name"] for row in report["stats"]}
        exceptions = tool.get("/exceptions").json()["exceptions"]
        # Current percentiles are null until the response times of ~2 s before are cached.
        current = all(v is not None for v in report["current_response_time_percentiles"].values())
        return body if {"/", "broken"} <= names and report["errors"] and exceptions and current else None

    return until(ready, "requests, failures and exceptions counted", timeout=60)


def test_same_json_and_csv_shapes_as_locust(both, demo):
    swarmed = {name: _swarm_until_everything_is_counted(tool, demo.url) for name, tool in both.items()}
    assert set(swarmed["horde"]) == set(swarmed["locust"]), swarmed
    assert swarmed["horde"]["message"] == swarmed["locust"]["message"]

    for path in ("/stats/requests", "/exceptions", "/tasks", "/logs"):
        locust, horde = (shape(both[name].get(path).json()) for name in ("locust", "horde"))
        assert horde == locust, path

    for path in ("/stats/requests/csv", "/stats/failures/csv", "/exceptions/csv"):
        replies = {name: tool.get(path) for name, tool in both.items()}
        headers = {name: reply.text.splitlines()[0] for name, reply in replies.items()}
        assert headers["horde"] == headers["locust"], path
        # Attachment names: Locust_<timestamp>_<locustfile>_<host>_<kind>.csv in both.
        names = {
            name: re.sub(r"_\d[\d_-]*_", "_<ts>_", reply.headers["Content-Disposition"])
            for name, reply in replies.items()
        }
        assert names["horde"] == names["locust"], path

    report = {name: tool.get("/stats/report").text for name, tool in both.items()}
    assert all(text.lstrip().lower().startswith("<!doctype html") for text in report.values())

    for path in ("/stop", "/stats/reset"):
        replies = {name: tool.post(path) for name, tool in both.items()}
        assert replies["horde"].text.strip() == replies["locust"].text.strip() or shape(
            replies["horde"].json()
        ) == shape(replies["locust"].json()), path
