"""horde's pytest plugin, registered through the ``pytest11`` entry point when horde is installed.

Fixtures:
    horde_demo: horde's demo target on 127.0.0.1 (session-scoped); its ``url`` is the host.
    horde_run: ``horde_run(target, host=..., users=10, run_time="5s", **run_kwargs)`` runs a load
        test (``horde.run``) and returns its ``Result``; assert on it with ``result.assert_slo``.

Tests using ``horde_run`` get the ``load_test`` marker, so ``pytest -m "not load_test"`` skips
them. ``--horde-html DIR`` keeps each load test's HTML report; ``--horde-run-time 2s`` shortens
every run (a quick pass in CI).

Example::

    def test_articles_are_fast(horde_run, horde_demo):
        result = horde_run(Reader, host=horde_demo.url, users=20, run_time="5s")
        result.assert_slo(p99="50ms", fail_ratio=0.01, rps=">=500")
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

MARKER = "load_test"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("horde", "horde load tests")
    group.addoption(
        "--horde-html",
        metavar="DIR",
        default=None,
        help="keep the HTML report of every horde load test in DIR (one file per run, named after the test)",
    )
    group.addoption(
        "--horde-run-time",
        metavar="TIME",
        default=None,
        help="run every horde_run load test for TIME (e.g. 2s) instead of the run_time the test asks for",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: runs a horde load test (deselect with -m 'not {MARKER}')")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "horde_run" in getattr(item, "fixturenames", ()):
            item.add_marker(MARKER)


@pytest.fixture(scope="session")
def horde_demo() -> Iterator[Any]:
    """horde's demo target (hello, /json, /status/N, /delay/N, a Conduit API...) on a free port of
    127.0.0.1 for the whole session; pass ``horde_demo.url`` as the host."""
    from horde import DemoServer

    server = DemoServer()
    yield server
    server.stop()


@pytest.fixture
def horde_run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """A function that runs a short load test and returns its ``horde.Result``:
    ``horde_run(target, host=None, users=10, spawn_rate=None, run_time="5s", **run_kwargs)``,
    with the arguments of ``horde.run`` (target: a User class, a list of them or a locustfile).
    A summary of each run is added to the test's report."""
    html_dir = request.config.getoption("horde_html")
    forced_run_time = request.config.getoption("horde_run_time")
    summaries: list[str] = []

    def run(
        target: Any,
        host: str | None = None,
        users: int = 10,
        spawn_rate: float | None = None,
        run_time: str | float | None = "5s",
        **kwargs: Any,
    ) -> Any:
        import horde

        if html_dir and "html" not in kwargs:
            os.makedirs(html_dir, exist_ok=True)
            stem = re.sub(r"[^\w.-]+", "_", request.node.nodeid).strip("_")
            suffix = f"-{len(summaries) + 1}" if summaries else ""
            kwargs["html"] = os.path.join(html_dir, f"{stem}{suffix}.html")
        result = horde.run(
            target,
            host=host,
            users=users,
            spawn_rate=spawn_rate,
            run_time=forced_run_time or run_time,
            progress=False,
            **kwargs,
        )
        if result.meta.get("interrupted"):
            raise KeyboardInterrupt  # Ctrl-C during a load test ends the session, as anywhere else
        summaries.append(f"{result!r}\n{result.stats.to_string(index=False)}")
        # Added while the test runs, so it is part of the call's report (shown on failure).
        request.node.add_report_section("call", f"horde run {len(summaries)}", summaries[-1])
        return result

    return run
