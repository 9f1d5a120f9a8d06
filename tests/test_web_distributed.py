"""The web UI on a distributed master, as Locust's: a horde master serving its UI (no --headless)
with two horde workers, driven over HTTP as the page drives it (the workers in /stats/requests,
/worker-count and /logs; tests started, changed, stopped and restarted on the workers), the same
JSON keys as a real Locust 2.47.0 master's, --autostart waiting for --expect-workers, and the
Workers tab in Debian's Chromium. Everything listens on and sends load to 127.0.0.1 only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import free_port
from test_web_api import HordeUI, swarm, until
from test_web_vs_locust import LOCUST, shape, without_horde_keys

from horde import DemoServer

# The fields of one worker in a master's /stats/requests (Locust 2.47's web.py).
WORKER_KEYS = {"id", "state", "user_count", "cpu_usage", "memory_usage"}

LOCUSTFILE = """
from locust import HttpUser, constant, task


class Reader(HttpUser):
    weight = 3
    wait_time = constant(0.1)
    # What its requests are named; POST /user changes it, on the master and on every worker.
    label = "home"

    @task
    def read(self):
        self.client.get("/", name=self.label)


class Operator(HttpUser):
    # One in the whole test, whatever the number of workers.
    fixed_count = 1
    wait_time = constant(0.2)

    @task
    def status(self):
        self.client.get("/json", name="status")
