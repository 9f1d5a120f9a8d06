"""``run_single_user``: runs one user in the foreground, printing every request, so that a
locustfile can be stepped through in a debugger (``if __name__ == "__main__": run_single_user(MyUser)``).
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from horde.exception import CatchResponseError

if TYPE_CHECKING:
    from horde.user import User

__all__ = ["PrintListener", "run_single_user"]


def _print_cell(value: Any) -> None:
    print(str(value), end="\t")


class PrintListener:
    """Prints one tab-separated line per request (after a header line), as Locust's debug mode.

    Args:
        env: The Environment whose request event to listen to.
        include_length: Add the response length column.
        include_time: Add the request's start time column.
        include_context: Add the request context column.
        include_payload: Add the request body column.
    """

    def __init__(
        self,
        env: Any,
        include_length: bool = False,
        include_time: bool = False,
        include_context: bool = False,
        include_payload: bool = False,
    ) -> None:
        env.events.request.add_listener(self.on_request)
        self.include_length = "length\t" if include_length else ""
        self.include_time = "time                    \t" if include_time else ""
        self.include_context = "context\t" if include_context else ""
        self.include_payload = "payload\t" if include_payload else ""
        print(
            f"\n{self.include_time}type\t{'name'.ljust(50)}\tresp_ms\t{self.include_length}exception\t"
            f"{self.include_context}\t{self.include_payload}"
        )

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: Any,
        context: dict | None = None,
        start_time: float | None = None,
        response: Any = None,
        **_kwargs: Any,
    ) -> None:
        if exception:
            if isinstance(exception, CatchResponseError):
                text = str(exception)
            else:
                try:
                    text = repr(exception)
                except AttributeError:
                    text = f"{exception.__class__} (and it has no string representation)"
            error = text[:500].replace("\n", " ")
        else:
            error = ""

        if self.include_time:
            when = datetime.fromtimestamp(start_time, tz=timezone.utc) if start_time else datetime.now()
            _print_cell(when)
        _print_cell(request_type)
        _print_cell((name.ljust(30) if name else "").ljust(50))
        _print_cell(str(round(response_time if response_time is not None else -1)).ljust(7))
        if self.include_length:
            _print_cell(response_length)
        _print_cell(error.ljust(9))
        if self.include_context:
            _print_cell(context or "")
        if self.include_payload:
            request = getattr(response, "request", None)
            _print_cell(getattr(request, "body", None))
        print()


# The Environment of run_single_user, created on the first call and reused by later ones.
_env: Any = None


def _parsed_options(locustfile: str) -> Any:
    """The command line's options when horde's parser is available (``--host`` and ``LOCUST_HOST``
    then work as in a normal run), else the few options a single user needs."""
    options: Any = None
    try:
        from horde import argument_parser

        options, _unknown = argument_parser.get_parser().parse_known_args(sys.argv[1:])
    except (ImportError, AttributeError, SystemExit):
        options = None
    if options is None:
        options = SimpleNamespace(host=os.environ.get("LOCUST_HOST") or None, tags=None, exclude_tags=None)
    options.locustfile = locustfile
    return options


def _setup_logging(loglevel: str) -> None:
    try:
        from horde.log import setup_logging
    except ImportError:
        logging.basicConfig(level=loglevel.upper())
        return
    setup_logging(loglevel)


def run_single_user(
    user_class: type[User],
    include_length: bool = False,
    include_time: bool = False,
    include_context: bool = False,
    include_payload: bool = False,
    loglevel: str | None = "WARNING",
) -> None:
    """Runs one user of ``user_class`` in the calling greenlet until it stops, printing each request.

    The first call creates an Environment (with the global ``events``), prints a header line and
    fires ``init``; every call fires ``test_start``. ``test_stop`` and ``quit`` are never fired.
    The user is reachable as ``environment.single_user_instance``.

    Args:
        user_class: The User class to run.
        include_length: Print each response's length.
        include_time: Print each request's start time.
        include_context: Print each request's context.
        include_payload: Print each request's body.
        loglevel: Log level to set up (WARNING by default, so that logs do not drown the
            printed requests); None leaves logging as it is.
    """
    global _env
    import horde
    from horde.env import Environment

    if loglevel:
        _setup_logging(loglevel)

    if _env is None:
        # The caller's file name stands in for the locustfile, for code that looks at it.
        locustfile = os.path.basename(inspect.stack()[1].filename)
        options = _parsed_options(locustfile)
        events = getattr(horde, "events", None)
        kwargs: dict[str, Any] = {"host": options.host, "parsed_options": options}
        if events is not None:
            kwargs["events"] = events
        try:
            _env = Environment(locustfile=locustfile, **kwargs)
        except TypeError:
            _env = Environment(**kwargs)
        PrintListener(
            _env,
            include_length=include_length,
            include_time=include_time,
            include_context=include_context,
            include_payload=include_payload,
        )
        _env.events.init.fire(environment=_env, runner=None, web_ui=None)
        # A failing init listener is only logged; stop here rather than debug a half-initialised run.
        from horde import log

        if log.unhandled_greenlet_exception:
            os._exit(1)

    _env.user_classes = [user_class]
    _env._filter_tasks_by_tags()
    _env.events.test_start.fire(environment=_env)
    if _env.host:
        user_class.host = _env.host

    user = user_class(_env)
    _env.single_user_instance = user
    user.run()
