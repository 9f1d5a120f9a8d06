"""User classes: ``User``, the simulated user a runner spawns, and ``HttpUser``, whose
``self.client`` is an ``HttpSession`` on horde's engine.

Each user runs in its own greenlet: ``on_start``, then tasks picked by weight with a wait after
each, until it is stopped; then ``on_stop``.
"""

from __future__ import annotations

import logging
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any, final

from gevent import GreenletExit
from gevent.greenlet import Greenlet
from gevent.pool import Group

from horde.clients import HttpSession, RestMixin
from horde.exception import StopTest, StopUser
from horde.user.task import (
    LOCUST_STATE_RUNNING,
    LOCUST_STATE_STOPPING,
    LOCUST_STATE_WAITING,
    DefaultTaskSet,
    TaskSet,
    get_tasks_from_base_classes,
)
from horde.user.wait_time import constant

__all__ = ["HttpUser", "RestMixin", "User", "UserMeta"]

logger = logging.getLogger(__name__)

_NO_HOST = (
    "You must specify the base host. Either in the host attribute in the User class, or on the command line "
    "using the --host option."
)


class UserMeta(type):
    """Collects a User class's tasks into one flat weighted list, and makes every class that does
    not say ``abstract = True`` itself a concrete (spawnable) one."""

    def __new__(mcs, classname: str, bases: tuple[type, ...], class_dict: dict[str, Any]) -> UserMeta:
        class_dict["tasks"] = get_tasks_from_base_classes(bases, class_dict)
        if not class_dict.get("abstract"):
            class_dict["abstract"] = False
        _warn_about_task_set(class_dict)
        return type.__new__(mcs, classname, bases, class_dict)


def _warn_about_task_set(class_dict: dict[str, Any]) -> None:
    # Locust 0.x's `task_set = MyTaskSet`; 1.0 replaced it with `tasks = [MyTaskSet]`.
    task_set = class_dict.get("task_set")
    if isinstance(task_set, type) and issubclass(task_set, TaskSet) and not hasattr(task_set, "locust_task_weight"):
        warnings.warn(
            "Usage of User.task_set is deprecated since version 1.0. Set the tasks attribute instead "
            f"(tasks = [{task_set.__name__}])",
            DeprecationWarning,
            stacklevel=3,
        )


