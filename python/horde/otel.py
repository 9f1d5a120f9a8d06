"""``--otel``: OpenTelemetry metrics, spans and logs as Locust 2.47 sends them.

The variables (``OTEL_*_EXPORTER``, ``OTEL_EXPORTER_OTLP_*``, ``OTEL_SERVICE_NAME``, the sampler's),
the resource attributes, the instruments (``locust.client.duration``, ``locust.users.count``) and
their attributes are Locust's, so dashboards built for Locust keep working. What differs is how
the duration histogram is fed: Locust records each request from a request listener, a Python
call per request; horde's engine groups the response times by the histogram's attributes as it
counts them (``horde_core::outcomes``) and the exporter turns each interval's HdrHistograms into
OpenTelemetry buckets at once. Spans are made only for the HttpUser requests the sampler keeps.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import gevent
import numpy as np
from opentelemetry import _logs, metrics, propagate, trace
from opentelemetry.metrics import Observation
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ConsoleMetricExporter,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Status, StatusCode

from horde import __version__

logger = logging.getLogger(__name__)

SCOPE = "locust"
DURATION = "locust.client.duration"
DURATION_DESCRIPTION = "Time to last byte for requests"
USERS = "locust.users.count"

#: The duration histogram's explicit bucket bounds, seconds. Locust records seconds into the SDK's
#: default bounds, which are meant for milliseconds (0, 5, 10, ... 10000) and put nearly every
#: request into one bucket; these follow OpenTelemetry's advice for HTTP durations, with finer
#: steps below 5 ms for fast targets (the same bounds as the Prometheus endpoint's). For precise
#: percentiles in the backend, set OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=
#: base2_exponential_bucket_histogram.
DURATION_BOUNDS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
    0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
)  # fmt: skip

#: An exponential histogram's most buckets and finest scale (the SDK's defaults).
EXPONENTIAL_MAX_SIZE = 160
EXPONENTIAL_MAX_SCALE = 20

#: How long the last export at the end of a run may wait for a collector.
FINAL_EXPORT_TIMEOUT_S = 10.0


def _exporters(variable: str) -> set[str]:
    return {e.strip().lower() for e in os.getenv(variable, "otlp").split(",") if e.strip()}


def _protocol(signal: str) -> str:
    return (
        os.getenv(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", os.getenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"))
        .lower()
        .strip()
    )


def _otlp_exporter(signal: str) -> Any:
    """The OTLP exporter class for ``signal`` ("traces", "metrics", "logs") over the protocol the
    variables name, as Locust picks it; None (with a warning saying why) if it cannot be had."""
    protocol = _protocol(signal)
    modules = {
        "traces": ("trace_exporter", "OTLPSpanExporter"),
        "metrics": ("metric_exporter", "OTLPMetricExporter"),
        "logs": ("_log_exporter", "OTLPLogExporter"),
    }
    module, name = modules[signal]
    if protocol == "grpc":
        package = "grpc"
    elif protocol in ("http/protobuf", "http"):
        package = "http"
    else:
        logger.warning(f"Unknown OpenTelemetry otlp exporter protocol '{protocol}'. Use 'grpc' or 'http/protobuf'")
        return None
    try:
        imported = __import__(f"opentelemetry.exporter.otlp.proto.{package}.{module}", fromlist=[name])
    except ImportError:
        logger.warning(
            f"OpenTelemetry otlp exporter for '{protocol}' is not available. Please install the required package: "
            f"opentelemetry-exporter-otlp-proto-{package} (pip install 'horde[otel]')"
        )
        return None
    if package == "grpc":
        _cooperative_grpc()
    return getattr(imported, name)


def _cooperative_grpc() -> None:
    # Under gevent's monkey patching (the horde command), gRPC's own threads would block the
    # users' loop while an export waits on the collector; gRPC's gevent mode makes it yield.
    try:
        from gevent import monkey

        if monkey.is_module_patched("socket"):
            from grpc.experimental import gevent as grpc_gevent

            grpc_gevent.init_gevent()
    except ImportError:
        pass


def setup_opentelemetry(locustfile: str, profile: str | None) -> Telemetry | None:
    """Sets up OpenTelemetry from the ``OTEL_*`` variables as Locust's ``--otel`` does: global
    tracer, meter and logger providers with a resource naming the test, and the exporters asked
    for. Returns None (having said why) when every exporter is ``none``. This module needs the
    SDK: import it only for ``--otel`` (``pip install 'horde[otel]'``).

    Call ``Telemetry.watch(runner)`` once the runner exists, and ``Telemetry.shutdown()`` at the end.
    """
    traces_exporters = _exporters("OTEL_TRACES_EXPORTER")
    metrics_exporters = _exporters("OTEL_METRICS_EXPORTER")
    logs_exporters = _exporters("OTEL_LOGS_EXPORTER")
    if traces_exporters == {"none"} and metrics_exporters == {"none"} and logs_exporters == {"none"}:
        logger.info("No OpenTelemetry exporters configured, opentelemetry not enabled")
        return None

    resource = Resource.create(
        {
            "service.name": os.getenv("OTEL_SERVICE_NAME", "locust"),
            "service.version": __version__,
            "host.name": socket.gethostname(),
            "filename": locustfile,
            "profile": profile or "",
        }
    )
    telemetry = Telemetry()
    if traces_exporters:
        tracer_provider, tracing = _setup_tracing(resource, traces_exporters)
        trace.set_tracer_provider(tracer_provider)
        telemetry.tracer_provider = tracer_provider
        telemetry.tracing = tracing
    if metrics_exporters:
        telemetry.setup_metrics(resource, metrics_exporters)
        metrics.set_meter_provider(telemetry.meter_provider)
    if logs_exporters:
        logger_provider = _setup_logs(resource, logs_exporters)
        _logs.set_logger_provider(logger_provider)
        telemetry.logger_provider = logger_provider
    _setup_auto_instrumentation()
    logger.debug("OpenTelemetry configured!")
    return telemetry


class Telemetry:
    """The OpenTelemetry providers of a run and the export of the engine's durations."""

    def __init__(self) -> None:
        self.tracer_provider: Any = None
        self.tracing: RequestTracing | None = None
        self.meter_provider: Any = None
        self.logger_provider: Any = None
        self.sinks: list[_MetricSink] = []
        self.interval_s = 60.0
        self.timeout_s = 30.0
        self._stats: Any = None
        self._durations = _Durations()
        self._loop: gevent.Greenlet | None = None

    def setup_metrics(self, resource: Any, exporters: set[str]) -> None:
        for name in exporters:
            if name == "otlp":
                cls = _otlp_exporter("metrics")
                if cls is not None:
                    self.sinks.append(_MetricSink("otlp", cls()))
                    logger.debug("Configured metrics exporter: otlp")
            elif name == "console":
                self.sinks.append(_MetricSink("console", ConsoleMetricExporter()))
                logger.debug("Configured metrics exporter: console")
            elif name == "prometheus":
                logger.warning(
                    "OTEL_METRICS_EXPORTER=prometheus: use horde's own Prometheus endpoint instead (/metrics on the "
                    "web UI, or --prometheus-port when headless)"
                )
            elif name != "none":
                logger.warning(f"Unknown metrics exporter '{name}'. Ignored")
        self.interval_s = _milliseconds("OTEL_METRIC_EXPORT_INTERVAL", 60000) / 1000
        self.timeout_s = _milliseconds("OTEL_METRIC_EXPORT_TIMEOUT", 30000) / 1000
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[s.reader for s in self.sinks])
        self.resource = resource

    def watch(self, runner: Any) -> None:
        """Starts exporting the run's figures: the engine groups response times for the duration
        histogram from now on, and (except on a worker, whose master knows the users) the users
        per class are observed; the traced HttpUser requests are handed the tracer."""
        from horde.clients import HttpSession
        from horde.runners import WorkerRunner

        if self.tracing is not None:
            HttpSession._tracing = self.tracing
        if not self.sinks:
            return
        self._stats = runner.stats
        runner.stats.track_outcomes()
        if not isinstance(runner, WorkerRunner):

            def observe_user_count(options: Any) -> Any:
                for user_class, count in runner.user_classes_count.items():
                    yield Observation(count, {"user_class": user_class})

            self.meter_provider.get_meter(SCOPE).create_observable_gauge(
                USERS,
                callbacks=[observe_user_count],
                unit="{user}",
                description="Number of currently running Locust users",
            )
        self._loop = gevent.spawn(self._export_every_interval)

    def _export_every_interval(self) -> None:
        while True:
            gevent.sleep(self.interval_s)
            self.export(self.timeout_s)

    def export(self, timeout_s: float) -> None:
        """Hands every exporter the SDK's instruments and the engine's durations since the last
        export (or all of them, for a cumulative exporter)."""

        if self._stats is not None:
            self._durations.add(self._stats.take_outcomes(), time.time_ns())
        for sink in self.sinks:
            data = _with_durations(sink, self._durations, self.resource)
            if data is None:
                continue
            try:
                result = sink.exporter.export(data, timeout_millis=timeout_s * 1000)
            except Exception as e:  # an exporter's bug must not end the run
                result = None
                logger.debug("OpenTelemetry metrics export raised", exc_info=e)
            sink.report(result == MetricExportResult.SUCCESS)
        self._durations.exported()

    def shutdown(self) -> None:
        """Exports what is left (waiting at most ``FINAL_EXPORT_TIMEOUT_S`` for a collector) and
        stops the providers."""
        from horde.clients import HttpSession

        HttpSession._tracing = None
        if self._loop is not None:
            self._loop.kill(block=True)
            self._loop = None
            self.export(min(self.timeout_s, FINAL_EXPORT_TIMEOUT_S))
        timeout_ms = int(FINAL_EXPORT_TIMEOUT_S * 1000)
        for provider in (self.tracer_provider, self.logger_provider):
            if provider is not None:
                provider.force_flush(timeout_ms)
                provider.shutdown()
        for sink in self.sinks:
            sink.exporter.shutdown(timeout_millis=timeout_ms)
        if self.meter_provider is not None:
            self.meter_provider.shutdown(timeout_millis=timeout_ms)


