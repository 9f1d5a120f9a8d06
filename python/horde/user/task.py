"""Tasks and TaskSets: what a user does, how the next task is picked, and how the control-flow
exceptions (``StopUser``, ``RescheduleTask``, ``InterruptTaskSet``, ...) move a user between them.

``User.run`` drives a ``DefaultTaskSet`` over the user's own tasks; a TaskSet class among the tasks
runs nested until it is interrupted.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, final, overload

import gevent
from gevent import GreenletExit
from greenlet import getcurrent

from horde import _bridge
from horde.exception import (
    InterruptTaskSet,
    MissingWaitTimeError,
    RescheduleTask,
    RescheduleTaskImmediately,
    StopTest,
    StopUser,
)

if TYPE_CHECKING:
    from horde.user.users import User

__all__ = [
    "LOCUST_STATE_RUNNING",
    "LOCUST_STATE_STOPPING",
    "LOCUST_STATE_WAITING",
    "DefaultTaskSet",
    "TaskSet",
    "TaskSetMeta",
    "filter_tasks_by_tags",
    "get_tasks_from_base_classes",
    "tag",
    "task",
]

logger = logging.getLogger(__name__)

TaskT = TypeVar("TaskT", bound=Callable[..., Any])

LOCUST_STATE_RUNNING = "running"
LOCUST_STATE_WAITING = "waiting"
LOCUST_STATE_STOPPING = "stopping"

# Exceptions that end a user (or leave a TaskSet) on purpose: never reported as task errors.
_STOPPING = (StopUser, StopTest, GreenletExit)


@overload
def task(weight: TaskT) -> TaskT: ...


@overload
def task(weight: int = 1) -> Callable[[TaskT], TaskT]: ...


def task(weight: Any = 1) -> Any:
    """Declares a method (or a nested TaskSet class) as a task, picked ``weight`` times as often as
    a task of weight 1. Usable bare (``@task``) or with a weight (``@task(3)``).

    Example::

        class ForumUser(User):
            @task(10)
            def read_thread(self):
                ...

            @task
            class Moderate(TaskSet):
                ...
    """

    def mark(func: TaskT) -> TaskT:
        name = func.__name__
        if name in ("on_start", "on_stop"):
            # Usually a mistake: the method then runs as a task as well as at start/stop.
            logging.warning(
                "You have tagged your on_stop/start function with @task. This will make the method get "
                "called both as a task AND on stop/start."
            )
        if name == "run":
            raise Exception(
                "User.run() is a method used internally by Locust, and you must not override it or register "
                "it as a task"
            )
        func.locust_task_weight = weight  # type: ignore[attr-defined]
        return func

    if callable(weight):
        func, weight = weight, 1
        return mark(func)
    return mark


def tag(*tags: str) -> Callable[[TaskT], TaskT]:
    """Tags a task (or every task of a TaskSet class) so that ``--tags``/``--exclude-tags`` can select it.

    Example::

        class ForumUser(User):
            @tag("read")
            @task
            def read_thread(self):
                ...

    Raises:
        ValueError: If no tag name is given (``@tag`` used without arguments).
    """
    if not tags or callable(tags[0]):
        raise ValueError("No tag name was supplied")

    def mark(decorated: TaskT) -> TaskT:
        if hasattr(decorated, "tasks"):
            # A TaskSet class: tag what it contains, so filtering can keep or drop each of them.
            decorated.tasks = [tag(*tags)(t) for t in decorated.tasks]
        else:
            # Only this object's own set: a subclass must not add to the tags of the function it inherited.
            if "locust_tag_set" not in decorated.__dict__:
                decorated.locust_tag_set = set()  # type: ignore[attr-defined]
            decorated.locust_tag_set |= set(tags)  # type: ignore[attr-defined]
        return decorated

    return mark


def _expand(tasks: Any) -> list[Any]:
    """The flat weighted list for a ``tasks`` attribute: a list of callables, a list of
    ``(callable, weight)`` pairs, or a ``{callable: weight}`` dict."""
    if tasks is None:
        return []
    items: Iterable[Any] = tasks.items() if isinstance(tasks, dict) else tasks
    out: list[Any] = []
    for item in items:
        if isinstance(item, tuple):
            fn, weight = item
            out.extend([fn] * weight)
        else:
            out.append(item)
    return out


def get_tasks_from_base_classes(bases: tuple[type, ...], class_dict: dict[str, Any]) -> list[Any]:
    """The weighted task list of a class being created: its bases' tasks, then its ``tasks``
    attribute, then its ``@task`` members (each repeated ``weight`` times)."""
    collected: list[Any] = []
    for base in bases:
        collected.extend(getattr(base, "tasks", None) or [])
    collected.extend(_expand(class_dict.get("tasks")))
    for member in class_dict.values():
        if "locust_task_weight" in dir(member):
            collected.extend([member] * member.locust_task_weight)
    return collected


def _is_markov_taskset(obj: Any) -> bool:
    # By the metaclass's name, as Locust does, so that this module need not import markov_taskset.
    return type(obj).__name__ == "MarkovTaskSetMeta"


def filter_tasks_by_tags(
    task_holder: Any,
    tags: set[str] | None = None,
    exclude_tags: set[str] | None = None,
    checked: dict[Any, bool] | None = None,
) -> None:
    """Removes, in place and recursively, the tasks of a User or TaskSet class that the tag options
    exclude: with ``tags``, a task must carry one of them; with ``exclude_tags``, none of them. A
    nested TaskSet stays if any of its tasks stays (a MarkovTaskSet always stays)."""
    if checked is None:
        checked = {}
    kept = []
    for t in task_holder.tasks:
        if t in checked:
            if checked[t]:
                kept.append(t)
            continue
        if hasattr(t, "tasks"):
            filter_tasks_by_tags(t, tags, exclude_tags, checked)
            passing = bool(t.tasks) or _is_markov_taskset(t)
        else:
            own = t.locust_tag_set if "locust_tag_set" in dir(t) else None
            passing = True
            if tags is not None:
                passing = own is not None and bool(own & tags)
            if exclude_tags is not None and own is not None and own & exclude_tags:
                passing = False
        if passing:
            kept.append(t)
        checked[t] = passing

    task_holder.tasks = kept
    if not kept and not _is_markov_taskset(task_holder) and not getattr(task_holder, "functions", False):
        logging.warning(f"{task_holder.__name__} had no tasks left after filtering, instantiating it will fail!")


class TaskSetMeta(type):
    """Collects a TaskSet class's tasks (bases, ``tasks`` attribute, ``@task`` methods) into one
    flat weighted list."""

    def __new__(mcs, classname: str, bases: tuple[type, ...], class_dict: dict[str, Any]) -> TaskSetMeta:
        class_dict["tasks"] = get_tasks_from_base_classes(bases, class_dict)
        return type.__new__(mcs, classname, bases, class_dict)


class TaskSet(metaclass=TaskSetMeta):
    """A set of tasks a user runs, picked at random by weight, with a wait after each.

    A TaskSet class can itself be a task: when picked, it runs until one of its tasks calls
    ``self.interrupt()``, and control returns to the parent. ``wait_time`` defaults to the user's.

    Attributes:
        tasks: Callables and/or TaskSet classes; a list, a list of ``(task, weight)`` pairs or a
            ``{task: weight}`` dict (expanded into a flat weighted list when the class is created).
    """

    tasks: list[Any] = []

    # Deprecated (milliseconds): used only when neither the user nor the TaskSet sets wait_time.
    min_wait: float | None = None
    max_wait: float | None = None
    wait_function: Callable[..., float] | None = None

    def __init__(self, parent: Any) -> None:
        # A list, not a deque: it holds a task or two, and a deque costs ~600 bytes per user.
        self._task_queue: list[Any] = []
        self._time_start = time.time()
        self._parent = parent
        self._user: User = parent.user if isinstance(parent, TaskSet) else parent
        # The deprecated attributes fall back to the user's.
        if not self.min_wait:
            self.min_wait = self._user.min_wait
        if not self.max_wait:
            self.max_wait = self._user.max_wait
        if not self.wait_function:
            self.wait_function = self._user.wait_function
        # State of constant_pacing / constant_throughput when set as this TaskSet's wait_time.
        self._cp_last_run: float = time.perf_counter()
        self._cp_last_wait_time: float = 0

    @property
    def user(self) -> User:
        """The User instance this TaskSet runs for."""
        return self._user

    @property
    def parent(self) -> Any:
        """The TaskSet this one is nested in, or the User for a TaskSet among the user's tasks."""
        return self._parent

    @property
    def client(self) -> Any:
        """The user's client (``self.user.client``)."""
        return self._user.client  # type: ignore[attr-defined]  # HttpUser and the like have one; User has not

    def on_start(self) -> None:
        """Called when the user starts running this TaskSet."""

    def on_stop(self) -> None:
        """Called when the user stops running this TaskSet (interrupted, or the user stops)."""

    @final
    def run(self) -> None:
        """Runs tasks until interrupted or the user stops. Do not override."""
        try:
            self.on_start()
        except InterruptTaskSet as e:
            raise _reschedule_for(e) from e

        user = self._user
        if user._pool is not None and user._taskset_instance is self:
            # Open model: the user's first task is its first iteration, which waits for an arrival.
            self.wait()
        cls = type(self)
        # Unless a subclass changes how tasks are queued, a task picked when nothing is queued
        # runs without going through the queue (an append and a pop per task otherwise).
        direct = cls.schedule_task is TaskSet.schedule_task and cls.execute_next_task is TaskSet.execute_next_task
        while True:
            try:
                if self._task_queue:
                    queued = None
                elif direct:
                    queued = self.get_next_task()
                else:
                    self.schedule_task(self.get_next_task())
                    queued = None
                try:
                    if user._state == LOCUST_STATE_STOPPING:
                        raise StopUser()
                    if queued is None:
                        self.execute_next_task()
                    else:
                        self.execute_task(queued)
                except RescheduleTaskImmediately:
                    pass
                except RescheduleTask:
                    self.wait()
                else:
                    self.wait()
            except InterruptTaskSet as e:
                try:
                    self.on_stop()
                except _STOPPING:
                    raise
                except Exception:
                    logging.error("Uncaught exception in on_stop: \n%s", traceback.format_exc())
                raise _reschedule_for(e) from e
            except _STOPPING:
                try:
                    self.on_stop()
                except Exception:
                    logging.error("Uncaught exception in on_stop: \n%s", traceback.format_exc())
                raise
            except Exception as e:
                # As in Locust, user_instance is this TaskSet (a DefaultTaskSet for the user's own tasks).
                user.environment.events.user_error.fire(user_instance=self, exception=e, tb=e.__traceback__)
                if getattr(user.environment, "catch_exceptions", True):
                    logger.error("%s\n%s", e, traceback.format_exc())
                    self.wait()
                else:
                    raise

    def execute_next_task(self) -> None:
        self.execute_task(self._task_queue.pop(0))

    def execute_task(self, task: Any) -> None:
        if getattr(task, "__self__", None) is self:
            task()  # a method already bound to this TaskSet, e.g. from schedule_task(self.method)
        elif isinstance(task, type) and issubclass(task, TaskSet):
            task(self).run()
        else:
            task(self)

    def schedule_task(self, task_callable: Callable[..., Any], first: bool = False) -> None:
        """Queues a task to run next (``first=True``) or after the queued ones.

        Args:
            task_callable: The task: a function of the TaskSet, a bound method, or a TaskSet class.
            first: Put it at the head of the queue.
        """
        if first:
            self._task_queue.insert(0, task_callable)
        else:
            self._task_queue.append(task_callable)

    def get_next_task(self) -> Any:
        if not self.tasks:
            hint = "."
            if getattr(self, "task", None):
                hint = ", but you have set a 'task' attribute - maybe you meant to set 'tasks'?"
            raise Exception(
                f"No tasks defined on {type(self).__name__}{hint} use the @task decorator or set the 'tasks' "
                "attribute of the TaskSet"
            )
        return _pick(self.tasks)

    def wait_time(self) -> float:
        """Seconds to wait after a task; defaults to the user's ``wait_time``."""
        wait_time: Callable[..., float] | None = self._user.wait_time  # a locustfile may set it to None
        if wait_time:
            return wait_time()
        if self.min_wait is not None and self.max_wait is not None:
            return random.randint(int(self.min_wait), int(self.max_wait)) / 1000.0
        raise MissingWaitTimeError(
            f"You must define a wait_time method on either the {type(self._user).__name__} or "
            f"{type(self).__name__} class"
        )

    def wait(self) -> None:
        """Sleeps for ``wait_time()`` seconds (in the open model: until the next arrival). A user
        asked to stop gracefully stops here."""
        user = self._user
        if user._state == LOCUST_STATE_STOPPING:
            raise StopUser()
        user._state = LOCUST_STATE_WAITING
        pool = user._pool
        if pool is not None:
            pool.next_iteration(user)
        else:
            self._sleep(self.wait_time())
        if user._state == LOCUST_STATE_STOPPING:
            raise StopUser()
        user._state = LOCUST_STATE_RUNNING

    def _sleep(self, seconds: float) -> None:
        user = self._user
        b = user._bridge
        if b is None:
            b = user._bridge = _bridge.bridge()
        if seconds <= 0:
            # A zero wait is only there to let the other users run. Greenlets switch only when one
            # yields, so while this user's task ran nobody else sent a request: if the thread's
            # request count moved since this user last got the CPU back, the move is this user's
            # own request, whose wait in the bridge let the others run already, and the extra round
            # trip through the hub can be skipped. Otherwise it yields, as in Locust.
            calls = b.calls
            last = user._calls_at_wait
            if calls != last and last >= 0:  # -1: not known yet, so yield
                user._calls_at_wait = calls
                return
            gevent.sleep(seconds)
        else:
            _timed_sleep(seconds)
        # Back from a yield: others may have sent requests meanwhile, which must not count as this
        # user's own next time.
        user._calls_at_wait = b.calls

    def interrupt(self, reschedule: bool = True) -> None:
        """Leaves this TaskSet and returns control to the parent.

        Args:
            reschedule: The parent picks its next task at once (True) or waits first (False).
        """
        raise InterruptTaskSet(reschedule)


