"""HttpSession against httpbin, an independent server: the requests.Session behaviour locustfiles
rely on (cookies, redirects, auth, params, bodies, statuses, decoding, timeouts, errors), plus
Locust's additions (stats names, catch_response, the request event) and cooperative waiting."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import gevent
import pytest

from horde import EventHook, HttpSession, RequestStats
from horde.exception import (
    ConnectionError,
    HTTPError,
    LocustError,
    MissingSchema,
    ReadTimeout,
    ResponseError,
    Timeout,
    TooManyRedirects,
)
from horde.stats import StatsListener


@pytest.fixture
def client(httpbin):
    session = HttpSession(httpbin)
    yield session
    session.close()


@pytest.fixture
def stats():
    return RequestStats()


def logged(stats):
    """A request hook whose one listener logs into ``stats``, as a runner's does."""
    hook = EventHook()
    hook.add_listener(StatsListener(stats))
    return hook


def by_name(stats):
    """The stats entries keyed by (method, name)."""
    entries, _total, _errors, _start = stats.snapshot()
    return {(e.method, e.name): e for e in entries}


def error_texts(stats):
    """The errors table as (method, name, error text, occurrences) tuples."""
    _entries, _total, errors, _start = stats.snapshot()
    return [(method, name, text, count) for method, name, text, count, _first, _last in errors]


# ---------------------------------------------------------------------------------------------
# Cookies


def test_cookies_kept_across_requests_of_a_session(client):
    r = client.get("/cookies/set?flavour=oat&size=big")
    assert r.status_code == 200
    assert r.json() == {"cookies": {"flavour": "oat", "size": "big"}}
    assert client.get("/cookies").json() == {"cookies": {"flavour": "oat", "size": "big"}}


def test_cookies_not_shared_between_sessions(httpbin, client):
    client.get("/cookies/set?mine=1")
    with HttpSession(httpbin) as other:
        assert other.get("/cookies").json() == {"cookies": {}}
        assert other.cookies.get_dict() == {}
    assert client.get("/cookies").json() == {"cookies": {"mine": "1"}}


def test_cookie_jar_read_api(client):
    client.get("/cookies/set?a=1&b=2")
    jar = client.cookies
    assert jar.get("a") == "1"
    assert jar.get("missing") is None
    assert jar.get("missing", "dflt") == "dflt"
    assert jar["b"] == "2"
    with pytest.raises(KeyError):
        jar["missing"]
    assert "a" in jar
    assert "missing" not in jar
    assert jar.get_dict() == {"a": "1", "b": "2"}
    assert len(jar) == 2
    assert sorted(jar.keys()) == ["a", "b"]
    assert sorted(c.name for c in jar) == ["a", "b"]


def test_cookie_jar_set_is_sent(client):
    client.cookies.set("manual", "yes")
    client.cookies["other"] = "too"
    assert client.get("/cookies").json() == {"cookies": {"manual": "yes", "other": "too"}}


def test_cookie_jar_clear_and_del(client):
    client.get("/cookies/set?a=1&b=2&c=3")
    del client.cookies["a"]
    assert client.get("/cookies").json() == {"cookies": {"b": "2", "c": "3"}}
    client.cookies.set("b", None)
    assert client.cookies.get_dict() == {"c": "3"}
    client.cookies.clear()
    assert client.cookies.get_dict() == {}
    assert client.get("/cookies").json() == {"cookies": {}}


def test_cookie_deleted_by_server(client):
    client.get("/cookies/set?keep=1&drop=2")
    r = client.get("/cookies/delete?drop")
    assert r.json() == {"cookies": {"keep": "1"}}
    assert client.cookies.get_dict() == {"keep": "1"}
    assert "drop" not in client.cookies


def test_per_request_cookies_sent_but_not_stored(client):
    r = client.get("/cookies", cookies={"once": "x"})
    assert r.json() == {"cookies": {"once": "x"}}
    assert client.cookies.get_dict() == {}
    assert client.get("/cookies").json() == {"cookies": {}}


