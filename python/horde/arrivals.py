"""The open workload model: iterations arrive at a set rate whatever the server does, and each is
run by a free user of a pool (k6's arrival-rate executors, Gatling's ``injectOpen``, wrk2's ``-R``).

An iteration is one task of a user. Users keep their state between iterations and run ``on_start``
once, as Locust users do; ``wait_time`` does not apply. An arrival that finds no user free starts a
new one while the pool is below its maximum. Once the pool is full, the arrival waits for the first
user to become free, for at most ``max_wait`` seconds, and is then dropped (and counted); with
``max_wait=0`` it is dropped at once, as k6 does. The first request of an iteration is timed from
the iteration's scheduled start rather than from when a user got to send it, so a stalled server
shows in the response times as the traffic that piled up behind it (no coordinated omission, as
with wrk2); the engine keeps the uncorrected service time beside it.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import gevent
import gevent.event
from greenlet import getcurrent

if TYPE_CHECKING:
    from horde.runners import Runner
    from horde.user import User

logger = logging.getLogger(__name__)

DISTRIBUTIONS = ("even", "poisson")

#: How early (s) an arrival may be handed out. gevent's timers wake up to a millisecond late (the
#: event loop waits in whole milliseconds, rounded up), so each arrival would start late by half
#: a millisecond on average, which the corrected response times would then count as the server's.
#: Handing out what is due within this slack instead keeps the starts within a millisecond either
#: side of the schedule, and a request sent early is timed from when it was sent (the engine never
#: counts a negative lateness), so no response time comes out shorter than its service time.
SLACK = 0.001

#: Pauses of the scheduler longer than this (s) can be cut short by a change of rate.
LONG_PAUSE = 0.05

#: Seconds the first arrival waits at most for the users started up front to be ready.
READY_TIMEOUT = 30.0

#: Seconds an arrival waits by default for a free user when the pool is full, before it is dropped.
DEFAULT_MAX_WAIT = 1.0


def check_rate(rate: Any, what: str = "arrival rate") -> float:
    """``rate`` as a float of iterations per second, or ValueError saying why it is not one."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise ValueError(f"{what} must be a number of iterations per second, not {rate!r}")
    rate = float(rate)
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"{what} must be a finite number >= 0, not {rate!r}")
    return rate


class Schedule:
    """When iterations are due: evenly spaced (every 1/rate s) or as a Poisson process (gaps drawn
    from an exponential distribution with mean 1/rate), at a rate that may change as it goes.

    Args:
        rate: Iterations per second (0: none until the rate changes).
        distribution: "even" or "poisson".
        start: When the first iteration is due (``time.perf_counter()`` seconds).
    """

    def __init__(self, rate: float, distribution: str = "even", start: float | None = None) -> None:
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, not {distribution!r}")
        self.distribution = distribution
        self.rate = check_rate(rate)
        # Even spacing counts from a base, not by adding 1/rate again and again, so that rounding
        # errors cannot add up over millions of arrivals.
        self._base = time.perf_counter() if start is None else start
        self._k = 0
        self._last: float | None = None
        self.next_time = self._base if self.rate > 0 else math.inf

    def set_rate(self, rate: float, now: float) -> None:
        """Changes the rate from now on: the next arrival comes 1/rate after the last one (not
        before now), or, for a Poisson process, after a fresh gap from now."""
        rate = check_rate(rate)
        if rate == self.rate:
            return
        self.rate = rate
        if rate <= 0:
            self.next_time = math.inf
            return
        if self.distribution == "even":
            following = self._last + 1 / rate if self._last is not None else now
            self._base, self._k = max(following, now), 0
            self.next_time = self._base
        else:
            self.next_time = now + random.expovariate(rate)

    def due(self, now: float) -> Iterator[float]:
        """The scheduled times up to ``now``, in order; each is consumed as it is yielded."""
        while self.next_time <= now:
            due = self._last = self.next_time
            self._k += 1
            if self.distribution == "even":
                self.next_time = self._base + self._k / self.rate
            else:
                self.next_time = due + random.expovariate(self.rate)
            yield due


