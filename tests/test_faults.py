"""The fault matrix: horde run as a user runs it (``horde.run``) against servers that fail in one
way each: killed and restarted, closing keep-alive connections, HTTP/1.0, 100 Continue, a full
accept queue, a name that does not resolve, malformed chunked bodies, streamed bodies. Each case
checks that the run goes on, that every request is counted, and what the failures table says."""

from __future__ import annotations

import gc
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import gevent
import numpy as np
import pytest
from conftest import free_port, wait_for_port
from fault_servers import FullAcceptQueue, RawServer, reply

import horde
from horde import HttpUser, constant, constant_pacing, task
from horde.contrib.fasthttp import FastHttpUser
from horde.exception import StopUser

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def _errors(result: horde.Result) -> dict[str, int]:
    """{error text: occurrences} from the failures table."""
    return {row["Error"]: int(row["Occurrences"]) for _, row in result.failures.iterrows()}


def _counts(result: horde.Result) -> dict[str, int]:
    """{name: requests} from the stats' rows above "Aggregated"."""
    return {row["Name"]: int(row["Request Count"]) for _, row in result.stats.iloc[:-1].iterrows()}


def _open_fds() -> list[str]:
    """What this process's file descriptors point at, sorted (after a garbage collection, which
    closes what only reference cycles still held)."""
    gc.collect()
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:
            pass  # the listing's own descriptor, closed by now
    return sorted(found)


_finished: dict[int, int] = {}


def _finish(user, users: int) -> None:
    """Stops ``user`` for good; the last of ``users`` to finish ends the run, so that a bounded
    test takes as long as its requests."""
    env = user.environment
    _finished[id(env)] = _finished.get(id(env), 0) + 1
    if _finished[id(env)] == users:
        gevent.spawn(user.environment.runner.quit)
    raise StopUser()


def _bounded_user(base: type, paths: list[str], times: int, users: int) -> type:
    """A user class that requests each of ``paths`` in turn, ``times`` rounds, then stops: a run
    of ``users`` of them makes exactly ``times * users`` requests of each path."""

    def run_paths(user) -> None:
        if user.rounds == times:
            _finish(user, users)
        user.rounds += 1
        for path in paths:
            user.client.get(path, name=path)

    return type(
        f"Bounded{base.__name__}",
        (base,),
        {"wait_time": constant(0), "rounds": 0, "tasks": [run_paths]},
    )


# --- the target killed and restarted mid-run ---------------------------------------------------

DEMO_PROCESS = textwrap.dedent(
    """
    import sys, time
    from horde import DemoServer
    server = DemoServer(port=int(sys.argv[1]))
    time.sleep(3600)
    """
)


