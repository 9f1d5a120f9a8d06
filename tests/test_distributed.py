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


def raw_worker(context, identity: bytes, port: int):
    """A DEALER socket connected to a master on 127.0.0.1:port as ``identity``, as a worker's is:
    for sending a master hand-made messages."""
    import zmq

    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, identity)
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


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


# -- liveness ---------------------------------------------------------------------------------------

BUSY = """
import time
from locust import HttpUser, constant, task

class Busy(HttpUser):
    wait_time = constant(0)

    @task
    def spin(self):
        # Pure CPU that never yields: the gevent loop is stuck for seconds at a time, which makes a
        # Locust worker miss its heartbeats.
        self.client.get("/")
        end = time.perf_counter() + 4.5
        while time.perf_counter() < end:
            pass
"""


def test_a_worker_whose_users_hog_the_cpu_is_never_missing(tmp_path, demo):
    locustfile = tmp_path / "busy.py"
    locustfile.write_text(BUSY)
    port = free_port()
    master = horde(
        "-f", str(locustfile), "--master", "--master-bind-port", str(port), "--headless", "--expect-workers", "1",
        "-u", "1", "-r", "1", "-t", "12s", "-H", demo.url, "--only-summary",
        log=tmp_path / "master.log",
    )  # fmt: skip
    worker = horde("-f", str(locustfile), "--worker", "--master-port", str(port), log=tmp_path / "worker.log")
    try:
        assert master.wait(60) == 0, master.output[-3000:]
        assert worker.wait(30) == 0, worker.output[-3000:]
        assert "missing" not in master.output, master.output[-3000:]
        # The heartbeats carry the Python thread's CPU: the master warns, as Locust's does.
        assert "exceeded cpu threshold" in master.output, master.output[-3000:]
    finally:
        master.kill()
        worker.kill()


