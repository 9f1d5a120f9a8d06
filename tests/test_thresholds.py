"""``--threshold``: the expression parser, checks against real engine statistics, and CI runs of the
``horde`` command against the demo target (table, exit code 3, ``--threshold-abort``)."""

from __future__ import annotations

import re

import pytest
from cli_helpers import run_horde

from horde import thresholds
from horde._core import RequestStats

# ---------------------------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    ("expression", "metric", "operator", "limit"),
    [
        ("p95<200", "p95", "<", 200.0),
        ("p95<200ms", "p95", "<", 200.0),
        ("P99.9 <= 1.5s", "p99.9", "<=", 1500.0),
        ("p99.99<250us", "p99.99", "<", 0.25),
        ("p(95)<500", "p95", "<", 500.0),
        ("p100>=1", "p100", ">=", 1.0),
        ("median < 20 ms", "median", "<", 20.0),
        ("AVG>.5", "avg", ">", 0.5),
        ("min>=2", "min", ">=", 2.0),
        ("max<3s", "max", "<", 3000.0),
        ("fail_ratio<0.01", "fail_ratio", "<", 0.01),
        ("Fail_Ratio <= 5%", "fail_ratio", "<=", 0.05),
        ("failures<1", "failures", "<", 1.0),
        ("requests>=100", "requests", ">=", 100.0),
        ("rps>50.5", "rps", ">", 50.5),
    ],
)
def test_parse_valid_unscoped(expression, metric, operator, limit):
    t = thresholds.parse(expression)
    assert (t.method, t.name) == (None, None)
    assert (t.metric, t.operator) == (metric, operator)
    assert t.limit == pytest.approx(limit)
    assert t.expression == expression.strip()


def test_parse_percentile_fraction_and_kinds():
    assert thresholds.parse("p99.9<1").percentile == pytest.approx(0.999)
    assert thresholds.parse("p50<1").percentile == pytest.approx(0.5)
    assert thresholds.parse("median<1").percentile is None
    kinds = {e: thresholds.parse(e).kind for e in ("p90<1", "avg<1", "fail_ratio<0.1", "failures<1", "rps>1")}
    assert kinds == {
        "p90<1": "latency",
        "avg<1": "latency",
        "fail_ratio<0.1": "ratio",
        "failures<1": "count",
        "rps>1": "rate",
    }


@pytest.mark.parametrize(
    ("expression", "method", "name", "metric"),
    [
        ("GET /api/articles: p99<50ms", "GET", "/api/articles", "p99"),
        ("  post /login :fail_ratio<1%", "POST", "/login", "fail_ratio"),
        ("GET user:on_start: max<1s", "GET", "user:on_start", "max"),
        ("GET /a: b: requests>=1", "GET", "/a: b", "requests"),
        ("GET my page name: avg<5", "GET", "my page name", "avg"),
        ("RAW /status/500: failures>0", "RAW", "/status/500", "failures"),
    ],
)
def test_parse_valid_scoped(expression, method, name, metric):
    t = thresholds.parse(expression)
    assert (t.method, t.name, t.metric) == (method, name, metric)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("p99", "missing operator"),
        ("p99 200ms", "missing operator"),
        ("p99==200", "'==' is not supported"),
        ("p99=200", "'=' is not supported"),
        ("p99<<200", "'<<' is not supported"),
        ("<200", "missing metric"),
        ("latency<200", "unknown metric 'latency'"),
        ("p<200", "unknown metric 'p'"),
        ("p0<200", "out of range"),
        ("p100.5<200", "out of range"),
        ("p99<", "missing value"),
        ("p99<fast", "bad number 'fast'"),
        ("p99<1.2.3", "bad number '1.2.3'"),
        ("p99<-5", "bad number '-5'"),
        ("p99<5kg", "unit 'kg' is not valid for p99"),
        ("p99<5%", "unit '%' is not valid for p99"),
        ("fail_ratio<5ms", "unit 'ms' is not valid for fail_ratio"),
        ("fail_ratio<5", "above 1"),
        ("fail_ratio<150%", "above 100%"),
        ("failures<3s", "unit 's' is not valid for failures"),
        ("rps>10%", "unit '%' is not valid for rps"),
        ("FETCH! /x: p99<5", "unknown method 'FETCH!'"),
        ("Fetch /x: p99<5", "unknown method 'Fetch'"),
        ("GET: p99<5", "no request name"),
        (": p99<5", "scope before ':' is empty"),
    ],
)
def test_parse_malformed(expression, message):
    with pytest.raises(ValueError) as excinfo:
        thresholds.parse(expression)
    text = str(excinfo.value)
    assert message in text
    assert repr(expression.strip()) in text  # the message names the expression
    assert excinfo.value.reason in text


