"""``--otel`` checked for real: horde exports to a small OTLP/HTTP receiver started here (decoding
with opentelemetry-proto) and to the console, and the instruments, attributes, resource, spans and
logs are compared with Locust 2.47's names and with horde's own final statistics.

The users make a fixed number of requests and stop (an idle user keeps the test going), so the
totals are known exactly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np
import pytest
from conftest import free_port
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from horde import __version__
from horde.otel import DURATION_BOUNDS, explicit_bucket_counts, exponential_bucket_counts

LOCUSTFILE = """
from locust import {user}, User, constant, task
from locust.exception import StopUser


class Counted({user}):
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


class Receiver:
    """An OTLP/HTTP collector on 127.0.0.1 that keeps every request it is sent, decoded."""

    KINDS = {
        "/v1/metrics": ExportMetricsServiceRequest,
        "/v1/traces": ExportTraceServiceRequest,
        "/v1/logs": ExportLogsServiceRequest,
    }

    def __init__(self) -> None:
        self.received: dict[str, list] = {path: [] for path in self.KINDS}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                kind = receiver.KINDS.get(self.path)
                if kind is None or self.headers["Content-Type"] != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                message = kind()
                message.ParseFromString(body)
                receiver.received[self.path].append(message)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def metrics(self) -> list:
        """Every metric of every export, as (resource attributes, scope name, metric)."""
        out = []
        for request in self.received["/v1/metrics"]:
            for rm in request.resource_metrics:
                resource = _attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    out.extend((resource, sm.scope.name, m) for m in sm.metrics)
        return out

    def spans(self) -> list:
        return [
            span
            for request in self.received["/v1/traces"]
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def log_bodies(self) -> list[str]:
        return [
            record.body.string_value
            for request in self.received["/v1/logs"]
            for rl in request.resource_logs
            for sl in rl.scope_logs
            for record in sl.log_records
        ]


def _attributes(attributes) -> dict:
    out = {}
    for kv in attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _run(
    tmp_path: Path, demo, env: dict, user: str = "HttpUser", users: int = 4, timeout: float = 120, extra: tuple = ()
):
    """Runs the locustfile with ``--otel``: ``users`` - 1 users of ``user`` make 20 requests each."""
    locustfile = tmp_path / "counted.py"
    locustfile.write_text(LOCUSTFILE.format(user=user))
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "HORDE_", "OTEL_"))}
    full_env.update({"PYTHONWARNINGS": "ignore", "OTEL_METRIC_EXPORT_INTERVAL": "1000", **env})
    done = subprocess.run(
        [sys.executable, "-m", "horde", "-f", str(locustfile), "--otel", "--json-file", str(tmp_path / "stats"),
         "--headless", "-u", str(users), "-r", str(users), "-t", "4s", "-H", demo.url, *extra],
        capture_output=True, text=True, timeout=timeout, env=full_env,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # the 503s are failures
    return str(locustfile), json.loads((tmp_path / "stats.json").read_text()), done


def _otlp_env(receiver: Receiver, **extra: str) -> dict:
    return {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, **extra}


def _duration_points(metrics: list, last_only: bool = True) -> list:
    durations = [m for _, _, m in metrics if m.name == "locust.client.duration"]
    assert durations
    chosen = durations[-1:] if last_only else durations
    points = []
    for metric in chosen:
        data = metric.histogram if metric.HasField("histogram") else metric.exponential_histogram
        points.extend(data.data_points)
    return points


def test_otlp_metrics_spans_and_logs_match_locusts_names_and_horde_stats(receiver, demo, tmp_path):
    locustfile, stats, _ = _run(tmp_path, demo, _otlp_env(receiver))
    metrics = receiver.metrics()

    resource, scope, _ = metrics[-1]
    assert resource["service.name"] == "locust"
    assert resource["service.version"] == __version__
    assert resource["host.name"] == socket.gethostname()
    assert resource["filename"] == locustfile
    assert resource["profile"] == ""
    assert {s for _, s, m in metrics if m.name.startswith("locust.")} == {"locust"}

    duration = [m for _, _, m in metrics if m.name == "locust.client.duration"][-1]
    assert (duration.unit, duration.description) == ("s", "Time to last byte for requests")
    assert duration.histogram.aggregation_temporality == 2  # cumulative, the SDK's default
    points = {tuple(sorted(_attributes(p.attributes).items())): p for p in duration.histogram.data_points}
    by_name = {row["name"]: row for row in stats}
    assert sorted(points) == [(("error.type", "HTTPError"), ("name", "/status/503")), (("name", "/"),)]
    good, failed = points[(("name", "/"),)], points[(("error.type", "HTTPError"), ("name", "/status/503"))]
    assert good.count == by_name["/"]["num_requests"] == 45
    assert failed.count == by_name["/status/503"]["num_requests"] == 15
    for point, row in ((good, by_name["/"]), (failed, by_name["/status/503"])):
        assert sum(point.bucket_counts) == point.count
        assert list(point.explicit_bounds) == list(DURATION_BOUNDS)
        assert point.sum == pytest.approx(row["total_response_time"] / 1000.0, rel=1e-9)
        assert point.min == pytest.approx(row["min_response_time"] / 1000.0, rel=1e-9)
        assert point.max == pytest.approx(row["max_response_time"] / 1000.0, rel=1e-9)

    users = [m for _, _, m in metrics if m.name == "locust.users.count"]
    assert users and users[0].unit == "{user}"
    seen = {(_attributes(p.attributes)["user_class"], p.as_int) for m in users for p in m.gauge.data_points}
    assert ("Idle", 1) in seen

    spans = receiver.spans()
    names = sorted(span.name for span in spans)
    assert names == ["GET /"] * 45 + ["GET /status/503"] * 15
    for span in spans:
        attributes = _attributes(span.attributes)
        assert span.kind == 3  # client
        assert attributes["http.method"] == "GET"
        assert attributes["http.url"].startswith(demo.url)
        assert attributes["http.status_code"] == (503 if span.name.endswith("503") else 200)
        assert span.status.code == (2 if span.name.endswith("503") else 0)  # error / unset
        assert span.end_time_unix_nano >= span.start_time_unix_nano

    assert any("All users spawned" in body for body in receiver.log_bodies())


def test_fasthttp_requests_have_no_spans_and_the_histogram_can_be_exponential_and_delta(receiver, demo, tmp_path):
    env = _otlp_env(
        receiver,
        OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION="base2_exponential_bucket_histogram",
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="delta",
    )
    _, stats, _ = _run(tmp_path, demo, env, user="FastHttpUser")
    assert receiver.spans() == []
    metrics = receiver.metrics()
    durations = [m for _, _, m in metrics if m.name == "locust.client.duration"]
    assert all(m.HasField("exponential_histogram") for m in durations)
    assert all(m.exponential_histogram.aggregation_temporality == 1 for m in durations)  # delta
    totals: dict[tuple, int] = {}
    for point in _duration_points(metrics, last_only=False):
        key = tuple(sorted(_attributes(point.attributes).items()))
        assert sum(point.positive.bucket_counts) + point.zero_count == point.count
        assert len(point.positive.bucket_counts) <= 160
        totals[key] = totals.get(key, 0) + point.count
    by_name = {row["name"]: row["num_requests"] for row in stats}
    # FastHttpUser's failure for a 503 is Locust's LocustBadStatusCode.
    assert totals == {
        (("name", "/"),): by_name["/"],
        (("error.type", "LocustBadStatusCode"), ("name", "/status/503")): by_name["/status/503"],
    }


class GrpcMetricsReceiver(metrics_service_pb2_grpc.MetricsServiceServicer):
    """An OTLP/gRPC collector of metrics on 127.0.0.1 (the protocol's default) that keeps what it gets."""

    def __init__(self) -> None:
        self.received: list[ExportMetricsServiceRequest] = []
        self.server = grpc.server(ThreadPoolExecutor(max_workers=2))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def Export(self, request, context):  # noqa: N802 - the service's method name
        self.received.append(request)
        return ExportMetricsServiceResponse()


def test_otlp_over_grpc_under_gevent(demo, tmp_path):
    receiver = GrpcMetricsReceiver()
    try:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }
        _, stats, done = _run(tmp_path, demo, env)
    finally:
        receiver.server.stop(grace=None)
    assert "could not deliver" not in done.stderr, done.stderr
    durations = [
        m
        for request in receiver.received
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "locust.client.duration"
    ]
    assert durations, done.stderr
    points = {tuple(sorted(_attributes(p.attributes).items())): p.count for p in durations[-1].histogram.data_points}
    by_name = {row["name"]: row["num_requests"] for row in stats}
    assert points == {
        (("name", "/"),): by_name["/"],
        (("error.type", "HTTPError"), ("name", "/status/503")): by_name["/status/503"],
    }