def _milliseconds(variable: str, default: float) -> float:
    value = os.getenv(variable)
    if value is None:
        return default
    try:
        ms = float(value)
    except ValueError:
        ms = -1
    if not ms > 0 or math.isinf(ms):
        logger.warning(f"{variable}={value!r} is not a positive number of milliseconds; using {default:g}")
        return default
    return ms


class _MetricSink:
    """One metrics exporter, with its reader of the SDK's instruments and its preferences for
    horde's duration histogram (delta or cumulative, explicit or exponential buckets)."""

    def __init__(self, name: str, exporter: MetricExporter) -> None:
        self.name = name
        self.exporter = exporter
        # The preferences the exporter states (the OTLP exporters read them from the variables),
        # taken as the SDK's periodic reader takes them.
        temporality = getattr(exporter, "_preferred_temporality", None) or {}
        aggregation = getattr(exporter, "_preferred_aggregation", None) or {}
        self.reader: InMemoryMetricReader = InMemoryMetricReader(
            preferred_temporality=temporality or None, preferred_aggregation=aggregation or None
        )
        self.delta = temporality.get(HistogramInstrument) == AggregationTemporality.DELTA
        self.exponential = isinstance(aggregation.get(HistogramInstrument), ExponentialBucketHistogramAggregation)
        self._failing = False

    def report(self, delivered: bool) -> None:
        # One message when exports start failing and one when they recover, not one per interval.
        if not delivered and not self._failing:
            where = ""
            if self.name == "otlp":
                endpoint = os.getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or os.getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
                where = f" ({endpoint or 'the default collector address'})"
            logger.warning(
                f"OpenTelemetry: the {self.name} metrics exporter could not deliver{where}; is the collector "
                "running? The test goes on, and horde keeps trying at each export interval"
            )
        elif delivered and self._failing:
            logger.info(f"OpenTelemetry: the {self.name} metrics exporter delivers again")
        self._failing = not delivered


