"""Fidelity with requests and Locust where locustfiles notice it (issue 14, item 5): cookie jars,
request_meta, response attributes, hand-built sessions, proxies (a real tinyproxy: absolute-form
requests and CONNECT tunnels), requests' keyword arguments and brotli bodies, against real servers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from http.cookiejar import Cookie
from pathlib import Path

import pytest
from conftest import free_port, wait_for_port

import horde
from horde import HttpSession, HttpUser, User, clients, constant, task
from horde.clients import CookieConflictError, RequestsCookieJar
from horde.contrib.fasthttp import FastHttpSession
from horde.env import Environment
from horde.exception import CatchResponseError, InvalidProxyURL, ProxyError, StopUser


@pytest.fixture
def client(httpbin):
    session = HttpSession(httpbin)
    session.trust_env = False  # the proxy tests set proxy variables; these must not leak in
    yield session
    session.close()


def run_env() -> Environment:
    """An environment whose runner logs the request event into ``env.stats``, as in a run."""
    env = Environment()
    env.create_local_runner()
    return env


def error_rows(env: Environment) -> dict[tuple[str, str], str]:
    _entries, _total, errors, _start = env.stats.snapshot()
    return {(method, name): text for method, name, text, _count, _first, _last in errors}


# ---------------------------------------------------------------------------------------------
# Cookie jars


def test_response_cookies_are_a_requests_cookie_jar(client, httpbin):
    r = client.get("/cookies/set?flavour=oat&size=big", allow_redirects=False)
    jar = r.cookies
    assert isinstance(jar, RequestsCookieJar)
    assert jar.get_dict() == {"flavour": "oat", "size": "big"}
    cookies = list(jar)
    assert all(isinstance(c, Cookie) for c in cookies)
    assert {(c.name, c.value, c.domain, c.path) for c in cookies} == {
        ("flavour", "oat", "127.0.0.1", "/"),
        ("size", "big", "127.0.0.1", "/"),
    }
    assert sorted(jar.keys()) == ["flavour", "size"]
    assert sorted(jar.items()) == [("flavour", "oat"), ("size", "big")]
    assert "flavour" in jar and "nope" not in jar
    assert jar["flavour"] == "oat"
    assert jar.get("flavour", domain="127.0.0.1", path="/") == "oat"
    assert jar.get("flavour", domain="example.com") is None
    assert jar.get("nope", "fallback") == "fallback"
    with pytest.raises(KeyError):
        jar["nope"]
    # The final response of a redirect chain has only its own cookies, as in requests.
    assert client.get("/cookies/set?other=1").cookies.get_dict() == {}


def test_response_cookies_of_the_same_name_need_a_path(client):
    r = client.get("/response-headers", params=[("Set-Cookie", "id=a; Path=/"), ("Set-Cookie", "id=b; Path=/cookies")])
    jar = r.cookies
    assert len(jar) == 2
    with pytest.raises(CookieConflictError):
        jar["id"]
    assert jar.get("id", path="/") == "a" and jar.get("id", path="/cookies") == "b"
    assert jar.get_dict(path="/cookies") == {"id": "b"}
    assert sorted(jar.list_paths()) == ["/", "/cookies"]


def test_session_cookies_have_the_same_api_and_reach_the_server(client):
    client.get("/cookies/set?flavour=oat")
    jar = client.cookies
    assert jar.get_dict() == {"flavour": "oat"}
    (cookie,) = list(jar)
    assert isinstance(cookie, Cookie)
    assert (cookie.name, cookie.value, cookie.domain, cookie.path, cookie.secure) == (
        "flavour",
        "oat",
        "127.0.0.1",
        "/",
        False,
    )
    assert jar.keys() == ["flavour"] and jar.items() == [("flavour", "oat")]
    assert "flavour" in jar and jar["flavour"] == "oat"
    assert jar.get("flavour", domain="127.0.0.1", path="/") == "oat"
    assert jar.get("flavour", domain="elsewhere") is None

    jar.set("extra", "1")
    jar["more"] = "2"
    assert client.get("/cookies").json()["cookies"] == {"flavour": "oat", "extra": "1", "more": "2"}
    del jar["extra"]
    jar.set("more", None)
    assert client.get("/cookies").json()["cookies"] == {"flavour": "oat"}
    # A response's jar updates the session's, as requests' jars do.
    jar.update(client.get("/cookies/set?size=big", allow_redirects=False).cookies)
    assert jar.get_dict() == {"flavour": "oat", "size": "big"}
    jar.clear()
    assert len(jar) == 0 and client.get("/cookies").json()["cookies"] == {}
    # Assigning a jar or a dict replaces the session's cookies, as in requests.
    client.cookies = client.get("/cookies/set?from=jar", allow_redirects=False).cookies
    assert client.get("/cookies").json()["cookies"] == {"from": "jar"}
    client.cookies = {"from": "dict"}
    assert client.get("/cookies").json()["cookies"] == {"from": "dict"} and client.cookies is jar


def test_session_cookie_attributes_survive_a_rebuilt_engine(client):
    client.get("/response-headers", params={"Set-Cookie": "token=t; Path=/cookies; HttpOnly; Max-Age=600"})
    client.max_redirects = 5  # a new engine session underneath, which gets the cookies
    (cookie,) = list(client.cookies)
    assert (cookie.name, cookie.path, cookie.has_nonstandard_attr("HttpOnly")) == ("token", "/cookies", True)
    assert cookie.expires is not None and cookie.expires > time.time()
    assert client.get("/cookies").json()["cookies"] == {"token": "t"}


# ---------------------------------------------------------------------------------------------
# request_meta and response attributes


def test_request_meta_is_locusts(httpbin):
    env = run_env()
    seen: list[dict] = []
    env.events.request.add_listener(lambda **kw: seen.append(kw))

    class Named(HttpUser):
        host = httpbin

        def context(self):
            return {"user": "u1"}

    user = Named(env)
    before = time.time()
    with user.client.get("/redirect/1", catch_response=True, context={"step": 3}) as r:
        meta = r.request_meta
        assert set(meta) == {
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
        assert meta["request_type"] == "GET" and meta["name"] == "/redirect/1"
        assert meta["url"] == f"{httpbin}/redirect/1"  # the URL asked for, before the redirect
        assert meta["context"] == {"user": "u1", "step": 3}
        assert meta["response"] is r and meta["exception"] is None
        assert meta["response_length"] == len(r.content) and meta["response_time"] >= 0
        assert before <= meta["start_time"] <= time.time()
        r.failure("not good enough")
    assert isinstance(meta["exception"], CatchResponseError)
    assert seen[-1] == meta  # what the with-block fired

    # A plain response has the request_meta it was reported with, as Locust's do.
    r = user.client.get("/status/404")
    assert r.request_meta == seen[-1] and r.request_meta["exception"] is not None

    # FastHttpSession's catch_response responses have it too.
    fast = FastHttpSession(httpbin, env.events.request, user=None)
    with fast.get("/get", name="fast", catch_response=True) as r:
        assert (r.request_meta["name"], r.request_meta["url"]) == ("fast", f"{httpbin}/get")
    assert seen[-1]["name"] == "fast" and seen[-1]["exception"] is None


def test_streamed_responses_count_their_content_length(httpbin):
    # Locust counts a stream=True response by its Content-Length header (0 without one).
    env = run_env()

    class Streaming(HttpUser):
        host = httpbin

    client = Streaming(env).client
    client.get("/bytes/100", name="sized", stream=True)
    r = client.get("/stream-bytes/100?chunk_size=10", name="chunked", stream=True)
    assert len(r.content) == 100 and "content-length" not in r.headers
    client.get("/bytes/100", name="read")
    entries, _total, _errors, _start = env.stats.snapshot()
    lengths = {e.name: e.total_content_length for e in entries}
    assert lengths == {"sized": 100, "chunked": 0, "read": 100}


def test_raw_links_apparent_encoding_and_permanent_redirects(client):
    link = '<https://a.example/p/2>; rel="next", <https://a.example/p/9>; rel=last'
    r = client.get("/response-headers", params={"Link": link})
    assert r.links == {
        "next": {"url": "https://a.example/p/2", "rel": "next"},
        "last": {"url": "https://a.example/p/9", "rel": "last"},
    }
    assert client.get("/get").links == {}

    raw = r.raw
    assert raw.status == 200 and raw.headers["content-type"] == r.headers["content-type"]
    first = raw.read(5)
    assert first + raw.read() == r.content
    assert b"".join(client.get("/bytes/1000?seed=1").raw.stream(300)) == client.get("/bytes/1000?seed=1").content
    assert client.get("/stream/3", stream=True).raw.read() == client.get("/stream/3").content

    assert client.get("/get").apparent_encoding == "ascii"
    assert client.get("/encoding/utf8").apparent_encoding == "utf-8"

    for status, permanent in [(301, True), (308, True), (302, False), (307, False)]:
        r = client.get(f"/redirect-to?url=/get&status_code={status}", allow_redirects=False)
        assert (r.is_redirect, r.is_permanent_redirect) == (True, permanent), status
    assert client.get("/get").is_permanent_redirect is False


# ---------------------------------------------------------------------------------------------
# A session built by hand, keyword arguments


def test_hand_built_session_is_counted_in_a_run(httpbin):
    class Hand(User):
        host = httpbin
        wait_time = constant(0)

        def on_start(self):
            self.http = HttpSession(self.host, request_event=self.environment.events.request, user=None)
            self.sent = 0

        @task
        def fetch(self):
            if self.sent == 3:
                self.environment.runner.quit()  # ends the run, as a locustfile may
                raise StopUser()
            self.sent += 1
            self.http.get("/get", name="by hand")
            self.http.get("/status/500", name="by hand failing")

    result = horde.run(Hand, users=1, run_time=None, progress=False)
    rows = result.stats.set_index("Name")
    assert rows.loc["by hand", "Request Count"] == 3
    assert (rows.loc["by hand failing", "Request Count"], rows.loc["by hand failing", "Failure Count"]) == (3, 3)


def test_unknown_keyword_arguments_raise_and_fail_the_task(httpbin):
    client = HttpSession(httpbin)
    for call in (client.get, client.post, client.put, client.delete, client.head, client.options):
        with pytest.raises(TypeError, match="got an unexpected keyword argument 'colour'"):
            call("/anything", colour="red")
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        client.request("GET", "/anything", colour="red")

    class Careless(HttpUser):
        host = httpbin
        wait_time = constant(0)
        tries = 0

        @task
        def careless(self):
            if self.tries == 4:
                self.environment.runner.quit()
                raise StopUser()
            self.tries += 1
            self.client.get("/get", name="fine")
            self.client.get("/get", timeout_seconds=3)

    result = horde.run(Careless, users=1, run_time=None, progress=False)
    # Each task failed at the bad call, the next one ran: the run went on to its end.
    assert result.stats.set_index("Name").loc["fine", "Request Count"] == 4
    (row,) = result.exceptions.to_dict("records")
    assert row["Count"] == 4
    assert row["Message"] == "HttpSession.request() got an unexpected keyword argument 'timeout_seconds'"
    assert "careless" in row["Traceback"]


def test_response_hooks_run_on_every_response(client):
    seen: list[tuple[int, str]] = []

    def note(response, **settings):
        assert set(settings) == {"timeout", "verify", "proxies", "stream", "cert"}
        seen.append((response.status_code, response.url.rsplit("/", 1)[1]))

    client.get("/redirect/2", hooks={"response": note})
    assert [status for status, _ in seen] == [302, 302, 200]
    # Session hooks apply to requests that name none; a hook's return value replaces the response.
    client.hooks["response"].append(lambda response, **_: "replaced")
    assert client.get("/get") == "replaced"
    seen.clear()
    assert client.get("/get", hooks={"response": [note]}).status_code == 200 and len(seen) == 1


# ---------------------------------------------------------------------------------------------
# Brotli


def test_httpuser_asks_for_and_decodes_brotli(client, httpbin):
    assert client.get("/headers").json()["headers"]["Accept-Encoding"] == "gzip, deflate, br"
    r = client.get("/brotli")
    assert r.headers["content-encoding"] == "br"
    assert r.json()["brotli"] is True


def test_fasthttpuser_asks_for_and_decodes_brotli(httpbin):
    env = run_env()
    session = FastHttpSession(httpbin, env.events.request, user=None)
    # Locust's FastHttpSession adds this Accept-Encoding when the request sets none.
    assert session.get("/headers").json()["headers"]["Accept-Encoding"] == "gzip, deflate, br"
    assert session.get("/brotli").json()["brotli"] is True
    assert session.get("/gzip").json()["gzipped"] is True


# ---------------------------------------------------------------------------------------------
# Proxies: Debian's tinyproxy on 127.0.0.1


class TinyProxy:
    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log = port, log
        self.url = f"http://127.0.0.1:{port}"

    def requests_seen(self) -> list[str]:
        """The request lines tinyproxy has received (``GET http://...``, ``CONNECT host:port``)."""
        marker = "]: Request (file descriptor"
        return [line.split("): ", 1)[1] for line in self.log.read_text().splitlines() if marker in line]


def start_tinyproxy(workdir: Path, *settings: str) -> tuple[subprocess.Popen, TinyProxy]:
    """Debian's tinyproxy on a free 127.0.0.1 port with these extra config lines."""
    binary = shutil.which("tinyproxy") or ("/usr/bin/tinyproxy" if os.path.exists("/usr/bin/tinyproxy") else None)
    if binary is None:
        pytest.skip("tinyproxy is not installed (apt-get install -y tinyproxy): no real proxy to test through")
    port = free_port()
    config = [f"Port {port}", "Listen 127.0.0.1", "Timeout 30", "LogLevel Connect", "MaxClients 50", "Allow 127.0.0.1"]
    if os.geteuid() == 0:
        config += ["User nobody", "Group nogroup"]  # tinyproxy drops root itself
    (workdir / "tinyproxy.conf").write_text("\n".join([*config, *settings]) + "\n")
    log = workdir / "tinyproxy.log"
    with open(log, "wb") as out:
        # -d: stay in the foreground and log to stderr, which goes to the log file.
        proc = subprocess.Popen([binary, "-d", "-c", str(workdir / "tinyproxy.conf")], stdout=out, stderr=out)
    try:
        wait_for_port(port, proc)
    except RuntimeError as e:
        proc.kill()
        raise RuntimeError(f"tinyproxy did not start: {e}\n{log.read_text()}") from e
    return proc, TinyProxy(port, log)


@pytest.fixture(scope="module")
def tinyproxy(tmp_path_factory):
    proc, proxy = start_tinyproxy(tmp_path_factory.mktemp("tinyproxy"))
    yield proxy
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def tinyproxy_with_auth(tmp_path_factory):
    """tinyproxy asking for basic credentials: user ``scout``, password ``s3cret``."""
    proc, proxy = start_tinyproxy(tmp_path_factory.mktemp("tinyproxy-auth"), "BasicAuth scout s3cret")
    yield proxy
    proc.terminate()
    proc.wait(timeout=10)


def via(session, path: str = "/headers", **kwargs) -> str | None:
    """The Via header the server got (httpbin shows it only with ``show_env``)."""
    return session.get(path, params={"show_env": "1"}, **kwargs).json()["headers"].get("Via")


def test_plain_http_through_the_session_proxies(client, httpbin, tinyproxy):
    assert via(client) is None
    client.proxies = {"http": tinyproxy.url}
    assert "tinyproxy" in via(client, "/headers?via=session")
    # The absolute form of the request line, as a proxy needs it.
    assert f"GET {httpbin}/headers?via=session&show_env=1 HTTP/1.1" in tinyproxy.requests_seen()
    # A None value in a request's proxies removes the session's, as in requests.
    assert via(client, proxies={"http": None}) is None


def test_plain_http_through_a_request_proxy(client, httpbin, tinyproxy):
    assert "tinyproxy" in via(client, "/headers?via=request", proxies={"all://127.0.0.1": tinyproxy.url})
    assert f"GET {httpbin}/headers?via=request&show_env=1 HTTP/1.1" in tinyproxy.requests_seen()
    # Redirects and cookies work through it.
    r = client.get("/cookies/set?through=proxy", proxies={"http": tinyproxy.url})
    assert r.json()["cookies"] == {"through": "proxy"} and len(r.history) == 1


# An HTTPS server of Python's own (http.server and ssl), answering every GET with its path.
TLS_SERVER = """
import http.server, ssl, sys

class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"TLS {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Echo)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


@pytest.fixture(scope="module")
def python_tls(tmp_path_factory):
    """Python's HTTPS server with a self-signed certificate for 127.0.0.1; yields its base URL."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the TLS server")
    workdir = tmp_path_factory.mktemp("python-tls")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", TLS_SERVER, str(port), str(cert), str(key)])
    try:
        wait_for_port(port, proc)
        yield f"https://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_https_through_a_connect_tunnel(python_tls, tinyproxy):
    client = HttpSession(python_tls, verify=False)
    client.trust_env = False
    for n in range(2):
        r = client.get(f"/tunnelled?n={n}", proxies={"https": tinyproxy.url})
        assert (r.status_code, r.text) == (200, f"TLS /tunnelled?n={n}")
    # The proxy saw CONNECT to the TLS server, never the requests inside the tunnel.
    seen = tinyproxy.requests_seen()
    assert f"CONNECT {python_tls.removeprefix('https://')} HTTP/1.1" in seen
    assert not [line for line in seen if "/tunnelled" in line]


def test_proxy_credentials_from_the_proxy_url(httpbin, python_tls, tinyproxy_with_auth):
    client = HttpSession(httpbin)
    client.trust_env = False
    client.proxies = {"http": tinyproxy_with_auth.url}
    # Without credentials tinyproxy answers 407 itself.
    assert client.get("/get").status_code == 407
    # Credentials in the proxy URL (percent-decoded) go in Proxy-Authorization, for plain requests
    # and for CONNECT.
    authed = tinyproxy_with_auth.url.replace("http://", "http://scout:s%33cret@")
    assert "tinyproxy" in via(client, proxies={"http": authed})
    tls = HttpSession(python_tls, verify=False)
    tls.trust_env = False
    assert tls.get("/secret", proxies={"https": authed}).text == "TLS /secret"
    refused = tls.get("/secret", proxies={"https": tinyproxy_with_auth.url})
    assert isinstance(refused.error, ProxyError) and "407" in str(refused.error)
    # FastHttpSession takes them as geventhttpclient does.
    fast = FastHttpSession(
        python_tls,
        run_env().events.request,
        user=None,
        proxy_host="127.0.0.1",
        proxy_port=tinyproxy_with_auth.port,
        proxy_user="scout",
        proxy_password="s3cret",
    )
    assert fast.get("/fast").text == "TLS /fast"


def test_trust_env_uses_the_proxy_variables(httpbin, tinyproxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", tinyproxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    session = HttpSession(httpbin)  # requests.Session's default: trust_env=True
    assert session.trust_env is True
    assert "tinyproxy" in via(session)
    session.trust_env = False
    assert via(session) is None
    session.trust_env = True
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert via(session) is None
    monkeypatch.delenv("NO_PROXY")
    # As urllib reads them: the lower-case variable wins, and an empty one unsets the proxy.
    monkeypatch.setenv("http_proxy", "")
    assert via(session) is None
    monkeypatch.setenv("http_proxy", tinyproxy.url)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    assert "tinyproxy" in via(session)

    # As requests merges them: a variable beats the session's proxies, the request's beat both.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")
    session.proxies = {"http": tinyproxy.url}
    assert session.get("/get").status_code == 0
    assert "tinyproxy" in via(session, proxies={"http": tinyproxy.url})
    monkeypatch.delenv("http_proxy")
    monkeypatch.delenv("HTTP_PROXY")
    assert "tinyproxy" in via(session)

    # HttpUser turns trust_env off, as Locust does: the variables do not apply to its client.

    class Plain(HttpUser):
        host = httpbin

    user = Plain(run_env())
    assert user.client.trust_env is False
    assert via(user.client) is None


def test_fasthttp_proxy_host_and_port(httpbin, demo_tls, tinyproxy):
    env = run_env()
    proxy = {"proxy_host": "127.0.0.1", "proxy_port": tinyproxy.port}
    session = FastHttpSession(httpbin, env.events.request, user=None, **proxy)
    assert "tinyproxy" in via(session)
    tls = FastHttpSession(demo_tls.url, env.events.request, user=None, **proxy)
    assert tls.get("/echo?fast=1").status_code == 200
    assert f"CONNECT {demo_tls.url.removeprefix('https://')} HTTP/1.1" in tinyproxy.requests_seen()
    with pytest.raises(ValueError, match="proxy_port"):
        FastHttpSession(httpbin, env.events.request, user=None, proxy_host="127.0.0.1")


def test_proxy_failures_are_worded_as_in_locust(demo_tls, tinyproxy, refused_url):
    env = run_env()
    client = HttpSession(demo_tls.url, env.events.request, None, verify=False)
    client.trust_env = False
    r = client.get("/echo", name="no proxy", proxies={"https": refused_url})
    assert isinstance(r.error, ProxyError)
    # A tunnel the proxy could not open: tinyproxy answers CONNECT with 500.
    closed_port = refused_url.rsplit(":", 1)[1]
    r = client.get(f"https://127.0.0.1:{closed_port}/", name="no tunnel", proxies={"https": tinyproxy.url})
    assert isinstance(r.error, ProxyError)
    rows = error_rows(env)
    # Locust records the OS error under requests' ProxyError, as for direct connections.
    assert rows[("GET", "no proxy")] == "ConnectionRefusedError(111, 'Connection refused')"
    assert rows[("GET", "no tunnel")] == "OSError('Tunnel connection failed: 500 Unable to connect')"
    # A proxy URL that cannot be used raises, as requests' InvalidProxyURL does in Locust.
    with pytest.raises(InvalidProxyURL):
        client.get("/echo", proxies={"https": "socks5://127.0.0.1:1080"})


def test_mount_of_a_custom_adapter_warns_once(client, caplog):
    class Retrying:
        max_retries = 3

        def send(self, *args, **kwargs):
            raise AssertionError("never called: horde does the transport")

    clients._WARNED.discard("mount")  # told once per process: maybe already, by another test
    with caplog.at_level(logging.WARNING, logger="horde.clients"):
        client.mount("http://", Retrying())
        client.mount("https://", Retrying())
    (record,) = caplog.records
    assert "mount('http://', Retrying) has no effect" in record.getMessage()
    assert client.get("/get").status_code == 200


# ---------------------------------------------------------------------------------------------
# Side by side with requests under Locust 2.47.0

LOCUST_PYTHON = Path(__file__).resolve().parent.parent / ".venv-locust" / "bin" / "python"

# The same calls through locust.clients.HttpSession: Locust's (on requests) or horde's (through
# its locust alias); prints what a locustfile would see, as JSON.
PROBE = """
import json, sys
if sys.argv[2] == "horde":
    from horde import locust_alias
    locust_alias.install()
from locust.clients import HttpSession
from locust.env import Environment

env = Environment()
env.create_local_runner()
s = HttpSession(sys.argv[1], env.events.request, None)
s.trust_env = False
out = {}
r = s.get("/cookies/set?a=1&b=2", allow_redirects=False)
out["response cookies"] = sorted(
    (c.name, c.value, c.domain, c.path, c.secure, c.domain_specified, c.expires) for c in r.cookies
)
out["response jar"] = [r.cookies.get_dict(), sorted(r.cookies.items()), sorted(r.cookies.keys()), "a" in r.cookies,
                       r.cookies["b"], r.cookies.get("a", domain="127.0.0.1", path="/"), r.cookies.get("a", path="/x")]
r = s.get("/response-headers", params=[("Set-Cookie", "t=x; Path=/p; HttpOnly; Max-Age=99999")])
out["attributes"] = [(c.name, c.path, c.has_nonstandard_attr("HttpOnly"), c.expires is not None) for c in r.cookies]
out["session cookies"] = sorted((c.name, c.value, c.domain, c.path) for c in s.cookies)
out["session jar"] = [s.cookies.get_dict(), sorted(s.cookies.items()), s.cookies["a"], "t" in s.cookies,
                      s.cookies.get("a", domain="127.0.0.1"), s.cookies.get_dict(path="/p")]
s.cookies.set("a", "changed", domain="127.0.0.1", path="/")
s.cookies["n"] = "new"
del s.cookies["b"]
out["sent"] = s.get("/cookies").json()["cookies"]
with s.get("/redirect/1", name="meta", catch_response=True, context={"k": 1}) as r:
    meta = dict(r.request_meta)
out["request_meta"] = [list(meta), meta["name"], meta["url"].replace(sys.argv[1], ""), meta["context"],
                       meta["response"] is r, meta["exception"], meta["request_type"]]
r = s.get("/response-headers", params={"Link": '<https://a.example/2>; rel="next", <https://a.example/9>; rel=last'})
out["links"] = r.links
out["permanent"] = [s.get(f"/redirect-to?url=/get&status_code={code}", allow_redirects=False).is_permanent_redirect
                    for code in (301, 302, 303, 307, 308)]
out["apparent_encoding"] = [s.get("/get").apparent_encoding, s.get("/encoding/utf8").apparent_encoding]
out["brotli"] = [s.get("/headers").json()["headers"]["Accept-Encoding"], s.get("/brotli").json()["brotli"]]
proxy = {"http": sys.argv[3]}
out["proxied"] = [
    s.get("/headers", params={"show_env": "1"}, proxies=proxy).json()["headers"].get("Via", "").split(" ")[-1],
    s.get("/cookies/set?p=1", proxies=proxy).json()["cookies"]["p"],
]
try:
    s.get("/get", colour="red")
except TypeError as e:
    out["unknown keyword"] = str(e).split("() ", 1)[1]
print(json.dumps(out))
"""


@pytest.mark.skipif(not LOCUST_PYTHON.exists(), reason="Locust 2.47.0 reference not installed (tests/run.sh)")
def test_same_answers_as_requests_under_locust(httpbin, tinyproxy):
    def probe(python: str, which: str) -> dict:
        done = subprocess.run(
            [python, "-c", PROBE, httpbin, which, tinyproxy.url],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    locust, ours = probe(str(LOCUST_PYTHON), "locust"), probe(sys.executable, "horde")
    assert ours.keys() == locust.keys()
    for key in locust:
        assert ours[key] == locust[key], key
