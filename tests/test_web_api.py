"""The web UI's HTTP API end to end: a real ``horde`` process without ``--headless``, driven over
HTTP as the page (or a script) drives it, checked against Locust 2.47's endpoints and JSON."""

from __future__ import annotations

import base64
import csv
import http.cookiejar
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest
from cli_helpers import LOCUSTFILES, ROOT, stats_rows
from conftest import free_port, wait_for_port

from horde.stats import PRECISE_ROW_KEYS
from horde.web.routes import HORDE_REQUEST_STATS_KEYS

# Locust 2.47's StatsEntry.to_dict() keys (PERCENTILES_TO_STATISTICS = [0.95, 0.99]).
LOCUST_ROW_KEYS = {
    "method",
    "name",
    "num_requests",
    "num_failures",
    "min_response_time",
    "max_response_time",
    "current_rps",
    "current_fail_per_sec",
    "avg_response_time",
    "median_response_time",
    "total_rps",
    "total_fail_per_sec",
    "response_time_percentile_0.95",
    "response_time_percentile_0.99",
    "avg_content_length",
}
# Locust 2.47's /stats/requests keys for a local runner.
LOCUST_REPORT_KEYS = {
    "stats",
    "errors",
    "current_rps",
    "current_fail_per_sec",
    "total_rps",
    "total_fail_per_sec",
    "fail_ratio",
    "current_response_time_percentiles",
    "state",
    "user_count",
}
LOCUST_ERROR_KEYS = {"name", "method", "error", "occurrences", "first_seen", "last_seen"}
TEMPLATE_ARG_KEYS = {
    "host",
    "num_users",
    "spawn_rate",
    "run_time",
    "state",
    "user_classes",
    "selected_user_classes",
    "show_userclass_picker",
    "is_shape",
    "is_distributed",
    "worker_count",
    "version",
    "locustfile",
    "base_path",
    "auth_token",
    # horde's: the open model's options, for the form's "Open model" fields.
    "arrival_rate",
    "max_users",
    "arrival_distribution",
    "arrival_distributions",
}
HISTORY_POINT_KEYS = {
    "time",
    "user_count",
    "current_rps",
    "current_fail_per_sec",
    "response_time_percentile_0.5",
    "response_time_percentile_0.95",
    "response_time_percentile_0.99",
    "avg_response_time",
}

LOCUSTFILE = """
from locust import HttpUser, constant, task


class Api(HttpUser):
    wait_time = constant(0.05)

    @task(4)
    def home(self):
        self.client.get("/")

    @task
    def fail(self):
        self.client.get("/status/500", name="fail")

    @task
    def boom(self):
        raise ValueError("boom from a task")


class Reader(HttpUser):
    wait_time = constant(0.1)

    @task
    def json(self):
        self.client.get("/json")
"""


class Reply:
    """What an HTTP request got back (status, headers, body)."""

    def __init__(self, status_code: int, headers: Any, body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.text = body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.text)


class Client:
    """A small HTTP client on urllib (keeps cookies, as a browser tab would)."""

    def __init__(self) -> None:
        self.opener = build_opener(HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, str] | None = None,
        data: dict[str, str] | str | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Reply:
        if params:
            url += "?" + urlencode(params)
        body = None
        all_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers["Content-Type"] = "application/json"
        elif isinstance(data, dict):
            body = urlencode(data).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif isinstance(data, str):
            body = data.encode()
        elif method == "POST":
            body = b""
        if auth is not None:
            all_headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        try:
            with self.opener.open(Request(url, data=body, headers=all_headers, method=method)) as r:
                return Reply(r.status, r.headers, r.read())
        except HTTPError as e:
            with e:
                return Reply(e.code, e.headers, e.read())

    def get(self, url: str, **kwargs: Any) -> Reply:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Reply:
        return self.request("POST", url, **kwargs)


def http_get(url: str, **kwargs: Any) -> Reply:
    return Client().get(url, **kwargs)


def http_post(url: str, **kwargs: Any) -> Reply:
    return Client().post(url, **kwargs)


