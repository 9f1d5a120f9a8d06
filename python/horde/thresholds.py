"""Pass/fail criteria for CI (``--threshold``): parsing them, checking them against the statistics,
and the table printed at the end of a run.

An expression reads ``[METHOD NAME:] METRIC OP VALUE[UNIT]``, e.g. ``p95<200ms``,
``fail_ratio<1%`` or ``GET /api/articles: p99<=50``; see ``parse``. When a threshold is broken at
the end of the run, ``horde`` exits with code 3. The exit codes, first match wins:

- the code a locustfile set in ``environment.process_exit_code``;
- 3 = a threshold was broken;
- ``--exit-code-on-error`` (1 by default) = some requests failed or a user raised;
- 2 = an unhandled error in a greenlet (also a malformed ``--threshold`` or other bad option);
- 0 otherwise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "THRESHOLD_EXIT_CODE",
    "Threshold",
    "ThresholdError",
    "ThresholdResult",
    "certainly_broken",
    "evaluate",
    "format_results",
    "parse",
    "parse_all",
]

#: The exit code of a run that broke a threshold.
THRESHOLD_EXIT_CODE = 3

LATENCY = "latency"
RATIO = "ratio"
COUNT = "count"
RATE = "rate"

# Metric name -> (kind, StatsEntry attribute). Percentiles are matched separately.
_METRICS = {
    "median": (LATENCY, "median_response_time"),
    "avg": (LATENCY, "avg_response_time"),
    "min": (LATENCY, "min_response_time"),
    "max": (LATENCY, "max_response_time"),
    "fail_ratio": (RATIO, "fail_ratio"),
    "failures": (COUNT, "num_failures"),
    "requests": (COUNT, "num_requests"),
    "rps": (RATE, "total_rps"),
    # The open model's arrivals that found no free user (a figure of the whole run).
    "dropped_iterations": (COUNT, "dropped_iterations"),
}
_METRIC_NAMES = "pNN (e.g. p95, p99.9), median, avg, min, max, fail_ratio, failures, requests, rps, dropped_iterations"
# Metrics of the whole run, which no request name narrows.
_RUN_METRICS = {"dropped_iterations"}

# Latency units in milliseconds; "" is the default.
_LATENCY_UNITS = {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001}

_OPERATORS = {
    "<": lambda observed, limit: observed < limit,
    "<=": lambda observed, limit: observed <= limit,
    ">": lambda observed, limit: observed > limit,
    ">=": lambda observed, limit: observed >= limit,
}

# Methods horde's HTTP clients send. A custom client's request type (Locust's "request_type") is
# accepted when written in capitals, as Locust's own examples name them (RAW, GRPC, WS).
_HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"}

_PERCENTILE = re.compile(r"p(?:(\d+(?:\.\d+)?)|\((\d+(?:\.\d+)?)\))")  # p95, p99.9, k6's p(95)
_OPERATOR = re.compile(r"<=|>=|==|!=|=<|=>|<|>|=")
_VALUE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([^\s\d.]*)")
_CUSTOM_REQUEST_TYPE = re.compile(r"[A-Z][A-Z0-9_-]*")

NO_REQUESTS = "no requests"


class ThresholdError(ValueError):
    """A ``--threshold`` expression that cannot be parsed.

    Attributes:
        expression: The expression as given.
        reason: What is wrong with it.
    """

    def __init__(self, expression: str, reason: str) -> None:
        super().__init__(f"invalid threshold {expression!r}: {reason}")
        self.expression = expression
        self.reason = reason


@dataclass(frozen=True)
class Threshold:
    """One parsed criterion; build it with ``parse``.

    Attributes:
        expression: The expression as written (without surrounding spaces).
        method: The scope's method (upper case), or None for the "Aggregated" row.
        name: The scope's request name, or None for the "Aggregated" row.
        metric: The canonical metric name: ``p95``, ``p99.9``, ``median``, ``fail_ratio``...
        kind: ``"latency"`` (ms), ``"ratio"`` (0..1), ``"count"`` or ``"rate"`` (requests/s).
        operator: ``<``, ``<=``, ``>`` or ``>=``.
        limit: The bound in the metric's base unit (ms for latencies, 0..1 for fail_ratio).
        percentile: For ``pNN`` metrics, NN/100; otherwise None.
    """

    expression: str
    method: str | None
    name: str | None
    metric: str
    kind: str
    operator: str
    limit: float
    percentile: float | None = None

    def observe(self, row: Any) -> float | None:
        """This threshold's metric read from a stats row (``StatsEntry``); None when the row has
        no data for it (no requests, or no timed ones for a latency)."""
        if self.kind == LATENCY and (row.num_requests - getattr(row, "num_none_requests", 0)) <= 0:
            return None
        if self.kind == RATIO and row.num_requests <= 0:
            return None
        if self.percentile is not None:
            return float(row.get_response_time_percentile(self.percentile))
        value = getattr(row, _METRICS[self.metric][1])
        return None if value is None else float(value)

    def passes(self, observed: float | None) -> bool:
        """Whether an observed value meets the threshold; no data never does."""
        return observed is not None and _OPERATORS[self.operator](observed, self.limit)

    def format_value(self, observed: float | None) -> str:
        """An observed value for people: ``312.456 ms``, ``1.25%``, ``42``, ``97.10/s``."""
        if observed is None:
            return NO_REQUESTS
        if self.kind == LATENCY:
            return f"{observed:.3f} ms"
        if self.kind == RATIO:
            return f"{observed * 100:.2f}%"
        if self.kind == COUNT:
            return str(int(observed))
        return f"{observed:.2f}/s"


@dataclass(frozen=True)
class ThresholdResult:
    """A threshold checked against the statistics.

    Attributes:
        threshold: The threshold.
        observed: The value found (ms, ratio, count or requests/s), or None without data.
        passed: Whether the threshold holds.
    """

    threshold: Threshold
    observed: float | None
    passed: bool

    @property
    def expression(self) -> str:
        """The threshold's expression as written."""
        return self.threshold.expression

    @property
    def observed_text(self) -> str:
        """The observed value formatted for the table (``no requests`` without data)."""
        return self.threshold.format_value(self.observed)


