"""The library API (``horde.run``, ``horde.start``) and its Result, from real short runs against the
demo target: stats against samples, HDR quantiles against the raw latencies, save/load, SLOs."""

from __future__ import annotations

import _thread
import asyncio
import math
import re
import socket
import threading
import time
from pathlib import Path

import gevent.monkey
import numpy as np
import pandas as pd
import pytest

import horde
from horde import HttpUser, LoadTestShape, User, constant, tag, task
from horde.results import SloError
from horde.stats import PERCENTILES_TO_REPORT, StatsCSV, format_ms

REPO = Path(__file__).resolve().parent.parent

LOCUSTFILE = """\
from locust import HttpUser, constant, task


class FromFile(HttpUser):
    wait_time = constant(0.01)

    @task
    def hello(self):
        self.client.get("/", name="file-hello")
"""


class Mixed(HttpUser):
    """Successes, failures (500) and one name under two methods."""

    wait_time = constant(0.005)

    @task(3)
    def hello(self):
        self.client.get("/")

    @task
    def error(self):
        self.client.get("/status/500")

    @task
    def echo(self):
        self.client.get("/echo", name="/echo")
        self.client.post("/echo", json={"a": 1}, name="/echo")

    @task
    def some_bytes(self):
        self.client.get("/bytes/100")


class Hello(HttpUser):
    wait_time = constant(0.01)

    @task
    def hello(self):
        self.client.get("/", name="hello")


class Slow(HttpUser):
    wait_time = constant(0.05)

    @task
    def slow(self):
        self.client.get("/delay/50", name="slow")


class Tagged(HttpUser):
    wait_time = constant(0.01)

    @tag("read")
    @task
    def read(self):
        self.client.get("/", name="read")

    @tag("write")
    @task
    def write(self):
        self.client.post("/echo", json={}, name="write")


class Stepped(LoadTestShape):
    """Two users for a second, then four, then the end of the run."""

    def tick(self):
        run_time = self.get_run_time()
        if run_time < 1:
            return 2, 10
        if run_time < 2:
            return 4, 10
        return None


@pytest.fixture(scope="module")
def result(demo):
    """One 2-second run of ``Mixed`` that the read-only tests share."""
    return horde.run(Mixed, host=demo.url, users=4, run_time=2, progress=False)


def _keys_counts(samples):
    """{(method, name): requests} from the samples."""
    counts = np.bincount(samples.key, minlength=len(samples.keys))
    return {key: int(n) for key, n in zip(samples.keys, counts)}


def _rows(stats):
    """{(method, name): row} for the stats' rows above "Aggregated"."""
    return {(row["Type"], row["Name"]): row for _, row in stats.iloc[:-1].iterrows()}


def _assert_hdr_close(hdr_ms, exact_ms):
    # The HDR histograms keep 3 significant digits at µs resolution.
    assert abs(hdr_ms - exact_ms) <= exact_ms * 1e-3 + 1e-3, (hdr_ms, exact_ms)


# -- targets ---------------------------------------------------------------------------------


def test_run_with_a_user_class(demo):
    result = horde.run(Hello, host=demo.url, users=2, run_time=1, progress=False)
    assert isinstance(result, horde.Result)
    assert result.num_requests > 0
    assert result.num_failures == 0
    assert result.exit_code == 0
    assert list(result.stats["Name"]) == ["hello", "Aggregated"]
    assert result.meta["user_classes"] == ["Hello"]
    assert result.meta["users"] == 2


def test_run_with_a_list_of_user_classes(demo):
    result = horde.run([Hello, Tagged], host=demo.url, users=3, run_time=1, progress=False)
    names = set(result.stats["Name"])
    assert {"hello", "read", "write", "Aggregated"} <= names
    assert result.meta["user_classes"] == ["Hello", "Tagged"]


def test_run_with_a_locustfile_path(demo, tmp_path):
    path = tmp_path / "small_locustfile.py"
    path.write_text(LOCUSTFILE)
    result = horde.run(path, host=demo.url, users=2, run_time=1, progress=False)
    assert list(result.stats["Name"]) == ["file-hello", "Aggregated"]
    assert result.num_requests > 0
    assert result.meta["locustfile"] == str(path)
    assert result.meta["user_classes"] == ["FromFile"]


