"""Request statistics, kept by the engine in Rust (one HdrHistogram per method and name).

``RequestStats.log`` records an outcome decided in Python; requests sent through ``HttpSession``
are logged by the engine directly. ``snapshot()`` returns a consistent copy for reporting.
"""

from __future__ import annotations

from horde._core import RequestStats, StatsEntry

PERCENTILES_TO_REPORT = [0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0]

__all__ = ["PERCENTILES_TO_REPORT", "RequestStats", "StatsEntry"]