class Arrivals:
    """The open model of one run: the schedule, the pool of users that takes the arrivals, and
    the counts (every scheduled arrival is either started by a user or dropped).

    Args:
        runner: The runner whose users make up the pool.
        rate: Iterations per second.
        users: Users started before the first arrival (k6's preAllocatedVUs).
        max_users: The most users the pool may grow to (k6's maxVUs); at least ``users``.
        distribution: "even" (arrivals 1/rate apart) or "poisson".
        max_wait: Seconds an arrival waits for a free user when the pool is full before it is
            dropped (0: at once).
    """

    def __init__(
        self,
        runner: Runner,
        rate: float,
        users: int,
        max_users: int,
        distribution: str = "even",
        max_wait: float = DEFAULT_MAX_WAIT,
    ) -> None:
        self.runner = runner
        self.rate = check_rate(rate)
        self.users = users
        self.max_users = max(max_users, users)
        self.distribution = distribution
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, not {distribution!r}")
        if isinstance(max_wait, bool) or not isinstance(max_wait, (int, float)) or not 0 <= max_wait < math.inf:
            raise ValueError(f"max_wait must be a number of seconds >= 0, not {max_wait!r}")
        self.max_wait = float(max_wait)
        # Every scheduled arrival is started (handed to a user), dropped, or still waiting.
        self.scheduled = 0
        self.started = 0
        self.dropped = 0
        self.schedule: Schedule | None = None
        # Users waiting for an arrival, oldest first (each takes the next in turn).
        self._free: deque[Any] = deque()
        # Arrivals waiting for a user (the pool is full), oldest first: their scheduled starts.
        self._backlog: deque[float] = deque()
        self._rescheduled = gevent.event.Event()
        self._greenlet: gevent.Greenlet | None = None
        self.stopped = False
        self._warned_drop = False
        self._hub = gevent.get_hub()

    # -- the users' side ----------------------------------------------------------------------

    def next_iteration(self, user: User) -> None:
        """Called by a user between iterations (where it would otherwise wait): returns when the
        next arrival is handed to it, with the arrival's scheduled start noted on the user."""
        pending = user._pending_arrival
        if pending is not None:
            user._pending_arrival = None
            scheduled = pending
        elif self._backlog and self._take_backlog():
            scheduled = self._backlog.popleft()
            self.started += 1
        else:
            self._free.append(getcurrent())
            scheduled = self._hub.switch()
        user._iteration_start = scheduled

    def _take_backlog(self) -> bool:
        """Drops the waiting arrivals that waited too long; whether one is left to take."""
        self._expire(time.perf_counter())
        return bool(self._backlog)

    # -- the runner's side ----------------------------------------------------------------------

    def begin(self) -> None:
        """Starts scheduling arrivals once the initial users are ready for them."""
        if self._greenlet is None and not self.stopped:
            self._greenlet = self.runner.greenlet.spawn(self._run)

    def _wait_for_pool(self) -> None:
        # The users just spawned have not run yet: the first arrivals would find none free and be
        # dropped. Like k6's pre-allocated VUs, the pool is ready first: every user has run its
        # on_start and is waiting (a user still busy after READY_TIMEOUT s takes arrivals later).
        deadline = time.perf_counter() + READY_TIMEOUT
        while time.perf_counter() < deadline:
            live = sum(1 for g in self.runner.user_greenlets if not g.dead)
            if sum(1 for g in self._free if not g.dead) >= live:
                return
            gevent.sleep(0.001)
        logger.warning(f"Starting arrivals while some users are still in on_start after {READY_TIMEOUT:g} s")

    def update(self, rate: float, max_users: int | None = None) -> None:
        """Changes the rate (from the next arrival on) and, if given, the pool's maximum."""
        self.rate = check_rate(rate)
        if max_users is not None:
            self.max_users = max(max_users, self.users)
        if self.schedule is not None:
            self.schedule.set_rate(self.rate, time.perf_counter())
            self._rescheduled.set()

    def stop(self) -> None:
        """Stops scheduling arrivals (for good: a new test makes new Arrivals). Arrivals still
        waiting for a user never start: they count as dropped."""
        self.stopped = True
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
        if self._backlog:
            self._count_dropped(len(self._backlog))
            self._backlog.clear()

    def _run(self) -> None:
        self._wait_for_pool()
        schedule = self.schedule = Schedule(self.rate, self.distribution)
        # stop() kills this greenlet without blocking; a timer that woke it first still lets it
        # run a pass, which must then hand out nothing (stop has counted the backlog already).
        while not self.stopped:
            now = time.perf_counter()
            for scheduled in schedule.due(now + SLACK):
                if self.stopped:
                    return
                self.scheduled += 1
                self._assign(scheduled)
            if self._backlog:
                self._expire(now)
            # Sleeping 0 when late still lets the users run before the next batch is handed out.
            wake = schedule.next_time - SLACK
            if self._backlog:
                wake = min(wake, self._backlog[0] + self.max_wait)
            pause = wake - time.perf_counter()
            if pause < LONG_PAUSE:
                gevent.sleep(max(0.0, pause))
            else:
                # A long pause (a low rate, or 0) ends early when the rate changes (update).
                self._rescheduled.wait(min(pause, 3600.0))
                self._rescheduled.clear()

    def _assign(self, scheduled: float) -> None:
        free = self._free
        while free:
            glet = free.popleft()
            if not glet.dead:
                self._hub.loop.run_callback(glet.switch, scheduled)
                self.started += 1
                return
        if len(self.runner.user_greenlets) < self.max_users:
            self._grow(scheduled)
            self.started += 1
        elif self.max_wait > 0:
            self._backlog.append(scheduled)
        else:
            self._count_dropped(1)

    def _expire(self, now: float) -> None:
        backlog = self._backlog
        oldest = now - self.max_wait
        expired = 0
        while backlog and backlog[0] < oldest:
            backlog.popleft()
            expired += 1
        if expired:
            self._count_dropped(expired)

    def _count_dropped(self, n: int) -> None:
        self.dropped += n
        self.runner.stats.record_dropped_iterations(n)
        if not self._warned_drop:
            self._warned_drop = True
            waited = f"within {self.max_wait:g} s" if self.max_wait > 0 else "at once"
            logger.warning(
                f"Dropping iterations: the pool is at its maximum of {self.max_users} users and no user became free "
                f"{waited}, so arrivals at {self.rate:g}/s cannot all start (the server or horde cannot keep up). "
                "They are counted as dropped iterations; raise --max-users or lower --arrival-rate."
            )

    def _grow(self, scheduled: float) -> None:
        # A user for this arrival: of a class picked by weight (fixed_count classes have theirs).
        classes = [c for c in self.runner.user_classes if not c.fixed_count]
        if not classes:
            classes = list(self.runner.user_classes)
        user_class = random.choices(classes, weights=[max(c.weight, 0) or 1e-9 for c in classes])[0]
        user = user_class(self.runner.environment)
        user._pool = self
        user._pending_arrival = scheduled
        user.start(self.runner.user_greenlets)