class _Series:
    """One (name, error.type) of the duration histogram: its HdrHistogram buckets (µs) and exact
    count, sum, min and max (ms), over some span of time."""

    __slots__ = ("values", "counts", "sum_ms", "min_ms", "max_ms")

    def __init__(self, values: Any, counts: Any, sum_ms: float, min_ms: float, max_ms: float) -> None:
        self.values, self.counts = values, counts
        self.sum_ms, self.min_ms, self.max_ms = sum_ms, min_ms, max_ms

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def add(self, other: _Series) -> None:
        values = np.concatenate([self.values, other.values])
        merged, where = np.unique(values, return_inverse=True)
        self.counts = np.bincount(where, weights=np.concatenate([self.counts, other.counts])).astype(np.uint64)
        self.values = merged
        self.sum_ms += other.sum_ms
        self.min_ms = min(self.min_ms, other.min_ms)
        self.max_ms = max(self.max_ms, other.max_ms)


class _Durations:
    """The engine's durations as the exporters need them: the last interval's (delta) and all of
    them since ``--otel`` started (cumulative), per (name, error.type)."""

    def __init__(self) -> None:
        self.start_ns = time.time_ns()
        self.last_export_ns = self.start_ns
        self.now_ns = self.start_ns
        self.delta: dict[tuple[str, str | None], _Series] = {}
        self.total: dict[tuple[str, str | None], _Series] = {}

    def add(self, taken: list[tuple[str, str | None, Any, Any, float, float, float]], now_ns: int) -> None:
        self.now_ns = now_ns
        self.delta = {}
        for name, error_type, values, counts, sum_ms, min_ms, max_ms in taken:
            key = (name, error_type)
            self.delta[key] = _Series(values, counts, sum_ms, min_ms, max_ms)
            if key in self.total:
                self.total[key].add(_Series(values, counts, sum_ms, min_ms, max_ms))
            else:
                self.total[key] = _Series(values.copy(), counts.copy(), sum_ms, min_ms, max_ms)

    def exported(self) -> None:
        self.last_export_ns = self.now_ns