def _timed_sleep(seconds: float) -> None:
    """``gevent.sleep(seconds)`` with the same timer, switching to the hub directly instead of
    through gevent's Waiter. While a user sleeps, greenlet keeps its C stack copied on the heap;
    without Waiter's frames that copy is ~1.4 KB smaller, most of an idle user's memory."""
    hub = gevent.get_hub()
    current = getcurrent()
    if current is hub:
        gevent.sleep(seconds)  # raises gevent's error for blocking in the hub
        return
    loop = hub.loop
    timer = loop.timer(seconds)
    try:
        loop.update_now()  # as gevent.sleep: the delay counts from now, not from the loop's last pass
        timer.start(current.switch)
        hub.switch()
    finally:
        timer.close()


def _pick(tasks: list[Any]) -> Any:
    # random.choice costs about a tenth of a request's Python time; with one task there is no choice.
    return tasks[0] if len(tasks) == 1 else random.choice(tasks)


def _reschedule_for(interrupt: InterruptTaskSet) -> Exception:
    # How the parent continues after this TaskSet is left: at once, or after its wait.
    if interrupt.reschedule:
        return RescheduleTaskImmediately(interrupt.reschedule)
    return RescheduleTask(interrupt.reschedule)


class DefaultTaskSet(TaskSet):
    """The root TaskSet of every user: runs ``User.tasks``, calling each with the user instance."""

    def get_next_task(self) -> Any:
        user = self._user
        if not user.tasks:
            hint = (
                ", but you have set a 'task' attribute on your class - maybe you meant to set 'tasks'?"
                if getattr(user, "task", None)
                else "."
            )
            raise Exception(
                f"No tasks defined on {type(user).__name__}{hint} Use the @task decorator or set the 'tasks' "
                "attribute of the User (or mark it as abstract = True if you only intend to subclass it)"
            )
        return _pick(user.tasks)

    def execute_task(self, task: Any) -> None:
        if isinstance(task, type) and issubclass(task, TaskSet):
            task(self._user).run()
        else:
            task(self._user)
