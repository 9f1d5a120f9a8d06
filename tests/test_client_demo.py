"""HttpSession against horde's demo target: the Conduit flow, TLS, and the engine-side stats."""

from __future__ import annotations

import os

import gevent
import pytest

from horde import EventHook, HttpSession, RequestStats, _bridge, _core
from horde.exception import ConnectionError, SSLError
from horde.stats import StatsListener


def logged(stats):
    """A request hook whose one listener logs into ``stats``, as a runner's does."""
    hook = EventHook()
    hook.add_listener(StatsListener(stats))
    return hook


def test_conduit_flow_keeps_the_token_per_session(demo):
    stats = RequestStats()
    client = HttpSession(base_url=demo.url, request_event=logged(stats))
    login = client.post("/api/users/login", json={"user": {"email": "ann@example.com", "password": "pw"}})
    assert login.status_code == 200
    token = login.json()["user"]["token"]
    client.headers["Authorization"] = f"Token {token}"

    created = client.post(
        "/api/articles",
        json={"article": {"title": "Load tests", "description": "d", "body": "b", "tagList": ["perf"]}},
    )
    assert created.status_code == 201
    slug = created.json()["article"]["slug"]
    with client.rename_request("/api/articles/[slug]"):
        assert client.get(f"/api/articles/{slug}").json()["article"]["title"] == "Load tests"
    fav = client.post(f"/api/articles/{slug}/favorite", name="/api/articles/[slug]/favorite")
    assert fav.json()["article"]["favorited"] is True
    comment = client.post(f"/api/articles/{slug}/comments", json={"comment": {"body": "nice"}}, name="comment")
    assert comment.status_code == 201
    assert client.delete(f"/api/articles/{slug}", name="/api/articles/[slug]").status_code == 200
    assert client.get(f"/api/articles/{slug}", name="/api/articles/[slug]").status_code == 404

    entries, total, errors, _ = stats.snapshot()
    rows = {(e.method, e.name): e for e in entries}
    assert rows[("GET", "/api/articles/[slug]")].num_requests == 2
    assert rows[("GET", "/api/articles/[slug]")].num_failures == 1
    assert rows[("POST", "comment")].num_requests == 1
    assert total.num_requests == 7 and total.num_failures == 1
    assert [e[2] for e in errors] == ["HTTPError('404 Client Error: Not Found for url: /api/articles/[slug]')"]


def test_writes_need_the_token(demo):
    client = HttpSession(base_url=demo.url)
    r = client.post("/api/articles", json={"article": {"title": "x"}})
    assert r.status_code == 401


def test_sessions_do_not_share_cookies(demo):
    a, b = HttpSession(base_url=demo.url), HttpSession(base_url=demo.url)
    a.get("/cookies/set?session=a")
    b.get("/cookies/set?session=b")
    assert a.get("/cookies").json()["cookies"] == {"session": "a"}
    assert b.get("/cookies").json()["cookies"] == {"session": "b"}
    assert a.cookies["session"] == "a" and b.cookies["session"] == "b"


def test_redirect_history_and_stats_name_of_the_first_request(demo):
    stats = RequestStats()
    client = HttpSession(base_url=demo.url, request_event=logged(stats))
    r = client.get("/redirect/2")
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [302, 302]
    assert r.url == f"{demo.url}/redirect/0"
    entries, *_ = stats.snapshot()
    assert [(e.method, e.name) for e in entries] == [("GET", "/redirect/2")]


def test_tls_verified_by_default_and_trusted_with_the_cert(demo_tls):
    r = HttpSession(base_url=demo_tls.url).get("/")
    assert r.status_code == 0 and isinstance(r.error, SSLError)
    assert isinstance(r.error, ConnectionError)

    assert HttpSession(base_url=demo_tls.url, verify=False).get("/").text == "Hello, World!"
    assert HttpSession(base_url=demo_tls.url, verify=demo_tls.cert_file).get("/").status_code == 200

    client = HttpSession(base_url=demo_tls.url)
    client.verify = False
    assert client.get("/").ok


def test_a_missing_ca_file_is_a_clear_error(demo_tls, tmp_path):
    with pytest.raises(FileNotFoundError):
        HttpSession(base_url=demo_tls.url, verify=str(tmp_path / "nope.pem"))
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ValueError, match="no PEM certificate"):
        HttpSession(base_url=demo_tls.url, verify=str(bad))


def test_many_users_at_once_are_all_counted(demo):
    stats = RequestStats()

    def user() -> None:
        client = HttpSession(base_url=demo.url, request_event=logged(stats))
        for _ in range(50):
            client.get("/json")

    gevent.joinall([gevent.spawn(user) for _ in range(40)], raise_error=True)
    entries, total, errors, _ = stats.snapshot()
    assert total.num_requests == 2000 and total.num_failures == 0 and not errors
    (entry,) = entries
    assert entry.min_response_time <= entry.median_response_time <= entry.max_response_time
    assert entry.get_response_time_percentile(1.0) >= entry.get_response_time_percentile(0.99) > 0
    assert entry.total_content_length == 2000 * len(HttpSession(base_url=demo.url).get("/json").content)


