"""Waiting for the engine cooperatively.

Each thread that sends requests gets one ``Completions`` queue from the engine and one gevent io
watcher on its eventfd. A greenlet that sends a request stages it and parks. The first request
staged in a pass of the gevent loop schedules one loop callback that flushes every request staged
by then to the engine together: callbacks run before the loop blocks, so a staged request never
waits for I/O that cannot come. When the engine signals, the hub drains every finished request in
one call and switches to the first waiting greenlet; a greenlet that parks while results are still
waiting to be handed out switches straight to the next one, so a request costs one greenlet switch
into the user and one out of it instead of two round trips through the hub. The watcher holds a
reference on the loop only while requests are in flight, so an idle horde never keeps
``gevent.wait()`` from returning.

On one core the engine has no threads of its own (``_core.runtime_threads() == 0``): each bridge's
``Completions`` owns a runtime that this thread drives. The watcher then watches that runtime's
reactor, ``drain`` does the ready I/O before handing out results, the flush starts the requests,
and a timer turns the runtime every few milliseconds while requests are in flight, for timeouts.
"""

from __future__ import annotations

import os
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, cast

import gevent
from greenlet import getcurrent

from horde import _core

_READ = 1
# How often a local runtime is turned when no I/O wakes it: the resolution of request timeouts.
_TICK = 0.005


class _Watcher(Protocol):
    """A gevent loop watcher with its ``ref`` property, which types-gevent's watchers leave out."""

    ref: bool

    def start(self, callback: Callable[[], Any], /) -> None: ...

    def close(self) -> None: ...


class _Bridge:
    def __init__(self) -> None:
        self.completions = _core.Completions()
        self.in_flight = 0
        # Requests sent from this thread so far; a greenlet that sees it move has yielded since.
        self.calls = 0
        # Drained results not yet handed to their greenlets: (token, result) pairs.
        self.ready: deque = deque()
        self.hub = gevent.get_hub()
        self.watcher = cast(_Watcher, self.hub.loop.io(self.completions.fileno(), _READ))
        self.watcher.start(self._on_ready)
        self.watcher.ref = False
        self.flush: Callable[[], Any] = self.completions.flush
        if self.completions.local:
            self.flush = self._flush_local
            self.ticker = cast(_Watcher, self.hub.loop.timer(_TICK, _TICK))
            self.ticker.start(self._on_tick)
            self.ticker.ref = False

    def _flush_local(self) -> None:
        self.completions.flush()
        if len(self.completions):
            self._on_ready()

    def _on_tick(self) -> None:
        if self.in_flight:
            self._on_ready()

    def _on_ready(self) -> None:
        batch = self.completions.drain()
        self.in_flight -= len(batch)
        if self.in_flight <= 0:
            self.in_flight = 0
            self.watcher.ref = False
        ready = self.ready
        ready.extend(batch)
        # The greenlets switched to hand the rest on among themselves (see call); the hub is
        # switched back to when none is left, or when one of them waits for something else.
        while ready:
            token, result = ready.popleft()
            glet = token[0]
            if glet is not None:
                glet.switch(result)

    def wait(self, token: list[Any], first: bool) -> Any:
        """Waits for the result of the request that ``submit(self.completions, token, ...)`` has
        just staged, ``first`` being what it returned (true for the first request since the last
        flush). ``token`` is ``[getcurrent()]``, made by the caller for that submit."""
        # The token names the waiting greenlet until the wait ends, however it ends: a result
        # for a greenlet that was killed meanwhile is dropped, never delivered to a later wait.
        self.calls += 1
        if first:
            # The loop must now wait for the engine (the watcher lost its reference only when
            # nothing was in flight, hence nothing staged).
            self.hub.loop.run_callback(self.flush)
            self.watcher.ref = True
        self.in_flight += 1
        try:
            ready = self.ready
            while ready:
                other, result = ready.popleft()
                glet = other[0]
                if glet is not None:
                    return glet.switch(result)
            return self.hub.switch()
        finally:
            token[0] = None


# One bridge per gevent hub, that is per OS thread. Not a threading.local: gevent's monkey
# patching turns that into a per-greenlet local, and every user would get its own eventfd and
# flush, which defeats the batching.
_by_hub: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_last: list[Any] = [None, None]


def bridge() -> _Bridge:
    """This thread's bridge, created on first use (and anew in a forked child)."""
    # A greenlet spawned by gevent has its thread's hub as parent: comparing that is cheaper than
    # get_hub()'s thread-local lookup, which was 5% of a simple user's samples.
    last = _last[0]
    if last is not None and getcurrent().parent is last:
        return _last[1]
    hub = gevent.get_hub()
    if hub is last:
        return _last[1]
    b = _by_hub.get(hub)
    if b is None:
        b = _by_hub[hub] = _Bridge()
    _last[0], _last[1] = hub, b
    return b


def release(hub: Any) -> None:
    """Drops the bridge of ``hub``, which is about to be destroyed (a finished run's thread): its
    queue's eventfd would otherwise stay open for as long as the process, one per run."""
    if _last[0] is hub:
        _last[0] = _last[1] = None
    b = _by_hub.pop(hub, None)
    if b is not None:
        # The watchers' callbacks hold the bridge: closing them frees it, and with it the queue,
        # now rather than at the next garbage collection.
        b.watcher.close()
        ticker = getattr(b, "ticker", None)
        if ticker is not None:
            ticker.close()


def _forget_after_fork() -> None:
    # The child has a fresh engine runtime; completions for the parent's requests never arrive.
    _by_hub.clear()
    _last[0] = _last[1] = None


os.register_at_fork(after_in_child=_forget_after_fork)
