"""The web UI's JSON and CSV next to real Locust 2.47.0's: both serve the same locustfile, are
driven through the same requests, and must answer with the same shapes (keys at every level, value
kinds, CSV headers, download names), so scripts written against Locust's UI keep working."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from cli_helpers import ROOT
from test_web_api import HordeUI, Reply, until

from horde.stats import PRECISE_ROW_KEYS
from horde.web.routes import HORDE_REQUEST_STATS_KEYS

LOCUST = os.environ.get("HORDE_LOCUST") or str(ROOT / ".venv-locust" / "bin" / "locust")

pytestmark = pytest.mark.skipif(
    not shutil.which(LOCUST), reason=f"Locust 2.47.0 reference not installed at {LOCUST} (tests/run.sh installs it)"
)

# Not test_web_api's file: real Locust's web UI fails to start on its task named `json`.
LOCUSTFILE = """
from locust import HttpUser, constant, task


class Api(HttpUser):
    wait_time = constant(0.05)

    @task(3)
    def home(self):
        self.client.get("/")

    @task
    def fail(self):
        self.client.get("/status/500", name="fail")

    @task
    def boom(self):
        raise RuntimeError("boom")
"""


def ok(reply: Reply) -> Reply:
    assert reply.status_code == 200, (reply.status_code, reply.text[:500])
    return reply


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


def without_horde_keys(body: Any, path: str) -> Any:
    """``body`` without the keys horde adds to Locust's JSON (its /stats/requests has more, and
    so has each of its rows)."""
    if path == "/stats/requests":
        rows = [{k: v for k, v in row.items() if k not in PRECISE_ROW_KEYS} for row in body["stats"]]
        return {k: v for k, v in body.items() if k not in HORDE_REQUEST_STATS_KEYS} | {"stats": rows}
    return body


@pytest.fixture(scope="module")
def both(demo, tmp_path_factory) -> Iterator[dict[str, HordeUI]]:
    tmp = tmp_path_factory.mktemp("web_vs_locust")
    locustfile = tmp / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    common = ["-f", str(locustfile), "-H", demo.url]
    tools: dict[str, HordeUI] = {}
    try:
        tools["locust"] = HordeUI(tmp, *common, program=[LOCUST])
        tools["horde"] = HordeUI(tmp, *common)
        yield tools
    finally:
        for tool in tools.values():
            tool.stop()


def _swarm_until_everything_is_counted(tool: HordeUI, host: str) -> dict[str, Any]:
    body = ok(tool.post("/swarm", data={"user_count": "2", "spawn_rate": "10", "host": host})).json()

    def ready() -> dict[str, Any] | None:
        report = ok(tool.get("/stats/requests")).json()
        names = {row["name"] for row in report["stats"]}
        exceptions = ok(tool.get("/exceptions")).json()["exceptions"]
        # Current percentiles are null until the response times of ~2 s before are cached.
        current = all(v is not None for v in report["current_response_time_percentiles"].values())
        return body if {"/", "fail"} <= names and report["errors"] and exceptions and current else None

    return until(ready, "requests, failures and exceptions counted", timeout=60)


def test_same_json_and_csv_shapes_as_locust(both, demo):
    swarmed = {name: _swarm_until_everything_is_counted(tool, demo.url) for name, tool in both.items()}
    assert set(swarmed["horde"]) == set(swarmed["locust"]), swarmed
    assert swarmed["horde"]["message"] == swarmed["locust"]["message"]

    for path in ("/stats/requests", "/exceptions", "/tasks", "/logs"):
        locust, horde = (without_horde_keys(ok(both[name].get(path)).json(), path) for name in ("locust", "horde"))
        assert shape(horde) == shape(locust), path

    for path in ("/stats/requests/csv", "/stats/failures/csv", "/exceptions/csv"):
        replies = {name: ok(tool.get(path)) for name, tool in both.items()}
        headers = {name: reply.text.splitlines()[0] for name, reply in replies.items()}
        assert headers["horde"] == headers["locust"], path
        # Attachment names: Locust_<timestamp>_<locustfile>_<host>_<kind>.csv in both.
        names = {
            name: re.sub(r"_\d[\dh_-]*_", "_<ts>_", reply.headers["Content-Disposition"])
            for name, reply in replies.items()
        }
        assert names["horde"] == names["locust"], path

    report = {name: ok(tool.get("/stats/report")).text for name, tool in both.items()}
    assert all(text.lstrip().lower().startswith("<!doctype html") for text in report.values())

    for path in ("/stop", "/stats/reset"):
        replies = {name: ok(tool.post(path)) for name, tool in both.items()}
        assert replies["horde"].text.strip() == replies["locust"].text.strip() or shape(
            replies["horde"].json()
        ) == shape(replies["locust"].json()), path
