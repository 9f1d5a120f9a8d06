"""What a library run (``horde.run``) gives back: the statistics as pandas DataFrames, every
request as numpy arrays handed over from the Rust engine, exact quantiles from the engine's HDR
histograms, SLO assertions, saving to Parquet or npz and loading back, and plots.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from horde import thresholds
from horde.stats import format_ms

__all__ = ["DEFAULT_MAX_SAMPLES", "Result", "Samples", "SloError", "load"]

#: Requests kept as samples by default: about 460 MB (23 bytes each). Past the cap the statistics
#: and histograms still count every request; ``Samples.dropped`` says how many were left out.
DEFAULT_MAX_SAMPLES = 20_000_000

_FORMAT_VERSION = 1
_COLUMNS = ("start_us", "latency_us", "status", "bytes", "key", "ok", "own_delay_us")
_DTYPES = {
    "start_us": np.uint64,
    "latency_us": np.uint32,
    "status": np.uint16,
    "bytes": np.uint32,
    "key": np.uint32,
    "ok": np.bool_,
    "own_delay_us": np.uint32,
}
# Open model only: the uncorrected service times (latency_us counts from the scheduled start).
_SERVICE = "service_us"
_TOTAL = ("", "Aggregated")


class Samples:
    """Every request of a run in completion order, one index per request, in compact columns
    (27 bytes a request, 31 in the open model) that the engine filled and handed over without
    copying.

    Attributes:
        origin: Epoch seconds that ``start_us`` counts from.
        start_us: uint64, when each request started, µs after ``origin`` (in the open model, an
            iteration's first request starts at the iteration's scheduled start).
        latency_us: uint32, response time in µs: request written → last byte read; in the open
            model, from the scheduled start for an iteration's first request.
        status: uint16, HTTP status (0: no response, e.g. a connection error).
        bytes: uint32, response body length.
        key: uint32, index into ``keys``.
        ok: bool, False when the request counted as a failure.
        own_delay_us: uint32, horde's own delay for the request: from the user's call until the
            request was written, plus from the last byte until the user ran again (0 when the
            user never picked its response up).
        service_us: uint32, the uncorrected service time (request written → last byte read); the
            same array as ``latency_us`` in the closed model.
        keys: ``(method, name)`` of each key.
        dropped: Requests left out because the run's ``max_samples`` cap was reached.
    """

    def __init__(self, columns: Mapping[str, Any], origin: float, keys: list[tuple[str, str]], dropped: int) -> None:
        self.origin = float(origin)
        self.keys = [(str(m), str(n)) for m, n in keys]
        self.dropped = int(dropped)
        self.start_us: np.ndarray = columns["start_us"]
        self.latency_us: np.ndarray = columns["latency_us"]
        self.status: np.ndarray = columns["status"]
        self.bytes: np.ndarray = columns["bytes"]
        self.key: np.ndarray = columns["key"]
        self.ok: np.ndarray = columns["ok"]
        own_delay = columns.get("own_delay_us")
        self.own_delay_us: np.ndarray = (
            own_delay if own_delay is not None else np.zeros(len(self.key), dtype=_DTYPES["own_delay_us"])
        )
        service = columns.get(_SERVICE)
        self.service_us: np.ndarray = service if service is not None else self.latency_us

    @property
    def open_model(self) -> bool:
        """Whether ``latency_us`` counts from scheduled starts (``service_us`` then differs)."""
        return self.service_us is not self.latency_us

    def _columns(self) -> dict[str, Any]:
        columns = {c: getattr(self, c) for c in _DTYPES}
        if self.open_model:
            columns[_SERVICE] = self.service_us
        return columns

    @classmethod
    def empty(cls) -> Samples:
        return cls({c: np.zeros(0, dtype=t) for c, t in _DTYPES.items()}, 0.0, [], 0)

    @classmethod
    def merge(cls, parts: list[Samples]) -> Samples:
        """The samples of several processes of one run as one: times counted from the earliest
        origin, names numbered anew, requests in completion order."""
        parts = [p for p in parts if len(p) or p.keys or p.dropped]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        origin = min(p.origin for p in parts)
        keys: list[tuple[str, str]] = []
        index: dict[tuple[str, str], int] = {}
        columns: dict[str, list[np.ndarray]] = {c: [] for c in _DTYPES}
        if any(p.open_model for p in parts):
            columns[_SERVICE] = []
        for part in parts:
            for key in part.keys:
                if key not in index:
                    index[key] = len(keys)
                    keys.append(key)
            renumber = np.array([index[k] for k in part.keys] or [0], dtype=np.uint32)
            shift = np.uint64(round((part.origin - origin) * 1e6))
            columns["start_us"].append(part.start_us + shift)
            columns["key"].append(renumber[part.key] if len(part) else part.key)
            for c in ("latency_us", "status", "bytes", "ok", "own_delay_us"):
                columns[c].append(getattr(part, c))
            if _SERVICE in columns:
                columns[_SERVICE].append(part.service_us)
        merged: dict[str, np.ndarray] = {
            c: np.concatenate(arrays).astype(_DTYPES.get(c, np.uint32), copy=False) for c, arrays in columns.items()
        }
        # Completion order across processes: by when each request ended.
        order = np.argsort(merged["start_us"] + merged["latency_us"], kind="stable")
        return cls({c: a[order] for c, a in merged.items()}, origin, keys, sum(p.dropped for p in parts))

    def save_columns(self, path: str | os.PathLike[str]) -> None:
        """Writes the samples to an ``.npz`` file (columns, plus origin, keys and dropped)."""
        np.savez(
            path,
            origin=np.array(self.origin),
            keys=np.array(json.dumps(self.keys)),
            dropped=np.array(self.dropped),
            **self._columns(),
        )

    @classmethod
    def load_columns(cls, path: str | os.PathLike[str]) -> Samples:
        """Reads what ``save_columns`` wrote."""
        with np.load(path) as data:
            columns = {c: data[c] for c in (*_DTYPES, _SERVICE) if c in data.files}
            return cls(columns, float(data["origin"]), json.loads(str(data["keys"])), int(data["dropped"]))

    def __len__(self) -> int:
        return len(self.key)

    def __repr__(self) -> str:
        return f"<Samples {len(self)} requests, {len(self.keys)} names, {self.dropped} dropped>"

    @property
    def start(self) -> np.ndarray:
        """float64 epoch seconds at which each request started."""
        return self.origin + self.start_us / 1e6

    @property
    def latency(self) -> np.ndarray:
        """float64 response times in ms."""
        return self.latency_us / 1000.0

    @property
    def method(self) -> np.ndarray:
        """Each request's method (an object array; see ``key`` for the compact form)."""
        return np.array([m for m, _ in self.keys] or [""], dtype=object)[self.key]

    @property
    def name(self) -> np.ndarray:
        """Each request's name (an object array; see ``key`` for the compact form)."""
        return np.array([n for _, n in self.keys] or [""], dtype=object)[self.key]

    def mask(self, name: str | None = None, method: str | None = None) -> np.ndarray:
        """A boolean array selecting the requests of ``name`` (and ``method``); all when None."""
        if name is None and method is None:
            return np.ones(len(self), dtype=bool)
        wanted = [i for i, (m, n) in enumerate(self.keys) if _matches(m, n, name, method)]
        return np.isin(self.key, np.array(wanted, dtype=np.uint32))

    def to_pandas(self) -> pd.DataFrame:
        """One row per request: start (UTC timestamps), latency_ms, status, bytes, method and
        name (categoricals), ok, own_delay_ms, and in the open model service_ms."""
        methods = _categorical(self.keys, self.key, 0)
        names = _categorical(self.keys, self.key, 1)
        frame = {
            "start": pd.to_datetime(self.start, unit="s", utc=True),
            "latency_ms": self.latency,
            "status": self.status,
            "bytes": self.bytes,
            "method": methods,
            "name": names,
            "ok": self.ok,
            "own_delay_ms": self.own_delay_us / 1000.0,
        }
        if self.open_model:
            frame["service_ms"] = self.service_us / 1000.0
        return pd.DataFrame(frame)


