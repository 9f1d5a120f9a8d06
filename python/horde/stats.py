"""Request statistics under Locust's ``locust.stats`` names, kept by the engine in Rust.

The engine counts every request (one HdrHistogram per method and name); this module reads it
through snapshots and prints, writes (CSV, JSON) and samples it exactly as Locust 2.47 does.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import logging
import math
import os
import re
import signal
import sys
import time
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from itertools import chain
from typing import Any, TypeVar

import gevent

from horde import _core
from horde.failures import error_text

console_logger = logging.getLogger("locust.stats_logger")
logger = logging.getLogger(__name__)

# The tables below read these module globals at call time, so a locustfile that patches
# ``locust.stats.X`` (aliased to this module) changes what is printed and written.


def _terminal_name_width() -> int:
    # Locust gives the Name column whatever a wide terminal has beyond 80 columns, at most 80.
    return max(min(os.get_terminal_size()[0] - 80, 80), 0)


try:
    STATS_NAME_WIDTH = _terminal_name_width()
except OSError:  # not a terminal
    STATS_NAME_WIDTH = 80

STATS_AUTORESIZE = True
"""Set to False to keep STATS_NAME_WIDTH when the terminal is resized."""

STATS_TYPE_WIDTH = 8

CONSOLE_STATS_INTERVAL_SEC = 2
"""Seconds between two console tables."""

HISTORY_STATS_INTERVAL_SEC = 5
"""Seconds between two rows of ``RequestStats.history`` (the report's charts)."""

CSV_STATS_INTERVAL_SEC = 1
"""Seconds between two rewrites of the CSV files."""
CSV_STATS_FLUSH_INTERVAL_SEC = 5
"""Seconds between two flushes of the CSV files to disk."""

CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW = 10
"""Seconds over which the *current* response time percentiles are computed."""

PERCENTILES_TO_REPORT = [0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0]
PERCENTILES_TO_STATISTICS = [0.95, 0.99]
PERCENTILES_TO_CHART = [0.5, 0.95]
#: What ``StatsEntry.precise_dict`` adds to Locust's row of the web UI's table (the average is
#: exact in Locust's row already), for the default ``PERCENTILES_TO_STATISTICS``.
PRECISE_ROW_KEYS = (
    "precise_median_response_time",
    "precise_min_response_time",
    "precise_max_response_time",
    *(f"precise_response_time_percentile_{p}" for p in PERCENTILES_TO_STATISTICS),
)

# How often stats_history copies the response times for the current percentiles.
_SAMPLE_INTERVAL_SEC = 1

CachedResponseTimes = namedtuple("CachedResponseTimes", ["response_times", "num_requests", "num_none_requests"])


def _on_terminal_resize(signum: int, frame: Any) -> None:
    global STATS_NAME_WIDTH
    if STATS_AUTORESIZE:
        try:
            STATS_NAME_WIDTH = _terminal_name_width()
        except OSError:
            pass


try:
    signal.signal(signal.SIGWINCH, _on_terminal_resize)
except (AttributeError, ValueError):
    # No SIGWINCH on Windows; and only the main thread may install handlers.
    pass


# ---------------------------------------------------------------------------------------------
# Locust's helper functions


def bucket_response_time(response_time: float) -> int:
    """Locust's rounding of a response time (ms) to about two significant digits: the key it is
    counted under in ``StatsEntry.response_times``.

    The engine's rule, asked for here (it buckets in Rust); replacing this function, as Locust
    allows, does not change how horde's engine buckets.
    """
    return _core.bucket_response_time(response_time)


def get_readable_percentiles(percentile_list: list[float]) -> list[str]:
    """Percentiles (0..1) as column headers: ``0.5`` → ``"50%"``, ``0.999`` → ``"99.9%"``."""
    labels = []
    for p in percentile_list:
        scaled = p * 100
        labels.append(f"{int(scaled)}%" if scaled.is_integer() else f"{round(scaled, 6)}%")
    return labels


def calculate_response_time_percentile(response_times: Mapping[int, int], num_requests: int, percent: float) -> int:
    """The response time (a bucket, ms) within which ``percent`` (0..1) of requests finished.

    Locust's rule: walk the buckets from the slowest down until no more than
    ``int(num_requests * percent)`` requests are left below; 0 when there is nothing.

    Args:
        response_times: ``{bucket_ms: count}``, as ``StatsEntry.response_times``.
        num_requests: Timed requests counted in ``response_times``.
        percent: The percentile, from 0.0 to 1.0.
    """
    allowed_below = int(num_requests * percent)
    seen = 0
    for bucket in sorted(response_times, reverse=True):
        seen += response_times[bucket]
        if num_requests - seen <= allowed_below:
            return bucket
    return 0


def diff_response_time_dicts(latest: Mapping[int, int], old: Mapping[int, int]) -> dict[int, int]:
    """The buckets gained between two ``response_times`` dicts (``latest`` minus ``old``)."""
    gained = {}
    for bucket, count in latest.items():
        delta = count - old.get(bucket, 0)
        if delta:
            gained[bucket] = delta
    return gained


def median_from_dict(total: int, count: Mapping[int, int]) -> int:
    """Locust's median of a ``{bucket: count}`` dict holding ``total`` requests."""
    position = (total - 1) / 2
    bucket = 0
    for bucket in sorted(count):
        if position < count[bucket]:
            return bucket
        position -= count[bucket]
    return bucket


def avg(values: list[float | int]) -> float:
    """Mean of ``values``; 0.0 for an empty list."""
    return sum(values, 0.0) / max(len(values), 1)


_T = TypeVar("_T")


def sort_stats(stats: Mapping[Any, _T]) -> list[_T]:
    """The values of ``stats`` ordered by key, as Locust's tables list them."""
    return [stats[key] for key in sorted(stats)]


def format_ms(value: float) -> str:
    """A time in ms to the HDR histograms' precision, as the web UI's table shows it: three
    significant digits, never finer than a microsecond nor coarser than a millisecond (0.031,
    1.25, 125, 1250); "" for NaN."""
    if not math.isfinite(value):
        return ""
    if value <= 0:
        return "0"
    return f"{value:.{min(3, max(0, 2 - math.floor(math.log10(value))))}f}"


def _round_half_up(value: float, digits: int = 0) -> float:
    # Locust rounds values shown in the web UI and history half up (2.5 → 3.0), not to even.
    value = float(value)
    if not math.isfinite(value):
        return value
    step = Decimal(1).scaleb(-digits)
    return float(Decimal(repr(value)).quantize(step, rounding=ROUND_HALF_UP))


def _utc_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# Errors


_ADDRESS = re.compile(r"object at 0x[0-9a-fA-F]+")


class StatsError:
    """One row of the failures table: how often ``error`` happened for (method, name).

    In horde ``error`` is always the failure's text (Locust's ``repr(exception)`` with memory
    addresses masked), as in a Locust master.
    """

    def __init__(
        self,
        method: str,
        name: str,
        error: Exception | str | None,
        occurrences: int = 0,
        first_seen: float | None = None,
        last_seen: float | None = None,
    ) -> None:
        self.method = method
        self.name = name
        self.error = error
        self.occurrences = occurrences
        self.first_seen = first_seen
        self.last_seen = last_seen

    @classmethod
    def parse_error(cls, error: Exception | str | None) -> str:
        """The text an error is grouped and shown under: its repr, addresses masked."""
        text = error if isinstance(error, str) else error_text(error)
        return _ADDRESS.sub("object at 0x....", text)

    @classmethod
    def create_key(cls, method: str, name: str, error: Exception | str | None) -> str:
        """The key of this error in ``RequestStats.errors`` (Locust's sha256 digest)."""
        key = f"{method}.{name}.{cls.parse_error(error)!r}"
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    def occurred(self) -> None:
        """Counts one more occurrence now."""
        self.occurrences += 1
        now = time.time()
        if self.first_seen is None:
            self.first_seen = now
        self.last_seen = now

    def to_name(self) -> str:
        """``"METHOD name: error"`` for the console's error report.

        A ``CatchResponseError('message')`` is shown as its bare message, as a standalone
        Locust shows it.
        """
        text = self.parse_error(self.error)
        prefix = "CatchResponseError("
        if text.startswith(prefix) and text.endswith(")"):
            text = _unquote(text[len(prefix) : -1])
        return f"{self.method} {self.name}: {text}"

    def serialize(self) -> dict[str, Any]:
        """Locust's ``StatsErrorDict``."""
        return {
            "name": self.name,
            "method": self.method,
            "error": self.parse_error(self.error),
            "occurrences": self.occurrences,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }

    @classmethod
    def unserialize(cls, data: Mapping[str, Any]) -> StatsError:
        """Builds a StatsError from ``serialize()``'s dict."""
        return cls(
            data["method"],
            data["name"],
            data["error"],
            data["occurrences"],
            data.get("first_seen"),
            data.get("last_seen"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The row of the web UI's and report's failures table."""
        return {
            "method": self.method,
            "name": self.name,
            "error": self.parse_error(self.error),
            "occurrences": self.occurrences,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }

    def __repr__(self) -> str:
        return f"<StatsError {self.method} {self.name}: {self.parse_error(self.error)} x{self.occurrences}>"


def _unquote(argument: str) -> str:
    """The message inside a one-argument repr: ``'bad'`` → ``bad`` (other text is kept)."""
    try:
        value = ast.literal_eval(argument)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return argument
    return value if isinstance(value, str) else argument


# ---------------------------------------------------------------------------------------------
# Entries


class _EmptyRow:
    """Stands in for an engine row when an entry has no data yet (Locust creates empty ones)."""

    num_requests = 0
    num_none_requests = 0
    num_failures = 0
    total_response_time = 0
    min_response_time = None
    max_response_time = 0
    total_content_length = 0
    last_request_timestamp = None
    avg_response_time = 0.0
    fail_ratio = 0.0
    total_rps = 0.0
    total_fail_per_sec = 0.0
    current_rps = 0
    current_fail_per_sec = 0
    num_reqs_per_sec: dict[int, int] = {}
    num_fail_per_sec: dict[int, int] = {}
    response_times: dict[int, int] = {}

    def __init__(self, name: str, method: str) -> None:
        self.name, self.method = name, method
        self.start_time = time.time()

    def get_response_time_percentile(self, percent: float) -> float:
        return 0.0

    def service_histogram(self) -> None:
        return None

    def serialize(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "method": self.method,
            "last_request_timestamp": None,
            "start_time": self.start_time,
            "num_requests": 0,
            "num_none_requests": 0,
            "num_failures": 0,
            "total_response_time": 0,
            "max_response_time": 0,
            "min_response_time": None,
            "total_content_length": 0,
            "response_times": {},
            "num_reqs_per_sec": {},
            "num_fail_per_sec": {},
        }


# Where the total's response times are kept in the response-times cache.
_TOTAL_KEY = None


class StatsEntry:
    """Statistics of one (name, method), or of the "Aggregated" total: Locust's ``StatsEntry``.

    A read-only view of one row of an engine snapshot; every figure of one view comes from the
    same instant. Medians and percentiles follow Locust's rounded-millisecond buckets
    (``response_times``), so the console, the CSV files and the reports show Locust's numbers;
    ``get_precise_response_time_percentile`` reads the engine's exact histogram instead. The
    buckets are derived from the engine's histogram (0.1% resolution), so a time within 0.1% of
    a rounding boundary may be counted in the neighbouring bucket.

    Args:
        stats: The ``RequestStats`` this entry belongs to.
        name: The request name (URL path or ``name=``).
        method: The request type ("GET", ...); "" for the total.
        use_response_times_cache: Whether ``get_current_response_time_percentile`` may be used.
    """

    def __init__(self, stats: Any, name: str, method: str, use_response_times_cache: bool = False) -> None:
        self.stats = stats
        self.name = name
        self.method = method
        self.use_response_times_cache = use_response_times_cache
        self._row: Any = _EmptyRow(name, method)
        self._cache_key: Any = (name, method)
        self._response_times: dict[int, int] | None = None

    @classmethod
    def _from_row(cls, stats: Any, row: Any, use_response_times_cache: bool, total: bool = False) -> StatsEntry:
        entry = cls(stats, row.name, row.method, use_response_times_cache)
        entry._row = row
        if total:
            entry._cache_key = _TOTAL_KEY
        return entry

    # -- counters, straight from the engine --------------------------------------------------

    @property
    def num_requests(self) -> int:
        """Requests made (failed ones included)."""
        return self._row.num_requests

    @property
    def num_none_requests(self) -> int:
        """Requests logged without a response time."""
        return self._row.num_none_requests

    @property
    def num_failures(self) -> int:
        """Failed requests."""
        return self._row.num_failures

    @property
    def total_response_time(self) -> float:
        """Sum of the response times, ms."""
        return self._row.total_response_time

    @property
    def min_response_time(self) -> float | None:
        """Fastest response time (exact, ms); None until a timed request."""
        return self._row.min_response_time

    @property
    def max_response_time(self) -> float:
        """Slowest response time (exact, ms); 0 until a timed request."""
        return self._row.max_response_time

    @property
    def total_content_length(self) -> int:
        """Sum of the response body sizes, bytes."""
        return self._row.total_content_length

    @property
    def start_time(self) -> float:
        """Epoch seconds of this entry's creation or last reset."""
        return self._row.start_time

    @property
    def last_request_timestamp(self) -> float | None:
        """Epoch seconds of the latest request, None before the first."""
        return self._row.last_request_timestamp

    @property
    def num_reqs_per_sec(self) -> dict[int, int]:
        """``{epoch second: requests}``."""
        return self._row.num_reqs_per_sec

    @property
    def num_fail_per_sec(self) -> dict[int, int]:
        """``{epoch second: failures}``."""
        return self._row.num_fail_per_sec

    @property
    def response_times(self) -> dict[int, int]:
        """``{rounded ms bucket: count}``, Locust's histogram (see ``bucket_response_time``)."""
        if self._response_times is None:
            self._response_times = self._row.response_times
        return self._response_times

    # -- derived figures ---------------------------------------------------------------------

    @property
    def fail_ratio(self) -> float:
        """Failures per request (1.0 when there are failures but no requests)."""
        return self._row.fail_ratio

    @property
    def avg_response_time(self) -> float:
        """Mean response time of the timed requests, ms."""
        return self._row.avg_response_time

    @property
    def median_response_time(self) -> float:
        """Locust's median: a bucket, held within the exact [min, max]."""
        times = self.response_times
        if not times:
            return 0
        median = median_from_dict(self.num_requests - self.num_none_requests, times) or 0
        # One slow request would otherwise show a median above the max, its bucket rounded up.
        if median > self.max_response_time:
            return self.max_response_time
        if self.min_response_time is not None and median < self.min_response_time:
            return self.min_response_time
        return median

    @property
    def avg_content_length(self) -> float:
        """Mean body size per request, bytes."""
        n = self.num_requests
        return self.total_content_length / n if n else 0

    @property
    def current_rps(self) -> float:
        """Requests/s over the ~10 s ending 2 s before the latest request of the run."""
        return self._row.current_rps

    @property
    def current_fail_per_sec(self) -> float:
        """Failures/s over the same window as ``current_rps``."""
        return self._row.current_fail_per_sec

    @property
    def total_rps(self) -> float:
        """Requests/s since the statistics started (or were reset)."""
        return self._row.total_rps

    @property
    def total_fail_per_sec(self) -> float:
        """Failures/s since the statistics started (or were reset)."""
        return self._row.total_fail_per_sec

    def get_response_time_percentile(self, percent: float) -> int:
        """Response time (a Locust bucket, ms) within which ``percent`` (0..1) of requests finished."""
        return calculate_response_time_percentile(
            self.response_times, self.num_requests - self.num_none_requests, percent
        )

    def get_precise_response_time_percentile(self, percent: float) -> float:
        """Like ``get_response_time_percentile``, from the engine's exact histogram (ms, 0.1%)."""
        return self._row.get_response_time_percentile(percent)

    def get_service_time_percentile(self, percent: float) -> float | None:
        """Open model: the uncorrected service time (request written → last byte read, ms, from
        the engine's exact histogram) within which ``percent`` of requests finished; None in the
        closed model, where the response time is the service time."""
        buckets = self._row.service_histogram()
        if buckets is None:
            return None
        values, counts = buckets
        return quantile_from_buckets(values, counts, percent)

    def get_current_response_time_percentile(self, percent: float) -> int | None:
        """The percentile over about the last ``CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW`` seconds.

        Computed against the response times cached about 10 s ago (see
        ``RequestStats.cache_response_times``); None when none was cached then.

        Raises:
            ValueError: if this entry was made with ``use_response_times_cache=False``.
        """
        if not self.use_response_times_cache:
            raise ValueError(
                "StatsEntry.use_response_times_cache must be set to True to calculate the _current_ "
                "response time percentile"
            )
        lookup = getattr(self.stats, "_cached_response_times", None)
        cached = lookup(self._cache_key, int(time.time())) if lookup is not None else None
        if cached is None:
            return None
        return calculate_response_time_percentile(
            diff_response_time_dicts(self.response_times, cached.response_times),
            (self.num_requests - self.num_none_requests) - (cached.num_requests - cached.num_none_requests),
            percent,
        )

    # -- presentation ------------------------------------------------------------------------

    def to_string(self, current: bool = True) -> str:
        """The console table's line for this entry; rates over the last ~10 s if ``current``,
        else over the whole run."""
        if current:
            rps, fail_per_sec = self.current_rps, self.current_fail_per_sec
        else:
            rps, fail_per_sec = self.total_rps, self.total_fail_per_sec
        name_width = STATS_NAME_WIDTH - STATS_TYPE_WIDTH + 4
        line = f"%-{STATS_TYPE_WIDTH}s %-{name_width}s %7d %12s |%7d %7d %7d%7d | %7.2f %11.2f"
        fails = f"{self.num_failures}({self.fail_ratio * 100:.2f}%)"
        return line % (
            self.method + " " if self.method else "",
            self.name,
            self.num_requests,
            fails,
            self.avg_response_time,
            self.min_response_time or 0,
            self.max_response_time,
            self.median_response_time or 0,
            rps or 0,
            fail_per_sec or 0,
        )

    def __str__(self) -> str:
        return self.to_string(current=True)

    def percentile(self) -> str:
        """The percentile table's line for this entry (``PERCENTILES_TO_REPORT``, then # reqs).

        Raises:
            ValueError: if the entry has no requests.
        """
        if not self.num_requests:
            raise ValueError("Can't calculate percentile on url with no successful requests")
        cells = " ".join(["%6d"] * len(PERCENTILES_TO_REPORT))
        line = f"%-{STATS_TYPE_WIDTH}s %-{STATS_NAME_WIDTH}s %8d {cells}"
        values = [self.get_response_time_percentile(p) for p in PERCENTILES_TO_REPORT]
        return line % (self.method or "", self.name, *values, self.num_requests)

    def to_dict(self, escape_string_values: bool = False) -> dict[str, Any]:
        """The row of the web UI's statistics table (Locust's ``/stats/requests`` entries)."""
        row: dict[str, Any] = {
            "method": self.method,
            "name": self.name,
            "num_requests": self.num_requests,
            "num_failures": self.num_failures,
            "min_response_time": 0 if self.min_response_time is None else _round_half_up(self.min_response_time),
            "max_response_time": _round_half_up(self.max_response_time),
            "current_rps": self.current_rps,
            "current_fail_per_sec": self.current_fail_per_sec,
            "avg_response_time": self.avg_response_time,
            "median_response_time": self.median_response_time,
            "total_rps": self.total_rps,
            "total_fail_per_sec": self.total_fail_per_sec,
        }
        for p in PERCENTILES_TO_STATISTICS:
            row[f"response_time_percentile_{p}"] = self.get_response_time_percentile(p)
        row["avg_content_length"] = self.avg_content_length
        return row

    def precise_dict(self) -> dict[str, Any]:
        """The times of ``to_dict`` from the engine's HDR histogram instead of Locust's whole-ms
        buckets (``PRECISE_ROW_KEYS``, ms within 0.1%; exact min and max): a sub-millisecond
        server reads 0.031 where Locust's median is clamped to the minimum and its p95 reads 0.
        None for a row without timed requests."""
        row = {
            "precise_median_response_time": self.get_precise_response_time_percentile(0.5),
            "precise_min_response_time": self.min_response_time,
            "precise_max_response_time": self.max_response_time,
        }
        for p in PERCENTILES_TO_STATISTICS:
            row[f"precise_response_time_percentile_{p}"] = self.get_precise_response_time_percentile(p)
        return row if self.num_requests - self.num_none_requests > 0 else dict.fromkeys(row)

    def serialize(self) -> dict[str, Any]:
        """Locust's ``StatsEntryDict`` (what ``--json`` prints and workers send), as the engine
        writes it (``horde_core::locust::EntryDict``)."""
        return self._row.serialize()

    def get_stripped_report(self) -> dict[str, Any]:
        """``serialize()``. Unlike Locust it does not reset the entry: views are read-only."""
        return self.serialize()

    def __repr__(self) -> str:
        return f"<StatsEntry {self.method} {self.name} requests={self.num_requests} failures={self.num_failures}>"


class EntriesDict(dict):
    """``{(name, method): StatsEntry}``; a missing key gives an empty entry, as in Locust."""

    def __init__(self, request_stats: Any, use_response_times_cache: bool = False) -> None:
        super().__init__()
        self.request_stats = request_stats
        self.use_response_times_cache = use_response_times_cache

    def __missing__(self, key: tuple[str, str]) -> StatsEntry:
        entry = StatsEntry(self.request_stats, key[0], key[1], self.use_response_times_cache)
        self[key] = entry
        return entry


class _RunTotals:
    """Locust's run-wide counters, read from ``total`` (shared by RequestStats and StatsView)."""

    total: Any

    @property
    def num_requests(self) -> int:
        """Requests of the run (the total's)."""
        return self.total.num_requests

    @property
    def num_none_requests(self) -> int:
        """Requests logged without a response time."""
        return self.total.num_none_requests

    @property
    def num_failures(self) -> int:
        """Failures of the run."""
        return self.total.num_failures

    @property
    def last_request_timestamp(self) -> float | None:
        """Epoch seconds of the latest request, None before the first."""
        return self.total.last_request_timestamp


class StatsView(_RunTotals):
    """Everything ``RequestStats`` reports, read from one engine snapshot.

    It has the reading side of ``RequestStats``' API (``entries``, ``total``, ``errors``,
    ``history``, ``serialize_stats()``...), so every function of this module accepts either.
    Take one view per table or file so that all of it describes the same instant.
    """

    def __init__(self, stats: Any, snapshot: tuple[list[Any], Any, list[tuple], float]) -> None:
        rows, total, errors, start_time = snapshot
        self.stats = stats
        self.use_response_times_cache = bool(getattr(stats, "use_response_times_cache", False))
        self.entries = EntriesDict(stats, self.use_response_times_cache)
        for row in rows:
            self.entries[(row.name, row.method)] = StatsEntry._from_row(stats, row, self.use_response_times_cache)
        self.total = StatsEntry._from_row(stats, total, self.use_response_times_cache, total=True)
        self.errors: dict[str, StatsError] = {}
        for method, name, text, occurrences, first_seen, last_seen in errors:
            error = StatsError(method, name, text, occurrences, first_seen, last_seen)
            self.errors[StatsError.create_key(method, name, text)] = error
        self.start_time: float = start_time

    def view(self) -> StatsView:
        """This view itself (so functions can take a RequestStats or a view)."""
        return self

    @property
    def history(self) -> list[dict[str, Any]]:
        """The owning ``RequestStats.history``."""
        return getattr(self.stats, "history", [])

    def get(self, name: str, method: str) -> StatsEntry:
        """The entry for (name, method); an empty one if nothing was logged under it."""
        return self.entries[(name, method)]

    def serialize_stats(self) -> list[dict[str, Any]]:
        """Locust's ``StatsEntryDict`` of every entry that has requests or failures."""
        return [e.serialize() for e in self.entries.values() if e.num_requests or e.num_failures]

    def serialize_errors(self) -> dict[str, dict[str, Any]]:
        """``{key: StatsErrorDict}`` of every error."""
        return {key: error.serialize() for key, error in self.errors.items()}


def _view(stats: Any) -> Any:
    # RequestStats and StatsView give one consistent view; other objects are taken as they are.
    view = getattr(stats, "view", None)
    return view() if callable(view) else stats


# ---------------------------------------------------------------------------------------------
# RequestStats


def _history_percentiles() -> list[float]:
    # Locust's rows carry PERCENTILES_TO_CHART; horde's report also charts the 99th percentile.
    return sorted({*PERCENTILES_TO_CHART, 0.99})


class RequestStats(_RunTotals, _core.RequestStats):
    """All request statistics of a run (``environment.stats``): Locust's ``RequestStats``.

    The engine logs requests made through ``HttpSession`` itself; ``log_request`` and
    ``log_error`` serve custom clients. Reading attributes (``entries``, ``total``, ``errors``...)
    takes a fresh engine snapshot each time; use ``view()`` to read many figures of one instant.

    Args:
        use_response_times_cache: Keep a per-second copy of the response times, which the
            *current* percentiles (charts, history) need. Locust turns it off on workers.
    """

    def __init__(self, use_response_times_cache: bool = True) -> None:
        self.use_response_times_cache = use_response_times_cache
        # The current percentiles of every entry, not only the total's, as Locust keeps them. A
        # runner turns this off (copying every row each second costs more than anything else
        # with many names or workers) until something reads them: asking for an entry's current
        # percentile (--csv-full-history's rows, a plugin) turns it back on.
        self.cache_entries_response_times = True
        self._open_model = False
        self.history: list[dict[str, Any]] = []
        """Rows appended by ``update_stats_history`` (the HTML report's charts)."""
        self._response_times_cache: OrderedDict[int, dict[Any, CachedResponseTimes]] = OrderedDict()
        if use_response_times_cache:
            self.cache_response_times()

    @property
    def open_model(self) -> bool:
        """Whether the run is in the open model (``--arrival-rate``): response times then count from
        each iteration's scheduled start, and the reports say so and add the service times."""
        return self._open_model

    @open_model.setter
    def open_model(self, value: bool) -> None:
        self._open_model = bool(value)
        self.set_open_model(self._open_model)

    # -- reading -----------------------------------------------------------------------------

    def view(self) -> StatsView:
        """Entries, total and errors from one engine snapshot (see ``StatsView``).

        Also caches this second's response times if nothing has yet, so current percentiles
        work even between the calls of ``stats_history``.
        """
        view = StatsView(self, super().snapshot())
        if self.use_response_times_cache and int(time.time()) not in self._response_times_cache:
            self._store_response_times(view, int(time.time()))
        return view

    @property
    def entries(self) -> EntriesDict:
        """``{(name, method): StatsEntry}``, from a fresh snapshot."""
        return self.view().entries

    @property
    def total(self) -> StatsEntry:
        """The "Aggregated" entry (method ""), from a fresh snapshot."""
        return self.view().total

    @property
    def errors(self) -> dict[str, StatsError]:
        """``{key: StatsError}`` in first-seen order, from a fresh snapshot."""
        return self.view().errors

    @property
    def start_time(self) -> float:
        """Epoch seconds of creation or of the last reset."""
        return super().snapshot()[3]

    def get(self, name: str, method: str) -> StatsEntry:
        """The entry for (name, method); an empty one if nothing was logged under it yet."""
        return self.entries[(name, method)]

    def serialize_stats(self) -> list[dict[str, Any]]:
        """Locust's ``StatsEntryDict`` for every entry with requests or failures (no total).

        Unlike Locust this does not reset the entries.
        """
        return self.view().serialize_stats()

    def serialize_errors(self) -> dict[str, dict[str, Any]]:
        """``{key: StatsErrorDict}`` of every error."""
        return self.view().serialize_errors()

    # -- logging -----------------------------------------------------------------------------

    def log_request(self, method: str, name: str, response_time: float | None, content_length: int) -> None:
        """Counts one request (response time in ms, or None) in its entry and the total."""
        self.log(method, name, response_time, int(content_length or 0), None)

    def log_error(self, method: str, name: str, error: Exception | str | None) -> None:
        """Counts one failure of (method, name); the request itself is logged by ``log_request``.

        ``error`` may be an exception or its text; failures are grouped by Locust's text for it.
        """
        super().log_error(method, name, error_text(error))

    # -- resetting ---------------------------------------------------------------------------

    def reset_all(self) -> None:
        """Zeroes every entry (keeping them) and the total, clears errors and history."""
        super().reset_all()
        self.history = []
        self._response_times_cache.clear()
        if self.use_response_times_cache:
            self.cache_response_times()

    def clear_all(self) -> None:
        """Removes every entry and error and clears the history and response-times cache."""
        super().clear_all()
        self.history = []
        self._response_times_cache.clear()

    # -- sampling (called by stats_history) ---------------------------------------------------

    def cache_response_times(self, t: int | None = None) -> None:
        """Copies every entry's response times under second ``t`` (default: now).

        ``get_current_response_time_percentile`` diffs the present against the copy from
        ``CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW`` seconds ago; copies older than that window
        plus 10 s are dropped. ``stats_history`` calls this once a second; a runner that does
        not run ``stats_history`` should call it once a second itself.
        """
        t = int(time.time()) if t is None else t
        if self.cache_entries_response_times:
            self._store_response_times(StatsView(self, super().snapshot()), t)
        else:
            total = StatsEntry._from_row(self, super().total_only(), True, total=True)
            self._store_response_times(None, t, total)

    def _store_response_times(self, view: StatsView | None, t: int, total: StatsEntry | None = None) -> None:
        copies = {}
        if view is not None and self.cache_entries_response_times:
            copies = {
                key: CachedResponseTimes(entry.response_times, entry.num_requests, entry.num_none_requests)
                for key, entry in view.entries.items()
            }
        if total is None:
            assert view is not None
            total = view.total
        copies[_TOTAL_KEY] = CachedResponseTimes(total.response_times, total.num_requests, total.num_none_requests)
        self._response_times_cache[t] = copies
        self._response_times_cache.move_to_end(t)
        keep = CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW + 10
        while len(self._response_times_cache) > keep:
            self._response_times_cache.popitem(last=False)

    def _cached_response_times(self, key: Any, now: int) -> CachedResponseTimes | None:
        # Prefer the copy from exactly one window ago, then the nearest ones around it.
        target = now - CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW
        candidates = [target]
        for i in range(1, 9):
            candidates += [target - i, target + i]
        for t in candidates:
            copies = self._response_times_cache.get(t)
            if copies is not None:
                if key is not _TOTAL_KEY and not self.cache_entries_response_times:
                    # Only the total's were kept: from now on every entry's are.
                    self.cache_entries_response_times = True
                    return None
                # An entry first seen after that second had no requests then.
                return copies.get(key, CachedResponseTimes({}, 0, 0))
        return None

    def sample_history(self, user_count: int, timestamp: str | None = None) -> dict[str, Any]:
        """Appends one row to ``history`` (Locust's ``update_stats_history``) and returns it.

        The row has Locust's keys, plus ``response_time_percentile_0.99`` for the report's chart.

        Args:
            user_count: Users running now.
            timestamp: The row's time as ISO UTC text; default now.
        """
        timestamp = timestamp or _utc_iso(time.time())
        total = StatsEntry._from_row(self, super().total_only(), self.use_response_times_cache, total=True)
        row: dict[str, Any] = {}
        for p in _history_percentiles():
            row[f"response_time_percentile_{p}"] = [timestamp, total.get_current_response_time_percentile(p) or 0]
        row["current_rps"] = [timestamp, total.current_rps or 0]
        row["current_fail_per_sec"] = [timestamp, total.current_fail_per_sec or 0]
        row["total_avg_response_time"] = [timestamp, _round_half_up(total.avg_response_time, 2)]
        row["user_count"] = [timestamp, user_count or 0]
        row["time"] = timestamp
        self.history.append(row)
        return row


class StatsListener:
    """The ``request`` listener that logs every request into a run's stats, as the one Locust's
    runner adds. The runner registers it; an HTTP client whose hook has no other listener lets the
    engine log its requests into ``stats`` directly, which is what calling this would do.

    Args:
        stats: The ``RequestStats`` to log into (the runner points it at ``environment.stats``).
    """

    __slots__ = ("stats",)

    def __init__(self, stats: RequestStats) -> None:
        self.stats = stats

    def __call__(
        self,
        request_type: str = "",
        name: str = "",
        response_time: float | None = None,
        response_length: int | None = 0,
        exception: Any = None,
        response: Any = None,
        **_kwargs: Any,
    ) -> None:
        # horde's responses carry the engine's timing: the uncorrected time of an open-model
        # request, and horde's own delay.
        service_time, own_delay = getattr(response, "_engine_timing", None) or (None, None)
        self.stats.log(
            request_type,
            name,
            response_time,
            int(response_length or 0),
            None if exception is None else error_text(exception),
            _status_of(response),
            service_time,
            own_delay,
        )

    def __repr__(self) -> str:
        return f"<StatsListener of {self.stats!r}>"


def _status_of(response: Any) -> int:
    """The HTTP status of a request event's response for the samples, 0 when it has none."""
    status = getattr(response, "status_code", None)
    return status if type(status) is int and 0 <= status <= 0xFFFF else 0


# ---------------------------------------------------------------------------------------------
# What the figures measure: the open model, and horde's own delay

#: The row, one per method, that requests with further names are counted in once the table has
#: ``RequestStats.max_entries`` rows (``--max-request-names``).
FOLDED_NAME = "Too many unique request names"

#: What a response time is, in each model (README, ``--help`` and every report say it).
CLOSED_MODEL_MEASURE = "request written → last byte read"
OPEN_MODEL_MEASURE = "from each iteration's scheduled start (corrected for coordinated omission)"
SERVICE_TIME_MEASURE = "request written → last byte read, uncorrected"
OWN_DELAY_MEASURE = "the user's call → request written, plus last byte read → the user running again"


def quantile_from_buckets(values: Any, counts: Any, q: float) -> float | None:
    """The value (ms) at quantile ``q`` of a histogram given as its buckets' highest µs values
    and counts (as the engine hands them over), by HdrHistogram's rule: the first bucket whose
    cumulative count reaches ``ceil(q * total)``. None when it is empty."""
    counts = [int(c) for c in counts]
    total = sum(counts)
    if not total:
        return None
    rank = max(1, math.ceil(min(max(q, 0.0), 1.0) * total))
    seen = 0
    for value, count in zip(values, counts):
        seen += count
        if seen >= rank:
            return float(value) / 1000.0
    return float(values[-1]) / 1000.0


class RunFigures:
    """The figures of a run beside the request table: the open model's dropped iterations and
    service times, and horde's own delay (see ``run_figures``).

    Attributes:
        open_model: Whether response times count from each iteration's scheduled start.
        dropped_iterations: Open model: arrivals dropped (no user free, the pool at its maximum).
        dropped_per_sec: ``{epoch second: dropped}``.
        own_delay_count: Requests whose own delay was measured.
        own_delay_ms: ``{0.5: ms, 0.9: ..., 0.99: ..., 1.0: max}``: horde's own delay per request.
        service_ms: Open model: the total's uncorrected service-time percentiles, same keys.
        response_ms: The total's response-time percentiles (exact), same keys.
    """

    QUANTILES = (0.5, 0.9, 0.99, 1.0)

    def __init__(self, stats: Any) -> None:
        figures = _core.RequestStats.run_figures(stats)
        self.open_model = bool(getattr(stats, "open_model", False))
        self.dropped_iterations: int = figures["dropped_iterations"]
        self.dropped_per_sec: dict[int, int] = dict(figures["dropped_per_sec"])
        self.own_delay_count: int = figures["own_delay_count"]
        self.folded_requests: int = figures["folded_requests"]
        self.max_entries: int = _core.RequestStats.max_entries.__get__(stats)
        values, counts = figures["own_delay"]
        self.own_delay_ms = {q: quantile_from_buckets(values, counts, q) for q in self.QUANTILES}
        total = _core.RequestStats.total_only(stats)
        buckets = total.service_histogram()
        self.service_ms = {q: None if buckets is None else quantile_from_buckets(*buckets, q) for q in self.QUANTILES}
        self.response_ms = {
            q: total.get_response_time_percentile(q) if total.num_requests else None for q in self.QUANTILES
        }

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data (``--hdr-json``, the web UI)."""
        named = {0.5: "p50", 0.9: "p90", 0.99: "p99", 1.0: "max"}
        return {
            "open_model": self.open_model,
            "response_time_measure": OPEN_MODEL_MEASURE if self.open_model else CLOSED_MODEL_MEASURE,
            "dropped_iterations": self.dropped_iterations,
            "own_delay_ms": {named[q]: v for q, v in self.own_delay_ms.items()},
            "own_delay_count": self.own_delay_count,
            "service_time_ms": {named[q]: v for q, v in self.service_ms.items()} if self.open_model else None,
        }

    def folded_warning(self) -> str:
        return (
            f"More than {self.max_entries} distinct request names: requests with further names are counted in "
            f"one row per method named {FOLDED_NAME!r}. A URL with ids in it makes a new name per request; give "
            'such requests a name, e.g. self.client.get(f"/item/{item_id}", name="/item/[id]") '
            "(--max-request-names changes the limit)."
        )

    def own_delay_is_large(self) -> bool:
        """Whether horde's own delay is large next to the response times, meaning horde rather than
        the server is the bottleneck: its median above the response times' median (the service
        times' in the open model) and above ``OWN_DELAY_WARNING_MIN_MS``."""
        own = self.own_delay_ms[0.5]
        served = self.service_ms[0.5] if self.open_model else self.response_ms[0.5]
        return own is not None and served is not None and own > OWN_DELAY_WARNING_MIN_MS and own > served

    def own_delay_warning(self) -> str:
        own = self.own_delay_ms[0.5] or 0.0
        served = (self.service_ms[0.5] if self.open_model else self.response_ms[0.5]) or 0.0
        return (
            f"horde's own delay per request (median {own:.2f} ms) is larger than the server's response times "
            f"(median {served:.2f} ms): horde, not the server, is the bottleneck, and the response times include "
            "time spent queueing in horde. Use fewer users, --processes, or more workers."
        )


#: Below this median own delay (ms) horde is never called the bottleneck: a sub-millisecond server
#: can be faster than a Python call, which does not make the figures wrong.
OWN_DELAY_WARNING_MIN_MS = 1.0


def run_figures(stats: Any) -> RunFigures:
    """The run's figures beside the request table, from one read of the engine."""
    return RunFigures(stats)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def get_run_figures_summary(stats: Any) -> list[str]:
    """The lines the final summary adds after the tables: what a response time measures, the
    open model's service times and dropped iterations, and horde's own delay."""
    figures = run_figures(stats)
    lines = []
    if figures.open_model:
        lines.append(f"Response times above are measured {OPEN_MODEL_MEASURE}.")
        s = figures.service_ms
        lines.append(
            f"Service times ({SERVICE_TIME_MEASURE}): p50 {_ms(s[0.5])} ms, p90 {_ms(s[0.9])} ms, "
            f"p99 {_ms(s[0.99])} ms, max {_ms(s[1.0])} ms"
        )
        lines.append(f"Dropped iterations: {figures.dropped_iterations}")
    else:
        lines.append(f"Response times above are measured {CLOSED_MODEL_MEASURE}.")
    if figures.folded_requests:
        lines.append(figures.folded_warning())
    if figures.own_delay_count:
        o = figures.own_delay_ms
        lines.append(
            f"horde's own delay per request ({OWN_DELAY_MEASURE}): p50 {_ms(o[0.5])} ms, "
            f"p99 {_ms(o[0.99])} ms, max {_ms(o[1.0])} ms"
        )
    return lines


def print_run_figures(stats: Any) -> None:
    """Logs ``get_run_figures_summary``'s lines, then an empty line."""
    for line in get_run_figures_summary(stats):
        console_logger.info(line)
    console_logger.info("")


# ---------------------------------------------------------------------------------------------
# Console


def print_stats(stats: Any, current: bool = True) -> None:
    """Logs the request table to ``locust.stats_logger``, then an empty line."""
    for line in get_stats_summary(stats, current):
        console_logger.info(line)
    console_logger.info("")


def get_stats_summary(stats: Any, current: bool = True) -> list[str]:
    """The request table's lines: header, a row per entry, the "Aggregated" row.

    Args:
        stats: A ``RequestStats`` (or a ``StatsView``).
        current: Rates over the last ~10 s (periodic table) or over the run (final table).
    """
    view = _view(stats)
    name_width = STATS_NAME_WIDTH - STATS_TYPE_WIDTH + 4
    header = f"%-{STATS_TYPE_WIDTH}s %-{name_width}s %7s %12s |%7s %7s %7s%7s | %7s %11s"
    columns = ("Type", "Name", "# reqs", "# fails", "Avg", "Min", "Max", "Med", "req/s", "failures/s")
    widths = (STATS_TYPE_WIDTH, name_width, 7, 13, 7, 7, 7, 7, 8, 11)
    separator = "|".join("-" * w for w in widths)
    lines = [header % columns, separator]
    lines += [entry.to_string(current=current) for entry in sort_stats(view.entries)]
    lines += [separator, view.total.to_string(current=current)]
    owner = _owner(stats)
    if getattr(owner, "open_model", False):
        lines.append(f"Dropped iterations: {_core.RequestStats.run_figures(owner)['dropped_iterations']}")
    return lines


def print_percentile_stats(stats: Any) -> None:
    """Logs the "Response time percentiles (approximated)" table, then an empty line."""
    for line in get_percentile_stats_summary(stats):
        console_logger.info(line)
    console_logger.info("")


def get_percentile_stats_summary(stats: Any) -> list[str]:
    """The percentile table's lines (entries with timed requests, then "Aggregated")."""
    view = _view(stats)
    count = len(PERCENTILES_TO_REPORT)
    header = f"%-{STATS_TYPE_WIDTH}s %-{STATS_NAME_WIDTH}s %8s {' '.join(['%6s'] * count)}"
    labels = ("Type", "Name", *get_readable_percentiles(PERCENTILES_TO_REPORT), "# reqs")
    separator = "|".join(["-" * STATS_TYPE_WIDTH, "-" * STATS_NAME_WIDTH, "-" * 8] + ["-" * 6] * count)
    open_model = getattr(_owner(stats), "open_model", False)
    title = "Response time percentiles (approximated)"
    if open_model:
        title += f", {OPEN_MODEL_MEASURE}"
    lines = [title, header % labels, separator]
    lines += [entry.percentile() for entry in sort_stats(view.entries) if entry.response_times]
    lines.append(separator)
    if view.total.response_times:
        lines.append(view.total.percentile())
    if open_model:
        lines += ["", f"Service time percentiles ({SERVICE_TIME_MEASURE})", header % labels, separator]
        entries = [e for e in sort_stats(view.entries) if e.num_requests]
        lines += [_service_line(header, e) for e in entries if e._row.service_histogram() is not None]
        lines.append(separator)
        if view.total._row.service_histogram() is not None:
            lines.append(_service_line(header, view.total))
    return lines


def _service_line(header: str, entry: StatsEntry) -> str:
    # Rounded into Locust's buckets, as the response times above them are.
    values = [bucket_response_time(entry.get_service_time_percentile(p) or 0.0) for p in PERCENTILES_TO_REPORT]
    cells = " ".join(["%6d"] * len(PERCENTILES_TO_REPORT))
    line = f"%-{STATS_TYPE_WIDTH}s %-{STATS_NAME_WIDTH}s %8d {cells}"
    return line % (entry.method or "", entry.name, *values, entry.num_requests)


def _owner(stats: Any) -> Any:
    """The RequestStats behind a RequestStats or a StatsView."""
    return stats.stats if isinstance(stats, StatsView) else stats


def print_error_report(stats: Any) -> None:
    """Logs the "Error report" table, if there were failures."""
    view = _view(stats)
    if view.errors:
        for line in get_error_report_summary(view):
            console_logger.info(line)


def get_error_report_summary(stats: Any) -> list[str]:
    """The error report's lines: occurrences and ``METHOD name: error`` per error."""
    view = _view(stats)
    separator = "-" * 18 + "|" + "-" * (80 + STATS_NAME_WIDTH - 19)
    lines = ["Error report", f"{'# occurrences':<18} {'Error':<100}", separator]
    lines += [f"{error.occurrences:<18d} {error.to_name():<100}" for error in view.errors.values()]
    lines += [separator, ""]
    return lines


def stats_printer(stats: Any) -> Callable[[], None]:
    """A function for ``gevent.spawn`` that prints the current table every 2 s until killed."""

    def stats_printer_func() -> None:
        try:
            while True:
                print_stats(stats)
                gevent.sleep(CONSOLE_STATS_INTERVAL_SEC)
        except KeyboardInterrupt as e:
            logger.debug(e, exc_info=True)

    return stats_printer_func


# ---------------------------------------------------------------------------------------------
# History


def update_stats_history(runner: Any, timestamp: str | None = None) -> None:
    """Appends one row to ``runner.stats.history`` for the report's charts."""
    runner.stats.sample_history(getattr(runner, "user_count", 0) or 0, timestamp)


def stats_history(runner: Any) -> None:
    """Greenlet body: keeps ``runner.stats`` sampled for the current percentiles and charts.

    Every second it caches the response times (``RequestStats.cache_response_times``); every
    ``HISTORY_STATS_INTERVAL_SEC`` seconds, while the runner is neither "ready" nor "stopped",
    it appends a history row. Returns at once when the stats keep no response-times cache
    (workers). Spawn it once per runner: ``gevent.spawn(stats_history, runner)``.
    """
    next_row = time.monotonic()
    try:
        while getattr(runner.stats, "use_response_times_cache", False):
            runner.stats.cache_response_times()
            if time.monotonic() >= next_row:
                if getattr(runner, "state", None) not in ("ready", "stopped"):
                    update_stats_history(runner)
                next_row = time.monotonic() + HISTORY_STATS_INTERVAL_SEC
            gevent.sleep(_SAMPLE_INTERVAL_SEC)
    except KeyboardInterrupt as e:
        logger.debug(e, exc_info=True)


# ---------------------------------------------------------------------------------------------
# JSON


def print_stats_json(stats: Any) -> None:
    """Prints ``serialize_stats()`` as indented JSON to stdout (``--json``)."""
    print(json.dumps(_view(stats).serialize_stats(), indent=4))


def save_stats_json(stats: Any, filename: str) -> None:
    """Writes ``serialize_stats()`` as indented JSON to ``<filename>.json`` (``--json-file``)."""
    with open(f"{filename}.json", "w", encoding="utf-8") as file:
        json.dump(_view(stats).serialize_stats(), file, indent=4)


#: The columns the CSV files add in the open model (see ``StatsCSV._requests_header``).
OPEN_MODEL_CSV_COLUMNS = ["Service Time 50%", "Service Time 99%", "Dropped Iterations"]

HDR_PERCENTILES = [0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0]


def precise_stats(stats: Any) -> dict[str, Any]:
    """The statistics with percentiles read from the engine's HdrHistograms (microsecond
    resolution, three significant digits) instead of Locust's rounded buckets: what
    ``--hdr-json`` writes. One dict per entry plus the total under ``"total"``, and the run's
    figures (``RunFigures.to_dict``: what the response times measure, dropped iterations, horde's
    own delay). In the open model each row also has ``service_percentiles``, the uncorrected
    service times beside the corrected response times."""
    entries, total, _errors, start_time = _core.RequestStats.snapshot(stats)
    figures = run_figures(stats)

    def row(e: Any) -> dict[str, Any]:
        out = {
            "method": e.method,
            "name": e.name,
            "num_requests": e.num_requests,
            "num_failures": e.num_failures,
            "total_rps": e.total_rps,
            "avg_response_time": e.avg_response_time,
            "min_response_time": e.min_response_time,
            "max_response_time": e.max_response_time,
            "percentiles": {str(p): e.get_response_time_percentile(p) for p in HDR_PERCENTILES},
        }
        if figures.open_model:
            buckets = e.service_histogram()
            values, counts = buckets if buckets is not None else ([], [])
            out["service_percentiles"] = {str(p): quantile_from_buckets(values, counts, p) for p in HDR_PERCENTILES}
        return out

    return {
        "start_time": start_time,
        **figures.to_dict(),
        "entries": [row(e) for e in entries],
        "total": row(total),
    }


def save_precise_stats_json(stats: Any, path: str) -> None:
    """Writes ``precise_stats`` to ``path`` (``--hdr-json``)."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump(precise_stats(stats), file, indent=2)


# ---------------------------------------------------------------------------------------------
# CSV


class StatsCSV:
    """Writes the statistics as Locust's CSV tables to any ``csv.writer`` (web UI downloads).

    Args:
        environment: The Environment; its ``stats`` and ``runner`` are read.
        percentiles_to_report: Percentiles (0..1) to add as columns.
    """

    def __init__(self, environment: Any, percentiles_to_report: list[float]) -> None:
        self.environment = environment
        self.percentiles_to_report = percentiles_to_report
        self.percentiles_na = ["N/A"] * len(percentiles_to_report)
        self.requests_csv_columns = [
            "Type",
            "Name",
            "Request Count",
            "Failure Count",
            "Median Response Time",
            "Average Response Time",
            "Min Response Time",
            "Max Response Time",
            "Average Content Size",
            "Requests/s",
            "Failures/s",
            *get_readable_percentiles(percentiles_to_report),
        ]
        self.failures_columns = ["Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen"]
        self.exceptions_columns = ["Count", "Message", "Traceback", "Nodes"]
        # Whether the tables carry the open model's columns, fixed when their header is written.
        self._open_model_columns = False

    def _is_open_model(self) -> bool:
        return bool(getattr(self.environment.stats, "open_model", False))

    def _percentile_fields(self, stats_entry: StatsEntry, use_current: bool = False) -> list[Any]:
        if not stats_entry.num_requests:
            return self.percentiles_na
        if use_current:
            return [int(stats_entry.get_current_response_time_percentile(p) or 0) for p in self.percentiles_to_report]
        return [int(stats_entry.get_response_time_percentile(p) or 0) for p in self.percentiles_to_report]

    def requests_csv(self, csv_writer: Any) -> None:
        """Writes the header and a row per entry, then the "Aggregated" row."""
        self._open_model_columns = self._is_open_model()
        csv_writer.writerow(self._requests_header())
        self._requests_data_rows(csv_writer)

    def _requests_header(self) -> list[str]:
        # In the open model, after Locust's columns: the uncorrected service times and, in the
        # Aggregated row, the dropped iterations (Locust's columns stay where its tools look).
        return self.requests_csv_columns + (OPEN_MODEL_CSV_COLUMNS if self._open_model_columns else [])

    def _open_model_fields(self, entry: StatsEntry, dropped: int | None) -> list[Any]:
        service = [entry.get_service_time_percentile(p) for p in (0.5, 0.99)]
        return ["N/A" if v is None else round(v, 3) for v in service] + ["" if dropped is None else dropped]

    def _requests_data_rows(self, csv_writer: Any) -> None:
        view = _view(self.environment.stats)
        dropped = None
        if self._open_model_columns:
            dropped = _core.RequestStats.run_figures(self.environment.stats)["dropped_iterations"]
        for entry in chain(sort_stats(view.entries), [view.total]):
            row = [
                entry.method,
                entry.name,
                entry.num_requests,
                entry.num_failures,
                entry.median_response_time,
                entry.avg_response_time,
                entry.min_response_time or 0,
                entry.max_response_time,
                entry.avg_content_length,
                entry.total_rps,
                entry.total_fail_per_sec,
            ]
            row += self._percentile_fields(entry)
            if self._open_model_columns:
                row += self._open_model_fields(entry, dropped if entry is view.total else None)
            csv_writer.writerow(row)

    def failures_csv(self, csv_writer: Any) -> None:
        """Writes the header and a row per distinct error."""
        csv_writer.writerow(self.failures_columns)
        self._failures_data_rows(csv_writer)

    def _failures_data_rows(self, csv_writer: Any) -> None:
        # Ordered by error key (a hash), as Locust orders them.
        for error in sort_stats(_view(self.environment.stats).errors):
            csv_writer.writerow(
                [
                    error.method,
                    error.name,
                    StatsError.parse_error(error.error),
                    error.occurrences,
                    _utc_iso(error.first_seen) if error.first_seen is not None else "",
                    _utc_iso(error.last_seen) if error.last_seen is not None else "",
                ]
            )

    def exceptions_csv(self, csv_writer: Any) -> None:
        """Writes the header and a row per distinct user exception (``runner.exceptions``)."""
        csv_writer.writerow(self.exceptions_columns)
        self._exceptions_data_rows(csv_writer)

    def _exceptions_data_rows(self, csv_writer: Any) -> None:
        runner = getattr(self.environment, "runner", None)
        if runner is None:
            return
        for exc in list(getattr(runner, "exceptions", {}).values()):
            csv_writer.writerow([exc["count"], exc["msg"], exc["traceback"], ", ".join(exc["nodes"])])

    def close_files(self) -> None:
        """Nothing to close for a plain writer."""


class StatsCSVFileWriter(StatsCSV):
    """Keeps Locust's four CSV files up to date during a run (``--csv <prefix>``).

    ``<prefix>_stats.csv``, ``_failures.csv`` and ``_exceptions.csv`` are rewritten every
    ``CSV_STATS_INTERVAL_SEC``; ``_stats_history.csv`` gets the Aggregated row (every entry's
    too with ``full_history``) appended each time. Files are flushed every
    ``CSV_STATS_FLUSH_INTERVAL_SEC``. Run ``stats_writer`` in a greenlet, then ``close_files()``.

    Args:
        environment: The Environment; its ``stats`` and ``runner`` are read.
        percentiles_to_report: Percentiles (0..1) to add as columns.
        base_filepath: The prefix of the file names (directories are created).
        full_history: Also append a row per entry to the history file (``--csv-full-history``).
    """

    def __init__(
        self,
        environment: Any,
        percentiles_to_report: list[float],
        base_filepath: str,
        full_history: bool = False,
    ) -> None:
        super().__init__(environment, percentiles_to_report)
        self.base_filepath = base_filepath
        self.full_history = full_history
        if full_history:
            # Its per-entry rows carry each entry's current percentiles.
            environment.stats.cache_entries_response_times = True
        directory = os.path.dirname(base_filepath)
        if directory:
            os.makedirs(directory, exist_ok=True)
        # No newline="": like Locust, rows end in the csv module's "\r\n" as written.
        self.requests_csv_filehandle = open(base_filepath + "_stats.csv", "w", encoding="utf-8")
        self.requests_csv_writer = csv.writer(self.requests_csv_filehandle)
        self.stats_history_csv_filehandle = open(self.stats_history_file_name(), "w", encoding="utf-8")
        self.stats_history_csv_writer = csv.writer(self.stats_history_csv_filehandle)
        self.failures_csv_filehandle = open(base_filepath + "_failures.csv", "w", encoding="utf-8")
        self.failures_csv_writer = csv.writer(self.failures_csv_filehandle)
        self.failures_csv_data_start = 0
        self.exceptions_csv_filehandle = open(base_filepath + "_exceptions.csv", "w", encoding="utf-8")
        self.exceptions_csv_writer = csv.writer(self.exceptions_csv_filehandle)
        self.exceptions_csv_data_start = 0
        self.requests_csv_data_start = 0
        self._started = False
        self._closed = False
        self.stats_history_csv_columns = [
            "Timestamp",
            "User Count",
            "Type",
            "Name",
            "Requests/s",
            "Failures/s",
            *get_readable_percentiles(percentiles_to_report),
            "Total Request Count",
            "Total Failure Count",
            "Total Median Response Time",
            "Total Average Response Time",
            "Total Min Response Time",
            "Total Max Response Time",
            "Total Average Content Size",
        ]

    def __call__(self) -> None:
        self.stats_writer()

    def _write_headers(self) -> None:
        self._open_model_columns = self._is_open_model()
        self.requests_csv_writer.writerow(self._requests_header())
        self.requests_csv_data_start = self.requests_csv_filehandle.tell()
        history_columns = self.stats_history_csv_columns
        if self._open_model_columns:
            history_columns = history_columns + ["Dropped Iterations"]
        self.stats_history_csv_writer.writerow(history_columns)
        self.failures_csv_writer.writerow(self.failures_columns)
        self.failures_csv_data_start = self.failures_csv_filehandle.tell()
        self.exceptions_csv_writer.writerow(self.exceptions_columns)
        self.exceptions_csv_data_start = self.exceptions_csv_filehandle.tell()
        self._started = True

    def _rewrite(self, handle: Any, start: int, write_rows: Callable[[Any], None], writer: Any) -> None:
        handle.seek(start)
        write_rows(writer)
        handle.truncate()

    def _rewrite_tables(self) -> None:
        self._rewrite(
            self.requests_csv_filehandle,
            self.requests_csv_data_start,
            self._requests_data_rows,
            self.requests_csv_writer,
        )
        self._rewrite(
            self.failures_csv_filehandle,
            self.failures_csv_data_start,
            self._failures_data_rows,
            self.failures_csv_writer,
        )
        self._rewrite(
            self.exceptions_csv_filehandle,
            self.exceptions_csv_data_start,
            self._exceptions_data_rows,
            self.exceptions_csv_writer,
        )

    def write_once(self, now: float | None = None) -> None:
        """One round of ``stats_writer``: rewrites the tables, appends history rows."""
        if not self._started:
            self._write_headers()
        self._rewrite_tables()
        self._stats_history_data_rows(self.stats_history_csv_writer, time.time() if now is None else now)

    def stats_writer(self) -> None:
        """Greenlet body: writes the headers, then the data every ``CSV_STATS_INTERVAL_SEC``."""
        last_flush = 0.0
        try:
            while not self._closed:
                now = time.time()
                self.write_once(now)
                if now - last_flush > CSV_STATS_FLUSH_INTERVAL_SEC:
                    self.requests_flush()
                    self.stats_history_flush()
                    self.failures_flush()
                    self.exceptions_flush()
                    last_flush = now
                gevent.sleep(CSV_STATS_INTERVAL_SEC)
        except KeyboardInterrupt as e:
            logger.debug(e, exc_info=True)

    def _stats_history_data_rows(self, csv_writer: Any, now: float) -> None:
        """Appends the Aggregated row (and with full_history a row per entry, whose percentiles
        are then the current ones) stamped with ``int(now)``."""
        view = _view(self.environment.stats)
        runner = getattr(self.environment, "runner", None)
        user_count = runner.user_count if runner is not None else 0
        entries = sort_stats(view.entries) if self.full_history else []
        dropped = None
        if self._open_model_columns:
            dropped = _core.RequestStats.run_figures(self.environment.stats)["dropped_iterations"]
        for entry in chain(entries, [view.total]):
            head = [
                int(now),
                user_count,
                entry.method or "",
                entry.name,
                f"{entry.current_rps:2f}",
                f"{entry.current_fail_per_sec:2f}",
            ]
            tail = [
                entry.num_requests,
                entry.num_failures,
                entry.median_response_time,
                entry.avg_response_time,
                entry.min_response_time or 0,
                entry.max_response_time,
                entry.avg_content_length,
            ]
            row = head + list(self._percentile_fields(entry, use_current=self.full_history)) + tail
            if dropped is not None:
                row.append(dropped if entry is view.total else "")
            csv_writer.writerow(row)

    def requests_flush(self) -> None:
        self.requests_csv_filehandle.flush()

    def stats_history_flush(self) -> None:
        self.stats_history_csv_filehandle.flush()

    def failures_flush(self) -> None:
        self.failures_csv_filehandle.flush()

    def exceptions_flush(self) -> None:
        self.exceptions_csv_filehandle.flush()

    def close_files(self) -> None:
        """Rewrites the three tables with the final figures (if writing had started) and closes
        every file. The history file gets no extra row."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._started:
                self._rewrite_tables()
        finally:
            for handle in (
                self.requests_csv_filehandle,
                self.stats_history_csv_filehandle,
                self.failures_csv_filehandle,
                self.exceptions_csv_filehandle,
            ):
                handle.close()

    def stats_history_file_name(self) -> str:
        """``<prefix>_stats_history.csv``."""
        return self.base_filepath + "_stats_history.csv"


# ---------------------------------------------------------------------------------------------
# Validation


def _is_valid_percentile(value: Any) -> bool:
    try:
        return 0 < float(value) < 1
    except (TypeError, ValueError):
        return False


def validate_stats_configuration() -> None:
    """Exits with code 1 (message on stderr) if the PERCENTILES_TO_* settings are unusable."""
    if len(PERCENTILES_TO_CHART) > 6:
        sys.stderr.write("stats.PERCENTILES_TO_CHART parameter should be a maximum of 6 parameters \n")
        sys.exit(1)
    for setting, values in (
        ("PERCENTILES_TO_CHART", PERCENTILES_TO_CHART),
        ("PERCENTILES_TO_STATISTICS", PERCENTILES_TO_STATISTICS),
    ):
        if not all(_is_valid_percentile(v) for v in values):
            sys.stderr.write(
                f"stats.{setting} parameter need to be float and value between. 0 < percentile < 1 Eg 0.95\n"
            )
            sys.exit(1)


__all__ = [
    "CONSOLE_STATS_INTERVAL_SEC",
    "CSV_STATS_FLUSH_INTERVAL_SEC",
    "CSV_STATS_INTERVAL_SEC",
    "CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW",
    "HISTORY_STATS_INTERVAL_SEC",
    "PERCENTILES_TO_CHART",
    "PERCENTILES_TO_REPORT",
    "PERCENTILES_TO_STATISTICS",
    "STATS_NAME_WIDTH",
    "STATS_TYPE_WIDTH",
    "CachedResponseTimes",
    "EntriesDict",
    "RequestStats",
    "StatsCSV",
    "StatsCSVFileWriter",
    "StatsEntry",
    "StatsError",
    "StatsView",
    "avg",
    "bucket_response_time",
    "calculate_response_time_percentile",
    "diff_response_time_dicts",
    "get_error_report_summary",
    "get_percentile_stats_summary",
    "get_readable_percentiles",
    "get_stats_summary",
    "median_from_dict",
    "print_error_report",
    "print_percentile_stats",
    "print_stats",
    "print_stats_json",
    "save_stats_json",
    "sort_stats",
    "stats_history",
    "stats_printer",
    "update_stats_history",
    "validate_stats_configuration",
]