def _start_demo(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", DEMO_PROCESS, str(port)], stdin=subprocess.DEVNULL)
    wait_for_port(port, proc)
    return proc


def _paced(base: type) -> type:
    """Users that each make 20 requests a second, whatever the server does."""

    def hello(user) -> None:
        user.client.get("/", name="hello")

    return type(f"Paced{base.__name__}", (base,), {"wait_time": constant_pacing(0.05), "tasks": [hello]})


@pytest.mark.parametrize("base", [HttpUser, FastHttpUser])
def test_target_killed_and_restarted_mid_run(base):
    paced = _paced(base)
    port = free_port()
    host = f"http://127.0.0.1:{port}"
    server = _start_demo(port)
    try:
        # A first run creates what lives as long as the process (the engine's runtime, gevent's
        # hub), so that the descriptors counted around the second are the run's own.
        horde.start(paced, host=host, users=1, run_time=0.5).wait(timeout=30)
        fds_before = _open_fds()
        # No run time: the run is stopped when it has had three seconds after the return, however
        # long the restart took on a busy machine.
        handle = horde.start(paced, host=host, users=5, spawn_rate=100, run_time=None)
        time.sleep(2.6)
        server.send_signal(signal.SIGKILL)
        server.wait()
        killed = time.time()
        time.sleep(1.5)
        server = _start_demo(port)
        restarted = time.time()
        time.sleep(3.6)
        handle.stop()
        result = handle.wait(timeout=30)
    finally:
        server.kill()
        server.wait()
    # Nothing the run opened is still open. Descriptors left by earlier tests may close meanwhile
    # (the whole suite runs in this process), so only new ones count.
    leaked = Counter(_open_fds()) - Counter(fds_before)
    assert not leaked, leaked

    samples = result.samples
    assert samples.dropped == 0 and len(samples.ok) == result.num_requests
    started = samples.origin + samples.start_us / 1e6
    down = (started > killed + 0.1) & (started < restarted - 0.1)
    assert down.any() and not samples.ok[down].any()
    errors = _errors(result)
    assert errors.get("ConnectionRefusedError(111, 'Connection refused')", 0) > 0
    assert sum(errors.values()) == result.num_failures == int(np.count_nonzero(~samples.ok))

    # Per second after the return: from its second second on, every request succeeds and as many
    # are made as in the seconds before the kill (5 users paced at 20 a second each).
    end = samples.origin + (samples.start_us.max() / 1e6)
    before = np.histogram(started, bins=np.arange(samples.origin + 0.5, killed - 0.05, 1.0))[0]
    late = started >= restarted + 1.0
    assert samples.ok[late].all()
    after = np.histogram(started[late], bins=np.arange(restarted + 1.0, end - 0.5, 1.0))[0]
    assert len(before) and len(after), (before, after)
    assert after.min() >= 0.5 * np.median(before), (before, after)
    assert result.exceptions.empty


# --- keep-alive closed by the server, Connection: close, HTTP/1.0, 100 Continue ---------------

NGINX_CONF = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    keepalive_requests 100;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 'ok'; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    """nginx on 127.0.0.1 closing each keep-alive connection after 100 requests."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    work = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=work, port=port))
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(work), "-g", "daemon off;"])
    wait_for_port(port, proc)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.parametrize("base", [HttpUser, FastHttpUser])
def test_keep_alive_closed_after_100_requests_fails_nothing(nginx, base):
    user = _bounded_user(base, ["/"], 250, users=3)
    result = horde.run(user, host=nginx, users=3, run_time=30, progress=False)
    # Three users, 250 requests each: each user's connection was closed by nginx twice.
    assert _counts(result) == {"/": 750}
    assert result.num_failures == 0, _errors(result)


@pytest.mark.parametrize("base", [HttpUser, FastHttpUser])
def test_keep_alive_closed_without_notice_fails_nothing(base):
    # Every third response on a connection is its last, with no "Connection: close" to say so: the
    # next request on it meets a closed connection before any byte and is sent again on a new one.
    user = _bounded_user(base, ["/"], 60, users=2)
    with RawServer({"/": reply(OK, close_every=3)}) as server:
        result = horde.run(user, host=server.url, users=2, run_time=30, progress=False)
    assert _counts(result) == {"/": 120}
    assert result.num_failures == 0, _errors(result)
    assert server.connections >= 120 // 3
    assert result.exceptions.empty


CLOSING_AND_INTERIM = {
    "/close": reply(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", close=True),
    "/close-no-length": reply(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", close=True),
    "/http10": reply(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", close=True),
    "/http10-no-length": reply(b"HTTP/1.0 200 OK\r\n\r\nuntil the end", close=True),
    "/http10-keep-alive": reply(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"),
    "/continue": reply(b"HTTP/1.1 100 Continue\r\n\r\n" + OK),
    "/continue-twice": reply(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" + OK, pause=0.01),
    "/continue-split": reply(b"HTTP/1.1 100 Continue\r\n\r\n", OK, pause=0.01),
}


@pytest.mark.parametrize("base", [HttpUser, FastHttpUser])
def test_connection_close_http_1_0_and_100_continue(base):
    routes = CLOSING_AND_INTERIM
    bodies: list[tuple[str, bytes]] = []

    class Check(base):  # type: ignore[valid-type, misc]
        wait_time = constant(0)
        rounds = 0

        @task
        def each(self):
            if self.rounds == 5:
                _finish(self, 2)
            self.rounds += 1
            for path in routes:
                bodies.append((path, self.client.get(path, name=path).content))

    with RawServer(routes) as server:
        result = horde.run(Check, host=server.url, users=2, run_time=30, progress=False)
    assert result.num_failures == 0, _errors(result)
    assert _counts(result) == dict.fromkeys(routes, 10)
    expected = {p: b"until the end" if p.endswith("no-length") else b"ok" for p in routes}
    assert len(bodies) == 10 * len(routes)
    assert all(body == expected[path] for path, body in bodies), bodies
    # Four of the routes close the connection: each of their requests needed a new one.
    assert server.connections >= 4 * 10
    assert result.exceptions.empty


RESETS_AND_STALLS = {
    "/reset-before": reply(reset=True),
    "/reset-in-body": reply(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", pause=0.05, reset=True),
    "/reset-in-chunks": reply(CHUNKED + b"5\r\nab", pause=0.05, reset=True),
    # Three bytes of ten, then nothing for longer than the read timeout.
    "/stall-in-body": reply(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", b"", pause=2),
}


@pytest.mark.parametrize("base", [HttpUser, FastHttpUser])
def test_resets_and_a_stall_inside_the_body(base):
    class Broken(base):  # type: ignore[valid-type, misc]
        wait_time = constant(0)
        network_timeout = 0.5
        rounds = 0

        @task
        def each(self):
            if self.rounds == 2:
                _finish(self, 1)
            self.rounds += 1
            for path in RESETS_AND_STALLS:
                if base is HttpUser:
                    self.client.get(path, name=path, timeout=(2, 0.5))
                else:
                    self.client.get(path, name=path)

    with RawServer(RESETS_AND_STALLS) as server:
        result = horde.run(Broken, host=server.url, users=1, run_time=30, progress=False)
    assert _counts(result) == dict.fromkeys(RESETS_AND_STALLS, 2)
    reset = "ConnectionResetError(104, 'Connection reset by peer')"
    # The texts of Locust 2.47.0 against this same server.
    if base is HttpUser:
        broken = f'ChunkedEncodingError(ProtocolError("Connection broken: {reset}", {reset}))'
        expected = {
            "/reset-before": reset,
            "/reset-in-body": broken,
            "/reset-in-chunks": broken,
            "/stall-in-body": f"ReadTimeoutError(\"HTTPConnectionPool(host='127.0.0.1', port={server.port}): "
            'Read timed out.")',
        }
    else:
        expected = {
            "/reset-before": "HTTPConnectionClosed('connection closed.')",
            "/reset-in-body": reset,
            "/reset-in-chunks": reset,
            "/stall-in-body": "TimeoutError('timed out')",
        }
    got = {row["Name"]: (row["Error"], int(row["Occurrences"])) for _, row in result.failures.iterrows()}
    assert got == {path: (text, 2) for path, text in expected.items()}
    assert result.exceptions.empty


# --- connect timeouts on a full accept queue; a name that does not resolve ---------------------


@pytest.mark.parametrize("base", [HttpUser, FastHttpUser])
def test_full_accept_queue_gives_connect_timeouts(base):
    with FullAcceptQueue() as queue:

        class Stuck(base):  # type: ignore[valid-type, misc]
            wait_time = constant(0)
            connection_timeout = 0.3
            rounds = 0

            @task
            def each(self):
                if self.rounds == 3:
                    _finish(self, 2)
                self.rounds += 1
                if base is HttpUser:
                    self.client.get("/", name="stuck", timeout=(0.3, 5))
                else:
                    self.client.get("/", name="stuck")

        result = horde.run(Stuck, host=queue.url, users=2, run_time=30, progress=False)
    assert _counts(result) == {"stuck": 6}
    assert result.num_failures == 6
    if base is HttpUser:
        text = (
            f"ConnectTimeoutError(<HTTPConnection(host='127.0.0.1', port={queue.port}) at 0x....>, "
            "'Connection to 127.0.0.1 timed out. (connect timeout=0.3)')"
        )
    else:
        text = f"RetriesExceeded('{queue.url}/', 0, original=timed out)"
    assert _errors(result) == {text: 6}
    assert result.exceptions.empty


@pytest.mark.parametrize("base", [HttpUser, FastHttpUser])
def test_unresolvable_host_is_a_clear_failure(base):
    # Few requests: each asks the resolver, which is not ours to load.
    user = _bounded_user(base, ["/"], 2, users=1)
    result = horde.run(user, host="http://nonexistent.invalid", users=1, run_time=30, progress=False)
    assert _counts(result) == {"/": 2}
    (text,) = _errors(result)
    assert text.startswith("gaierror(-"), text
    assert result.failures.iloc[0]["Occurrences"] == 2
    assert result.exceptions.empty


# --- chunked bodies: extensions, trailers, malformed sizes --------------------------------------

GOOD_CHUNKED = {
    "/extensions": reply(CHUNKED + b'5;name=value\r\nhello\r\n6 ; a="b;c"\r\n world\r\n0\r\n\r\n'),
    "/trailers": reply(CHUNKED + b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\nX-More: 2\r\n\r\n"),
    "/piecemeal": reply(CHUNKED + b"5\r", b"\nhel", b"lo\r\n6\r\n wor", b"ld\r\n0\r\n", b"\r\n", pause=0.01),
    "/upper-hex-bare-lf": reply(CHUNKED + b"0000B\nhello world\n0\n\n"),
}
BAD_CHUNKED = {
    "/letters": (
        reply(CHUNKED + b"zz\r\nhello\r\n0\r\n\r\n"),
        "ChunkedEncodingError(ProtocolError(\"Connection broken: InvalidChunkLength(got length b'zz\\\\r\\\\n', "
        "0 bytes read)\", InvalidChunkLength(got length b'zz\\r\\n', 0 bytes read)))",
        "HTTPParseError('Invalid character in chunk size', 12)",
    ),
    "/overflow": (
        reply(CHUNKED + b"1ffffffffffffffff\r\nhello\r\n"),
        'ChunkedEncodingError(ProtocolError("Connection broken: InvalidChunkLength(got length '
        "b'1ffffffffffffffff\\\\r\\\\n', 0 bytes read)\", InvalidChunkLength(got length "
        "b'1ffffffffffffffff\\r\\n', 0 bytes read)))",
        "HTTPParseError('Chunk size overflow', 12)",
    ),
    # A size of 16 EiB and three bytes of it: nothing is allocated ahead of the data.
    "/huge-then-close": (
        reply(CHUNKED + b"ffffffffffffffff\r\nabc", close=True),
        "ChunkedEncodingError(ProtocolError('Connection broken: IncompleteRead(3 bytes read, "
        "10237 more expected)', IncompleteRead(3 bytes read, 10237 more expected)))",
        "HTTPParseError('Incomplete response.')",
    ),
    "/cut-between-chunks": (
        reply(CHUNKED + b"5\r\nhello\r\n", close=True),
        "ChunkedEncodingError(ProtocolError('Response ended prematurely'))",
        "HTTPParseError('Incomplete response.')",
    ),
    "/no-crlf-after-data": (
        reply(CHUNKED + b"3\r\nhelXY0\r\n\r\n"),
        "ConnectionError('malformed HTTP response: chunk not followed by CRLF')",
        "HTTPParseError('Expected LF after chunk data', 2)",
    ),
}


@pytest.mark.parametrize("base", [HttpUser, FastHttpUser])
def test_chunked_bodies_good_and_malformed(base):
    routes = {**GOOD_CHUNKED, **{path: route for path, (route, _, _) in BAD_CHUNKED.items()}}
    with RawServer(routes) as server:
        bodies: list[tuple[str, bytes | None]] = []

        class Chunky(base):  # type: ignore[valid-type, misc]
            wait_time = constant(0)
            rounds = 0

            @task
            def each(self):
                if self.rounds == 3:
                    _finish(self, 1)
                self.rounds += 1
                for path in routes:
                    bodies.append((path, self.client.get(path, name=path).content))

        result = horde.run(Chunky, host=server.url, users=1, run_time=30, progress=False)
    assert _counts(result) == dict.fromkeys(routes, 3)
    assert {path for path, body in bodies if body == b"hello world"} == set(GOOD_CHUNKED)
    which = 1 if base is HttpUser else 2
    expected = {f"GET {path}: {case[which]}": 3 for path, case in BAD_CHUNKED.items()}
    got = {
        f"{row['Method']} {row['Name']}: {row['Error']}": int(row["Occurrences"])
        for _, row in result.failures.iterrows()
    }
    assert got == expected
    assert result.exceptions.empty


STREAMED = ("/stream/5", "/stream-bytes/3000?chunk_size=100&seed=1", "/drip?numbytes=50&duration=0.2&delay=0")


def test_chunked_and_dripped_bodies_from_httpbin(httpbin):
    seen: dict[str, list[int]] = {}

    class Streams(HttpUser):
        wait_time = constant(0)
        rounds = 0

        @task
        def each(self):
            if self.rounds == 2:
                _finish(self, 1)
            self.rounds += 1
            for path in (
                "/stream/5",
                "/stream-bytes/3000?chunk_size=100&seed=1",
                "/drip?numbytes=50&duration=0.2&delay=0",
            ):
                seen.setdefault(path.split("?")[0], []).append(len(self.client.get(path).content))

    result = horde.run(Streams, host=httpbin, users=1, run_time=30, progress=False)
    assert result.num_failures == 0, _errors(result)
    assert seen["/stream-bytes/3000"] == [3000, 3000]
    assert seen["/drip"] == [50, 50]
    assert len(seen["/stream/5"]) == 2
    assert result.exceptions.empty


# --- stream=True with iter_content / iter_lines --------------------------------------------------


def test_streamed_responses_iterate_as_requests_and_fasthttp_do(httpbin):
    import json

    got: dict[str, object] = {}

    class Streamer(HttpUser):
        wait_time = constant(0)

        @task
        def each(self):
            response = self.client.get("/stream/4", stream=True)
            lines = list(response.iter_lines())
            got["lines"] = [json.loads(line)["id"] for line in lines]
            got["text_lines"] = all(isinstance(line, str) for line in response.iter_lines(decode_unicode=True))
            response = self.client.get("/stream-bytes/1000?chunk_size=100&seed=3", stream=True)
            pieces = list(response.iter_content(chunk_size=64))
            got["pieces"] = [len(p) for p in pieces]
            got["joined"] = b"".join(pieces) == response.content
            _finish(self, 2)

    class FastStreamer(FastHttpUser):
        wait_time = constant(0)

        @task
        def each(self):
            got["fast_lines"] = [json.loads(line)["id"] for line in self.client.iter_lines("/stream/3")]
            response = self.client.get("/stream-bytes/300?chunk_size=7&seed=3", stream=True)
            got["fast_pieces"] = [len(p) for p in response.iter_content(chunk_size=100, decode_content=False)]
            _finish(self, 2)

    result = horde.run([Streamer, FastStreamer], host=httpbin, users=2, run_time=30, progress=False)
    assert result.num_failures == 0, _errors(result)
    assert result.exceptions.empty, result.exceptions
    assert got["lines"] == [0, 1, 2, 3]
    assert got["text_lines"] is True
    assert got["pieces"] == [64] * 15 + [40]
    assert got["joined"] is True
    assert got["fast_lines"] == [0, 1, 2]
    assert got["fast_pieces"] == [100, 100, 100]