def test_run_the_bundled_conduit_locustfile(demo):
    result = horde.run(REPO / "locustfiles" / "conduit.py", host=demo.url, users=2, run_time=2, progress=False)
    assert result.num_requests > 0
    assert result.num_failures == 0
    assert "/api/articles?limit=[n]" in set(result.stats["Name"])
    assert sum(_keys_counts(result.samples).values()) == result.num_requests


def test_run_a_custom_client_locustfile(demo):
    # Requests that user code times and fires through events.request are samples too (status 0).
    result = horde.run(REPO / "locustfiles" / "custom_client.py", host=demo.url, users=2, run_time=1, progress=False)
    by_key = _keys_counts(result.samples)
    for key, row in _rows(result.stats).items():
        assert key[0] == "RAW"
        assert row["Request Count"] == by_key[key]
    assert set(np.unique(result.samples.status)) == {0}
    assert int(np.count_nonzero(~result.samples.ok)) == result.num_failures > 0
    exact = float(np.quantile(result.latencies("/"), 0.9, method="inverted_cdf"))
    _assert_hdr_close(result.quantile(0.9, name="/"), exact)


def test_run_with_a_shape_ends_when_the_shape_does(demo):
    # No run time: only the shape's None can end this run (else the test's timeout would).
    result = horde.run(Hello, host=demo.url, shape=Stepped, run_time=None, progress=False)
    assert result.meta["run_time"] is None
    assert result.meta["shape"] == "Stepped"
    assert result.num_requests > 0
    assert result.history["User Count"].max() == 4


def test_run_with_a_shape_instance(demo):
    result = horde.run(Hello, host=demo.url, shape=Stepped(), progress=False)
    assert result.meta["shape"] == "Stepped"
    assert result.history["User Count"].max() == 4


def test_run_with_tags(demo):
    result = horde.run(Tagged, host=demo.url, users=2, run_time=1, tags=["read"], progress=False)
    assert list(result.stats["Name"]) == ["read", "Aggregated"]
    result = horde.run(Tagged, host=demo.url, users=2, run_time=1, exclude_tags=["read"], progress=False)
    assert list(result.stats["Name"]) == ["write", "Aggregated"]


def test_tags_leave_the_classes_as_they_were(demo):
    horde.run(Tagged, host=demo.url, users=1, run_time=1, tags=["write"], progress=False)
    result = horde.run(Tagged, host=demo.url, users=1, run_time=1, progress=False)
    assert set(result.stats["Name"]) == {"read", "write", "Aggregated"}


def test_a_locustfiles_listeners_fire_once_per_run(demo, tmp_path):
    log = tmp_path / "fired.txt"
    path = tmp_path / "listening_locustfile.py"
    path.write_text(
        LOCUSTFILE
        + f"""

from locust import events


@events.test_start.add_listener
def started(environment, **kwargs):
    with open({str(log)!r}, "a") as f:
        f.write(f"start {{id(environment)}}\\n")
"""
    )
    for _ in range(2):
        horde.run(path, host=demo.url, users=1, run_time=1, progress=False)
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and lines[0] != lines[1]  # once per run, each with its own environment
    # A refused run takes its file's listeners away too.
    with pytest.raises(ValueError, match="users must be"):
        horde.run(path, host=demo.url, users=-1, progress=False)
    horde.run(path, host=demo.url, users=1, run_time=1, progress=False)
    assert len(log.read_text().splitlines()) == 3


# -- stats -----------------------------------------------------------------------------------


def test_stats_columns_are_locusts_stats_csv(result):
    columns = StatsCSV(result.environment, PERCENTILES_TO_REPORT).requests_csv_columns
    assert list(result.stats.columns) == columns
    assert result.stats.iloc[-1]["Name"] == "Aggregated"
    assert result.stats.iloc[-1]["Type"] == ""
    assert result.stats["Request Count"].dtype == np.int64
    assert result.stats["Median Response Time"].dtype == np.float64


def test_stats_counts_match_the_samples(result):
    samples = result.samples
    assert samples.dropped == 0
    by_key = _keys_counts(samples)
    rows = _rows(result.stats)
    assert (
        set(rows)
        == set(by_key)
        == {
            ("GET", "/"),
            ("GET", "/status/500"),
            ("GET", "/echo"),
            ("POST", "/echo"),
            ("GET", "/bytes/100"),
        }
    )
    for key, row in rows.items():
        assert row["Request Count"] == by_key[key], key
        failed = int(np.count_nonzero(~samples.ok[samples.key == samples.keys.index(key)]))
        assert row["Failure Count"] == failed, key
    assert result.num_requests == len(samples) == int(result.stats["Request Count"].iloc[:-1].sum())


