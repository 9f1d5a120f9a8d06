"""The open workload model (``--arrival-rate``): the schedule, the pool of users, dropped
iterations, the corrected and uncorrected latencies in every output, and bad input refused before
any load. Real runs against the demo target on 127.0.0.1; counts, never timings, are asserted."""

from __future__ import annotations

import csv
import json
import math

import pytest
from cli_helpers import LOCUSTFILES, run_horde, stats_rows

import horde
from horde import DemoServer, HttpUser, task
from horde.arrivals import Schedule
from horde.results import SloError


class Browse(HttpUser):
    @task
    def home(self):
        self.client.get("/")


class Slow(HttpUser):
    @task
    def slow(self):
        self.client.get("/delay/100", name="slow")


class Counting(HttpUser):
    """Counts its on_start calls and iterations on the class, to check the pool keeps users."""

    starts = 0
    iterations = 0

    def on_start(self):
        type(self).starts += 1

    @task
    def one(self):
        type(self).iterations += 1
        self.client.get("/", name="first")
        self.client.get("/json", name="second")


# -- the schedule -------------------------------------------------------------------------------


def test_even_schedule_is_exact_over_many_arrivals():
    schedule = Schedule(1000.0, "even", start=100.0)
    due = list(schedule.due(100.0 + 1000.0))  # a million arrivals' worth of time, in one go
    assert len(due) == 1_000_001
    assert due[0] == 100.0
    # Each time counts from the base, so rounding cannot add up.
    assert due[-1] == pytest.approx(1100.0, abs=1e-9)
    assert due[500_000] == pytest.approx(600.0, abs=1e-9)


def test_poisson_schedule_has_the_rate_on_average():
    schedule = Schedule(200.0, "poisson", start=0.0)
    due = list(schedule.due(500.0))
    assert 200 * 500 * 0.97 < len(due) < 200 * 500 * 1.03
    gaps = [b - a for a, b in zip(due, due[1:])]
    mean = sum(gaps) / len(gaps)
    var = sum((g - mean) ** 2 for g in gaps) / len(gaps)
    # Exponential gaps: the standard deviation equals the mean (evenly spaced ones would have 0).
    assert math.sqrt(var) == pytest.approx(mean, rel=0.05)


def test_rate_change_takes_effect_from_the_next_arrival():
    schedule = Schedule(10.0, "even", start=0.0)
    assert list(schedule.due(0.25)) == pytest.approx([0.0, 0.1, 0.2])
    # 1/100 s after the last arrival (0.2) is already past: the next one is due at once.
    schedule.set_rate(100.0, now=0.25)
    assert list(schedule.due(0.285)) == pytest.approx([0.25, 0.26, 0.27, 0.28])
    # Slower: 1/2 s after the last one.
    schedule.set_rate(2.0, now=0.285)
    assert list(schedule.due(0.9)) == pytest.approx([0.78])
    schedule.set_rate(0.0, now=0.9)
    assert list(schedule.due(100.0)) == []


def test_schedule_refuses_bad_rates():
    for rate in (-1, float("nan"), float("inf"), "10", True):
        with pytest.raises(ValueError):
            Schedule(rate)
    with pytest.raises(ValueError, match="distribution"):
        Schedule(10, "uniform")


# -- the library ------------------------------------------------------------------------------


def test_library_run_at_an_arrival_rate(demo):
    Counting.starts = Counting.iterations = 0
    result = horde.run(Counting, host=demo.url, users=4, run_time=1.5, arrival_rate=100, max_users=8, progress=False)
    arrivals = result.meta["arrivals"]
    assert result.open_model
    assert arrivals["started"] + arrivals["dropped"] <= arrivals["scheduled"]
    assert arrivals["scheduled"] > 50
    assert result.dropped_iterations == arrivals["dropped"] == 0
    # Users are kept between iterations: on_start ran once per user of the pool.
    assert 4 <= Counting.starts <= 8
    assert Counting.iterations >= arrivals["started"] - Counting.starts  # the last ones may be cut short
    rows = result.stats.set_index("Name")
    # A user stopped at the end between its two requests has sent only the first.
    assert 0 <= rows.loc["first", "Request Count"] - rows.loc["second", "Request Count"] <= Counting.starts
    # The iteration's first request counts from the scheduled start (never less than its service
    # time); the second is timed as in the closed model.
    samples = result.samples
    assert samples.open_model
    first = samples.mask("first")
    second = samples.mask("second")
    assert (samples.latency_us[first] >= samples.service_us[first]).all()
    assert (samples.latency_us[second] == samples.service_us[second]).all()
    assert len(samples.own_delay_us) == len(samples)
    assert result.service_quantile(0.5) <= result.quantile(0.5)
    assert result.own_delay_quantile(0.99) >= 0
    assert "dropped iterations" in repr(result)
    frame = samples.to_pandas()
    assert {"service_ms", "own_delay_ms"} <= set(frame.columns)


