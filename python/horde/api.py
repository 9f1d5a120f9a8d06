"""horde as a library: ``horde.run(...)`` runs a load test from a script, a notebook or a test
and returns a ``Result``; ``horde.start(...)`` runs one in the background behind a ``RunHandle``.

Each run gets a thread of its own with its own gevent hub, so nothing is monkeypatched (Jupyter's
kernel keeps its event loop) and the caller's thread stays free to show progress or do other work.
User code runs as greenlets in that thread exactly as under the ``horde`` command.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from horde.results import DEFAULT_MAX_SAMPLES, Result, Samples, _Histogram, build_history
from horde.stats import format_ms

if TYPE_CHECKING:
    from typing import TypeAlias

    from horde.shape import LoadTestShape
    from horde.user import TaskSet, User

    # What holds a task list that a run may change: a User class or a TaskSet class in one.
    _TaskHolder: TypeAlias = type[User] | type[TaskSet]

__all__ = ["RunHandle", "run", "start"]

logger = logging.getLogger(__name__)

# One run at a time: the run's statistics are attached to the shared event hooks that
# locustfiles register listeners on (``from locust import events``).
_lock = threading.Lock()
_active: RunHandle | None = None
_UNSET = object()


def run(
    target: Any,
    host: str | None = None,
    users: int = 1,
    spawn_rate: float | None = None,
    run_time: str | float | None = "10s",
    *,
    shape: Any = None,
    tags: Iterable[str] | None = None,
    exclude_tags: Iterable[str] | None = None,
    stop_timeout: float = 0.0,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    html: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    processes: int = 1,
    arrival_rate: float | None = None,
    max_users: int | None = None,
    arrival_distribution: str = "even",
    arrival_max_wait: float = 1.0,
) -> Result:
    """Runs a load test and returns its Result, showing live progress meanwhile.

    Args:
        target: A User class, a list of them, or the path of a locustfile (all its User classes
            and its LoadTestShape, if any, as the ``horde`` command would take them).
        host: Base URL for users whose class sets none ("http://127.0.0.1:8080").
        users: Users to run.
        spawn_rate: Users started per second; default: all of them within one second.
        run_time: How long to run: seconds or "1m30s"; None runs until the shape ends, the
            handle is stopped, or Ctrl-C (which stops the run and returns what was measured).
        shape: A LoadTestShape class or instance driving users over time (``users``,
            ``spawn_rate`` and ``run_time`` are then ignored, as with the command's shapes).
        tags: Run only tasks with one of these tags.
        exclude_tags: Skip tasks with these tags.
        stop_timeout: Seconds running tasks get to finish when the run stops.
        max_samples: Requests to keep as samples (23 bytes each); 0 keeps none. Statistics and
            quantiles count every request regardless.
        html: Also write Locust's HTML report to this file.
        progress: Show live progress (a line on a terminal, an updating line in a notebook);
            default: when there is a terminal or a notebook to show it in.
        processes: Run the users in this many worker processes (forked from this one, -1: one
            per core), with this process as their master, as the command's ``--processes``: for
            more than one core's worth of load. The Result is the same: statistics merged
            exactly, and the samples of every process in one set.
        arrival_rate: Run the open model: this many iterations (one task of a free user) start
            per second whatever the server does; ``users`` users are started first and the pool
            grows up to ``max_users`` when none is free, beyond which arrivals are dropped and
            counted (``Result.dropped_iterations``). Response times then count from each
            iteration's scheduled start; ``Result.service_quantile`` gives the uncorrected ones.
        max_users: With ``arrival_rate``: the most users the pool may grow to (default ``users``).
        arrival_distribution: With ``arrival_rate``: "even" (default) or "poisson" arrivals.
        arrival_max_wait: With ``arrival_rate``: seconds an arrival waits for a free user when
            the pool is full before it is dropped (0: at once, as k6 does).

    Returns:
        The Result: stats and history DataFrames, quantiles, latencies, samples.
    """
    handle = start(
        target,
        host=host,
        users=users,
        spawn_rate=spawn_rate,
        run_time=run_time,
        shape=shape,
        tags=tags,
        exclude_tags=exclude_tags,
        stop_timeout=stop_timeout,
        max_samples=max_samples,
        html=html,
        processes=processes,
        arrival_rate=arrival_rate,
        max_users=max_users,
        arrival_distribution=arrival_distribution,
        arrival_max_wait=arrival_max_wait,
    )
    display = _Progress.create(progress)
    try:
        while not handle._done.wait(1.0 if display else 0.25):
            if display:
                display.update(handle.progress_line())
    except KeyboardInterrupt:
        # What was measured is kept: the run stops and its result is returned, marked.
        logger.warning("Interrupted: stopping the load test (interrupt again to stop its users at once)")
        result = _stop_interrupted(handle)
        result.meta["interrupted"] = True
        if display:
            display.finish(handle.progress_line(final=True))
        return result
    if display:
        display.finish(handle.progress_line(final=True))
    return handle.wait()


def _stop_interrupted(handle: RunHandle) -> Result:
    """Stops a run that Ctrl-C interrupted and returns its result. A second Ctrl-C while its
    users finish their task (``stop_timeout``) stops them at once, and the result still comes
    back; a third one gives up on the run (for a run whose thread is stuck in user code)."""
    interrupts = 1
    while True:
        try:
            handle.stop(now=interrupts > 1)
            # Polled: a blocking wait would see the next Ctrl-C only once the run had ended.
            while not handle._done.wait(0.25):
                pass
            return handle.wait()
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts > 2:
                logger.warning("Interrupted a third time: leaving the run without its result")
                raise
            logger.warning("Interrupted again: stopping the users now")


def start(
    target: Any,
    host: str | None = None,
    users: int = 1,
    spawn_rate: float | None = None,
    run_time: str | float | None = "10s",
    *,
    shape: Any = None,
    tags: Iterable[str] | None = None,
    exclude_tags: Iterable[str] | None = None,
    stop_timeout: float = 0.0,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    html: str | os.PathLike[str] | None = None,
    processes: int = 1,
    arrival_rate: float | None = None,
    max_users: int | None = None,
    arrival_distribution: str = "even",
    arrival_max_wait: float = 1.0,
) -> RunHandle:
    """Starts a load test in the background; the arguments are ``run``'s.

    Returns:
        A RunHandle: live ``stats``, ``user_count``, ``stop()``, ``wait()`` for the Result.

    Raises:
        ValueError: bad arguments (no User class, negative users, a malformed run_time...).
        RuntimeError: another run is still going in this process.
    """
    global _active
    # A locustfile registers listeners on the shared hooks when it is imported, which happens
    # again for each run of it: the run takes them away when it ends.
    listeners = _listeners()
    try:
        plan = _Plan.make(
            target,
            host,
            users,
            spawn_rate,
            run_time,
            shape,
            tags,
            exclude_tags,
            stop_timeout,
            max_samples,
            processes,
            arrival_rate,
            max_users,
            arrival_distribution,
            arrival_max_wait,
        )
        with _lock:
            if _active is not None and not _active.done:
                raise RuntimeError("another horde run is in progress in this process; stop() or wait() for it first")
            handle = RunHandle(plan, html, listeners)
            _active = handle
    except BaseException:
        _restore_listeners(listeners)
        raise
    if plan.processes > 1:
        # Before the run's thread exists: a forked child is then a copy of this thread alone.
        handle._fork_workers()
    handle._thread.start()
    handle._started.wait()
    if handle._error is not None:
        handle._thread.join()
        raise handle._error
    return handle


class _Plan:
    """A run's arguments, checked before anything starts."""

    user_classes: list[type[User]]
    locustfile: str | None
    host: str | None
    users: int
    spawn_rate: float
    run_time: float | None
    shape: LoadTestShape | None
    tags: list[str] | None
    exclude_tags: list[str] | None
    stop_timeout: float
    max_samples: int
    processes: int
    arrival_rate: float | None
    max_users: int | None
    arrival_distribution: str
    arrival_max_wait: float

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    @classmethod
    def make(
        cls,
        target: Any,
        host: str | None,
        users: int,
        spawn_rate: float | None,
        run_time: str | float | None,
        shape: Any,
        tags: Iterable[str] | None,
        exclude_tags: Iterable[str] | None,
        stop_timeout: float,
        max_samples: int,
        processes: int = 1,
        arrival_rate: float | None = None,
        max_users: int | None = None,
        arrival_distribution: str = "even",
        arrival_max_wait: float = 1.0,
    ) -> _Plan:
        from horde.shape import LoadTestShape
        from horde.user import User
        from horde.util.timespan import parse_timespan

        locustfile = None
        if isinstance(target, (str, os.PathLike)):
            locustfile = os.fspath(target)
            user_classes, file_shape = _load_locustfile(locustfile)
            if shape is None:
                shape = file_shape
        elif isinstance(target, type) and issubclass(target, User):
            user_classes = [target]
        elif isinstance(target, Sequence) and target and all(_is_user_class(t, User) for t in target):
            user_classes = list(target)
        else:
            raise ValueError(f"target must be a User class, a list of them or a locustfile path, not {target!r}")
        if not user_classes:
            raise ValueError(f"{locustfile}: no User class found")
        if isinstance(shape, type) and issubclass(shape, LoadTestShape):
            shape = shape()
        if shape is not None and not isinstance(shape, LoadTestShape):
            raise ValueError(f"shape must be a LoadTestShape class or instance, not {shape!r}")
        if isinstance(users, bool) or not isinstance(users, int) or users < 0:
            raise ValueError(f"users must be a whole number >= 0, not {users!r}")
        spawn_rate_given = spawn_rate
        if spawn_rate is None:
            spawn_rate = float(max(users, 1))
        if not (isinstance(spawn_rate, (int, float)) and math.isfinite(spawn_rate) and spawn_rate > 0):
            raise ValueError(f"spawn_rate must be a number > 0, not {spawn_rate!r}")
        if run_time is not None:
            if isinstance(run_time, str):
                try:
                    run_time = float(parse_timespan(run_time))
                except ValueError as e:
                    raise ValueError(f"run_time {run_time!r}: {e}") from None
            if not (isinstance(run_time, (int, float)) and math.isfinite(run_time) and run_time > 0):
                raise ValueError(f"run_time must be > 0 seconds, not {run_time!r}")
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 0:
            raise ValueError(f"max_samples must be a whole number >= 0, not {max_samples!r}")
        if processes == -1:
            processes = os.cpu_count() or 1
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            raise ValueError(f"processes must be a whole number >= 1 (or -1: one per core), not {processes!r}")
        if processes > 1 and not hasattr(os, "fork"):
            raise ValueError("processes > 1 needs os.fork (Linux, macOS)")
        if arrival_rate is not None:
            from horde.arrivals import DISTRIBUTIONS

            if isinstance(arrival_rate, bool) or not isinstance(arrival_rate, (int, float)):
                raise ValueError(f"arrival_rate must be a number of iterations per second, not {arrival_rate!r}")
            if not (math.isfinite(arrival_rate) and arrival_rate > 0):
                raise ValueError(
                    f"arrival_rate must be a number of iterations per second above 0, not {arrival_rate!r}"
                )
            if processes > 1:
                raise ValueError("arrival_rate cannot be combined with processes > 1 (yet)")
            if shape is not None:
                raise ValueError("arrival_rate cannot be combined with a shape (a shape returns ArrivalRate ticks)")
            if arrival_distribution not in DISTRIBUTIONS:
                raise ValueError(
                    f"arrival_distribution must be one of {', '.join(DISTRIBUTIONS)}, not {arrival_distribution!r}"
                )
            if isinstance(arrival_max_wait, bool) or not isinstance(arrival_max_wait, (int, float)):
                raise ValueError(f"arrival_max_wait must be a number of seconds, not {arrival_max_wait!r}")
            if not (math.isfinite(arrival_max_wait) and arrival_max_wait >= 0):
                raise ValueError(f"arrival_max_wait must be a number of seconds >= 0, not {arrival_max_wait!r}")
            if spawn_rate_given is None:
                spawn_rate = float(max(users, 1))  # the pool is started up front
        if max_users is not None:
            if arrival_rate is None:
                raise ValueError("max_users needs arrival_rate (in the closed model users= is the number of users)")
            if isinstance(max_users, bool) or not isinstance(max_users, int) or max_users < max(users, 1):
                raise ValueError(f"max_users must be a whole number >= users ({users}), not {max_users!r}")
        for option, value in (("tags", tags), ("exclude_tags", exclude_tags)):
            if isinstance(value, str):  # list("read") would be the tags r, e, a, d
                raise ValueError(f"{option} must be a list of tags, not a string: {option}=[{value!r}]")
        for user_class in user_classes:
            if host is None and getattr(user_class, "host", None) is None and _needs_host(user_class):
                raise ValueError(f"{user_class.__name__} has no host: pass host='http://...' or set its host attribute")
        return cls(
            user_classes=user_classes,
            locustfile=locustfile,
            host=host,
            users=users,
            spawn_rate=float(spawn_rate),
            run_time=run_time,
            shape=shape,
            tags=list(tags) if tags is not None else None,
            exclude_tags=list(exclude_tags) if exclude_tags is not None else None,
            stop_timeout=float(stop_timeout),
            max_samples=int(max_samples),
            processes=processes,
            arrival_rate=None if arrival_rate is None else float(arrival_rate),
            max_users=max_users,
            arrival_distribution=arrival_distribution,
            arrival_max_wait=float(arrival_max_wait),
        )


def _is_user_class(value: Any, user_base: type) -> bool:
    return isinstance(value, type) and issubclass(value, user_base)


def _needs_host(user_class: type) -> bool:
    from horde.contrib.fasthttp import FastHttpUser
    from horde.user.users import HttpUser

    return issubclass(user_class, (HttpUser, FastHttpUser))


def _load_locustfile(path: str) -> tuple[list[type], Any]:
    from horde import locust_alias
    from horde.util.load_locustfile import load_locustfile

    if not os.path.isfile(path):
        raise ValueError(f"locustfile {path!r} not found")
    locust_alias.install()  # `from locust import ...` in the file resolves to horde
    user_classes, shapes = load_locustfile(path)
    return list(user_classes.values()), (shapes[0] if shapes else None)


class RunHandle:
    """A load test running in the background (from ``horde.start``).

    Attributes:
        environment: The run's Environment (its ``runner``, ``stats``, ``events``).
    """

    def __init__(
        self, plan: _Plan, html: str | os.PathLike[str] | None, listeners: dict[Any, list[Any]] | None = None
    ) -> None:
        self._plan = plan
        self._html = html
        self._listeners = listeners
        self.environment: Any = None
        self._result: Result | None = None
        self._error: BaseException | None = None
        self._started = threading.Event()
        self._done = threading.Event()
        self._loop: Any = None
        self._stop_requested = False
        self._users: list[tuple[float, int]] = []
        self._start_time = time.time()
        self._thread = threading.Thread(target=self._main, name="horde-run", daemon=True)
        # With processes > 1: the worker processes, the master's port, where they leave samples.
        self._children: list[tuple[int, str]] = []
        self._master_port = 0
        self._workdir: str | None = None

    # -- caller's side ---------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether the run has ended."""
        return self._done.is_set()

    @property
    def user_count(self) -> int:
        runner = self.environment.runner if self.environment is not None else None
        return runner.user_count if runner is not None else 0

    @property
    def state(self) -> str:
        """The runner's state: "spawning", "running", "stopped"..."""
        runner = self.environment.runner if self.environment is not None else None
        return runner.state if runner is not None else "ready"

    @property
    def stats(self) -> pd.DataFrame:
        """The statistics so far, as ``Result.stats``."""
        return _stats_frame(self.environment)

    def quantile(self, q: float) -> float:
        """Response time (ms) at quantile q over every request so far."""
        _entries, total, _errors, _start = self.environment.stats.snapshot()
        return total.get_response_time_percentile(q) if total.num_requests else math.nan

    def progress_line(self, final: bool = False) -> str:
        """One line: elapsed time, users, requests/s, p50/p95, failures."""
        if self.environment is None:
            return "starting"
        _entries, total, _errors, _start = self.environment.stats.snapshot()
        elapsed = time.time() - self._start_time
        n = total.num_requests
        rps = total.total_rps if final else total.current_rps
        if n:
            p50, p95 = total.get_response_time_percentile(0.5), total.get_response_time_percentile(0.95)
            percentiles = f"p50 {format_ms(p50)} ms  p95 {format_ms(p95)} ms"
        else:
            percentiles = "p50 -  p95 -"

        fails = f"{total.num_failures} failures ({total.num_failures / n * 100 if n else 0:.2f}%)"
        head = "done" if final else self.state
        return f"{head} {elapsed:5.0f}s  users {self.user_count}  {n} requests  {rps:.1f} req/s  {percentiles}  {fails}"

    def stop(self, now: bool = False) -> None:
        """Stops the run; returns at once.

        Args:
            now: Stop users still in a task at once, rather than giving them ``stop_timeout``
                to finish it (also cuts short a stop already under way).
        """
        self._stop_requested = True
        loop = self._loop
        if loop is not None and not self.done:
            loop.run_callback_threadsafe(self._quit_soon, now)

    def wait(self, timeout: float | None = None) -> Result:
        """Waits for the run to end and returns its Result.

        Raises:
            TimeoutError: the run did not end within ``timeout`` seconds.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"the run did not end within {timeout} s")
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    @property
    def result(self) -> Result | None:
        """The Result once the run has ended, else None."""
        return self._result if self.done else None

    # -- the run's own thread --------------------------------------------------------------

    def _quit_soon(self, now: bool) -> None:
        import gevent

        runner = self.environment.runner if self.environment is not None else None
        if runner is not None:
            gevent.spawn(runner.quit)  # a quit already under way is not run twice
            if now:
                # After the quit has begun its stop: the users it is waiting for are stopped.
                gevent.spawn(runner.stop_now)

    def _main(self) -> None:
        import gevent

        from horde import _bridge

        hub = gevent.get_hub()
        # Tags filter the classes' task lists in place and host= is set on the classes (as Locust
        # does, once per process); a library runs the same classes again, with other tags or
        # hosts or none, so both are put back.
        tasks = _task_lists(self._plan.user_classes)
        hosts = {c: vars(c).get("host", _UNSET) for c in self._plan.user_classes}
        try:
            self._loop = hub.loop
            self._run()
        except BaseException as e:  # reported to the caller by start() or wait()
            self._error = e
        finally:
            for holder, own in tasks.items():
                holder.tasks = own
            for user_class, host in hosts.items():
                if host is not _UNSET:
                    user_class.host = host
                elif "host" in vars(user_class):
                    del user_class.host
            if self._listeners is not None:
                _restore_listeners(self._listeners)
            self._started.set()
            self._done.set()
            _bridge.release(hub)
            hub.destroy(destroy_loop=True)

    def _run(self) -> None:
        import gevent

        from horde import events
        from horde.env import Environment
        from horde.stats import stats_history
        from horde.web.history import per_second_history

        plan = self._plan
        environment = Environment(
            user_classes=plan.user_classes,
            shape_class=plan.shape,
            tags=plan.tags,
            exclude_tags=plan.exclude_tags,
            events=events,
            host=plan.host,
            stop_timeout=plan.stop_timeout,
            parsed_options=_options(plan),
            locustfile=plan.locustfile,
        )
        runner: Any
        if self._children:
            runner = environment.create_master_runner("127.0.0.1", self._master_port)
        else:
            runner = environment.create_local_runner()
        environment.events.init.fire(environment=environment, runner=runner, web_ui=None)
        if plan.max_samples and not self._children:
            environment.stats.record_samples(plan.max_samples)
        if self._children:
            self._wait_for_workers(runner)
        self.environment = environment
        self._start_time = time.time()
        self._started.set()

        history = gevent.spawn(stats_history, runner)
        if self._html is not None:
            per_second_history(environment).start()  # the report's charts
        sampler = gevent.spawn(self._sample_users, runner)
        if not self._stop_requested:  # stop() may come before the loop could take a callback
            if plan.shape is not None:
                runner.start_shape()
            elif plan.arrival_rate is not None:
                runner.start_arrivals(
                    plan.arrival_rate,
                    plan.users,
                    plan.max_users,
                    plan.arrival_distribution,
                    plan.spawn_rate,
                    plan.arrival_max_wait,
                )
                if plan.run_time is not None:
                    gevent.spawn_later(plan.run_time, runner.quit)
            else:
                runner.start(plan.users, plan.spawn_rate)
                if plan.run_time is not None:
                    gevent.spawn_later(plan.run_time, runner.quit)
            runner.greenlet.join()
        runner.quit()
        # Stopped users' requests still in flight would otherwise land after the figures below.
        environment.stats.freeze()
        environment.events.quitting.fire(environment=environment, reverse=True)
        self._users.append((time.time(), runner.user_count))
        sampler.kill(block=False)
        history.kill(block=False)
        if environment.per_second_history is not None:
            environment.per_second_history.stop()
        worker_samples = self._reap_workers() if self._children else None
        self._result = _collect(environment, self._users, plan, self._start_time, worker_samples)
        environment.events.quit.fire(exit_code=self._result.exit_code)
        if self._html is not None:
            self._result.save_html(self._html)

    # -- worker processes (processes > 1) -----------------------------------------------------

    def _fork_workers(self) -> None:
        import tempfile

        self._master_port = _free_port()
        self._workdir = tempfile.mkdtemp(prefix="horde-run-")
        for i in range(self._plan.processes):
            path = os.path.join(self._workdir, f"worker{i}.npz")
            pid = os.fork()
            if pid == 0:  # the child: a worker until its master says quit, then gone
                code = 1
                try:
                    code = _worker_process(self._plan, self._master_port, path)
                except BaseException:
                    logger.exception("A worker process of horde.run failed")
                finally:
                    os._exit(code)
            self._children.append((pid, path))

    def _wait_for_workers(self, runner: Any) -> None:
        import gevent

        deadline = time.monotonic() + 60
        while len(runner.clients.ready) < len(self._children):
            if time.monotonic() > deadline or any(_exited(pid) for pid, _ in self._children):
                runner.quit()
                raise RuntimeError(
                    f"only {len(runner.clients.ready)} of {len(self._children)} worker processes connected"
                )
            gevent.sleep(0.05)

    def _reap_workers(self) -> Samples:
        import shutil

        parts = []
        for pid, path in self._children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            if os.path.exists(path):
                parts.append(Samples.load_columns(path))
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        return Samples.merge(parts)

    def _sample_users(self, runner: Any) -> None:
        import gevent

        while True:
            self._users.append((time.time(), runner.user_count))
            gevent.sleep(0.25)


def _listeners() -> dict[Any, list[Any]]:
    """The listeners of each of the shared event hooks (``horde.events``)."""
    from horde import events
    from horde.event import EventHook

    return {hook: list(hook._handlers) for hook in vars(events).values() if isinstance(hook, EventHook)}


def _restore_listeners(saved: dict[Any, list[Any]]) -> None:
    for hook, handlers in saved.items():
        hook._handlers[:] = handlers


def _task_lists(
    holders: Iterable[_TaskHolder], found: dict[_TaskHolder, list[Any]] | None = None
) -> dict[_TaskHolder, list[Any]]:
    """The task list of each User class and of every TaskSet class nested in them."""
    found = {} if found is None else found
    for holder in holders:
        if isinstance(holder, type) and holder not in found:
            found[holder] = list(holder.tasks)
            _task_lists([t for t in holder.tasks if hasattr(t, "tasks")], found)
    return found


def _options(plan: _Plan) -> Any:
    """Locust's parsed options with their defaults and this run's settings, for locustfiles
    that read ``environment.parsed_options`` (no config file or command line is read)."""
    from horde import argument_parser

    parser = argument_parser.get_parser(default_config_files=[])
    options, _unknown = parser.parse_known_args([])
    options.host = plan.host
    options.num_users = plan.users
    options.spawn_rate = plan.spawn_rate
    options.run_time = int(plan.run_time) if plan.run_time is not None else None
    options.headless = True
    options.tags = plan.tags
    options.exclude_tags = plan.exclude_tags
    options.stop_timeout = plan.stop_timeout
    options.locustfile = plan.locustfile
    options.arrival_rate = plan.arrival_rate
    options.max_users = plan.max_users
    options.arrival_distribution = plan.arrival_distribution
    options.arrival_max_wait = plan.arrival_max_wait
    return options


class _Collector:
    """A csv.writer stand-in that keeps the rows."""

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []

    def writerow(self, row: list[Any]) -> None:
        self.rows.append(list(row))


def _stats_frame(environment: Any) -> pd.DataFrame:
    """``Result.stats``: the columns of Locust's ``_stats.csv``, every time in them the engine's
    precise figure in ms (HDR histogram, 0.1%; exact min and max) where Locust's CSV has whole-ms
    buckets and a median clamped to [min, max]: for a sub-millisecond server that median is the
    minimum, and p95 below the median. NaN where a row has no timed request."""
    from itertools import chain

    from horde.stats import PERCENTILES_TO_REPORT, StatsCSV, sort_stats

    columns = StatsCSV(environment, PERCENTILES_TO_REPORT).requests_csv_columns
    view = environment.stats.view()
    rows = []
    for entry in chain(sort_stats(view.entries), [view.total]):
        timed = entry.num_requests - entry.num_none_requests > 0

        def ms(value: float | None, timed: bool = timed) -> float:
            return float(value) if timed and value is not None else math.nan

        rows.append(
            [
                entry.method,
                entry.name,
                entry.num_requests,
                entry.num_failures,
                ms(entry.get_precise_response_time_percentile(0.5) if timed else None),
                entry.avg_response_time,
                ms(entry.min_response_time),
                ms(entry.max_response_time),
                entry.avg_content_length,
                entry.total_rps,
                entry.total_fail_per_sec,
                *(ms(entry.get_precise_response_time_percentile(p) if timed else None) for p in PERCENTILES_TO_REPORT),
            ]
        )
    frame = pd.DataFrame(rows, columns=columns)
    numeric = columns[2:]
    frame[numeric] = frame[numeric].apply(pd.to_numeric)
    return frame


def _worker_process(plan: _Plan, port: int, samples_path: str) -> int:
    """A forked child of ``horde.run(processes=N)``: runs the users its master (the parent) asks
    for, then leaves its samples in ``samples_path``. Returns its exit code."""
    import gevent

    from horde import events
    from horde.env import Environment

    gevent.reinit()
    # A parent that dies without a word leaves its workers waiting for heartbeats: not a minute.
    os.environ.setdefault("HORDE_MASTER_HEARTBEAT_TIMEOUT", "10")
    environment = Environment(
        user_classes=plan.user_classes,
        tags=plan.tags,
        exclude_tags=plan.exclude_tags,
        events=events,
        host=plan.host,
        stop_timeout=plan.stop_timeout,
        parsed_options=_options(plan),
        locustfile=plan.locustfile,
    )
    runner = environment.create_worker_runner("127.0.0.1", port)
    environment.events.init.fire(environment=environment, runner=runner, web_ui=None)
    if plan.max_samples:
        environment.stats.record_samples(plan.max_samples)
    runner.greenlet.join()
    environment.stats.freeze()
    raw = environment.stats.take_samples()
    if raw is not None:
        Samples(raw, raw["origin"], raw["keys"], raw["dropped"]).save_columns(samples_path)
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exited(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done != 0


def _collect(
    environment: Any,
    users: list[tuple[float, int]],
    plan: _Plan,
    start_time: float,
    worker_samples: Samples | None = None,
) -> Result:
    from horde.stats import StatsCSV

    stats = environment.stats
    if worker_samples is not None:
        samples = worker_samples
    else:
        raw = stats.take_samples()
        samples = Samples(raw, raw["origin"], raw["keys"], raw["dropped"]) if raw is not None else Samples.empty()
    entries, total, _errors, _start = stats.snapshot()
    histograms = {}
    service_histograms = {}
    for entry in [*entries, total]:
        values, counts = entry.histogram()
        histograms[(entry.method, entry.name)] = _Histogram(
            values, counts, entry.min_response_time, entry.max_response_time
        )
        service = entry.service_histogram()
        if service is not None:
            service_values, service_counts = service
            service_histograms[(entry.method, entry.name)] = _Histogram(service_values, service_counts, None, 0.0)
    figures = stats.run_figures()
    own_values, own_counts = figures["own_delay"]
    own_delay = _Histogram(own_values, own_counts, None, 0.0) if len(own_counts) else None
    csv = StatsCSV(environment, [])
    failures = _Collector()
    csv._failures_data_rows(failures)
    exceptions = _Collector()
    csv._exceptions_data_rows(exceptions)
    runner = environment.runner
    if environment.process_exit_code is not None:
        exit_code = environment.process_exit_code
    elif total.num_failures or runner.exceptions:
        exit_code = 1
    else:
        exit_code = 0
    meta = {
        "host": plan.host,
        "users": plan.users,
        "spawn_rate": plan.spawn_rate,
        "run_time": plan.run_time,
        "shape": type(plan.shape).__name__ if plan.shape is not None else None,
        "user_classes": [c.__name__ for c in plan.user_classes],
        "locustfile": plan.locustfile,
        "start_time": start_time,
        "end_time": time.time(),
        "max_samples": plan.max_samples,
        "processes": plan.processes,
        "exit_code": exit_code,
        "interrupted": False,
        "horde_version": _version(),
        "open_model": bool(getattr(stats, "open_model", False)),
    }
    arrivals = getattr(runner, "arrivals", None)
    if meta["open_model"]:
        meta.update(
            arrival_rate=plan.arrival_rate,
            max_users=plan.max_users if plan.max_users is not None else plan.users,
            arrival_distribution=plan.arrival_distribution,
            arrival_max_wait=plan.arrival_max_wait,
            arrivals={
                "scheduled": arrivals.scheduled if arrivals is not None else 0,
                "started": arrivals.started if arrivals is not None else 0,
                "dropped": figures["dropped_iterations"],
            },
        )
    return Result(
        stats=_stats_frame(environment),
        history=build_history(samples, users, total.num_reqs_per_sec, total.num_fail_per_sec),
        failures=pd.DataFrame(failures.rows, columns=csv.failures_columns),
        exceptions=pd.DataFrame(exceptions.rows, columns=csv.exceptions_columns),
        samples=samples,
        histograms=histograms,
        meta=meta,
        environment=environment,
        service_histograms=service_histograms,
        own_delay=own_delay,
    )


def _version() -> str:
    from horde import __version__

    return __version__


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and hasattr(ip, "kernel")


class _Progress:
    """Live progress: an updating display in a notebook, a rewritten line on a terminal."""

    def __init__(self, update: Callable[[str], None], finish: Callable[[str], None]) -> None:
        self.update = update
        self.finish = finish

    @classmethod
    def create(cls, wanted: bool | None) -> _Progress | None:
        if wanted is False:
            return None
        if _in_notebook():
            from IPython.display import display

            handle = display({"text/plain": "starting"}, raw=True, display_id=True)

            def show(line: str) -> None:
                handle.update({"text/plain": line}, raw=True)

            return cls(show, show)
        stream = sys.stderr
        if wanted or stream.isatty():
            width = [0]

            def line(text: str) -> None:
                stream.write("\r" + text.ljust(width[0]))
                width[0] = len(text)
                stream.flush()

            def finish(text: str) -> None:
                line(text)
                stream.write("\n")
                stream.flush()

            return cls(line, finish)
        return None
