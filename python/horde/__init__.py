"""horde: run Locust locustfiles unchanged on a Rust engine.

The engine (``horde._core``) owns connections, request execution and statistics; this package
gives it Locust's Python API.
"""

from horde._core import __version__
from horde.clients import HttpSession, Response, ResponseContextManager
from horde.demo import DemoServer
from horde.event import EventHook
from horde.stats import RequestStats

__all__ = [
    "DemoServer",
    "EventHook",
    "HttpSession",
    "RequestStats",
    "Response",
    "ResponseContextManager",
    "__version__",
]
