"""The ``--html`` report: one self-contained HTML file (Locust's ``locust.html``).

Tables are rendered here; charts are drawn in the browser by the report's own script from the
data embedded as JSON. Nothing is loaded from the network. Beside Locust's content it says what
the response times measure and horde's own delay, and in the open model (``--arrival-rate``) the
dropped iterations and the uncorrected service times. The tables show the engine's precise
times (HDR histograms, µs where it matters) and the charts a point a second; the embedded data
keeps Locust's figures beside them.
"""

from __future__ import annotations

import html
import inspect
import json
import math
import re
from datetime import datetime, timezone
from importlib import resources
from string import Template
from typing import Any

from horde import _core
from horde import stats as stats_module

PERCENTILES_FOR_HTML_REPORT = [0.50, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0]

_STOPPED_STATES = ("stopped", "stopping")


def _asset(name: str) -> str:
    return (resources.files("horde") / "report" / name).read_text(encoding="utf-8")


def _utc_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_duration(start_time: float, end_time: float) -> str:
    """Whole seconds between two epoch times in words, e.g. ``"1 hour, 2 minutes and 5 seconds"``."""
    seconds = max(int(end_time) - int(start_time), 0)
    amounts = [
        (seconds // 86400, "day"),
        (seconds % 86400 // 3600, "hour"),
        (seconds % 3600 // 60, "minute"),
        (seconds % 60, "second"),
    ]
    parts = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in amounts if n]
    if not parts:
        return "0 seconds"
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


# ---------------------------------------------------------------------------------------------
# What the report shows


def _report_host(environment: Any, runner: Any) -> str | None:
    if getattr(environment, "host", None):
        return environment.host
    classes = getattr(runner, "user_classes", None) or getattr(environment, "user_classes", None) or []
    hosts = {getattr(u, "host", None) for u in classes}
    return hosts.pop() if len(hosts) == 1 else None


def _user_counts(environment: Any, runner: Any) -> dict[str, int] | None:
    """Users per class at the end (or now); None if the runner does not tell."""
    if runner is None:
        return None
    counts = None
    try:
        if getattr(runner, "state", None) in _STOPPED_STATES:
            counts = getattr(runner, "final_user_classes_count", None)
        if not counts:
            counts = getattr(runner, "reported_user_classes_count", None) or getattr(runner, "user_classes_count", None)
    except Exception:  # a runner's property may fail on a half-built run; the report goes on
        return None
    return dict(counts) if isinstance(counts, dict) else None


def _task_name(task: Any) -> str:
    return getattr(task, "__name__", None) or type(task).__name__


def _task_ratios(tasks: Any, scale: float, depth: int = 0) -> dict[str, Any]:
    """Each task's share of its parent (times ``scale``); a nested TaskSet lists its own tasks."""
    tasks = list(tasks or [])
    if not tasks or depth > 20:
        return {}
    counts: dict[Any, int] = {}
    for task in tasks:  # a task listed twice has twice the weight
        counts[task] = counts.get(task, 0) + 1
    ratios: dict[str, Any] = {}
    for task, n in counts.items():
        share = n * scale / len(tasks)
        node: dict[str, Any] = {"ratio": share}
        if inspect.isclass(task) and hasattr(task, "tasks"):
            node["tasks"] = _task_ratios(task.tasks, share, depth + 1)
        ratios[_task_name(task)] = node
    return ratios


def get_ratio(user_classes: list[Any], user_spawned: dict[str, int], total: bool) -> dict[str, Any]:
    """Locust's task-ratio tree: per user class its share of users and its tasks' shares.

    Args:
        user_classes: The User classes of the run.
        user_spawned: Users per class name.
        total: Shares of all tasks run (True) or of each class's own tasks (False).
    """
    users = sum(user_spawned.values()) or 1
    tree: dict[str, Any] = {}
    for user_class in user_classes:
        share = user_spawned.get(user_class.__name__, 0) / users
        tree[user_class.__name__] = {
            "ratio": share,
            "tasks": _task_ratios(getattr(user_class, "tasks", []), share if total else 1.0),
        }
    return tree


def _tasks(environment: Any, runner: Any) -> dict[str, Any]:
    classes = list(getattr(environment, "user_classes", None) or getattr(runner, "user_classes", None) or [])
    counts = _user_counts(environment, runner)
    if not classes or counts is None:
        return {}
    try:
        return {"per_class": get_ratio(classes, counts, False), "total": get_ratio(classes, counts, True)}
    except Exception:  # user classes of unexpected shape: leave the ratio section empty
        return {}


def _exceptions(runner: Any) -> list[dict[str, Any]]:
    found = getattr(runner, "exceptions", None) or {}
    rows = []
    for exc in list(found.values()):
        nodes = exc.get("nodes", ())
        rows.append({**exc, "nodes": ", ".join(sorted(nodes)) if not isinstance(nodes, str) else nodes})
    return rows


def _run_figures(request_stats: Any, runner: Any, rows: list[Any]) -> dict[str, Any]:
    """The report's data beside Locust's: ``RunFigures.to_dict()``'s keys, the open model's
    arrivals and per-row service-time percentiles (``service_time_statistics``, empty in the
    closed model)."""
    if isinstance(request_stats, _core.RequestStats):
        figures = stats_module.run_figures(request_stats).to_dict()
    else:  # stats of another kind (a test's stand-in): nothing measured beyond Locust's
        figures = {
            "open_model": False,
            "response_time_measure": stats_module.CLOSED_MODEL_MEASURE,
            "dropped_iterations": 0,
            "own_delay_ms": dict.fromkeys(("p50", "p90", "p99", "max")),
            "own_delay_count": 0,
            "service_time_ms": None,
        }
    open_model = figures["open_model"]
    arrivals = getattr(runner, "arrivals", None) if open_model else None
    figures["arrivals"] = (
        {
            "rate": arrivals.rate,
            "users": arrivals.users,
            "max_users": arrivals.max_users,
            "distribution": arrivals.distribution,
        }
        if arrivals is not None
        else None
    )
    figures["service_time_statistics"] = (
        [
            {
                "name": entry.name,
                "method": entry.method or "",
                **{str(p): entry.get_service_time_percentile(p) for p in PERCENTILES_FOR_HTML_REPORT},
            }
            for entry in rows
            if entry.num_requests
        ]
        if open_model
        else []
    )
    return figures


def _precise_percentiles(entry: Any) -> dict[str, Any]:
    """The percentiles of the report's table from the engine's HDR histogram (ms within 0.1%),
    where Locust's whole-ms buckets read 0 for a sub-millisecond server; None without timed
    requests."""
    timed = entry.num_requests - entry.num_none_requests > 0
    percentiles = {str(p): entry.get_precise_response_time_percentile(p) for p in PERCENTILES_FOR_HTML_REPORT}
    return {
        "name": entry.name,
        "method": entry.method or "",
        **(percentiles if timed else dict.fromkeys(percentiles)),
    }


def _chart_history(environment: Any) -> list[dict[str, Any]]:
    """The per-second points of the web UI's charts (``web.history``), when they were sampled;
    the report's script falls back on Locust's history (a row every 5 s) without them."""
    history = getattr(environment, "per_second_history", None)
    return list(history.points) if history is not None else []


def report_data(environment: Any, show_download_link: bool = True) -> dict[str, Any]:
    """Everything the report shows, as Locust's report template arguments (JSON-ready).

    A final history row is added when the last one is older than the last request, as Locust does.
    """
    runner = getattr(environment, "runner", None)
    request_stats = runner.stats if runner is not None else environment.stats
    view = request_stats.view() if hasattr(request_stats, "view") else request_stats

    start_ts = view.start_time
    start_time = _utc_iso(start_ts)
    end_ts = view.last_request_timestamp or start_ts
    end_time = _utc_iso(end_ts)

    history = getattr(request_stats, "history", [])
    if runner is not None and history and history[-1].get("time", "") < end_time:
        stats_module.update_stats_history(runner, end_time)

    rows = [*stats_module.sort_stats(view.entries), view.total]
    profile = getattr(environment, "profile", None) or getattr(
        getattr(environment, "parsed_options", None), "profile", None
    )
    figures = _run_figures(request_stats, runner, rows)
    return {
        "is_report": True,
        "requests_statistics": [entry.to_dict() for entry in rows],
        "failures_statistics": [error.to_dict() for error in stats_module.sort_stats(view.errors)],
        "exceptions_statistics": _exceptions(runner),
        "response_time_statistics": [
            {
                "name": entry.name,
                "method": entry.method or "",
                **{str(p): entry.get_response_time_percentile(p) for p in PERCENTILES_FOR_HTML_REPORT},
            }
            for entry in rows
        ],
        "precise_requests_statistics": [entry.precise_dict() for entry in rows],
        "precise_response_time_statistics": [_precise_percentiles(entry) for entry in rows],
        "chart_history": _chart_history(environment),
        "start_time": start_time,
        "end_time": end_time,
        "duration": format_duration(start_ts, end_ts),
        "host": str(_report_host(environment, runner)),
        "history": list(history),
        "show_download_link": show_download_link,
        "locustfile": str(getattr(environment, "locustfile", None)),
        "tasks": _tasks(environment, runner),
        "percentiles_to_chart": list(stats_module.PERCENTILES_TO_CHART),
        "profile": str(profile) if profile else None,
        **figures,
    }


# ---------------------------------------------------------------------------------------------
# Rendering


def _finite(value: Any) -> Any:
    # JSON has no NaN or Infinity; the browser's JSON.parse would reject the whole report.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _script_json(data: Any) -> str:
    text = json.dumps(_finite(data), ensure_ascii=False, allow_nan=False, default=str)
    # Inside <script>, "</script>" or "<!--" in a request name would end or change the element.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any, digits: int | None = None) -> str:
    if value is None:
        return ""
    if digits is not None and isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _table(columns: list[tuple[str, bool]], rows: list[tuple[list[str], bool]], empty: str) -> str:
    """An HTML table; ``columns`` are (title, numeric), rows are (escaped cells, is the total)."""
    if not rows:
        return f'<p class="empty">{_e(empty)}</p>'

    def cell(tag: str, title: str, numeric: bool, content: str) -> str:
        css = "num" if numeric else ("name" if title == "Name" else "")
        return f'<{tag} class="{css}">{content}</{tag}>' if css else f"<{tag}>{content}</{tag}>"

    head = "".join(cell("th", title, numeric, _e(title)) for title, numeric in columns)
    body = []
    for cells, is_total in rows:
        tds = "".join(cell("td", title, numeric, c) for (title, numeric), c in zip(columns, cells))
        body.append(f'<tr class="aggregated">{tds}</tr>' if is_total else f"<tr>{tds}</tr>")
    return (
        '<div class="table-wrap"><table>\n<thead><tr>'
        + head
        + "</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody>\n</table></div>"
    )


def _is_total(row: dict[str, Any]) -> bool:
    return row["name"] == "Aggregated" and not row["method"]


def _requests_table(data: dict[str, Any]) -> str:
    columns = [
        ("Type", False),
        ("Name", False),
        ("# Requests", True),
        ("# Fails", True),
        ("Average (ms)", True),
        ("Min (ms)", True),
        ("Max (ms)", True),
        ("Average size (bytes)", True),
        ("RPS", True),
        ("Failures/s", True),
    ]
    rows = []
    for r, precise in zip(data["requests_statistics"], data["precise_requests_statistics"]):
        cells = [
            _e(r["method"]),
            _e(r["name"]),
            _num(r["num_requests"]),
            _num(r["num_failures"]),
            _ms(float(r["avg_response_time"])),
            _ms(precise["precise_min_response_time"]),
            _ms(precise["precise_max_response_time"]),
            _num(float(r["avg_content_length"]), 2),
            _num(float(r["total_rps"]), 2),
            _num(float(r["total_fail_per_sec"]), 2),
        ]
        rows.append((cells, _is_total(r)))
    return _table(columns, rows, "No requests were made.")


def _response_times_table(data: dict[str, Any]) -> str:
    labels = stats_module.get_readable_percentiles(PERCENTILES_FOR_HTML_REPORT)
    columns = [("Method", False), ("Name", False)] + [(f"{label}ile (ms)", True) for label in labels]
    rows = []
    for r in data["precise_response_time_statistics"]:
        cells = [_e(r["method"]), _e(r["name"])] + [_ms(r[str(p)]) for p in PERCENTILES_FOR_HTML_REPORT]
        rows.append((cells, _is_total(r)))
    return _table(columns, rows, "No requests were made.")


def _service_times(data: dict[str, Any]) -> str:
    """The open model's service-time percentiles, beside the response times; nothing otherwise."""
    if not data.get("open_model"):
        return ""
    labels = stats_module.get_readable_percentiles(PERCENTILES_FOR_HTML_REPORT)
    columns = [("Method", False), ("Name", False)] + [(f"{label}ile (ms)", True) for label in labels]
    rows = []
    for r in data["service_time_statistics"]:
        cells = [_e(r["method"]), _e(r["name"])] + [_ms(r[str(p)]) for p in PERCENTILES_FOR_HTML_REPORT]
        rows.append((cells, _is_total(r)))
    return (
        '<h3 id="service-time-statistics">Service Time Statistics</h3>\n'
        f'<p class="measure">Service times: {_e(stats_module.SERVICE_TIME_MEASURE)}; the response times above '
        "also count the wait from each iteration's scheduled start.</p>\n"
        + _table(columns, rows, "No requests were made.")
    )


def _ms(value: float | None) -> str:
    return "" if value is None else stats_module.format_ms(value)


def _failures_table(data: dict[str, Any]) -> str:
    columns = [
        ("# Failures", True),
        ("Method", False),
        ("Name", False),
        ("Message", False),
        ("First Seen", False),
        ("Last Seen", False),
    ]

    def seen(ts: float | None) -> str:
        return _e(_utc_iso(ts).replace("T", " ").replace("Z", " UTC")) if ts else ""

    rows = [
        (
            [
                _num(f["occurrences"]),
                _e(f["method"]),
                _e(f["name"]),
                _e(f["error"]),
                seen(f.get("first_seen")),
                seen(f.get("last_seen")),
            ],
            False,
        )
        for f in data["failures_statistics"]
    ]
    return _table(columns, rows, "No failures.")


def _exceptions_table(data: dict[str, Any]) -> str:
    columns = [("# occurrences", True), ("Message", False), ("Traceback", False), ("Nodes", False)]
    rows = [
        (
            [_num(x.get("count")), _e(x.get("msg")), f"<pre>{_e(x.get('traceback'))}</pre>", _e(x.get("nodes"))],
            False,
        )
        for x in data["exceptions_statistics"]
    ]
    return _table(columns, rows, "No exceptions.")


def _ratio_list(tree: dict[str, Any]) -> str:
    items = []
    for name, node in tree.items():
        pct = f"{node.get('ratio', 0) * 100:.1f}%"
        inner = _ratio_list(node["tasks"]) if node.get("tasks") else ""
        items.append(f'<li><span class="pct">{pct}</span> {_e(name)}{inner}</li>')
    return '<ul class="ratios">' + "".join(items) + "</ul>"


def _ratios(data: dict[str, Any]) -> str:
    tasks = data.get("tasks") or {}
    if not tasks.get("per_class") and not tasks.get("total"):
        return '<p class="empty">Task ratios are not available.</p>'
    blocks = []
    for key, title in (("per_class", "Ratio per User class"), ("total", "Total ratio")):
        if tasks.get(key):
            blocks.append(f'<div class="ratio-block"><h3>{title}</h3>{_ratio_list(tasks[key])}</div>')
    return "\n".join(blocks)


def _info(data: dict[str, Any]) -> str:
    def shown(iso: str) -> str:
        return iso.replace("T", " ").replace("Z", " UTC")

    pairs = []
    if data.get("profile"):
        pairs.append(("Profile", _e(data["profile"])))
    pairs += [
        (
            "During",
            f'<time datetime="{_e(data["start_time"])}">{_e(shown(data["start_time"]))}</time> – '
            f'<time datetime="{_e(data["end_time"])}">{_e(shown(data["end_time"]))}</time> '
            f"({_e(data['duration'])})",
        ),
        ("Target Host", _e(data["host"] if data["host"] != "None" else "None")),
        ("Script", _e(data["locustfile"])),
    ]
    pairs += _figures_info(data)
    return "\n".join(f"    <dt>{title}:</dt><dd>{value}</dd>" for title, value in pairs)


def _figures_info(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The run-info lines of horde's figures: the open model's arrivals and dropped iterations,
    what a response time measures, and horde's own delay."""
    pairs = []
    arrivals = data.get("arrivals")
    if arrivals:
        pairs.append(
            (
                "Arrival rate",
                _e(
                    f"{arrivals['rate']:g} iterations/s ({arrivals['distribution']}), {arrivals['users']} users "
                    f"started up front, at most {arrivals['max_users']}"
                ),
            )
        )
    if data.get("open_model"):
        pairs.append(("Dropped iterations", f'<span id="dropped-iterations">{_num(data["dropped_iterations"])}</span>'))
    pairs.append(("Response times", _e(f"measured {data['response_time_measure']}")))
    own = data["own_delay_ms"]
    if data["own_delay_count"]:
        delay = f"p50 {_delay(own['p50'])} ms, p99 {_delay(own['p99'])} ms ({stats_module.OWN_DELAY_MEASURE})"
    else:
        delay = "not measured (no request went through horde's engine)"
    pairs.append(("horde's own delay per request", _e(delay)))
    return pairs


def _delay(value: float | None) -> str:
    return "-" if value is None else stats_module.format_ms(value)


def get_html_report(environment: Any, show_download_link: bool = True, theme: str = "") -> str:
    """The report of a run as one self-contained HTML document.

    Args:
        environment: The Environment (``runner``, ``stats``, ``host``, ``locustfile``... are read;
            missing parts are left out of the report).
        show_download_link: Show a "Download the Report" link (useful when served by the web UI).
        theme: "dark" for the dark theme; anything else gives the light one.

    Returns:
        The HTML text. Its data (Locust's report arguments) is embedded as JSON in
        ``<script type="application/json" id="report-data">``.
    """
    data = report_data(environment, show_download_link)
    theme = "dark" if theme == "dark" else "light"
    download = (
        f'<a class="download" href="?download=1&amp;theme={theme}">Download the Report</a>'
        if show_download_link
        else ""
    )
    profile = data.get("profile")
    return Template(_asset("report.html")).substitute(
        theme=theme,
        version=_e(_core.__version__),
        title=_e(f"horde - {profile}" if profile else "horde test report"),
        css=_asset("report.css"),
        download_link=download,
        info=_info(data),
        requests_table=_requests_table(data),
        response_times_table=_response_times_table(data),
        service_times=_service_times(data),
        failures_table=_failures_table(data),
        exceptions_table=_exceptions_table(data),
        ratios=_ratios(data),
        data=_script_json(data),
        js=_asset("report.js"),
    )


# ---------------------------------------------------------------------------------------------
# Files


def _placeholder_value(value: Any) -> str:
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return str(value)


def expand_html_filename(filename: str, options: Any) -> str:
    """``filename`` with Locust's placeholders filled in from the parsed options.

    ``{u}`` is the number of users, ``{r}`` the spawn rate and ``{t}`` the run time in seconds
    (each as a whole number); a placeholder whose option is unset is kept as it is.
    """
    values = {
        "{u}": getattr(options, "num_users", None),
        "{r}": getattr(options, "spawn_rate", None),
        "{t}": getattr(options, "run_time", None),
    }
    return re.sub(
        r"\{[urt]\}",
        lambda m: m.group(0) if values[m.group(0)] is None else _placeholder_value(values[m.group(0)]),
        filename,
    )


def process_html_filename(options: Any) -> None:
    """Fills the placeholders of ``options.html_file`` in place (Locust's function)."""
    options.html_file = expand_html_filename(options.html_file, options)


def save_html_report(
    environment: Any, path: str | None = None, show_download_link: bool = False, theme: str = ""
) -> str:
    """Writes the report to ``path`` (default ``--html``'s file), placeholders filled in.

    Args:
        environment: The Environment of the run.
        path: The file name, may hold ``{u}``, ``{r}``, ``{t}``; default
            ``environment.parsed_options.html_file``.
        show_download_link: As for ``get_html_report`` (False for a file, as Locust's CLI).
        theme: As for ``get_html_report``.

    Returns:
        The path written.
    """
    options = getattr(environment, "parsed_options", None)
    if path is None:
        path = getattr(options, "html_file", None)
        if not path:
            raise ValueError("no report path given and no --html option set")
    final_path = expand_html_filename(path, options)
    report = get_html_report(environment, show_download_link=show_download_link, theme=theme)
    with open(final_path, "w", encoding="utf-8") as file:
        file.write(report)
    return final_path


__all__ = [
    "PERCENTILES_FOR_HTML_REPORT",
    "expand_html_filename",
    "format_duration",
    "get_html_report",
    "get_ratio",
    "process_html_filename",
    "report_data",
    "save_html_report",
]
