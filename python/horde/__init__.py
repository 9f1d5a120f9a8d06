"""horde: run Locust locustfiles unchanged on a Rust engine.

The engine (``horde._core``) owns connections, request execution and statistics; this package
gives it Locust's Python API under Locust's names (``from horde import HttpUser, task, between``).
Names are imported on first use, so ``import horde`` stays cheap and patches nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

from horde._core import __version__
from horde.event import Events

#: The event hooks of the run (``locust.events``); the CLI's Environment uses this object.
events = Events()

_LAZY = {
    "User": "horde.user.users",
    "HttpUser": "horde.user.users",
    "FastHttpUser": "horde.contrib.fasthttp",
    "TaskSet": "horde.user.task",
    "task": "horde.user.task",
    "tag": "horde.user.task",
    "SequentialTaskSet": "horde.user.sequential_taskset",
    "MarkovTaskSet": "horde.user.markov_taskset",
    "transition": "horde.user.markov_taskset",
    "transitions": "horde.user.markov_taskset",
    "between": "horde.user.wait_time",
    "constant": "horde.user.wait_time",
    "constant_pacing": "horde.user.wait_time",
    "constant_throughput": "horde.user.wait_time",
    "poisson": "horde.user.wait_time",
    "LoadTestShape": "horde.shape",
    "run_single_user": "horde.debug",
    "HttpSession": "horde.clients",
    "Response": "horde.clients",
    "ResponseContextManager": "horde.clients",
    "DemoServer": "horde._core",
    "RequestStats": "horde.stats",
    "EventHook": "horde.event",
    # horde's own library API (not in Locust)
    "run": "horde.api",
    "start": "horde.api",
    "RunHandle": "horde.api",
    "Result": "horde.results",
    "load": "horde.results",
    "Locust": "horde.util.deprecation",
    "HttpLocust": "horde.util.deprecation",
}
_MODULES = {"wait_time": "horde.user.wait_time"}

__all__ = [
    "DemoServer",
    "EventHook",
    "FastHttpUser",
    "HttpLocust",
    "HttpSession",
    "HttpUser",
    "LoadTestShape",
    "Locust",
    "MarkovTaskSet",
    "RequestStats",
    "Response",
    "ResponseContextManager",
    "Result",
    "RunHandle",
    "SequentialTaskSet",
    "TaskSet",
    "User",
    "__version__",
    "between",
    "constant",
    "constant_pacing",
    "constant_throughput",
    "events",
    "load",
    "poisson",
    "run",
    "run_single_user",
    "start",
    "tag",
    "task",
    "transition",
    "transitions",
    "wait_time",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    else:
        raise AttributeError(f"module 'horde' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