def test_failures_counted_and_reported(result):
    samples = result.samples
    rows = _rows(result.stats)
    errors = rows[("GET", "/status/500")]
    assert errors["Request Count"] > 0
    assert errors["Failure Count"] == errors["Request Count"]
    # Exactly the 500s failed.
    assert np.array_equal(~samples.ok, samples.status == 500)
    assert int(np.count_nonzero(~samples.ok)) == result.num_failures
    assert result.num_failures == errors["Failure Count"]
    assert result.fail_ratio == pytest.approx(result.num_failures / result.num_requests)
    assert result.exit_code == 1  # as `horde` would exit after failures

    assert list(result.failures.columns) == ["Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen"]
    assert len(result.failures) == 1
    failure = result.failures.iloc[0]
    assert (failure["Method"], failure["Name"]) == ("GET", "/status/500")
    assert "500" in failure["Error"]
    assert failure["Occurrences"] == errors["Failure Count"]


def test_stats_bytes_and_times_agree_with_the_samples(result):
    samples = result.samples
    rows = _rows(result.stats)
    mask = samples.mask("/bytes/100")
    assert np.all(samples.bytes[mask] == 100)
    assert rows[("GET", "/bytes/100")]["Average Content Size"] == pytest.approx(100)
    for key, row in rows.items():
        lat = result.latencies(key[1], method=key[0])
        assert row["Average Response Time"] == pytest.approx(lat.mean(), rel=1e-6, abs=1e-3), key
        _assert_hdr_close(row["Max Response Time"], lat.max())
        _assert_hdr_close(row["Min Response Time"], lat.min())


def test_stats_times_are_the_precise_hdr_figures(result):
    # Locust's _stats.csv has whole-ms buckets and a median clamped to [min, max]: for the demo
    # target (sub-millisecond) that median is the minimum and p95 reads 0. Result.stats does not.
    percentiles = {f"{round(p * 100, 2):g}%": p for p in PERCENTILES_TO_REPORT}
    for _, row in result.stats.iterrows():
        name, method = (None, None) if row["Name"] == "Aggregated" else (row["Name"], row["Type"])
        assert row["Median Response Time"] == row["50%"] == result.quantile(0.5, name=name, method=method)
        for column, p in percentiles.items():
            assert row[column] == result.quantile(p, name=name, method=method), (row["Name"], column)
        values = [row[c] for c in percentiles]
        assert values == sorted(values)
        # Min and max are exact, the percentiles the histogram's (3 significant digits, µs).
        _assert_hdr_close(row["100%"], row["Max Response Time"])
        assert row["Min Response Time"] * (1 - 1e-3) - 1e-3 <= row["Median Response Time"]
        assert row["Median Response Time"] <= row["Max Response Time"] * (1 + 1e-3) + 1e-3
    total = result.total
    assert total["Median Response Time"] > total["Min Response Time"]  # not clamped to the minimum


# -- quantiles -------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0])
@pytest.mark.parametrize("name", [None, "/", "/status/500", "/echo", "/bytes/100"])
def test_quantile_matches_the_raw_latencies(result, q, name):
    exact = float(np.quantile(result.latencies(name), q, method="inverted_cdf"))
    _assert_hdr_close(result.quantile(q, name=name), exact)


@pytest.mark.parametrize("method", ["GET", "POST", "post"])
def test_quantile_for_name_and_method(result, method):
    lat = result.latencies("/echo", method=method)
    assert 0 < len(lat) < len(result.latencies("/echo"))
    for q in (0.5, 0.99):
        exact = float(np.quantile(lat, q, method="inverted_cdf"))
        _assert_hdr_close(result.quantile(q, name="/echo", method=method), exact)


def test_quantile_for_a_method_alone(result):
    lat = result.latencies(method="GET")
    assert len(lat) == len(result.samples) - len(result.latencies("/echo", method="POST"))
    _assert_hdr_close(result.quantile(0.9, method="GET"), float(np.quantile(lat, 0.9, method="inverted_cdf")))


def test_quantile_errors(result):
    with pytest.raises(KeyError, match="no requests named '/nowhere'"):
        result.quantile(0.5, name="/nowhere")
    with pytest.raises(KeyError, match="DELETE"):
        result.quantile(0.5, name="/", method="DELETE")
    for q in (-0.1, 1.5, 99):
        with pytest.raises(ValueError, match="between 0 and 1"):
            result.quantile(q)


