"""The web UI end to end: a real ``horde --demo-target`` process with its web UI, driven by Debian's
Chromium through Playwright — start a test from the form, watch the table and charts fill, edit the
user count, see a failure, download the CSV, stop and reset."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

import pytest
from cli_helpers import LOCUSTFILES, ROOT
from conftest import free_port, wait_for_port

from horde import html as html_report
from horde.stats import PERCENTILES_TO_REPORT, StatsCSV

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
# Generous: the page polls every 1-2 s and the machine may be busy; nothing here measures speed.
WAIT_MS = 20_000

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)
expect = sync_api.expect
# Every expect() waits as long as the page's other waits: Playwright's default of 5 s is less than
# a shape's two 2 s steps take on a busy machine.
expect.set_options(timeout=WAIT_MS)

# A second user class next to the Conduit journey, so that the Failures tab has something to show.
FAILING_LOCUSTFILE = """
from locust import HttpUser, constant, task

class Failing(HttpUser):
    wait_time = constant(0.5)

    @task
    def broken(self):
        self.client.get("/status/500")
"""


@contextmanager
def horde_web_ui(tmp_path: Path, *extra_args: str, env: dict[str, str] | None = None, locustfile: str | None = None):
    """`horde -f conduit.py,failing.py --demo-target` (or `-f locustfile`) with its web UI on a free
    port; yields the URL and the log's path."""
    if locustfile is None:
        failing = tmp_path / "failing.py"
        failing.write_text(FAILING_LOCUSTFILE)
        locustfile = f"{LOCUSTFILES / 'conduit.py'},{failing}"
    port = free_port()
    log_path = tmp_path / "horde.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "HORDE_"))}
    full_env["PYTHONWARNINGS"] = "ignore"
    full_env.update(env or {})
    command = [sys.executable, "-m", "horde", "-f", locustfile, "--demo-target"]
    command += ["--web-host", "127.0.0.1", "--web-port", str(port), *extra_args]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    try:
        wait_for_port(port, proc)
        yield {"url": f"http://127.0.0.1:{port}/", "log": log_path}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def horde_web(tmp_path):
    with horde_web_ui(tmp_path) as web:
        yield web


@pytest.fixture
def page():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.js_errors = errors
            yield page
        finally:
            browser.close()


@contextmanager
def screenshot_on_failure(page, name: str, log_path: Path | None = None):
    """Saves the page as tests/artifacts/<name>.png (and horde's log) when the block fails."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"{name}.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failing page: {shot}")
        except Exception as e:  # the browser may be the thing that broke
            print(f"no screenshot: {e}")
        if log_path is not None and log_path.exists():
            shutil.copy(log_path, ARTIFACTS / f"{name}.horde.log")
            print(f"horde's log: {ARTIFACTS / f'{name}.horde.log'}")
        print(f"JavaScript errors: {page.js_errors}")
        raise


def cell(page, section: str, column: str):
    """A cell of the stats table's Aggregated row (section "tfoot") by column title."""
    titles = page.locator("#stats-table thead th").all_inner_texts()
    return page.locator(f"#stats-table {section} tr").first.locator("td").nth(titles.index(column))


def wait_until(page, script: str, arg=None):
    page.wait_for_function(script, arg=arg, timeout=WAIT_MS)


def wait_for_requests(page, more_than: int):
    """Waits until the table's Aggregated row counts more than `more_than` requests."""
    wait_until(
        page,
        "n => +document.querySelector('#stats-table tfoot td:nth-child(3)').textContent.replace(/,/g, '') > n",
        more_than,
    )


# The Aggregated row's time columns and the precise figure each shows.
TIME_COLUMNS = {
    "Median (ms)": "precise_median_response_time",
    "95%ile (ms)": "precise_response_time_percentile_0.95",
    "99%ile (ms)": "precise_response_time_percentile_0.99",
    "Average (ms)": "avg_response_time",
    "Min (ms)": "precise_min_response_time",
    "Max (ms)": "precise_max_response_time",
}


def assert_table_shows_the_hdr_figures(page, url: str) -> None:
    """A stopped run: the table's times are the HDR histogram's, to three significant digits (µs
    for the demo target's sub-millisecond times), in order, where Locust's p95 can read 0 below a
    median of 0.03."""
    total = None
    for _ in range(50):  # the page and this request may read /stats/requests 2 s apart (its cache)
        with urlopen(url + "stats/requests", timeout=10) as response:
            total = json.load(response)["stats"][-1]
        shown = cell(page, "tfoot", "# Requests").inner_text().replace(",", "")
        if shown == str(total["num_requests"]):
            break
        page.wait_for_timeout(200)
    else:
        raise AssertionError(f"the table never showed the stopped run's {total and total['num_requests']} requests")
    cells = {column: cell(page, "tfoot", column).inner_text().replace(",", "") for column in TIME_COLUMNS}
    for column, key in TIME_COLUMNS.items():
        # As many decimals as the report's formatter gives; the last one rounded either way on a tie.
        decimals = len(html_report._ms(total[key]).partition(".")[2])
        assert len(cells[column].partition(".")[2]) == decimals, (column, cells[column], total[key])
        assert abs(float(cells[column]) - total[key]) <= 0.5 * 10**-decimals + 1e-9, (column, cells[column], total[key])
    median, p95, p99 = (float(cells[c]) for c in ("Median (ms)", "95%ile (ms)", "99%ile (ms)"))
    assert 0 < median <= p95 <= p99