def _categorical(keys: list[tuple[str, str]], codes: np.ndarray, part: int) -> pd.Categorical:
    """Per-request methods or names as a categorical: keys share methods (and names), so the
    categories are the distinct labels and each key maps to one of them."""
    labels = [k[part] for k in keys]
    categories = sorted(set(labels))
    lookup = np.array([categories.index(label) for label in labels] or [0], dtype=np.int64)
    # pandas takes any list-like as categories; pandas-stubs asks for an Index.
    return pd.Categorical.from_codes(lookup[codes], categories=categories or [""])  # type: ignore[call-overload]


def _matches(method: str, name: str, want_name: str | None, want_method: str | None) -> bool:
    return (want_name is None or name == want_name) and (want_method is None or method.upper() == want_method.upper())


@dataclass
class _Histogram:
    """One stats row's HDR histogram: each non-empty bucket's highest µs value and count, and
    the exact min and max in ms."""

    values_us: np.ndarray
    counts: np.ndarray
    min_ms: float | None
    max_ms: float

    def quantile(self, q: float) -> float:
        total = int(self.counts.sum())
        if total == 0:
            return math.nan
        # The HDR rule: the first bucket whose cumulative count reaches ceil(q * total).
        rank = max(1, math.ceil(min(max(q, 0.0), 1.0) * total))
        index = int(np.searchsorted(np.cumsum(self.counts), rank))
        ms = float(self.values_us[min(index, len(self.values_us) - 1)]) / 1000.0
        if self.max_ms > 0:
            ms = min(ms, self.max_ms)
        if self.min_ms is not None:
            ms = max(ms, self.min_ms)
        return ms

    @staticmethod
    def combine(parts: list[_Histogram]) -> _Histogram:
        values, counts = merge_buckets([(p.values_us, p.counts) for p in parts])
        mins = [p.min_ms for p in parts if p.min_ms is not None]
        return _Histogram(
            values, counts.astype(np.uint64), min(mins) if mins else None, max((p.max_ms for p in parts), default=0.0)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "values_us": self.values_us.tolist(),
            "counts": self.counts.tolist(),
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Histogram:
        return cls(
            np.asarray(data["values_us"], dtype=np.uint64),
            np.asarray(data["counts"], dtype=np.uint64),
            data["min_ms"],
            float(data["max_ms"]),
        )


def merge_buckets(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Adds up histograms given as (bucket values, counts): the distinct values, ascending, and
    the int64 sum of their counts (a part with negative counts subtracts)."""
    if not parts:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    values = np.concatenate([v for v, _ in parts])
    counts = np.concatenate([c.astype(np.int64) for _, c in parts])
    unique, inverse = np.unique(values, return_inverse=True)
    return unique, np.bincount(inverse, weights=counts, minlength=len(unique)).astype(np.int64)


class SloError(AssertionError):
    """Raised by ``Result.assert_slo`` when a bound is broken; the message lists each one."""


class _Row:
    """The figures a threshold reads from a stats row, taken from a Result."""

    def __init__(self, result: Result, name: str | None, method: str | None) -> None:
        self._result = result
        self._name = name
        self._method = method
        rows = result._stats_rows(name, method)
        self.num_requests = int(rows["Request Count"].sum())
        self.num_failures = int(rows["Failure Count"].sum())
        self.num_none_requests = 0
        self.total_rps = float(rows["Requests/s"].sum())
        self.fail_ratio = self.num_failures / self.num_requests if self.num_requests else 0.0
        hist = result._histogram(name, method)
        weights = rows["Request Count"].to_numpy(dtype=float)
        self.avg_response_time = (
            float(np.average(rows["Average Response Time"].to_numpy(dtype=float), weights=weights))
            if weights.sum() > 0
            else 0.0
        )
        self.min_response_time = hist.min_ms if hist is not None else None
        self.max_response_time = hist.max_ms if hist is not None else 0.0
        self.median_response_time = self.get_response_time_percentile(0.5)
        self.dropped_iterations = result.dropped_iterations

    def get_response_time_percentile(self, q: float) -> float:
        return self._result.quantile(q, name=self._name, method=self._method)


# assert_slo's keywords: the default comparison when the value carries no operator.
_SLO_DEFAULT_OPERATOR = {"rps": ">=", "requests": ">="}


class Result:
    """The outcome of ``horde.run`` (or ``RunHandle.wait``), complete or loaded from a file.

    Attributes:
        stats: One row per (method, name) and the "Aggregated" row, with the columns of Locust's
            ``_stats.csv``; the times (ms) are the engine's precise figures (HDR histograms,
            within 0.1%; exact min and max) rather than the CSV's whole-ms buckets, so a
            sub-millisecond server reads e.g. 0.031. NaN where a row has no timed request.
        history: One row per second: "User Count", "Requests/s", "Failures/s", "50%", "95%",
            "99%" and "Average Response Time" (ms) of the requests completed in that second.
        failures: The error table, with the columns of Locust's ``_failures.csv``.
        exceptions: Exceptions raised in user code: count, message, traceback.
        samples: Every request as numpy arrays (see ``Samples``).
        meta: The run's parameters and times: host, users, spawn_rate, run_time, user_classes,
            start_time and end_time (epoch seconds), exit_code; in the open model also
            arrival_rate, max_users, arrival_distribution and ``arrivals`` (scheduled, started,
            dropped).
        environment: The live ``Environment`` of the run (None for a loaded result).

    Response times (``stats``, ``quantile``, ``latencies``) are measured from the request written
    to its last byte read; in the open model (``arrival_rate=``) from each iteration's scheduled
    start instead, with the uncorrected times in ``service_quantile`` and ``samples.service_us``.
    ``own_delay_quantile`` measures horde itself.
    """

    def __init__(
        self,
        *,
        stats: pd.DataFrame,
        history: pd.DataFrame,
        failures: pd.DataFrame,
        exceptions: pd.DataFrame,
        samples: Samples,
        histograms: dict[tuple[str, str], _Histogram],
        meta: dict[str, Any],
        environment: Any = None,
        service_histograms: dict[tuple[str, str], _Histogram] | None = None,
        own_delay: _Histogram | None = None,
    ) -> None:
        self.stats = stats
        self.history = history
        self.failures = failures
        self.exceptions = exceptions
        self.samples = samples
        self._histograms = histograms
        self._service_histograms = service_histograms or {}
        self._own_delay = own_delay
        self.meta = meta
        self.environment = environment

    # -- figures ---------------------------------------------------------------------------

    @property
    def total(self) -> pd.Series:
        """The "Aggregated" row of ``stats``."""
        return self.stats.iloc[-1]

    @property
    def num_requests(self) -> int:
        return int(self.total["Request Count"])

    @property
    def num_failures(self) -> int:
        return int(self.total["Failure Count"])

    @property
    def fail_ratio(self) -> float:
        """Failures per request over the run (0 without requests)."""
        return self.num_failures / self.num_requests if self.num_requests else 0.0

    @property
    def rps(self) -> float:
        """Requests per second over the run."""
        return float(self.total["Requests/s"])

    @property
    def open_model(self) -> bool:
        """Whether the run was at an arrival rate (response times from scheduled starts)."""
        return bool(self.meta.get("open_model", False))

    @property
    def dropped_iterations(self) -> int:
        """Open model: arrivals dropped because no user was free and the pool was full."""
        return int(self.meta.get("arrivals", {}).get("dropped", 0))

    @property
    def exit_code(self) -> int:
        """The exit code ``horde`` would have given the same run (0, or 1 on failures...)."""
        return int(self.meta.get("exit_code", 0))

    def _stats_rows(self, name: str | None, method: str | None) -> pd.DataFrame:
        rows = self.stats.iloc[:-1]
        if name is None and method is None:
            return self.stats.iloc[-1:]
        keep = [_matches(str(m), str(n), name, method) for m, n in zip(rows["Type"], rows["Name"])]
        return rows[keep]

    def _histogram(self, name: str | None, method: str | None) -> _Histogram | None:
        return self._pick(self._histograms, name, method)

    @staticmethod
    def _pick(histograms: dict[tuple[str, str], _Histogram], name: str | None, method: str | None) -> _Histogram | None:
        if name is None and method is None:
            return histograms.get(_TOTAL)
        parts = [h for (m, n), h in histograms.items() if (m, n) != _TOTAL and _matches(m, n, name, method)]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else _Histogram.combine(parts)

    def quantile(self, q: float, name: str | None = None, method: str | None = None) -> float:
        """Response time in ms at quantile ``q`` (0..1), from the engine's HDR histograms (within
        0.1% of the exact value), over every request, even past the samples' cap.

        Args:
            q: The quantile, 0 <= q <= 1 (0.99 for p99).
            name: A request name; None for all requests. Rows of several methods sharing the
                name are combined unless ``method`` picks one.
            method: A method ("GET"), to narrow ``name`` (or alone: every name of that method).

        Returns:
            Milliseconds; NaN when there are no timed requests for the selection.

        Raises:
            ValueError: q outside [0, 1].
            KeyError: no stats row matches name/method.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be between 0 and 1, got {q!r} (p99 is 0.99)")
        hist = self._histogram(name, method)
        if hist is None:
            raise KeyError(f"no requests named {name!r}" + (f" with method {method!r}" if method else ""))
        return hist.quantile(q)

    def service_quantile(self, q: float, name: str | None = None, method: str | None = None) -> float:
        """Like ``quantile``, of the uncorrected service times (request written → last byte
        read). In the closed model these are the response times, so it equals ``quantile``."""
        if not self.open_model:
            return self.quantile(q, name, method)
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be between 0 and 1, got {q!r} (p99 is 0.99)")
        hist = self._pick(self._service_histograms, name, method)
        if hist is None:
            raise KeyError(f"no requests named {name!r}" + (f" with method {method!r}" if method else ""))
        return hist.quantile(q)

    def own_delay_quantile(self, q: float) -> float:
        """horde's own delay per request (ms) at quantile ``q``: from the user's call until the
        request was written, plus from the last byte until the user ran again. Large next to the
        response times, it means horde rather than the server was the bottleneck. NaN when
        nothing was measured."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be between 0 and 1, got {q!r} (p99 is 0.99)")
        return self._own_delay.quantile(q) if self._own_delay is not None else math.nan

    def latencies(self, name: str | None = None, method: str | None = None) -> np.ndarray:
        """Every sampled request's response time in ms (float64), in completion order; only
        ``name``'s (and ``method``'s) when given. See ``samples.dropped`` for requests past the cap."""
        if name is None and method is None:
            return self.samples.latency
        return self.samples.latency_us[self.samples.mask(name, method)] / 1000.0

    # -- assertions ------------------------------------------------------------------------

    def assert_slo(self, *, name: str | None = None, method: str | None = None, **bounds: Any) -> None:
        """Fails (``SloError``, an AssertionError) when a bound is broken, saying which and by
        how much.

        Each keyword is a metric of ``--threshold``: ``p50``, ``p95``, ``p99``, ``p99_9`` (for
        p99.9), ``median``, ``avg``, ``min``, ``max`` (latencies: ``"50ms"``, ``"0.2s"`` or a
        number of ms), ``fail_ratio`` (``0.01`` or ``"1%"``), ``failures``, ``requests``, ``rps``,
        ``dropped_iterations`` (the open model's; upper bound by default).
        A value may start with an operator (``rps=">=500"``, ``p99="<50ms"``); without one,
        latencies, ``fail_ratio`` and ``failures`` are upper bounds (<=), ``rps`` and
        ``requests`` lower bounds (>=).

        Args:
            name: Check the row(s) of this request name instead of all requests.
            method: Narrow ``name`` to one method.
            **bounds: metric=bound pairs, e.g. ``p99="50ms", fail_ratio=0.01, rps=">=500"``.
        """
        if not bounds:
            raise TypeError("assert_slo() needs at least one bound, e.g. p99='50ms'")
        checks = [self._parse_bound(metric, value) for metric, value in bounds.items()]
        if name is not None or method is not None:
            if self._histogram(name, method) is None and self._stats_rows(name, method).empty:
                raise SloError(f"no requests named {name!r}" + (f" with method {method!r}" if method else ""))
        row = _Row(self, name, method)
        scope = "all requests" if name is None and method is None else " ".join(filter(None, [method, name]))
        broken = []
        for threshold in checks:
            observed = threshold.observe(row)
            if observed is not None and math.isnan(observed):
                observed = None
            if not threshold.passes(observed):
                broken.append(_describe_breach(threshold, observed))
        if broken:
            raise SloError(f"SLO broken for {scope} ({self.num_requests} requests):\n  " + "\n  ".join(broken))

    @staticmethod
    def _parse_bound(metric: str, value: Any) -> thresholds.Threshold:
        metric_text = metric.replace("_", ".") if metric.startswith("p") and metric[1:2].isdigit() else metric
        text = str(value).strip()
        if not text or text[0] not in "<>=":
            text = _SLO_DEFAULT_OPERATOR.get(metric, "<=") + text
        try:
            return thresholds.parse(f"{metric_text}{text}")
        except thresholds.ThresholdError as e:
            raise ValueError(f"assert_slo({metric}={value!r}): {e}") from None

    # -- saving ----------------------------------------------------------------------------

    def _metadata(self) -> dict[str, Any]:
        history = self.history.reset_index()
        # Epoch ms as plain numbers: to_json's own datetime format is changing in pandas 4.
        history["Timestamp"] = (history["Timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
        return {
            "format": _FORMAT_VERSION,
            "meta": self.meta,
            "stats": _frame_json(self.stats),
            "history": _frame_json(history),
            "failures": _frame_json(self.failures),
            "exceptions": _frame_json(self.exceptions),
            "histograms": [[m, n, h.to_json()] for (m, n), h in self._histograms.items()],
            "service_histograms": [[m, n, h.to_json()] for (m, n), h in self._service_histograms.items()],
            "own_delay": self._own_delay.to_json() if self._own_delay is not None else None,
            "samples": {"origin": self.samples.origin, "keys": self.samples.keys, "dropped": self.samples.dropped},
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the result to ``path``: ``.parquet`` (the samples as columns, everything else
        in the file's metadata; needs pyarrow, ``pip install horde[parquet]``) or ``.npz``.
        ``horde.load(path)`` reads it back."""
        path = os.fspath(path)
        meta = json.dumps(self._metadata())
        columns = self.samples._columns()
        if path.endswith(".parquet"):
            pa, pq = _pyarrow()
            table = pa.table(columns).replace_schema_metadata({"horde": meta})
            pq.write_table(table, path)
        elif path.endswith(".npz"):
            with open(path, "wb") as f:
                np.savez(f, horde=np.frombuffer(meta.encode(), dtype=np.uint8), **columns)
        else:
            raise ValueError(f"cannot save to {path!r}: use a .parquet or .npz file name")

    def save_html(self, path: str | os.PathLike[str]) -> None:
        """Writes Locust's HTML report of the run (only for a run's own result, not a loaded one)."""
        if self.environment is None:
            raise RuntimeError("the HTML report needs the run's environment; a loaded result has none")
        from horde.html import get_html_report

        with open(path, "w", encoding="utf-8") as f:
            f.write(get_html_report(self.environment, show_download_link=False))

    # -- display ---------------------------------------------------------------------------

    def plot(self, name: str | None = None, method: str | None = None) -> Any:
        """Latency over time (per-second p50/p95/p99 and the samples) and the latency
        distribution, as a matplotlib Figure (``pip install horde[plot]``)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("Result.plot() needs matplotlib: pip install 'horde[plot]'") from None
        fig, (over_time, dist) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
        mask = self.samples.mask(name, method)
        lat = self.samples.latency_us[mask] / 1000.0
        start = self.samples.start[mask]
        t0 = float(start.min()) if len(start) else 0.0
        if len(lat):
            step = max(1, len(lat) // 20000)  # a readable scatter, not millions of dots
            over_time.scatter(start[::step] - t0, lat[::step], s=2, alpha=0.25, color="0.6", label="requests")
            seconds, table = _per_second(start - t0, self.samples.latency_us[mask], self.samples.ok[mask])
            for column, color in (("50%", "C0"), ("95%", "C1"), ("99%", "C3")):
                over_time.plot(seconds + 0.5, table[column], color=color, label=f"p{column[:-1]}")
            dist.hist(lat, bins=np.geomspace(max(lat.min(), 0.001), max(lat.max(), 0.002), 80), color="C0")
            dist.set_xscale("log")
            for q, color in ((0.5, "C0"), (0.95, "C1"), (0.99, "C3")):
                dist.axvline(float(np.quantile(lat, q)), color=color, linestyle="--", label=f"p{round(q * 100)}")
            over_time.legend(loc="upper right")
            dist.legend(loc="upper right")
        else:  # no requests, or none kept (max_samples=0)
            for ax in (over_time, dist):
                ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
        title = " ".join(filter(None, [method, name])) or "all requests"
        over_time.set(title=f"Latency over time ({title})", xlabel="seconds", ylabel="ms", yscale="log")
        dist.set(title="Latency distribution", xlabel="ms", ylabel="requests")
        return fig

    def __repr__(self) -> str:
        dropped = f", {self.dropped_iterations} dropped iterations" if self.open_model else ""
        return (
            f"<Result {self.num_requests} requests, {self.num_failures} failures, {self.rps:.1f} req/s, "
            f"p50 {format_ms(self._quantile_or_nan(0.5)) or 'nan'} ms, "
            f"p99 {format_ms(self._quantile_or_nan(0.99)) or 'nan'} ms{dropped}>"
        )

    def _quantile_or_nan(self, q: float) -> float:
        hist = self._histograms.get(_TOTAL)
        return hist.quantile(q) if hist is not None else math.nan

    def _repr_html_(self) -> str:
        return f"<p><code>{_escape(repr(self))}</code></p>" + self.stats.to_html(index=False, na_rep="")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _describe_breach(threshold: thresholds.Threshold, observed: float | None) -> str:
    bound = f"{threshold.operator} {threshold.format_value(threshold.limit)}"
    if observed is None:
        return f"{threshold.metric}: no requests to measure (bound {bound})"
    diff = observed - threshold.limit
    by = threshold.format_value(abs(diff))
    relative = f", {diff / threshold.limit * 100:+.1f}%" if threshold.limit else ""
    return (
        f"{threshold.metric} = {threshold.format_value(observed)}, bound {bound}: "
        f"{'over' if diff > 0 else 'under'} by {by}{relative}"
    )


def _per_second(seconds: np.ndarray, latency_us: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Requests, failures and latency percentiles of each whole second of ``seconds`` (a float
    array of completion times), for every second from the first to the last."""
    if len(seconds) == 0:
        columns = ["Requests/s", "Failures/s", "50%", "95%", "99%", "Average Response Time"]
        empty = pd.DataFrame({c: np.zeros(0) for c in columns})
        return np.zeros(0, dtype=np.int64), empty
    sec = np.floor(seconds).astype(np.int64)
    order = np.lexsort((latency_us, sec))
    sec_sorted = sec[order]
    lat_sorted = latency_us[order].astype(np.float64) / 1000.0
    uniq, first, counts = np.unique(sec_sorted, return_index=True, return_counts=True)
    table = {
        "Requests/s": counts.astype(np.float64),
        "Failures/s": np.add.reduceat((~ok[order]).astype(np.int64), first).astype(np.float64),
    }
    for q in (0.5, 0.95, 0.99):
        # Nearest rank, as the HDR histograms and Locust's percentiles take it.
        table[f"{round(q * 100)}%"] = lat_sorted[first + np.maximum(np.ceil(q * counts).astype(np.int64) - 1, 0)]
    table["Average Response Time"] = np.add.reduceat(lat_sorted, first) / counts
    frame = pd.DataFrame(table, index=uniq)
    full = np.arange(uniq[0], uniq[-1] + 1)
    frame = frame.reindex(full)
    frame[["Requests/s", "Failures/s"]] = frame[["Requests/s", "Failures/s"]].fillna(0.0)
    return full, frame


def build_history(
    samples: Samples,
    users: list[tuple[float, int]],
    requests_per_sec: Mapping[int, int] | None = None,
    failures_per_sec: Mapping[int, int] | None = None,
) -> pd.DataFrame:
    """The per-second history of a run: requests and failures from the engine's per-second
    counters (every request, past the samples' cap too), latency percentiles from the samples
    (NaN for seconds without samples), and the user counts sampled while it ran (``(epoch s,
    users)`` pairs)."""
    end = samples.origin + (samples.start_us + samples.latency_us) / 1e6
    sample_seconds, table = _per_second(end, samples.latency_us, samples.ok)
    counted = {int(k): int(v) for k, v in (requests_per_sec or {}).items()}
    failed = {int(k): int(v) for k, v in (failures_per_sec or {}).items()}
    known = [*sample_seconds.tolist(), *counted, *failed, *(int(t) for t, _ in users)]
    if not known:
        table.insert(0, "User Count", pd.Series(dtype=np.int64))
        table.index = pd.DatetimeIndex([], tz="UTC", name="Timestamp")
        return table.astype({c: np.float64 for c in table.columns if c != "User Count"})
    seconds = np.arange(min(known), max(known) + 1)
    table = table.reindex(seconds).astype(np.float64)
    if counted or failed:
        table["Requests/s"] = pd.Series(counted, dtype=np.float64).reindex(seconds).fillna(0.0).to_numpy()
        table["Failures/s"] = pd.Series(failed, dtype=np.float64).reindex(seconds).fillna(0.0).to_numpy()
    else:
        table[["Requests/s", "Failures/s"]] = table[["Requests/s", "Failures/s"]].fillna(0.0)
    if users:
        # The most users seen running during each second (counts are sampled every 0.25 s),
        # carried forward over seconds without a sample.
        counts = pd.Series([c for _, c in users], index=[int(t) for t, _ in users]).groupby(level=0).max()
        table.insert(0, "User Count", counts.reindex(seconds).ffill().fillna(0).astype(np.int64).to_numpy())
    else:
        table.insert(0, "User Count", np.zeros(len(seconds), dtype=np.int64))
    table.index = pd.to_datetime(seconds, unit="s", utc=True)
    table.index.name = "Timestamp"
    return table


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("Parquet files need pyarrow: pip install 'horde[parquet]' (or save to .npz)") from None
    return pa, pq


def _frame_json(frame: pd.DataFrame) -> dict[str, Any]:
    # 15 digits: to_json's default of 10 would round the times in ms.
    data = json.loads(frame.to_json(orient="split", double_precision=15))
    # JSON has no NaN: a column of NaNs would come back as None objects without its dtype.
    data["dtypes"] = [str(t) for t in frame.dtypes]
    return data


def _frame(data: Mapping[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(data["data"], columns=data["columns"])
    dtypes = zip(data["columns"], data.get("dtypes", []))
    numeric = {c: t for c, t in dtypes if pd.api.types.pandas_dtype(t).kind in "biuf"}
    return frame.astype(numeric) if numeric else frame


def load(path: str | os.PathLike[str]) -> Result:
    """Reads a result written by ``Result.save`` (.parquet or .npz)."""
    path = os.fspath(path)
    if not path.endswith((".parquet", ".npz")):
        raise ValueError(f"cannot load {path!r}: horde saves results as .parquet or .npz")
    try:
        if path.endswith(".parquet"):
            _pa, pq = _pyarrow()
            table = pq.read_table(path)
            raw = (table.schema.metadata or {}).get(b"horde")
            present = [c for c in (*_COLUMNS, _SERVICE) if c in table.column_names]
            columns = {c: table.column(c).to_numpy().astype(_DTYPES.get(c, np.uint32), copy=False) for c in present}
        else:
            with np.load(path) as npz:
                raw = npz["horde"].tobytes() if "horde" in npz.files else None
                columns = {c: npz[c] for c in (*_COLUMNS, _SERVICE) if c in npz.files}
    except (ValueError, zipfile.BadZipFile) as e:  # not Parquet / not an npz (pyarrow's errors are ValueErrors)
        raise ValueError(f"{path} is not a result saved by horde ({e})") from None
    # own_delay_us came later: results saved before it load with zeros there.
    if raw is None or not all(c in columns for c in _COLUMNS if c != "own_delay_us"):
        raise ValueError(f"{path} is not a result saved by horde")
    data = json.loads(raw)
    if data.get("format") != _FORMAT_VERSION:
        raise ValueError(f"{path} was saved by an incompatible horde (format {data.get('format')!r})")
    history = _frame(data["history"])
    if "Timestamp" in history:
        history = history.set_index(pd.to_datetime(history.pop("Timestamp"), unit="ms", utc=True))
        history.index.name = "Timestamp"
    sample_meta = data["samples"]
    return Result(
        stats=_frame(data["stats"]),
        history=history,
        failures=_frame(data["failures"]),
        exceptions=_frame(data["exceptions"]),
        samples=Samples(columns, sample_meta["origin"], sample_meta["keys"], sample_meta["dropped"]),
        histograms={(m, n): _Histogram.from_json(h) for m, n, h in data["histograms"]},
        meta=data["meta"],
        service_histograms={(m, n): _Histogram.from_json(h) for m, n, h in data.get("service_histograms", [])},
        own_delay=_Histogram.from_json(data["own_delay"]) if data.get("own_delay") else None,
    )
