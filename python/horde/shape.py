"""``LoadTestShape``: a class whose ``tick()`` the runner calls about once a second to set the
user count and spawn rate over time, instead of fixed ``--users``/``--spawn-rate``."""

from __future__ import annotations

import time
from abc import ABCMeta, abstractmethod
from typing import Any, ClassVar

__all__ = ["LoadTestShape", "LoadTestShapeMeta"]


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
    def tick(self) -> tuple[int, float] | tuple[int, float, list[type] | None] | None:
        """Returns what the load should be now: ``(user_count, spawn_rate)``, or
        ``(user_count, spawn_rate, user_classes)`` to spawn only those classes (None: all), or None
        to stop the test."""