def test_per_request_cookie_overrides_session_cookie(client):
    client.cookies.set("a", "session")
    r = client.get("/cookies", cookies={"a": "request", "b": "2"})
    assert r.json() == {"cookies": {"a": "request", "b": "2"}}
    assert client.cookies.get_dict() == {"a": "session"}


def test_response_cookies_from_set_cookie_header(client):
    r = client.get("/response-headers?Set-Cookie=a%3D1")
    assert r.status_code == 200
    assert r.cookies.get_dict() == {"a": "1"}
    assert r.cookies["a"] == "1"
    assert client.cookies.get("a") == "1"


def test_response_cookies_of_unfollowed_redirect(client):
    r = client.get("/cookies/set?k=v", allow_redirects=False)
    assert r.status_code == 302
    assert r.cookies.get_dict() == {"k": "v"}
    assert client.cookies.get_dict() == {"k": "v"}


def test_response_cookies_belong_to_the_redirect_hop(client):
    r = client.get("/cookies/set?k=v")
    assert r.status_code == 200
    assert r.history[0].cookies.get_dict() == {"k": "v"}
    assert r.cookies.get_dict() == {}


def test_cookie_path_is_respected(client):
    client.get("/response-headers", params={"Set-Cookie": "p=1; Path=/anything"})
    assert client.cookies.get("p") == "1"
    assert client.get("/cookies").json() == {"cookies": {}}
    assert client.get("/anything/x").json()["headers"].get("Cookie") == "p=1"


# ---------------------------------------------------------------------------------------------
# Redirects


def test_redirects_followed_with_history(httpbin, client):
    r = client.get("/redirect/3")
    assert r.status_code == 200
    assert r.url == f"{httpbin}/get"
    assert [h.status_code for h in r.history] == [302, 302, 302]
    assert r.history[0].url == f"{httpbin}/redirect/3"
    assert all(h.is_redirect for h in r.history)


def test_no_history_without_redirect(client):
    r = client.get("/get")
    assert r.history == []
    assert not r.is_redirect


def test_allow_redirects_false_returns_the_302(client):
    r = client.get("/redirect/2", allow_redirects=False)
    assert r.status_code == 302
    assert r.headers["Location"] == "/relative-redirect/1"
    assert r.is_redirect
    assert r.history == []


def test_relative_redirects(httpbin, client):
    r = client.get("/relative-redirect/2")
    assert r.status_code == 200
    assert r.url == f"{httpbin}/get"
    assert [h.headers["location"] for h in r.history] == ["/relative-redirect/1", "/get"]


def test_absolute_redirects(httpbin, client):
    r = client.get("/absolute-redirect/2")
    assert r.status_code == 200
    assert r.url == f"{httpbin}/get"
    assert [h.headers["location"] for h in r.history] == [f"{httpbin}/absolute-redirect/1", f"{httpbin}/get"]


def test_303_after_post_becomes_get(httpbin, client):
    r = client.post("/redirect-to?url=/anything&status_code=303", data={"a": "1"})
    assert r.status_code == 200
    body = r.json()
    assert body["method"] == "GET"
    assert body["form"] == {}
    assert body["data"] == ""
    assert "Content-Type" not in body["headers"]
    assert [h.status_code for h in r.history] == [303]


def test_302_after_post_becomes_get(client):
    r = client.post("/redirect-to?url=/anything&status_code=302", json={"a": 1})
    assert r.status_code == 200
    assert r.json()["method"] == "GET"
    assert r.json()["json"] is None


