"""Locust's event hooks: ``events.request.add_listener(fn)`` and friends.

horde fires ``request`` from Python only when a listener is registered (``bool(hook)`` tells),
because the engine already logs every request into the stats without Python's help.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from horde.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopTest, StopUser

log = logging.getLogger(__name__)

# Exceptions a listener may raise on purpose; they reach whoever fired the event.
_PASS_THROUGH = (StopUser, StopTest, RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet)


class EventHook:
    """A list of listeners called with keyword arguments when the event fires."""

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
                log.exception("Uncaught exception in event handler %r", handler)
                from horde import log as horde_log

                horde_log.unhandled_greenlet_exception = True