def test_a_killed_worker_goes_missing_and_a_new_one_takes_its_users(tmp_path, target):
    port = free_port()
    csv = tmp_path / "run"
    master = horde(
        *master_args(port, target.url, csv, users=10, run_time="20s", workers=2), "--enable-rebalancing",
        "--csv-full-history", log=tmp_path / "master.log",
    )  # fmt: skip
    workers = [horde(*worker_args(port), log=tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        master.wait_for(r"All users spawned")
        workers[0].kill()
        killed_at = time.time()
        found = master.wait_for(r"\[([\d\- :,]+)\].*failed to send heartbeat, setting state to missing")
        stamp, _, millis = found.group(1).partition(",")
        marked = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis or 0) / 1000
        # Missing only after HEARTBEAT_LIVENESS (3) seconds without a heartbeat, as in Locust.
        assert marked - killed_at >= 2, (marked, killed_at)
        replacement = horde(*worker_args(port), log=tmp_path / "worker2.log")
        workers.append(replacement)
        master.wait_for(r"reported as ready\. 2 workers connected")
        assert master.wait(60) == 0, master.output[-3000:]
        history = list(_history_user_counts(Path(f"{csv}_stats_history.csv")))
        # Full strength, then the dead worker's users leave the count, then the new worker gets them.
        full = history.index(10)
        dip = next(i for i in range(full, len(history)) if history[i] < 10)
        assert 0 < history[dip] < 10 and 10 in history[dip:], history
    finally:
        master.kill()
        for w in workers:
            w.kill()


def _history_user_counts(path: Path):
    import csv

    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                yield int(row["User Count"])


def test_workers_quit_when_their_master_is_gone(tmp_path, demo):
    port = free_port()
    master = horde(*master_args(port, demo.url, tmp_path / "run", workers=1, run_time="60s"), log=tmp_path / "m.log")
    worker = horde(*worker_args(port), log=tmp_path / "w.log", env={"HORDE_MASTER_HEARTBEAT_TIMEOUT": "2"})
    try:
        master.wait_for("All users spawned")
        master.kill()
        assert worker.wait(30) == 0, worker.output[-3000:]
        assert "Didn't get heartbeat from master in over 2s" in worker.output
    finally:
        master.kill()
        worker.kill()


# -- bad input at the master's port -------------------------------------------------------------------


def test_garbage_at_the_masters_port_neither_crashes_it_nor_corrupts_its_stats(tmp_path, target):
    import random

    import msgpack
    import zmq

    port = free_port()
    csv, summary = tmp_path / "run", tmp_path / "summary.json"
    before = target.requests_served
    env = {"DISTRIBUTED_SUMMARY": str(summary)}
    master = horde(
        *master_args(port, target.url, csv, users=4, run_time="8s", workers=1), log=tmp_path / "m.log", env=env
    )
    worker = horde(*worker_args(port), log=tmp_path / "w.log")
    context = zmq.Context()
    rng = random.Random(42)
    valid = msgpack.packb(["heartbeat", {"state": "running", "current_cpu_usage": 1.0}, "nobody"])
    shapes = [
        ["stats", {}, "nobody"],
        ["stats", {"stats": "x", "stats_total": 5}, "nobody"],
        ["stats", [], "nobody"],
        ["spawning_complete", {"user_classes_count": "abc"}, "nobody"],
        ["spawning_complete", None, "nobody"],
        ["heartbeat", None, "nobody"],
        ["heartbeat", [1, 2], "nobody"],
        ["exception", None, "nobody"],
        ["logs", 5, "nobody"],
        ["locustfile", "x", "nobody"],
        ["no_such_type", {"a": 1}, "nobody"],
        [1, 2, 3],
        ["spawning"],
        {"type": "stats"},
        "just a string",
    ]
    try:
        master.wait_for("All users spawned")
        sockets = []
        for i in range(300):
            sock = raw_worker(context, f"fuzz{i}".encode() if i % 11 else bytes([0xFF, i % 256]), port)
            sockets.append(sock)
            kind = i % 4
            if kind == 0:
                payload = rng.randbytes(rng.randint(0, 200))
            elif kind == 1:
                payload = valid[: rng.randint(0, len(valid) - 1)]
            elif kind == 2:
                payload = msgpack.packb(shapes[i % len(shapes)])
            else:
                payload = msgpack.packb(["stats", {"stats": [{"name": 1}], "stats_total": {}, "errors": 7}, "x"])
            frames = [payload] if i % 7 else [payload, b"extra", b"frames"]
            sock.send_multipart(frames)
        check_run(master, [worker], target, before, csv, summary, worker_count=1)
        output = master.output
        assert "Unrecognized message detected" in output
        assert "Unknown message type received from worker nobody" in output
        assert "Ignored a malformed 'exception' message from nobody" in output
        assert "Traceback" not in output
        for sock in sockets:
            sock.close()
    finally:
        context.term()
        master.kill()
        worker.kill()


def test_worker_versions_are_checked_as_locust_does(tmp_path):
    import msgpack
    import zmq

    port = free_port()
    master = horde(
        "-f", str(DISTRIBUTED), "--master", "--master-bind-port", str(port), "--headless", "--expect-workers", "3",
        "--expect-workers-max-wait", "3", log=tmp_path / "m.log",
    )  # fmt: skip
    context = zmq.Context()
    sockets = []
    try:
        for identity, version in (("old_worker", ""), ("other_version", "1.0.0"), ("third_party", -1)):
            sock = raw_worker(context, identity.encode(), port)
            sock.send(msgpack.packb(["client_ready", version, identity]))
            sockets.append(sock)
        # Two are accepted (a third-party worker's -1 silently), the pre-2.0 one is not: the
        # master gives up waiting for its third worker.
        assert master.wait(60) == 1, master.output[-3000:]
        output = master.output
        assert "An old (pre 2.0) worker tried to connect (old_worker). That's not going to work." in output
        assert "A worker (other_version) running a different version (1.0.0) connected" in output
        assert re.search(r"third_party \(index \d\) reported as ready", output)
        assert "Gave up waiting for workers to connect" in output
    finally:
        for sock in sockets:
            sock.close()
        context.term()
        master.kill()


LISTENING_LOCUSTFILE = """
from locust import HttpUser, events, task


class Hello(HttpUser):
    @task
    def index(self):
        pass


@events.heartbeat_sent.add_listener
def on_heartbeat(client_id, timestamp, **kw):
    print("HEARTBEAT_SENT", client_id, flush=True)


@events.worker_report.add_listener
def on_report(client_id, data, **kw):
    print("WORKER_REPORT", client_id, data.get("custom"), data["stats_total"]["num_requests"], flush=True)
"""


def test_the_master_passes_on_what_listeners_and_its_rules_need(tmp_path):
    """The master's socket answers heartbeats and merges reports without Python, but listeners
    still get every heartbeat and the whole report (a locustfile's own keys too), the CPU warning
    is given, and a report from a worker the master does not know is discarded."""
    import msgpack
    import zmq

    locustfile = tmp_path / "listening.py"
    locustfile.write_text(LISTENING_LOCUSTFILE)
    port = free_port()
    master = horde(
        "-f", str(locustfile), "--master", "--master-bind-port", str(port), "--headless", "--expect-workers", "2",
        "--expect-workers-max-wait", "8", log=tmp_path / "m.log",
    )  # fmt: skip
    now = time.time()
    total = {
        "name": "Aggregated", "method": None, "last_request_timestamp": now, "start_time": now - 3,
        "num_requests": 3, "num_none_requests": 0, "num_failures": 0, "total_response_time": 6.0,
        "max_response_time": 3.0, "min_response_time": 1.0, "total_content_length": 30,
        "response_times": {1: 1, 2: 1, 3: 1}, "num_reqs_per_sec": {int(now): 3}, "num_fail_per_sec": {},
    }  # fmt: skip
    report = {
        "stats": [dict(total, name="/x", method="GET")], "stats_total": total, "errors": {},
        "user_classes_count": {"Hello": 0}, "user_count": 0, "custom": "from-w1",
    }  # fmt: skip
    context = zmq.Context()
    worker = raw_worker(context, b"w1", port)
    stranger = raw_worker(context, b"stranger", port)
    try:
        worker.send(msgpack.packb(["client_ready", "2.47.0", "w1"]))
        assert worker.poll(20_000), master.output[-3000:]
        assert msgpack.unpackb(worker.recv())[0] == "ack"
        beat = {"state": "ready", "current_cpu_usage": 95.0, "current_memory_usage": 1000}
        replies = 0
        for _ in range(3):
            worker.send(msgpack.packb(["heartbeat", beat, "w1"]))
            if worker.poll(5_000) and msgpack.unpackb(worker.recv()) == ["heartbeat", None, "w1"]:
                replies += 1
        worker.send(msgpack.packb(["stats", report, "w1"]))
        stranger.send(msgpack.packb(["stats", report, "stranger"]))
        assert master.wait(60) == 1, master.output[-3000:]
        output = master.output
        assert replies == 3, output[-3000:]
        assert output.count("HEARTBEAT_SENT w1") == 3, output[-3000:]
        assert "WORKER_REPORT w1 from-w1 3" in output, output[-3000:]
        assert "WORKER_REPORT stranger" not in output, output[-3000:]
        assert "Discarded report from unrecognized worker stranger" in output, output[-3000:]
        assert output.count("Worker w1 (index 0) exceeded cpu threshold") == 1, output[-3000:]
    finally:
        worker.close()
        stranger.close()
        context.term()
        master.kill()


# -- across machines ----------------------------------------------------------------------------------


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def two_hosts():
    """Two network namespaces joined by a veth pair: "hosts" 10.213.N.1 and 10.213.N.2 that talk
    over real TCP. Only these addresses, which the fixture creates, ever get traffic; both
    namespaces (and the veth with them) are deleted afterwards."""
    import shutil

    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to create network namespaces")
    tag = f"h{os.getpid() % 100000}"
    a, b, net = f"{tag}a", f"{tag}b", f"10.213.{os.getpid() % 250}"
    try:
        _ip("netns", "add", a)
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot create a network namespace here: {e.stderr.decode().strip()}")
    try:
        _ip("netns", "add", b)
        _ip("link", "add", f"{tag}va", "type", "veth", "peer", "name", f"{tag}vb")
        _ip("link", "set", f"{tag}va", "netns", a)
        _ip("link", "set", f"{tag}vb", "netns", b)
        for ns, dev, address in ((a, f"{tag}va", f"{net}.1/30"), (b, f"{tag}vb", f"{net}.2/30")):
            _ip("-n", ns, "addr", "add", address, "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield {"master_ns": a, "worker_ns": b, "master_ip": f"{net}.1", "worker_ip": f"{net}.2"}
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_master_and_worker_on_two_hosts(tmp_path, two_hosts):
    hosts = two_hosts
    port, target_port = free_port(), free_port()
    in_master_ns = ["ip", "netns", "exec", hosts["master_ns"]]
    in_worker_ns = ["ip", "netns", "exec", hosts["worker_ns"]]
    target = Node(
        [
            *in_master_ns,
            sys.executable,
            "-m",
            "horde.demo",
            "serve",
            "--host",
            hosts["master_ip"],
            "--port",
            str(target_port),
        ],
        tmp_path / "target.log",
    )
    csv = tmp_path / "run"
    master = Node(
        [
            *in_master_ns, sys.executable, "-m", "horde", "-f", str(DISTRIBUTED), "--master",
            "--master-bind-host", hosts["master_ip"], "--master-bind-port", str(port), "--headless",
            "--expect-workers", "1", "-u", "4", "-r", "4", "-t", "4s",
            "-H", f"http://{hosts['master_ip']}:{target_port}", "--csv", str(csv), "--only-summary",
        ],
        tmp_path / "master.log",
    )  # fmt: skip
    worker = Node(
        [
            *in_worker_ns, sys.executable, "-m", "horde", "-f", str(DISTRIBUTED), "--worker",
            "--master-host", hosts["master_ip"], "--master-port", str(port),
        ],
        tmp_path / "worker.log",
    )  # fmt: skip
    try:
        assert master.wait(90) == 0, master.output[-3000:] + worker.output[-2000:]
        assert worker.wait(30) == 0, worker.output[-3000:]
        rows = stats_rows(Path(f"{csv}_stats.csv"))
        assert int(rows[("", "Aggregated")]["Request Count"]) > 0
        assert int(rows[("", "Aggregated")]["Failure Count"]) == 0
        assert "1 workers connected" in master.output
    finally:
        for node in (master, worker, target):
            node.kill()


def test_a_shape_runs_on_the_master(tmp_path, demo):
    port = free_port()
    csv = tmp_path / "run"
    master = horde(
        "-f", str(LOCUSTFILES / "shape.py"), "--master", "--master-bind-port", str(port), "--headless",
        "--expect-workers", "2", "-H", demo.url, "--csv", str(csv), "--csv-full-history", "--only-summary",
        log=tmp_path / "master.log",
    )  # fmt: skip
    workers = [horde(*worker_args(port, LOCUSTFILES / "shape.py"), log=tmp_path / f"w{i}.log") for i in range(2)]
    try:
        # The shape's end ends the headless run; the workers follow.
        assert master.wait(60) == 0, master.output[-3000:]
        for w in workers:
            assert w.wait(30) == 0, w.output[-3000:]
        assert "Shape test updating to 5 users" in master.output
        assert "Shape test updating to 10 users" in master.output
        assert {5, 10} <= set(_history_user_counts(Path(f"{csv}_stats_history.csv")))
    finally:
        master.kill()
        for w in workers:
            w.kill()


@needs_locust
def test_a_horde_worker_downloads_the_locustfile_from_a_locust_master(tmp_path, target):
    port = free_port()
    csv, summary = tmp_path / "run", tmp_path / "summary.json"
    before = target.requests_served
    env = {"DISTRIBUTED_SUMMARY": str(summary)}
    master = locust(*master_args(port, target.url, csv, workers=1), log=tmp_path / "master.log", env=env)
    worker = horde("-f", "-", "--worker", "--master-port", str(port), log=tmp_path / "worker.log")
    try:
        check_run(master, [worker], target, before, csv, summary)
    finally:
        master.kill()
        worker.kill()
