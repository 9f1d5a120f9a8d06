"""The --html report: one self-contained file with Locust's tables, embedded data and charts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest

from horde import html as hh
from horde.exception import CatchResponseError
from horde.stats import RequestStats

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "source", "wbr"}


class Checker(HTMLParser):
    """Collects what the tests look at and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.urls: list[str] = []
        self.scripts: dict[str, str] = {}
        self.tables: list[list[list[str]]] = []
        self._script: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href", "action", "data", "poster"):
            if attrs.get(name):
                self.urls.append(attrs[name])
        if tag == "script":
            self._script = attrs.get("id") or attrs.get("type") or "inline"
            self.scripts[self._script] = ""
        if tag == "table":
            self.tables.append([])
        if tag == "tr":
            self.tables[-1].append([])
        if tag in ("td", "th"):
            self._cell = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()
        if tag == "script":
            self._script = None
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell or []).strip())
            self._cell = None

    def handle_data(self, data):
        if self._script is not None:
            self.scripts[self._script] += data
        if self._cell is not None:
            self._cell.append(data)


def parse(page: str) -> Checker:
    checker = Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    return checker


class WebUser:
    host = "http://127.0.0.1:8089"
    weight = 1

    def browse(self):
        pass

    def buy(self):
        pass

    tasks = [browse, browse, buy]


def make_environment(with_runner: bool = True):
    stats = RequestStats()
    for rt in (5, 10, 15, 20, 200):
        stats.log_request("GET", "/", rt, 100)
    stats.log_request("POST", "/login", 150, 20)
    stats.log_error("POST", "/login", CatchResponseError("bad password"))
    stats.log_request("GET", "/x</script><b>", 7, 1)
    runner = None
    if with_runner:
        runner = SimpleNamespace(
            stats=stats,
            state="stopped",
            user_count=3,
            final_user_classes_count={"WebUser": 3},
            user_classes=[WebUser],
            exceptions={"k": {"count": 2, "msg": "boom <1>", "traceback": 'File "lf.py", line 3', "nodes": {"local"}}},
        )
    return SimpleNamespace(
        runner=runner,
        stats=stats,
        host=None,
        locustfile="locustfile.py",
        user_classes=[WebUser],
        profile=None,
        parsed_options=None,
    )


@pytest.fixture
def environment():
    return make_environment()


def test_report_is_one_self_contained_document(environment):
    page = hh.get_html_report(environment, show_download_link=False)
    checker = parse(page)
    assert page.startswith("<!DOCTYPE html>")
    assert checker.urls == []  # no stylesheet, script or image is fetched
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "Download the Report" not in page


def test_report_tables_show_the_rows(environment):
    checker = parse(hh.get_html_report(environment))
    requests, percentiles, failures, exceptions = checker.tables
    assert requests[0] == [
        "Type",
        "Name",
        "# Requests",
        "# Fails",
        "Average (ms)",
        "Min (ms)",
        "Max (ms)",
        "Average size (bytes)",
        "RPS",
        "Failures/s",
    ]
    # Times to three significant digits (the HDR histograms' precision), µs at the finest.
    assert [r[:7] for r in requests[1:]] == [
        ["GET", "/", "5", "0", "50.0", "5.00", "200"],
        ["POST", "/login", "1", "1", "150", "150", "150"],
        ["GET", "/x</script><b>", "1", "0", "7.00", "7.00", "7.00"],
        ["", "Aggregated", "7", "1", "58.1", "5.00", "200"],
    ]
    assert percentiles[0][2:] == [f"{p}%ile (ms)" for p in (50, 60, 70, 80, 90, 95, 99, 100)]
    assert percentiles[1] == ["GET", "/", "15.0", "15.0", "20.0", "20.0", "200", "200", "200", "200"]
    assert failures[1][:4] == ["1", "POST", "/login", "CatchResponseError('bad password')"]
    assert exceptions[1] == ["2", "boom <1>", 'File "lf.py", line 3', "local"]