def test_latencies(result):
    lat = result.latencies()
    assert lat.dtype == np.float64
    assert len(lat) == result.num_requests
    np.testing.assert_array_equal(lat, result.samples.latency_us / 1000.0)
    post = result.latencies("/echo", method="POST")
    assert post.dtype == np.float64
    assert len(post) == _rows(result.stats)[("POST", "/echo")]["Request Count"]
    assert len(result.latencies("/nowhere")) == 0


# -- samples ---------------------------------------------------------------------------------


def test_samples_dtypes_and_zero_copy(result):
    samples = result.samples
    expected = {
        "start_us": np.uint64,
        "latency_us": np.uint32,
        "status": np.uint16,
        "bytes": np.uint32,
        "key": np.uint32,
        "ok": np.bool_,
    }
    for column, dtype in expected.items():
        arr = getattr(samples, column)
        assert arr.dtype == dtype, column
        assert arr.ndim == 1 and len(arr) == len(samples), column
        # Handed over from Rust: numpy views of the engine's buffers, not copies.
        assert arr.base is not None, column
        assert not arr.flags.owndata, column
    assert int(samples.key.max()) < len(samples.keys)


def test_samples_times_within_the_run(result):
    samples = result.samples
    start, end = result.meta["start_time"], result.meta["end_time"]
    assert start - 1 <= samples.origin <= end
    assert np.all(samples.start >= start - 0.01)
    assert np.all(samples.start + samples.latency / 1000.0 <= end + 0.01)
    assert set(np.unique(samples.status)) == {200, 500}


def test_samples_method_and_name_arrays(result):
    samples = result.samples
    methods, names = samples.method, samples.name
    assert len(methods) == len(names) == len(samples)
    assert set(methods) == {"GET", "POST"}
    assert set(names) == {"/", "/status/500", "/echo", "/bytes/100"}
    assert np.all(samples.status[names == "/status/500"] == 500)
    assert np.count_nonzero(methods == "POST") == _rows(result.stats)[("POST", "/echo")]["Request Count"]
    assert "requests" in repr(samples)


def test_samples_to_pandas(result):
    frame = result.samples.to_pandas()
    assert list(frame.columns) == ["start", "latency_ms", "status", "bytes", "method", "name", "ok", "own_delay_ms"]
    assert len(frame) == len(result.samples)
    assert str(frame["start"].dtype).startswith("datetime64") and frame["start"].dt.tz is not None
    assert isinstance(frame["name"].dtype, pd.CategoricalDtype)
    assert isinstance(frame["method"].dtype, pd.CategoricalDtype)
    np.testing.assert_array_equal(frame["latency_ms"].to_numpy(), result.latencies())
    np.testing.assert_array_equal(frame["name"].astype(str).to_numpy(), result.samples.name.astype(str))
    counts = frame.groupby(["method", "name"], observed=True).size()
    for (method, name), row in _rows(result.stats).items():
        assert counts[(method, name)] == row["Request Count"]


def test_max_samples_caps_the_samples_not_the_stats(demo):
    result = horde.run(Hello, host=demo.url, users=2, run_time=1, max_samples=100, progress=False)
    assert result.num_requests > 100
    assert len(result.samples) == 100
    assert result.samples.dropped == result.num_requests - 100
    assert len(result.latencies()) == 100
    assert result.quantile(0.5) > 0  # the histograms still count everything


def test_max_samples_zero_keeps_none(demo):
    result = horde.run(Hello, host=demo.url, users=1, run_time=1, max_samples=0, progress=False)
    assert result.num_requests > 0
    assert len(result.samples) == 0
    assert result.quantile(0.5) > 0


# -- history ---------------------------------------------------------------------------------


def test_history_one_row_per_second(result):
    history = result.history
    assert list(history.columns) == [
        "User Count",
        "Requests/s",
        "Failures/s",
        "50%",
        "95%",
        "99%",
        "Average Response Time",
    ]
    assert isinstance(history.index, pd.DatetimeIndex)
    assert history.index.name == "Timestamp"
    assert len(history) >= 2
    assert (history.index.to_series().diff().iloc[1:] == pd.Timedelta(seconds=1)).all()
    assert history["Requests/s"].sum() == result.num_requests
    assert history["Failures/s"].sum() == result.num_failures
    assert history["User Count"].max() == 4
    # Each second's percentiles are of that second's requests.
    assert np.all(history["50%"] <= history["95%"]) and np.all(history["95%"] <= history["99%"])