def parse(expression: str) -> Threshold:
    """Parses one ``[METHOD NAME:] METRIC OP VALUE[UNIT]`` expression.

    Metric names and units are case-insensitive and spaces may surround every token. METRIC is a
    latency in ms (``pNN`` with 0 < NN <= 100 such as ``p95`` or ``p99.9``, ``median``, ``avg``,
    ``min``, ``max``; units ``ms`` (default), ``s``, ``us``), ``fail_ratio`` (0..1, or a
    percentage with ``%``), ``failures`` or ``requests`` (counts) or ``rps`` (requests per second
    over the run). OP is ``<``, ``<=``, ``>`` or ``>=``. The scope names a stats row, method first
    (``GET /api/articles: p99<50ms``); the condition never contains a colon, so the last one ends
    the scope and names may contain colons. Without a scope the "Aggregated" row is checked.

    Args:
        expression: The expression.

    Returns:
        The Threshold.

    Raises:
        ThresholdError: (a ValueError) naming the expression and what is wrong with it.
    """
    text = expression.strip()

    def fail(reason: str) -> ThresholdError:
        return ThresholdError(text, reason)

    if not text:
        raise fail("the expression is empty")
    method = name = None
    scope, colon, condition = text.rpartition(":")
    if colon:
        method, name = _parse_scope(scope.strip(), fail)
    else:
        condition = text

    op_match = _OPERATOR.search(condition)
    if op_match is None:
        raise fail("missing operator: expected one of <, <=, >, >= between the metric and the value")
    operator = op_match.group()
    if operator not in _OPERATORS:
        raise fail(f"operator {operator!r} is not supported: use <, <=, > or >=")
    metric_text = condition[: op_match.start()].strip().lower()
    value_text = condition[op_match.end() :].strip()
    doubled = _OPERATOR.match(value_text)
    if doubled:
        raise fail(f"operator {operator + doubled.group()!r} is not supported: use <, <=, > or >=")

    if not metric_text:
        raise fail(f"missing metric before {operator!r}: expected one of {_METRIC_NAMES}")
    percentile = None
    percentile_match = _PERCENTILE.fullmatch(metric_text)
    if percentile_match:
        number = float(percentile_match.group(1) or percentile_match.group(2))
        if not 0 < number <= 100:
            raise fail(f"percentile {metric_text!r} is out of range: it must be above p0 and at most p100")
        metric, kind, percentile = f"p{number:g}", LATENCY, round(number / 100, 12)
    elif metric_text in _METRICS:
        metric, kind = metric_text, _METRICS[metric_text][0]
    else:
        raise fail(f"unknown metric {metric_text!r}: expected one of {_METRIC_NAMES}")

    if metric in _RUN_METRICS and name is not None:
        raise fail(f"{metric} is a figure of the whole run: write it without a 'METHOD NAME:' scope")
    if not value_text:
        raise fail(f"missing value after {operator!r}")
    value_match = _VALUE.fullmatch(value_text)
    if value_match is None:
        raise fail(f"bad number {value_text!r}: expected a non-negative number such as 200, 0.5 or 1.5s")
    number = float(value_match.group(1))
    unit = value_match.group(2).lower()
    limit = _convert(metric, kind, number, unit, fail)
    return Threshold(text, method, name, metric, kind, operator, limit, percentile)


def _parse_scope(scope: str, fail: Any) -> tuple[str, str]:
    if not scope:
        raise fail("the scope before ':' is empty: write 'METHOD NAME: METRIC OP VALUE', e.g. 'GET /: p95<200'")
    method, _, name = scope.partition(" ")
    name = name.strip()
    if method.upper() not in _HTTP_METHODS and not _CUSTOM_REQUEST_TYPE.fullmatch(method):
        raise fail(
            f"unknown method {method!r} in the scope: start it with an HTTP method (GET, POST, PUT, PATCH, "
            "DELETE, HEAD, OPTIONS) or a custom client's request type in capitals, e.g. 'GET /: p95<200'"
        )
    if not name:
        raise fail(f"the scope {scope!r} has a method but no request name: e.g. '{method} /: p95<200'")
    return method.upper(), name