def test_library_dropped_iterations_add_up(demo):
    # 10 users, each request taking 100 ms: at most about 100 iterations/s can start, so of 200
    # arrivals/s about half are dropped (after waiting up to the default second for a user).
    result = horde.run(Slow, host=demo.url, users=10, run_time=2.5, arrival_rate=200, progress=False)
    arrivals = result.meta["arrivals"]
    assert arrivals["started"] + arrivals["dropped"] == arrivals["scheduled"]
    assert arrivals["dropped"] == result.dropped_iterations
    assert arrivals["dropped"] > arrivals["scheduled"] * 0.25
    # An iteration that waited for a user counts from its scheduled start.
    assert result.quantile(0.99) > result.service_quantile(0.99)
    result.assert_slo(dropped_iterations=f"<={arrivals['dropped']}")
    with pytest.raises(SloError, match="dropped_iterations"):
        result.assert_slo(dropped_iterations=0)


def test_arrivals_add_up_when_the_run_stops_with_a_backlog(demo):
    # A rate far above what 2 users can take: thousands of arrivals wait for a user when the run
    # stops. The scheduler, woken by its timer before its kill lands, must not hand out more after
    # the stop counted the backlog as dropped.
    for _ in range(3):
        result = horde.run(Slow, host=demo.url, users=2, run_time=1.0, arrival_rate=5000, progress=False)
        arrivals = result.meta["arrivals"]
        assert arrivals["dropped"] > 0
        assert arrivals["started"] + arrivals["dropped"] == arrivals["scheduled"], arrivals


def test_library_drops_at_once_without_a_wait(demo):
    result = horde.run(Slow, host=demo.url, users=5, run_time=1.5, arrival_rate=200, arrival_max_wait=0, progress=False)
    arrivals = result.meta["arrivals"]
    assert arrivals["started"] + arrivals["dropped"] == arrivals["scheduled"]
    # Nothing waited: every started iteration began within a millisecond or so of its schedule,
    # so the first requests' corrected and uncorrected times are close.
    assert arrivals["dropped"] > arrivals["scheduled"] * 0.5


def test_a_result_saved_and_loaded_keeps_both_latencies(demo, tmp_path):
    result = horde.run(Browse, host=demo.url, users=2, run_time=1, arrival_rate=50, progress=False)
    path = tmp_path / "r.npz"
    result.save(path)
    loaded = horde.load(path)
    assert loaded.open_model
    assert loaded.samples.open_model
    assert (loaded.samples.service_us == result.samples.service_us).all()
    assert loaded.service_quantile(0.5) == result.service_quantile(0.5)
    assert loaded.own_delay_quantile(0.5) == result.own_delay_quantile(0.5)
    assert loaded.dropped_iterations == result.dropped_iterations


def test_closed_model_result_has_own_delay_and_no_service_column(demo):
    result = horde.run(Browse, host=demo.url, users=2, run_time=1, progress=False)
    assert not result.open_model
    assert not result.samples.open_model
    assert result.samples.service_us is result.samples.latency_us
    assert result.service_quantile(0.5) == result.quantile(0.5)
    assert result.samples.own_delay_us.any()
    assert not math.isnan(result.own_delay_quantile(0.5))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"arrival_rate": 0}, "above 0"),
        ({"arrival_rate": -5}, "above 0"),
        ({"arrival_rate": float("nan")}, "above 0"),
        ({"arrival_rate": "10"}, "number of iterations"),
        ({"arrival_rate": 10, "arrival_distribution": "uniform"}, "arrival_distribution"),
        ({"arrival_rate": 10, "max_users": 1, "users": 2}, "max_users"),
        ({"max_users": 5}, "needs arrival_rate"),
        ({"arrival_rate": 10, "arrival_max_wait": -1}, "arrival_max_wait"),
        ({"arrival_rate": 10, "processes": 2}, "processes"),
    ],
)
def test_library_refuses_bad_open_model_arguments(demo, kwargs, message):
    with pytest.raises(ValueError, match=message):
        horde.run(Browse, host=demo.url, run_time=1, progress=False, **kwargs)


# -- the command line -------------------------------------------------------------------------


