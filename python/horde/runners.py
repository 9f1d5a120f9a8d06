"""Runners start and stop simulated users (Locust's ``locust.runners``).

``LocalRunner`` runs every user of the test as a greenlet in this process; the HTTP work of all of
them is done by the engine's tokio threads. Users are spawned in steps of ``max(1, floor(rate))``
every ``step / rate`` seconds, in the order Locust's dispatcher uses, so the same ``-u``/``-r``
gives the same mix of user classes as Locust.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import socket
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import gevent
import greenlet
from gevent.pool import Group

from horde.exception import StopTest
from horde.log import greenlet_exception_logger
from horde.stats import StatsListener

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


def kl_order(weights: Sequence[tuple[str, float]]) -> Iterator[str | None]:
    """User class names in spawn order: each step picks the class whose share of the users spawned
    so far lies furthest below its weight, measured as Locust measures it (the change in
    Kullback-Leibler divergence), ties going to the class with fewer picks, then the lighter, then
    the name. Weights 5 and 1 give A A B A A A A A B A A A ..., as Locust 2.47's dispatcher does."""
    picks = {name: 0 for name, w in weights if w > 0}
    weight = {name: w for name, w in weights if w > 0}
    if not picks:
        while True:
            yield None

    def key(name: str) -> tuple[float, float, float, str]:
        x = weight[name] + picks[name]
        return (weight[name] * math.log2(x / (x + 1.0)), x + 1.0, weight[name], name)

    while True:
        name = min(picks, key=key)
        picks[name] += 1
        yield name


class UsersDispatcher:
    """Decides how many users of each class run, step by step, as a test ramps up or down.

    Users of classes with ``fixed_count`` come first; the rest follow ``kl_order`` by weight.
    Ramping down removes the most recently added users first.
    """

    def __init__(self, user_classes: list[type[User]]) -> None:
        self.user_classes = sorted(user_classes, key=lambda u: u.__name__)
        self._active: list[str] = []
        self._weighted = kl_order([(u.__name__, u.weight) for u in self.user_classes if not u.fixed_count])
        self._fixed_checked = False
        self._fixed_queue: list[str] = []

    def counts(self) -> dict[str, int]:
        out = {u.__name__: 0 for u in self.user_classes}
        for name in self._active:
            # A class a shape has since dropped still counts until its users are removed.
            out[name] = out.get(name, 0) + 1
        return out

    def _next_user(self) -> str | None:
        if not self._fixed_checked:
            self._fixed_checked = True
            current = self.counts()
            missing = [
                (u.__name__, u.fixed_count - current[u.__name__])
                for u in self.user_classes
                if u.fixed_count and u.fixed_count > current[u.__name__]
            ]
            self._fixed_queue = list(_take(kl_order(missing), sum(m for _, m in missing)))
        if self._fixed_queue:
            return self._fixed_queue.pop(0)
        return next(self._weighted)

    def steps(
        self, target: int, spawn_rate: float, user_classes: list[type[User]] | None = None
    ) -> Iterator[dict[str, int]]:
        """Yields the class counts after each step towards ``target``; the caller sleeps between
        steps (``step_interval``)."""
        if user_classes is not None:
            names = sorted(u.__name__ for u in user_classes)
            if names != [u.__name__ for u in self.user_classes]:
                self.user_classes = sorted(user_classes, key=lambda u: u.__name__)
                self._weighted = kl_order([(u.__name__, u.weight) for u in self.user_classes if not u.fixed_count])
                self._fixed_checked = False
        per_step = max(1, math.floor(spawn_rate))
        self.step_interval = per_step / spawn_rate if spawn_rate > 0 else 0.0
        if len(self._active) == target:
            yield self.counts()
            return
        while len(self._active) < target:
            goal = min(len(self._active) + per_step, target)
            exhausted = False
            while len(self._active) < goal:
                name = self._next_user()
                if name is None:
                    exhausted = True  # only fixed_count classes, all spawned
                    break
                self._active.append(name)
            yield self.counts()
            if exhausted:
                return
        while len(self._active) > target:
            goal = max(len(self._active) - per_step, target)
            while len(self._active) > goal:
                self._active.pop()
                self._fixed_checked = False
            yield self.counts()


