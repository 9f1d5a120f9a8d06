"""``WebUI``: the Flask app of horde's web UI, served by gevent's WSGI server in the users' hub.

Built as Locust's ``locust.web.WebUI`` is, so locustfiles that extend the UI keep working:
``environment.web_ui.app`` is the Flask app (add routes to it in an ``init`` listener),
``auth_required_if_enabled`` protects them, ``template_args`` feeds ``index.html``. The routes
themselves are in ``horde.web.routes``; ``--web-login`` is in ``horde.web.auth``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import gevent
from flask import Blueprint, Flask, jsonify, make_response, request
from gevent import pywsgi

from horde import __version__
from horde.arrivals import DISTRIBUTIONS
from horde.prometheus import Exposition
from horde.runners import MasterRunner
from horde.web.auth import TOKEN_COOKIE, Credentials
from horde.web.history import per_second_history

if TYPE_CHECKING:
    from horde.env import Environment

logger = logging.getLogger("horde.web")

WEB_DIR = os.path.dirname(os.path.abspath(__file__))
TEMPLATE_DIR = os.path.join(WEB_DIR, "templates")
STATIC_DIR = os.path.join(WEB_DIR, "static")
DEFAULT_PORT = 8089
LOOPBACK = "127.0.0.1"
#: The largest request body the UI reads (its forms and JSON are a few kilobytes).
MAX_REQUEST_BODY = 256 * 1024


def _number(value: Any) -> float | None:
    # bool is an int to Python, and no rate.
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def bind_address(host: str | None) -> str:
    """The interface to listen on for ``--web-host``: loopback unless told otherwise.

    Unlike Locust (whose default "" means every interface), an empty host means 127.0.0.1;
    "*" means every IPv4 interface ("0.0.0.0").
    """
    if not host:
        return LOOPBACK
    if host == "*":
        return "0.0.0.0"
    return host


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name) is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class WebUI:
    """The web UI: a Flask app serving Locust's endpoints (and horde's), started in a greenlet.

    Args:
        environment: The Environment to control and report on.
        host: Interface to listen on ("" → 127.0.0.1, "*" → all; see ``bind_address``).
        port: Port to listen on (0: any free port; ``port`` then tells which).
        web_base_path: URL prefix of every built-in route (e.g. "/locust"); "" for the root.
        web_login: Require credentials (see ``horde.web.auth``).
        tls_cert: Certificate file for serving HTTPS (with ``tls_key``).
        tls_key: Private key file for serving HTTPS.
        stats_csv_writer: Writes the CSV downloads (a ``StatsCSVFileWriter`` with
            ``--csv-full-history`` also serves the history file).
        delayed_start: Do not listen until ``start()`` (lets an ``init`` listener add routes first).
        userclass_picker_is_active: ``--class-picker``: the swarm form chooses the classes.
        build_path: A folder with a custom ``index.html`` template (and ``assets/``).
    """

    app: Flask
    """The Flask app; add routes with ``@web_ui.app.route(...)``."""

    greenlet: gevent.Greenlet | None
    """The greenlet running the server."""

    server: pywsgi.WSGIServer | None
    """The gevent WSGI server."""

    template_args: dict[str, Any]
    """What ``index.html`` receives (as ``template_args``); refreshed on every ``GET /``."""

    def __init__(
        self,
        environment: Environment,
        host: str,
        port: int,
        web_base_path: str | None = None,
        web_login: bool = False,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        stats_csv_writer: Any = None,
        delayed_start: bool = False,
        userclass_picker_is_active: bool = False,
        build_path: str | None = None,
    ) -> None:
        from horde import stats

        environment.web_ui = self
        self.environment = environment
        self.requested_host = host
        self.host = bind_address(host)
        self.port = port
        self.web_base_path = (web_base_path or "").rstrip("/")
        self.web_login = web_login
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.userclass_picker_is_active = userclass_picker_is_active
        self.stats_csv_writer = stats_csv_writer or stats.StatsCSV(environment, stats.PERCENTILES_TO_REPORT)
        self.credentials: Credentials | None = Credentials.from_environment() if web_login else None
        self.greenlet = None
        self.server = None
        self.template_args = {}
        self.auth_args: dict[str, Any] = {}
        self.history = per_second_history(environment)
        # GET /metrics: the run's figures for Prometheus.
        self.prometheus = Exposition(environment)
        self._swarm_greenlet: gevent.Greenlet | None = None
        self._run_time_greenlet: gevent.Greenlet | None = None

        template_folder = build_path or TEMPLATE_DIR
        # The static folder is served by the blueprint, under the base path, as Locust's /assets.
        self.app = Flask("horde.web", template_folder=template_folder, static_folder=None)
        # Werkzeug bounds the memory of multipart forms only: without a limit, a urlencoded /swarm
        # form (a huge host, say) is read whole. The UI's own bodies are a few kilobytes.
        self.app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BODY
        self.asset_folders = [os.path.join(build_path, "assets")] if build_path else []
        self.asset_folders.append(STATIC_DIR)

        blueprint = Blueprint("horde", __name__, url_prefix=self.web_base_path or None)
        from horde.web.routes import register_routes

        register_routes(self, blueprint)
        self.app.register_blueprint(blueprint)

        if environment.runner is not None:
            self.update_template_args()
        if not delayed_start:
            self.start()

    # -- serving ------------------------------------------------------------------------------

    def start(self) -> None:
        """Listens on (host, port) now, then serves from a greenlet.

        Raises:
            OSError: when the port cannot be bound (in use, no permission...).
        """
        if self.server is not None:
            return
        ssl_args: dict[str, Any] = {}
        if self.tls_cert and self.tls_key:
            ssl_args = {"certfile": self.tls_cert, "keyfile": self.tls_key}
        self.server = pywsgi.WSGIServer((self.host, self.port), self.app, log=None, error_log=logger, **ssl_args)
        # Bound here, not in the greenlet, so a busy port is an error the caller sees at once.
        self.server.init_socket()
        self.port = cast(int, self.server.server_port)  # not None: init_socket has bound it
        if not self.web_login and not is_loopback(self.host):
            logger.warning(
                f"The web UI listens on {self.host}, beyond this machine, without --web-login: anyone who can "
                "reach the port can start load tests from it"
            )
        self.history.start()
        self.greenlet = gevent.spawn(self.start_server)
        # The run goes on without the UI; its own errors are only logged.
        self.greenlet.link_exception(lambda g: logger.error("The web UI server stopped", exc_info=g.exc_info))

    def start_server(self) -> None:
        """Serves requests until ``stop()`` (the greenlet's body)."""
        assert self.server is not None
        self.server.serve_forever()

    def stop(self) -> None:
        """Stops the server and the history sampler."""
        self.history.stop()
        if self.server is not None:
            self.server.stop(timeout=1)

    @property
    def url(self) -> str:
        """The UI's address (with ``?token=`` when a token is required)."""
        scheme = "https" if self.tls_cert and self.tls_key else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        url = f"{scheme}://{host}:{self.port}{self.web_base_path}/"
        if self.credentials is not None and self.credentials.token is not None:
            url += f"?token={self.credentials.token}"
        return url

    # -- authentication -----------------------------------------------------------------------

    def auth_required_if_enabled(self, view_func: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator for routes that require the credentials when ``--web-login`` is on::

        @web_ui.app.route("/my_custom_route")
        @web_ui.auth_required_if_enabled
        def my_custom_route():
            return "custom response"
        """

        @wraps(view_func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not self.web_login or self.credentials is None:
                return view_func(*args, **kwargs)
            how = self.credentials.check(request)
            if how is None:
                return self._unauthorized()
            if how != "query":
                return view_func(*args, **kwargs)
            # A visit with ?token= leaves a cookie, so links (downloads, the report) work after it.
            response = make_response(view_func(*args, **kwargs))
            response.set_cookie(
                TOKEN_COOKIE,
                self.credentials.token or "",
                httponly=True,
                samesite="Strict",
                secure=bool(self.tls_cert and self.tls_key),
                path=self.web_base_path or "/",
            )
            return response

        return wrapper

    def _unauthorized(self) -> Any:
        assert self.credentials is not None
        ways = []
        if self.credentials.uses_basic:
            ways.append("HTTP Basic auth (HORDE_WEB_USER/HORDE_WEB_PASSWORD)")
        if self.credentials.token is not None:
            ways.append("a token (Authorization: Bearer <token>, or ?token=<token>)")
        response = jsonify({"success": False, "message": "Authentication required: " + " or ".join(ways)})
        response.status_code = 401
        if self.credentials.uses_basic:
            # Makes a browser ask for the user and password.
            response.headers["WWW-Authenticate"] = 'Basic realm="horde", charset="UTF-8"'
        return response

    def same_origin(self) -> bool:
        """False for a request a browser sent from another site's page (its Origin differs from
        the Host it was sent to): the state-changing routes refuse those (cross-site request
        forgery against a UI on localhost)."""
        origin = request.headers.get("Origin")
        if not origin or origin == "null":
            return origin is None
        return urlsplit(origin).netloc.lower() == (request.host or "").lower()

    # -- the page -----------------------------------------------------------------------------

    def update_template_args(self) -> None:
        """Refreshes ``template_args`` from the environment (keeps keys others added)."""
        environment = self.environment
        runner = environment.runner
        options = environment.parsed_options
        available = sorted(environment.available_user_classes or environment.user_classes_by_name)
        run_time = getattr(options, "run_time", None) if options is not None else None
        num_users = getattr(options, "num_users", None) if options is not None else None
        spawn_rate = getattr(options, "spawn_rate", None) if options is not None else None
        # The open model's options (--arrival-rate, --max-users, --arrival-distribution) fill the
        # form's "Open model" fields (numbers only: a locustfile may own an option of that name).
        arrival_rate = _number(getattr(options, "arrival_rate", None))
        max_users = _number(getattr(options, "max_users", None))
        distribution = getattr(options, "arrival_distribution", None)
        # On a master the page shows its workers (Locust's is_distributed and worker_count).
        is_distributed = isinstance(runner, MasterRunner)
        worker_count = runner.worker_count if isinstance(runner, MasterRunner) else 0
        auth_token = None
        if self.credentials is not None and self.credentials.token is not None:
            auth_token = self.credentials.token
        self.template_args = {
            **self.template_args,
            "host": self._form_host(),
            "num_users": int(num_users) if num_users is not None else None,
            "spawn_rate": float(spawn_rate) if spawn_rate is not None else None,
            "run_time": f"{int(run_time)}s" if run_time else None,
            "arrival_rate": arrival_rate if arrival_rate and not is_distributed else None,
            "max_users": int(max_users) if max_users else None,
            "arrival_distribution": distribution if distribution in DISTRIBUTIONS else DISTRIBUTIONS[0],
            "arrival_distributions": list(DISTRIBUTIONS),
            "state": runner.state if runner is not None else "missing",
            "user_classes": available,
            "selected_user_classes": [u.__name__ for u in environment.user_classes],
            "show_userclass_picker": bool(self.userclass_picker_is_active),
            "is_shape": environment.shape_class is not None,
            "is_distributed": is_distributed,
            "worker_count": worker_count,
            "version": __version__,
            "locustfile": environment.locustfile or "",
            "base_path": self.web_base_path,
            "auth_token": auth_token,
        }

    def _form_host(self) -> str:
        # As Locust: the -H host, else the one host every user class names, else "".
        if self.environment.host:
            return str(self.environment.host)
        hosts = {getattr(u, "host", None) for u in self.environment.user_classes}
        if len(hosts) == 1:
            return str(next(iter(hosts)) or "")
        return ""

    # -- running tests ------------------------------------------------------------------------

    def cancel_run_time_timer(self) -> None:
        """Forgets the run-time limit of the current test."""
        if self._run_time_greenlet is not None:
            self._run_time_greenlet.kill(block=False)
            self._run_time_greenlet = None

    def start_run_time_timer(self, seconds: float) -> None:
        """Stops the test after ``seconds`` (the UI stays up)."""
        self.cancel_run_time_timer()
        self._run_time_greenlet = gevent.spawn_later(seconds, self._stop_at_run_time)

    def _stop_at_run_time(self) -> None:
        self._run_time_greenlet = None
        logger.info("--run-time limit reached, stopping test")
        if self.environment.runner is not None:
            self.environment.runner.stop()
