"""Waiting for the engine cooperatively.

Each thread that sends requests gets one ``Completions`` queue from the engine and one gevent io
watcher on its eventfd. A greenlet that sends a request stages it and parks on a gevent ``Waiter``.
The first request staged in a pass of the gevent loop schedules one loop callback that flushes
every request staged by then to the engine together: callbacks run before the loop blocks, so a
staged request never waits for I/O that cannot come. When the engine signals, the hub drains every
finished request in one call and switches to each waiter. The watcher holds a reference on the loop
only while requests are in flight, so an idle horde never keeps ``gevent.wait()`` from returning.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any

import gevent
from gevent.hub import Waiter

from horde import _core

_READ = 1


class _Bridge:
    def __init__(self) -> None:
        self.completions = _core.Completions()
        self.in_flight = 0
        # Requests sent from this thread so far; a greenlet that sees it move has yielded since.
        self.calls = 0
        self.hub = gevent.get_hub()
        self.watcher = self.hub.loop.io(self.completions.fileno(), _READ)
        self.watcher.start(self._on_ready)
        self.watcher.ref = False

    def _on_ready(self) -> None:
        batch = self.completions.drain()
        self.in_flight -= len(batch)
        if self.in_flight <= 0:
            self.in_flight = 0
            self.watcher.ref = False
        for waiter, result in batch:
            waiter.switch(result)

    def call(self, submit: Callable[..., bool], *args: Any) -> Any:
        """Runs ``submit(completions, waiter, *args)`` (which stages a request) and waits for its
        result."""
        waiter = Waiter(self.hub)
        self.calls += 1
        if submit(self.completions, waiter, *args):
            self.hub.loop.run_callback(self.completions.flush)
        self.in_flight += 1
        if not self.watcher.ref:
            self.watcher.ref = True
        return waiter.get()


# One bridge per gevent hub, that is per OS thread. Not a threading.local: gevent's monkey
# patching turns that into a per-greenlet local, and every user would get its own eventfd and
# flush, which defeats the batching.
_by_hub: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_last: list[Any] = [None, None]


def bridge() -> _Bridge:
    """This thread's bridge, created on first use (and anew in a forked child)."""
    hub = gevent.get_hub()
    if hub is _last[0]:
        return _last[1]
    b = _by_hub.get(hub)
    if b is None:
        b = _by_hub[hub] = _Bridge()
    _last[0], _last[1] = hub, b
    return b


def _forget_after_fork() -> None:
    # The child has a fresh engine runtime; completions for the parent's requests never arrive.
    _by_hub.clear()
    _last[0] = _last[1] = None


os.register_at_fork(after_in_child=_forget_after_fork)