# -- save / load -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_save_load_round_trip(result, tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    result.save(path)
    loaded = horde.load(path)
    assert isinstance(loaded, horde.Result)
    assert loaded.environment is None
    pd.testing.assert_frame_equal(loaded.stats, result.stats)
    pd.testing.assert_frame_equal(loaded.history, result.history)
    pd.testing.assert_frame_equal(loaded.failures, result.failures)
    pd.testing.assert_frame_equal(loaded.exceptions, result.exceptions)
    for column in ("start_us", "latency_us", "status", "bytes", "key", "ok"):
        saved, back = getattr(result.samples, column), getattr(loaded.samples, column)
        assert back.dtype == saved.dtype, column
        np.testing.assert_array_equal(back, saved)
    assert loaded.samples.keys == result.samples.keys
    assert loaded.samples.origin == result.samples.origin
    assert loaded.samples.dropped == result.samples.dropped
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        assert loaded.quantile(q) == result.quantile(q)
        assert loaded.quantile(q, name="/echo", method="POST") == result.quantile(q, name="/echo", method="POST")
    np.testing.assert_array_equal(loaded.latencies("/"), result.latencies("/"))
    assert loaded.meta == result.meta
    assert repr(loaded) == repr(result)
    loaded.assert_slo(requests=result.num_requests)


def test_load_rejects_other_files(tmp_path):
    npz = tmp_path / "other.npz"
    np.savez(npz, a=np.arange(3))
    with pytest.raises(ValueError, match="not a result saved by horde"):
        horde.load(npz)
    parquet = tmp_path / "other.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(parquet)
    with pytest.raises(ValueError, match="not a result saved by horde"):
        horde.load(parquet)
    for garbage in (tmp_path / "garbage.npz", tmp_path / "garbage.parquet"):
        garbage.write_text("not numpy, not Parquet")
        with pytest.raises(ValueError, match="not a result saved by horde"):
            horde.load(garbage)
    with pytest.raises(FileNotFoundError):
        horde.load(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match=r"\.parquet or \.npz"):
        horde.load(tmp_path / "run.csv")


def test_save_rejects_a_bad_suffix(result, tmp_path):
    with pytest.raises(ValueError, match=r"\.parquet or \.npz"):
        result.save(tmp_path / "run.csv")


# -- assert_slo ------------------------------------------------------------------------------


def test_assert_slo_passes(result):
    p99 = result.quantile(0.99)
    result.assert_slo(p99=f"{p99 + 1}ms", fail_ratio=0.5, requests=1)
    result.assert_slo(p50=10_000, max="10s", avg="<10000ms")
    result.assert_slo(rps=">=1", failures=f"<={result.num_failures}")
    result.assert_slo(rps=1)  # rps is a lower bound without an operator
    result.assert_slo(name="/", fail_ratio=0, p99_9="10s")
    result.assert_slo(name="/echo", method="POST", failures=0)


def test_assert_slo_failure_says_what_and_by_how_much(result):
    p50 = result.quantile(0.5)
    with pytest.raises(AssertionError) as info:
        result.assert_slo(p50="0.001ms", fail_ratio=0.5)
    assert isinstance(info.value, SloError)
    message = str(info.value)
    assert "all requests" in message
    assert "p50 = " in message and "bound <= 0.001" in message and "over by" in message
    assert f"{p50:.3f}"[:3] in message  # the observed value
    assert "fail_ratio" not in message  # that bound held

    with pytest.raises(SloError) as info:
        result.assert_slo(rps=">=1000000000")
    message = str(info.value)
    assert "rps = " in message and "bound >= " in message and "under by" in message


def test_assert_slo_scoped_to_a_name(result):
    with pytest.raises(SloError) as info:
        result.assert_slo(name="/status/500", fail_ratio="1%")
    message = str(info.value)
    assert "/status/500" in message
    assert "fail_ratio = " in message and "over by" in message
    with pytest.raises(SloError, match="no requests named '/nowhere'"):
        result.assert_slo(name="/nowhere", p99="1s")


@pytest.mark.parametrize(
    "bounds",
    [{"p99": "fast"}, {"p99": "<<5ms"}, {"latency": "5ms"}, {"fail_ratio": "lots"}, {"p99": "5 parsecs"}],
)
def test_assert_slo_malformed(result, bounds):
    with pytest.raises(ValueError, match=f"assert_slo\\({next(iter(bounds))}="):
        result.assert_slo(**bounds)