def _with_durations(sink: _MetricSink, durations: _Durations, resource: Any) -> Any:
    """The SDK's collection for ``sink`` with the duration histogram added under Locust's scope;
    None when there is nothing to send."""

    data = sink.reader.get_metrics_data()
    series = durations.delta if sink.delta else durations.total
    if not series:
        return data
    start = durations.last_export_ns if sink.delta else durations.start_ns
    points = [
        _point(key, s, start, durations.now_ns, sink.exponential) for key, s in sorted(series.items(), key=_order)
    ]
    temporality = AggregationTemporality.DELTA if sink.delta else AggregationTemporality.CUMULATIVE
    histogram: Any = (
        ExponentialHistogram(data_points=points, aggregation_temporality=temporality)
        if sink.exponential
        else Histogram(data_points=points, aggregation_temporality=temporality)
    )
    metric = Metric(name=DURATION, description=DURATION_DESCRIPTION, unit="s", data=histogram)
    if data is None:
        data = MetricsData(resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=[], schema_url="")])
    resource_metrics = data.resource_metrics[0]
    scopes = list(resource_metrics.scope_metrics)
    for i, scope_metrics in enumerate(scopes):
        if scope_metrics.scope.name == SCOPE:
            scopes[i] = ScopeMetrics(
                scope=scope_metrics.scope,
                metrics=[*scope_metrics.metrics, metric],
                schema_url=scope_metrics.schema_url,
            )
            break
    else:
        scopes.append(ScopeMetrics(scope=InstrumentationScope(SCOPE), metrics=[metric], schema_url=""))
    rebuilt = ResourceMetrics(
        resource=resource_metrics.resource, scope_metrics=scopes, schema_url=resource_metrics.schema_url
    )
    return MetricsData(resource_metrics=[rebuilt, *data.resource_metrics[1:]])


def _order(item: tuple[tuple[str, str | None], _Series]) -> tuple[str, str]:
    (name, error_type), _ = item
    return name, error_type or ""


def _point(key: tuple[str, str | None], series: _Series, start_ns: int, now_ns: int, exponential: bool) -> Any:
    name, error_type = key
    attributes: dict[str, str] = {"name": name}
    if error_type is not None:
        attributes["error.type"] = error_type
    common: dict[str, Any] = {
        "attributes": attributes,
        "start_time_unix_nano": start_ns,
        "time_unix_nano": now_ns,
        "count": series.count,
        "sum": series.sum_ms / 1000.0,
        "min": series.min_ms / 1000.0,
        "max": series.max_ms / 1000.0,
    }
    if not exponential:
        return HistogramDataPoint(
            bucket_counts=explicit_bucket_counts(series.values, series.counts, DURATION_BOUNDS),
            explicit_bounds=DURATION_BOUNDS,
            **common,
        )

    scale, offset, counts = exponential_bucket_counts(series.values, series.counts)
    return ExponentialHistogramDataPoint(
        scale=scale,
        zero_count=0,
        positive=Buckets(offset=offset, bucket_counts=counts),
        negative=Buckets(offset=0, bucket_counts=[]),
        flags=0,
        **common,
    )


def explicit_bucket_counts(values_us: Any, counts: Any, bounds_s: tuple[float, ...]) -> list[int]:
    """Counts per explicit bucket (``len(bounds) + 1`` of them, OpenTelemetry's ``(b[i-1], b[i]]``)
    of a histogram given as its HdrHistogram buckets: highest µs value of each, and its count."""
    bounds_us = np.asarray(bounds_s) * 1e6
    where = np.searchsorted(bounds_us, np.asarray(values_us, dtype=np.float64), side="left")
    summed = np.bincount(where, weights=np.asarray(counts, dtype=np.float64), minlength=len(bounds_s) + 1)
    return [int(c) for c in summed]


