"""HttpSession against horde's demo target: the Conduit flow, TLS, and the engine-side stats."""

from __future__ import annotations

import gevent
import pytest

from horde import HttpSession, RequestStats
from horde.exception import ConnectionError, SSLError


def test_conduit_flow_keeps_the_token_per_session(demo):
    stats = RequestStats()
    client = HttpSession(base_url=demo.url, stats=stats)
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
    client = HttpSession(base_url=demo.url, stats=stats)
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
        client = HttpSession(base_url=demo.url, stats=stats)
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