def test_distributed_run_each_worker_exports_its_requests_and_the_master_the_users(receiver, demo, tmp_path):
    # As in Locust: every process records the requests it makes, the master alone observes the users.
    env = _otlp_env(receiver, OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    extra = ("--processes", "2", "--master-bind-port", str(free_port()))
    _, stats, done = _run(tmp_path, demo, env, users=5, extra=extra)
    # Each process's series are cumulative from its own start: the last value of each, summed.
    last: dict[tuple, int] = {}
    users_exports = 0
    for _, _, metric in receiver.metrics():
        if metric.name == "locust.users.count":
            users_exports += 1
        if metric.name != "locust.client.duration":
            continue
        for point in metric.histogram.data_points:
            key = (point.start_time_unix_nano, tuple(sorted(_attributes(point.attributes).items())))
            last[key] = max(last.get(key, 0), point.count)
    assert len({start for start, _ in last}) == 2, done.stderr  # the two workers
    totals: dict[tuple, int] = {}
    for (_, attributes), count in last.items():
        totals[attributes] = totals.get(attributes, 0) + count
    by_name = {row["name"]: row["num_requests"] for row in stats}
    assert (by_name["/"], by_name["/status/503"]) == (60, 20)
    assert totals == {
        (("name", "/"),): by_name["/"],
        (("error.type", "HTTPError"), ("name", "/status/503")): by_name["/status/503"],
    }
    assert users_exports > 0


def test_spans_follow_the_standard_sampler_variables(receiver, demo, tmp_path):
    env = _otlp_env(
        receiver,
        OTEL_TRACES_SAMPLER="traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.5",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SEMCONV_STABILITY_OPT_IN="http",
    )
    _run(tmp_path, demo, env, users=6)  # 100 requests
    spans = receiver.spans()
    # Each request is kept with probability 1/2: all 100 or none of them is a 2**-99 chance.
    assert 0 < len(spans) < 100
    bound = TraceIdRatioBased.get_bound_for_rate(0.5)
    for span in spans:
        # Trace ids the ratio sampler itself keeps, so services down the line agree.
        assert int.from_bytes(span.trace_id, "big") & (2**64 - 1) < bound
        attributes = _attributes(span.attributes)
        assert attributes["http.request.method"] == "GET" and "http.method" not in attributes
        assert attributes["url.full"].startswith(demo.url)
        if span.name == "GET /status/503":
            assert attributes["error.type"] == "503"
    assert receiver.received["/v1/metrics"] == []

    receiver.received["/v1/traces"].clear()
    _run(tmp_path, demo, {**env, "OTEL_TRACES_SAMPLER": "parentbased_always_off"}, users=2)
    assert receiver.spans() == []


def test_console_exporters(demo, tmp_path):
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console", "OTEL_LOGS_EXPORTER": "console"}
    _, stats, done = _run(tmp_path, demo, env, users=2)
    out = done.stdout
    assert '"name": "locust.client.duration"' in out
    assert '"name": "locust.users.count"' in out
    assert '"name": "GET /status/503"' in out  # a span
    assert "All users spawned" in out  # a log record


def test_an_unreachable_collector_is_reported_once_and_the_run_goes_on(demo, tmp_path):
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    _, stats, done = _run(tmp_path, demo, env, users=2)
    assert sum(row["num_requests"] for row in stats) == 20
    assert done.stderr.count("metrics exporter could not deliver") == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_exporter_package_or_bad_settings_get_a_clear_message(demo, tmp_path):
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon", "OTEL_METRIC_EXPORT_INTERVAL": "soon"}
    _, stats, done = _run(tmp_path, demo, env, users=2)
    assert "Unknown OpenTelemetry otlp exporter protocol 'carrier-pigeon'" in done.stderr
    assert "OTEL_METRIC_EXPORT_INTERVAL='soon' is not a positive number of milliseconds" in done.stderr
    assert sum(row["num_requests"] for row in stats) == 20


def test_explicit_buckets_from_hdr_buckets():
    values_us = np.array([50, 100, 101, 5000, 5001, 70_000_000], dtype=np.uint64)
    counts = np.array([1, 2, 3, 4, 5, 6], dtype=np.uint64)
    got = explicit_bucket_counts(values_us, counts, DURATION_BOUNDS)
    expected = [0] * (len(DURATION_BOUNDS) + 1)
    for value, count in zip(values_us, counts):
        # OpenTelemetry's bucket i holds (bounds[i-1], bounds[i]].
        index = next((i for i, b in enumerate(DURATION_BOUNDS) if value / 1e6 <= b), len(DURATION_BOUNDS))
        expected[index] += int(count)
    assert got == expected
    assert got[0] == 3 and got[1] == 3 and got[-1] == 6


def test_exponential_buckets_hold_each_value_within_their_bounds():
    rng = np.random.default_rng(7)
    values_us = np.unique(rng.integers(80, 3_000_000, 500)).astype(np.uint64)
    counts = rng.integers(1, 5, len(values_us)).astype(np.uint64)
    scale, offset, buckets = exponential_bucket_counts(values_us, counts)
    assert len(buckets) <= 160 and sum(buckets) == int(counts.sum())
    base = 2.0 ** (2.0**-scale)
    for value, count in zip(values_us / 1e6, counts):
        index = int(np.ceil(np.log(value) / np.log(base))) - 1
        assert base**index < value <= base ** (index + 1) * (1 + 1e-12)
        assert buckets[index - offset] >= count

    # The finest scale that fits: one scale finer would need more than 160 buckets.
    def width(at: int) -> int:
        low, high = (np.ceil(np.log2(v / 1e6) * 2.0**at) - 1 for v in (values_us.min(), values_us.max()))
        return int(high - low) + 1

    assert width(scale) <= 160 < width(scale + 1)
