"""FastHttpUser and FastHttpSession against the demo target: Locust's FastHttpSession naming,
failure rules, response API, defaults and options, on horde's engine."""

from __future__ import annotations

import pytest

from horde import _core
from horde.contrib.fasthttp import (
    ErrorResponse,
    FastHttpSession,
    FastHttpUser,
    FastResponse,
    ResponseContextManager,
    RestResponseContextManager,
)
from horde.env import Environment
from horde.exception import CatchResponseError, LocustError, ResponseError, StopTest


def rows(stats) -> dict:
    entries, _total, _errors, _ = _core.RequestStats.snapshot(stats)
    return {(e.method, e.name): (e.num_requests, e.num_failures) for e in entries}


def errors(stats) -> dict:
    _entries, _total, errs, _ = _core.RequestStats.snapshot(stats)
    return {(e[0], e[1]): e[2] for e in errs}


@pytest.fixture
def env():
    environment = Environment()
    # As in Locust's own tests: the runner's listener on the request event logs into env.stats.
    environment.create_local_runner()
    return environment


@pytest.fixture
def user(env, demo):
    class MyUser(FastHttpUser):
        host = demo.url

    return MyUser(env)


@pytest.fixture
def events_seen(env):
    seen: list[dict] = []
    env.events.request.add_listener(lambda **kw: seen.append(kw))
    return seen


def test_class_defaults():
    assert FastHttpUser.abstract is True
    assert (FastHttpUser.network_timeout, FastHttpUser.connection_timeout) == (60.0, 60.0)
    assert (FastHttpUser.max_redirects, FastHttpUser.max_retries, FastHttpUser.concurrency) == (30, 0, 10)
    assert FastHttpUser.insecure is True and FastHttpUser.default_headers is None
    assert FastHttpUser.client_pool is None and FastHttpUser.ssl_context_factory is None

    class Concrete(FastHttpUser):
        pass

    assert Concrete.abstract is False


def test_needs_a_host(env):
    class NoHost(FastHttpUser):
        pass

    with pytest.raises(StopTest, match="You must specify the base host"):
        NoHost(env)


def test_stats_name_is_the_url_as_passed(user, env, demo):
    user.client.get("/echo?x=1")
    user.client.get("/redirect/1")
    user.client.get(f"{demo.url}/json")
    user.client.get("/echo?x=2", name="echo")
    assert rows(env.stats) == {
        ("GET", "/echo?x=1"): (1, 0),
        ("GET", "/redirect/1"): (1, 0),
        ("GET", f"{demo.url}/json"): (1, 0),
        ("GET", "echo"): (1, 0),
    }


def test_params_keep_the_name_and_reach_the_server(user, env):
    r = user.client.get("/echo", params={"q": "a b"})
    assert r.json()["args"] == {"q": "a b"}
    assert rows(env.stats) == {("GET", "/echo"): (1, 0)}


def test_event_carries_the_built_url_and_context(env, demo, events_seen):
    class MyUser(FastHttpUser):
        host = demo.url

        def context(self):
            return {"user": "ann"}

    user = MyUser(env)
    user.client.get("/redirect/1", name="hop")
    user.client.request("get", "/json", context={"user": "bob"})
    assert events_seen[0]["url"] == f"{demo.url}/redirect/1"
    assert events_seen[0]["name"] == "hop" and events_seen[0]["exception"] is None
    assert events_seen[0]["context"] == {"user": "ann"}
    assert events_seen[1]["request_type"] == "GET" and events_seen[1]["context"] == {"user": "bob"}


def test_failure_rules(user, env, events_seen):
    assert user.client.get("/status/404").status_code == 404
    user.client.get("/status/500")
    assert user.client.get("/redirect/1", allow_redirects=False).status_code == 302
    user.client.get("/status/204")
    assert rows(env.stats) == {
        ("GET", "/status/404"): (1, 1),
        ("GET", "/status/500"): (1, 1),
        ("GET", "/redirect/1"): (1, 0),
        ("GET", "/status/204"): (1, 0),
    }
    assert errors(env.stats)[("GET", "/status/404")] == "LocustBadStatusCode(code=404)"
    assert "404" in str(events_seen[0]["exception"]) and "/status/404" in str(events_seen[0]["exception"])


