"""The open workload model in the web UI: ``/swarm`` with an arrival rate, the figures
``/stats/requests`` adds (dropped iterations, what a response time measures, service times), the
model switch refused while a test runs, Locust's plain ``/swarm`` unchanged, and the HTML report of
both models. A real ``horde`` process with its web UI against the demo target, all on 127.0.0.1."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from test_web_api import HordeUI, aggregated, running_with, template_args, until_true

from horde.stats import CLOSED_MODEL_MEASURE, OPEN_MODEL_MEASURE, SERVICE_TIME_MEASURE

# Each iteration takes ~50 ms: one user takes at most ~20 arrivals a second, so a higher rate with
# max_users 1 drops iterations whatever the machine's speed.
LOCUSTFILE = """
from locust import HttpUser, task


class Slow(HttpUser):
    @task
    def slow(self):
        self.client.get("/delay/50", name="/delay")
"""


@pytest.fixture(scope="module")
def locustfile(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("web_open_model") / "open_model_locustfile.py"
    path.write_text(LOCUSTFILE)
    return path


@pytest.fixture(scope="module")
def ui(demo, locustfile):
    # The command line's open-model options, for the form's prefill; the tests post their own.
    server = HordeUI(
        locustfile.parent,
        "-f", str(locustfile), "-H", demo.url, "-u", "2",
        "--arrival-rate", "25", "--max-users", "4", "--arrival-distribution", "poisson",
    )  # fmt: skip
    yield server
    server.stop()


def post_swarm(ui: HordeUI, **form: str) -> dict[str, Any]:
    response = ui.post("/swarm", data=form)
    assert response.status_code == 200, response.text
    return response.json()


def stop(ui: HordeUI) -> dict[str, Any]:
    assert ui.post("/stop").json()["success"] is True
    return until_true(ui.stats, lambda r: r["state"] == "stopped", "the test to stop")


def idle(ui: HordeUI) -> dict[str, Any]:
    """Stops whatever an earlier test left running; returns /stats/requests."""
    report = ui.stats()
    return report if report["state"] in ("ready", "stopped") else stop(ui)


def open_model_running(ui: HordeUI, what: str, ok: Any = lambda report: True) -> dict[str, Any]:
    """Waits for an open-model test with requests counted (and ``ok(report)``)."""

    def check(report: dict[str, Any]) -> bool:
        return (
            report["state"] == "running"
            and report["open_model"] is True
            and aggregated(report)["num_requests"] > 0
            and ok(report)
        )

    return until_true(ui.stats, check, what)


def test_form_is_prefilled_from_the_command_line(ui):
    args = template_args(ui.get("/").text)
    assert (args["num_users"], args["arrival_rate"], args["max_users"]) == (2, 25.0, 4)
    assert args["arrival_distribution"] == "poisson"
    assert args["arrival_distributions"] == ["even", "poisson"]
    page = ui.get("/").text
    for name in ("arrival_rate", "max_users", "arrival_distribution"):
        assert f'name="{name}"' in page


def test_open_model_swarm_runs_and_counts_dropped_iterations(ui):
    idle(ui)
    body = post_swarm(
        ui, user_count="1", spawn_rate="10", arrival_rate="60", max_users="1", arrival_distribution="even"
    )
    assert body["success"] is True, body
    report = open_model_running(ui, "requests and dropped iterations", lambda r: r["dropped_iterations"] > 0)
    assert report["user_count"] == 1
    assert report["response_time_measure"] == OPEN_MODEL_MEASURE
    assert report["service_time_measure"] == SERVICE_TIME_MEASURE
    assert report["arrivals"] == {"rate": 60.0, "users": 1, "max_users": 1, "distribution": "even"}
    service = report["service_time_ms"]
    assert set(service) == {"p50", "p90", "p99", "max"}
    assert 0 < service["p50"] <= service["p99"] <= service["max"]
    # Locust's keys are all there, and the rows are Locust's.
    assert {"stats", "errors", "total_rps", "fail_ratio", "state", "user_count"} <= set(report)
    assert [row["name"] for row in report["stats"]] == ["/delay", "Aggregated"]
    stop(ui)
    # The figures stay after the test, until the next one starts.
    after = ui.stats()
    assert after["open_model"] is True and after["dropped_iterations"] >= report["dropped_iterations"]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"arrival_rate": "0"}, "arrival_rate"),
        ({"arrival_rate": "-1"}, "arrival_rate"),
        ({"arrival_rate": "abc"}, "arrival_rate"),
        ({"arrival_rate": "nan"}, "arrival_rate"),
        ({"arrival_rate": "inf"}, "arrival_rate"),
        ({"arrival_rate": "10", "max_users": "2"}, "max_users"),  # fewer than user_count
        ({"arrival_rate": "10", "max_users": "many"}, "max_users"),
        ({"arrival_rate": "10", "arrival_distribution": "bursty"}, "arrival_distribution"),
    ],
)
def test_bad_open_model_values_start_nothing(ui, form, field):
    before = idle(ui)
    body = post_swarm(ui, user_count="3", spawn_rate="10", **form)
    assert body["success"] is False
    assert field in body["message"], body
    report = ui.stats()
    assert report["state"] == before["state"] and report["user_count"] == 0


def test_model_switch_is_refused_while_a_test_runs(ui, demo):
    idle(ui)
    post_swarm(ui, user_count="2", spawn_rate="10")
    running_with(ui, 2)
    refused = post_swarm(ui, user_count="2", spawn_rate="10", arrival_rate="10")
    assert refused["success"] is False and "stop the test first" in refused["message"]
    assert ui.stats()["open_model"] is False
    stop(ui)

    assert post_swarm(ui, user_count="1", spawn_rate="10", arrival_rate="10", max_users="2")["success"] is True
    open_model_running(ui, "the open-model test")
    refused = post_swarm(ui, user_count="3", spawn_rate="10")
    assert refused["success"] is False and "stop the test first" in refused["message"]
    # An arrival rate changes the running test's rate and pool maximum (the Edit dialog's form).
    changed = post_swarm(ui, arrival_rate="15", max_users="3")
    assert changed["success"] is True, changed
    report = until_true(ui.stats, lambda r: (r["arrivals"] or {}).get("rate") == 15.0, "the new rate")
    assert report["arrivals"]["max_users"] == 3 and report["state"] == "running"
    assert post_swarm(ui, arrival_rate="15", max_users="0")["success"] is False
    stop(ui)


def test_plain_locust_swarm_is_unchanged(ui, demo):
    idle(ui)
    # What Locust's own page and scripts post: no open-model field at all.
    body = post_swarm(ui, user_count="2", spawn_rate="10", host=demo.url)
    assert body == {"success": True, "message": "Swarming started", "host": demo.url}
    report = running_with(ui, 2)
    assert report["open_model"] is False
    assert report["response_time_measure"] == CLOSED_MODEL_MEASURE
    assert (report["dropped_iterations"], report["arrivals"], report["service_time_ms"]) == (0, None, None)
    # horde's form in the closed model: an empty arrival rate is no rate.
    assert post_swarm(ui, user_count="3", spawn_rate="10", arrival_rate="", max_users="")["success"] is True
    running_with(ui, 3)
    stop(ui)


def test_report_of_an_open_model_run(ui):
    idle(ui)
    post_swarm(ui, user_count="1", spawn_rate="10", arrival_rate="60", max_users="1")
    open_model_running(ui, "dropped iterations", lambda r: r["dropped_iterations"] > 0)
    stop(ui)
    page = ui.get("/stats/report").text
    dropped = re.search(r'<span id="dropped-iterations">(\d+)</span>', page)
    assert dropped and int(dropped.group(1)) > 0, page[:3000]
    assert html.escape(OPEN_MODEL_MEASURE) in page
    assert "Service Time Statistics" in page and html.escape(SERVICE_TIME_MEASURE) in page
    assert "<dt>horde's own delay per request:</dt><dd>p50 " in page


def test_report_of_a_closed_model_run(ui):
    idle(ui)
    post_swarm(ui, user_count="2", spawn_rate="10")
    running_with(ui, 2)
    stop(ui)
    page = ui.get("/stats/report").text
    assert f"<dt>Response times:</dt><dd>measured {html.escape(CLOSED_MODEL_MEASURE)}</dd>" in page
    assert "<dt>horde's own delay per request:</dt><dd>p50 " in page
    assert "Service Time Statistics" not in page and "Dropped iterations" not in page


def test_a_master_refuses_the_open_model(demo, locustfile, tmp_path):
    master = HordeUI(
        tmp_path, "-f", str(locustfile), "-H", demo.url, "--master",
        "--master-bind-host", "127.0.0.1", "--master-bind-port", str(free_port()),
    )  # fmt: skip
    try:
        assert template_args(master.get("/").text)["arrival_rate"] is None
        body = post_swarm(master, user_count="2", spawn_rate="10", arrival_rate="10")
        assert body["success"] is False and "distributed" in body["message"]
        assert master.stats()["state"] == "ready"
    finally:
        master.stop()


def test_open_model_from_the_browser(tmp_path, locustfile):
    # Skipped with the browser tests when Chromium or Playwright is missing.
    e2e = pytest.importorskip("test_web_e2e")
    sync_api = e2e.sync_api
    expect = sync_api.expect
    with e2e.horde_web_ui(tmp_path, locustfile=str(locustfile)) as web, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=e2e.CHROMIUM, args=e2e.CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(e2e.WAIT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.js_errors = errors
            with e2e.screenshot_on_failure(page, "test_open_model_from_the_browser", web["log"]):
                page.goto(web["url"])
                expect(page.locator("#start-view")).to_be_visible()
                expect(page.locator("#start-arrival-rate")).to_have_value("")
                expect(page.locator("#start-max-users")).to_be_disabled()
                expect(page.locator("#nav-dropped-item")).to_be_hidden()
                page.fill("#start-users", "1")
                page.fill("#start-rate", "5")
                page.fill("#start-arrival-rate", "60")
                expect(page.locator("#start-users-label")).to_contain_text("pool started up front")
                page.fill("#start-max-users", "1")
                page.select_option("#start-distribution", "poisson")
                page.click("#start-submit")

                expect(page.locator("#run-view")).to_be_visible()
                expect(page.locator("#stats-table tbody")).to_contain_text("/delay")
                expect(page.locator("#rt-measure")).to_contain_text("scheduled start")
                expect(page.locator("#rt-measure")).to_contain_text("Service times")
                expect(page.locator("#nav-dropped-item")).to_be_visible()
                e2e.wait_until(page, "() => +document.querySelector('#nav-dropped').textContent.replace(/,/g, '') > 0")

                # Edit: the rate and max users of the running test.
                page.click("#btn-edit")
                expect(page.locator("#edit-arrival-rate")).to_have_value("60")
                expect(page.locator("#edit-users")).to_be_hidden()
                page.fill("#edit-arrival-rate", "40")
                page.fill("#edit-max-users", "2")
                page.click("#edit-submit")
                expect(page.locator("#edit-dialog")).to_be_hidden()
                arrivals = "async () => (await (await fetch('stats/requests')).json()).arrivals"
                e2e.wait_until(page, f"async () => ((await ({arrivals})()) || {{}}).rate === 40")
                assert page.evaluate(arrivals) == {"rate": 40, "users": 1, "max_users": 2, "distribution": "poisson"}

                page.click("#btn-stop")
                expect(page.locator("#nav-state")).to_have_text("STOPPED")
                assert page.js_errors == []
        finally:
            browser.close()
