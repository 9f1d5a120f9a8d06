"""A run's live figures in Prometheus' text format: ``/metrics`` on the web UI, or a port of its own
(``--prometheus-port``) when headless.

Everything is read from one engine snapshot per scrape: request and failure counters per (method,
name), a response-time histogram whose buckets are counted from the engine's HdrHistograms, users
per class, the current rate, dropped iterations and workers. A master's statistics are the merged
view of its workers', so a distributed run exports the same names and types as a single process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import gevent
import numpy as np
from gevent import pywsgi

from horde import __version__, _core
from horde.runners import (
    STATE_CLEANUP,
    STATE_INIT,
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPED,
    STATE_STOPPING,
    MasterRunner,
)

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The response-time histogram's bucket bounds, seconds: fine steps below 5 ms, where a fast
#: target's requests fall, then OpenTelemetry's advice for HTTP durations, up to a minute.
BUCKETS_SECONDS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
    0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
)  # fmt: skip
_BUCKETS_US = np.asarray(BUCKETS_SECONDS) * 1e6
_LE = [f"{b:g}" for b in BUCKETS_SECONDS] + ["+Inf"]

RUNNER_STATES = (STATE_INIT, STATE_SPAWNING, STATE_RUNNING, STATE_CLEANUP, STATE_STOPPING, STATE_STOPPED)
WORKER_STATES = (STATE_INIT, STATE_SPAWNING, STATE_RUNNING, STATE_STOPPED, STATE_MISSING)

#: The longest horde waits at exit for one more scrape, whatever the scrape interval it saw.
MAX_FINAL_SCRAPE_WAIT_S = 60.0

#: (name, type, help) of every family, in the order they are written.
FAMILIES = (
    ("horde_info", "gauge", "horde's version (always 1)"),
    ("horde_runner_state", "gauge", "1 for the state the test is in (ready, spawning, running, ...), 0 for the others"),
    ("horde_users", "gauge", "Users running now, per user class"),
    ("horde_workers", "gauge", "Workers the master knows, per state (no samples when not a master)"),
    ("horde_requests_total", "counter", "Requests made, failed ones included"),
    ("horde_request_failures_total", "counter", "Failed requests"),
    ("horde_response_bytes_total", "counter", "Response body bytes received"),
    ("horde_response_time_seconds", "histogram", "Response times, bucketed from the engine's HdrHistograms"),
    ("horde_current_rps", "gauge", "Requests per second of the whole test over the last ~10 s, as the console shows"),
    ("horde_current_fail_per_sec", "gauge", "Failures per second of the whole test over the last ~10 s"),
    ("horde_dropped_iterations_total", "counter", "Open model: arrivals dropped because no user was free"),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def bucket_counts(values_us: Any, counts: Any) -> list[int]:
    """Cumulative counts at each of ``BUCKETS_SECONDS`` of a histogram given as its HdrHistogram
    buckets (highest µs value of each, ascending, and its count); the total last (``+Inf``)."""
    counts = np.asarray(counts, dtype=np.uint64)
    if not len(counts):
        return [0] * (len(BUCKETS_SECONDS) + 1)
    cumulative = np.cumsum(counts)
    upto = np.searchsorted(np.asarray(values_us), _BUCKETS_US, side="right")
    at_bounds = [int(cumulative[i - 1]) if i else 0 for i in upto]
    return [*at_bounds, int(cumulative[-1])]


class Exposition:
    """The text a scrape gets for ``environment``'s run, and when scrapes came (so that the end of
    a run can wait for one more, see ``wait_for_final_scrape``)."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.scrapes: list[float] = []

    def render(self) -> str:
        """The exposition, from one snapshot of the statistics."""
        self.scrapes = [*self.scrapes[-9:], time.monotonic()]
        environment = self.environment
        runner = environment.runner
        stats = environment.stats
        rows, total, _errors, _start = _core.RequestStats.snapshot(stats)
        samples: dict[str, list[str]] = {name: [] for name, _, _ in FAMILIES}

        samples["horde_info"].append(f'horde_info{{version="{_label(__version__)}"}} 1')
        state = getattr(runner, "state", STATE_INIT)
        for s in RUNNER_STATES:
            samples["horde_runner_state"].append(f'horde_runner_state{{state="{s}"}} {int(s == state)}')
        counts = runner.user_classes_count if runner is not None else {}
        for user_class, count in sorted(counts.items()):
            samples["horde_users"].append(f'horde_users{{user_class="{_label(user_class)}"}} {count}')
        if isinstance(runner, MasterRunner):
            nodes = list(runner.clients.values())
            for s in WORKER_STATES:
                n = sum(1 for node in nodes if node.state == s)
                samples["horde_workers"].append(f'horde_workers{{state="{s}"}} {n}')

        for row in rows:
            labels = f'method="{_label(row.method)}",name="{_label(row.name)}"'
            samples["horde_requests_total"].append(f"horde_requests_total{{{labels}}} {row.num_requests}")
            samples["horde_request_failures_total"].append(
                f"horde_request_failures_total{{{labels}}} {row.num_failures}"
            )
            samples["horde_response_bytes_total"].append(
                f"horde_response_bytes_total{{{labels}}} {row.total_content_length}"
            )
            histogram = samples["horde_response_time_seconds"]
            cumulative = bucket_counts(*row.histogram())
            for le, n in zip(_LE, cumulative):
                histogram.append(f'horde_response_time_seconds_bucket{{{labels},le="{le}"}} {n}')
            histogram.append(f"horde_response_time_seconds_sum{{{labels}}} {_number(row.total_response_time / 1000.0)}")
            histogram.append(f"horde_response_time_seconds_count{{{labels}}} {cumulative[-1]}")

        samples["horde_current_rps"].append(f"horde_current_rps {_number(total.current_rps)}")
        fail_rate = _number(total.current_fail_per_sec)
        samples["horde_current_fail_per_sec"].append(f"horde_current_fail_per_sec {fail_rate}")
        dropped = 0
        if getattr(stats, "open_model", False):
            dropped = _core.RequestStats.run_figures(stats)["dropped_iterations"]
        samples["horde_dropped_iterations_total"].append(f"horde_dropped_iterations_total {dropped}")

        lines = []
        for name, kind, help_text in FAMILIES:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples[name])
        return "\n".join(lines) + "\n"

    def wait_for_final_scrape(self, is_shutting_down: Callable[[], bool] = lambda: False) -> None:
        """Waits until a scrape after this call has been answered, so Prometheus has the final
        figures, for at most about one scrape interval as observed (nothing if fewer than two
        scrapes came: nobody is scraping regularly)."""
        if len(self.scrapes) < 2:
            return
        gaps = [b - a for a, b in zip(self.scrapes, self.scrapes[1:])]
        wait = min(max(gaps) + 1.0, MAX_FINAL_SCRAPE_WAIT_S)
        asked = time.monotonic()
        logger.info(f"Waiting up to {wait:.0f} s for Prometheus to scrape the final figures")
        deadline = asked + wait
        while self.scrapes[-1] <= asked and time.monotonic() < deadline:
            gevent.sleep(0.05)
        # Let the answer to that scrape leave before the process ends.
        gevent.sleep(0.1)


class MetricsServer:
    """``/metrics`` on a port of its own (``--prometheus-port``), served by gevent in the users' hub.

    Args:
        exposition: What to serve.
        host: The interface to listen on.
        port: The port (0: any free one; see ``port`` after ``start``).
    """

    def __init__(self, exposition: Exposition, host: str, port: int) -> None:
        self.exposition = exposition
        self.host, self.port = host, port
        self.server: pywsgi.WSGIServer | None = None

    def start(self) -> None:
        """Listens now, then serves from a greenlet.

        Raises:
            OSError: when the port cannot be bound.
        """
        self.server = pywsgi.WSGIServer((self.host, self.port), self._app, log=None, error_log=logger)
        self.server.init_socket()
        self.port = self.server.server_port or self.port
        greenlet = gevent.spawn(self.server.serve_forever)
        greenlet.link_exception(lambda g: logger.error("The Prometheus endpoint stopped", exc_info=g.exc_info))

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=1)

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not found: the metrics are at /metrics\n"]
        try:
            body = self.exposition.render().encode()
        except Exception as e:  # a scrape must never take the run down
            logger.error("Rendering /metrics failed", exc_info=e)
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"{type(e).__name__}: {e}\n".encode()]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
        return [body]
