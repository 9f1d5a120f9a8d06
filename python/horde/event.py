"""Locust's event hooks: ``events.request.add_listener(fn)`` and friends.

Every request is reported through the ``request`` event, and the runner's listener on it logs the
request into the stats, as in Locust. An HTTP client whose hook has no other listener lets the
engine do that logging instead of calling it (``horde.stats.StatsListener``).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Generator
from contextlib import contextmanager
from typing import Any

from horde import log
from horde.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopTest, StopUser

# Exceptions a listener may raise on purpose; they reach whoever fired the event.
_PASS_THROUGH = (StopUser, StopTest, RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet)


class EventHook:
    """A list of listeners called with keyword arguments when the event fires.

    ``add_listener`` returns the handler, so it works as a decorator. A listener's exception is
    logged and makes the run end with exit code 2, except Locust's control-flow exceptions
    (``StopUser``, ``StopTest``, ``RescheduleTask``, ...), which propagate to the firing code.
    """

    def __init__(self) -> None:
        self._handlers: list[Callable[..., Any]] = []

    def add_listener(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        self._handlers.append(handler)
        return handler

    def remove_listener(self, handler: Callable[..., Any]) -> None:
        self._handlers.remove(handler)

    def __bool__(self) -> bool:
        return bool(self._handlers)

    def fire(self, *, reverse: bool = False, **kwargs: Any) -> None:
        handlers = reversed(self._handlers) if reverse else self._handlers
        for handler in list(handlers):
            try:
                handler(**kwargs)
            except _PASS_THROUGH:
                raise
            except Exception:
                logging.error("Uncaught exception in event handler: \n%s", traceback.format_exc())
                log.unhandled_greenlet_exception = True

    @contextmanager
    def measure(
        self, request_type: str, name: str, response_length: int = 0, context: dict | None = None
    ) -> Generator[dict[str, Any], None, None]:
        """Times the block and fires the event; an exception in the block marks the request failed.

        Example::

            with self.environment.events.request.measure("grpc", "GetUser") as meta:
                stub.GetUser(...)
        """
        start_time = time.time()
        start = time.perf_counter()
        meta: dict[str, Any] = {
            "request_type": request_type,
            "name": name,
            "response_length": response_length,
            "context": context or {},
            "exception": None,
            "start_time": start_time,
        }
        try:
            yield meta
        except Exception as e:
            meta["exception"] = e
        finally:
            meta["response_time"] = (time.perf_counter() - start) * 1000
            self.fire(**meta)


class DeprecatedEventHook(EventHook):
    """An event kept for old locustfiles; adding a listener logs ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def add_listener(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        logging.warning(self.message)
        return super().add_listener(handler)


class Events:
    """Every event hook of a run (``environment.events``), with Locust's names and arguments.

    - ``request``: request_type, name, response_time, response_length, response, context, exception,
      start_time, url
    - ``user_error``: user_instance, exception, tb
    - ``report_to_master``: client_id, data;  ``worker_report``: client_id, data
    - ``worker_connect``: client_id;  ``spawning_complete``: user_count
    - ``quitting``: environment;  ``quit``: exit_code
    - ``init``: environment;  ``init_command_line_parser``: parser
    - ``test_start``, ``test_stopping``, ``test_stop``: environment;  ``reset_stats``: (none)
    - ``cpu_warning``: environment, cpu_usage;  ``usage_monitor``: environment, cpu_usage, memory_usage
    - ``heartbeat_sent``, ``heartbeat_received``: client_id, timestamp
    """

    request: EventHook
    user_error: EventHook
    report_to_master: EventHook
    worker_report: EventHook
    worker_connect: EventHook
    spawning_complete: EventHook
    quitting: EventHook
    quit: EventHook
    init: EventHook
    init_command_line_parser: EventHook
    test_start: EventHook
    test_stopping: EventHook
    test_stop: EventHook
    reset_stats: EventHook
    cpu_warning: EventHook
    heartbeat_sent: EventHook
    heartbeat_received: EventHook
    usage_monitor: EventHook

    def __init__(self) -> None:
        for name in Events.__annotations__:
            setattr(self, name, EventHook())
