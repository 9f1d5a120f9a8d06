"""The ``Environment`` of a run (Locust's ``locust.env``): user classes, options, events, stats and
the runner, shared by everything that takes part in one load test."""

from __future__ import annotations

from collections.abc import Callable
from operator import methodcaller
from typing import Any, cast

from horde.event import Events
from horde.exception import RunnerAlreadyExistsError
from horde.runners import LocalRunner, MasterRunner, Runner, WorkerRunner
from horde.shape import LoadTestShape
from horde.stats import RequestStats
from horde.user import User
from horde.user.task import TaskSet, filter_tasks_by_tags


class Environment:
    """Everything one load test shares. Create it, then ``create_local_runner()``.

    Args:
        user_classes: The User classes to run.
        shape_class: An instance of a ``LoadTestShape`` that drives the user count.
        tags: Run only tasks with these tags (None: take them from ``parsed_options``).
        exclude_tags: Skip tasks with these tags (None: take them from ``parsed_options``).
        events: The event hooks (by default a fresh ``Events``).
        host: Base URL given to users whose class sets none.
        reset_stats: Reset the statistics once all users are spawned.
        stop_timeout: Seconds users get to finish their task when stopped.
        catch_exceptions: Log task exceptions and carry on (True) or let them end the user (False).
        parsed_options: The parsed command line.
    """

    def __init__(
        self,
        *,
        user_classes: list[type[User]] | None = None,
        shape_class: LoadTestShape | None = None,
        tags: list[str] | None = None,
        locustfile: str | None = None,
        exclude_tags: list[str] | None = None,
        events: Events | None = None,
        host: str | None = None,
        reset_stats: bool = False,
        stop_timeout: float | None = None,
        catch_exceptions: bool = True,
        parsed_options: Any = None,
        parsed_locustfiles: list[str] | None = None,
        available_user_classes: dict[str, type[User]] | None = None,
        available_shape_classes: dict[str, LoadTestShape] | None = None,
        available_user_tasks: dict[str, list[TaskSet | Callable]] | None = None,
        dispatcher_class: Any = None,
        profile: str | None = None,
    ) -> None:
        self.runner: Runner | None = None
        self.web_ui: Any = None
        # The per-second sampler of the web UI's and HTML report's charts (web.history).
        self.per_second_history: Any = None
        self.process_exit_code: int | None = None
        self.events = events if events is not None else Events()
        self.locustfile = locustfile
        self.user_classes: list[type[User]] = user_classes or []
        self.shape_class = shape_class
        self.tags = tags
        self.exclude_tags = exclude_tags
        self.stats = RequestStats()
        self.host = host
        self.reset_stats = reset_stats
        self.profile = profile
        if stop_timeout is not None:
            self.stop_timeout = stop_timeout
        elif parsed_options is not None:
            self.stop_timeout = float(getattr(parsed_options, "stop_timeout", 0.0) or 0.0)
        else:
            self.stop_timeout = 0.0
        self.catch_exceptions = catch_exceptions
        self.parsed_options = parsed_options
        self.parsed_locustfiles = parsed_locustfiles
        self.available_user_classes = available_user_classes
        self.available_shape_classes = available_shape_classes
        self.available_user_tasks = available_user_tasks
        self.dispatcher_class = dispatcher_class
        self.worker_logs: dict[str, list[str]] = {}

        self._remove_user_classes_with_weight_zero()
        self._validate_user_class_name_uniqueness()
        self._validate_shape_class_instance()

    @property
    def stats(self) -> RequestStats:
        """The run's request statistics (kept in Rust)."""
        return self._stats

    @stats.setter
    def stats(self, value: RequestStats) -> None:
        self._stats = value
        if self.runner is not None:
            # The runner's request listener logs into the environment's current stats.
            self.runner.stats_listener.stats = value

    def _create_runner(self, runner_class: type[Runner], *args: Any, **kwargs: Any) -> Any:
        if self.runner is not None:
            raise RunnerAlreadyExistsError(f"Environment.runner already exists ({self.runner})")
        self.runner = runner_class(self, *args, **kwargs)
        if self.shape_class is not None:
            self.shape_class.runner = self.runner
        return self.runner

    def create_local_runner(self) -> LocalRunner:
        """A runner that runs every user in this process."""
        return self._create_runner(LocalRunner)

    def create_master_runner(self, master_bind_host: str = "*", master_bind_port: int = 5557) -> MasterRunner:
        return self._create_runner(MasterRunner, master_bind_host=master_bind_host, master_bind_port=master_bind_port)

    def create_worker_runner(self, master_host: str, master_port: int) -> WorkerRunner:
        return self._create_runner(WorkerRunner, master_host=master_host, master_port=master_port)

    def create_web_ui(
        self,
        host: str = "",
        port: int = 8089,
        web_base_path: str | None = None,
        web_login: bool = False,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        stats_csv_writer: Any = None,
        delayed_start: bool = False,
        userclass_picker_is_active: bool = False,
        build_path: str | None = None,
    ) -> Any:
        """Creates the web UI (``horde.web.WebUI``) for this environment as ``self.web_ui`` and,
        unless ``delayed_start``, starts serving it.

        Args:
            host: Interface to listen on: "" is 127.0.0.1 (Locust: every interface), "*" every one.
            port: Port to listen on (0: a free one; ``web_ui.port`` tells which).
            web_base_path: URL prefix of the UI's routes, e.g. "/horde".
            web_login: Require credentials (HORDE_WEB_USER/HORDE_WEB_PASSWORD or a token).
            tls_cert: Certificate file to serve HTTPS with (and ``tls_key``).
            tls_key: Private key file to serve HTTPS with.
            stats_csv_writer: The ``StatsCSV`` that writes the CSV downloads.
            delayed_start: Wait for ``web_ui.start()`` (lets routes be added before serving).
            userclass_picker_is_active: Let the start form choose the User and shape classes.
            build_path: A folder with a custom ``index.html`` (and ``assets/``).

        Returns:
            The ``WebUI``.
        """
        from horde.web import WebUI

        self.web_ui = WebUI(
            self,
            host,
            port,
            web_base_path=web_base_path,
            web_login=web_login,
            tls_cert=tls_cert,
            tls_key=tls_key,
            stats_csv_writer=stats_csv_writer,
            delayed_start=delayed_start,
            userclass_picker_is_active=userclass_picker_is_active,
            build_path=build_path,
        )
        return self.web_ui

    def update_user_class(self, user_settings: dict[str, Any]) -> None:
        """Applies settings from ``--config-users`` (or the web UI) to a User class; a master passes
        them on to its workers, whose users run the class."""
        if isinstance(self.runner, MasterRunner):
            self.runner.send_message("update_user_class", user_settings)
        user_class_name = cast(str, user_settings.get("user_class_name"))
        user_class = (self.available_user_classes or self.user_classes_by_name)[user_class_name]
        user_tasks = (self.available_user_tasks or {}).get(user_class_name, user_class.tasks)
        for key, value in user_settings.items():
            if key not in ("user_class_name", "tasks"):
                setattr(user_class, key, value)
            if key == "tasks":
                user_class.tasks = [t for t in user_tasks if getattr(t, "__name__", None) in value]

    def update_worker_logs(self, worker_log_report: dict[str, Any]) -> None:
        if worker_log_report.get("worker_id"):
            self.worker_logs[worker_log_report["worker_id"]] = worker_log_report.get("logs", [])

    def _filter_tasks_by_tags(self) -> None:
        """Applies --tags/--exclude-tags to every user class, once per environment."""
        if getattr(self, "_tasks_filtered", False):
            return
        self._tasks_filtered = True
        options = self.parsed_options
        if self.tags is not None:
            tags = set(self.tags)
        elif options is not None and getattr(options, "tags", None):
            tags = set(options.tags)
        else:
            tags = None
        if self.exclude_tags is not None:
            exclude_tags = set(self.exclude_tags)
        elif options is not None and getattr(options, "exclude_tags", None):
            exclude_tags = set(options.exclude_tags)
        else:
            exclude_tags = None
        for user_class in self.user_classes:
            filter_tasks_by_tags(user_class, tags, exclude_tags)

    def _remove_user_classes_with_weight_zero(self) -> None:
        if not self.user_classes:
            return
        kept = [u for u in self.user_classes if u.weight > 0 or u.fixed_count > 0]
        if not kept:
            raise ValueError("There are no users with weight > 0.")
        self.user_classes[:] = kept

    def assign_equal_weights(self) -> None:
        """``--equal-weights``: every user class weighs 1 and runs each of its tasks equally often."""
        for u in self.user_classes:
            u.weight = 1
            flat: list[Callable] = []
            frontier = list(u.tasks)
            while frontier:
                t = frontier.pop()
                if isinstance(t, type) and hasattr(t, "tasks"):  # a TaskSet: take its tasks
                    frontier.extend(t.tasks)
                elif callable(t):
                    if t not in flat:
                        flat.append(t)
                else:
                    raise ValueError("Unrecognized task type in user")
            u.tasks = flat

    def _validate_user_class_name_uniqueness(self) -> None:
        if len({u.__name__ for u in self.user_classes}) != len(self.user_classes):
            raise ValueError(
                "The following user classes have the same class name: "
                + ", ".join(map(methodcaller("fullname"), self.user_classes))
            )

    def _validate_shape_class_instance(self) -> None:
        if self.shape_class is not None and not isinstance(self.shape_class, LoadTestShape):
            raise ValueError(
                "shape_class should be instance of LoadTestShape or subclass LoadTestShape, "
                f"but got: {self.shape_class}"
            )

    @property
    def user_classes_by_name(self) -> dict[str, type[User]]:
        return {u.__name__: u for u in self.user_classes}