class User(metaclass=UserMeta):
    """A simulated user. Subclass it and declare tasks with ``@task`` or ``tasks``.

    Attributes:
        host: Base URL of the system under test (``--host`` overrides it).
        wait_time: Function giving the seconds to wait after each task (``between``, ``constant``, ...).
        tasks: Callables and/or TaskSet classes (list, ``(task, weight)`` pairs or ``{task: weight}``);
            ``@task`` methods are added to it.
        weight: Relative share of this class among the spawned users.
        fixed_count: If > 0, exactly this many users of the class are spawned (first), ignoring ``weight``.
        abstract: True for base classes that are never spawned (subclasses are concrete by default).
        environment: The ``Environment`` this user runs in.
    """

    host: str | None = None
    min_wait: float | None = None  # deprecated, milliseconds: use wait_time
    max_wait: float | None = None  # deprecated, milliseconds: use wait_time
    wait_time: Callable[..., float] = constant(0)
    wait_function: Callable[..., float] | None = None  # deprecated: use wait_time
    tasks: list[Any] = []
    weight: float = 1
    fixed_count: int = 0
    abstract: bool = True
    # The engine-request count of this thread when the user last got the CPU back, and that
    # thread's bridge, which a user, living in one greenlet, keeps (see TaskSet._sleep).
    _calls_at_wait = -1
    _bridge: Any = None
    # Open model (horde.arrivals): the pool this user belongs to, an arrival handed to it at its
    # creation, and the scheduled start (perf_counter) of the iteration it is running until the
    # iteration's first request takes it (see HttpSession._send). None in the closed model.
    _pool: Any = None
    _pending_arrival: float | None = None
    _iteration_start: float | None = None

    def __init__(self, environment: Any) -> None:
        super().__init__()
        self.environment = environment
        self._state: str | None = None
        self._greenlet: Greenlet | None = None
        self._group: Group | None = None
        self._taskset_instance: TaskSet | None = None
        # State of constant_pacing / constant_throughput.
        self._cp_last_run: float = time.perf_counter()
        self._cp_last_wait_time: float = 0

    def on_start(self) -> None:
        """Called when the user starts running, before its first task."""

    def on_stop(self) -> None:
        """Called when the user stops running (also when it is stopped by the runner)."""

    @final
    def run(self) -> None:
        """The user's life: ``on_start``, tasks until stopped, ``on_stop``. Do not override."""
        self._state = LOCUST_STATE_RUNNING
        self._taskset_instance = DefaultTaskSet(self)
        try:
            try:
                self.on_start()
            except (StopUser, StopTest):
                raise
            except Exception as e:
                # Tasks' errors are reported by TaskSet.run; on_start runs before it, so report here.
                # The user then dies with the exception, as in Locust.
                logger.error("%s\n%s", e, traceback.format_exc())
                self.environment.events.user_error.fire(user_instance=self, exception=e, tb=e.__traceback__)
                raise
            self._taskset_instance.run()
        except (GreenletExit, StopUser, StopTest):
            self.on_stop()

    def wait(self) -> None:
        """Sleeps for ``wait_time()`` seconds. A user asked to stop gracefully stops here, so calling
        it inside a long task lets the user stop mid-task (use ``gevent.sleep`` to avoid that)."""
        assert self._taskset_instance is not None, "wait() is only available while the user runs"
        self._taskset_instance.wait()

    def start(self, group: Group) -> Greenlet:
        """Spawns the greenlet that runs this user.

        Args:
            group: The gevent ``Group`` to spawn it in.

        Returns:
            The greenlet; its ``args[0]`` is this user, which the runner relies on.
        """
        self._greenlet = group.spawn(_run_user, self)
        self._group = group
        return self._greenlet

    def stop(self, force: bool = False) -> bool:
        """Stops the user.

        Args:
            force: Kill the greenlet now. Otherwise a waiting (or not yet running) user is killed
                now and a running one stops when its current task ends (at its next ``wait()``).

        Returns:
            True if the greenlet was killed, False if the user will stop after its task.
        """
        # A user that has not started running yet (state None) has nothing to finish either.
        if force or self._state in (None, LOCUST_STATE_WAITING):
            assert self._group is not None and self._greenlet is not None, "stop() before start()"
            self._group.killone(self._greenlet)
            return True
        if self._state == LOCUST_STATE_RUNNING:
            self._state = LOCUST_STATE_STOPPING
            return False
        raise Exception(f"Tried to stop User in an unexpected state: {self._state}. This should never happen.")

    @property
    def group(self) -> Group | None:
        """The gevent ``Group`` the user's greenlet runs in."""
        return self._group

    @property
    def greenlet(self) -> Greenlet | None:
        """The greenlet running this user."""
        return self._greenlet

    def context(self) -> dict:
        """Extra items for the ``context`` of every request event this user fires. Override it."""
        return {}

    @classmethod
    def json(cls) -> dict[str, Any]:
        """The class as the web UI shows it: host, weight, fixed_count and task names."""
        return {
            "host": cls.host,
            "weight": cls.weight,
            "fixed_count": cls.fixed_count,
            "tasks": [t.__name__ for t in cls.tasks],
        }

    @classmethod
    def fullname(cls) -> str:
        """The class's dotted path, e.g. ``my_package.my_module.MyUser`` (without ``<locals>``)."""
        return ".".join(part for part in f"{cls.__module__}.{cls.__qualname__}".split(".") if part != "<locals>")


def _run_user(user: User) -> None:
    # The greenlet's function takes the user as its argument: runners find users by greenlet.args[0].
    user.run()


class HttpUser(User, RestMixin):
    """A user with an HTTP client: ``self.client`` is an ``HttpSession`` that keeps cookies between
    requests and logs every request into the run's statistics.

    Attributes:
        pool_manager: Accepted for compatibility with Locust; the engine pools connections itself.

    Raises:
        StopTest: On creation, if neither the class nor ``--host`` gives a host.
    """

    abstract = True
    pool_manager: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.host is None:
            raise StopTest(_NO_HOST)
        self.client = HttpSession(
            base_url=self.host,
            request_event=self.environment.events.request,
            user=self,
            verify=True,
            pool_manager=self.pool_manager,
        )
        self.client.trust_env = False