def test_response_api(user, demo):
    r = user.client.get("/redirect/2")
    assert isinstance(r, FastResponse)
    assert r.status_code == 200
    assert r.url == f"{demo.url}/redirect/0" and r.request.url == r.url
    assert [h.status_code for h in r.history] == [302, 302] and isinstance(r.history[0], FastResponse)
    assert r.ok and r.error is None
    r.raise_for_status()

    # As with geventhttpclient, len() is the body's declared length and truth follows it.
    assert len(r) == len(r.content) > 0 and bool(r)
    empty = user.client.get("/status/204")
    assert len(empty) == 0 and not empty and empty.ok

    r = user.client.get("/json")
    assert r.json() == r.json() and isinstance(r.text, str) and r.content.startswith(b"{")
    assert r.headers["content-type"].startswith("application/json")
    assert r.stream.read() == r.content

    r = user.client.get("/status/404")
    assert not r.ok and bool(r)
    with pytest.raises(Exception, match="404"):
        r.raise_for_status()


def test_connection_error_gives_an_error_response(env, refused_url):
    seen = []
    env.events.request.add_listener(lambda **kw: seen.append(kw))
    session = FastHttpSession(refused_url, env.events.request, user=None)
    r = session.get("/", headers={"X-Test": "hello"})
    assert isinstance(r, ErrorResponse)
    assert r.status_code == 0 and r.content is None and r.text is None and r.error is not None
    assert r.ok  # as in Locust: ok only compares the status code with 400
    assert r.url == f"{refused_url}/" and r.request.headers["X-Test"] == "hello"
    with pytest.raises(type(r.error)):
        r.raise_for_status()
    assert rows(env.stats) == {("GET", "/"): (1, 1)}
    assert seen[0]["exception"] is r.error or type(seen[0]["exception"]) is type(r.error)


def test_default_headers_json_and_accept_encoding(env, demo):
    class MyUser(FastHttpUser):
        host = demo.url
        default_headers = {"X-Team": "blue"}

    user = MyUser(env)
    r = user.client.post("/echo", json={"foo": "bar"})
    echoed = r.json()
    assert echoed["json"] == {"foo": "bar"}
    assert echoed["headers"]["content-type"] == "application/json"
    assert echoed["headers"]["accept"] == "application/json"
    assert echoed["headers"]["x-team"] == "blue"
    assert "gzip" in echoed["headers"]["accept-encoding"]
    assert r.request.body == '{"foo": "bar"}' and r.request.payload == r.request.body

    # data wins over json, as in Locust; a dict is form-encoded (and the body stays bytes).
    r = user.client.post("/echo", data={"a": "1"}, json={"ignored": True})
    assert r.json()["form"] == {"a": "1"} and r.json()["json"] is None
    assert r.request.body == b"a=1"

    # Accept-Encoding can be replaced per request.
    echoed = user.client.get("/echo", headers={"accept-encoding": "identity"}).json()
    assert echoed["headers"]["accept-encoding"] == "identity"


def test_basic_auth_from_host_and_argument(env, demo):
    class Authorized(FastHttpUser):
        host = demo.url.replace("http://", "http://u:p@")

    class Plain(FastHttpUser):
        host = demo.url

    authorized = Authorized(env)
    assert authorized.client.auth_header.startswith("Basic ")
    assert authorized.client.get("/basic-auth/u/p").status_code == 200
    plain = Plain(env)
    assert plain.client.get("/basic-auth/u/p").status_code == 401
    assert plain.client.get("/basic-auth/u/p", auth=("u", "p")).status_code == 200
    assert plain.client.get("/basic-auth/u/p", auth=("u", "wrong")).status_code == 401


def test_cookies_are_kept_per_user(env, demo):
    class MyUser(FastHttpUser):
        host = demo.url

    a, b = MyUser(env), MyUser(env)
    a.client.get("/cookies/set?session=a")
    assert a.client.get("/cookies").json()["cookies"] == {"session": "a"}
    assert b.client.get("/cookies").json()["cookies"] == {}
    assert a.client.cookiejar is a.client.cookies and "session" in a.client.cookiejar


