"""Runners start and stop simulated users (Locust's ``locust.runners``).

``LocalRunner`` runs every user of the test as a greenlet in this process; the HTTP work of all of
them is done by the engine. ``MasterRunner`` runs no users: workers connect to it, it tells each how
many users of each class to run (``horde.dispatch``, as Locust's master decides) and merges their
reports. ``WorkerRunner`` runs the users a master asks for. Master and workers speak Locust 2.47's
protocol (``horde.rpc``), so either side may be a real Locust node.

Unlike Locust, each node's socket, heartbeats and stats reports live on an OS thread of their own
(``horde.rpc.zmqrpc``): a worker whose users keep its gevent loop busy still answers on time, and a
master answers heartbeats and merges reports in the engine, without Python.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import resource
import socket
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, ItemsView, Iterator, MutableMapping, ValuesView
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import gevent
import greenlet
from gevent.event import Event
from gevent.pool import Group

from horde import log
from horde.arrivals import DEFAULT_MAX_WAIT, Arrivals
from horde.dispatch import UsersDispatcher
from horde.exception import RPCError, RPCReceiveError, StopTest
from horde.log import greenlet_exception_logger
from horde.rpc import Message, rpc
from horde.rpc.zmqrpc import AnsweredHeartbeat, MergedReport
from horde.shape import ARRIVAL_SHAPE_TICK, ArrivalRate
from horde.stats import StatsError, StatsListener, run_figures

if TYPE_CHECKING:
    from horde.env import Environment
    from horde.stats import RequestStats
    from horde.user import User

logger = logging.getLogger(__name__)

STATE_INIT, STATE_SPAWNING, STATE_RUNNING, STATE_CLEANUP, STATE_STOPPING, STATE_STOPPED, STATE_MISSING = [
    "ready",
    "spawning",
    "running",
    "cleanup",
    "stopping",
    "stopped",
    "missing",
]
WORKER_REPORT_INTERVAL = 3.0
WORKER_LOG_REPORT_INTERVAL = 10
CPU_MONITOR_INTERVAL = 10.0
CPU_WARNING_THRESHOLD = 90
HEARTBEAT_INTERVAL = 1
HEARTBEAT_LIVENESS = 3
HEARTBEAT_DEAD_INTERNAL = -60
MASTER_HEARTBEAT_TIMEOUT = 60
FALLBACK_INTERVAL = 5
CONNECT_TIMEOUT = 5
CONNECT_RETRY_COUNT = 60

# The protocol version this node announces: Locust's, which horde speaks (a Locust master warns
# about workers of another major.minor version).
PROTOCOL_VERSION = "2.47.0"


def master_heartbeat_timeout() -> float:
    """Seconds a worker waits without a heartbeat reply before it concludes its master is gone and
    quits: ``MASTER_HEARTBEAT_TIMEOUT`` (60, as Locust), or ``HORDE_MASTER_HEARTBEAT_TIMEOUT``."""
    value = os.environ.get("HORDE_MASTER_HEARTBEAT_TIMEOUT")
    if value:
        try:
            return max(float(value), 1.0)
        except ValueError:
            logger.warning(
                f"HORDE_MASTER_HEARTBEAT_TIMEOUT={value!r} is not a number; using {MASTER_HEARTBEAT_TIMEOUT}"
            )
    return MASTER_HEARTBEAT_TIMEOUT


class _OneAtATime:
    """A step of the runner (stopping the test, quitting) that several greenlets may ask for at
    the same moment: a signal's shutdown while the ``-t`` timer is stopping the users, the last
    worker quitting during a Ctrl-C. The first runs it; the others wait for it to end instead of
    running it a second time (``test_stop`` fired twice, ``--stop-timeout`` waited twice, a
    summary printed before the workers' last reports are in)."""

    def __init__(self) -> None:
        self._owner: Any = None
        self._done: Event | None = None

    @property
    def underway(self) -> bool:
        return self._done is not None

    def run(self, step: Callable[[], None]) -> None:
        done = self._done
        if done is not None:
            if self._owner is not greenlet.getcurrent():  # else: re-entered from the step itself
                done.wait()
            return
        self._owner, self._done = greenlet.getcurrent(), Event()
        done = self._done
        try:
            step()
        finally:
            # Set even when the step's greenlet is killed (quit kills the runner's own greenlets).
            self._owner = self._done = None
            done.set()


def locust_exception_handler(environment: Environment) -> Callable[[Any], None]:
    """Links to runner greenlets: ``StopTest`` ends the test; anything else is logged (exit 2)."""
    log_it = greenlet_exception_logger(logger)

    def handler(g: Any) -> None:
        if g.exc_info[0] is StopTest:
            logger.error(g.exc_info[1])
            logger.warning("Stopping Locust...")
            options = environment.parsed_options
            assert environment.runner is not None  # this handler is linked to the runner's greenlets
            if options is None or getattr(options, "headless", True):
                environment.runner.quit()
            else:
                environment.runner.stop()
        else:
            log_it(g)

    return handler


class Runner:
    """Starts and stops the users of one test. Create it through ``Environment.create_local_runner``."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.user_greenlets = Group()
        self.greenlet = Group()
        self.state = STATE_INIT
        self.spawning_greenlet: gevent.Greenlet | None = None
        self.shape_greenlet: gevent.Greenlet | None = None
        self.shape_last_tick: Any = None
        self.current_cpu_usage = 0.0
        self.cpu_warning_emitted = False
        self.worker_cpu_warning_emitted = False
        self._warned_folded = False
        self.current_memory_usage = 0
        self.exceptions: dict[int, dict[str, Any]] = {}
        self.target_user_classes_count: dict[str, int] = {}
        self.target_user_count = 0
        self.custom_messages: dict[str, tuple[Callable, bool]] = {}
        self.connection_broken = False
        self.final_user_classes_count: dict[str, int] = {}
        self._users_dispatcher: UsersDispatcher | None = None
        # The open model's arrivals (horde.arrivals), when the test runs at an arrival rate.
        self.arrivals: Arrivals | None = None
        # A run keeps only the total's current percentiles each second until something asks for
        # an entry's (see RequestStats.cache_entries_response_times): copying thousands of rows
        # every second cost more than the requests when URLs made a name each.
        self.stats.cache_entries_response_times = False
        self._cpu = _CpuMeter()
        self._stopping = _OneAtATime()
        self._quitting_step = _OneAtATime()
        # Users given --stop-timeout to finish their task, while a stop waits for them; and
        # whether the stop under way was told not to wait (stop_now).
        self._finishing: Group | None = None
        self._hurry = False
        self.greenlet.spawn(self.monitor_cpu_and_memory).link_exception(locust_exception_handler(environment))
        # Every request reported through the request event is logged into the stats by this one
        # listener, as in Locust (HttpSession lets the engine do it when no other listener is there).
        self.stats_listener = StatsListener(environment.stats)
        environment.events.request.add_listener(self.stats_listener)

        def on_spawning_complete(user_count: int) -> None:
            self.update_state(STATE_RUNNING)
            if environment.reset_stats:
                logger.info("Resetting stats\n")
                self.stats.reset_all()

        environment.events.spawning_complete.add_listener(on_spawning_complete)

    @property
    def user_classes(self) -> list[type[User]]:
        return self.environment.user_classes

    @property
    def user_classes_by_name(self) -> dict[str, type[User]]:
        return self.environment.user_classes_by_name

    @property
    def stats(self) -> RequestStats:
        return self.environment.stats

    @property
    def errors(self) -> dict:
        return self.stats.errors

    @property
    def user_count(self) -> int:
        """Users running now."""
        return len(self.user_greenlets)

    @property
    def user_classes_count(self) -> dict[str, int]:
        """Users running now, per class name."""
        counts = {u.__name__: 0 for u in self.user_classes}
        for g in self.user_greenlets:
            if g.args:
                name = type(g.args[0]).__name__
                counts[name] = counts.get(name, 0) + 1
        return counts

    def update_state(self, new_state: str) -> None:
        self.state = new_state

    def cpu_log_warning(self) -> bool:
        """Called at the end of the test: repeats, in short, the warning that horde was the
        bottleneck (its own delay larger than the response times) if one was raised."""
        if self.cpu_warning_emitted:
            logger.warning(
                "horde's own delay was larger than the server's response times at some point during the test: "
                "horde was the bottleneck then (see the own delay in the summary)"
            )
        return self.cpu_warning_emitted

    def spawn_users(self, user_classes_spawn_count: dict[str, int], wait: bool = False) -> list[User]:
        if self.state in (STATE_INIT, STATE_STOPPED):
            self.update_state(STATE_SPAWNING)
        new_users: list[User] = []
        for class_name, count in user_classes_spawn_count.items():
            user_class = self.user_classes_by_name[class_name]
            for _ in range(count):
                user = user_class(self.environment)
                if self.arrivals is not None:
                    user._pool = self.arrivals
                if not hasattr(user, "environment"):
                    raise AttributeError(
                        f"Attribute 'environment' is missing on user {class_name}. Perhaps you defined your own "
                        "__init__ and forgot to call the base constructor? (super().__init__(*args, **kwargs))"
                    )
                user.start(self.user_greenlets)
                new_users.append(user)
        if wait:
            self.user_greenlets.join()
            logger.info("All users stopped\n")
        return new_users

    def stop_users(self, user_classes_stop_count: dict[str, int]) -> None:
        """Stops that many users of each class, newest first; gracefully within --stop-timeout."""
        by_class: dict[str, list[User]] = {}
        for g in self.user_greenlets:
            if g.args:
                by_class.setdefault(type(g.args[0]).__name__, []).append(g.args[0])
        doomed: list[Any] = []
        graceful = Group()
        for class_name, count in user_classes_stop_count.items():
            users = by_class.get(class_name, [])
            for user in reversed(users[max(0, len(users) - count) :] if count else []):
                assert user.group is not None and user.greenlet is not None  # started: it is in user_greenlets
                if user.greenlet is greenlet.getcurrent():
                    # The user itself asked to stop the test: don't wait for our own death.
                    user.group.killone(user.greenlet, block=False)
                elif self.environment.stop_timeout and not user.stop(force=False):
                    graceful.add(user.greenlet)  # mid-task: it stops at its next wait()
                else:
                    doomed.append(user.greenlet)
        # One killall instead of a greenlet per user (as Locust spawns): stopping 15,000 users
        # that way costs over 100 MB of memory at the very end of a run.
        gevent.killall(doomed, block=True)
        for g in doomed:
            # The group drops dead greenlets from a later hub callback; the count must be right now.
            self.user_greenlets.discard(g)
        self._finishing = graceful
        try:
            if self._hurry:
                graceful.kill(block=True)
            elif not graceful.join(timeout=self.environment.stop_timeout):
                logger.info(
                    f"Not all users finished their tasks & terminated in {self.environment.stop_timeout} seconds. "
                    "Stopping them..."
                )
                graceful.kill(block=True)
        finally:
            self._finishing = None

    @property
    def stop_under_way(self) -> bool:
        """Whether the test is being stopped (its users may be finishing their task)."""
        return self._stopping.underway

    def stop_now(self) -> None:
        """Cuts short the ``--stop-timeout`` of the stop under way: users still finishing their
        task are killed now, and so are those it has yet to stop (a second Ctrl-C or SIGTERM).
        Without a stop under way, does nothing."""
        if not self._stopping.underway:
            return
        self._hurry = True
        finishing = self._finishing
        if finishing is not None and len(finishing):
            logger.info(f"Stopping the {len(finishing)} users still finishing their task now")
            finishing.kill(block=False)

    def monitor_cpu_and_memory(self) -> None:
        """Every CPU_MONITOR_INTERVAL seconds: the CPU use of the Python thread (which runs every
        user's code and limits a horde process long before the engine's threads do) and the RSS
        for the ``usage_monitor`` event and heartbeats; and whether horde is the bottleneck.

        Locust guesses that from CPU use above 90%, which a busy but keeping-up process also
        reaches. horde measures it: each request's own delay (queued in horde before it was
        written, and after its last byte before its user ran again) is warned about once it is
        larger than the server's response times (``RunFigures.own_delay_is_large``). The
        ``cpu_warning`` event still fires above 90% for plugins that listen to it."""
        while True:
            gevent.sleep(CPU_MONITOR_INTERVAL)
            self.current_cpu_usage = self._cpu.sample()
            self.current_memory_usage = _rss_bytes()
            if self.current_cpu_usage > CPU_WARNING_THRESHOLD:
                self.environment.events.cpu_warning.fire(environment=self.environment, cpu_usage=self.current_cpu_usage)
            figures = run_figures(self.stats)
            if not self.cpu_warning_emitted and figures.own_delay_is_large():
                logger.warning(figures.own_delay_warning())
                self.cpu_warning_emitted = True
            if figures.folded_requests and not self._warned_folded:
                logger.warning(figures.folded_warning())
                self._warned_folded = True
            self.environment.events.usage_monitor.fire(
                environment=self.environment,
                cpu_usage=self.current_cpu_usage,
                memory_usage=self.current_memory_usage,
            )

    def start(self, user_count: int, spawn_rate: float, wait: bool = False, user_classes: list | None = None) -> None:
        raise NotImplementedError

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        raise NotImplementedError

    def start_shape(self) -> None:
        """Runs the test as the environment's ``LoadTestShape`` dictates, ticking it every second."""
        if self.shape_greenlet:
            logger.info("There is an ongoing shape test running. Editing is disabled")
            return
        logger.info("Shape test starting.")
        self.update_state(STATE_INIT)
        self.shape_greenlet = self.greenlet.spawn(self.shape_worker)
        self.shape_greenlet.link_exception(locust_exception_handler(self.environment))
        if self.environment.shape_class is not None:
            self.environment.shape_class.reset_time()

    def shape_worker(self) -> None:
        logger.info("Shape worker starting")
        shape = self.environment.shape_class
        while self.state in (STATE_INIT, STATE_SPAWNING, STATE_RUNNING):
            started = time.time()
            tick = shape.tick() if shape is not None else None
            if tick is None:
                logger.info("Shape test stopping")
                options = self.environment.parsed_options
                if options is not None and getattr(options, "headless", False):
                    self.quit()
                else:
                    self.stop()
                self.shape_greenlet = None
                self.shape_last_tick = None
                return
            if isinstance(tick, ArrivalRate):
                try:
                    tick.checked()
                except ValueError as e:
                    self._bad_tick(shape, tick, e)
                    return
                self._shape_arrivals(tick)
                self.shape_last_tick = tick
                # A rate is followed more closely than a user count: ramps are smooth.
                gevent.sleep(max(ARRIVAL_SHAPE_TICK - (time.time() - started), 0))
                continue
            if tick != self.shape_last_tick:
                user_count, spawn_rate, classes = _user_count_tick(tick)
                logger.info("Shape test updating to %d users at %.2f spawn rate", user_count, spawn_rate)
                # Like Locust, this blocks until the ramp is done; a shape should allow for that.
                self.start(user_count=user_count, spawn_rate=spawn_rate, user_classes=classes)
                self.shape_last_tick = tick
            gevent.sleep(max(1 - (time.time() - started), 0))

    def _bad_tick(self, shape: Any, tick: Any, error: Exception) -> None:
        """A shape's tick that makes no sense ends the test with a clear message (exit code 2, as
        an unhandled error would)."""
        logger.error(f"{type(shape).__name__}.tick() returned {tick!r}: {error}; stopping the test")
        log.unhandled_greenlet_exception = True
        self.shape_greenlet = None
        self.quit()

    def _shape_arrivals(self, tick: ArrivalRate) -> None:
        """A shape's tick that gives an arrival rate: the first starts the open model, the next
        ones change its rate (and pool maximum)."""
        if self.arrivals is None:
            users = tick.users if tick.users is not None else 1
            max_users = tick.max_users if tick.max_users is not None else users
            logger.info(f"Shape test starting arrivals at {tick.rate:g}/s with {users} users (at most {max_users})")
            self.start_arrivals(tick.rate, users, max_users, tick.distribution or "even", spawn_rate=max(users, 1))
        elif tick != self.shape_last_tick:
            self.arrivals.update(tick.rate, tick.max_users)

    def start_arrivals(
        self,
        rate: float,
        users: int,
        max_users: int | None = None,
        distribution: str = "even",
        spawn_rate: float | None = None,
        max_wait: float | None = None,
    ) -> None:
        """Runs the test in the open model: ``users`` users are started (at ``spawn_rate``), then
        iterations arrive at ``rate`` per second, each taken by a free user; the pool grows up to
        ``max_users`` when none is free; beyond that an arrival waits up to ``max_wait`` seconds
        (default: --arrival-max-wait, else 1) for a free user and is then dropped (see
        horde.arrivals)."""
        raise NotImplementedError(f"{type(self).__name__} does not run the open model")

    def stop(self) -> None:
        """Stops every user (gracefully within --stop-timeout); the runner can start again. A
        stop asked for while another is under way waits for that one."""
        if self.state == STATE_STOPPED:
            return
        if not self._stopping.underway:
            self._hurry = False
        self._stopping.run(self._stop)

    def _stop(self) -> None:
        self.environment.events.test_stopping.fire(environment=self.environment)
        self.final_user_classes_count = {**self.user_classes_count}
        self.update_state(STATE_CLEANUP)
        if self.spawning_greenlet and not self.spawning_greenlet.ready():
            self.spawning_greenlet.kill(block=True)
        if self.environment.shape_class is not None and self.shape_greenlet is not greenlet.getcurrent():
            if self.shape_greenlet is not None:
                self.shape_greenlet.kill(block=True)
                self.shape_greenlet = None
            self.shape_last_tick = None
        if self.arrivals is not None:
            # Users parked waiting for an arrival are stopped below. The Arrivals stay, with their
            # counts, until the next test starts.
            self.arrivals.stop()
        self.stop_users(self.user_classes_count)
        self._users_dispatcher = None
        self.update_state(STATE_STOPPED)
        self.cpu_log_warning()
        self.environment.events.test_stop.fire(environment=self.environment)

    def quit(self) -> None:
        """Stops the test and every greenlet of the runner. A quit asked for while another is
        under way waits for that one to end."""
        self._quitting_step.run(self._quit)

    def _quit(self) -> None:
        self.stop()
        self.greenlet.kill(block=True)

    def _dispatcher_class(self) -> type[UsersDispatcher]:
        return self.environment.dispatcher_class or UsersDispatcher

    def log_exception(self, node_id: str, msg: str, formatted_tb: str) -> None:
        key = hash(formatted_tb)
        row = self.exceptions.setdefault(key, {"count": 0, "msg": msg, "traceback": formatted_tb, "nodes": set()})
        row["count"] += 1
        row["nodes"].add(node_id)

    def register_message(self, msg_type: str, listener: Callable, concurrent: bool = False) -> None:
        if msg_type in self.custom_messages:
            raise Exception(f"Tried to register listener method for {msg_type}, but it already had a listener!")
        self.custom_messages[msg_type] = (listener, concurrent)


