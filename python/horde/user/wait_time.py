"""Wait time functions: what a user (or TaskSet) sleeps between two tasks.

Each factory returns a function of the user (or TaskSet) instance that gives a number of seconds;
assign it as the class attribute ``wait_time``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

__all__ = ["between", "constant", "constant_pacing", "constant_throughput", "poisson"]


def between(min_wait: float, max_wait: float) -> Callable[[Any], float]:
    """Waits a uniformly random time between ``min_wait`` and ``max_wait`` seconds.

    Example::

        class MyUser(User):
            wait_time = between(3.0, 10.5)
    """
    span = max_wait - min_wait
    return lambda instance: min_wait + random.random() * span


def constant(wait_time: float) -> Callable[[Any], float]:
    """Always waits ``wait_time`` seconds.

    Example::

        class MyUser(User):
            wait_time = constant(3)
    """
    return lambda instance: wait_time


def constant_pacing(wait_time: float) -> Callable[[Any], float]:
    """Starts a task every ``wait_time`` seconds, whatever the task itself takes.

    The wait is ``wait_time`` minus the time spent since the previous wait ended, and 0 when a task
    ran longer than ``wait_time``. The bookkeeping lives on the instance the function is bound to
    (``_cp_last_run`` and ``_cp_last_wait_time``), so each user paces itself.

    Example::

        class MyUser(User):
            wait_time = constant_pacing(10)
    """

    def pacing(instance: Any) -> float:
        now = time.perf_counter()
        # Time since the previous call, minus the part of it that was our own sleep: the task's run time.
        ran_for = now - getattr(instance, "_cp_last_run", now) - getattr(instance, "_cp_last_wait_time", 0)
        instance._cp_last_wait_time = max(0.0, wait_time - ran_for)
        instance._cp_last_run = now
        return instance._cp_last_wait_time

    return pacing


def constant_throughput(task_runs_per_second: float) -> Callable[[Any], float]:
    """Paces tasks so that each user runs at most ``task_runs_per_second`` tasks per second (the
    inverse of ``constant_pacing``).

    Example::

        class MyUser(User):
            wait_time = constant_throughput(0.5)  # one task every 2 s per user

    Raises:
        ValueError: If ``task_runs_per_second`` is not positive.
    """
    if not task_runs_per_second > 0:
        raise ValueError(f"constant_throughput() requires a positive rate, got: {task_runs_per_second}")
    return constant_pacing(1 / task_runs_per_second)


def poisson(rate: float) -> Callable[[Any], float]:
    """Waits an exponentially distributed time with mean ``1 / rate`` seconds, so that the tasks of
    one user arrive as a Poisson process of ``rate`` per second.

    Raises:
        ValueError: If ``rate`` is not positive.

    Example::

        class MyUser(User):
            wait_time = poisson(2)  # on average two tasks per second, at random moments
    """
    if not rate > 0:
        raise ValueError(f"poisson() requires a positive rate, got: {rate}")
    return lambda instance: random.expovariate(rate)