def test_catch_response(user, events_seen):
    with user.client.get("/json", catch_response=True) as r:
        assert isinstance(r, ResponseContextManager)
        r.failure("nope")
    with user.client.get("/status/500", catch_response=True) as r:
        r.success()
    with user.client.get("/status/404", catch_response=True) as r:
        pass
    with user.client.get("/json", catch_response=True) as r:
        raise ResponseError("bad body")
    with user.client.get("/json", catch_response=True) as r:
        r.failure("first")
        r.success()
    assert r.request_meta["name"] == "/json"
    outcomes = [(kw["name"], type(kw["exception"]).__name__) for kw in events_seen]
    assert outcomes == [
        ("/json", "CatchResponseError"),
        ("/status/500", "NoneType"),
        ("/status/404", "HTTPError"),
        ("/json", "ResponseError"),
        ("/json", "NoneType"),
    ]
    assert isinstance(events_seen[0]["exception"], CatchResponseError)


def test_catch_response_on_a_connection_error(env, refused_url, events_seen):
    class MyUser(FastHttpUser):
        host = refused_url

    user = MyUser(env)
    with user.client.get("/", catch_response=True) as r:
        assert r.status_code == 0 and r.content is None
        r.success()
    assert events_seen[-1]["exception"] is None


def test_success_and_failure_need_catch_response(user):
    r = user.client.get("/json", catch_response=True)
    with pytest.raises(LocustError):
        r.success()
    with pytest.raises(LocustError):
        r.failure("x")
    plain = user.client.get("/json")
    with pytest.raises(LocustError, match="catch_response=True"):
        plain.success()
    # Unlike HttpUser's, a plain FastResponse may be used in a with-block (geventhttpclient allows it).
    with user.client.get("/json") as r:
        assert r.status_code == 200


def test_iter_lines(user):
    assert list(user.client.iter_lines("/")) == ["Hello, World!"]
    lines = list(user.client.iter_lines("/echo?a=1", method="POST"))
    assert lines and '"method":"POST"' in "".join(lines).replace(" ", "")
    with pytest.raises(Exception, match="404"):
        list(user.client.iter_lines("/status/404"))


def test_rest(user, env):
    with user.rest("POST", "/echo", json={"foo": "bar"}) as r:
        assert isinstance(r, RestResponseContextManager)
        assert r.js["json"] == {"foo": "bar"}
    with user.rest("GET", "/json") as r:
        assert r.js["nope"] == 1
    with user.rest("GET", "/status/500") as r:
        pass
    with user.rest_("GET", "/json") as r:
        assert r.js is not None
    assert rows(env.stats) == {
        ("POST", "/echo"): (1, 0),
        ("GET", "/json"): (1, 1),
        ("GET", "/status/500"): (1, 1),
        ("GET", "/json?_=..."): (1, 0),
    }


def test_network_timeout_is_the_read_timeout(env, demo):
    class Impatient(FastHttpUser):
        host = demo.url
        network_timeout = 0.2

    r = Impatient(env).client.get("/delay/3000")
    assert r.status_code == 0 and "Timeout" in type(r.error).__name__
    assert rows(env.stats) == {("GET", "/delay/3000"): (1, 1)}


def test_max_redirects(env, demo):
    class NoRedirects(FastHttpUser):
        host = demo.url
        max_redirects = 0

    NoRedirects(env).client.get("/redirect/1")
    assert rows(env.stats) == {("GET", "/redirect/1"): (1, 1)}


def test_insecure_by_default(env, demo_tls):
    class Insecure(FastHttpUser):
        host = demo_tls.url

    class Verifying(FastHttpUser):
        host = demo_tls.url
        insecure = False

    assert Insecure(env).client.get("/").status_code == 200
    r = Verifying(env).client.get("/")
    assert r.status_code == 0 and "SSL" in type(r.error).__name__


def test_deprecated_fasthttplocust_name():
    from horde.contrib.fasthttp import FastHttpLocust

    with pytest.raises(ImportError, match="renamed to FastHttpUser"):

        class Old(FastHttpLocust):
            pass


def test_session_built_by_hand_logs_into_the_environment_stats(env, demo):
    session = FastHttpSession(demo.url, env.events.request, user=None)
    assert session.get("/json").status_code == 200
    assert rows(env.stats) == {("GET", "/json"): (1, 0)}