def test_assert_slo_needs_a_bound(result):
    with pytest.raises(TypeError):
        result.assert_slo()


# -- plot and display ------------------------------------------------------------------------


def test_plot_returns_a_figure(result):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    fig = result.plot()
    try:
        assert isinstance(fig, Figure)
        assert len(fig.axes) == 2
        fig.canvas.draw()
    finally:
        plt.close(fig)
    fig = result.plot(name="/echo", method="POST")
    try:
        assert "POST /echo" in fig.axes[0].get_title()
        fig.canvas.draw()
    finally:
        plt.close(fig)


def test_repr_and_html(result):
    assert repr(result).startswith(f"<Result {result.num_requests} requests, {result.num_failures} failures")
    # Three significant digits: the demo target's sub-millisecond p50 is not "0.00".
    assert f"p50 {format_ms(result.quantile(0.5))} ms" in repr(result) and format_ms(result.quantile(0.5)) != "0"
    html = result._repr_html_()
    assert "<table" in html and "Aggregated" in html and "&lt;Result" in html


def test_progress_line_on_stderr(demo, capfd):
    horde.run(Hello, host=demo.url, users=1, run_time=1, progress=True)
    err = capfd.readouterr().err
    assert err.endswith("\n")
    last = err.rstrip("\n").split("\r")[-1]
    assert last.startswith("done "), err
    assert "requests" in last and "failures" in last


def test_no_progress_when_not_asked(demo, capfd):
    horde.run(Hello, host=demo.url, users=1, run_time=1, progress=False)
    assert "done" not in capfd.readouterr().err


# -- start() ---------------------------------------------------------------------------------


def test_start_stop_wait(demo):
    handle = horde.start(Slow, host=demo.url, users=3, run_time=60)
    try:
        deadline = time.monotonic() + 20
        while handle.stats["Request Count"].iloc[-1] < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        live = handle.stats
        assert isinstance(live, pd.DataFrame)
        assert live.iloc[-1]["Name"] == "Aggregated"
        assert live.iloc[-1]["Request Count"] >= 3
        assert handle.user_count == 3
        assert not handle.done
        assert handle.result is None
        assert handle.quantile(0.5) >= 50
        with pytest.raises(TimeoutError):
            handle.wait(timeout=0.1)
    finally:
        handle.stop()
    result = handle.wait(timeout=30)
    assert handle.done
    assert handle.result is result
    assert result.num_requests >= 3
    assert result.num_requests == len(result.samples)
    assert result.meta["end_time"] - result.meta["start_time"] < 30  # stopped, not run to 60 s
    assert handle.user_count == 0


class VerySlow(HttpUser):
    wait_time = constant(1)

    @task
    def very_slow(self):
        self.client.get("/delay/5000", name="very-slow")


def test_a_run_stopped_before_any_request_completed(demo, tmp_path):
    handle = horde.start(VerySlow, host=demo.url, users=1, run_time=60)
    try:
        stats = handle.stats
        assert list(stats["Name"]) == ["Aggregated"]
        assert stats.iloc[-1]["Request Count"] == 0
        assert stats["50%"].isna().all() and stats["50%"].dtype == np.float64
        assert "requests" in handle.progress_line()
    finally:
        handle.stop()
    result = handle.wait(timeout=30)
    assert result.num_requests == 0 and len(result.samples) == 0
    assert math.isnan(result.quantile(0.5))
    assert result.history["Requests/s"].sum() == 0
    assert "0 requests" in repr(result)
    with pytest.raises(SloError, match="no requests to measure"):
        result.assert_slo(p99="1s")
    result.assert_slo(failures=0)
    for suffix in (".npz", ".parquet"):
        result.save(tmp_path / f"empty{suffix}")
        loaded = horde.load(tmp_path / f"empty{suffix}")
        pd.testing.assert_frame_equal(loaded.stats, result.stats)
        pd.testing.assert_frame_equal(loaded.history, result.history)
        assert len(loaded.samples) == 0
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = result.plot()
    assert len(fig.axes) == 2
    plt.close(fig)


