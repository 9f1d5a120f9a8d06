"""The web UI's per-second history of a run: one point a second, kept for the whole run.

Locust's ``stats.history`` gets a row every 5 s and its charts start over when the page reloads;
the web UI's charts instead read these points (``GET /stats/history``), taken by one greenlet
every second while users are spawning or running, from one engine snapshot each. The HTML
report's charts read them too (``--html`` starts the sampler without the web UI).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import gevent
import numpy as np

if TYPE_CHECKING:
    from horde.env import Environment

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL_SEC = 1.0
# A day of points at one a second: about 40 MB at worst, and a test that long is rare.
MAX_POINTS = 24 * 3600
# The charted percentiles of the "current" (last ~10 s) response times.
HISTORY_PERCENTILES = (0.5, 0.95, 0.99)
# Locust's window for current percentiles, in samples (one a second).
WINDOW_SAMPLES = 10
_SAMPLED_STATES = ("spawning", "running")


def per_second_history(environment: Environment) -> StatsHistory:
    """The environment's one ``StatsHistory``, made on first use: the web UI's charts and the
    HTML report's read the same points. ``start()`` it before the test starts."""
    if environment.per_second_history is None:
        environment.per_second_history = StatsHistory(environment)
    return environment.per_second_history


def snapshot_view(stats: Any) -> Any:
    """A ``StatsView`` of ``stats`` for reading only.

    ``RequestStats.view()`` also copies every entry's response times into the current-percentile
    cache when this second has none yet; ``stats_history`` does that once a second already, and
    with hundreds of rows the copy is what reading would cost most.
    """
    from horde.stats import StatsView

    snapshot = getattr(stats, "snapshot", None)
    return StatsView(stats, snapshot()) if callable(snapshot) else stats.view()


class StatsHistory:
    """Samples the run's Aggregated figures once a second into a bounded deque.

    Cleared when stats are reset (``/stats/reset`` or ``--reset-stats``) and when a test starts
    from the ready or stopped state; ``reset_at`` remembers the last reset.

    Args:
        environment: The Environment whose runner and stats are sampled.
        max_points: How many points to keep (the oldest are dropped).
    """

    def __init__(self, environment: Environment, max_points: int = MAX_POINTS) -> None:
        self.environment = environment
        self.points: deque[dict[str, Any]] = deque(maxlen=max_points)
        self.reset_at: float | None = None
        self.greenlet: gevent.Greenlet | None = None
        # The Aggregated HDR histogram at each of the last samples: (values µs, counts).
        self._histograms: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=WINDOW_SAMPLES + 1)
        environment.events.test_start.add_listener(self._on_test_start)
        environment.events.reset_stats.add_listener(self._on_reset)
        environment.events.spawning_complete.add_listener(self._on_spawning_complete)

    def start(self) -> None:
        """Starts the sampling greenlet (once)."""
        if self.greenlet is None:
            self.greenlet = gevent.spawn(self._run)
            self.greenlet.link_exception(
                lambda g: logger.error("The web UI's history sampler died", exc_info=g.exc_info)
            )

    def stop(self) -> None:
        """Stops the sampling greenlet."""
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
            self.greenlet = None

    def clear(self) -> None:
        """Drops every point."""
        self.points.clear()
        self._histograms.clear()

    def since(self, since: float | None) -> list[dict[str, Any]]:
        """The points taken after epoch second ``since`` (all of them if None), oldest first."""
        if since is None:
            return list(self.points)
        # Points are in time order: walk back from the newest, as a poller asks for few.
        newer: list[dict[str, Any]] = []
        for point in reversed(self.points):
            if point["time"] <= since:
                break
            newer.append(point)
        newer.reverse()
        return newer

    def sample(self, now: float | None = None) -> dict[str, Any] | None:
        """Takes one point now if users are spawning or running; returns it (or None)."""
        runner = self.environment.runner
        if runner is None or runner.state not in _SAMPLED_STATES:
            return None
        total = snapshot_view(runner.stats).total
        point: dict[str, Any] = {
            "time": time.time() if now is None else now,
            "user_count": runner.user_count,
            "current_rps": total.current_rps or 0.0,
            "current_fail_per_sec": total.current_fail_per_sec or 0.0,
        }
        precise = self._window_percentiles(total)
        for p in HISTORY_PERCENTILES:
            if precise is not None:
                point[f"response_time_percentile_{p}"] = precise[p]
                continue
            try:
                point[f"response_time_percentile_{p}"] = total.get_current_response_time_percentile(p)
            except ValueError:  # stats kept without the response-times cache
                point[f"response_time_percentile_{p}"] = None
        point["avg_response_time"] = total.avg_response_time or 0.0
        self.points.append(point)
        return point

    def _window_percentiles(self, total: Any) -> dict[float, float | None] | None:
        """p50/p95/p99 (ms) of the requests of the last ~10 s, from the difference of the engine's
        HDR histograms now and then: microsecond precision where Locust's current percentiles are
        whole milliseconds (all 0 for a sub-millisecond server). None without a histogram."""
        histogram = getattr(getattr(total, "_row", None), "histogram", None)
        if histogram is None:
            return None
        from horde.results import _Histogram, merge_buckets

        values, counts = histogram()
        self._histograms.append((values, counts))
        old_values, old_counts = self._histograms[0]
        merged, window = merge_buckets([(values, counts), (old_values, -old_counts.astype(np.int64))])
        if len(self._histograms) == 1 or (window < 0).any():
            merged, window = values, counts  # the first sample, or since a reset: all there is
        if window.sum() <= 0:
            return dict.fromkeys(HISTORY_PERCENTILES)
        recent = _Histogram(merged, window.astype(np.uint64), None, 0.0)
        return {p: recent.quantile(p) for p in HISTORY_PERCENTILES}

    def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self.sample()
            except Exception:
                # A failed sample must not end the history (nor the run): log it and go on.
                logger.exception("Sampling the web UI's history failed")
            gevent.sleep(max(0.0, SAMPLE_INTERVAL_SEC - (time.monotonic() - started)))

    def _on_test_start(self, **_kwargs: Any) -> None:
        # test_start fires only when a test starts from ready/stopped, not when the count changes.
        self.clear()

    def _on_reset(self, **_kwargs: Any) -> None:
        self.clear()
        self.reset_at = time.time()

    def _on_spawning_complete(self, **_kwargs: Any) -> None:
        if self.environment.reset_stats:  # --reset-stats: the runner has just reset the figures
            self._on_reset()
