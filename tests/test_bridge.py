"""How Python waits for the engine: cooperatively, in batches, in any thread, across fork()."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import gevent
import pytest

from horde import HttpSession, _bridge
from horde.contrib.fasthttp import FastHttpSession


@pytest.fixture(autouse=True, params=["threads", "local"])
def engine_mode(request, monkeypatch):
    """Every test here runs twice: with the engine on its own threads (several cores) and with the
    engine driven by the Python thread itself (one core, ``HORDE_RUNTIME_THREADS=0``)."""
    monkeypatch.setenv("HORDE_RUNTIME_THREADS", "1" if request.param == "threads" else "0")
    _fresh_bridges()
    yield request.param
    _fresh_bridges()


def _fresh_bridges() -> None:
    # The next bridge() builds its Completions under the current setting.
    for b in list(_bridge._by_hub.values()):
        # Only this thread's: other tests' threads have ended, and their loops with them.
        if b.hub is gevent.get_hub() and not b.in_flight:
            b.watcher.stop()
            if b.completions.local:
                b.ticker.stop()
    _bridge._by_hub.clear()
    _bridge._last[:] = [None, None]


def test_the_mode_in_use(engine_mode):
    assert _bridge.bridge().completions.local is (engine_mode == "local")


def test_waiting_greenlets_let_others_run(demo):
    client = HttpSession(base_url=demo.url)
    ticks = []

    def ticker() -> None:
        for _ in range(5):
            ticks.append(time.monotonic())
            gevent.sleep(0.05)

    t = gevent.spawn(ticker)
    r = client.get("/delay/400")
    t.join()
    assert r.status_code == 200
    assert len(ticks) == 5  # the ticker ran to the end while the request was in flight


def test_a_request_cut_short_does_not_hand_its_late_result_to_the_next_one(demo):
    # The engine still completes a request whose waiting greenlet gave up (gevent.Timeout) or was
    # killed; that late result must be dropped, not taken for the greenlet's next request.
    client = HttpSession(base_url=demo.url)
    with gevent.Timeout(0.05, False):
        client.get("/delay/300")
    first = client.get("/status/201")
    gevent.sleep(0.4)  # the abandoned /delay response arrives meanwhile
    second = client.get("/status/202")
    assert (first.status_code, second.status_code) == (201, 202)

    victim = gevent.spawn(client.get, "/delay/300")
    gevent.sleep(0.05)
    victim.kill()
    third = client.get("/status/203")
    gevent.sleep(0.4)
    assert client.get("/status/204").status_code == 204 and third.status_code == 203


def test_completions_arrive_in_batches(demo):
    b = _bridge.bridge()
    wakeups = 0
    original = b._on_ready

    def counting() -> None:
        nonlocal wakeups
        wakeups += 1
        original()

    b.watcher.stop()
    b.watcher.start(counting)
    try:
        clients = [HttpSession(base_url=demo.url) for _ in range(200)]
        gevent.joinall([gevent.spawn(c.get, "/delay/200") for c in clients], raise_error=True)
    finally:
        b.watcher.stop()
        b.watcher.start(original)
    # 200 requests finishing at about the same moment need far fewer than 200 wake-ups.
    assert 1 <= wakeups < 100


def test_a_read_timeout_fires_with_no_other_io(demo):
    # Nothing wakes the loop while the server sleeps: on the local runtime, the ticker does.
    client = FastHttpSession(demo.url, None, None, network_timeout=0.2)
    r = client.get("/delay/3000")
    assert r.status_code == 0
    assert "timed out" in str(r.error)
    assert client.get("/status/204").status_code == 204


def test_many_users_at_once(demo):
    # More requests in one flush than tokio polls between looks at its reactor by default.
    clients = [HttpSession(base_url=demo.url) for _ in range(300)]
    jobs = [gevent.spawn(c.get, f"/status/{200 + i % 7}") for i, c in enumerate(clients)]
    gevent.joinall(jobs, raise_error=True)
    assert [j.value.status_code for j in jobs] == [200 + i % 7 for i in range(300)]


def test_idle_bridge_does_not_keep_gevent_busy(demo):
    HttpSession(base_url=demo.url).get("/")
    assert _bridge.bridge().watcher.ref is False
    gevent.wait(timeout=1)  # returns at once: nothing of horde's is pending


def test_works_in_another_thread(demo):
    results = []

    def run() -> None:
        c = HttpSession(base_url=demo.url)
        jobs = [gevent.spawn(c.get, "/json") for _ in range(5)]
        gevent.joinall(jobs)
        results.extend(j.value.status_code for j in jobs)

    th = threading.Thread(target=run)
    th.start()
    th.join(30)
    assert results == [200] * 5


def test_requests_work_in_a_forked_child(demo):
    HttpSession(base_url=demo.url).get("/")  # the parent's runtime is running
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: a fresh runtime and bridge must serve it
        code = 1
        try:
            from horde._core import DemoServer

            server = DemoServer()
            ok = HttpSession(base_url=server.url).get("/").status_code == 200
            os.write(w, b"ok" if ok else b"no")
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 2) == b"ok"
    assert os.waitstatus_to_exitcode(status) == 0


MONKEYPATCHED_USERS = """
from gevent import monkey
monkey.patch_all()
import os, gevent
from horde import DemoServer, HttpSession
from horde import _bridge
server = DemoServer()
def user():
    HttpSession(base_url=server.url).get("/")
gevent.joinall([gevent.spawn(user) for _ in range(20)])
def kind(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""  # the descriptor listdir itself used
eventfds = sum("eventfd" in kind(fd) for fd in os.listdir("/proc/self/fd"))
print(len(_bridge._by_hub), eventfds)
"""


def test_one_bridge_per_thread_even_when_monkeypatched():
    # Monkey patching makes threading.local per greenlet; the bridge must still be one per hub
    # (it once was per user: an eventfd each, and no batching).
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", MONKEYPATCHED_USERS], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    bridges, eventfds = map(int, out.stdout.split())
    assert bridges == 1
    assert eventfds < 20 // 2


ONE_CORE = """
import os
from horde import DemoServer, HttpSession, _bridge, _core
server = DemoServer()
assert HttpSession(base_url=server.url).get("/").status_code == 200
threads = set()
for tid in os.listdir("/proc/self/task"):
    with open(f"/proc/self/task/{tid}/comm") as f:
        threads.add(f.read().strip())
print(_core.runtime_threads(), _bridge.bridge().completions.local, "horde-io" in threads)
"""


def test_on_one_core_the_engine_runs_on_the_python_thread():
    env = {k: v for k, v in os.environ.items() if k != "HORDE_RUNTIME_THREADS"}
    one = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", ONE_CORE], capture_output=True, text=True, timeout=60, env=env
    )
    assert one.returncode == 0, one.stderr
    assert one.stdout.split() == ["0", "True", "False"]
    if len(os.sched_getaffinity(0)) > 1:
        two = subprocess.run([sys.executable, "-c", ONE_CORE], capture_output=True, text=True, timeout=60, env=env)
        assert two.returncode == 0, two.stderr
        assert two.stdout.split() == [str(len(os.sched_getaffinity(0)) - 1), "False", "True"]