def test_report_shows_sub_millisecond_times_precisely():
    # Locust's whole-ms buckets read 0 for a server answering in tens of microseconds; the
    # report's tables show the HDR figures, and its data keeps Locust's beside them.
    stats = RequestStats()
    times = [0.021, 0.025, 0.031, 0.034, 0.038, 0.045, 0.052, 0.061, 0.075, 0.4]
    for rt in times:
        stats.log_request("GET", "/fast", rt, 10)
    environment = SimpleNamespace(runner=None, stats=stats, host=None, locustfile="lf.py", user_classes=[])
    checker = parse(hh.get_html_report(environment))
    requests, percentiles = checker.tables[:2]
    cells = [float(c) for c in percentiles[1][2:]]
    assert cells == sorted(cells) and cells[0] > 0
    assert percentiles[1][2] == "0.038"  # the 5th of 10 times (nearest rank), within 0.1%
    assert percentiles[1][-1] == "0.400"
    assert requests[1][4:7] == [f"{sum(times) / len(times):.3f}", "0.021", "0.400"]
    data = json.loads(checker.scripts["report-data"])
    assert data["response_time_statistics"][0]["0.5"] == 0  # Locust's figure, unchanged
    assert data["precise_response_time_statistics"][0]["0.5"] == pytest.approx(0.038, rel=1e-3)


def test_report_embeds_locusts_report_data(environment):
    checker = parse(hh.get_html_report(environment))
    data = json.loads(checker.scripts["report-data"])
    assert {
        "requests_statistics",
        "failures_statistics",
        "exceptions_statistics",
        "response_time_statistics",
        "start_time",
        "end_time",
        "duration",
        "host",
        "history",
        "locustfile",
        "tasks",
        "percentiles_to_chart",
    } <= set(data)
    assert data["host"] == "http://127.0.0.1:8089"  # the user classes' one host
    assert data["requests_statistics"][-1]["name"] == "Aggregated"
    assert data["requests_statistics"][2]["name"] == "/x</script><b>"
    assert data["tasks"]["per_class"]["WebUser"]["tasks"]["browse"]["ratio"] == pytest.approx(2 / 3)
    assert data["tasks"]["total"]["WebUser"]["ratio"] == 1.0
    assert data["exceptions_statistics"][0]["nodes"] == "local"


def test_report_shows_ratios_and_run_info(environment):
    page = hh.get_html_report(environment, theme="dark")
    assert '<html lang="en" data-theme="dark">' in page
    assert "66.7%</span> browse" in page and "33.3%</span> buy" in page
    assert "<dd>locustfile.py</dd>" in page and "<dd>http://127.0.0.1:8089</dd>" in page
    assert "?download=1&amp;theme=dark" in page


def test_report_adds_a_last_history_row_as_locust_does(environment):
    stats = environment.runner.stats
    stats.history.append({"time": "2000-01-01T00:00:00Z", "user_count": ["2000-01-01T00:00:00Z", 1]})
    hh.get_html_report(environment)
    assert len(stats.history) == 2 and stats.history[-1]["user_count"][1] == 3


def test_report_without_runner_or_requests():
    environment = make_environment(with_runner=False)
    environment.stats.clear_all()
    checker = parse(hh.get_html_report(environment))
    data = json.loads(checker.scripts["report-data"])
    assert data["tasks"] == {} and data["exceptions_statistics"] == [] and data["duration"] == "0 seconds"
    assert len(checker.tables) == 2  # the two statistics tables (Aggregated only)


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the report's script")