def test_each_request_carries_its_sessions_headers_as_they_are_then(demo):
    # The engine reuses its conversion of the header pairs it saw last; sessions with different
    # headers, taking turns and changing them, must each still send their own current ones.
    seen: list[tuple[str, str]] = []

    def user(who: str) -> None:
        client = HttpSession(base_url=demo.url)
        client.headers["X-Who"] = who
        for i in range(6):
            if i == 3:
                client.headers["X-Who"] = who + "-changed"
            echoed = client.get("/echo").json()["headers"]
            expected = who if i < 3 else who + "-changed"
            seen.append((expected, echoed.get("x-who")))

    gevent.joinall([gevent.spawn(user, who) for who in ("ann", "bob", "cy")], raise_error=True)
    assert len(seen) == 18
    assert all(expected == got for expected, got in seen), seen


def test_big_body_and_decoding(demo):
    client = HttpSession(base_url=demo.url)
    assert len(client.get("/bytes/10485760").content) == 10 * 1024 * 1024
    assert client.get("/gzip").json()["gzipped"] is True
    assert client.get("/deflate").json()["deflated"] is True


def test_engine_logging_and_the_listener_log_the_same(demo):
    # With the runner's StatsListener alone on the hook the engine logs each request itself; with
    # another listener beside it the request goes through the event and the listener logs it.
    # Both must count and word every outcome the same way.
    def run(extra_listener: bool) -> tuple[list, list]:
        stats = RequestStats()
        hook = logged(stats)
        if extra_listener:
            hook.add_listener(lambda **kw: None)
        client = HttpSession(base_url=demo.url, request_event=hook)
        client.get("/")
        client.get("/status/404")
        client.post("/status/503", data="x")
        client.get("http://127.0.0.1:1/refused", name="refused")
        with client.get("/", catch_response=True) as r:
            r.failure("not what I wanted")
        with client.get("/status/500", catch_response=True) as r:
            pass
        entries, total, errors, _ = stats.snapshot()
        rows = sorted((e.method, e.name, e.num_requests, e.num_failures) for e in entries)
        texts = sorted((m, n, text, count) for m, n, text, count, _first, _last in errors)
        return rows + [(total.num_requests, total.num_failures)], texts

    assert run(extra_listener=False) == run(extra_listener=True)
    rows, texts = run(extra_listener=False)
    assert rows[-1] == (6, 5)
    assert ("GET", "/status/404", "HTTPError('404 Client Error: Not Found for url: /status/404')", 1) in texts
    assert ("GET", "refused", "ConnectionRefusedError(111, 'Connection refused')", 1) in texts
    assert ("GET", "/", "CatchResponseError('not what I wanted')", 1) in texts


def test_hand_built_session_is_counted_through_the_request_event(demo):
    # As in Locust: a client made by hand from environment.events.request is counted by the runner.
    from horde.env import Environment

    env = Environment()
    env.create_local_runner()
    client = HttpSession(demo.url, env.events.request, None)
    client.get("/")
    client.get("/status/404")
    assert (env.stats.total.num_requests, env.stats.total.num_failures) == (2, 1)
    assert HttpSession(demo.url).get("/").status_code == 200  # no hook: nothing to report to


def test_session_headers_live_in_the_engine(demo):
    client = HttpSession(base_url=demo.url)
    assert list(client.headers) == ["User-Agent", "Accept-Encoding", "Accept", "Connection"]
    client.headers["x-token"] = "a"
    client.headers["X-Token"] = "b"  # case-insensitive: replaces, and the case last set is kept
    client.headers["X-Bytes"] = b"caf\xe9"
    client.headers["X-Number"] = 5
    client.headers["Accept"] = None  # not sent, as in requests
    assert "x-TOKEN" in client.headers and client.headers["x-token"] == "b"
    echoed = client.get("/echo").json()["headers"]
    assert echoed["x-token"] == "b" and echoed["x-bytes"] == "café" and echoed["x-number"] == "5"
    assert "accept" not in echoed
    del client.headers["X-Token"]
    client.headers.update({"X-Other": "1"})
    echoed = client.get("/echo").json()["headers"]
    assert "x-token" not in echoed and echoed["x-other"] == "1"
    # A dict assigned to client.headers replaces them all; copy() is a plain case-insensitive dict.
    client.headers = {"X-Only": "yes"}
    assert dict(client.headers) == {"X-Only": "yes"}
    echoed = client.get("/echo").json()["headers"]
    assert echoed["x-only"] == "yes" and "user-agent" not in echoed
    copy = client.headers.copy()
    copy["X-Only"] = "no"
    assert client.headers["X-Only"] == "yes"


def test_catch_response_has_request_meta(demo):
    client = HttpSession(base_url=demo.url)
    with client.get("/", name="home", catch_response=True) as r:
        assert r.request_meta["name"] == "home" and r.request_meta["request_type"] == "GET"


@pytest.mark.skipif("HORDE_RUNTIME_THREADS" in os.environ, reason="HORDE_RUNTIME_THREADS overrides the choice")
def test_on_one_core_the_python_thread_drives_the_engine(demo):
    # tests/run.sh runs this file a second time under `taskset -c 0`, the configuration the
    # benchmarks measure: this is where that run shows the engine had no threads of its own.
    assert HttpSession(base_url=demo.url).get("/").status_code == 200
    cores = len(os.sched_getaffinity(0))
    assert _core.runtime_threads() == cores - 1
    assert _bridge.bridge().completions.local is (cores == 1)
    threads = set()
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/comm") as f:
            threads.add(f.read().strip())
    assert ("horde-io" in threads) is (cores > 1)
