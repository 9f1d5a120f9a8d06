"""The web UI's routes: Locust's endpoints with Locust's JSON, plus ``/stats/history`` and
``/stats/distribution`` for horde's charts, the open model (``arrival_rate`` in ``/swarm``), and
``/metrics`` for Prometheus.

Reading the figures costs an engine snapshot, so ``/stats/requests`` (what every open page polls)
is built at most once per ``STATS_CACHE_SECONDS`` whatever the number of pages, as Locust does.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime
from io import StringIO
from typing import TYPE_CHECKING, Any

import gevent
import numpy
from flask import Blueprint, Response, jsonify, make_response, render_template, request, send_file, send_from_directory
from jinja2 import TemplateNotFound
from werkzeug.exceptions import HTTPException, NotFound

from horde import prometheus, stats
from horde.arrivals import DISTRIBUTIONS
from horde.log import get_logs
from horde.runners import STATE_MISSING, STATE_RUNNING, STATE_SPAWNING, MasterRunner
from horde.util.timespan import parse_timespan
from horde.web.history import snapshot_view

if TYPE_CHECKING:
    from horde.web.app import WebUI

logger = logging.getLogger("horde.web")

STATS_CACHE_SECONDS = 2.0
MAX_ROWS = 500

#: The keys horde adds to Locust's ``/stats/requests`` (scripts written for Locust ignore them):
#: ``RunFigures.to_dict()``'s (what a response time measures, the open model's dropped iterations
#: and service times, horde's own delay), the service times' measure, and the open model's
#: arrivals (rate, users, max_users, distribution; null in the closed model). Each row of
#: ``stats`` also has ``stats.PRECISE_ROW_KEYS``: the times from the HDR histograms, in µs where
#: Locust's are whole milliseconds, which the page's table shows.
HORDE_REQUEST_STATS_KEYS = (
    "open_model",
    "response_time_measure",
    "dropped_iterations",
    "own_delay_ms",
    "own_delay_count",
    "service_time_ms",
    "service_time_measure",
    "arrivals",
)


def format_safe_timestamp(timestamp: float) -> str:
    """Locust's timestamp in download names: local time, ``2026-11-27-14h05``."""
    return datetime.fromtimestamp(int(timestamp)).strftime("%Y-%m-%d-%Hh%M")