def draw_charts(page: str, tmp_path) -> list[tuple[str, str]]:
    """Runs the report's script on its data under node: each chart's (SVG, tooltip at mid-width)."""
    data = parse(page).scripts["report-data"]
    script = re.search(r"<script>\n(.*)</script>", page, re.S).group(1)
    # A minimal stand-in for the browser's DOM: the script only sets innerHTML and listens.
    harness = """
    function el(chart) {
      const e = { attrs: {"data-chart": chart}, style: {}, children: {}, innerHTML: "",
        getAttribute(n) { return this.attrs[n]; }, setAttribute(n, v) { this.attrs[n] = v; },
        addEventListener(t, f) { this["on" + t] = f; },
        querySelector(s) { return this.children[s] = this.children[s] || el(s); },
        getBoundingClientRect() { return {left: 0, top: 0, width: 900, height: 250}; },
        offsetLeft: 0, offsetTop: 0, offsetWidth: 100, clientWidth: 900 };
      return e;
    }
    const charts = ["rps", "response-times", "users"].map(el);
    global.document = {
      getElementById: () => ({ textContent: require("fs").readFileSync(process.argv[2], "utf8") }),
      querySelectorAll: () => charts,
    };
    require(process.argv[3]);
    charts.forEach(c => { c.children.svg.onmousemove({clientX: 450}); });
    console.log(JSON.stringify(charts.map(c => [c.innerHTML, c.children[".tip"].innerHTML])));
    """
    (tmp_path / "data.json").write_text(data)
    (tmp_path / "report.js").write_text(script)
    (tmp_path / "harness.js").write_text(harness)
    out = subprocess.run(
        ["node", str(tmp_path / "harness.js"), str(tmp_path / "data.json"), str(tmp_path / "report.js")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return [tuple(chart) for chart in json.loads(out)]


@needs_node
def test_report_script_draws_the_charts(environment, tmp_path):
    environment.runner.stats.sample_history(3)
    (rps, rps_tip), (times, _), (users, users_tip) = draw_charts(hh.get_html_report(environment), tmp_path)
    assert "Total Requests per Second" in rps and "<polyline" in rps and "Failures/s" in rps
    assert "50th percentile" in times and "95th percentile" in times and "99th percentile" in times
    assert "Number of Users" in users and "Users: 3" in users_tip and "RPS:" in rps_tip


@needs_node
def test_report_charts_a_point_a_second_on_a_scale_that_ignores_an_early_spike(environment, tmp_path):
    # The web UI's per-second points (web.history), when sampled, rather than Locust's 5 s rows;
    # one spike in the first seconds must not flatten two minutes of sub-millisecond times.
    start = 1_700_000_000
    points = []
    for i in range(120):
        p50 = 500.0 if i == 2 else 0.03 + (i % 5) * 0.001
        points.append(
            {
                "time": start + i,
                "user_count": 4,
                "current_rps": 1000.0,
                "current_fail_per_sec": 0.0,
                "response_time_percentile_0.5": p50,
                "response_time_percentile_0.95": p50 + 0.01,
                "response_time_percentile_0.99": p50 + 0.02,
                "avg_response_time": p50,
            }
        )
    environment.per_second_history = SimpleNamespace(points=points)
    page = hh.get_html_report(environment)
    assert json.loads(parse(page).scripts["report-data"])["chart_history"] == points
    (rps, _), (times, times_tip), _users = draw_charts(page, tmp_path)
    polyline = re.search(r'<polyline[^>]* points="([^"]*)"', rps).group(1)
    assert len(polyline.split()) == 120
    assert "3 off scale, up to 500 ms" in times  # the spike's three percentiles, clipped and said
    ticks = [float(t) for t in re.findall(r'text-anchor="end">([\d.]+)</text>', times)]
    assert 0.05 <= max(ticks) < 1  # the scale of the sub-millisecond times, not of the spike
    assert re.search(r"50th percentile: 0\.03\d ms", times_tip)


def test_save_html_report_fills_the_placeholders(environment, tmp_path):
    environment.parsed_options = SimpleNamespace(
        num_users=10, spawn_rate=2.5, run_time=60, html_file=str(tmp_path / "report_{u}_{r}_{t}.html")
    )
    path = hh.save_html_report(environment)
    assert path == str(tmp_path / "report_10_2_60.html")
    parse((tmp_path / "report_10_2_60.html").read_text(encoding="utf-8"))

    options = SimpleNamespace(num_users=None, spawn_rate=1, run_time=None, html_file="r_{u}_{r}_{t}.html")
    hh.process_html_filename(options)
    assert options.html_file == "r_{u}_1_{t}.html"  # unset options keep their placeholder, as in Locust


def test_duration_in_words():
    assert hh.format_duration(100, 100) == "0 seconds"
    assert hh.format_duration(0, 61) == "1 minute and 1 second"
    assert hh.format_duration(0, 90061) == "1 day, 1 hour, 1 minute and 1 second"
    assert hh.format_duration(0, 7200) == "2 hours"