def test_cli_arrival_rate_in_every_output(demo, tmp_path):
    prefix = str(tmp_path / "run")
    result = run_horde(
        "-f", str(LOCUSTFILES / "open_model.py"), "--headless", "-u", "3", "--max-users", "10", "-t", "2s",
        "--arrival-rate", "50", "-H", demo.url, "--csv", prefix, "--hdr-json", str(tmp_path / "hdr.json"),
        "--html", str(tmp_path / "report.html"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stderr
    assert "Response time percentiles (approximated), from each iteration's scheduled start" in out
    assert "Service time percentiles (request written → last byte read, uncorrected)" in out
    assert "Dropped iterations: 0" in out
    assert "horde's own delay per request" in out
    assert "wait_time does not apply" in out

    rows = stats_rows(tmp_path / "run_stats.csv")
    total = rows[("", "Aggregated")]
    assert total["Dropped Iterations"] == "0"
    assert float(total["Service Time 50%"]) > 0
    assert rows[("GET", "browse")]["Dropped Iterations"] == ""
    with open(tmp_path / "run_stats_history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    assert "Dropped Iterations" in history[0]

    hdr = json.loads((tmp_path / "hdr.json").read_text())
    assert hdr["open_model"] is True
    assert hdr["dropped_iterations"] == 0
    assert "scheduled start" in hdr["response_time_measure"]
    assert hdr["total"]["service_percentiles"]["0.5"] <= hdr["total"]["percentiles"]["0.5"]
    assert hdr["own_delay_ms"]["p50"] is not None
    html = (tmp_path / "report.html").read_text()
    assert "scheduled start" in html


def test_cli_closed_model_says_what_it_measures(demo, tmp_path):
    result = run_horde(
        "-f", str(LOCUSTFILES / "weights.py"), "--headless", "-u", "2", "-r", "2", "-t", "1s", "-H", demo.url,
        "--hdr-json", str(tmp_path / "hdr.json"), "--csv", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Response times above are measured request written → last byte read." in result.stderr
    assert "Service time percentiles" not in result.stderr
    assert "Dropped iterations" not in result.stderr
    hdr = json.loads((tmp_path / "hdr.json").read_text())
    assert hdr["open_model"] is False
    assert hdr["service_time_ms"] is None
    assert "service_percentiles" not in hdr["total"]
    # Locust's CSV columns, unchanged.
    header = (tmp_path / "run_stats.csv").read_text().splitlines()[0]
    assert header.endswith("99.9%,99.99%,100%")


def test_cli_help_says_what_a_response_time_measures():
    result = run_horde("--help")
    assert "request written to its last byte read" in " ".join(result.stdout.split())
    assert "--arrival-rate" in result.stdout


def test_cli_dropped_iterations_are_reported_and_gated(demo, tmp_path):
    # Two users, each request taking 100 ms: at most 20 of 100 arrivals/s can start, and without
    # a wait the rest are dropped at once.
    slow_users = tmp_path / "slow.py"
    slow_users.write_text(
        "from locust import HttpUser, task\n"
        "class S(HttpUser):\n"
        "    @task\n"
        "    def s(self):\n"
        "        self.client.get('/delay/100', name='slow')\n"
    )
    result = run_horde(
        "-f", str(slow_users), "--headless", "-u", "2", "-t", "2s", "--arrival-rate", "100",
        "--arrival-max-wait", "0", "-H", demo.url, "--threshold", "dropped_iterations<10",
        "--hdr-json", str(tmp_path / "hdr.json"), "--csv", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Dropping iterations: the pool is at its maximum of 2 users" in result.stderr
    assert result.stderr.count("Dropping iterations") == 1
    hdr = json.loads((tmp_path / "hdr.json").read_text())
    dropped = hdr["dropped_iterations"]
    assert dropped > 50
    assert f"Dropped iterations: {dropped}" in result.stderr
    total = stats_rows(tmp_path / "run_stats.csv")[("", "Aggregated")]
    assert int(total["Dropped Iterations"]) == dropped
    assert "dropped_iterations<10" in result.stderr and "FAIL" in result.stderr


def test_cli_config_file_and_environment(demo, tmp_path):
    (tmp_path / "horde.conf").write_text(
        f"locustfile = {LOCUSTFILES / 'open_model.py'}\nheadless = true\nusers = 2\nrun-time = 1s\n"
        f"host = {demo.url}\narrival-rate = 40\nmax-users = 4\n"
    )
    result = run_horde("--config", "horde.conf", "--hdr-json", "h.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Open model: 40 iterations/s (even), 2 users to start with, at most 4" in result.stderr
    assert json.loads((tmp_path / "h.json").read_text())["open_model"] is True

    result = run_horde(
        "-f", str(LOCUSTFILES / "open_model.py"), "--headless", "-u", "2", "-t", "1s", "-H", demo.url,
        env={"HORDE_ARRIVAL_RATE": "30", "HORDE_ARRIVAL_DISTRIBUTION": "poisson"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Open model: 30 iterations/s (poisson)" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arrival-rate", "0"], "argument --arrival-rate: must be a number of iterations per second above 0"),
        (["--arrival-rate", "-2"], "above 0, not '-2'"),
        (["--arrival-rate", "abc"], "must be a number of iterations per second, not 'abc'"),
        (["--arrival-rate", "inf"], "above 0, not 'inf'"),
        (["--arrival-rate", "10", "--max-users", "0"], "argument --max-users: must be at least 1"),
        (["--arrival-rate", "10", "-u", "5", "--max-users", "2"], "--max-users (2) must be at least"),
        (["--max-users", "5"], "--max-users needs --arrival-rate"),
        (["--arrival-rate", "10", "--arrival-distribution", "uniform"], "invalid choice: 'uniform'"),
        (["--arrival-rate", "10", "--arrival-max-wait", "-1"], "must be a number of seconds >= 0"),
        (["--arrival-rate", "10", "--master"], "cannot be combined with --master"),
    ],
)
def test_cli_refuses_bad_open_model_options_before_any_load(args, message, tmp_path):
    server = DemoServer()
    try:
        result = run_horde("-f", str(LOCUSTFILES / "open_model.py"), "--headless", "-t", "2s", "-H", server.url, *args)
        assert result.returncode == 2, result.stderr[-2000:]
        assert message in result.stderr
        assert server.requests_served == 0
    finally:
        server.stop()


def test_cli_shape_with_arrival_rates(demo, tmp_path):
    result = run_horde(
        "-f", str(LOCUSTFILES / "arrival_ramp.py"), "--headless", "-H", demo.url, "--hdr-json",
        str(tmp_path / "h.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Shape test starting arrivals" in result.stderr
    hdr = json.loads((tmp_path / "h.json").read_text())
    assert hdr["open_model"] is True
    # 1 s ramping to 200/s then 2 s at 200/s: about 500 iterations.
    assert 300 < hdr["total"]["num_requests"] < 700


def test_cli_shape_returning_a_malformed_rate_stops_with_an_error(demo, tmp_path):
    shape = tmp_path / "bad_shape.py"
    shape.write_text(
        "from locust import HttpUser, LoadTestShape, task\n"
        "from horde import ArrivalRate\n"
        "class U(HttpUser):\n"
        "    @task\n"
        "    def t(self):\n"
        "        self.client.get('/')\n"
        "class Bad(LoadTestShape):\n"
        "    def tick(self):\n"
        "        return ArrivalRate(-5, 2)\n"
    )
    server = DemoServer()
    try:
        result = run_horde("-f", str(shape), "--headless", "-H", server.url, timeout=60)
        assert result.returncode != 0
        assert "arrival rate must be a finite number >= 0, not -5" in result.stderr
        assert "Traceback" not in result.stderr
        assert server.requests_served == 0
    finally:
        server.stop()


def test_stalling_server_shows_in_corrected_latency_only(tmp_path):
    # The server freezes every response for 0.5 s once every 1.5 s. One user takes 200
    # arrivals/s: during a freeze it is stuck, the arrivals wait for it and are timed from their
    # scheduled starts, so the corrected p90 and p99 show the freeze while the uncorrected service
    # times (only the one stuck request per freeze was written before it ended) stay short.
    server = DemoServer(stall=(1.5, 0.5))
    try:
        # A run that never ends fails on the test's timeout, not on a wall-clock bound here.
        result = horde.run(
            Browse, host=server.url, users=1, run_time=4.5, arrival_rate=200, arrival_max_wait=2, progress=False
        )
    finally:
        server.stop()
    arrivals = result.meta["arrivals"]
    # None waited out arrival_max_wait; but the server's freezes keep its own clock, so the run may
    # end inside one, and the arrivals still waiting then count as dropped: at most one freeze's.
    assert arrivals["dropped"] <= 200 * 0.5
    assert result.quantile(0.9) > 100
    assert result.quantile(0.99) > 300
    assert result.service_quantile(0.99) < result.quantile(0.99) / 2