def test_parse_all():
    assert thresholds.parse_all(None) == []
    assert [t.metric for t in thresholds.parse_all(["p95<1", "rps>1"])] == ["p95", "rps"]
    with pytest.raises(thresholds.ThresholdError, match="unknown metric"):
        thresholds.parse_all(["p95<1", "speed>1"])


# ---------------------------------------------------------------------------------------------
# Evaluating against the engine's statistics


@pytest.fixture
def stats():
    """Three timed GET / requests (1, 5, 300 ms), one failing GET /bad request, nothing else."""
    s = RequestStats()
    for ms in (1.0, 5.0, 300.0):
        s.log("GET", "/", ms, 0, None)
    s.log("GET", "/bad", 2.0, 0, "HTTPError('500 Server Error')")
    return s


def check(expression, stats):
    (result,) = thresholds.evaluate([thresholds.parse(expression)], stats)
    return result


def test_evaluate_latencies(stats):
    assert check("p99<300", stats).passed is False
    assert check("p99<=301", stats).passed is True
    assert check("max>=0.3s", stats).passed is True
    assert check("min<1.5", stats).passed is True
    assert check("GET /: median<10", stats).passed is True
    assert check("GET /: avg<100", stats).passed is False
    result = check("p99<50", stats)
    assert result.observed == pytest.approx(300, rel=0.01)
    assert re.fullmatch(r"\d+\.\d{3} ms", result.observed_text)


def test_evaluate_counts_ratios_and_rps(stats):
    assert check("requests>=4", stats).passed is True
    result = check("failures<1", stats)
    assert (result.passed, result.observed, result.observed_text) == (False, 1, "1")
    result = check("fail_ratio<0.3", stats)
    assert result.passed is True and result.observed_text == "25.00%"
    assert check("fail_ratio<25%", stats).passed is False
    assert check("GET /bad: fail_ratio>=100%", stats).passed is True
    assert check("GET /: failures<1", stats).passed is True
    result = check("rps>0", stats)
    assert result.passed is True and result.observed_text.endswith("/s")


def test_evaluate_missing_row_and_empty_stats(stats):
    result = check("GET /nowhere: requests>=0", stats)
    assert (result.passed, result.observed, result.observed_text) == (False, None, "no requests")
    result = check("POST /: p50<1000", stats)  # the method is part of the row's key
    assert result.passed is False
    empty = RequestStats()
    assert check("p95<1000", empty).observed_text == "no requests"
    assert check("fail_ratio<1%", empty).passed is False
    assert check("requests<1", empty).passed is True


def test_evaluate_keeps_order(stats):
    expressions = ["rps>0", "p50<1000", "failures<1"]
    results = thresholds.evaluate(thresholds.parse_all(expressions), stats)
    assert [r.expression for r in results] == expressions
    assert [r.passed for r in results] == [True, True, False]


def test_format_results(stats):
    results = thresholds.evaluate(thresholds.parse_all(["p99<50", "GET /: failures<1", "GET /x: p50<1"]), stats)
    lines = thresholds.format_results(results)
    assert lines[0] == "Thresholds"
    rows = _table_rows("\n".join(lines))
    assert rows["p99<50"][1] == "FAIL"
    assert rows["GET /: failures<1"] == ("0", "PASS")
    assert rows["GET /x: p50<1"] == ("no requests", "FAIL")


@pytest.mark.parametrize(
    ("expression", "broken"),
    [
        ("max<100", True),
        ("max<=299", True),
        ("min>2", True),
        ("failures<1", True),
        ("GET /: requests<=2", True),
        ("max<1s", False),  # holds so far
        ("max>1s", False),  # a lower bound on max can still be reached
        ("min<0.5", False),
        ("requests>10", False),
        ("p99<50", False),  # percentiles, averages, ratios and rates can recover
        ("avg<1", False),
        ("median<1", False),
        ("fail_ratio<1%", False),
        ("rps>1000000000", False),
        ("GET /nowhere: max<1", False),  # no requests yet
    ],
)
def test_certainly_broken(stats, expression, broken):
    assert thresholds.certainly_broken(thresholds.parse(expression), stats) is broken