class HordeUI:
    """A ``horde`` process serving the web UI on a free port; ``stop()`` always ends it.
    ``program`` runs another command with the same options instead (real Locust, to compare)."""

    def __init__(
        self,
        tmp_path: Path,
        *args: str,
        env: dict[str, str] | None = None,
        base_path: str = "",
        program: Sequence[str] = (sys.executable, "-m", "horde"),
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}{base_path}"
        self.out_path = tmp_path / f"horde-{self.port}.out"
        self.err_path = tmp_path / f"horde-{self.port}.err"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "HORDE_WEB_"))}
        full_env["PYTHONWARNINGS"] = "ignore"
        full_env.update(env or {})
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [*program, "--web-port", str(self.port), *args],
                stdout=out,
                stderr=err,
                env=full_env,
                cwd=ROOT,
            )
        try:
            wait_for_port(self.port, self.proc)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"horde's web UI did not start:\n{self.stderr()[-3000:]}") from None
        self.session = Client()

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.session.get(self.url(path), **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.session.post(self.url(path), **kwargs)

    def stats(self) -> dict[str, Any]:
        response = self.get("/stats/requests")
        assert response.status_code == 200, response.text
        return response.json()

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def until(check: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Calls ``check`` until it returns something truthy (returned), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def until_true(fetch: Callable[[], Any], ok: Callable[[Any], Any], what: str, timeout: float = 30.0) -> Any:
    """Fetches until ``ok(value)`` holds; returns that value."""
    return until(lambda: (lambda value: value if ok(value) else None)(fetch()), what, timeout)


def template_args(page: str) -> dict[str, Any]:
    match = re.search(r"window\.templateArgs\s*=\s*(\{.*?\})\s*;?\s*(?:</script>|\n)", page, re.S)
    assert match, page[:2000]
    return json.loads(match.group(1))


def aggregated(report: dict[str, Any]) -> dict[str, Any]:
    return report["stats"][-1]


def swarm(ui: HordeUI, users: int, rate: float = 10, **form: str) -> dict[str, Any]:
    response = ui.post("/swarm", data={"user_count": str(users), "spawn_rate": str(rate), **form})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True, body
    return body


def running_with(ui: HordeUI, users: int) -> dict[str, Any]:
    """Waits until ``users`` users run and requests have been counted; returns /stats/requests."""

    def check() -> dict[str, Any] | None:
        report = ui.stats()
        ok = report["state"] == "running" and report["user_count"] == users and aggregated(report)["num_requests"]
        return report if ok else None

    return until(check, f"{users} users running with requests counted")


@pytest.fixture(scope="module")
def ui(demo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web_api")
    locustfile = tmp / "web_api_locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    server = HordeUI(
        tmp,
        "-f", str(locustfile), "-H", demo.url, "-u", "3", "-r", "5",
        "--csv", str(tmp / "run"), "--csv-full-history",
    )  # fmt: skip
    yield server
    server.stop()


# -- the page ------------------------------------------------------------------------------------


def test_index_page_carries_the_template_args(ui, demo):
    response = ui.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    args = template_args(response.text)
    assert set(args) == TEMPLATE_ARG_KEYS
    assert args["host"] == demo.url
    assert (args["num_users"], args["spawn_rate"], args["run_time"]) == (3, 5.0, None)
    assert args["state"] in ("ready", "running", "stopped", "spawning")
    assert args["user_classes"] == ["Api", "Reader"]
    assert sorted(args["selected_user_classes"]) == ["Api", "Reader"]
    assert (args["show_userclass_picker"], args["is_shape"]) == (False, False)
    assert (args["is_distributed"], args["worker_count"]) == (False, 0)
    # The Workers tab and the navbar's worker count are a master's only.
    assert 'data-tab="workers"' not in response.text and 'id="nav-workers"' not in response.text
    assert args["locustfile"] == "web_api_locustfile.py"
    assert (args["base_path"], args["auth_token"]) == ("", None)


def test_unknown_asset_is_404(ui):
    assert ui.get("/assets/no-such-file.js").status_code == 404


# -- running a test ------------------------------------------------------------------------------


def test_swarm_fills_stats_with_locusts_json(ui, demo):
    body = swarm(ui, 4, 10)
    assert body == {"success": True, "message": "Swarming started", "host": demo.url}
    report = running_with(ui, 4)
    # Rows fill in over a few requests; wait until every task has been counted.
    report = until_true(
        ui.stats,
        lambda r: {("GET", "/"), ("GET", "fail"), ("GET", "/json")} <= row_keys(r),
        "every request name in /stats/requests",
    )
    assert set(report) == LOCUST_REPORT_KEYS | set(HORDE_REQUEST_STATS_KEYS)
    for row in report["stats"]:
        assert set(row) == LOCUST_ROW_KEYS | set(PRECISE_ROW_KEYS)
    total = aggregated(report)
    assert (total["method"], total["name"]) == ("", "Aggregated")
    names = [(row["name"], row["method"]) for row in report["stats"][:-1]]
    assert names == sorted(names)
    assert total["num_requests"] >= sum(row["num_requests"] for row in report["stats"][:-1]) > 0
    assert set(report["current_response_time_percentiles"]) == {
        "response_time_percentile_0.5",
        "response_time_percentile_0.95",
    }
    errors = until(lambda: ui.stats()["errors"], "an error row")
    assert set(errors[0]) == LOCUST_ERROR_KEYS
    assert (errors[0]["method"], errors[0]["name"]) == ("GET", "fail")
    assert "500" in errors[0]["error"]


def row_keys(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(row["method"], row["name"]) for row in report["stats"]}


def test_history_has_a_point_a_second(ui):
    swarm(ui, 4, 10)
    running_with(ui, 4)
    points = until_true(lambda: ui.get("/stats/history").json()["history"], lambda h: len(h) >= 3, "3 points")
    for point in points:
        assert set(point) == HISTORY_POINT_KEYS
    times = [p["time"] for p in points]
    # In order and distinct; not a bound on the gaps, which a busy machine stretches or squeezes.
    assert times == sorted(set(times))
    assert points[-1]["user_count"] == 4
    assert any(p["avg_response_time"] > 0 for p in points)
    body = ui.get("/stats/history", params={"since": str(times[-2])}).json()
    assert [p["time"] for p in body["history"]][:1] == times[-1:]
    assert "reset_at" in body
    assert ui.get("/stats/history", params={"since": "soon"}).status_code == 400


def test_history_gets_current_percentiles_and_rps(ui):
    swarm(ui, 4, 10)

    def filled() -> dict[str, Any] | None:
        points = ui.get("/stats/history").json()["history"]
        last = points[-1] if points else None
        # The precise percentiles come with the first point; the failure rate needs a few seconds.
        ready = last and last["response_time_percentile_0.95"] is not None and last["current_fail_per_sec"]
        return last if ready else None

    point = until(filled, "a current 95th percentile, rate and failure rate", timeout=40)
    assert point["response_time_percentile_0.5"] <= point["response_time_percentile_0.99"]
    assert point["current_rps"] > point["current_fail_per_sec"] > 0


def test_distribution_of_the_total_and_of_one_row(ui):
    swarm(ui, 4, 10)
    running_with(ui, 4)
    total = ui.get("/stats/distribution").json()
    assert (total["method"], total["name"]) == ("", "Aggregated")
    assert total["count"] == sum(count for _, count in total["buckets"]) > 0
    assert [ms for ms, _ in total["buckets"]] == sorted(ms for ms, _ in total["buckets"])
    # horde's finer view for the chart: log-spaced bins of the HDR histogram, and exact percentiles.
    bins = total["bins"]
    assert sum(count for _, _, count in bins) == total["count"]
    assert all(0 < low < high for low, high, _ in bins)
    assert all(a[1] <= b[0] + 1e-9 for a, b in zip(bins, bins[1:]))
    p50, p99 = total["percentiles"]["0.5"], total["percentiles"]["0.99"]
    assert bins[0][0] <= p50 <= p99 <= bins[-1][1]
    home = ui.get("/stats/distribution", params={"method": "GET", "name": "/"}).json()
    assert (home["method"], home["name"]) == ("GET", "/")
    assert 0 < home["count"] <= total["count"]
    missing = ui.get("/stats/distribution", params={"method": "GET", "name": "/nowhere"})
    assert missing.status_code == 404
    assert missing.json()["success"] is False


def test_table_times_are_the_precise_hdr_figures(ui):
    swarm(ui, 4, 10)
    running_with(ui, 4)
    assert ui.post("/stop").status_code == 200

    def settled() -> tuple[dict[str, Any], dict[str, Any]] | None:
        # /stats/requests is cached for up to 2 s: wait until it counts what the histogram holds.
        report = ui.stats()
        distribution = ui.get("/stats/distribution").json()
        same = report["state"] == "stopped" and aggregated(report)["num_requests"] == distribution["count"]
        return (report, distribution) if same else None

    report, distribution = until(settled, "the stopped run's table and histogram to agree")
    total = aggregated(report)
    hdr = distribution["percentiles"]
    assert total["precise_median_response_time"] == hdr["0.5"]
    assert total["precise_response_time_percentile_0.95"] == hdr["0.95"]
    assert total["precise_response_time_percentile_0.99"] == hdr["0.99"]
    for row in report["stats"]:
        median = row["precise_median_response_time"]
        p95, p99 = row["precise_response_time_percentile_0.95"], row["precise_response_time_percentile_0.99"]
        low, high = row["precise_min_response_time"], row["precise_max_response_time"]
        assert 0 < median <= p95 <= p99, row
        # Min and max are exact, the percentiles the histogram's (3 significant digits at µs).
        assert low * (1 - 1e-3) - 1e-3 <= median and p99 <= high * (1 + 1e-3) + 1e-3, row
        assert low <= row["avg_response_time"] <= high
        # Locust's own fields stay as Locust computes them: whole-ms buckets, min and max rounded.
        assert row["min_response_time"] == math.floor(low + 0.5)
        assert isinstance(row["response_time_percentile_0.95"], int)


def test_swarm_again_changes_the_user_count(ui):
    swarm(ui, 4, 10)
    running_with(ui, 4)
    swarm(ui, 2, 10)
    running_with(ui, 2)
    swarm(ui, 5, 10)
    running_with(ui, 5)


def test_bad_swarm_form_gives_a_json_error(ui):
    for form in ({"user_count": "abc", "spawn_rate": "1"}, {"user_count": "1", "spawn_rate": "fast"}, {}):
        response = ui.post("/swarm", data=form)
        assert response.status_code == 200
        body = response.json()
        assert body["success"] is False and body["message"]
    response = ui.post("/swarm", data={"user_count": "1", "spawn_rate": "1", "run_time": "soon"})
    assert response.json()["success"] is False
    assert "run_time" in response.json()["message"]
    assert ui.get("/stats/requests").status_code == 200


def test_cross_site_post_is_refused(ui):
    response = ui.post("/stop", headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    same_site = ui.post("/stats/reset", headers={"Origin": f"http://127.0.0.1:{ui.port}"})
    assert (same_site.status_code, same_site.text) == (200, "ok")


def test_exceptions_tasks_logs_and_worker_count(ui):
    swarm(ui, 4, 10)
    running_with(ui, 4)
    exceptions = until(lambda: ui.get("/exceptions").json()["exceptions"], "an exception row")
    assert set(exceptions[0]) == {"count", "msg", "traceback", "nodes"}
    assert exceptions[0]["msg"] == "boom from a task"
    assert exceptions[0]["nodes"] == "local"
    tasks = ui.get("/tasks").json()
    assert set(tasks) == {"per_class", "total"}
    api = tasks["per_class"]["Api"]
    assert api["tasks"]["home"]["ratio"] == pytest.approx(4 / 6)
    assert tasks["per_class"]["Api"]["ratio"] + tasks["per_class"]["Reader"]["ratio"] == pytest.approx(1.0)
    assert tasks["total"]["Api"]["tasks"]["home"]["ratio"] == pytest.approx(api["ratio"] * 4 / 6)
    logs = ui.get("/logs").json()
    assert set(logs) == {"master", "workers"}
    assert any("Ramping to" in line for line in logs["master"])
    assert ui.get("/worker-count").json() == {"worker_count": 0}


def test_csv_downloads_have_locusts_headers_and_names(ui):
    swarm(ui, 4, 10)
    running_with(ui, 4)
    until(lambda: ui.get("/exceptions").json()["exceptions"], "an exception row")
    until(lambda: len(ui.get("/stats/failures/csv").text.splitlines()) > 1, "a failure row")
    expected = {
        "/stats/requests/csv": ("requests", "Type,Name,Request Count,Failure Count,Median Response Time"),
        "/stats/failures/csv": ("failures", "Method,Name,Error,Occurrences,First Seen,Last Seen"),
        "/exceptions/csv": ("exceptions", "Count,Message,Traceback,Nodes"),
    }
    for path, (kind, header) in expected.items():
        response = ui.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Type"].startswith("text/csv")
        disposition = response.headers["Content-Disposition"]
        assert re.fullmatch(
            rf"attachment;filename=Locust_\d{{4}}-\d\d-\d\d-\d\dh\d\d_web_api_locustfile\.py_http://127\.0\.0\.1:\d+_{kind}\.csv",
            disposition,
        ), disposition
        rows = list(csv.reader(io.StringIO(response.text)))
        assert ",".join(rows[0]).startswith(header), path
        assert len(rows) > 1, path
    requests_rows = list(csv.DictReader(io.StringIO(ui.get("/stats/requests/csv").text)))
    assert requests_rows[-1]["Name"] == "Aggregated"
    history = ui.get("/stats/requests_full_history/csv")
    assert history.status_code == 200
    assert history.text.startswith("Timestamp,User Count,Type,Name,Requests/s")
    assert "requests_full_history.csv" in history.headers["Content-Disposition"]


def test_report_is_served_and_downloadable(ui):
    swarm(ui, 4, 10)
    running_with(ui, 4)
    page = ui.get("/stats/report")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert "Content-Disposition" not in page.headers
    assert "Download the Report" in page.text
    download = ui.get("/stats/report", params={"download": "1"})
    assert download.status_code == 200
    assert re.fullmatch(
        r"attachment;filename=Locust_.*_web_api_locustfile\.py_http://127\.0\.0\.1:\d+\.html",
        download.headers["Content-Disposition"],
    )
    assert "Download the Report" not in download.text


def test_post_user_updates_the_user_class(ui):
    response = ui.post("/user", json_body={"user_class_name": "Reader", "host": "http://127.0.0.1:1", "weight": 1})
    assert response.status_code == 201
    assert response.json() == {}
    assert ui.post("/user", json_body={"user_class_name": "Nobody"}).status_code == 404
    assert ui.post("/user", data="not json").status_code == 400


def test_stop_then_reset_then_start_again(ui):
    swarm(ui, 3, 10)
    running_with(ui, 3)
    until(lambda: ui.get("/stats/history").json()["history"], "a history point")
    assert ui.post("/stop").json() == {"success": True, "message": "Test stopped"}
    stopped = until_true(ui.stats, lambda r: r["state"] == "stopped", "the stopped state")
    assert stopped["user_count"] == 0
    assert ui.get("/stats/history").json()["history"]  # kept after a stop, for the charts
    reset = ui.post("/stats/reset")
    assert (reset.status_code, reset.text) == (200, "ok")
    after = ui.stats()
    assert aggregated(after)["num_requests"] == 0
    assert after["errors"] == []
    history = ui.get("/stats/history").json()
    assert history["history"] == [] and history["reset_at"] > 0
    assert ui.get("/exceptions").json() == {"exceptions": []}
    # A new test from the stopped state starts a new history.
    started_at = time.time()
    swarm(ui, 2, 10)
    running_with(ui, 2)
    points = until(lambda: ui.get("/stats/history").json()["history"], "a point of the new test")
    assert points[0]["time"] >= started_at - 1


def test_swarm_run_time_stops_the_test_but_not_the_ui(ui):
    body = swarm(ui, 2, 10, run_time="2s")
    assert body["run_time"] == 2
    until(lambda: ui.stats()["state"] == "stopped", "the run time to end the test", timeout=20)
    assert ui.proc.poll() is None
    assert ui.get("/").status_code == 200


# -- other ways of running -----------------------------------------------------------------------


def test_autostart_autoquit_writes_csv_and_exits_with_the_code(demo, tmp_path):
    locustfile = tmp_path / "web_api_locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    ui = HordeUI(
        tmp_path,
        "-f", str(locustfile), "-H", demo.url, "--autostart", "-u", "3", "-r", "10", "-t", "2s",
        "--autoquit", "1", "--csv", str(tmp_path / "auto"), "--web-host", "0.0.0.0",
    )  # fmt: skip
    try:
        # Served while the test runs.
        assert ui.get("/stats/requests").status_code == 200
        code = ui.wait_exit(timeout=60)
    finally:
        ui.stop()
    err = ui.stderr()
    assert code == 1, err[-3000:]  # failures and exceptions: --exit-code-on-error
    assert "beyond this machine, without --web-login" in err
    assert "--autoquit time reached, shutting down" in err
    assert "Shutting down (exit code 1)" in err
    assert "Response time percentiles (approximated)" in err + ui.out_path.read_text()
    rows = stats_rows(tmp_path / "auto_stats.csv")
    assert int(rows[("", "Aggregated")]["Request Count"]) > 0
    assert int(rows[("GET", "fail")]["Failure Count"]) > 0


def test_autostart_without_autoquit_stays_up_until_sigterm(demo, tmp_path):
    ui = HordeUI(
        tmp_path, "-f", str(LOCUSTFILES / "web_ui_extension.py"), "-H", demo.url,
        "--autostart", "-u", "2", "-r", "10", "-t", "1s",
    )  # fmt: skip
    try:
        until(lambda: ui.stats()["state"] == "stopped" and aggregated(ui.stats())["num_requests"], "-t to stop it")
        assert ui.proc.poll() is None
        assert ui.stats()["state"] == "stopped"
    finally:
        code = ui.stop()
    err = ui.stderr()
    assert code == 0, err[-3000:]
    assert "Got SIGTERM signal" in err
    assert "Shutting down (exit code 0)" in err


def test_web_login_basic_auth_and_token(demo, tmp_path):
    ui = HordeUI(
        tmp_path, "-f", str(LOCUSTFILES / "web_ui_extension.py"), "-H", demo.url, "--web-login",
        "--web-base-path", "/horde",
        env={"HORDE_WEB_USER": "ann", "HORDE_WEB_PASSWORD": "s3cret", "HORDE_WEB_TOKEN": "tok-123"},
        base_path="/horde",
    )  # fmt: skip
    try:
        denied = http_get(ui.url("/stats/requests"))
        assert denied.status_code == 401
        assert denied.headers["WWW-Authenticate"].startswith("Basic")
        assert denied.json()["success"] is False
        assert http_get(ui.url("/stats/requests"), auth=("ann", "wrong")).status_code == 401
        assert http_get(ui.url("/stats/requests"), auth=("ann", "s3cret")).status_code == 200
        bearer = {"Authorization": "Bearer tok-123"}
        assert http_get(ui.url("/stats/requests"), headers=bearer).status_code == 200
        assert http_post(ui.url("/stop")).status_code == 401
        # ?token= leaves a cookie the page's links then use.
        browser = Client()  # one browser tab: it keeps the cookie
        page = browser.get(ui.url("/"), params={"token": "tok-123"})
        assert page.status_code == 200
        args = template_args(page.text)
        assert (args["auth_token"], args["base_path"]) == ("tok-123", "/horde")
        assert browser.get(ui.url("/stats/requests/csv")).status_code == 200
        assert http_get(ui.url("/"), params={"token": "tok-124"}).status_code == 401
        # The locustfile's own route, protected by auth_required_if_enabled (not under the base path).
        greeting = f"http://127.0.0.1:{ui.port}/greeting"
        assert http_get(greeting).status_code == 401
        body = http_get(greeting, headers=bearer).json()
        assert body["greeting"] == "hello from the locustfile" and body["requests"] == 0
        # Only under the base path; no full history without --csv-full-history.
        assert http_get(f"http://127.0.0.1:{ui.port}/stats/requests", headers=bearer).status_code == 404
        full = http_get(ui.url("/stats/requests_full_history/csv"), headers=bearer)
        assert full.status_code == 404
    finally:
        ui.stop()


def test_web_login_without_credentials_logs_a_fresh_token(demo, tmp_path):
    ui = HordeUI(tmp_path, "-f", str(LOCUSTFILES / "web_ui_extension.py"), "-H", demo.url, "--web-login")
    try:
        match = until(lambda: re.search(r"\?token=([\w-]+)", ui.stderr()), "the logged URL with its token")
        token = match.group(1)
        assert len(token) >= 20
        assert http_get(ui.url("/stats/requests")).status_code == 401
        assert http_get(ui.url("/stats/requests"), params={"token": token}).status_code == 200
        assert "WWW-Authenticate" not in http_get(ui.url("/")).headers
    finally:
        ui.stop()


def test_custom_route_from_the_locustfile(demo, tmp_path):
    ui = HordeUI(tmp_path, "-f", str(LOCUSTFILES / "web_ui_extension.py"), "-H", demo.url)
    try:
        swarm(ui, 2, 10)
        running_with(ui, 2)
        body = ui.get("/greeting").json()
        assert body["greeting"] == "hello from the locustfile"
        assert body["requests"] > 0
    finally:
        ui.stop()


def test_busy_port_is_an_error(demo, tmp_path):
    ui = HordeUI(tmp_path, "-f", str(LOCUSTFILES / "web_ui_extension.py"), "-H", demo.url)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "horde", "-f", str(LOCUSTFILES / "web_ui_extension.py"), "-H", demo.url,
             "--web-port", str(ui.port)],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )  # fmt: skip
    finally:
        ui.stop()
    assert result.returncode == 1
    assert "cannot listen on" in result.stderr