def test_one_run_at_a_time(demo):
    handle = horde.start(Slow, host=demo.url, users=1, run_time=60)
    try:
        with pytest.raises(RuntimeError, match="in progress"):
            horde.start(Hello, host=demo.url, users=1, run_time=1)
        with pytest.raises(RuntimeError, match="in progress"):
            horde.run(Hello, host=demo.url, users=1, run_time=1, progress=False)
    finally:
        handle.stop()
    handle.wait(timeout=30)
    # After the first one ended, a new run works.
    result = horde.run(Hello, host=demo.url, users=1, run_time=1, progress=False)
    assert result.num_requests > 0
    assert list(result.stats["Name"]) == ["hello", "Aggregated"]  # nothing left from the Slow run


class Raising(HttpUser):
    wait_time = constant(0.05)

    @task
    def boom(self):
        self.client.get("/", name="before-boom")
        raise RuntimeError("boom in user code")


def test_exceptions_in_user_code_and_html_report(demo, tmp_path, caplog):
    report = tmp_path / "report.html"
    result = horde.run(Raising, host=demo.url, users=1, run_time=1, html=report, progress=False)
    assert list(result.exceptions.columns) == ["Count", "Message", "Traceback", "Nodes"]
    assert len(result.exceptions) == 1
    row = result.exceptions.iloc[0]
    assert row["Count"] >= 1 and "boom in user code" in row["Message"]
    assert "RuntimeError" in row["Traceback"]
    assert result.exit_code == 1
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>") or "<html" in html
    assert "before-boom" in html
    path = tmp_path / "run.npz"
    result.save(path)
    pd.testing.assert_frame_equal(horde.load(path).exceptions, result.exceptions)
    with pytest.raises(RuntimeError, match="environment"):
        horde.load(path).save_html(tmp_path / "again.html")


def test_run_time_ends_a_started_run(demo):
    handle = horde.start(Hello, host=demo.url, users=1, run_time=1)
    result = handle.wait(timeout=30)
    assert result.num_requests > 0


def test_an_error_in_the_run_thread_reaches_the_caller(demo):
    class Weightless(HttpUser):
        weight = 0

        @task
        def t(self):
            pass

    with pytest.raises(ValueError, match="no users with weight > 0"):
        horde.start(Weightless, host=demo.url, users=1, run_time=1)
    result = horde.run(Hello, host=demo.url, users=1, run_time=1, progress=False)
    assert result.num_requests > 0


def test_ctrl_c_stops_the_run_and_keeps_what_was_measured(demo):
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        result = horde.run(Hello, host=demo.url, users=1, run_time=None, progress=False)
    finally:
        timer.cancel()
    assert result.meta["interrupted"] is True
    assert result.num_requests > 0 and len(result.samples) == result.num_requests
    # The interrupted run ended: another one starts at once.
    handle = horde.start(Hello, host=demo.url, users=1, run_time=1)
    assert handle.wait(timeout=30).num_requests > 0


def test_second_ctrl_c_stops_the_users_at_once_and_keeps_the_result(demo):
    # The user interrupts the run after its first request, then sleeps past any stop timeout;
    # the second interrupt comes as the stop begins. Both are Ctrl-C as the caller's thread sees it.
    class Lingering(HttpUser):
        wait_time = constant(0)

        @task
        def t(self):
            self.client.get("/")
            _thread.interrupt_main()
            gevent.sleep(600)

    def interrupt_again(**kwargs):
        _thread.interrupt_main()

    horde.events.test_stopping.add_listener(interrupt_again)
    try:
        result = horde.run(Lingering, host=demo.url, users=1, run_time=None, stop_timeout=600, progress=False)
    finally:
        horde.events.test_stopping.remove_listener(interrupt_again)
    assert result.meta["interrupted"] is True
    assert result.num_requests >= 1


# -- the caller's process --------------------------------------------------------------------


def test_nothing_is_monkeypatched(demo):
    stdlib_socket = socket.socket
    horde.run(Hello, host=demo.url, users=1, run_time=1, progress=False)
    assert socket.socket is stdlib_socket
    assert not gevent.monkey.is_module_patched("socket")
    assert not gevent.monkey.is_module_patched("time")
    assert not gevent.monkey.is_module_patched("threading")


def test_run_inside_a_running_event_loop(demo):
    # What a Jupyter cell does: horde.run called synchronously while an asyncio loop runs.
    async def cell():
        loop = asyncio.get_running_loop()
        result = horde.run(Hello, host=demo.url, users=1, run_time=1, progress=False)
        assert asyncio.get_running_loop() is loop
        return result

    result = asyncio.run(cell())
    assert isinstance(result, horde.Result)
    assert result.num_requests > 0


