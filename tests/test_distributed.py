"""Distributed runs as users start them: horde and real Locust 2.47.0 masters and workers in every
combination, on 127.0.0.1, against a demo target that counts what it receives. Each run checks the
master's counts against the workers' reports and the target, the per-class user counts against the
dispatcher, and Locust's exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import LOCUSTFILES, ROOT, stats_rows
from conftest import free_port

from horde import DemoServer

LOCUST = ROOT / ".venv-locust" / "bin" / "locust"
DISTRIBUTED = LOCUSTFILES / "distributed.py"

needs_locust = pytest.mark.skipif(not LOCUST.exists(), reason="Locust 2.47.0 is not installed in .venv-locust")


def _env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    env["PYTHONWARNINGS"] = "ignore"
    env.update(extra or {})
    return env


class Node:
    """A master or worker process, its output in a file."""

    def __init__(self, args: list[str], log: Path, env: dict | None = None, cwd: Path | None = None) -> None:
        self.log = log
        self.args = args
        self._out = open(log, "w")  # noqa: SIM115 - closed in wait()/kill()
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, env=_env(env), cwd=cwd)

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait(self, timeout: float = 60) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.args} did not exit in {timeout}s:\n{self.output[-3000:]}") from None
        finally:
            self._out.close()
        return code

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        if sig == signal.SIGKILL:
            self.proc.wait()
            self._out.close()

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output)
            if found:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not in the output of {self.args}:\n{self.output[-3000:]}")


def horde(*args: str, log: Path, env: dict | None = None) -> Node:
    return Node([sys.executable, "-m", "horde", *args], log, env)


def locust(*args: str, log: Path, env: dict | None = None) -> Node:
    return Node([str(LOCUST), *args], log, env)


def master_args(port: int, host: str, csv: Path, users: int = 10, run_time: str = "4s", workers: int = 2) -> list[str]:
    return [
        "-f", str(DISTRIBUTED), "--master", "--master-bind-port", str(port), "--headless",
        "--expect-workers", str(workers), "-u", str(users), "-r", str(users), "-t", run_time,
        "-H", host, "--csv", str(csv), "--only-summary",
    ]  # fmt: skip


def worker_args(port: int, locustfile: Path = DISTRIBUTED) -> list[str]:
    return ["-f", str(locustfile), "--worker", "--master-port", str(port)]


def spawned_counts(output: str) -> dict[str, int]:
    """The per-class counts of the master's "All users spawned: {...}" line."""
    found = re.findall(r"All users spawned: (\{[^}]*\})", output)
    assert found, output[-3000:]
    return json.loads(found[-1])


def expected_counts(users: int, workers: int) -> dict[str, int]:
    """What Locust's dispatcher gives distributed.py's classes (Browser weight 3, Poster weight 1,
    Operator fixed_count 1), computed with horde's dispatcher (which tests/test_dispatch.py checks
    against Locust's, step by step)."""
    from horde import User, task
    from horde.dispatch import UsersDispatcher
    from horde.runners import WorkerNode

    def user_class(name: str, weight: int = 1, fixed_count: int = 0) -> type:
        return type(name, (User,), {"weight": weight, "fixed_count": fixed_count, "t": task(lambda self: None)})

    classes = [user_class("Browser", 3), user_class("Poster", 1), user_class("Operator", fixed_count=1)]
    dispatcher = UsersDispatcher([WorkerNode(str(i)) for i in range(workers)], classes)
    dispatcher._wait_between_dispatch = 0
    dispatcher.new_dispatch(users, users)
    totals: dict[str, int] = {}
    for dispatched in dispatcher:
        totals = {}
        for counts in dispatched.values():
            for name, n in counts.items():
                totals[name] = totals.get(name, 0) + n
    return totals


def check_run(
    master: Node,
    workers: list[Node],
    target: DemoServer,
    served_before: int,
    csv: Path,
    summary: Path,
    in_flight_lost: int = 0,
    worker_count: int | None = None,
):
    """The master exited 0, its request count equals both the workers' reports and the target's
    count, and every worker got the master's custom message and answered it.

    A Locust worker stops its users in the middle of their requests and never reports those: up to
    ``in_flight_lost`` requests (its users) may reach the target uncounted. horde's workers wait
    for the requests in flight and report them."""
    code = master.wait(90)
    assert code == 0, master.output[-4000:]
    for w in workers:
        assert w.wait(30) == 0, w.output[-3000:]
    rows = stats_rows(Path(f"{csv}_stats.csv"))
    total = int(rows[("", "Aggregated")]["Request Count"])
    assert total > 0
    assert int(rows[("", "Aggregated")]["Failure Count"]) == 0
    assert {("GET", "/"), ("POST", "/echo"), ("GET", "admin status")} <= set(rows)
    received = target.requests_served - served_before
    report = json.loads(summary.read_text())
    assert total == sum(report["reported"].values()), (total, report)
    assert 0 <= received - total <= in_flight_lost, (total, received)
    worker_count = len(workers) if worker_count is None else worker_count
    assert len(report["reported"]) == worker_count
    assert len(report["greeted"]) == worker_count, report
    return rows


