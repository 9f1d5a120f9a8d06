"""The Prometheus endpoint as Prometheus sees it: the text checked with prometheus_client's parser
against horde's own final statistics, in a single process, a distributed run and the web UI, and
a real Prometheus server (Debian's) scraping a run and reporting the same request total.

The users make a fixed number of requests and stop, and an idle user keeps the test going, so the
totals are known exactly and nothing is in flight when the test ends."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port, wait_for_port
from prometheus_client.parser import text_string_to_metric_families

from horde.prometheus import BUCKETS_SECONDS, bucket_counts

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
DASHBOARD = Path(__file__).resolve().parent.parent / "contrib" / "grafana" / "horde.json"

LOCUSTFILE = """
from locust import FastHttpUser, User, constant, task
from locust.exception import StopUser


class Counted(FastHttpUser):
    wait_time = constant(0)

    @task
    def twenty(self):
        for i in range(20):
            # 15 good requests and 5 failures per user.
            self.client.get("/status/503" if i % 4 == 0 else "/")
        raise StopUser()


class Idle(User):
    fixed_count = 1
    wait_time = constant(0.5)

    @task
    def nothing(self):
        pass
"""

#: Every family the endpoint writes, with its type as the parser reports it (a counter's family
#: name loses its ``_total``).
FAMILIES = {
    "horde_info": "gauge",
    "horde_runner_state": "gauge",
    "horde_users": "gauge",
    "horde_workers": "gauge",
    "horde_requests": "counter",
    "horde_request_failures": "counter",
    "horde_response_bytes": "counter",
    "horde_response_time_seconds": "histogram",
    "horde_current_rps": "gauge",
    "horde_current_fail_per_sec": "gauge",
    "horde_dropped_iterations": "counter",
}


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "HORDE_", "OTEL_"))}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(family, **labels) -> float:
    found = [s.value for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (family.name, labels, family.samples)
    return found[0]


def _get(url: str, headers: dict | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


def _locustfile(tmp_path: Path, text: str = LOCUSTFILE) -> Path:
    locustfile = tmp_path / "counted.py"
    locustfile.write_text(text)
    return locustfile


def _run_and_scrape(
    args: list[str], metrics_url: str, tmp_path: Path, headers: dict | None = None, locustfile_text: str = LOCUSTFILE
):
    """Runs horde with ``args`` while scraping ``metrics_url`` every 0.2 s until it exits; returns
    (every scrape's text, the --json stats, the process' stderr)."""
    locustfile = _locustfile(tmp_path, locustfile_text)
    err = open(tmp_path / "stderr.txt", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "horde", "-f", str(locustfile), "--json", *args],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        env=_env(),
    )
    scrapes = []
    deadline = time.monotonic() + 90
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                status, content_type, text = _get(metrics_url, headers)
                assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
                scrapes.append(text)
            except (urllib.error.URLError, ConnectionError):
                pass  # not listening yet, or gone
            time.sleep(0.2)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        err.close()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert scrapes, stderr
    return scrapes, json.loads(out), stderr


def _check_final(text: str, stats: list[dict], users: int) -> dict:
    """The last scrape against horde's final --json statistics; returns the families."""
    families = _families(text)
    assert {name: f.type for name, f in families.items()} == FAMILIES
    by_name = {(row["method"], row["name"]): row for row in stats}
    assert sum(row["num_requests"] for row in stats) == users * 20
    assert by_name[("GET", "/status/503")]["num_failures"] == users * 5
    requests, failures = families["horde_requests"], families["horde_request_failures"]
    histogram = families["horde_response_time_seconds"]
    for (method, name), row in by_name.items():
        labels = {"method": method, "name": name}
        assert _value(requests, **labels) == row["num_requests"]
        assert _value(failures, **labels) == row["num_failures"]
        assert _value(families["horde_response_bytes"], **labels) == row["total_content_length"]
        buckets = [
            (float(s.labels["le"]), s.value)
            for s in histogram.samples
            if s.name.endswith("_bucket") and s.labels["method"] == method and s.labels["name"] == name
        ]
        assert [le for le, _ in buckets] == [*BUCKETS_SECONDS, float("inf")]
        counts = [n for _, n in buckets]
        assert counts == sorted(counts) and counts[-1] == row["num_requests"]
        count = [s.value for s in histogram.samples if s.name.endswith("_count") and s.labels == labels]
        total = [s.value for s in histogram.samples if s.name.endswith("_sum") and s.labels == labels]
        assert count == [row["num_requests"]]
        assert total[0] == pytest.approx(row["total_response_time"] / 1000.0, rel=1e-9)
    assert _value(families["horde_dropped_iterations"]) == 0
    return families