def exponential_bucket_counts(
    values_us: Any, counts: Any, max_size: int = EXPONENTIAL_MAX_SIZE, max_scale: int = EXPONENTIAL_MAX_SCALE
) -> tuple[int, int, list[int]]:
    """A base-2 exponential histogram of the same: ``(scale, offset, counts)`` at the finest scale
    whose buckets from the smallest to the largest value number at most ``max_size``. Bucket ``i``
    holds the values in ``(2**(i / 2**scale), 2**((i + 1) / 2**scale)]`` seconds."""
    seconds = np.asarray(values_us, dtype=np.float64) / 1e6
    weights = np.asarray(counts, dtype=np.float64)
    # At the finest scale, then coarser: one scale down halves an index (rounding down).
    index = np.ceil(np.log2(seconds) * 2.0**max_scale).astype(np.int64) - 1
    low, high = int(index.min()), int(index.max())
    shift = 0
    while (high >> shift) - (low >> shift) + 1 > max_size:
        shift += 1
    index = index >> shift
    offset = low >> shift
    summed = np.bincount(index - offset, weights=weights)
    return max_scale - shift, offset, [int(c) for c in summed]


# ---------------------------------------------------------------------------------------------
# Spans for HttpUser requests


class RequestTracing:
    """Makes a span for each HttpUser request the sampler keeps, named ``"METHOD name"`` as
    Locust's requests instrumentation names them, and sends its trace context along.

    The sampler is asked in advance: the standard samplers keep a root span with a fixed
    probability, so the count of requests until the next kept one is drawn at once (a geometric
    draw) and the client only counts down; the span is then made with a trace id the sampler
    keeps. A sampler whose probability is not known (one from an entry point) is asked per
    request.
    """

    __slots__ = ("tracer", "skip", "rate", "ids", "old_names", "new_names")

    def __init__(self, tracer: Any, rate: float | None, ids: _SampledIds, semconv: str) -> None:
        self.tracer = tracer
        self.rate = rate
        self.ids = ids
        self.skip = 0
        self._draw_skip()
        self.old_names = semconv in ("", "http/dup")
        self.new_names = semconv in ("http", "http/dup")

    def _draw_skip(self) -> None:
        rate = self.rate
        if rate is None or rate >= 1.0:
            self.skip = 0
        else:
            # Requests passed over before the next kept one: geometric with success ``rate``.
            self.skip = int(math.log(1.0 - random.random()) / math.log1p(-rate))

    def start(self, method: str, url: str, span_name: str, headers: Any) -> tuple[Any, Any]:
        """Starts the span of a request the countdown picked; returns it (None if the sampler
        declined after all) and the headers to send, with the trace context."""

        self._draw_skip()
        self.ids.sampled_next = self.rate is not None
        try:
            span = self.tracer.start_span(span_name, kind=trace.SpanKind.CLIENT)
        finally:
            self.ids.sampled_next = False
        if not span.is_recording():
            return None, headers
        attributes: dict[str, str | int] = {}
        parts = urlsplit(url)
        safe_url = url if "@" not in parts.netloc else parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        if self.old_names:
            attributes.update({"http.method": method, "http.url": safe_url})
        if self.new_names:
            attributes.update({"http.request.method": method, "url.full": safe_url})
            if parts.hostname:
                attributes["server.address"] = parts.hostname
            port = parts.port or (443 if parts.scheme == "https" else 80)
            attributes["server.port"] = port
        span.set_attributes(attributes)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        pairs = list(headers) if isinstance(headers, list) else list(headers.items())
        return span, pairs + list(carrier.items())

    def end(self, span: Any, status: int, error: Exception | None) -> None:
        """Ends a request's span with its status: an error from 400 on, or without a response."""

        if status:
            if self.old_names:
                span.set_attribute("http.status_code", status)
            if self.new_names:
                span.set_attribute("http.response.status_code", status)
        if error is not None or status >= 400 or not status:
            if self.new_names:
                span.set_attribute("error.type", str(status) if status >= 400 else type(error).__name__)
            span.set_status(Status(StatusCode.ERROR, None if error is None else str(error)))
        span.end()