@pytest.fixture
def target():
    """A demo target of the test's own, so its request count is this test's only."""
    server = DemoServer(threads=2)
    yield server
    server.stop()


def _run_matrix(tmp_path: Path, target: DemoServer, master_kind: str, worker_kinds: list[str]) -> str:
    port = free_port()
    csv, summary = tmp_path / "run", tmp_path / "summary.json"
    env = {"DISTRIBUTED_SUMMARY": str(summary)}
    before = target.requests_served
    start = horde if master_kind == "horde" else locust
    master = start(*master_args(port, target.url, csv, workers=len(worker_kinds)), log=tmp_path / "master.log", env=env)
    workers = [
        (horde if kind == "horde" else locust)(*worker_args(port), log=tmp_path / f"worker{i}.log")
        for i, kind in enumerate(worker_kinds)
    ]
    try:
        users_on_locust_workers = 10 * worker_kinds.count("locust") // len(worker_kinds) + 1
        check_run(master, workers, target, before, csv, summary, users_on_locust_workers)
        assert spawned_counts(master.output) == expected_counts(10, len(worker_kinds))
    finally:
        for node in [master, *workers]:
            node.kill()
    return master.output


def test_horde_master_and_two_horde_workers(tmp_path, target):
    output = _run_matrix(tmp_path, target, "horde", ["horde", "horde"])
    assert "2 workers connected" in output


@needs_locust
def test_locust_master_and_two_horde_workers(tmp_path, target):
    _run_matrix(tmp_path, target, "locust", ["horde", "horde"])


@needs_locust
def test_horde_master_and_two_locust_workers(tmp_path, target):
    _run_matrix(tmp_path, target, "horde", ["locust", "locust"])


@needs_locust
def test_mixed_cluster(tmp_path, target):
    _run_matrix(tmp_path, target, "horde", ["horde", "locust"])


def test_processes_two(tmp_path, target):
    csv, summary = tmp_path / "run", tmp_path / "summary.json"
    before = target.requests_served
    node = horde(
        "-f", str(DISTRIBUTED), "--processes", "2", "--master-bind-port", str(free_port()), "--headless",
        "-u", "10", "-r", "10", "-t", "4s", "-H", target.url, "--csv", str(csv), "--only-summary",
        log=tmp_path / "processes.log", env={"DISTRIBUTED_SUMMARY": str(summary)},
    )  # fmt: skip
    try:
        check_run(node, [], target, before, csv, summary, worker_count=2)
        assert spawned_counts(node.output) == expected_counts(10, 2)
    finally:
        node.kill()


def test_processes_parent_exits_with_the_highest_child_code(tmp_path, demo):
    # The children are workers whose users fail every request: exit code 1 comes from the master's
    # stats; a child that cannot connect would exit -1 (255).
    node = horde(
        "-f", str(LOCUSTFILES / "fasthttp.py"), "--processes", "2", "--master-bind-port", str(free_port()),
        "--headless", "-u", "2", "-r", "2", "-t", "2s", "-H", demo.url, "--only-summary",
        log=tmp_path / "processes.log",
    )  # fmt: skip
    assert node.wait(60) == 1, node.output[-3000:]


def test_worker_downloads_the_locustfile_from_the_master(tmp_path, target):
    port = free_port()
    csv, summary = tmp_path / "run", tmp_path / "summary.json"
    before = target.requests_served
    master = horde(
        *master_args(port, target.url, csv, workers=1),
        log=tmp_path / "master.log",
        env={"DISTRIBUTED_SUMMARY": str(summary)},
    )
    worker = horde("-f", "-", "--worker", "--master-port", str(port), log=tmp_path / "worker.log")
    try:
        check_run(master, [worker], target, before, csv, summary)
    finally:
        master.kill()
        worker.kill()


def test_worker_without_the_masters_user_class(tmp_path, demo):
    other = tmp_path / "other.py"
    other.write_text(
        "from locust import HttpUser, task\n\nclass Somebody(HttpUser):\n    @task\n    def t(self):\n"
        "        self.client.get('/')\n"
    )
    port = free_port()
    master = horde(*master_args(port, demo.url, tmp_path / "run", workers=1, run_time="3s"), log=tmp_path / "m.log")
    worker = horde(*worker_args(port, other), log=tmp_path / "w.log")
    try:
        master.wait(60)
        # As a Locust worker: the spawning greenlet fails with a KeyError, and the worker exits 2.
        assert worker.wait(30) == 2, worker.output[-3000:]
        assert re.search(r"KeyError: '(Browser|Poster|Operator)'", worker.output), worker.output[-3000:]
    finally:
        master.kill()
        worker.kill()
