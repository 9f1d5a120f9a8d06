"""``LoadTestShape``: a class whose ``tick()`` the runner calls about once a second to set the
user count and spawn rate over time, instead of fixed ``--users``/``--spawn-rate``; or, returning an
``ArrivalRate``, the rate of iterations of the open model (``horde.arrivals``).
``RampingArrivalRate`` is a ready-made shape of the latter, k6's ``ramping-arrival-rate``."""

from __future__ import annotations

import math
import time
from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

__all__ = ["ArrivalRate", "LoadTestShape", "LoadTestShapeMeta", "RampingArrivalRate"]

# Seconds between two ticks of a shape that returns an ArrivalRate (a user count's shape ticks
# every second, as in Locust): a ramp of rates then moves in small steps.
ARRIVAL_SHAPE_TICK = 0.1


class ArrivalRate(NamedTuple):
    """What a shape's ``tick()`` returns to run the open model: iterations per second, taken by
    users of a pool (see ``horde.arrivals``).

    Attributes:
        rate: Iterations per second (0 pauses the arrivals).
        users: Users started before the first arrival; only the first tick's value counts.
        max_users: The most users the pool may grow to when none is free (default: ``users``).
        distribution: "even" (default) or "poisson"; only the first tick's value counts.
    """

    rate: float
    users: int | None = None
    max_users: int | None = None
    distribution: str | None = None

    def checked(self) -> ArrivalRate:
        """Itself, or ValueError saying what is wrong with it."""
        from horde.arrivals import DISTRIBUTIONS, check_rate

        check_rate(self.rate, "a shape's arrival rate")
        for field in ("users", "max_users"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"a shape's ArrivalRate.{field} must be a whole number >= 0, not {value!r}")
        if self.distribution is not None and self.distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"a shape's ArrivalRate.distribution must be one of {DISTRIBUTIONS}, not {self.distribution!r}"
            )
        return self


class LoadTestShapeMeta(ABCMeta):
    """Makes every subclass concrete (``abstract = False``) unless its body says otherwise."""

    def __new__(mcs, classname: str, bases: tuple[type, ...], class_dict: dict[str, Any]) -> LoadTestShapeMeta:
        class_dict["abstract"] = class_dict.get("abstract", False)
        return super().__new__(mcs, classname, bases, class_dict)


class LoadTestShape(metaclass=LoadTestShapeMeta):
    """Base class of custom load shapes: subclass it and implement ``tick()``.

    Attributes:
        runner: The runner using the shape (set by the runner before the first tick).
        abstract: True on base classes that are not shapes to run.
        use_common_options: Show the users/spawn rate fields in the web UI's start form.

    Example::

        class Steps(LoadTestShape):
            def tick(self):
                run_time = self.get_run_time()
                if run_time > 60:
                    return None
                return (10 * (int(run_time) // 10 + 1), 10)
    """

    runner: Any = None
    abstract: ClassVar[bool] = True
    use_common_options: ClassVar[bool] = False

    def __init__(self) -> None:
        self.start_time = time.perf_counter()

    def reset_time(self) -> None:
        """Restarts the run time from 0."""
        self.start_time = time.perf_counter()

    def get_run_time(self) -> float:
        """Seconds since the shape started (or since ``reset_time()``)."""
        return time.perf_counter() - self.start_time

    def get_current_user_count(self) -> int:
        """The number of users running now, from the runner."""
        return self.runner.user_count

    @abstractmethod
    def tick(self) -> tuple[int, float] | tuple[int, float, list[type] | None] | ArrivalRate | None:
        """Returns what the load should be now: ``(user_count, spawn_rate)``, or
        ``(user_count, spawn_rate, user_classes)`` to spawn only those classes (None: all); or an
        ``ArrivalRate`` to run the open model at that rate; or None to stop the test."""


class RampingArrivalRate(LoadTestShape):
    """The arrival rate in stages, each moving linearly from the previous stage's rate to its own
    over its duration (k6's ``ramping-arrival-rate``, Gatling's ``rampUsersPerSec``); the test ends
    after the last stage. Subclass it with ``stages``, or make one with arguments.

    Args:
        stages: ``(duration, rate)`` pairs: seconds, and iterations per second at the stage's end.
        start_rate: The rate at the start of the first stage.
        users: Users started before the first arrival.
        max_users: The most users the pool may grow to (default: ``users``).
        distribution: "even" or "poisson".

    Example::

        class Ramp(RampingArrivalRate):
            stages = [(30, 100), (60, 100), (30, 0)]   # up to 100/s, hold a minute, down
            users, max_users = 20, 200
    """

    stages: ClassVar[Sequence[tuple[float, float]]] = ()
    start_rate: ClassVar[float] = 0.0
    users: ClassVar[int] = 10
    max_users: ClassVar[int | None] = None
    distribution: ClassVar[str] = "even"
    abstract = True

    def __init__(
        self,
        stages: Sequence[tuple[float, float]] | None = None,
        start_rate: float | None = None,
        users: int | None = None,
        max_users: int | None = None,
        distribution: str | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("stages", stages),
            ("start_rate", start_rate),
            ("users", users),
            ("max_users", max_users),
            ("distribution", distribution),
        ):
            if value is not None:
                setattr(self, name, value)
        for duration, rate in self.stages:
            if not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration >= 0):
                raise ValueError(f"a stage's duration must be seconds >= 0, not {duration!r}")
            ArrivalRate(rate).checked()

    def tick(self) -> ArrivalRate | None:
        elapsed = self.get_run_time()
        previous = self.start_rate
        for duration, rate in self.stages:
            if elapsed < duration:
                fraction = elapsed / duration if duration else 1.0
                now = previous + (rate - previous) * fraction
                return ArrivalRate(now, self.users, self.max_users, self.distribution)
            elapsed -= duration
            previous = rate
        return None