"""

needs_locust = pytest.mark.skipif(
    not shutil.which(LOCUST), reason=f"Locust 2.47.0 reference not installed at {LOCUST} (tests/run.sh installs it)"
)


class Worker:
    """A ``horde --worker`` process of the master at ``master_port``; ``stop()`` always ends it."""

    def __init__(self, tmp_path: Path, locustfile: Path, master_port: int, name: str) -> None:
        self.log = tmp_path / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "HORDE_"))}
        env["PYTHONWARNINGS"] = "ignore"
        command = [sys.executable, "-m", "horde", "-f", str(locustfile), "--worker"]
        command += ["--master-host", "127.0.0.1", "--master-port", str(master_port)]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_master(
    stack: ExitStack, tmp_path: Path, locustfile: Path, host: str, *args: str, program: list[str] | None = None
) -> tuple[HordeUI, int]:
    """A master with its web UI (horde's, or ``program``'s); returns it and the port workers use."""
    port = free_port()
    common = ["-f", str(locustfile), "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    extra = {"program": program} if program else {}
    master = HordeUI(tmp_path, *common, "--web-host", "127.0.0.1", "-H", host, *args, **extra)
    stack.callback(master.stop)
    return master, port


def start_worker(stack: ExitStack, tmp_path: Path, locustfile: Path, master_port: int, name: str) -> Worker:
    worker = Worker(tmp_path, locustfile, master_port, name)
    stack.callback(worker.stop)
    return worker


def workers_in(report: dict[str, Any], state: str | None = None) -> list[dict[str, Any]]:
    """The workers of a /stats/requests report (those in ``state``, if given)."""
    return [w for w in report.get("workers", []) if state is None or w["state"] == state]


def running_on_workers(ui: HordeUI, users: int, workers: int = 2) -> dict[str, Any]:
    """Waits until the master runs ``users`` users, all of its ``workers`` running a share of them;
    returns /stats/requests."""

    def check() -> dict[str, Any] | None:
        report = ui.stats()
        running = workers_in(report, "running")
        ok = (
            report["state"] == "running"
            and report["user_count"] == users
            and len(running) == len(report["workers"]) == workers
            and sum(w["user_count"] for w in running) == users
            and all(w["user_count"] > 0 for w in running)
        )
        return report if ok else None

    return until(check, f"{users} users running on {workers} workers")


def aggregated(report: dict[str, Any]) -> dict[str, Any]:
    return report["stats"][-1]


@pytest.fixture(scope="module")
def locustfile(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("web_distributed") / "cluster_locustfile.py"
    path.write_text(LOCUSTFILE)
    return path


@pytest.fixture(scope="module")
def cluster(locustfile, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """A horde master with its web UI and two horde workers, ready; its own demo target, so that the
    target's count is the cluster's only."""
    tmp = tmp_path_factory.mktemp("cluster")
    target = DemoServer(threads=2)
    with ExitStack() as stack:
        stack.callback(target.stop)
        master, port = start_master(stack, tmp, locustfile, target.url)
        workers = [start_worker(stack, tmp, locustfile, port, f"worker{i}") for i in range(2)]
        until(lambda: len(workers_in(master.stats(), "ready")) == 2, "two workers ready")
        yield SimpleNamespace(master=master, workers=workers, target=target)


def test_the_ui_drives_the_workers(cluster):
    ui, target = cluster.master, cluster.target
    report = ui.stats()
    assert report["worker_count"] == 2
    assert all(set(worker) == WORKER_KEYS for worker in report["workers"])
    ids = {worker["id"] for worker in report["workers"]}
    assert len(ids) == 2
    assert ui.get("/worker-count").json() == {"worker_count": 2}
    page = ui.get("/").text
    assert '"is_distributed": true' in page and '"worker_count": 2' in page

    # Start: the users run on the workers, the master's count is the sum of theirs.
    served_before = target.requests_served
    assert swarm(ui, 6, 6)["message"] == "Swarming started"
    report = running_on_workers(ui, 6)
    assert {worker["id"] for worker in report["workers"]} == ids
    # The ratios of the users the workers run: one Operator (fixed_count) in six.
    ratios = ui.get("/tasks").json()["per_class"]
    assert ratios["Operator"]["ratio"] == pytest.approx(1 / 6) and ratios["Reader"]["ratio"] == pytest.approx(5 / 6)

    # POST /user reaches the workers: their Readers' requests take the new name.
    response = ui.post("/user", json_body={"user_class_name": "Reader", "label": "relabelled"})
    assert response.status_code == 201, response.text
    until(lambda: any(row["name"] == "relabelled" for row in ui.stats()["stats"]), "requests named by POST /user")

    # Stop: no users left, both workers ready again, every request the target served counted.
    assert ui.post("/stop").json() == {"success": True, "message": "Test stopped"}

    def stopped() -> dict[str, Any] | None:
        report = ui.stats()
        ready = {w["id"] for w in workers_in(report, "ready")}
        ok = report["state"] == "stopped" and report["user_count"] == 0 and ready == ids
        return report if ok and report["worker_count"] == 2 else None

    until(stopped, "the test stopped, both workers ready")
    served = target.requests_served - served_before
    until(lambda: aggregated(ui.stats())["num_requests"] == served, f"the {served} requests served counted")

    # Reset: the master's figures start over (the workers only ever send what is new).
    assert ui.post("/stats/reset").text == "ok"
    report = ui.stats()
    assert (aggregated(report)["num_requests"], report["errors"]) == (0, [])

    # And again: a second test on the same workers.
    swarm(ui, 4, 4)
    report = running_on_workers(ui, 4)
    assert {worker["id"] for worker in report["workers"]} == ids

    # The workers' logs, by worker id, next to the master's.
    def logs() -> dict[str, Any] | None:
        body = ui.get("/logs").json()
        return body if set(body["workers"]) == ids else None

    body = until(logs, "both workers' logs")
    assert any("reported as ready" in line for line in body["master"])
    for lines in body["workers"].values():
        assert all(isinstance(line, str) for line in lines)
        assert any("Starting horde" in line for line in lines), lines


@needs_locust
def test_same_keys_as_a_locust_master(cluster, locustfile, demo, tmp_path):
    """/stats/requests, /worker-count and /logs of a Locust 2.47.0 master with a horde worker have
    the keys and value kinds of a horde master's (the values differ: other workers, other runs)."""
    with ExitStack() as stack:
        locust, port = start_master(stack, tmp_path, locustfile, demo.url, program=[LOCUST])
        start_worker(stack, tmp_path, locustfile, port, "locust-worker")

        def connected() -> dict[str, Any] | None:
            report = locust.stats()
            ready = workers_in(report, "ready")
            # memory_usage comes with the worker's first heartbeat, its logs a moment later.
            heard = len(ready) == 1 and ready[0]["memory_usage"] > 0 and locust.get("/logs").json()["workers"]
            return report if heard and report["worker_count"] == 1 else None

        reports = {"locust": until(connected, "the horde worker on the Locust master"), "horde": cluster.master.stats()}
        reports["horde"] = without_horde_keys(reports["horde"], "/stats/requests")
        assert set(reports["horde"]) == set(reports["locust"])
        # The rows and errors are compared after a run in test_web_vs_locust.py. Locust's current
        # percentiles are null outside its cache's window (2-18 s after a reset, while idle),
        # horde's a number: those are compared by their keys.
        current = "current_response_time_percentiles"
        assert set(reports["horde"][current]) == set(reports["locust"][current])
        shapes = {
            name: shape({k: v for k, v in report.items() if k not in ("stats", "errors", current)})
            for name, report in reports.items()
        }
        assert shapes["horde"] == shapes["locust"]
        assert shapes["horde"]["workers"] == [dict.fromkeys(WORKER_KEYS, "number") | {"id": "str", "state": "str"}]

        counts = {"locust": locust.get("/worker-count").json(), "horde": cluster.master.get("/worker-count").json()}
        assert shape(counts["horde"]) == shape(counts["locust"]) == {"worker_count": "number"}

        logs = {"locust": locust.get("/logs").json(), "horde": cluster.master.get("/logs").json()}
        for body in logs.values():
            assert set(body) == {"master", "workers"}
            assert shape(body["master"]) == ["str"]
            # Keyed by worker id: the ids differ, what each holds does not.
            assert {str(shape(lines)) for lines in body["workers"].values()} == {"['str']"}