def test_run_a_test_from_the_browser(horde_web, page, tmp_path):
    with screenshot_on_failure(page, "test_run_a_test_from_the_browser", horde_web["log"]):
        page.goto(horde_web["url"])

        # The start form, with the demo target's URL as host.
        expect(page.locator("#start-view")).to_be_visible()
        expect(page.locator("#nav-state")).to_have_text("READY")
        expect(page.locator("#start-host")).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+$"))
        # Not a master: no workers to show.
        expect(page.locator("[data-tab=workers]")).to_have_count(0)
        expect(page.locator("#nav-workers")).to_have_count(0)
        page.fill("#start-users", "4")
        page.fill("#start-rate", "4")
        page.click("#start-submit")

        # Running: the table fills with the journey's rows and numbers.
        expect(page.locator("#run-view")).to_be_visible()
        expect(page.locator("#nav-state")).to_have_text(re.compile("SPAWNING|RUNNING"))
        expect(page.locator("#stats-table tbody")).to_contain_text("/api/articles?limit=[n]", timeout=WAIT_MS)
        expect(page.locator("#stats-table tbody")).to_contain_text("/status/500")
        expect(page.locator("#stats-table tfoot")).to_contain_text("Aggregated")
        wait_for_requests(page, 0)
        assert cell(page, "tfoot", "Median (ms)").inner_text() != ""
        expect(page.locator("#nav-users")).to_have_text("4")
        # For a person to look at (not compared to anything): the Statistics and Charts tabs.
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-statistics.png"))

        # Charts: points arrive once a second and get drawn.
        page.click("[data-tab=charts]")
        wait_until(page, "() => +document.querySelector('#chart-rps').dataset.points >= 3")
        wait_until(page, "() => +document.querySelector('#chart-rps').dataset.drawn >= 3")
        wait_until(page, "() => +document.querySelector('#chart-users').dataset.drawn >= 3")
        # Pixels, not just bookkeeping: the RPS line's green shows once requests/s is above zero.
        wait_until(
            page,
            """() => {
                const c = document.querySelector('#chart-rps canvas');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let green = 0;
                for (let i = 0; i < d.length; i += 4) {
                    if (d[i + 3] > 200 && d[i + 1] > 120 && d[i] < 80 && d[i + 2] < 110) green++;
                }
                return green > 20;
            }""",
        )

        # The latency distribution: Aggregated by default, then one row picked from the list.
        wait_until(page, "() => +document.querySelector('#chart-dist').dataset.bars > 0")
        expect(page.locator("#dist-select")).to_have_value(" Aggregated")
        page.screenshot(path=str(ARTIFACTS / "ui-charts.png"))
        page.select_option("#dist-select", "GET /api/articles?limit=[n]")
        expect(page.locator("#chart-dist")).to_have_attribute("data-name", "/api/articles?limit=[n]")
        expect(page.locator("#dist-summary")).to_have_text(re.compile(r"[1-9][\d,]* requests"))
        wait_until(page, "() => +document.querySelector('#chart-dist').dataset.bars > 0")

        # Edit: more users while running.
        page.click("#btn-edit")
        expect(page.locator("#edit-dialog")).to_be_visible()
        page.fill("#edit-users", "6")
        page.fill("#edit-rate", "10")
        page.click("#edit-submit")
        expect(page.locator("#edit-dialog")).to_be_hidden()
        expect(page.locator("#nav-users")).to_have_text("6")

        # Failures: the demo target's /status/500.
        page.click("[data-tab=failures]")
        failures = page.locator("#failures-table tbody")
        expect(failures).to_contain_text("/status/500")
        expect(failures).to_contain_text("500")

        # A click on a table row picks that row's latency distribution.
        page.click("[data-tab=stats]")
        page.locator("#stats-table tbody tr", has_text="/status/500").click()
        page.click("[data-tab=charts]")
        expect(page.locator("#dist-select")).to_have_value("GET /status/500")
        expect(page.locator("#chart-dist")).to_have_attribute("data-name", "/status/500")

        # Download Data: the requests CSV has horde's (Locust's) header.
        page.click("[data-tab=download]")
        with page.expect_download() as download_info:
            page.click("#dl-requests")
        download = download_info.value
        path = tmp_path / download.suggested_filename
        download.save_as(path)
        assert path.suffix == ".csv"
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == StatsCSV(None, PERCENTILES_TO_REPORT).requests_csv_columns
        assert any(r[1] == "/api/articles?limit=[n]" for r in rows[1:])

        # Stop, then reset: the table's counts and the charts start over.
        page.click("#btn-stop")
        expect(page.locator("#nav-state")).to_have_text("STOPPED")
        expect(page.locator("#btn-new")).to_be_visible()
        expect(page.locator("#btn-stop")).to_be_hidden()
        page.click("[data-tab=stats]")
        assert_table_shows_the_hdr_figures(page, horde_web["url"])
        page.click("#btn-reset")
        expect(cell(page, "tfoot", "# Requests")).to_have_text("0")
        page.click("[data-tab=charts]")
        wait_until(page, "() => document.querySelector('#chart-rps').dataset.points === '0'")

        # New test: the form comes back, prefilled.
        page.click("#btn-new")
        expect(page.locator("#start-view")).to_be_visible()
        expect(page.locator("#start-users")).not_to_have_value("")

        assert page.js_errors == []