def _saw(scrapes: list[str], family: str, value: float, **labels) -> bool:
    for text in scrapes:
        found = _families(text).get(family)
        for sample in found.samples if found else []:
            if sample.value == value and all(sample.labels.get(k) == v for k, v in labels.items()):
                return True
    return False


def test_bucket_counts_are_cumulative_at_the_bounds():
    values_us = np.array([50, 100, 101, 1000, 2_000_000, 90_000_000], dtype=np.uint64)
    counts = np.array([1, 2, 3, 4, 5, 6], dtype=np.uint64)
    got = bucket_counts(values_us, counts)
    expected = [int(counts[values_us <= bound * 1e6].sum()) for bound in BUCKETS_SECONDS] + [21]
    assert got == expected
    assert got[0] == 3  # 50 µs and 100 µs are within 0.0001 s
    assert bucket_counts(np.array([], dtype=np.uint64), np.array([], dtype=np.uint64)) == [0] * 22


def test_headless_endpoint_matches_the_final_stats(demo, tmp_path):
    port = free_port()
    args = ["--headless", "-u", "4", "-r", "4", "-t", "4s", "-H", demo.url, "--prometheus-port", str(port)]
    scrapes, stats, stderr = _run_and_scrape(args, f"http://127.0.0.1:{port}/metrics", tmp_path)
    families = _check_final(scrapes[-1], stats, users=3)
    assert _saw(scrapes, "horde_runner_state", 1, state="running")
    assert _saw(scrapes, "horde_users", 1, user_class="Idle")
    assert _value(families["horde_runner_state"], state="running") == 0
    assert families["horde_workers"].samples == []
    assert "Waiting up to" in stderr  # for the final scrape, which the last one here is


@pytest.mark.parametrize("layout", ["master and two workers", "--processes 2"])
def test_distributed_run_exports_the_merged_figures_under_the_same_names(demo, tmp_path, layout):
    port, master_port = free_port(), free_port()
    locustfile = _locustfile(tmp_path)
    worker_logs = []
    workers = []
    if layout == "--processes 2":
        # The forked workers must not try to serve --prometheus-port too.
        args = ["--processes", "2", "--master-bind-port", str(master_port)]
    else:
        worker_logs = [open(tmp_path / f"worker{i}.log", "w") for i in range(2)]  # noqa: SIM115 - closed below
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "horde", "-f", str(locustfile), "--worker", "--master-port", str(master_port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_env(),
            )  # fmt: skip
            for log in worker_logs
        ]
        args = ["--master", "--master-bind-port", str(master_port), "--expect-workers", "2"]
    args += ["--headless", "-u", "5", "-r", "5", "-t", "8s", "-H", demo.url, "--prometheus-port", str(port)]
    try:
        scrapes, stats, stderr = _run_and_scrape(args, f"http://127.0.0.1:{port}/metrics", tmp_path)
        for worker in workers:
            assert worker.wait(timeout=60) == 0
    finally:
        for worker, log in zip(workers, worker_logs):
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            log.close()
    families = _check_final(scrapes[-1], stats, users=4)
    assert _saw(scrapes, "horde_workers", 2, state="running"), stderr
    assert _saw(scrapes, "horde_users", 1, user_class="Idle")
    assert {s.labels["state"] for s in families["horde_workers"].samples} >= {"ready", "running", "missing"}
    assert "cannot listen" not in stderr


def test_open_model_exports_dropped_iterations(demo, tmp_path):
    # Two users, each request taking 100 ms: at most 20 of 100 arrivals/s can start, and without
    # a wait the rest are dropped at once.
    slow = "from locust import HttpUser, task\nclass S(HttpUser):\n    @task\n    def s(self):\n" \
        "        self.client.get('/delay/100', name='slow')\n"  # fmt: skip
    port = free_port()
    args = [
        "--headless", "-u", "2", "-t", "3s", "--arrival-rate", "100", "--arrival-max-wait", "0", "-H", demo.url,
        "--hdr-json", str(tmp_path / "hdr.json"), "--prometheus-port", str(port),
    ]  # fmt: skip
    scrapes, stats, stderr = _run_and_scrape(args, f"http://127.0.0.1:{port}/metrics", tmp_path, locustfile_text=slow)
    dropped = json.loads((tmp_path / "hdr.json").read_text())["dropped_iterations"]
    assert dropped > 0, stderr
    families = _families(scrapes[-1])
    assert families["horde_dropped_iterations"].type == "counter"
    assert _value(families["horde_dropped_iterations"]) == dropped
    # Requests in flight when the run stops are left out: how they are counted is the shutdown's
    # business, not the exporter's.
    assert _value(families["horde_requests"], method="GET", name="slow") > 0