# ---------------------------------------------------------------------------------------------
# The horde command

LOCUSTFILE = """\
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.01)

    @task
    def page(self):
        self.client.get({path!r})
"""

SLOW_AND_BROKEN = """\
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.01)

    @task
    def slow(self):
        self.client.get("/delay/300")

    @task
    def broken(self):
        self.client.get("/status/500")
"""


def _table_rows(output: str) -> dict[str, tuple[str, str]]:
    # {expression: (observed, PASS/FAIL)} from the "Thresholds" table in the output.
    lines = output.splitlines()
    start = len(lines) - 1 - lines[::-1].index("Thresholds")
    rows = {}
    for line in lines[start + 3 :]:
        cells = [c.strip() for c in line.split(" | ")]
        if len(cells) != 3:
            break
        rows[cells[0]] = (cells[1], cells[2])
    return rows


def _locustfile(tmp_path, text: str):
    path = tmp_path / "thresholds_locustfile.py"
    path.write_text(text)
    return str(path)


def _run(demo, locustfile: str, *args: str, run_time: str = "2s", **kwargs):
    return run_horde(
        "-f", locustfile, "--headless", "-u", "2", "-r", "2", "-t", run_time, "-H", demo.url, "--only-summary", *args,
        **kwargs,
    )  # fmt: skip