def test_307_keeps_post_method_and_body(client):
    r = client.post("/redirect-to?url=/post&status_code=307", data={"a": "1"})
    assert r.status_code == 200
    assert r.json()["form"] == {"a": "1"}
    assert r.json()["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert [h.status_code for h in r.history] == [307]


def test_308_keeps_post_method_and_json(client):
    r = client.post("/redirect-to?url=/anything&status_code=308", json={"k": "v"})
    assert r.json()["method"] == "POST"
    assert r.json()["json"] == {"k": "v"}


def test_response_request_is_the_last_request_sent(httpbin, client):
    # requests: response.request is the PreparedRequest of the final hop.
    r = client.post("/redirect-to?url=/get&status_code=303", data={"a": "1"})
    assert r.status_code == 200
    assert r.request.method == "GET"
    assert r.request.url == f"{httpbin}/get"
    assert r.history[0].request.method == "POST"


def test_too_many_redirects_constructor(httpbin):
    with HttpSession(httpbin, max_redirects=3) as session:
        r = session.get("/redirect/5")
    assert isinstance(r.error, TooManyRedirects)
    assert r.status_code == 0
    assert not r.ok
    with pytest.raises(TooManyRedirects):
        r.raise_for_status()


def test_too_many_redirects_attribute(client):
    client.max_redirects = 3
    r = client.get("/redirect/5")
    assert isinstance(r.error, TooManyRedirects)
    assert r.status_code == 0
    client.max_redirects = 5
    assert client.get("/redirect/5").status_code == 200


def test_max_redirects_change_keeps_cookies(client):
    client.get("/cookies/set?stay=1")
    client.max_redirects = 3
    assert client.get("/cookies").json() == {"cookies": {"stay": "1"}}


def test_redirect_keeps_cookies_set_on_the_hop(client):
    r = client.get("/cookies/set?hop=1")
    assert r.json() == {"cookies": {"hop": "1"}}


def test_redirect_to_other_host_drops_authorization(httpbin, client):
    port = urlsplit(httpbin).port
    r = client.get(f"/redirect-to?url=http://localhost:{port}/headers", auth=("user", "pass"))
    assert r.status_code == 200
    assert "Authorization" not in r.json()["headers"]


def test_redirect_to_same_host_keeps_authorization(client):
    r = client.get("/redirect-to?url=/basic-auth/user/pass", auth=("user", "pass"))
    assert r.status_code == 200
    assert r.json() == {"authenticated": True, "user": "user"}


# ---------------------------------------------------------------------------------------------
# Basic auth


def test_basic_auth_per_request(client):
    r = client.get("/basic-auth/user/pass", auth=("user", "pass"))
    assert r.status_code == 200
    assert r.json() == {"authenticated": True, "user": "user"}


def test_basic_auth_wrong_password(client):
    r = client.get("/basic-auth/user/pass", auth=("user", "wrong"))
    assert r.status_code == 401
    assert not r.ok


def test_basic_auth_missing(client):
    assert client.get("/basic-auth/user/pass").status_code == 401


def test_hidden_basic_auth(client):
    assert client.get("/hidden-basic-auth/user/pass").status_code == 404
    assert client.get("/hidden-basic-auth/user/pass", auth=("user", "pass")).status_code == 200


def test_basic_auth_session_level(client):
    client.auth = ("user", "pass")
    assert client.get("/basic-auth/user/pass").status_code == 200
    assert client.get("/basic-auth/user/pass", auth=("user", "other")).status_code == 401


def test_basic_auth_from_base_url(httpbin):
    with_creds = httpbin.replace("http://", "http://user:pass@")
    with HttpSession(with_creds) as session:
        r = session.get("/basic-auth/user/pass")
        assert r.status_code == 200
        assert r.url.startswith(httpbin)


def test_basic_auth_from_base_url_percent_encoded(httpbin):
    with HttpSession(httpbin.replace("http://", "http://us%40er:p%3Ass@")) as session:
        assert session.get("/basic-auth/us@er/p:ss").status_code == 200


# ---------------------------------------------------------------------------------------------
# Query parameters and stats names


def test_params_dict(client):
    assert client.get("/get", params={"a": "1", "b": "two"}).json()["args"] == {"a": "1", "b": "two"}


def test_params_list_of_tuples(client):
    assert client.get("/get", params=[("x", "1"), ("x", "2"), ("y", "3")]).json()["args"] == {
        "x": ["1", "2"],
        "y": "3",
    }


def test_params_repeated_key_from_list_value(client):
    assert client.get("/get", params={"a": ["1", "2"]}).json()["args"] == {"a": ["1", "2"]}


def test_params_none_dropped(client):
    r = client.get("/get", params={"a": "1", "b": None})
    assert r.json()["args"] == {"a": "1"}
    assert r.url.endswith("/get?a=1")


def test_params_non_string_values(client):
    assert client.get("/get", params={"n": 1, "f": 1.5}).json()["args"] == {"n": "1", "f": "1.5"}


def test_params_are_percent_encoded(client):
    assert client.get("/get", params={"q": "ä ö&="}).json()["args"] == {"q": "ä ö&="}


def test_params_combined_with_url_query(httpbin, client):
    r = client.get("/get?q=0", params={"a": "1"})
    assert r.json()["args"] == {"q": "0", "a": "1"}
    assert r.url == f"{httpbin}/get?q=0&a=1"


def test_params_with_url_fragment(client):
    # requests puts the query before the fragment, which is never sent.
    r = client.get("/get#frag", params={"a": "1"})
    assert r.status_code == 200
    assert r.json()["args"] == {"a": "1"}


def test_stats_name_defaults_to_path_and_query(httpbin, stats):
    with HttpSession(httpbin, request_event=logged(stats)) as session:
        session.get("/get", params={"a": "1"})
        session.get("/get?q=0", params={"a": "1"})
        session.get("/get")
    names = by_name(stats)
    assert set(names) == {("GET", "/get?a=1"), ("GET", "/get?q=0&a=1"), ("GET", "/get")}
    assert all(e.num_requests == 1 and e.num_failures == 0 for e in names.values())


def test_stats_name_is_the_first_request_of_a_redirect_chain(httpbin, stats):
    with HttpSession(httpbin, request_event=logged(stats)) as session:
        session.get("/redirect/2")
    names = by_name(stats)
    assert list(names) == [("GET", "/redirect/2")]
    assert names["GET", "/redirect/2"].num_requests == 1


def test_stats_name_argument_and_rename_request(httpbin, stats):
    with HttpSession(httpbin, request_event=logged(stats)) as session:
        session.get("/get?id=1", name="/get?id=[id]")
        session.get("/get?id=2", name="/get?id=[id]")
        with session.rename_request("grouped"):
            session.get("/anything/1")
            session.post("/anything/2")
        session.get("/anything/3")
    names = by_name(stats)
    assert names["GET", "/get?id=[id]"].num_requests == 2
    assert names["GET", "grouped"].num_requests == 1
    assert names["POST", "grouped"].num_requests == 1
    assert names["GET", "/anything/3"].num_requests == 1


def test_stats_count_http_errors_as_failures(httpbin, stats):
    with HttpSession(httpbin, request_event=logged(stats)) as session:
        session.get("/status/500")
        session.get("/status/500")
        session.get("/status/200")
    names = by_name(stats)
    assert (names["GET", "/status/500"].num_requests, names["GET", "/status/500"].num_failures) == (2, 2)
    assert names["GET", "/status/200"].num_failures == 0
    [(method, name, text, count)] = error_texts(stats)
    assert (method, name, count) == ("GET", "/status/500", 2)
    assert text.startswith("HTTPError('500 Server Error")


# ---------------------------------------------------------------------------------------------
# Methods and bodies


def test_json_body(client):
    r = client.post("/post", json={"k": [1, 2], "u": "ä€"})
    assert r.json()["json"] == {"k": [1, 2], "u": "ä€"}
    assert r.json()["headers"]["Content-Type"] == "application/json"


def test_form_body_from_dict(client):
    r = client.post("/post", data={"k": "v", "m": ["1", "2"]})
    assert r.json()["form"] == {"k": "v", "m": ["1", "2"]}
    assert r.json()["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_form_body_from_list_of_tuples(client):
    assert client.post("/post", data=[("a", "1"), ("a", "2")]).json()["form"] == {"a": ["1", "2"]}


def test_raw_str_body(client):
    r = client.post("/post", data="raw text ä")
    assert r.json()["data"] == "raw text ä"
    assert r.json()["form"] == {}
    assert "Content-Type" not in r.json()["headers"]


def test_raw_bytes_body(client):
    r = client.put("/put", data=b"some bytes")
    assert r.json()["data"] == "some bytes"
    assert r.json()["headers"]["Content-Length"] == "10"


def test_raw_body_with_explicit_content_type(client):
    r = client.post("/post", data='{"x": 1}', headers={"Content-Type": "application/json"})
    assert r.json()["json"] == {"x": 1}


def test_data_takes_precedence_over_json(client):
    r = client.post("/post", data={"a": "1"}, json={"b": 2})
    assert r.json()["form"] == {"a": "1"}
    assert r.json()["json"] is None


def test_multipart_files(client):
    r = client.post("/post", files={"upload": ("a.txt", b"hello file", "text/plain")}, data={"field": "v"})
    body = r.json()
    assert body["files"] == {"upload": "hello file"}
    assert body["form"] == {"field": "v"}
    assert body["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")


def test_multipart_file_object(client, tmp_path):
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n1,2\n")
    with open(path, "rb") as f:
        r = client.post("/post", files={"report": f})
    assert r.json()["files"] == {"report": "a,b\n1,2\n"}


def test_put_patch_delete(client):
    assert client.put("/put", data="p").json()["data"] == "p"
    assert client.patch("/patch", data="q").json()["data"] == "q"
    r = client.delete("/delete", params={"id": "7"})
    assert r.status_code == 200
    assert r.json()["args"] == {"id": "7"}


def test_anything_echoes_method(client):
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        assert client.request(method, "/anything").json()["method"] == method


def test_head_has_no_body(client):
    r = client.head("/get")
    assert r.status_code == 200
    assert r.content == b""
    assert int(r.headers["Content-Length"]) > 0


def test_session_headers_merged_with_request_headers(client):
    client.headers["X-Session"] = "s"
    headers = client.get("/headers", headers={"X-Request": "r"}).json()["headers"]
    assert headers["X-Session"] == "s"
    assert headers["X-Request"] == "r"


def test_request_header_overrides_session_header_case_insensitively(client):
    client.headers["X-Thing"] = "session"
    headers = client.get("/headers", headers={"x-thing": "request"}).json()["headers"]
    assert headers["X-Thing"] == "request"


def test_header_set_to_none_removes_session_header(client):
    client.headers["X-Gone"] = "g"
    headers = client.get("/headers", headers={"X-Gone": None}).json()["headers"]
    assert "X-Gone" not in headers
    assert client.headers["X-Gone"] == "g"


def test_user_agent(client):
    assert client.get("/user-agent").json() == {"user-agent": HttpSession.default_user_agent}
    assert client.get("/user-agent", headers={"User-Agent": "mine/1"}).json() == {"user-agent": "mine/1"}


def test_request_attributes(httpbin, client):
    r = client.post("/post", json={"a": 1}, headers={"X-Req": "1"})
    assert r.request.method == "POST"
    assert r.request.url == f"{httpbin}/post"
    assert r.request.path_url == "/post"
    assert r.request.body == b'{"a": 1}'
    assert r.request.headers["x-req"] == "1"


# ---------------------------------------------------------------------------------------------
# Status codes


@pytest.mark.parametrize(
    ("code", "reason"),
    [(200, "OK"), (201, "CREATED"), (204, "NO CONTENT")],
)
def test_success_statuses(client, code, reason):
    r = client.get(f"/status/{code}")
    assert r.status_code == code
    assert r.reason.upper() == reason
    assert r.ok
    assert bool(r)
    r.raise_for_status()


@pytest.mark.parametrize(
    ("code", "reason", "kind"),
    [(404, "NOT FOUND", "Client Error"), (500, "INTERNAL SERVER ERROR", "Server Error")],
)
def test_error_statuses(httpbin, client, code, reason, kind):
    r = client.get(f"/status/{code}")
    assert r.status_code == code
    assert r.reason.upper() == reason
    assert not r.ok
    assert not bool(r)
    assert r.error is None
    with pytest.raises(HTTPError) as info:
        r.raise_for_status()
    assert info.value.response is r
    assert str(info.value) == f"{code} {kind}: {r.reason} for url: {httpbin}/status/{code}"


def test_204_has_empty_content(client):
    r = client.get("/status/204")
    assert r.content == b""
    assert r.text == ""


# ---------------------------------------------------------------------------------------------
# Decoding


def test_gzip_decoded(client):
    r = client.get("/gzip")
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.json()["gzipped"] is True


def test_deflate_decoded(client):
    r = client.get("/deflate")
    assert r.headers["Content-Encoding"] == "deflate"
    assert r.json()["deflated"] is True


def test_utf8_text(client):
    r = client.get("/encoding/utf8")
    assert r.status_code == 200
    assert r.encoding.lower() == "utf-8"
    assert isinstance(r.content, bytes)
    assert "∮ E⋅da = Q" in r.text
    assert r.text == r.content.decode("utf-8")


def test_json_endpoint(client):
    r = client.get("/json")
    assert r.json()["slideshow"]["title"] == "Sample Slide Show"
    assert r.headers["content-type"] == "application/json"


def test_html_endpoint(client):
    r = client.get("/html")
    assert r.headers["Content-Type"].startswith("text/html")
    assert "Herman Melville - Moby-Dick" in r.text


def test_binary_bytes(client):
    r = client.get("/bytes/2048?seed=7")
    assert isinstance(r.content, bytes)
    assert len(r.content) == 2048
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert client.get("/bytes/2048?seed=7").content == r.content


def test_headers_case_insensitive(client):
    r = client.get("/response-headers", params={"X-Custom-Thing": "val"})
    assert r.headers["x-custom-thing"] == "val"
    assert r.headers["X-CUSTOM-THING"] == "val"
    assert r.headers.get("X-Custom-Thing") == "val"
    assert "x-cUsToM-tHiNg" in r.headers
    assert "X-Absent" not in r.headers


def test_repeated_set_cookie_headers(client):
    r = client.get("/response-headers", params=[("Set-Cookie", "m1=1"), ("Set-Cookie", "m2=2")])
    assert r.cookies.get_dict() == {"m1": "1", "m2": "2"}
    assert client.cookies.get_dict() == {"m1": "1", "m2": "2"}


# ---------------------------------------------------------------------------------------------
# Timeouts


def test_read_timeout(client):
    r = client.get("/delay/3", timeout=0.5)
    assert isinstance(r.error, ReadTimeout)
    assert isinstance(r.error, Timeout)
    assert r.status_code == 0
    assert not r.ok
    assert r.elapsed.total_seconds() >= 0.45
    with pytest.raises(ReadTimeout):
        r.raise_for_status()


def test_read_timeout_from_tuple(client):
    r = client.get("/delay/3", timeout=(2, 0.5))
    assert isinstance(r.error, ReadTimeout)
    assert r.status_code == 0
    assert r.elapsed.total_seconds() >= 0.45


def test_timeout_tuple_long_enough(client):
    r = client.get("/delay/0.2", timeout=(2, 2))
    assert r.error is None
    assert r.status_code == 200
    assert r.elapsed.total_seconds() >= 0.2


def test_session_usable_after_timeout(client):
    assert isinstance(client.get("/delay/1", timeout=0.3).error, ReadTimeout)
    r = client.get("/get", params={"after": "timeout"})
    assert r.status_code == 200
    assert r.json()["args"] == {"after": "timeout"}


# ---------------------------------------------------------------------------------------------
# Transport errors


def test_refused_connection(refused_url):
    with HttpSession(refused_url) as session:
        r = session.get("/nothing")
    assert r.status_code == 0
    assert isinstance(r.error, ConnectionError)
    assert not r.ok
    assert r.url == f"{refused_url}/nothing"
    with pytest.raises(ConnectionError) as info:
        r.raise_for_status()
    assert info.value is r.error


def test_refused_connection_recorded_in_stats(refused_url, stats):
    with HttpSession(refused_url, request_event=logged(stats)) as session:
        session.get("/nothing")
        session.get("/nothing")
    entry = by_name(stats)["GET", "/nothing"]
    assert (entry.num_requests, entry.num_failures) == (2, 2)
    assert error_texts(stats) == [("GET", "/nothing", "ConnectionRefusedError(111, 'Connection refused')", 2)]


def test_relative_url_without_base_url():
    with HttpSession() as session:
        with pytest.raises(MissingSchema):
            session.get("/get")


def test_absolute_url_without_base_url(httpbin):
    with HttpSession() as session:
        assert session.get(f"{httpbin}/get").status_code == 200


# ---------------------------------------------------------------------------------------------
# catch_response


def test_catch_response_success_overrides_404(httpbin, stats):
    with HttpSession(httpbin, request_event=logged(stats)) as session:
        with session.get("/status/404", catch_response=True) as r:
            assert r.status_code == 404
            r.success()
    entry = by_name(stats)["GET", "/status/404"]
    assert (entry.num_requests, entry.num_failures) == (1, 0)
    assert error_texts(stats) == []


def test_catch_response_failure(httpbin, stats):
    with HttpSession(httpbin, request_event=logged(stats)) as session:
        with session.get("/status/200", catch_response=True) as r:
            r.failure("bad")
    entry = by_name(stats)["GET", "/status/200"]
    assert (entry.num_requests, entry.num_failures) == (1, 1)
    assert error_texts(stats) == [("GET", "/status/200", "CatchResponseError('bad')", 1)]


def test_catch_response_unmarked_uses_status(httpbin, stats):
    with HttpSession(httpbin, request_event=logged(stats)) as session:
        with session.get("/status/500", catch_response=True):
            pass
        with session.get("/status/200", catch_response=True):
            pass
    names = by_name(stats)
    assert names["GET", "/status/500"].num_failures == 1
    assert names["GET", "/status/200"].num_failures == 0


def test_catch_response_response_error_marks_failure(httpbin, stats):
    with HttpSession(httpbin, request_event=logged(stats)) as session:
        with session.get("/get", catch_response=True):
            raise ResponseError("wrong body")
    assert by_name(stats)["GET", "/get"].num_failures == 1
    assert error_texts(stats) == [("GET", "/get", "ResponseError('wrong body')", 1)]


def test_catch_response_other_exception_propagates(httpbin, stats):
    with HttpSession(httpbin, request_event=logged(stats)) as session:
        with pytest.raises(ZeroDivisionError):
            with session.get("/get", catch_response=True):
                1 / 0  # noqa: B018


def test_success_and_failure_outside_with_block_raise(client):
    r = client.get("/get", catch_response=True)
    with pytest.raises(LocustError):
        r.success()
    with pytest.raises(LocustError):
        r.failure("bad")
    plain = client.get("/get")
    with pytest.raises(LocustError):
        plain.success()
    with pytest.raises(LocustError):
        plain.failure("bad")


# ---------------------------------------------------------------------------------------------
# Concurrency under gevent


def test_concurrent_greenlets_overlap(httpbin):
    starts: list[float] = []
    ends: list[float] = []

    def one() -> int:
        with HttpSession(httpbin) as session:
            starts.append(time.monotonic())
            r = session.get("/delay/1")
            ends.append(time.monotonic())
            return r.status_code

    greenlets = [gevent.spawn(one) for _ in range(20)]
    gevent.joinall(greenlets, timeout=30, raise_error=True)
    assert [g.value for g in greenlets] == [200] * 20
    assert len(starts) == len(ends) == 20
    assert max(starts) < min(ends)


def test_concurrent_greenlets_share_one_session(httpbin):
    with HttpSession(httpbin) as session:
        greenlets = [gevent.spawn(session.get, "/anything", params={"i": str(i)}) for i in range(10)]
        gevent.joinall(greenlets, timeout=30, raise_error=True)
    assert [g.value.json()["args"] for g in greenlets] == [{"i": str(i)} for i in range(10)]


# ---------------------------------------------------------------------------------------------
# The request event


KEYS = {
    "request_type",
    "name",
    "response_time",
    "response_length",
    "response",
    "context",
    "exception",
    "start_time",
    "url",
}


@pytest.fixture
def fired():
    hook = EventHook()
    calls: list[dict] = []
    hook.add_listener(lambda **kwargs: calls.append(kwargs))
    return hook, calls


def test_request_event_success(httpbin, fired):
    hook, calls = fired
    before = time.time()
    with HttpSession(httpbin, request_event=hook) as session:
        r = session.get("/get", params={"a": "1"}, context={"tag": "x"})
    [call] = calls
    assert set(call) == KEYS
    assert call["request_type"] == "GET"
    assert call["name"] == "/get?a=1"
    assert call["response"] is r
    assert call["response_length"] == len(r.content)
    assert call["response_time"] >= 0
    assert call["context"] == {"tag": "x"}
    assert call["exception"] is None
    assert call["start_time"] >= before - 1
    assert call["url"] == f"{httpbin}/get?a=1"


def test_request_event_http_error(httpbin, fired):
    hook, calls = fired
    with HttpSession(httpbin, request_event=hook) as session:
        session.post("/status/503", name="svc")
    [call] = calls
    assert call["request_type"] == "POST"
    assert call["name"] == "svc"
    assert isinstance(call["exception"], HTTPError)
    assert call["response"].status_code == 503


def test_request_event_transport_error(refused_url, fired):
    hook, calls = fired
    with HttpSession(refused_url, request_event=hook) as session:
        session.get("/x")
    [call] = calls
    assert isinstance(call["exception"], ConnectionError)
    assert call["response"].status_code == 0
    assert call["response_length"] == 0


def test_request_event_timeout(httpbin, fired):
    hook, calls = fired
    with HttpSession(httpbin, request_event=hook) as session:
        session.get("/delay/2", timeout=0.3)
    [call] = calls
    assert isinstance(call["exception"], ReadTimeout)
    assert call["response_time"] >= 250


def test_request_event_catch_response(httpbin, fired):
    hook, calls = fired
    with HttpSession(httpbin, request_event=hook) as session:
        with session.get("/status/404", catch_response=True) as r:
            assert calls == []
            r.success()
        with session.get("/get", catch_response=True) as r:
            r.failure("nope")
    assert [c["name"] for c in calls] == ["/status/404", "/get"]
    assert calls[0]["exception"] is None
    assert repr(calls[1]["exception"]) == "CatchResponseError('nope')"


def test_request_event_url_is_before_redirects(httpbin, fired):
    # Locust reports the URL of the first request of a redirect chain (as it does the name).
    hook, calls = fired
    with HttpSession(httpbin, request_event=hook) as session:
        r = session.get("/redirect/2")
    assert r.url == f"{httpbin}/get"
    [call] = calls
    assert call["name"] == "/redirect/2"
    assert call["url"] == f"{httpbin}/redirect/2"


def test_request_event_and_stats_together(httpbin, fired, stats):
    hook, calls = fired
    hook.add_listener(StatsListener(stats))
    with HttpSession(httpbin, request_event=hook) as session:
        session.get("/get")
        session.get("/status/404")
    assert [c["name"] for c in calls] == ["/get", "/status/404"]
    names = by_name(stats)
    assert names["GET", "/get"].num_requests == 1
    assert names["GET", "/status/404"].num_failures == 1