def test_web_ui_serves_metrics_behind_its_login(demo, tmp_path):
    port = free_port()
    locustfile = _locustfile(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "horde", "-f", str(locustfile), "--autostart", "-u", "3", "-r", "3", "-t", "3s",
         "-H", demo.url, "--web-port", str(port), "--web-login"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**_env(), "HORDE_WEB_TOKEN": "s3cret"},
    )  # fmt: skip
    try:
        wait_for_port(port, proc)
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(f"http://127.0.0.1:{port}/metrics")
        refused.value.close()  # an HTTPError holds the response's socket
        assert refused.value.code == 401
        status, content_type, text = _get(f"http://127.0.0.1:{port}/metrics", {"Authorization": "Bearer s3cret"})
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
        assert {name: f.type for name, f in _families(text).items()} == FAMILIES
    finally:
        proc.kill()
        proc.wait()


def test_a_busy_port_is_a_clear_error(demo, tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        locustfile = tmp_path / "counted.py"
        locustfile.write_text(LOCUSTFILE)
        done = subprocess.run(
            [sys.executable, "-m", "horde", "-f", str(locustfile), "--headless", "-t", "2s", "-H", demo.url,
             "--prometheus-port", str(port)],
            capture_output=True, text=True, timeout=60, env=_env(),
        )  # fmt: skip
    assert done.returncode == 1
    assert f"--prometheus-port: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(not os.path.exists(PROMETHEUS), reason="Prometheus is not installed (apt-get install prometheus)")
def test_a_real_prometheus_scrapes_the_run(demo, tmp_path):
    horde_port, prometheus_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: horde\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{horde_port}']}}]\n"
    )
    log = open(tmp_path / "prometheus.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    api = f"http://127.0.0.1:{prometheus_port}"

    def query(promql: str, at: float | None = None) -> list:
        params = {"query": promql, **({"time": repr(at)} if at is not None else {})}
        _, _, body = _get(f"{api}/api/v1/query?" + urllib.parse.urlencode(params))
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    try:
        for _ in range(300):
            try:
                if _get(f"{api}/-/ready")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        else:
            raise AssertionError((tmp_path / "prometheus.log").read_text()[-3000:])
        # Prometheus hands discovered targets to its scrape loops in batches, up to 5 s after it is
        # ready: wait until it lists horde's target, so that the whole run is scraped.
        for _ in range(300):
            _, _, body = _get(f"{api}/api/v1/targets")
            if json.loads(body)["data"]["activeTargets"]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("Prometheus never listed the scrape target")

        locustfile = tmp_path / "counted.py"
        locustfile.write_text(LOCUSTFILE)
        done = subprocess.run(
            [sys.executable, "-m", "horde", "-f", str(locustfile), "--json", "--headless",
             "-u", "4", "-r", "4", "-t", "6s", "-H", demo.url, "--prometheus-port", str(horde_port)],
            capture_output=True, text=True, timeout=120, env=_env(),
        )  # fmt: skip
        stats = json.loads(done.stdout)
        final = sum(row["num_requests"] for row in stats)
        assert final == 60, done.stderr

        # The target's series went stale when horde exited: read the highest value each had.
        total = query("sum(max_over_time(horde_requests_total[10m]))")
        assert [float(r["value"][1]) for r in total] == [final]
        failures = query('max_over_time(horde_request_failures_total{name="/status/503"}[10m])')
        assert [float(r["value"][1]) for r in failures] == [15]
        timed = query("sum(max_over_time(horde_response_time_seconds_count[10m]))")
        assert [float(r["value"][1]) for r in timed] == [final]
        # Every query of the Grafana dashboard parses and finds the run (its workers only on a master),
        # with Grafana's variables as "All", at one of the scrapes that saw horde up, latest first: on a
        # loaded machine a scrape can time out, and a rate needs two samples before its instant.
        [series] = query('horde_runner_state{state="running"}[10m]')
        running = [float(t) for t, value in series["values"] if value == "1"]
        assert running, series
        scrapes = sorted({float(t) for row in query("horde_runner_state[10m]") for t, _ in row["values"]}, reverse=True)
        dashboard = json.loads(DASHBOARD.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                promql = target["expr"]
                for variable, value in (("$__rate_interval", "10m"), ("$__range", "10m"), ("$job", ".*"),
                                        ("$instance", ".*"), ("$name", ".*")):  # fmt: skip
                    promql = promql.replace(variable, value)
                found = next((rows for at in scrapes if (rows := query(promql, at=at))), [])
                assert found or "horde_workers" in promql, (panel["title"], promql, len(scrapes))
        _, _, body = _get(f"{api}/api/v1/metadata")
        metadata = json.loads(body)["data"]
        assert metadata["horde_requests_total"][0]["type"] == "counter"
        assert metadata["horde_response_time_seconds"][0]["type"] == "histogram"
        assert metadata["horde_users"][0]["type"] == "gauge"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