def test_cli_passing_thresholds(demo, tmp_path):
    result = _run(
        demo, _locustfile(tmp_path, LOCUSTFILE.format(path="/delay/300")),
        "--threshold", "p50>=300ms", "--threshold", "fail_ratio<1%", "--threshold", "requests>0",
        "--threshold", "GET /delay/300: min >= 0.3 s",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _table_rows(result.stderr)
    assert set(rows) == {"p50>=300ms", "fail_ratio<1%", "requests>0", "GET /delay/300: min >= 0.3 s"}
    assert all(verdict == "PASS" for _, verdict in rows.values())
    assert rows["fail_ratio<1%"][0] == "0.00%"
    assert "Shutting down (exit code 0)" in result.stderr


def test_cli_failing_percentile_exits_3(demo, tmp_path):
    result = _run(
        demo, _locustfile(tmp_path, LOCUSTFILE.format(path="/delay/300")),
        "--threshold", "p99<100ms", "--threshold", "p50>=300",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr[-3000:]
    rows = _table_rows(result.stderr)
    observed, verdict = rows["p99<100ms"]
    assert verdict == "FAIL"
    assert observed.endswith(" ms") and float(observed.split()[0]) >= 300
    assert rows["p50>=300"][1] == "PASS"
    # The table comes after the final statistics.
    assert result.stderr.rindex("Thresholds") > result.stderr.rindex("Response time percentiles")


def test_cli_fail_ratio_and_rps(demo, tmp_path):
    result = _run(
        demo, _locustfile(tmp_path, SLOW_AND_BROKEN),
        "--threshold", "fail_ratio<1%", "--threshold", "fail_ratio<=100%", "--threshold", "rps>0",
        "--threshold", "rps>=1000000000", "--threshold", "failures>0",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr[-3000:]
    rows = _table_rows(result.stderr)
    assert rows["fail_ratio<1%"][1] == "FAIL" and rows["fail_ratio<1%"][0].endswith("%")
    assert rows["fail_ratio<=100%"][1] == "PASS"
    assert rows["rps>0"][1] == "PASS" and rows["rps>0"][0].endswith("/s")
    assert rows["rps>=1000000000"][1] == "FAIL"
    assert rows["failures>0"][1] == "PASS" and int(rows["failures>0"][0]) > 0


def test_cli_scoped_thresholds(demo, tmp_path):
    result = _run(
        demo, _locustfile(tmp_path, SLOW_AND_BROKEN),
        "--threshold", "GET /delay/300: fail_ratio<1%", "--threshold", "GET /status/500: fail_ratio>=100%",
        "--threshold", "GET /status/500: failures>0", "--threshold", "get /delay/300: min>=300",
    )  # fmt: skip
    # Every scoped threshold holds even though the run as a whole failed requests: that gives
    # --exit-code-on-error's 1.
    assert result.returncode == 1, result.stderr[-3000:]
    rows = _table_rows(result.stderr)
    assert {verdict for _, verdict in rows.values()} == {"PASS"}, rows

    result = _run(demo, _locustfile(tmp_path, SLOW_AND_BROKEN), "--threshold", "GET /nowhere: requests>=0")
    assert result.returncode == 3, result.stderr[-3000:]
    assert _table_rows(result.stderr)["GET /nowhere: requests>=0"] == ("no requests", "FAIL")


def test_cli_threshold_beats_request_failures_but_not_the_locustfile(demo, tmp_path):
    locustfile = _locustfile(tmp_path, SLOW_AND_BROKEN)
    result = _run(demo, locustfile, "--threshold", "failures<1", "--exit-code-on-error", "5")
    assert result.returncode == 3, result.stderr[-3000:]

    locustfile = _locustfile(
        tmp_path,
        SLOW_AND_BROKEN
        + "\n\nfrom locust import events\n\n\n"
        + "@events.quitting.add_listener\n"
        + "def _(environment, **kwargs):\n"
        + "    environment.process_exit_code = 7\n",
    )
    result = _run(demo, locustfile, "--threshold", "failures<1")
    assert result.returncode == 7, result.stderr[-3000:]
    assert _table_rows(result.stderr)["failures<1"][1] == "FAIL"


def test_cli_thresholds_from_locust_conf(demo, tmp_path):
    (tmp_path / "locust.conf").write_text("threshold = [p99 < 100ms, fail_ratio<0.01]\n")
    result = _run(demo, _locustfile(tmp_path, LOCUSTFILE.format(path="/delay/300")), cwd=tmp_path)
    assert result.returncode == 3, result.stderr[-3000:]
    rows = _table_rows(result.stderr)
    assert rows["p99 < 100ms"][1] == "FAIL"
    assert rows["fail_ratio<0.01"] == ("0.00%", "PASS")


def test_cli_threshold_abort_stops_the_run(demo, tmp_path):
    result = _run(
        demo, _locustfile(tmp_path, LOCUSTFILE.format(path="/delay/300")),
        "--threshold", "max<100ms", "--threshold", "p99<100ms", "--threshold-abort", run_time="60s", timeout=50,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Threshold 'max<100ms' is broken (observed " in result.stderr
    assert "stopping the test" in result.stderr
    assert "--run-time limit reached" not in result.stderr
    assert _table_rows(result.stderr)["max<100ms"][1] == "FAIL"


def test_cli_threshold_abort_ignores_recoverable_thresholds(demo, tmp_path):
    # A percentile is never certainly broken: the run goes on until -t.
    result = _run(
        demo, _locustfile(tmp_path, LOCUSTFILE.format(path="/delay/300")),
        "--threshold", "p99<100ms", "--threshold-abort",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr[-3000:]
    assert "is broken (observed" not in result.stderr
    assert "--run-time limit reached" in result.stderr


@pytest.mark.parametrize(
    ("expression", "why"),
    [("p99<fast", "bad number 'fast'"), ("latency<5", "unknown metric 'latency'"), ("p99 200", "missing operator")],
)
def test_cli_malformed_threshold_exits_2_before_any_load(demo, tmp_path, expression, why):
    result = _run(
        demo, _locustfile(tmp_path, LOCUSTFILE.format(path="/")),
        "--threshold", "p95<1s", "--threshold", expression, "--csv", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 2
    assert f"horde: error: invalid --threshold '{expression}': " in result.stderr
    assert why in result.stderr
    assert not (tmp_path / "run_stats.csv").exists()
    assert "Aggregated" not in result.stderr + result.stdout


def test_cli_locustfile_owning_threshold_option(demo, tmp_path):
    # A Locust locustfile may declare --threshold for itself; horde then leaves it alone.
    locustfile = _locustfile(
        tmp_path,
        LOCUSTFILE.format(path="/")
        + "\n\nfrom locust import events\n\n\n"
        + "@events.init_command_line_parser.add_listener\n"
        + "def _(parser):\n"
        + "    parser.add_argument('--threshold', type=int, default=5)\n",
    )
    result = _run(demo, locustfile, "--threshold", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Thresholds" not in result.stderr
