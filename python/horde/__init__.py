"""horde: run Locust locustfiles unchanged on a Rust engine.

The engine (``horde._core``) owns connections, request execution and statistics; this package
gives it Locust's Python API under Locust's names (``from horde import HttpUser, task, between``).
Names are imported on first use, so ``import horde`` stays cheap and patches nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from horde._core import __version__
from horde.event import Events

if TYPE_CHECKING:
    # What __getattr__ below imports on first use, for type checkers and IDEs.
    from horde._core import DemoServer as DemoServer
    from horde.api import RunHandle as RunHandle
    from horde.api import run as run
    from horde.api import start as start
    from horde.clients import HttpSession as HttpSession
    from horde.clients import Response as Response
    from horde.clients import ResponseContextManager as ResponseContextManager
    from horde.contrib.fasthttp import FastHttpUser as FastHttpUser
    from horde.debug import run_single_user as run_single_user
    from horde.event import EventHook as EventHook
    from horde.results import Result as Result
    from horde.results import load as load
    from horde.shape import ArrivalRate as ArrivalRate
    from horde.shape import LoadTestShape as LoadTestShape
    from horde.shape import RampingArrivalRate as RampingArrivalRate
    from horde.stats import RequestStats as RequestStats
    from horde.user import wait_time as wait_time
    from horde.user.markov_taskset import MarkovTaskSet as MarkovTaskSet
    from horde.user.markov_taskset import transition as transition
    from horde.user.markov_taskset import transitions as transitions
    from horde.user.sequential_taskset import SequentialTaskSet as SequentialTaskSet
    from horde.user.task import TaskSet as TaskSet
    from horde.user.task import tag as tag
    from horde.user.task import task as task
    from horde.user.users import HttpUser as HttpUser
    from horde.user.users import User as User
    from horde.user.wait_time import between as between
    from horde.user.wait_time import constant as constant
    from horde.user.wait_time import constant_pacing as constant_pacing
    from horde.user.wait_time import constant_throughput as constant_throughput
    from horde.user.wait_time import poisson as poisson
    from horde.util.deprecation import HttpLocust as HttpLocust
    from horde.util.deprecation import Locust as Locust

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
    "ArrivalRate": "horde.shape",
    "RampingArrivalRate": "horde.shape",
    "Locust": "horde.util.deprecation",
    "HttpLocust": "horde.util.deprecation",
}
_MODULES = {"wait_time": "horde.user.wait_time"}

__all__ = [
    "ArrivalRate",
    "DemoServer",
    "EventHook",
    "FastHttpUser",
    "HttpLocust",
    "HttpSession",
    "HttpUser",
    "LoadTestShape",
    "Locust",
    "MarkovTaskSet",
    "RampingArrivalRate",
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