def test_base_path_and_token(tmp_path, page):
    """Behind --web-base-path and --web-login (token): assets, polling and downloads all carry both."""
    token = "e2e-secret-token"
    with horde_web_ui(tmp_path, "--web-base-path", "/ui", "--web-login", env={"HORDE_WEB_TOKEN": token}) as web:
        with screenshot_on_failure(page, "test_base_path_and_token", web["log"]):
            page.goto(f"{web['url']}ui/?token={token}")
            expect(page.locator("#start-view")).to_be_visible()
            page.fill("#start-users", "2")
            page.fill("#start-rate", "2")
            page.click("#start-submit")
            expect(page.locator("#stats-table tbody")).to_contain_text("/api/articles?limit=[n]")
            page.click("[data-tab=download]")
            href = page.get_attribute("#dl-requests", "href")
            assert href == f"/ui/stats/requests/csv?token={token}"
            with page.expect_download() as download_info:
                page.click("#dl-requests")
            path = tmp_path / "requests.csv"
            download_info.value.save_as(path)
            assert path.read_text().startswith("Type,Name,Request Count,")
            page.click("#btn-stop")
            expect(page.locator("#nav-state")).to_have_text("STOPPED")
            assert page.js_errors == []


def test_class_picker(tmp_path, page):
    """--class-picker: the form lists the user classes; only the checked ones run."""
    with horde_web_ui(tmp_path, "--class-picker") as web:
        with screenshot_on_failure(page, "test_class_picker", web["log"]):
            page.goto(web["url"])
            expect(page.locator("#class-picker")).to_be_visible()
            expect(page.locator("input[name=user_classes]")).to_have_count(2)
            page.uncheck("input[name=user_classes][value=Failing]")
            page.fill("#start-users", "3")
            page.fill("#start-rate", "3")
            page.click("#start-submit")
            expect(page.locator("#stats-table tbody")).to_contain_text("/api/articles/[slug]/comments")
            wait_for_requests(page, 30)
            expect(page.locator("#stats-table tbody")).not_to_contain_text("/status/500")
            page.click("#btn-stop")
            expect(page.locator("#nav-state")).to_have_text("STOPPED")
            assert page.js_errors == []


def test_load_test_shape(tmp_path, page):
    """With a LoadTestShape the form asks for no user count or spawn rate, and the shape ends the test."""
    with horde_web_ui(tmp_path, locustfile=str(LOCUSTFILES / "shape.py")) as web:
        with screenshot_on_failure(page, "test_load_test_shape", web["log"]):
            page.goto(web["url"])
            expect(page.locator("#start-view")).to_be_visible()
            expect(page.locator("#start-users")).to_be_hidden()
            expect(page.locator("#start-rate")).to_be_hidden()
            expect(page.locator("#shape-note")).to_be_visible()
            page.click("#start-submit")
            expect(page.locator("#btn-edit")).to_be_hidden()
            expect(page.locator("#stats-table tbody")).to_contain_text("/")
            # Two 2 s steps, then the shape returns None and the test stops by itself.
            expect(page.locator("#nav-state")).to_have_text("STOPPED")
            expect(page.locator("#btn-new")).to_be_visible()
            assert page.js_errors == []


def test_response_time_chart_scale_ignores_an_early_spike(horde_web, page):
    """One spike at the start of a long run must not flatten the response-time chart: its scale
    covers the last minute in full and older points up to their 99th percentile."""
    with screenshot_on_failure(page, "test_response_time_chart_scale_ignores_an_early_spike", horde_web["log"]):
        page.goto(horde_web["url"])
        expect(page.locator("#start-view")).to_be_visible()
        tops = page.evaluate(
            """async () => {
                const { scaleMax } = await import("./assets/charts.js");
                const times = Array.from({ length: 300 }, (_, i) => 1.7e9 + i);
                const early = times.map((_, i) => (i === 5 ? 500 : 0.03 + (i % 7) * 0.001));
                const late = times.map((_, i) => (i === 290 ? 500 : 0.03));
                const gaps = times.map((_, i) => (i % 2 ? null : 0.05));
                return [scaleMax(times, [early]), scaleMax(times, [early], true),
                        scaleMax(times, [late], true), scaleMax(times, [gaps], true)];
            }"""
        )
        assert tops[0] == 500  # the plain maximum (the RPS and users charts)
        assert 0.03 < tops[1] < 0.04  # the spike 295 s ago is off the scale
        assert tops[2] == 500  # a spike in the last minute is shown
        assert tops[3] == 0.05  # nulls are gaps, not zeros
        assert page.js_errors == []