class _Memo:
    """One cached response body, rebuilt when older than ``timeout``; the timeout doubles when
    building takes longer than it (Locust's ``memoize(dynamic_timeout=True)``)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.body: str | None = None
        self.made_at = 0.0

    def get(self, build: Any) -> str:
        started = time.monotonic()
        if self.body is None or started - self.made_at > self.timeout:
            self.body = build()
            self.made_at = time.monotonic()
            if self.made_at - started > self.timeout:
                self.timeout *= 2
        return self.body

    def clear(self) -> None:
        self.body = None


def _json(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="application/json")


# Bins of the UI's latency histogram: 12 per decade, so each is ~21% wide, whatever the range.
BINS_PER_DECADE = 12


def _hdr_bins(row: Any) -> dict[str, Any]:
    """The row's HDR histogram (µs resolution, not Locust's whole-ms buckets) regrouped into
    log-spaced ``bins`` of ``[low_ms, high_ms, count]``, with its exact p50/p95/p99 in ms:
    sub-millisecond responses get a readable distribution too."""
    histogram = getattr(row, "histogram", None)
    if histogram is None:
        return {"bins": [], "percentiles": {}}
    values_us, counts = histogram()
    if not len(values_us):
        return {"bins": [], "percentiles": {}}
    low = math.log10(max(float(values_us[0]), 1.0))
    high = math.log10(max(float(values_us[-1]), 1.0))
    first = math.floor(low * BINS_PER_DECADE)
    last = math.floor(high * BINS_PER_DECADE) + 1
    edges = numpy.power(10.0, numpy.arange(first, last + 1) / BINS_PER_DECADE)
    binned, _ = numpy.histogram(numpy.maximum(values_us, 1), bins=edges, weights=counts)
    bins = [[edges[i] / 1000, edges[i + 1] / 1000, int(c)] for i, c in enumerate(binned) if c]
    percentiles = {str(p): row.get_response_time_percentile(p) for p in (0.5, 0.95, 0.99)}
    return {"bins": bins, "percentiles": percentiles}


def _error(message: str, status: int = 400, **extra: Any) -> Response:
    response = jsonify({"success": False, "message": message, **extra})
    response.status_code = status
    return response


def _finite(value: Any) -> Any:
    # JSON has no NaN/Infinity (the browser's JSON.parse rejects them).
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def register_routes(web_ui: WebUI, blueprint: Blueprint) -> None:  # noqa: C901 - one route per function
    """Adds every route of the web UI to ``blueprint``."""
    environment = web_ui.environment
    auth = web_ui.auth_required_if_enabled
    requests_memo = _Memo(STATS_CACHE_SECONDS)
    web_ui.clear_stats_cache = requests_memo.clear  # type: ignore[attr-defined]

    @blueprint.before_request
    def refuse_cross_site_posts() -> Response | None:
        if request.method == "POST" and not web_ui.same_origin():
            return _error("Cross-site request refused", 403)
        return None

    @blueprint.errorhandler(Exception)
    def handle_exception(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            code = error.code or 500
            logger.debug(f"UI got {request.method} {request.path}: {code} {error.name}")
            return _error(error.description or error.name, code)
        # A failing route answers 500; the server (and the test) go on.
        logger.error(f"UI request {request.method} {request.path} failed", exc_info=error)
        return _error(f"{type(error).__name__}: {error}", 500)

    # -- the page -------------------------------------------------------------------------------

    @blueprint.route("/assets/<path:path>")
    def assets(path: str) -> Response:
        for folder in web_ui.asset_folders:
            if os.path.isfile(os.path.join(folder, path)):
                return send_from_directory(folder, path, max_age=0)
        raise NotFound()

    @blueprint.route("/")
    @auth
    def index() -> Any:
        if environment.runner is None:
            return _error("The Environment has no runner", 500)
        web_ui.update_template_args()
        try:
            return render_template("index.html", template_args=web_ui.template_args)
        except TemplateNotFound:
            # A custom --build-path without index.html, or a broken install.
            return _error(f"The web UI's page (index.html) is missing from {web_ui.app.template_folder}", 500)

    # -- controlling the test -------------------------------------------------------------------

    @blueprint.route("/swarm", methods=["POST"])
    @auth
    def swarm() -> Response:
        runner = environment.runner
        if runner is None:
            return jsonify({"success": False, "message": "No runner", "host": environment.host})
        requests_memo.clear()
        user_classes: dict[str, Any] | None = None
        if web_ui.userclass_picker_is_active:
            available = environment.available_user_classes or {}
            if not available:
                return jsonify(
                    {
                        "success": False,
                        "message": "UserClass picker is active but there are no available UserClasses",
                        "host": environment.host,
                    }
                )
            chosen = request.form.getlist("user_classes")
            unknown = sorted(set(chosen) - set(available))
            if unknown:
                return _bad_form(f"Unknown user class(es): {', '.join(unknown)}", environment.host)
            if chosen:
                user_classes = {name: cls for name, cls in available.items() if name in chosen}
            elif runner.state == STATE_RUNNING:
                user_classes = {name: cls for name, cls in available.items() if cls in environment.user_classes}
            else:
                user_classes = dict(available)
            shape_name = request.form.get("shape_class", "Default")
            shapes = environment.available_shape_classes or {}
            if shape_name not in ("Default", "") and shape_name not in shapes:
                return _bad_form(f"Unknown shape class: {shape_name}", environment.host)
            environment.user_classes = list(user_classes.values())
            environment._remove_user_classes_with_weight_zero()
            environment._validate_user_class_name_uniqueness()
            shape = shapes.get(shape_name) if shape_name not in ("Default", "") else None
            if shape is not None:
                shape.runner = runner
            environment.shape_class = shape

        options = environment.parsed_options
        parsed = vars(options) if options is not None else {}
        form = _SwarmForm(user_classes=user_classes)
        for key, value in request.form.items():
            if key == "user_count":
                try:
                    form.user_count = int(value)
                except ValueError:
                    return _bad_form(f"Invalid user_count value: {value!r} (must be an integer)", environment.host)
                if form.user_count > MAX_FORM_USERS:
                    return _bad_form(
                        f"Invalid user_count value: {value[:40]!r}{'...' if len(value) > 40 else ''} "
                        f"(at most {MAX_FORM_USERS:,} users from the web UI)",
                        environment.host,
                    )
                parsed["num_users"] = form.user_count
            elif key == "spawn_rate":
                try:
                    form.spawn_rate = float(value)
                except ValueError:
                    return _bad_form(f"Invalid spawn_rate value: {value!r} (must be a number)", environment.host)
                parsed["spawn_rate"] = form.spawn_rate
            elif key == "host":
                # No markup in a value the page shows again.
                environment.host = str(value).replace("<", "").replace(">", "")
                parsed["host"] = environment.host
            elif key == "user_classes":
                parsed["user_classes"] = request.form.getlist("user_classes")
            elif key == "run_time":
                form.run_time_given = True
                if not value:
                    parsed["run_time"] = None
                    continue
                try:
                    form.run_time = parse_timespan(value)
                except ValueError:
                    return _bad_form(
                        "Valid run_time formats are : 20, 20s, 3m, 2h, 1h20m, 3h30m10s, etc.", environment.host
                    )
                parsed["run_time"] = form.run_time
            elif key == "profile":
                environment.profile = str(value) or None
                parsed["profile"] = environment.profile
            elif key in _OPEN_MODEL_FIELDS:
                problem = form.read_open_model_field(key, value)
                if problem:
                    return _bad_form(problem, environment.host)
            elif key in parsed and key != "shape_class":
                try:
                    parsed[key] = _as_type_of(parsed[key], value, request.form.getlist(key))
                except ValueError:
                    return _bad_form(f"Invalid {key} value: {value!r}", environment.host)

        if form.arrival_rate is not None:
            if isinstance(runner, MasterRunner):
                return _bad_form(
                    "The open model (arrival_rate) is not supported in distributed mode yet: "
                    "leave arrival_rate empty to run with a user count",
                    environment.host,
                )
            if environment.shape_class is not None:
                return _bad_form(
                    "arrival_rate cannot be combined with a LoadTestShape: the shape's ticks set the load",
                    environment.host,
                )
            return start_open_model(runner, form)

        if environment.shape_class is not None:
            runner.start_shape()
            return jsonify(
                {
                    "success": True,
                    "message": f"Swarming started using shape class '{type(environment.shape_class).__name__}'",
                    "host": environment.host,
                }
            )

        user_count, spawn_rate = form.user_count, form.spawn_rate
        if (
            user_count is None
            or user_count < 0
            or spawn_rate is None
            or spawn_rate <= 0
            or not math.isfinite(spawn_rate)
        ):
            return _bad_form("Missing or invalid user_count or spawn_rate from /swarm request", environment.host)
        if open_model_running(runner):
            return _bad_form(
                "An open-model test (arrival rate) is running: stop the test first to start one with a user "
                "count, or send arrival_rate to change its rate",
                environment.host,
            )
        if form.open_model_fields_sent and "arrival_rate" in parsed:
            # horde's own form, starting a closed-model test: the next page shows it that way.
            parsed["arrival_rate"] = None

        running = runner.state in (STATE_SPAWNING, STATE_RUNNING)
        kill_swarm_greenlet()
        run_time = set_run_time_timer(running, form)
        started = gevent.spawn(runner.start, user_count, spawn_rate, user_classes=None)
        started.link_exception(lambda g: logger.error("Starting the users failed", exc_info=g.exc_info))
        web_ui._swarm_greenlet = started
        return jsonify(swarm_started("Swarming started", run_time, form))

    def kill_swarm_greenlet() -> None:
        if web_ui._swarm_greenlet is not None:
            web_ui._swarm_greenlet.kill(block=True)
            web_ui._swarm_greenlet = None

    def set_run_time_timer(running: bool, form: _SwarmForm) -> int | None:
        """Starts the run-time timer of a test started (or edited) from the form; returns the run
        time the answer reports (None: no limit, or a running test's timer kept)."""
        run_time = form.run_time
        options = environment.parsed_options
        if not form.run_time_given and not running and options is not None:
            # A new test without a run time in the form gets the -t of the command line.
            run_time = getattr(options, "run_time", None) or None
        if form.run_time_given or not running:
            # Editing a running test without a run time keeps its timer.
            web_ui.cancel_run_time_timer()
            if run_time:
                web_ui.start_run_time_timer(run_time)
        return run_time

    def swarm_started(message: str, run_time: int | None, form: _SwarmForm) -> dict[str, Any]:
        body: dict[str, Any] = {"success": True, "message": message, "host": environment.host}
        if run_time:
            body["run_time"] = run_time
        if form.user_classes is not None:
            body["user_classes"] = sorted(form.user_classes)
        return body

    def start_open_model(runner: Any, form: _SwarmForm) -> Response:
        """``/swarm`` with an arrival rate: starts an open-model test, or changes the rate (and the
        pool's maximum) of the one running."""
        host = environment.host
        rate = form.arrival_rate
        assert rate is not None
        max_users = form.max_users
        running = runner.state in (STATE_SPAWNING, STATE_RUNNING)
        if running and not open_model_running(runner):
            return _bad_form(
                "A test with a user count (closed model) is running: stop the test first to start one at an "
                "arrival rate",
                host,
            )
        if running:
            arrivals = runner.arrivals
            if max_users is not None and max_users < arrivals.users:
                return _bad_form(
                    f"max_users ({max_users}) must be at least the {arrivals.users} users the test started with",
                    host,
                )
            if form.distribution is not None and form.distribution != arrivals.distribution:
                return _bad_form(
                    f"The arrivals of the running test are {arrivals.distribution}: stop the test first to change "
                    "arrival_distribution",
                    host,
                )
            runner.start_arrivals(rate, arrivals.users, max_users)
            message = f"Arrival rate changed to {rate:g}/s"
        else:
            users, spawn_rate = form.user_count, form.spawn_rate
            if users is None or users < 0:
                return _bad_form("Missing or invalid user_count (the users started up front) from /swarm request", host)
            if spawn_rate is not None and (spawn_rate <= 0 or not math.isfinite(spawn_rate)):
                return _bad_form("Invalid spawn_rate from /swarm request (must be a number above 0)", host)
            if max_users is not None and max_users < users:
                return _bad_form(
                    f"max_users ({max_users}) must be at least user_count ({users}), the users started up front",
                    host,
                )
            if max(users, max_users or 0) < 1:
                return _bad_form("The open model needs a user: give user_count or max_users above 0", host)
            kill_swarm_greenlet()
            try:
                runner.start_arrivals(rate, users, max_users, form.distribution or "even", spawn_rate)
            except (RuntimeError, ValueError, NotImplementedError) as e:
                return _bad_form(f"The test did not start: {e}", host)
            message = "Swarming started"
        # What the next page's form shows (the command line's options, as a closed test's are).
        options = environment.parsed_options
        if options is not None:
            options.arrival_rate = rate
            if max_users is not None or not running:
                options.max_users = max_users
            if not running:
                options.arrival_distribution = form.distribution or "even"
        run_time = set_run_time_timer(running, form)
        requests_memo.clear()
        return jsonify(swarm_started(message, run_time, form))

    @blueprint.route("/stop", methods=["POST"])
    @auth
    def stop() -> Response:
        kill_swarm_greenlet()
        web_ui.cancel_run_time_timer()
        if environment.runner is not None:
            environment.runner.stop()
        requests_memo.clear()
        return jsonify({"success": True, "message": "Test stopped"})

    @blueprint.route("/stats/reset", methods=["POST"])
    @auth
    def reset_stats() -> str:
        environment.events.reset_stats.fire()
        if environment.runner is not None:
            environment.runner.stats.reset_all()
            environment.runner.exceptions = {}
        requests_memo.clear()
        return "ok"

    @blueprint.route("/user", methods=["POST"])
    @auth
    def update_user() -> Any:
        try:
            settings = json.loads(request.data)
        except ValueError as e:
            return _error(f"The body is not JSON: {e}")
        if not isinstance(settings, dict) or not settings.get("user_class_name"):
            return _error("Expected a JSON object with user_class_name")
        try:
            environment.update_user_class(settings)
        except KeyError:
            return _error(f"Unknown user class: {settings.get('user_class_name')}", 404)
        return {}, 201

    # -- statistics -----------------------------------------------------------------------------

    def build_request_stats() -> str:
        runner = environment.runner
        if runner is None:
            return json.dumps(
                {
                    "stats": [],
                    "errors": [],
                    "total_rps": 0.0,
                    "total_fail_per_sec": 0.0,
                    "fail_ratio": 0.0,
                    "current_response_time_percentile_1": None,
                    "current_response_time_percentile_2": None,
                    "state": STATE_MISSING,
                    "user_count": 0,
                }
            )
        view = snapshot_view(runner.stats)
        # The page renders slowly with thousands of rows: the first 500 by name, and the total.
        entries = [*itertools.islice(stats.sort_stats(view.entries), MAX_ROWS)]
        rows = [{**entry.to_dict(), **entry.precise_dict()} for entry in entries]
        total = {**view.total.to_dict(), **view.total.precise_dict()}
        rows.append(total)
        errors = [error.serialize() for error in itertools.islice(view.errors.values(), MAX_ROWS)]
        report: dict[str, Any] = {
            "stats": rows,
            "errors": errors,
            "current_rps": total["current_rps"],
            "current_fail_per_sec": total["current_fail_per_sec"],
            "total_rps": total["total_rps"],
            "total_fail_per_sec": total["total_fail_per_sec"],
            "fail_ratio": view.total.fail_ratio,
            "current_response_time_percentiles": {
                f"response_time_percentile_{p}": view.total.get_current_response_time_percentile(p)
                for p in stats.PERCENTILES_TO_CHART
            },
        }
        if isinstance(runner, MasterRunner):
            # As Locust: every worker the master knows, missing ones too until it forgets them
            # (a minute later); worker_count counts only those ready, spawning or running.
            report["workers"] = [
                {
                    "id": worker.id,
                    "state": worker.state,
                    "user_count": worker.user_count,
                    "cpu_usage": worker.cpu_usage,
                    "memory_usage": worker.memory_usage,
                }
                for worker in runner.clients.values()
            ]
            report["worker_count"] = runner.worker_count
        # A master's state and users: those its workers report.
        report["state"] = runner.state
        report["user_count"] = runner.user_count
        report.update(_run_figures(runner))
        return json.dumps(_finite_tree(report))

    @blueprint.route("/stats/requests")
    @auth
    def request_stats() -> Response:
        return _json(requests_memo.get(build_request_stats))

    @blueprint.route("/stats/history")
    @auth
    def stats_history() -> Response:
        since_text = request.args.get("since")
        since = None
        if since_text not in (None, ""):
            try:
                since = float(since_text)
            except ValueError:
                return _error(f"Invalid since value: {since_text!r} (epoch seconds expected)")
        points = web_ui.history.since(since)
        return _json(json.dumps({"history": _finite_tree(points), "reset_at": web_ui.history.reset_at}))

    @blueprint.route("/stats/distribution")
    @auth
    def distribution() -> Response:
        runner = environment.runner
        if runner is None:
            return _error("The Environment has no runner", 500)
        method = request.args.get("method")
        name = request.args.get("name")
        view = snapshot_view(runner.stats)
        if (method is None and name is None) or (name == "Aggregated" and not method):
            entry = view.total
        else:
            matches = [e for (n, m), e in view.entries.items() if n == name and (method is None or m == method)]
            if len(matches) != 1:
                what = f"{method} {name}" if method is not None else str(name)
                message = f"No statistics for {what}" if not matches else f"Several methods for {name}: give method="
                return _error(message, 404 if not matches else 400)
            entry = matches[0]
        buckets = sorted(entry.response_times.items())
        return jsonify(
            {
                "method": entry.method,
                "name": entry.name,
                "count": sum(count for _, count in buckets),
                "buckets": [[ms, count] for ms, count in buckets],
                **_hdr_bins(entry._row),
            }
        )

    @blueprint.route("/exceptions")
    @auth
    def exceptions() -> Response:
        runner = environment.runner
        rows = list(runner.exceptions.values()) if runner is not None else []
        return jsonify(
            {
                "exceptions": [
                    {
                        "count": row["count"],
                        "msg": row["msg"],
                        "traceback": row["traceback"],
                        "nodes": ", ".join(sorted(row["nodes"])),
                    }
                    for row in rows
                ]
            }
        )

    @blueprint.route("/tasks")
    @auth
    def tasks() -> Response:
        from horde.user.inspectuser import get_ratio

        runner = environment.runner
        # A master's: what its live workers report (Locust's reported_user_classes_count).
        spawned = runner.user_classes_count if runner is not None else {}
        return jsonify(
            {
                "per_class": get_ratio(environment.user_classes, spawned, False),
                "total": get_ratio(environment.user_classes, spawned, True),
            }
        )

    @blueprint.route("/logs")
    @auth
    def logs() -> Response:
        return jsonify({"master": get_logs(), "workers": environment.worker_logs})

    @blueprint.route("/metrics")
    @auth
    def metrics() -> Response:
        # Prometheus' text format; a scrape costs one engine snapshot (see horde.prometheus).
        return Response(web_ui.prometheus.render(), content_type=prometheus.CONTENT_TYPE)

    @blueprint.route("/worker-count")
    @auth
    def worker_count() -> Response:
        runner = environment.runner
        return jsonify({"worker_count": runner.worker_count if isinstance(runner, MasterRunner) else 0})

    # -- downloads ------------------------------------------------------------------------------

    def download_name(kind: str, extension: str = "csv") -> str:
        host = f"_{environment.host}" if environment.host else ""
        suffix = f"_{kind}" if kind else ""
        return (
            f"Locust_{format_safe_timestamp(environment.stats.start_time)}_"
            f"{environment.locustfile}{host}{suffix}.{extension}"
        )

    def csv_download(write: Any, kind: str) -> Response:
        data = StringIO()
        write(csv.writer(data))
        response = make_response(data.getvalue())
        response.headers["Content-Type"] = "text/csv"
        response.headers["Content-Disposition"] = f"attachment;filename={download_name(kind)}"
        return response

    @blueprint.route("/stats/requests/csv")
    @auth
    def requests_csv() -> Response:
        return csv_download(web_ui.stats_csv_writer.requests_csv, "requests")

    @blueprint.route("/stats/failures/csv")
    @auth
    def failures_csv() -> Response:
        return csv_download(web_ui.stats_csv_writer.failures_csv, "failures")

    @blueprint.route("/exceptions/csv")
    @auth
    def exceptions_csv() -> Response:
        return csv_download(web_ui.stats_csv_writer.exceptions_csv, "exceptions")

    @blueprint.route("/stats/requests_full_history/csv")
    @auth
    def full_history_csv() -> Response:
        options = environment.parsed_options
        writer = web_ui.stats_csv_writer
        if (
            options is not None
            and getattr(options, "stats_history_enabled", False)
            and isinstance(writer, stats.StatsCSVFileWriter)
        ):
            return send_file(
                os.path.abspath(writer.stats_history_file_name()),
                mimetype="text/csv",
                as_attachment=True,
                download_name=download_name("requests_full_history"),
                etag=True,
                max_age=0,
                conditional=True,
                last_modified=None,
            )
        return _error("Error: Server was not started with option to generate full history.", 404)

    @blueprint.route("/stats/report")
    @auth
    def report() -> Response:
        from horde.html import get_html_report

        download = bool(request.args.get("download"))
        html = get_html_report(environment, show_download_link=not download, theme=request.args.get("theme", ""))
        response = make_response(html)
        if download:
            response.headers["Content-Disposition"] = f"attachment;filename={download_name('', 'html')}"
        return response


#: The most users a /swarm form may ask for. Far beyond what one machine's memory holds (each user
#: is a greenlet with its own state), so it refuses only typos and hostile forms, whose spawning
#: would otherwise go on until the process runs out of memory.
MAX_FORM_USERS = 10_000_000

#: The /swarm fields of the open model (horde's form sends them, empty in the closed model).
_OPEN_MODEL_FIELDS = ("arrival_rate", "max_users", "arrival_distribution")


@dataclass
class _SwarmForm:
    """What a ``/swarm`` form asks for (None: not given)."""

    user_count: int | None = None
    spawn_rate: float | None = None
    run_time: int | None = None
    run_time_given: bool = False
    user_classes: dict[str, Any] | None = None
    arrival_rate: float | None = None
    """The open model's rate (iterations/s); an empty field is the closed model, as no field is."""
    max_users: int | None = None
    distribution: str | None = None
    open_model_fields_sent: bool = False

    def read_open_model_field(self, key: str, value: str) -> str | None:
        """Reads one of ``_OPEN_MODEL_FIELDS``; returns what is wrong with its value, if anything."""
        self.open_model_fields_sent = True
        if not value.strip():
            return None
        if key == "arrival_rate":
            try:
                self.arrival_rate = _arrival_rate(value)
            except ValueError:
                return (
                    f"Invalid arrival_rate value: {value!r} (must be a number of iterations per second above 0; "
                    "leave it empty for the closed model)"
                )
        elif key == "max_users":
            try:
                self.max_users = _max_users(value)
            except ValueError:
                return f"Invalid max_users value: {value!r} (must be a whole number of users, at least 1)"
        elif value in DISTRIBUTIONS:
            self.distribution = value
        else:
            return f"Invalid arrival_distribution value: {value!r} (must be {' or '.join(DISTRIBUTIONS)})"
        return None


def open_model_running(runner: Any) -> bool:
    """Whether ``runner`` runs an open-model test now (its arrivals are being scheduled)."""
    arrivals = getattr(runner, "arrivals", None)
    return runner.state in (STATE_SPAWNING, STATE_RUNNING) and arrivals is not None and not arrivals.stopped


def _arrival_rate(value: str) -> float:
    """A form's arrival rate: a finite number of iterations per second above 0 (else ValueError)."""
    rate = float(value)
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(value)
    return rate


def _max_users(value: str) -> int:
    """A form's max_users: a whole number of users, at least 1 (else ValueError)."""
    count = int(value)
    if count < 1:
        raise ValueError(value)
    return count


def _run_figures(runner: Any) -> dict[str, Any]:
    """horde's keys of ``/stats/requests`` (``HORDE_REQUEST_STATS_KEYS``)."""
    figures = stats.run_figures(runner.stats).to_dict()
    figures["service_time_measure"] = stats.SERVICE_TIME_MEASURE if figures["open_model"] else None
    arrivals = getattr(runner, "arrivals", None)
    figures["arrivals"] = None
    if figures["open_model"] and arrivals is not None:
        figures["arrivals"] = {
            "rate": arrivals.rate,
            "users": arrivals.users,
            "max_users": arrivals.max_users,
            "distribution": arrivals.distribution,
        }
    return figures


def _bad_form(message: str, host: str | None = None) -> Response:
    # As Locust: status 200 with success false, so the page shows the message in the form.
    logger.error(message)
    return jsonify({"success": False, "message": message, "host": host})


def _as_type_of(current: Any, value: str, values: list[str]) -> Any:
    """A form value for a parsed option, given the option's current value's type (Locust's rules)."""
    if isinstance(current, bool):
        return value == "true"
    if current is None:
        return value
    if isinstance(current, list):
        items = value.split(",") if "," in value else values
        if current and all(isinstance(x, int) for x in current):
            return [int(x) for x in items]
        return items
    return type(current)(value)


def _finite_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_tree(v) for v in value]
    return _finite(value)