def _convert(metric: str, kind: str, number: float, unit: str, fail: Any) -> float:
    # The limit in the metric's base unit: ms for latencies, 0..1 for fail_ratio.
    if kind == LATENCY:
        if unit not in _LATENCY_UNITS:
            raise fail(f"unit {unit!r} is not valid for {metric}: use ms (the default), s or us")
        return number * _LATENCY_UNITS[unit]
    if kind == RATIO:
        if unit == "%":
            if number > 100:
                raise fail(f"fail_ratio {number:g}% is above 100%")
            return number / 100
        if unit:
            raise fail(f"unit {unit!r} is not valid for fail_ratio: use a ratio (0.01) or a percentage (1%)")
        if number > 1:
            raise fail(f"fail_ratio {number:g} is above 1: write a ratio (0.05) or a percentage (5%)")
        return number
    if unit:
        what = "a count" if kind == COUNT else "requests per second"
        raise fail(f"unit {unit!r} is not valid for {metric}: it is {what}, write a plain number")
    return number


def parse_all(expressions: Iterable[str] | None) -> list[Threshold]:
    """Parses every expression (None means none); raises ``ThresholdError`` at the first bad one."""
    return [parse(e) for e in expressions or ()]


class _RunRow:
    """The "Aggregated" row with the figures of the whole run beside it (dropped iterations)."""

    def __init__(self, total: Any, dropped_iterations: int) -> None:
        self._total = total
        self.dropped_iterations = dropped_iterations

    def __getattr__(self, name: str) -> Any:
        return getattr(self._total, name)


def _rows(stats: Any) -> tuple[list[Any], Any]:
    entries, total, _errors, _start_time = stats.snapshot()
    figures = getattr(stats, "run_figures", None)
    dropped = figures()["dropped_iterations"] if callable(figures) else getattr(stats, "dropped_iterations", 0)
    return list(entries), _RunRow(total, dropped)


def _find_row(threshold: Threshold, entries: list[Any], total: Any) -> Any:
    if threshold.name is None:
        return total
    for row in entries:
        if row.name == threshold.name and str(row.method).upper() == threshold.method:
            return row
    return None


def _check(threshold: Threshold, entries: list[Any], total: Any) -> ThresholdResult:
    row = _find_row(threshold, entries, total)
    observed = None if row is None else threshold.observe(row)
    if observed is not None and math.isnan(observed):
        observed = None
    return ThresholdResult(threshold, observed, threshold.passes(observed))


def evaluate(thresholds: Iterable[Threshold], stats: Any) -> list[ThresholdResult]:
    """Checks every threshold against one snapshot of the statistics.

    A scoped row that does not exist, and a latency or fail_ratio without requests, fail with
    ``observed`` None (shown as "no requests"); counts and rps of an existing row are read as
    they are, zero included.

    Args:
        thresholds: Parsed thresholds.
        stats: A ``RequestStats`` (anything whose ``snapshot()`` returns the engine's
            ``(entries, total, errors, start_time)``).

    Returns:
        One ThresholdResult per threshold, in order.
    """
    entries, total = _rows(stats)
    return [_check(t, entries, total) for t in thresholds]


def certainly_broken(threshold: Threshold, stats: Any) -> bool:
    """Whether no later request can make the threshold pass again (``--threshold-abort``).

    That holds for ``max`` above an upper bound, ``min`` below a lower bound, and ``failures``,
    ``requests`` or ``dropped_iterations`` above an upper bound: those figures only move one way as requests come in.
    Percentiles, averages, ratios, rps and the other bounds can still recover, so they are never
    certainly broken before the end; neither is a scoped row that has no requests yet.

    Args:
        threshold: A parsed threshold.
        stats: A ``RequestStats``, as for ``evaluate``.
    """
    upper = threshold.operator in ("<", "<=")
    if threshold.metric in ("max", "failures", "requests", "dropped_iterations"):
        one_way = upper
    elif threshold.metric == "min":
        one_way = not upper
    else:
        one_way = False
    if not one_way:
        return False
    result = _check(threshold, *_rows(stats))
    return result.observed is not None and not result.passed


def format_results(results: list[ThresholdResult]) -> list[str]:
    """The "Thresholds" table's lines: a title, then expression, observed value and PASS/FAIL
    per threshold."""
    width = max([len("Threshold"), *(len(r.expression) for r in results)])
    observed_width = max([len("Observed"), *(len(r.observed_text) for r in results)])
    lines = ["Thresholds", f"{'Threshold':<{width}} | {'Observed':>{observed_width}} | Result"]
    lines.append(f"{'-' * width}-|-{'-' * observed_width}-|-------")
    for r in results:
        verdict = "PASS" if r.passed else "FAIL"
        lines.append(f"{r.expression:<{width}} | {r.observed_text:>{observed_width}} | {verdict}")
    return lines