def _setup_tracing(resource: Any, exporters: set[str]) -> tuple[Any, RequestTracing | None]:
    ids = _SampledIds()
    provider = TracerProvider(resource=resource, id_generator=ids)
    processors = 0
    for name in exporters:
        if name == "otlp":
            cls = _otlp_exporter("traces")
            if cls is not None:
                provider.add_span_processor(BatchSpanProcessor(cls()))
                processors += 1
                logger.debug("Configured traces exporter: otlp")
        elif name == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
            processors += 1
            logger.debug("Configured traces exporter: console")
        elif name != "none":
            logger.warning(f"Unknown traces exporter '{name}'. Ignored")
    if not processors:
        return provider, None
    rate = _root_sampling_rate(provider.sampler)
    if rate == 0.0:
        return provider, None
    ids.bound = None if rate is None or rate >= 1.0 else _ratio_bound(rate)
    semconv = os.getenv("OTEL_SEMCONV_STABILITY_OPT_IN", "")
    choices = {c.strip() for c in semconv.split(",")}
    mode = "http/dup" if "http/dup" in choices else "http" if "http" in choices else ""
    tracer = provider.get_tracer("horde.clients", __version__)
    return provider, RequestTracing(tracer, rate, ids, mode)


def _root_sampling_rate(sampler: Any) -> float | None:
    """The probability with which ``sampler`` keeps a root span (a request's span has no parent),
    for the standard samplers; None for a sampler of unknown behaviour."""

    if isinstance(sampler, sampling.ParentBased):
        # Without a parent, ParentBased leaves the decision to its root sampler.
        sampler = sampler._root
    if isinstance(sampler, sampling.StaticSampler):
        return 1.0 if sampler.should_sample(None, 1, "").decision.is_sampled() else 0.0
    if isinstance(sampler, sampling.TraceIdRatioBased):
        return float(sampler.rate)
    return None


def _ratio_bound(rate: float) -> int:
    return int(sampling.TraceIdRatioBased.get_bound_for_rate(rate))


class _SampledIds(RandomIdGenerator):
    """The tracer's id generator: random ids, except that the trace id of a request span picked
    by ``RequestTracing``'s countdown is one the ratio sampler keeps (its lower 64 bits below the
    sampler's bound, uniformly, which is how the trace ids it keeps are spread)."""

    def __init__(self) -> None:
        self.bound: int | None = None
        self.sampled_next = False

    def generate_trace_id(self) -> int:
        if not self.sampled_next or self.bound is None:
            return super().generate_trace_id()
        high = random.getrandbits(64)
        low = random.randrange(self.bound)
        return (high << 64 | low) or 1


# ---------------------------------------------------------------------------------------------
# Logs and other instrumentation


def _setup_logs(resource: Any, exporters: set[str]) -> Any:
    provider = LoggerProvider(resource=resource)
    for name in exporters:
        if name == "otlp":
            cls = _otlp_exporter("logs")
            if cls is not None:
                provider.add_log_record_processor(BatchLogRecordProcessor(cls()))
                logger.debug("Configured logs exporter: otlp")
        elif name == "console":
            provider.add_log_record_processor(SimpleLogRecordProcessor(ConsoleLogRecordExporter()))
            logger.debug("Configured logs exporter: console")
        elif name != "none":
            logger.warning(f"Unknown logs exporter '{name}'. Ignored")
    handler = LoggingHandler(logger_provider=provider)
    handler.name = "opentelemetry"
    logging.getLogger().addHandler(handler)
    # horde's and Locust's loggers do not propagate to the root (see horde.log), so they get the
    # handler too; the console table (locust.stats_logger) is left out, as in Locust.
    logging.getLogger("locust").addHandler(handler)
    logging.getLogger("horde").addHandler(handler)
    return provider


def _setup_auto_instrumentation() -> None:
    """Locust also instruments the ``requests`` and ``urllib3`` libraries when their
    instrumentations are installed: a locustfile's own calls through them get spans too."""
    try:
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        def request_hook(span: Any, request: Any) -> None:
            span.update_name(f"{request.method} {urlsplit(request.url).path or '/'}")

        RequestsInstrumentor().instrument(request_hook=request_hook)
    except ImportError:
        logger.debug("OpenTelemetry 'requests' instrumentation is not installed")
    try:
        from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

        URLLib3Instrumentor().instrument()
    except ImportError:
        logger.debug("OpenTelemetry 'urllib3' instrumentation is not installed")