def test_autostart_waits_for_the_expected_workers(locustfile, demo, tmp_path):
    """--autostart on a master with its UI starts the test only once --expect-workers are there, as
    a headless master does (and as Locust's)."""
    with ExitStack() as stack:
        args = ["--autostart", "--expect-workers", "2", "-u", "4", "-r", "4", "--loglevel", "DEBUG"]
        ui, port = start_master(stack, tmp_path, locustfile, demo.url, *args)
        start_worker(stack, tmp_path, locustfile, port, "first")
        first = until(lambda: workers_in(ui.stats(), "ready"), "the first worker")
        assert len(first) == 1
        until(lambda: "Waiting for workers to be ready, 1 of 2 connected" in ui.stderr(), "the master waiting")
        report = ui.stats()
        assert (report["state"], report["user_count"]) == ("ready", 0)
        second = start_worker(stack, tmp_path, locustfile, port, "second")
        report = running_on_workers(ui, 4)

        # A worker that dies is listed as missing (as Locust's master lists it, until it forgets
        # it a minute later); the worker count and the users are the live workers' only.
        second_id = next(w["id"] for w in report["workers"] if w["id"] != first[0]["id"])
        second.proc.kill()
        second.proc.wait()

        def missing() -> dict[str, Any] | None:
            report = ui.stats()
            states = {w["id"]: w["state"] for w in report["workers"]}
            return report if states.get(second_id) == "missing" and report["worker_count"] == 1 else None

        report = until(missing, "the killed worker missing")
        assert len(report["workers"]) == 2
        survivor = next(w for w in report["workers"] if w["id"] == first[0]["id"])
        assert report["user_count"] == survivor["user_count"] > 0
        assert ui.get("/worker-count").json() == {"worker_count": 1}


# -- the page ----------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
WAIT_MS = 20_000

try:
    from playwright import sync_api
except ImportError:
    sync_api = None  # type: ignore[assignment]

needs_browser = pytest.mark.skipif(
    sync_api is None or not Path(CHROMIUM).exists(), reason=f"playwright or {CHROMIUM} is not installed"
)


@needs_browser
def test_workers_tab_lists_the_workers(cluster):
    # A test running on both workers, whatever the tests before left (the tabs show once one ran).
    swarm(cluster.master, 4, 4)
    ids = {worker["id"] for worker in running_on_workers(cluster.master, 4)["workers"]}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(WAIT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(cluster.master.base + "/")
            expect = sync_api.expect
            # As long as the page's other waits, not Playwright's 5 s, which a busy machine outlasts.
            expect.set_options(timeout=WAIT_MS)
            expect(page.locator("#nav-workers")).to_have_text("2")
            expect(page.locator("#nav-users")).to_have_text("4")
            page.click("[data-tab=workers]")
            rows = page.locator("#workers-table tbody tr")
            expect(rows).to_have_count(2)
            expect(page.locator("#workers-table thead")).to_have_text(
                "Worker State # users CPU usage Memory usage", use_inner_text=True
            )
            cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(2)]
            assert {row[0] for row in cells} == ids
            assert [row[1] for row in cells] == ["running", "running"]
            assert sum(int(row[2]) for row in cells) == 4
            assert all(row[4].endswith("B") for row in cells), cells
            assert errors == []
        finally:
            browser.close()