class LocalRunner(Runner):
    """Runs the whole test in this process."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.worker_index = 0
        self.client_id = socket.gethostname() + "_" + uuid4().hex
        self.worker_count = 1
        self._local_worker_node = WorkerNode(id="local")

        def on_user_error(user_instance: Any, exception: BaseException, tb: Any) -> None:
            self.log_exception("local", str(exception), "".join(traceback.format_tb(tb)))

        environment.events.user_error.add_listener(on_user_error)

    def _start(self, user_count: int, spawn_rate: float, wait: bool = False, user_classes: list | None = None) -> None:
        self.target_user_count = user_count
        if self.state not in (STATE_RUNNING, STATE_SPAWNING):
            self.stats.clear_all()
            self.exceptions = {}
            self.cpu_warning_emitted = False
            self.worker_cpu_warning_emitted = False
            self.environment._filter_tasks_by_tags()
            self.environment.events.test_start.fire(environment=self.environment)
        if wait and user_count - self.user_count > spawn_rate:
            raise ValueError("wait is True but the amount of users to add is greater than the spawn rate")
        if self.environment.host:
            for user_class in self.user_classes:
                user_class.host = self.environment.host
        if self.state not in (STATE_INIT, STATE_STOPPED):
            self.update_state(STATE_SPAWNING)
        if self._users_dispatcher is None:
            self._users_dispatcher = self._dispatcher_class()(
                worker_nodes=[self._local_worker_node], user_classes=self.user_classes
            )
        logger.info("Ramping to %d users at a rate of %.2f per second", user_count, spawn_rate)
        self._users_dispatcher.new_dispatch(user_count, spawn_rate, user_classes)
        try:
            # The dispatcher paces the steps itself (it sleeps between them, as Locust's does).
            for dispatched in self._users_dispatcher:
                counts = dispatched[self._local_worker_node.id]
                running = self.user_classes_count
                spawn = {n: c - running.get(n, 0) for n, c in counts.items() if c > running.get(n, 0)}
                stop = {n: running.get(n, 0) - c for n, c in counts.items() if c < running.get(n, 0)}
                if wait:
                    self.stop_users(stop)
                    self.spawn_users(spawn, wait)
                else:
                    # Spawning first: stopping may block for up to --stop-timeout.
                    self.spawn_users(spawn, wait)
                    self.stop_users(stop)
                self._local_worker_node.user_classes_count = dict(counts)
        except KeyboardInterrupt:
            self.quit()
        logger.info(f"All users spawned: {_format_counts(self.user_classes_count)}")
        self.target_user_classes_count = self.user_classes_count
        self.environment.events.spawning_complete.fire(user_count=sum(self.target_user_classes_count.values()))
        if self.arrivals is not None:
            self.arrivals.begin()

    def start(self, user_count: int, spawn_rate: float, wait: bool = False, user_classes: list | None = None) -> None:
        """Ramps to ``user_count`` users at ``spawn_rate`` users/s (in a greenlet unless ``wait``)."""
        if self.arrivals is not None and self.state in (STATE_SPAWNING, STATE_RUNNING) and not self.arrivals.stopped:
            raise RuntimeError("an open-model test is running: stop it before starting one with a user count")
        # A closed-model test.
        self.arrivals = None
        self.stats.open_model = False
        self._spawn(user_count, spawn_rate, wait, user_classes)

    def _spawn(self, user_count: int, spawn_rate: float, wait: bool = False, user_classes: list | None = None) -> None:
        if spawn_rate > 100:
            logger.warning(
                "Your selected spawn rate is very high (>100), and this is known to sometimes cause issues. "
                "Do you really need to ramp up that fast?"
            )
        if self.spawning_greenlet:
            self.spawning_greenlet.kill(block=True)
        self.spawning_greenlet = self.greenlet.spawn(
            lambda: self._start(user_count, spawn_rate, wait=wait, user_classes=user_classes)
        )
        self.spawning_greenlet.link_exception(greenlet_exception_logger(logger))

    def stop(self) -> None:
        if self.state == STATE_STOPPED:
            return
        super().stop()

    def start_arrivals(
        self,
        rate: float,
        users: int,
        max_users: int | None = None,
        distribution: str = "even",
        spawn_rate: float | None = None,
        max_wait: float | None = None,
    ) -> None:
        if self.state in (STATE_RUNNING, STATE_SPAWNING):
            if self.arrivals is None or self.arrivals.stopped:
                raise RuntimeError(
                    "a test with a user count is running: stop it before starting one at an arrival rate"
                )
            self.arrivals.update(rate, max_users)
            return
        if any(_has_own_wait_time(u) for u in self.user_classes):
            logger.info("--arrival-rate: users take the next arrival after each task; wait_time does not apply")
        self.stats.open_model = True
        if max_wait is None:
            max_wait = getattr(self.environment.parsed_options, "arrival_max_wait", None)
        self.arrivals = Arrivals(
            self,
            rate,
            users,
            users if max_users is None else max_users,
            distribution,
            DEFAULT_MAX_WAIT if max_wait is None else max_wait,
        )
        self._spawn(users, spawn_rate or max(users, 1))

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        """A standalone run talks to itself: the registered listener is called directly."""
        logger.debug("Running locally: sending %s message to self", msg_type)
        if msg_type in self.custom_messages:
            listener, concurrent = self.custom_messages[msg_type]
            message = Message(msg_type, data, "local")
            if concurrent:
                gevent.spawn(listener, environment=self.environment, msg=message)
            else:
                listener(environment=self.environment, msg=message)
        else:
            logger.warning(f"Unknown message type received: {msg_type}")


class WorkerNode:
    """A node that runs users, as the master knows it; a standalone run has one, "local"."""

    def __init__(self, id: str, state: str = STATE_INIT, heartbeat_liveness: int = HEARTBEAT_LIVENESS) -> None:
        self.id = id
        self.state = state
        # Locust's countdown: HEARTBEAT_LIVENESS after a heartbeat, one less each second without.
        self.heartbeat = heartbeat_liveness
        # When the last heartbeat arrived (monotonic; a master reads it from its socket each second).
        self.last_heartbeat = time.monotonic()
        self.cpu_usage: float = 0
        self.cpu_warning_emitted = False
        self.memory_usage = 0
        # The users the worker reports running, per class.
        self.user_classes_count: dict[str, int] = {}

    @property
    def user_count(self) -> int:
        return sum(self.user_classes_count.values())

    def __repr__(self) -> str:
        return f"<WorkerNode {self.id} {self.state} users={self.user_count}>"


class WorkerNodes(MutableMapping):
    """The master's workers by id, with Locust's views by state (``ready`` is state "ready")."""

    def __init__(self) -> None:
        self._worker_nodes: dict[str, WorkerNode] = {}

    def get_by_state(self, state: str) -> list[WorkerNode]:
        return [c for c in self.values() if c.state == state]

    @property
    def all(self) -> ValuesView[WorkerNode]:
        return self.values()

    @property
    def ready(self) -> list[WorkerNode]:
        return self.get_by_state(STATE_INIT)

    @property
    def spawning(self) -> list[WorkerNode]:
        return self.get_by_state(STATE_SPAWNING)

    @property
    def running(self) -> list[WorkerNode]:
        return self.get_by_state(STATE_RUNNING)

    @property
    def missing(self) -> list[WorkerNode]:
        return self.get_by_state(STATE_MISSING)

    def __setitem__(self, k: str, v: WorkerNode) -> None:
        self._worker_nodes[k] = v

    def __delitem__(self, k: str) -> None:
        del self._worker_nodes[k]

    def __getitem__(self, k: str) -> WorkerNode:
        return self._worker_nodes[k]

    def __len__(self) -> int:
        return len(self._worker_nodes)

    def __iter__(self) -> Iterator[str]:
        # A copy: greenlets that iterate may yield while others add and remove nodes.
        return iter(list(self._worker_nodes))

    def values(self) -> ValuesView[WorkerNode]:
        return dict(self._worker_nodes).values()

    def items(self) -> ItemsView[str, WorkerNode]:
        return dict(self._worker_nodes).items()

    def get(self, k: str, default: Any = None) -> Any:
        return self._worker_nodes.get(k, default)


class DistributedRunner(Runner):
    """What the master and the workers share: custom messages come over the network."""

    def _dispatch_custom(self, msg: Message) -> bool:
        """Calls the listener registered for ``msg.type``, if any (concurrently when asked)."""
        registered = self.custom_messages.get(msg.type)
        if registered is None:
            return False
        listener, concurrent = registered
        logger.debug(f"Received {msg.type} message from {msg.node_id}")
        try:
            if concurrent:
                gevent.spawn(listener, environment=self.environment, msg=msg)
            else:
                listener(environment=self.environment, msg=msg)
        except Exception:
            logger.error(f"Uncaught exception in handler for {msg.type}\n{traceback.format_exc()}")
        return True


class MasterRunner(DistributedRunner):
    """Runs a distributed test: workers connect to it (horde's or Locust's), it tells each how many
    users of each class to run and merges their reports. It runs no users itself.

    Args:
        environment: The Environment of the run.
        master_bind_host: Interface the workers connect to ("*": every one).
        master_bind_port: Port the workers connect to (0: a free one, see ``server.port``).
    """

    def __init__(self, environment: Environment, master_bind_host: str, master_bind_port: int) -> None:
        super().__init__(environment)
        self.worker_cpu_warning_emitted = False
        self.master_bind_host = master_bind_host
        self.master_bind_port = master_bind_port
        self.spawn_rate: float = 0.0
        self.spawning_completed = False
        self.worker_indexes: dict[str, int] = {}
        self.worker_index_max = 0
        self.clients = WorkerNodes()
        try:
            self.server = rpc.Server(master_bind_host, master_bind_port, CPU_WARNING_THRESHOLD)
        except RPCError as e:
            if "Address already in use" in str(e):
                where = f"{master_bind_host}:{master_bind_port}" if master_bind_host != "*" else str(master_bind_port)
                logger.error(
                    f"The Locust master port ({where}) was busy. Close any applications using that port - perhaps "
                    f"an old instance of Locust master is still running? ({e})"
                )
                sys.exit(1)
            raise
        self.server.router.merge_into(self.stats)
        self._update_forwarding()
        self.greenlet.spawn(self.heartbeat_worker).link_exception(locust_exception_handler(environment))
        self.greenlet.spawn(self.client_listener).link_exception(locust_exception_handler(environment))
        environment.events.quitting.add_listener(lambda environment, **kw: self.quit())

    def rebalancing_enabled(self) -> bool:
        return bool(getattr(self.environment.parsed_options, "enable_rebalancing", False))

    def get_worker_index(self, client_id: str) -> int:
        """A worker's 0-based index: given on its first connection, never reused while the master runs."""
        if client_id not in self.worker_indexes:
            self.worker_indexes[client_id] = self.worker_index_max
            self.worker_index_max += 1
        return self.worker_indexes[client_id]

    @property
    def user_count(self) -> int:
        """Users the workers report running."""
        return sum(c.user_count for c in self.clients.values())

    @property
    def worker_count(self) -> int:
        """Workers that are ready, spawning or running (missing ones excluded)."""
        return len(self.clients.ready) + len(self.clients.spawning) + len(self.clients.running)

    @property
    def reported_user_classes_count(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for client in self.clients.ready + self.clients.spawning + self.clients.running:
            for name, count in client.user_classes_count.items():
                counts[name] += count
        return counts

    @property
    def user_classes_count(self) -> dict[str, int]:
        return dict(self.reported_user_classes_count)

    def cpu_log_warning(self) -> bool:
        warned = Runner.cpu_log_warning(self)
        if self.worker_cpu_warning_emitted:
            logger.warning("CPU usage threshold was exceeded on workers during the test!")
            warned = True
        return warned

    # -- running a test ---------------------------------------------------------------------------

    def start(self, user_count: int, spawn_rate: float, wait: bool = False, user_classes: list | None = None) -> None:
        """Ramps the workers to ``user_count`` users in all at ``spawn_rate`` users/s, as Locust's
        master does: one ``spawn`` message per worker per dispatch step, each with that worker's
        absolute per-class counts."""
        self.spawning_completed = False
        self.target_user_count = user_count
        active = self.clients.ready + self.clients.running + self.clients.spawning
        if not active:
            logger.warning("You can't start a distributed test before at least one worker processes has connected")
            return
        if self.environment.host:
            for user_class in self.user_classes:
                user_class.host = self.environment.host
        self.spawn_rate = spawn_rate
        if self._users_dispatcher is None:
            self._users_dispatcher = self._dispatcher_class()(worker_nodes=active, user_classes=self.user_classes)
        logger.info(
            f"Sending spawn jobs of {user_count} users at {spawn_rate:.2f} spawn rate to {len(active)} ready workers"
        )
        if spawn_rate / len(active) > 100:
            logger.warning(
                "Your selected spawn rate is very high (>100/worker), and this is known to sometimes cause issues. Do "
                "you really need to ramp up that fast?"
            )
        if self.state not in (STATE_RUNNING, STATE_SPAWNING):
            self.stats.clear_all()
            self.exceptions = {}
            self.environment._filter_tasks_by_tags()
            self.environment.events.test_start.fire(environment=self.environment)
            if self.environment.shape_class:
                self.environment.shape_class.reset_time()
        self.update_state(STATE_SPAWNING)
        self._users_dispatcher.new_dispatch(
            target_user_count=user_count, spawn_rate=spawn_rate, user_classes=user_classes
        )
        dispatched: dict[str, dict[str, int]] = {}
        try:
            for dispatched in self._users_dispatcher:
                options = _sendable_options(self.environment.parsed_options)
                for worker_id, counts in dispatched.items():
                    data = {
                        "timestamp": time.time(),
                        "user_classes_count": counts,
                        "host": self.environment.host,
                        "stop_timeout": self.environment.stop_timeout,
                        "parsed_options": options,
                    }
                    self.server.send_to_client(Message("spawn", data, worker_id))
                logger.debug(f"Currently spawned users: {_format_counts(self.reported_user_classes_count)}")
            if dispatched:
                self.target_user_classes_count = _aggregate(dispatched)
        except KeyboardInterrupt:
            self.quit()
        # Give the workers a moment to report their users, so the message below and the
        # spawning_complete event come when the count really is there (as Locust).
        deadline = time.monotonic() + _wait_for_reports_after_ramp_up()
        prefix = "All users spawned"
        while self.user_count != self.target_user_count:
            if time.monotonic() >= deadline:
                prefix = (
                    "Spawning is complete and report waittime is expired, but not all reports received from workers"
                )
                break
            gevent.sleep(0.01)
        total = sum(self.target_user_classes_count.values())
        self.environment.events.spawning_complete.fire(user_count=total)
        self.send_message("spawning_complete", data={"user_count": total})
        self.spawning_completed = True
        logger.info(f"{prefix}: {_format_counts(self.reported_user_classes_count)}")

    def stop(self, send_stop_to_client: bool = True) -> None:
        if self.state in (STATE_INIT, STATE_STOPPED) or (self.state == STATE_STOPPING and not self._stopping.underway):
            return
        self._stopping.run(lambda: self._stop_workers(send_stop_to_client))

    def _stop_workers(self, send_stop_to_client: bool) -> None:
        logger.debug("Stopping...")
        self.environment.events.test_stopping.fire(environment=self.environment)
        self.final_user_classes_count = {**self.reported_user_classes_count}
        self.update_state(STATE_STOPPING)
        if (
            self.environment.shape_class is not None
            and self.shape_greenlet is not None
            and self.shape_greenlet is not greenlet.getcurrent()
        ):
            self.shape_greenlet.kill(block=True)
            self.shape_greenlet = None
            self.shape_last_tick = None
        if self.spawning_greenlet is not None and self.spawning_greenlet is not greenlet.getcurrent():
            self.spawning_greenlet.kill(block=True)
        self._users_dispatcher = None
        if send_stop_to_client:
            for client in self.clients.all:
                logger.debug(f"Sending stop message to worker {client.id}")
                self.server.send_to_client(Message("stop", None, client.id))
            # The workers report their users gone; give them the stop timeout and a minute.
            deadline = time.monotonic() + self.environment.stop_timeout + 60
            while self.user_count != 0:
                if time.monotonic() >= deadline:
                    logger.error("Timeout waiting for all workers to stop")
                    break
                gevent.sleep(0.1)
        self.environment.events.test_stop.fire(environment=self.environment)

    def _quit(self) -> None:
        """Stops the test, tells every worker to quit, and ends the runner's greenlets."""
        if getattr(self, "_quitting", False):
            return
        self._quitting = True
        self.stop(send_stop_to_client=False)
        logger.debug("Quitting...")
        for client in self.clients.all:
            logger.debug(f"Sending quit message to worker {client.id} (index {self.get_worker_index(client.id)})")
            self.server.send_to_client(Message("quit", None, client.id))
        gevent.sleep(0.5)  # the workers' final reports
        self.server.close()
        # Last: this may be one of the runner's own greenlets (the last worker quit).
        self.greenlet.kill(block=True)

    def check_stopped(self) -> None:
        if (self.state == STATE_STOPPING and all(x.state == STATE_INIT for x in self.clients.all)) or all(
            x.state not in (STATE_RUNNING, STATE_SPAWNING, STATE_INIT) for x in self.clients.all
        ):
            self.update_state(STATE_STOPPED)

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        """Sends a message to one worker, or to every worker when ``client_id`` is None."""
        targets = [client_id] if client_id else [c.id for c in self.clients.all]
        for target in targets:
            logger.debug(f"Sending {msg_type} message to worker {target}")
            self.server.send_to_client(Message(msg_type, data, target))

    # -- the gevent side ----------------------------------------------------------------------------

    def heartbeat_worker(self) -> None:
        """Every second: marks workers without a heartbeat for HEARTBEAT_LIVENESS seconds missing
        (their users leave the count), and forgets those missing for a minute more, as Locust."""
        while True:
            gevent.sleep(HEARTBEAT_INTERVAL)
            now = time.monotonic()
            self._sync_liveness(now)
            gone = []
            for client in self.clients.all:
                silent = now - client.last_heartbeat
                client.heartbeat = HEARTBEAT_LIVENESS - int(silent)
                if client.state == STATE_MISSING:
                    if silent > HEARTBEAT_LIVENESS - HEARTBEAT_DEAD_INTERNAL:
                        gone.append(client.id)
                elif silent > HEARTBEAT_LIVENESS:
                    self._mark_missing(client)
            if gone:
                for client_id in gone:
                    if self.clients.get(client_id) is not None:
                        self._forget(client_id)
                if self.state in (STATE_RUNNING, STATE_SPAWNING):
                    # Spread the users again without the dead workers.
                    self._users_dispatcher = None
                    self.start(user_count=self.target_user_count, spawn_rate=self.spawn_rate)

    def _sync_liveness(self, now: float) -> None:
        """Takes what the socket noted of the heartbeats it answered: when each worker was last
        heard from, its CPU and memory."""
        self._update_forwarding()
        for node_id, silent, cpu, memory in self.server.router.liveness():
            client = self.clients.get(node_id)
            if client is None or client.state == STATE_MISSING:
                continue
            client.last_heartbeat = now - silent
            client.cpu_usage = cpu
            if memory is not None:
                client.memory_usage = memory

    def _update_forwarding(self) -> None:
        # Every heartbeat and whole report go to the gevent side while their events have
        # listeners (a plugin may add one after the runner starts: checked again every second).
        events = self.environment.events
        self.server.router.set_forwarding(bool(events.heartbeat_sent._handlers), bool(events.worker_report._handlers))

    def _forget(self, client_id: str) -> WorkerNode:
        client = self.clients[client_id]
        del self.clients[client_id]
        self.server.router.remove_worker(client_id)
        return client

    def _mark_missing(self, client: WorkerNode) -> None:
        logger.info(f"Worker {client.id} failed to send heartbeat, setting state to missing.")
        client.state = STATE_MISSING
        self.server.router.set_live(client.id, False, STATE_MISSING)
        client.user_classes_count = {}
        if self._users_dispatcher is not None:
            self._users_dispatcher.remove_worker(client)
            if self.rebalancing_enabled() and self.state == STATE_RUNNING and self.spawning_completed:
                self.start(self.target_user_count, self.spawn_rate)
        if self.worker_count <= 0:
            logger.info("The last worker went missing, stopping test.")
            self.stop()
            self.check_stopped()

    def client_listener(self) -> None:
        """Handles what the workers send, one message at a time, as Locust's master does."""
        while True:
            try:
                client_id, msg = self.server.recv_from_client()
            except RPCReceiveError as e:
                sender = e.addr
                if sender and sender in self.clients:
                    logger.error(f"RPCError when receiving from client: {e}. Will reset client {sender}.")
                    self.server.send_to_client(Message("reconnect", None, sender))
                else:
                    logger.error(f"Unrecognized message detected: {e}" + (f" from {sender}" if sender else ""))
                continue
            try:
                self.handle_message(client_id, msg)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
                # A message that makes no sense (wrong types, missing keys) must not end the master.
                logger.error(f"Ignored a malformed {msg.type!r} message from {msg.node_id}: {type(e).__name__}: {e}")
            except Exception:
                logger.error(f"Could not handle {msg} from {client_id}:\n{traceback.format_exc()}")

    def handle_message(self, client_id: str, msg: Message) -> None:
        """One message from a worker (Locust's master's rules)."""
        match msg.type:
            case "client_ready":
                self._client_ready(client_id, msg)
            case "locustfile":
                self._send_locustfile(client_id, msg)
                return
            case "client_stopped":
                if msg.node_id not in self.clients:
                    logger.warning(f"Received {msg.type} message from an unknown worker: {msg.node_id}.")
                    return
                client = self._forget(msg.node_id)
                self._worker_left(client)
                logger.info(f"{msg.node_id} (index {self.get_worker_index(client_id)}) reported that it has stopped")
            case "heartbeat":
                self._heartbeat(msg)
            case "stats":
                self._stats_report(msg)
            case "spawning":
                client = self.clients.get(msg.node_id)
                if client is None:
                    logger.warning(f"Got spawning message from unknown worker {msg.node_id}. Asking worker to quit.")
                    self.server.send_to_client(Message("quit", None, msg.node_id))
                else:
                    client.state = STATE_SPAWNING
            case "spawning_complete":
                client = self.clients.get(msg.node_id)
                if client is None:
                    logger.warning(
                        f"Got spawning_complete message from unknown worker {msg.node_id}. Asking worker to quit."
                    )
                    self.server.send_to_client(Message("quit", None, msg.node_id))
                else:
                    client.state = STATE_RUNNING
                    client.user_classes_count = _counts(msg.data["user_classes_count"])
            case "logs":
                self.environment.update_worker_logs(msg.data)
            case "quit":
                if msg.node_id in self.clients:
                    client = self._forget(msg.node_id)
                    self._worker_left(client)
                    logger.info(
                        f"Worker {msg.node_id!r} (index {self.get_worker_index(msg.node_id)}) quit. "
                        f"{len(self.clients.ready)} workers ready."
                    )
                    if self.worker_count <= 0:
                        logger.info("The last worker quit, stopping test.")
                        self.stop()
                        if getattr(self.environment.parsed_options, "headless", False):
                            self.quit()
            case "exception":
                self.log_exception(msg.node_id, msg.data["msg"], msg.data["traceback"])
            case _ if self._dispatch_custom(msg):
                pass
            case _:
                logger.warning(
                    f"Unknown message type received from worker {msg.node_id} (index "
                    f"{self.get_worker_index(msg.node_id)}): {msg.type}"
                )
        self.check_stopped()

    def _client_ready(self, client_id: str, msg: Message) -> None:
        version = msg.data
        if not version:
            logger.error(f"An old (pre 2.0) worker tried to connect ({client_id}). That's not going to work.")
            return
        if version != PROTOCOL_VERSION and version != -1:
            if str(version)[0:4] == PROTOCOL_VERSION[0:4]:
                logger.debug(
                    f"A worker ({client_id}) running a different patch version ({version!r}) connected, master "
                    f"version is {PROTOCOL_VERSION!r}"
                )
            else:
                logger.warning(
                    f"A worker ({client_id}) running a different version ({version}) connected, master version is "
                    f"{PROTOCOL_VERSION}"
                )
        self.send_message("ack", client_id=client_id, data={"index": self.get_worker_index(client_id)})
        self.environment.events.worker_connect.fire(client_id=msg.node_id)
        already = client_id in self.clients
        self.clients[client_id] = WorkerNode(client_id, heartbeat_liveness=HEARTBEAT_LIVENESS)
        self.server.router.add_worker(client_id, STATE_INIT)
        self._update_forwarding()
        if self._users_dispatcher is not None:
            self._users_dispatcher.add_worker(worker_node=self.clients[client_id])
            if not self._users_dispatcher.dispatch_in_progress and self.state == STATE_RUNNING:
                self.start(self.target_user_count, self.spawn_rate)
        connected = len(self.clients.ready + self.clients.running + self.clients.spawning)
        index = self.get_worker_index(client_id)
        if already:
            logger.debug(
                f"{client_id} (index {index}) reported as ready (duplicate message). {connected} workers connected."
            )
        else:
            logger.info(f"{client_id} (index {index}) reported as ready. {connected} workers connected.")
        if self.rebalancing_enabled() and self.state == STATE_RUNNING and self.spawning_completed:
            self.start(self.target_user_count, self.spawn_rate)

    def _worker_left(self, client: WorkerNode) -> None:
        if self._users_dispatcher is not None:
            self._users_dispatcher.remove_worker(client)
            if not self._users_dispatcher.dispatch_in_progress and self.state == STATE_RUNNING:
                self.start(self.target_user_count, self.spawn_rate)

    def _heartbeat(self, msg: Message) -> None:
        # The socket answers live workers' heartbeats itself and passes one on (answered) when the
        # worker's state changed, when it first exceeds the CPU threshold, or always when
        # heartbeat_sent has listeners. Unanswered ones come from unknown or missing workers.
        client = self.clients.get(msg.node_id)
        if client is None:
            logger.debug(f"Got heartbeat message from unknown worker {msg.node_id}")
            return
        data = msg.data
        if client.state == STATE_MISSING:
            if isinstance(msg, AnsweredHeartbeat):
                return  # answered before the worker was marked missing
            state = data["state"]
            logger.info(f"Worker {client.id} self-healed with heartbeat, setting state to {state}.")
            self._heard_from(client, data)
            self.server.router.set_live(client.id, True, state)
            if self._users_dispatcher is not None:
                self._users_dispatcher.add_worker(worker_node=client)
                if not self._users_dispatcher.dispatch_in_progress and self.state == STATE_RUNNING:
                    self.start(self.target_user_count, self.spawn_rate)
            self.server.send_to_client(Message("heartbeat", None, msg.node_id))
        else:
            self._heard_from(client, data)
            if not isinstance(msg, AnsweredHeartbeat):
                self.server.send_to_client(Message("heartbeat", None, msg.node_id))
        self.environment.events.heartbeat_sent.fire(client_id=msg.node_id, timestamp=time.time())

    def _heard_from(self, client: WorkerNode, data: dict[str, Any]) -> None:
        client.last_heartbeat = time.monotonic()
        client.heartbeat = HEARTBEAT_LIVENESS
        client.state = data.get("state", client.state)
        cpu = data.get("current_cpu_usage", 0) or 0
        client.cpu_usage = cpu
        client.memory_usage = data.get("current_memory_usage", client.memory_usage)
        if not client.cpu_warning_emitted and isinstance(cpu, (int, float)) and cpu > CPU_WARNING_THRESHOLD:
            self.worker_cpu_warning_emitted = True  # fails the test at its end, as in Locust
            client.cpu_warning_emitted = True
            logger.warning(
                f"Worker {client.id} (index {self.get_worker_index(client.id)}) exceeded cpu threshold (will only "
                "log this once per worker)"
            )

    def _stats_report(self, msg: Message) -> None:
        client = self.clients.get(msg.node_id)
        if not isinstance(msg, MergedReport):
            # The socket merges the reports of the workers the runner knows; this one is not.
            logger.info("Discarded report from unrecognized worker %s", msg.node_id)
            return
        if client is not None and msg.user_classes_count is not None:
            client.user_classes_count = _counts(msg.user_classes_count)
        if msg.data is not None:
            self.environment.events.worker_report.fire(client_id=msg.node_id, data=msg.data)

    def _send_locustfile(self, client_id: str, msg: Message) -> None:
        version = (msg.data or {}).get("version") if isinstance(msg.data, dict) else None
        if not version:
            logger.error("A very old worker version requested locustfile. This probably won't work.")
        logger.debug("Worker requested locust file")
        sources: list[Any] = []
        filename = ""
        try:
            from horde.argument_parser import is_url

            for option in self.environment.parsed_locustfiles or []:
                paths = [option]
                if os.path.isdir(option):
                    paths = sorted(
                        os.path.join(root, f) for root, _, files in os.walk(option) for f in files if f.endswith(".py")
                    )
                for filename in paths:
                    if is_url(filename):
                        sources.append(filename)
                    else:
                        with open(filename, encoding="utf-8") as f:
                            sources.append({"filename": os.path.basename(filename), "contents": f.read()})
        except Exception as e:
            error = (
                "locustfile must be a full path to a single locustfile, a comma-separated list of .py files, or a URL "
                "for file distribution to work"
            )
            logger.error(f"{error} {e}")
            self.send_message("locustfile", client_id=client_id, data={"error": f"{error} (was '{filename}')"})
            return
        self.send_message("locustfile", client_id=client_id, data={"locustfiles": sources})


class WorkerRunner(DistributedRunner):
    """Runs the users a master asks for and reports to it (the master may be horde's or Locust's).

    The connection, heartbeats and the stats reports every WORKER_REPORT_INTERVAL seconds live on
    the messaging thread: users that keep the gevent loop busy cannot make this worker miss a
    heartbeat. ``report_to_master`` listeners run on that thread too, so keep them short and do
    not call gevent from them.

    Args:
        environment: The Environment of the run.
        master_host: Where the master listens.
        master_port: The master's port.
    """

    # Set from the master's ack (0-based); -1 until then.
    worker_index = -1

    def __init__(self, environment: Environment, master_host: str, master_port: int) -> None:
        super().__init__(environment)
        self.retry = 0
        self.connected = False
        self.last_heartbeat_timestamp: float | None = None
        self.connection_event = Event()
        self.worker_state = STATE_INIT
        self.client_id = socket.gethostname() + "_" + uuid4().hex
        self.master_host = master_host
        self.master_port = master_port
        self.web_base_path = getattr(environment.parsed_options, "web_base_path", "") or ""
        self.logs: list[str] = []
        self.worker_cpu_warning_emitted = False
        self.last_received_spawn_timestamp = 0.0
        self._heartbeat_cpu = _CpuMeter()
        # The user counts to report, replaced (never changed in place) by the gevent side, so the
        # messaging thread always reads a consistent one.
        self._counts_for_report: dict[str, int] = {u.__name__: 0 for u in self.user_classes}
        self._master_timeout = master_heartbeat_timeout()
        self.client = self._new_client()
        self.greenlet.spawn(self.worker).link_exception(locust_exception_handler(environment))
        self.connect_to_master()
        self.greenlet.spawn(self.logs_reporter).link_exception(locust_exception_handler(environment))

        def on_quitting(environment: Environment, **kw: Any) -> None:
            self._send(Message("quit", None, self.client_id))

        environment.events.quitting.add_listener(on_quitting)

        def on_user_error(user_instance: Any, exception: BaseException, tb: Any) -> None:
            formatted = "".join(traceback.format_tb(tb))
            self._send(Message("exception", {"msg": str(exception), "traceback": formatted}, self.client_id))

        environment.events.user_error.add_listener(on_user_error)

    def _new_client(self) -> rpc.Client:
        client = rpc.Client(self.master_host, self.master_port, self.client_id)
        client.handle_in_thread(self._on_thread_message)
        client.every(HEARTBEAT_INTERVAL, self._heartbeat)
        client.every(WORKER_REPORT_INTERVAL, self._report)
        client.every(1.0, self._check_master)
        client.start()
        return client

    def _send(self, msg: Message) -> None:
        try:
            self.client.send(msg)
        except RPCError as e:
            logger.debug(f"Not sent to the master ({e}): {msg}")

    @property
    def user_count(self) -> int:
        return len(self.user_greenlets)

    def _users_changed(self) -> None:
        self._counts_for_report = dict(self.user_classes_count)

    def spawn_users(self, user_classes_spawn_count: dict[str, int], wait: bool = False) -> list[User]:
        users = super().spawn_users(user_classes_spawn_count, wait)
        self._users_changed()
        return users

    def stop_users(self, user_classes_stop_count: dict[str, int]) -> None:
        super().stop_users(user_classes_stop_count)
        self._users_changed()

    def start(self, user_count: int, spawn_rate: float, wait: bool = False, user_classes: list | None = None) -> None:
        raise NotImplementedError("use start_worker")

    def start_worker(self, user_classes_count: dict[str, int], **kwargs: Any) -> None:
        """Runs exactly ``user_classes_count`` users (absolute counts per class, from the master)."""
        self.target_user_classes_count = user_classes_count
        self.target_user_count = sum(user_classes_count.values())
        if self.environment.host:
            for user_class in self.user_classes:
                user_class.host = self.environment.host
        running = self.user_classes_count
        spawn = {n: c - running.get(n, 0) for n, c in user_classes_count.items() if c > running.get(n, 0)}
        stop = {n: running.get(n, 0) - c for n, c in user_classes_count.items() if c < running.get(n, 0)}
        # Spawning first: stopping may block for up to --stop-timeout.
        self.spawn_users(spawn)
        self.stop_users(stop)
        counts = self.user_classes_count
        self._send(
            Message(
                "spawning_complete", {"user_classes_count": counts, "user_count": sum(counts.values())}, self.client_id
            )
        )
        self.update_state(STATE_RUNNING)
        self.worker_state = STATE_RUNNING

    def stop(self) -> None:
        if self.state == STATE_STOPPED:
            return
        super().stop()
        self._users_changed()

    def _quit(self) -> None:
        if getattr(self, "_quitting", False):
            return
        self._quitting = True
        self.stop()
        _wait_for_requests_in_flight(timeout=2.0)
        self._report()  # what the last users did since the previous report
        self.client.close()  # sends what is queued first
        # Last: this may be one of the runner's own greenlets (the master said quit).
        self.greenlet.kill(block=True)

    # -- the messaging thread ---------------------------------------------------------------------

    def _on_thread_message(self, addr: str | None, msg: Message) -> bool:
        if msg.type != "heartbeat":
            return False
        self.last_heartbeat_timestamp = time.time()
        # Its listeners, if any, run on the gevent side.
        return not self.environment.events.heartbeat_received._handlers

    def _heartbeat(self) -> None:
        # The CPU of the Python thread since the last heartbeat: the master warns above 90%.
        self.current_cpu_usage = self._heartbeat_cpu.sample()
        data = {
            "state": self.worker_state,
            "current_cpu_usage": self.current_cpu_usage,
            "current_memory_usage": self.current_memory_usage or _rss_bytes(),
        }
        self._send(Message("heartbeat", data, self.client_id))

    def _report(self) -> None:
        """Sends the stats since the last report (Locust's deltas, plus each entry's exact histogram
        for a horde master), the user counts, and what ``report_to_master`` listeners add."""
        data: dict[str, Any] = {}
        self.environment.events.report_to_master.fire(client_id=self.client_id, data=data)
        entries, total, errors, own_delay = self.stats.take_report()
        data["stats"] = entries
        data["stats_total"] = total
        data["errors"] = {
            StatsError.create_key(method, name, text): {
                "name": name,
                "method": method,
                "error": text,
                "occurrences": occurrences,
                "first_seen": first_seen,
                "last_seen": last_seen,
            }
            for method, name, text, occurrences, first_seen, last_seen in errors
        }
        data["horde_own_delay"] = own_delay  # for a horde master; Locust's ignores the key
        counts = self._counts_for_report
        data["user_classes_count"] = counts
        data["user_count"] = sum(counts.values())
        self._send(Message("stats", data, self.client_id))

    def _check_master(self) -> None:
        last = self.last_heartbeat_timestamp
        if last is not None and last < time.time() - self._master_timeout:
            logger.error(f"Didn't get heartbeat from master in over {self._master_timeout:g}s")
            self.last_heartbeat_timestamp = None
            self.client.deliver(Message("_master_gone", None, self.client_id))

    # -- the gevent side ----------------------------------------------------------------------------

    def connect_to_master(self) -> None:
        """Announces this worker until the master acknowledges it (CONNECT_RETRY_COUNT tries of
        CONNECT_TIMEOUT seconds each).

        Raises:
            ConnectionError: The master never answered.
        """
        while True:
            self.retry += 1
            self._send(Message("client_ready", PROTOCOL_VERSION, self.client_id))
            if self.connection_event.wait(timeout=CONNECT_TIMEOUT):
                break
            where = f"{self.master_host}:{self.master_port}{self.web_base_path}"
            level = logging.DEBUG if self.retry < 30 / CONNECT_TIMEOUT else logging.INFO
            logger.log(level, f"Failed to connect to master {where}, retry {self.retry}/{CONNECT_RETRY_COUNT}.")
            if self.retry > CONNECT_RETRY_COUNT:
                raise ConnectionError(f"the master at {where} did not answer")
        self.connected = True

    def reset_connection(self) -> None:
        logger.info("Reset connection to master")
        try:
            self.client.close(linger=0)
            self.client = self._new_client()
        except RPCError as e:
            logger.error(f"Temporary failure when resetting connection: {e}, will retry later.")

    def worker(self) -> None:
        """Handles what the master sends, one message at a time."""
        while True:
            try:
                msg = self.client.recv()
            except RPCError as e:
                logger.error(f"RPCError found when receiving from master: {e}")
                continue
            try:
                self.handle_message(msg)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
                logger.error(f"Ignored a malformed {msg.type!r} message from the master: {type(e).__name__}: {e}")
            except Exception:
                logger.error(f"Could not handle {msg} from the master:\n{traceback.format_exc()}")

    def handle_message(self, msg: Message) -> None:
        """One message from the master (Locust's worker's rules)."""
        match msg.type:
            case "ack":
                if isinstance(msg.data, dict) and "index" in msg.data:
                    self.worker_index = msg.data["index"]
                # The master's silence counts from its ack: one that dies before its first heartbeat
                # reaches this worker is noticed as well (Locust's worker then waits forever).
                if self.last_heartbeat_timestamp is None:
                    self.last_heartbeat_timestamp = time.time()
                self.connection_event.set()
            case "spawn":
                self._spawn(msg.data)
            case "stop":
                self.stop()
                self._send(Message("client_stopped", None, self.client_id))
                # A small buffer for the network, as in Locust.
                additional_wait = int(os.getenv("LOCUST_WORKER_ADDITIONAL_WAIT_BEFORE_READY_AFTER_STOP", 0))
                gevent.sleep(self.environment.stop_timeout + additional_wait)
                self._send(Message("client_ready", PROTOCOL_VERSION, self.client_id))
                self.worker_state = STATE_INIT
            case "quit":
                logger.info("Got quit message from master, shutting down...")
                self.quit()
            case "_master_gone":
                self.quit()
            case "reconnect":
                logger.warning("Received reconnect message from master. Resetting RPC connection.")
                self.reset_connection()
            case "heartbeat":
                self.last_heartbeat_timestamp = time.time()
                self.environment.events.heartbeat_received.fire(
                    client_id=msg.node_id, timestamp=self.last_heartbeat_timestamp
                )
            case "update_user_class":
                self.environment.update_user_class(msg.data)
            case "spawning_complete":
                self.environment.events.spawning_complete.fire(user_count=msg.data["user_count"])
            case _ if self._dispatch_custom(msg):
                pass
            case _:
                logger.warning(f"Unknown message type received: {msg.type}")

    def _spawn(self, job: dict[str, Any]) -> None:
        self._send(Message("spawning", None, self.client_id))
        if job["timestamp"] <= self.last_received_spawn_timestamp:
            logger.info("Discard spawn message with older or equal timestamp than timestamp of previous spawn message")
            return
        # A class this locustfile lacks fails in the spawning greenlet with a KeyError, as in Locust.
        counts = _counts(job["user_classes_count"])
        self.environment.host = job["host"]
        self.environment.stop_timeout = job["stop_timeout"] or 0.0
        self._apply_master_options(job.get("parsed_options") or {})
        if self.worker_state not in (STATE_RUNNING, STATE_SPAWNING):
            self.stats.clear_all()
            self.exceptions = {}
            self.cpu_warning_emitted = False
            self.worker_cpu_warning_emitted = False
            self.environment._filter_tasks_by_tags()
            self.environment.events.test_start.fire(environment=self.environment)
        self.worker_state = STATE_SPAWNING
        if self.spawning_greenlet:
            self.spawning_greenlet.kill(block=True)
        self.spawning_greenlet = self.greenlet.spawn(lambda: self.start_worker(counts))
        self.spawning_greenlet.link_exception(locust_exception_handler(self.environment))
        self.last_received_spawn_timestamp = job["timestamp"]

    def _apply_master_options(self, options: dict[str, Any]) -> None:
        """Takes the master's custom options (a locustfile's own) and the few built-in ones workers
        need (expect_workers, tags, exclude_tags), as Locust's worker does."""
        from horde import argument_parser

        if self.environment.parsed_options is None:
            self.environment.parsed_options = argument_parser.parse_options(args=[])
        defaults = argument_parser.default_args_dict()
        custom = {
            k: v for k, v in options.items() if k not in defaults or k in ("expect_workers", "tags", "exclude_tags")
        }
        vars(self.environment.parsed_options).update(custom)

    def logs_reporter(self) -> None:
        """Sends new log lines to the master every WORKER_LOG_REPORT_INTERVAL seconds (for its
        web UI); stops after an interval of more than 70 new lines, as Locust."""
        if WORKER_LOG_REPORT_INTERVAL < 0:
            return
        while True:
            current = log.get_logs()
            if len(current) - len(self.logs) > 70:
                logger.warning(
                    "The worker attempted to send more than 70 log lines in one interval. Further log sending was "
                    "disabled for this worker."
                )
                self._send_logs(current)
                return
            if len(current) > len(self.logs):
                self._send_logs(current)
            self.logs = current
            gevent.sleep(WORKER_LOG_REPORT_INTERVAL)

    def _send_logs(self, lines: list[str]) -> None:
        self.send_message("logs", {"worker_id": self.client_id, "logs": lines})

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        """Sends a message to the master (``client_id`` is not used)."""
        logger.debug(f"Sending {msg_type} message to master")
        self._send(Message(msg_type, data, self.client_id))


def _user_count_tick(tick: Any) -> tuple[int, float, list | None]:
    """A shape's tick in Locust's forms: (users, spawn_rate) or (users, spawn_rate, classes)."""
    if len(tick) == 2:
        return tick[0], tick[1], None
    return tick[0], tick[1], tick[2]


def _has_own_wait_time(user_class: Any) -> bool:
    from horde.user.users import User

    return user_class.wait_time is not User.wait_time


def _wait_for_requests_in_flight(timeout: float) -> None:
    """Waits (at most ``timeout`` s) for the requests of stopped users to finish: the engine logs
    them when they do, and the target has counted them already, so the last report must too."""
    from horde._bridge import bridge

    deadline = time.monotonic() + timeout
    b = bridge()
    while b.in_flight > 0 and time.monotonic() < deadline:
        gevent.sleep(0.005)


def _counts(value: Any) -> dict[str, int]:
    """A user-count map from the network, checked: class names to whole numbers."""
    if not isinstance(value, dict):
        raise TypeError(f"user_classes_count must be a map, not {type(value).__name__}")
    return {str(k): int(v) for k, v in value.items()}


def _aggregate(dispatched: dict[str, dict[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for counts in dispatched.values():
        for name, n in counts.items():
            totals[name] += n
    return dict(totals)


def _sendable_options(options: Any) -> dict[str, Any]:
    """The parsed options as a spawn message carries them: every option whose value msgpack can
    send (Locust sends ``vars(options)`` as it is; a horde option may hold an object)."""
    if options is None:
        return {}
    out = {}
    for key, value in vars(options).items():
        if _sendable(value):
            out[key] = value
    return out


def _sendable(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool, bytes)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_sendable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _sendable(v) for k, v in value.items())
    return False


@functools.lru_cache
def _wait_for_reports_after_ramp_up() -> float:
    """Seconds the master waits after a ramp for the workers to report their users:
    ``LOCUST_WAIT_FOR_WORKERS_REPORT_AFTER_RAMP_UP`` (seconds, or ``"N * WORKER_REPORT_INTERVAL"``),
    1.0 by default, as in Locust."""
    value = os.getenv("LOCUST_WAIT_FOR_WORKERS_REPORT_AFTER_RAMP_UP")
    if value is None:
        return 1.0
    match = re.search(r"^(?P<coeff>(\d+)|(\d+\.\d+))[ ]*\*[ ]*WORKER_REPORT_INTERVAL$", value)
    if match is None:
        return max(float(value), 0.0)
    return float(match.group("coeff")) * WORKER_REPORT_INTERVAL


def _format_counts(counts: dict[str, int]) -> str:
    return f"{json.dumps(dict(sorted(counts.items())))} ({sum(counts.values())} total users)"


class _CpuMeter:
    """CPU use of the Python thread (the one running users) between two calls, in percent. Read
    from /proc so another thread can read it too; the process's own figure where /proc is absent."""

    def __init__(self) -> None:
        self._path = f"/proc/self/task/{_main_thread_id()}/stat"
        self._last = (self._cpu_seconds(), time.monotonic())

    def _cpu_seconds(self) -> float:
        try:
            with open(self._path, "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            # utime and stime, in clock ticks (fields 14 and 15 of stat; 12 and 13 after the name).
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return usage.ru_utime + usage.ru_stime

    def sample(self) -> float:
        cpu, now = self._cpu_seconds(), time.monotonic()
        last_cpu, last_now = self._last
        self._last = (cpu, now)
        return 100.0 * max(cpu - last_cpu, 0.0) / max(now - last_now, 1e-9)


@functools.lru_cache
def _main_thread_id() -> int:
    import threading

    return threading.main_thread().native_id or os.getpid()


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