# -- bad input -------------------------------------------------------------------------------


class NoHost(HttpUser):
    @task
    def t(self):
        self.client.get("/")


class Plain(User):
    wait_time = constant(0.01)

    @task
    def t(self):
        pass


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": -1}, "users must be a whole number >= 0, not -1"),
        ({"users": 1.5}, "users must be a whole number"),
        ({"run_time": "abc"}, "run_time 'abc'"),
        ({"run_time": -1}, "run_time must be > 0 seconds"),
        ({"spawn_rate": 0}, "spawn_rate must be a number > 0"),
        ({"max_samples": -1}, "max_samples must be a whole number >= 0, not -1"),
        ({"max_samples": "100"}, "max_samples must be a whole number >= 0"),
        ({"tags": "read"}, "tags must be a list of tags, not a string: tags=['read']"),
        ({"exclude_tags": "read"}, "exclude_tags must be a list of tags"),
        ({"target": 42}, "target must be a User class, a list of them or a locustfile path, not 42"),
        ({"target": []}, "target must be a User class"),
        ({"target": [Hello, 42]}, "target must be a User class"),
        ({"target": "no/such/locustfile.py"}, "locustfile 'no/such/locustfile.py' not found"),
        ({"target": NoHost, "host": None}, "NoHost has no host: pass host="),
        ({"shape": 42}, "shape must be a LoadTestShape"),
    ],
)
def test_bad_input_is_refused_before_any_load(demo, kwargs, message):
    arguments = {"target": Hello, "host": demo.url, "users": 1, "run_time": 1, **kwargs}
    target = arguments.pop("target")
    with pytest.raises(ValueError, match=re.escape(message)):
        horde.run(target, **arguments, progress=False)
    with pytest.raises(ValueError, match=re.escape(message)):
        horde.start(target, **arguments)
    # Refused while checking the arguments: no run thread was started to send load.
    assert not [t for t in threading.enumerate() if t.name == "horde-run"]


def test_host_is_not_left_on_the_class(demo):
    horde.run(NoHost, host=demo.url, users=1, run_time=1, progress=False)
    assert NoHost.host is None
    with pytest.raises(ValueError, match="NoHost has no host"):
        horde.run(NoHost, users=1, run_time=1, progress=False)
    Hello.host = demo.url
    try:
        result = horde.run(Hello, host=demo.url + "/", users=1, run_time=1, progress=False)
        assert result.num_requests > 0
        assert Hello.host == demo.url
    finally:
        del Hello.host


def test_a_plain_user_needs_no_host():
    result = horde.run(Plain, users=1, run_time=1, progress=False)
    assert result.num_requests == 0
    assert math.isnan(result.quantile(0.5))
    assert len(result.samples) == 0


def test_locustfile_without_user_classes(tmp_path):
    path = tmp_path / "empty_locustfile.py"
    path.write_text("x = 1\n")
    with pytest.raises(ValueError):
        horde.run(path, host="http://127.0.0.1:9", run_time=1, progress=False)


class _Pair(HttpUser):
    wait_time = constant(0.01)

    @task(3)
    def home(self):
        self.client.get("/")

    @task
    def missing(self):
        self.client.get("/status/404", name="missing")


def test_run_in_several_processes_merges_stats_and_samples():
    # Users in two forked worker processes, this process their master: one Result, counted
    # exactly (the target's own count agrees) and with the samples of both processes.
    target = horde.DemoServer()
    try:
        result = horde.run(_Pair, host=target.url, users=6, run_time="3s", processes=2, progress=False)
        received = target.requests_served
    finally:
        target.stop()
    total = result.stats.set_index("Name").loc["Aggregated"]
    assert total["Request Count"] == received == len(result.samples) > 0
    assert total["Failure Count"] == (result.samples.ok == 0).sum() > 0
    assert set(result.samples.keys) == {("GET", "/"), ("GET", "missing")}
    assert np.all(np.diff(result.samples.start_us + result.samples.latency_us) >= 0)  # completion order
    assert result.meta["processes"] == 2 and result.exit_code == 1
    assert result.quantile(0.5) > 0


def test_processes_must_be_a_count():
    for bad in (0, -2, 1.5, "2"):
        with pytest.raises(ValueError, match="processes"):
            horde.run(_Pair, host="http://127.0.0.1:1", processes=bad, progress=False)
