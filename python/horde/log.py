"""Logging set-up and the state of unhandled errors (Locust's ``locust.log``).

The console table goes through the ``locust.stats_logger`` logger without a prefix; everything else
gets Locust's ``[time] host/LEVEL/logger: message`` format on stderr.
"""

from __future__ import annotations

import logging
import logging.config
import socket
from collections import deque
from typing import Any

HOSTNAME = socket.gethostname().split(".")[0]

# Set when an event listener or a greenlet raised an unhandled exception: the run then exits 2.
unhandled_greenlet_exception = False


class LogReader(logging.Handler):
    """Keeps the last lines logged, for the web UI's /logs."""

    def __init__(self) -> None:
        super().__init__()
        self.logs: deque[str] = deque(maxlen=500)

    def emit(self, record: logging.LogRecord) -> None:
        self.logs.append(self.format(record))


def setup_logging(loglevel: str, logfile: str | None = None) -> None:
    """Configures the root, ``locust`` and ``horde`` loggers as Locust does."""
    loglevel = loglevel.upper()
    handlers = ["file", "log_reader"] if logfile else ["console", "log_reader"]
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"format": f"[%(asctime)s] {HOSTNAME}/%(levelname)s/%(name)s: %(message)s"},
            "plain": {"format": "%(message)s"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "default"},
            "console_plain": {"class": "logging.StreamHandler", "formatter": "plain"},
            "log_reader": {"class": "horde.log.LogReader", "formatter": "default"},
        },
        "loggers": {
            "locust": {"handlers": handlers, "level": loglevel, "propagate": False},
            "horde": {"handlers": handlers, "level": loglevel, "propagate": False},
            "locust.stats_logger": {"handlers": ["console_plain", "log_reader"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": handlers, "level": loglevel},
    }
    if logfile:
        config["handlers"]["file"] = {"class": "logging.FileHandler", "filename": logfile, "formatter": "default"}
    logging.config.dictConfig(config)


def get_logs() -> list[str]:
    """The recent log lines kept for the web UI."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LogReader):
            return list(handler.logs)
    return []


def greenlet_exception_logger(logger: logging.Logger, level: int = logging.CRITICAL) -> Any:
    """A ``Greenlet.link_exception`` callback that logs the greenlet's unhandled exception and
    marks the run as ended by an unhandled error (exit code 2)."""

    def handler(greenlet: Any) -> None:
        global unhandled_greenlet_exception
        if greenlet.exc_info[0] is SystemExit:
            logger.log(min(logging.INFO, level), f"sys.exit({greenlet.exc_info[1]}) called")
        else:
            logger.log(level, "Unhandled exception in greenlet: %s", greenlet, exc_info=greenlet.exc_info)
        unhandled_greenlet_exception = True

    return handler