def _take(it: Iterator[Any], n: int) -> Iterator[Any]:
    for _ in range(n):
        yield next(it)


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
        self.current_memory_usage = 0
        self.exceptions: dict[int, dict[str, Any]] = {}
        self.target_user_classes_count: dict[str, int] = {}
        self.target_user_count = 0
        self.custom_messages: dict[str, tuple[Callable, bool]] = {}
        self.connection_broken = False
        self.final_user_classes_count: dict[str, int] = {}
        self._dispatcher: UsersDispatcher | None = None
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
        """Called at the end of the test: repeats the CPU warning if one was raised."""
        if self.cpu_warning_emitted:
            logger.warning("CPU usage was too high at some point during the test!")
        return self.cpu_warning_emitted

    def spawn_users(self, user_classes_spawn_count: dict[str, int], wait: bool = False) -> list[User]:
        if self.state in (STATE_INIT, STATE_STOPPED):
            self.update_state(STATE_SPAWNING)
        new_users: list[User] = []
        for class_name, count in user_classes_spawn_count.items():
            user_class = self.user_classes_by_name[class_name]
            for _ in range(count):
                user = user_class(self.environment)
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
        if not graceful.join(timeout=self.environment.stop_timeout):
            logger.info(
                f"Not all users finished their tasks & terminated in {self.environment.stop_timeout} seconds. "
                "Stopping them..."
            )
            graceful.kill(block=True)

    def monitor_cpu_and_memory(self) -> None:
        """Every CPU_MONITOR_INTERVAL seconds: this process's CPU use and RSS, warning above 90%."""
        last_cpu = _cpu_seconds()
        last_time = time.monotonic()
        while True:
            gevent.sleep(CPU_MONITOR_INTERVAL)
            now_cpu, now = _cpu_seconds(), time.monotonic()
            # The engine's own threads count too: the process total is what limits throughput.
            self.current_cpu_usage = 100.0 * (now_cpu - last_cpu) / max(now - last_time, 1e-9)
            last_cpu, last_time = now_cpu, now
            self.current_memory_usage = _rss_bytes()
            if self.current_cpu_usage > CPU_WARNING_THRESHOLD * (os.cpu_count() or 1):
                self.environment.events.cpu_warning.fire(environment=self.environment, cpu_usage=self.current_cpu_usage)
                if not self.cpu_warning_emitted:
                    logger.warning(
                        f"CPU usage above {CPU_WARNING_THRESHOLD}%! This may constrain your throughput and may even "
                        "give inconsistent response time measurements!"
                    )
                    self.cpu_warning_emitted = True
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
            if tick != self.shape_last_tick:
                if len(tick) == 2:
                    user_count, spawn_rate = tick
                    classes = None
                else:
                    user_count, spawn_rate, classes = tick
                logger.info("Shape test updating to %d users at %.2f spawn rate", user_count, spawn_rate)
                # Like Locust, this blocks until the ramp is done; a shape should allow for that.
                self.start(user_count=user_count, spawn_rate=spawn_rate, user_classes=classes)
                self.shape_last_tick = tick
            gevent.sleep(max(1 - (time.time() - started), 0))

    def stop(self) -> None:
        """Stops every user (gracefully within --stop-timeout); the runner can start again."""
        if self.state == STATE_STOPPED:
            return
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
        self.stop_users(self.user_classes_count)
        self._dispatcher = None
        self.update_state(STATE_STOPPED)
        self.cpu_log_warning()
        self.environment.events.test_stop.fire(environment=self.environment)

    def quit(self) -> None:
        """Stops the test and every greenlet of the runner."""
        self.stop()
        self.greenlet.kill(block=True)

    def log_exception(self, node_id: str, msg: str, formatted_tb: str) -> None:
        key = hash(formatted_tb)
        row = self.exceptions.setdefault(key, {"count": 0, "msg": msg, "traceback": formatted_tb, "nodes": set()})
        row["count"] += 1
        row["nodes"].add(node_id)

    def register_message(self, msg_type: str, listener: Callable, concurrent: bool = False) -> None:
        if msg_type in self.custom_messages:
            raise Exception(f"Tried to register listener method for {msg_type}, but it already had a listener!")
        self.custom_messages[msg_type] = (listener, concurrent)


class WorkerNode:
    """A node that runs users; standalone runs have one, called "local"."""

    def __init__(self, id: str, state: str = STATE_INIT, heartbeat_liveness: int = HEARTBEAT_LIVENESS) -> None:
        self.id = id
        self.state = state
        self.heartbeat = heartbeat_liveness
        self.cpu_usage = 0
        self.cpu_warning_emitted = False
        self.memory_usage = 0
        self.user_classes_count: dict[str, int] = {}

    @property
    def user_count(self) -> int:
        return sum(self.user_classes_count.values())


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
        if self._dispatcher is None:
            self._dispatcher = UsersDispatcher(self.user_classes)
        logger.info("Ramping to %d users at a rate of %.2f per second", user_count, spawn_rate)
        steps = self._dispatcher.steps(user_count, spawn_rate, user_classes)
        try:
            for counts in steps:
                started = time.perf_counter()
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
                if sum(counts.values()) != user_count:
                    gevent.sleep(max(0.0, self._dispatcher.step_interval - (time.perf_counter() - started)))
        except KeyboardInterrupt:
            self.quit()
        logger.info(f"All users spawned: {_format_counts(self.user_classes_count)}")
        self.target_user_classes_count = self.user_classes_count
        self.environment.events.spawning_complete.fire(user_count=sum(self.target_user_classes_count.values()))

    def start(self, user_count: int, spawn_rate: float, wait: bool = False, user_classes: list | None = None) -> None:
        """Ramps to ``user_count`` users at ``spawn_rate`` users/s (in a greenlet unless ``wait``)."""
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

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        """A standalone run talks to itself: the registered listener is called directly."""
        logger.debug("Running locally: sending %s message to self", msg_type)
        if msg_type in self.custom_messages:
            listener, concurrent = self.custom_messages[msg_type]
            message = _Message(msg_type, data, "local")
            if concurrent:
                gevent.spawn(listener, self.environment, message)
            else:
                listener(self.environment, message)
        else:
            raise ValueError(f"Unknown message type received: {msg_type}")


class _Message:
    def __init__(self, message_type: str, data: Any, node_id: str) -> None:
        self.type, self.data, self.node_id = message_type, data, node_id


class MasterRunner(Runner):
    """Distributed mode is not built into horde yet."""

    def __init__(self, environment: Environment, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("distributed mode (--master) is not available in horde yet")


class WorkerRunner(Runner):
    """Distributed mode is not built into horde yet."""

    def __init__(self, environment: Environment, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("distributed mode (--worker) is not available in horde yet")


def _format_counts(counts: dict[str, int]) -> str:
    import json

    return f"{json.dumps(dict(sorted(counts.items())))} ({sum(counts.values())} total users)"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
