"""The HTTP client of an ``HttpUser``: ``self.client``.

``HttpSession`` takes the calling conventions locustfiles use with ``requests.Session`` (and
Locust's ``name=``, ``catch_response=``, ``context=``), turns them into one request, and hands it
to the Rust engine, which owns the connections, the cookie jar and the session's headers. The
calling greenlet waits cooperatively; other users keep running.

The engine also decides what the result means (``horde_core::locust``): whether it failed, as
which exception and under which text. This module only builds Python objects from that verdict.
Each request is reported once, through the ``request`` event: when the runner's stats listener is
its only listener, the engine logs the outcome itself, which is what that listener would do,
without a Python call per request.
"""

from __future__ import annotations

import base64
import datetime
import json as _json
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from greenlet import getcurrent

from horde import _core
from horde._bridge import bridge
from horde.exception import (
    CatchResponseError,
    LocustError,
    MissingSchema,
    RequestException,
    ResponseError,
)
from horde.failures import engine_exception
from horde.stats import StatsListener

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "CaseInsensitiveDict",
    "CookieJar",
    "HttpSession",
    "PreparedRequest",
    "RequestKwargs",
    "RequestKwargsNoBody",
    "RequestKwargsNoData",
    "Response",
    "ResponseContextManager",
    "RestMixin",
    "RestResponseContextManager",
    "SessionHeaders",
]

_REDIRECT_CODES = frozenset((301, 302, 303, 307, 308))
_MISSING: Any = object()


class RequestKwargsNoBody(TypedDict, total=False):
    """``RequestKwargs`` without ``data`` and ``json``: the keyword arguments of ``post``, which
    takes both by name."""

    name: str | None
    catch_response: bool
    context: dict
    params: Any
    headers: Mapping[str, Any] | None
    cookies: Mapping[str, str] | None
    files: Any
    auth: Any
    timeout: Any
    allow_redirects: bool
    verify: Any
    stream: bool


class RequestKwargsNoData(RequestKwargsNoBody, total=False):
    """``RequestKwargs`` without ``data``: the keyword arguments of ``put`` and ``patch``, which
    take it by name."""

    json: Any


class RequestKwargs(RequestKwargsNoData, total=False):
    """The keyword arguments of ``HttpSession.request`` after ``method`` and ``url`` (requests'
    ``Session.request`` ones that horde honours, plus Locust's)."""

    data: Any


class CaseInsensitiveDict(MutableMapping):
    """A dict of headers whose keys compare without regard to case, keeping the case last set."""

    def __init__(self, data: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None, **kwargs: Any) -> None:
        self._store: dict[str, tuple[str, Any]] = {}
        if data:
            self.update(data)
        if kwargs:
            self.update(kwargs)

    def __setitem__(self, key: str, value: Any) -> None:
        self._store[key.lower()] = (key, value)

    def __getitem__(self, key: str) -> Any:
        return self._store[key.lower()][1]

    def __delitem__(self, key: str) -> None:
        del self._store[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._store.values())

    def __len__(self) -> int:
        return len(self._store)

    def lower_items(self) -> Iterator[tuple[str, Any]]:
        return ((k, v[1]) for k, v in self._store.items())

    def copy(self) -> CaseInsensitiveDict:
        new = CaseInsensitiveDict()
        new._store = dict(self._store)
        return new

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return dict(self.lower_items()) == dict(CaseInsensitiveDict(other).lower_items())

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class SessionHeaders(_core.Headers, MutableMapping):
    """The headers a session sends with every request (``client.headers``): a case-insensitive
    dict kept by the engine, which reads it directly when a request is sent.

    A new session holds its user kind's defaults (requests' for ``HttpUser``; User-Agent and
    Accept-Encoding for ``FastHttpUser``). A header set to None is not sent.
    """

    __slots__ = ()

    def __init__(self, data: Mapping[str, Any] | None = None, defaults: str | None = None, **kwargs: Any) -> None:
        # _core.Headers.__new__ has filled in the defaults already.
        if data:
            self.update(data)
        if kwargs:
            self.update(kwargs)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def lower_items(self) -> Iterator[tuple[str, Any]]:
        return ((k.lower(), v) for k, v in self.pairs())

    def copy(self) -> CaseInsensitiveDict:
        return CaseInsensitiveDict(self.pairs())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return dict(self.lower_items()) == dict(CaseInsensitiveDict(other).lower_items())

    def __repr__(self) -> str:
        return repr(dict(self.pairs()))


def _headers_from_pairs(pairs: list[tuple[str, str]]) -> CaseInsensitiveDict:
    # Repeated fields are joined with ", " as requests/urllib3 do (Set-Cookie included).
    out = CaseInsensitiveDict()
    for k, v in pairs:
        if k in out:
            out[k] = f"{out[k]}, {v}"
        else:
            out[k] = v
    return out


class Cookie:
    """A cookie in a jar: ``name``, ``value``, ``domain``, ``path``."""

    __slots__ = ("name", "value", "domain", "path")

    def __init__(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        self.name, self.value, self.domain, self.path = name, value, domain, path

    def __repr__(self) -> str:
        return f"<Cookie {self.name}={self.value} for {self.domain}{self.path}>"


class CookieJar(MutableMapping):
    """A session's cookies, kept by the engine and read through this dict-like view (the subset of
    ``requests.cookies.RequestsCookieJar`` that locustfiles use)."""

    def __init__(self, session: HttpSession) -> None:
        self._session = session

    def _all(self) -> list[Cookie]:
        return [Cookie(*c) for c in self._session._engine.cookies()]

    def get(self, name: str, default: Any = None, domain: str | None = None, path: str | None = None) -> Any:
        for c in self._all():
            if c.name == name and (domain is None or c.domain == domain) and (path is None or c.path == path):
                return c.value
        return default

    def set(self, name: str, value: str | None, domain: str | None = None, path: str = "/", **_: Any) -> None:
        """Sets a cookie for ``domain`` (default: the session's host); ``None`` removes it."""
        if value is None:
            self._session._engine.clear_cookies(name)
            return
        host = domain.lstrip(".") if domain else self._session._host_for_cookies()
        self._session._engine.set_cookie(f"http://{host}{path}", f"{name}={value}; Path={path}")

    def __getitem__(self, name: str) -> str:
        value = self.get(name, default=_MISSING)
        if value is _MISSING:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._session._engine.clear_cookies(name)

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self._all())

    def __iter__(self) -> Iterator[Cookie]:
        # Like RequestsCookieJar, iteration yields Cookie objects, not names.
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def keys(self) -> list[str]:  # type: ignore[override]
        return [c.name for c in self._all()]

    def values(self) -> list[str]:  # type: ignore[override]
        return [c.value for c in self._all()]

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return [(c.name, c.value) for c in self._all()]

    def get_dict(self, domain: str | None = None, path: str | None = None) -> dict[str, str]:
        return {
            c.name: c.value
            for c in self._all()
            if (domain is None or c.domain == domain) and (path is None or c.path == path)
        }

    def update(self, other: Any = (), **kwargs: Any) -> None:  # type: ignore[override]
        pairs = other.items() if isinstance(other, Mapping) or hasattr(other, "items") else other
        for k, v in list(pairs) + list(kwargs.items()):
            self.set(k, v)

    def clear(self, domain: str | None = None, path: str | None = None, name: str | None = None) -> None:
        self._session._engine.clear_cookies(name)

    def __repr__(self) -> str:
        return f"<CookieJar{self._all()!r}>"


class _ResponseCookies(dict):
    """Cookies set by one response (``response.cookies``)."""

    def get_dict(self) -> dict[str, str]:
        return dict(self)


class PreparedRequest:
    """What was sent: ``method``, ``url``, ``headers``, ``body``, ``path_url``."""

    __slots__ = ("method", "url", "headers", "body")
    # A str when FastHttpSession was given one (see FastRequest.payload).
    body: bytes | str | None

    def __init__(self, method: str, url: str, headers: CaseInsensitiveDict, body: bytes | None) -> None:
        self.method, self.url, self.headers, self.body = method, url, headers, body

    @property
    def path_url(self) -> str:
        return _path_url(self.url)

    def __repr__(self) -> str:
        return f"<PreparedRequest [{self.method}]>"


# Stats names of URLs seen lately, shared by every session of the process (users of a test mostly
# request the same URLs).
_NAMES: dict[str, str] = {}


def _path_url(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


class Response:
    """A response, with the attributes of ``requests.Response`` that locustfiles use.

    For a request that failed before any response (refused, reset, timeout, ...), ``status_code``
    is 0, ``content`` is None and ``error`` holds the exception, as in Locust.
    """

    # Defaults live on the class and the engine's result is read only when asked for: most
    # responses of a load test are looked at for their status code at most.
    _result: Any = None  # the engine's result (horde._core.Response); None for a redirect hop
    _hop: tuple | None = None  # (status, reason, url, headers, sent) of a redirect hop
    _content: bytes | None = None
    _content_read = False
    _headers: CaseInsensitiveDict | None = None
    _text: str | None = None
    _encoding: Any = _MISSING
    _history: list[Response] | None = None
    _request: PreparedRequest | None = None
    _url: str | None = None
    _reason: str | None = None
    _error: Any = _MISSING
    _name: str | None = None
    status_code = 0
    # The rules raise_for_status() follows (horde_core::locust::UserKind).
    _kind = "HttpUser"
    _request_class: type[PreparedRequest] = PreparedRequest

    @classmethod
    def _from_hop(cls, hop: tuple[int, str, str, list[tuple[str, str]], Any]) -> Response:
        r = cls.__new__(cls)
        r._hop = hop
        r.status_code, r._reason, r._url = hop[0], hop[1], hop[2]
        r._content, r._content_read = b"", True
        r._error = None
        r._history = []
        method, headers, body = hop[4]
        r._request = cls._request_class(method, hop[2], CaseInsensitiveDict(headers), body or None)
        return r

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = self._result.url if self._result is not None else ""
        return self._url

    @url.setter
    def url(self, value: str) -> None:
        self._url = value

    @property
    def reason(self) -> str:
        if self._reason is None:
            self._reason = self._result.reason if self._result is not None else ""
        return self._reason

    @reason.setter
    def reason(self, value: str) -> None:
        self._reason = value

    @property
    def error(self) -> Exception | None:
        """The exception of a request that got no response (status_code 0), else None."""
        error = self._error
        if error is _MISSING:
            result = self._result
            error = None
            if result is not None and result.status_code == 0:
                error = engine_exception(result.failure, self)
            self._error = error
        return error

    @error.setter
    def error(self, value: Exception | None) -> None:
        self._error = value

    @property
    def _engine_timing(self) -> tuple[float | None, int | None]:
        """(uncorrected service time in ms when the response time counts from an open-model
        iteration's scheduled start, horde's own delay in µs) for the run's stats listener."""
        result = self._result
        if result is None:
            return None, None
        return result.service_time, result.own_delay

    def _outcome(self) -> Exception | None:
        """The engine's verdict on the request as an exception (None: it succeeded), with the
        stats name in its message as Locust words it."""
        result = self._result
        if result is None or result.status_code == 0:
            return self.error
        failure = result.failure
        return None if failure is None else engine_exception(failure, self)

    def _materialize(self) -> None:
        """Builds ``request`` and ``history`` from what the engine sent for each hop."""
        result = self._result
        hop_class = type(self)._hop_class()
        self._history = [hop_class._from_hop(hop) for hop in result.history] if result is not None else []
        method, headers, body = result.sent if result is not None else ("", [], b"")
        url = (result.url if result is not None else "") or self.url
        self._request = self._request_class(method, url, CaseInsensitiveDict(headers), body or None)

    @classmethod
    def _hop_class(cls) -> type[Response]:
        return cls

    @property
    def request(self) -> PreparedRequest | None:
        if self._request is None and self._result is not None:
            self._materialize()
        return self._request

    @request.setter
    def request(self, value: PreparedRequest | None) -> None:
        self._request = value

    @property
    def history(self) -> list[Response]:
        if self._history is None:
            if self._result is not None:
                self._materialize()
            else:
                self._history = []
        return self._history  # type: ignore[return-value]

    @history.setter
    def history(self, value: list[Response]) -> None:
        self._history = value

    @property
    def encoding(self) -> str | None:
        """The charset from Content-Type (settable, as in requests); read only when asked for."""
        if self._encoding is _MISSING:
            self._encoding = _encoding_from_headers(self.headers)
        return self._encoding

    @encoding.setter
    def encoding(self, value: str | None) -> None:
        self._encoding = value
        self._text = None

    @property
    def content(self) -> bytes | None:
        if not self._content_read:
            self._content = self._result.content if self._result is not None else None
            self._content_read = True
        return self._content

    @property
    def text(self) -> str:
        if self._text is None:
            content = self.content
            if not content:
                self._text = ""
            else:
                try:
                    self._text = content.decode(self.encoding or "utf-8", errors="replace")
                except LookupError:
                    self._text = content.decode("utf-8", errors="replace")
        return self._text

    def json(self, **kwargs: Any) -> Any:
        return _json.loads(self.text, **kwargs)

    def _header_pairs(self) -> list[tuple[str, str]]:
        if self._result is not None:
            return self._result.headers
        return self._hop[3] if self._hop is not None else []

    @property
    def headers(self) -> CaseInsensitiveDict:
        if self._headers is None:
            self._headers = _headers_from_pairs(self._header_pairs())
        return self._headers

    @property
    def cookies(self) -> _ResponseCookies:
        jar = _ResponseCookies()
        for k, v in self._header_pairs():
            if k.lower() == "set-cookie":
                parsed: SimpleCookie = SimpleCookie()
                try:
                    parsed.load(v)
                except Exception:
                    continue
                for morsel in parsed.values():
                    jar[morsel.key] = morsel.value
        return jar

    @property
    def elapsed(self) -> datetime.timedelta:
        return datetime.timedelta(seconds=self._result.elapsed if self._result is not None else 0.0)

    @property
    def ok(self) -> bool:
        try:
            self.raise_for_status()
        except RequestException:
            return False
        return True

    @property
    def is_redirect(self) -> bool:
        return "location" in self.headers and self.status_code in _REDIRECT_CODES

    def raise_for_status(self) -> None:
        if self.error is not None:
            raise self.error
        failure = _core.status_failure(self._kind, self.status_code, self.reason, self.url)
        if failure is not None:
            raise engine_exception(failure, self)

    def iter_content(self, chunk_size: int | None = 1, decode_unicode: bool = False) -> Iterator[Any]:
        data: Any = self.text if decode_unicode else (self.content or b"")
        size = chunk_size or len(data) or 1
        for i in range(0, len(data), size):
            yield data[i : i + size]

    def iter_lines(self, chunk_size: int = 512, decode_unicode: bool = False, delimiter: Any = None) -> Iterator[Any]:
        data: Any = self.text if decode_unicode else (self.content or b"")
        yield from (data.split(delimiter) if delimiter else data.splitlines())

    def close(self) -> None:
        pass

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"

    def __enter__(self) -> Response:
        raise LocustError("In order to use a with-block for requests, you must also pass catch_response=True")

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool | None:
        pass

    # success()/failure() only mean something inside `with ... catch_response=True`.
    def success(self) -> None:
        raise LocustError("success() may only be called inside `with client.get(..., catch_response=True)`")

    def failure(self, exc: Any) -> None:
        raise LocustError("failure() may only be called inside `with client.get(..., catch_response=True)`")


_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.I)


def _encoding_from_headers(headers: CaseInsensitiveDict) -> str | None:
    ctype = headers.get("content-type")
    if not ctype:
        return None
    m = _CHARSET.search(ctype)
    if m:
        return m.group(1)
    if "text" in ctype:
        return "ISO-8859-1"
    if "application/json" in ctype:
        return "utf-8"
    return None


class ResponseContextManager(Response):
    """The response of a ``catch_response=True`` request: decide its outcome inside ``with``.

    ``success()`` and ``failure(msg)`` set the outcome; unmarked, the engine's verdict stands
    (an HTTP error status or a transport error fails it); raising ``ResponseError`` in the block
    marks it failed. The request is reported when the block ends.
    """

    _session: HttpSession
    _meta: dict[str, Any]
    _manual_result: Any
    _entered: bool

    @classmethod
    def _hop_class(cls) -> type[Response]:
        return Response

    @property
    def request_meta(self) -> dict[str, Any]:
        """The request event's keyword arguments, fired when the with-block ends."""
        return self._meta

    def __enter__(self) -> ResponseContextManager:
        self._entered = True
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self._entered = False
        meta = self._meta
        if self._manual_result is not None:
            if self._manual_result is not True:
                meta["exception"] = self._manual_result
            self._session._report(meta)
            return exc_type is None
        if exc_type is not None:
            if isinstance(exc, ResponseError):
                meta["exception"] = exc
                self._session._report(meta)
                return True
            return False
        meta["exception"] = self._outcome()
        self._session._report(meta)
        return True

    def success(self) -> None:
        if not self._entered:
            raise LocustError("success() may only be called inside the `with` block of a catch_response request")
        self._manual_result = True

    def failure(self, exc: Any) -> None:
        if not self._entered:
            raise LocustError("failure() may only be called inside the `with` block of a catch_response request")
        if not isinstance(exc, Exception):
            exc = CatchResponseError(exc)
        self._manual_result = exc

    def raise_for_status(self) -> None:
        if self._manual_result is True:
            return
        if isinstance(self._manual_result, Exception):
            raise self._manual_result
        Response.raise_for_status(self)


def _basic_auth(user: Any, password: Any) -> str:
    if isinstance(user, str):
        user = user.encode("latin-1")
    if isinstance(password, str):
        password = password.encode("latin-1")
    return "Basic " + base64.b64encode(user + b":" + password).decode("ascii")


def _encode_params(params: Any) -> str:
    if params is None:
        return ""
    if isinstance(params, (str, bytes)):
        return params.decode() if isinstance(params, bytes) else params
    items = params.items() if hasattr(params, "items") else params
    pairs: list[tuple[Any, Any]] = []
    for k, v in items:
        if v is None:
            continue  # requests drops parameters whose value is None
        if isinstance(v, (list, tuple)):
            pairs.extend((k, x) for x in v if x is not None)
        else:
            pairs.append((k, v))
    return urlencode(pairs)


def _encode_multipart(fields: Any, files: Any) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = bytearray()
    items = fields.items() if hasattr(fields, "items") else (fields or [])
    for name, value in items:
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            out += v if isinstance(v, bytes) else str(v).encode()
            out += b"\r\n"
    file_items = files.items() if hasattr(files, "items") else files
    for name, spec in file_items:
        ctype = None
        if isinstance(spec, (tuple, list)):
            filename, content = spec[0], spec[1]
            if len(spec) > 2:
                ctype = spec[2]
        else:
            content = spec
            filename = getattr(spec, "name", name)
        if hasattr(content, "read"):
            content = content.read()
        if isinstance(content, str):
            content = content.encode()
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{str(filename).rsplit("/", 1)[-1]}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def _encode_body(data: Any, json: Any, files: Any) -> tuple[bytes | None, str | None]:
    """The body and the Content-Type it implies, as requests encodes them."""
    if files:
        return _encode_multipart(data, files)
    if data is not None and data != {} and data != []:
        if isinstance(data, bytes):
            return data, None
        if isinstance(data, str):
            return data.encode("utf-8"), None
        if hasattr(data, "read"):
            body = data.read()
            return (body.encode("utf-8") if isinstance(body, str) else body), None
        if isinstance(data, (Mapping, list, tuple)):
            return _encode_params(data).encode("ascii"), "application/x-www-form-urlencoded"
        raise TypeError(f"cannot send data of type {type(data).__name__}")
    if json is not None:
        return _json.dumps(json, allow_nan=False).encode("utf-8"), "application/json"
    return None, None


def _timeouts(timeout: Any) -> tuple[float | None, float | None, float | None] | None:
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        if len(timeout) != 2:
            raise ValueError(f"timeout must be a number or a (connect, read) tuple, got {timeout!r}")
        return (timeout[0], timeout[1], None)
    return (float(timeout), float(timeout), None)


class HttpSession:
    """``self.client`` of an ``HttpUser``: a ``requests.Session``-like client on horde's engine.

    Args:
        base_url: Prefixed to relative URLs (``user:password@`` in it becomes basic auth).
        request_event: Locust's ``events.request`` hook: every request is reported through it
            (the runner's listener on it logs the request into the run's stats).
        user: The user owning this client (its ``context()`` is merged into each request's context).
        verify: Check TLS certificates (True), skip the check (False) or trust the PEM bundle at a path.
        max_redirects: Most redirects followed for one request.
        pool_manager: Accepted for compatibility with Locust; the engine pools connections itself.
    """

    trust_env = False
    # The user kind whose rules the engine applies (horde_core::locust::UserKind).
    _kind = "HttpUser"
    default_user_agent = _core.USER_AGENT
    # Engine sessions for a request's own `verify=`, made on first use.
    _other_engines: dict[Any, Any] | None = None
    # The classes responses are made of (FastHttpSession has its own).
    _response_class: type[Response] = Response
    _error_response_class: type[Response] = Response
    _catch_response_class: type[ResponseContextManager] = ResponseContextManager
    # --otel: makes the spans of the requests its sampler keeps (horde.otel.RequestTracing);
    # Locust's spans come from the requests library's instrumentation, so FastHttpUser has none.
    _tracing: Any = None

    def __init__(
        self,
        base_url: str | None = None,
        request_event: Any = None,
        user: Any = None,
        *args: Any,
        verify: bool | str = True,
        max_redirects: int = 30,
        pool_manager: Any = None,
        **kwargs: Any,
    ) -> None:
        if args or kwargs:
            # requests.Session() takes no arguments, so Locust's HttpSession passes on none either.
            unexpected = ", ".join([repr(a) for a in args] + list(kwargs))
            raise TypeError(f"{type(self).__name__}() got unexpected arguments: {unexpected}")
        self.request_event = request_event
        self.user = user
        # (connect, read, total) seconds used when a request gives no timeout (None: wait forever).
        self.default_timeouts: tuple[float | None, float | None, float | None] | None = None
        self.request_name: str | None = None
        self._headers = SessionHeaders(defaults=self._kind)
        if self.default_user_agent != _core.USER_AGENT:
            self._headers["User-Agent"] = self.default_user_agent
        self.auth: Any = None
        self.params: dict[str, Any] = {}
        self.proxies: dict[str, str] = {}
        self.base_url = ""
        if base_url:
            parts = urlsplit(base_url)
            if parts.username or parts.password:
                self.auth = (unquote(parts.username or ""), unquote(parts.password or ""))
                netloc = parts.netloc.rpartition("@")[2]  # keeps IPv6 brackets, unlike .hostname
                base_url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
            self.base_url = base_url
        self._verify = verify
        self._max_redirects = max_redirects
        self._engine = self._new_engine(verify)
        self.cookies = CookieJar(self)

    @property
    def request_event(self) -> Any:
        return self._request_event

    @request_event.setter
    def request_event(self, hook: Any) -> None:
        self._request_event = hook
        # The hook's own list, which add_listener and remove_listener change in place: reading it
        # per request costs less than asking the hook.
        self._listeners = hook._handlers if hook is not None else ()

    @property
    def headers(self) -> SessionHeaders:
        """Headers sent with every request (a case-insensitive dict; assigning a dict works too)."""
        return self._headers

    @headers.setter
    def headers(self, value: Mapping[str, Any]) -> None:
        self._headers = value if isinstance(value, SessionHeaders) else SessionHeaders(value)

    def _new_engine(self, verify: Any) -> Any:
        ca_pem = None
        if isinstance(verify, str):
            with open(verify, "rb") as f:
                ca_pem = f.read()
        return _core.Session(kind=self._kind, verify=bool(verify), ca_pem=ca_pem, max_redirects=self._max_redirects)

    @property
    def verify(self) -> bool | str:
        return self._verify

    @verify.setter
    def verify(self, value: bool | str) -> None:
        if value != self._verify:
            old = self._engine
            self._verify = value
            self._engine = self._new_engine(value)
            self._carry_cookies(old, self._engine)

    @property
    def max_redirects(self) -> int:
        return self._max_redirects

    @max_redirects.setter
    def max_redirects(self, value: int) -> None:
        if value != self._max_redirects:
            old = self._engine
            self._max_redirects = value
            self._engine = self._new_engine(self._verify)
            self._carry_cookies(old, self._engine)

    @staticmethod
    def _carry_cookies(old: Any, new: Any) -> None:
        for name, value, domain, path in old.cookies():
            new.set_cookie(f"http://{domain}{path}", f"{name}={value}; Path={path}")

    def _host_for_cookies(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"

    def _build_url(self, url: str) -> str:
        base = self.base_url
        if base and url[:1] == "/":
            return base + url  # most tasks' URLs: a path, tested first as it is cheapest to recognise
        if url.startswith(("http://", "https://")):
            return url
        if not base:
            raise MissingSchema(f"Invalid URL {url!r}: No scheme supplied and no host (base_url) is set")
        return f"{base}{url}"

    @contextmanager
    def rename_request(self, name: str) -> Iterator[None]:
        """Groups every request made inside the block under ``name`` in the stats."""
        self.request_name = name
        try:
            yield
        finally:
            self.request_name = None

    def request(
        self,
        method: str,
        url: str,
        name: str | None = None,
        catch_response: bool = False,
        context: dict | None = None,
        *,
        params: Any = None,
        data: Any = None,
        json: Any = None,
        headers: Mapping[str, Any] | None = None,
        cookies: Mapping[str, str] | None = None,
        files: Any = None,
        auth: Any = None,
        timeout: Any = None,
        allow_redirects: bool = True,
        verify: Any = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> Response:
        """Sends a request and returns its response (never raises for transport errors; see
        ``response.error``). With ``catch_response=True`` use the result in a ``with`` block."""
        method = method.upper()
        full_url = self._build_url(url)
        if params is not None or self.params:
            full_url = _add_query(full_url, self.params, params)

        body: bytes | None = None
        sent_headers: Any = self._headers
        if headers or data is not None or json is not None or files or auth is not None or self.auth is not None:
            merged = _merge_headers(self._headers, headers) if headers else self._headers.copy()
            body, ctype = _encode_body(data, json, files)
            if ctype and "content-type" not in merged:
                merged["Content-Type"] = ctype
            auth = auth if auth is not None else self.auth
            if auth is not None and "authorization" not in merged:
                merged["Authorization"] = _auth_header(auth)
            sent_headers = list(merged.items())

        return self._send(
            method,
            url,
            full_url,
            name,
            sent_headers,
            body,
            list(cookies.items()) if cookies else None,
            allow_redirects,
            self.default_timeouts if timeout is None else _timeouts(timeout),
            self._engine if verify is None or verify == self._verify else self._engine_for(verify),
            catch_response,
            context,
        )

    def _send(
        self,
        method: str,
        url: str,
        full_url: str,
        name: str | None,
        headers: Any,
        body: bytes | None,
        cookies: list[tuple[str, str]] | None,
        allow_redirects: bool,
        timeouts: tuple[float | None, float | None, float | None] | None,
        engine: Any,
        catch_response: bool,
        context: dict | None,
    ) -> Response:
        """Sends one prepared request and turns the engine's result into the response: the one
        path every request method ends in. Reports the request through the request event, or
        with ``catch_response`` prepares the with-block that will."""
        span = None
        tracing = self._tracing
        if tracing is not None:
            # A countdown, not a call: requests the sampler would not keep cost nothing more.
            tracing.skip -= 1
            if tracing.skip < 0:
                span_name = name or self.request_name or (urlsplit(full_url).path or "/")
                span, headers = tracing.start(method, full_url, f"{method} {span_name}", headers)
        if name is None:
            name = self.request_name or self._default_name(url, full_url)
        # The run's stats (from its runner's listener) count horde's own delay; when that listener
        # is the request event's only one, the engine also logs the outcome as it would.
        listeners = self._listeners
        stats = None
        log = False
        report = catch_response
        if listeners:
            if len(listeners) == 1 and listeners[0].__class__ is StatsListener:
                stats = listeners[0].stats
                log = not catch_response
            else:
                report = True
                stats = _stats_of(listeners)
        # Open model: an iteration's first request counts from the iteration's scheduled start.
        late_by = None
        user = self.user
        if user is not None:
            try:
                scheduled = user._iteration_start
            except AttributeError:  # a client given some other object as its user
                scheduled = None
            if scheduled is not None:
                user._iteration_start = None
                late_by = time.perf_counter() - scheduled
        b = bridge()
        token = [getcurrent()]  # see _Bridge.wait
        first = engine.submit(
            b.completions,
            token,
            method,
            full_url,
            name,
            headers,
            cookies,
            body,
            allow_redirects,
            timeouts,
            stats,
            log,
            late_by,
        )
        result = b.wait(token, first)
        status = result.resumed()
        if catch_response:
            cls: type[Response] = self._catch_response_class
        else:
            cls = self._response_class if status else self._error_response_class
        response = cls.__new__(cls)
        response._result = result
        response.status_code = status
        response._name = name
        if not status:
            response._url = full_url  # no response: its URL is the one requested
        if span is not None:
            tracing.end(span, status, response._outcome())
        if not report:
            return response

        response_time = result.response_time
        meta = {
            "request_type": method,
            "name": name,
            "response_time": response_time,
            "response_length": result.content_length,
            "response": response,
            "context": {**(self.user.context() if self.user is not None else {}), **(context or {})},
            "exception": None,
            # The engine timed the request; its start is the end minus that time.
            "start_time": time.time() - response_time / 1000.0,
            "url": full_url,
        }
        if catch_response:
            r: Any = response
            r._session, r._meta, r._manual_result, r._entered = self, meta, None, False
            return response
        meta["exception"] = response._outcome()
        self._report(meta)
        return response

    def _report(self, meta: dict[str, Any]) -> None:
        """Tells the request listeners (the runner's logs it into the stats)."""
        hook = self._request_event
        if hook is not None:
            hook.fire(**meta)

    def _default_name(self, url: str, full_url: str) -> str:
        """The stats name of a request given none: HttpUser uses the path (and query) of the URL."""
        name = _NAMES.get(full_url)
        if name is None:
            if len(_NAMES) > 10000:
                _NAMES.clear()  # URLs with ids in them must not grow this without bound
            name = _NAMES[full_url] = _path_url(full_url)
        return name

    def _engine_for(self, verify: Any) -> Any:
        key = verify if isinstance(verify, str) else bool(verify)
        if self._other_engines is None:
            self._other_engines = {}
        engine = self._other_engines.get(key)
        if engine is None:
            engine = self._other_engines[key] = self._new_engine(verify)
        return engine

    def get(self, url: str, **kwargs: Unpack[RequestKwargs]) -> Response:
        # `get(url)` and `get(url, name=...)` are how most tasks call the client: prepared here
        # without request()'s argument handling.
        if (not kwargs or (len(kwargs) == 1 and "name" in kwargs)) and not self.params and self.auth is None:
            return self._send(
                "GET",
                url,
                self._build_url(url),
                kwargs.get("name"),
                self._headers,
                None,
                None,
                True,
                self.default_timeouts,
                self._engine,
                False,
                None,
            )
        kwargs.setdefault("allow_redirects", True)
        return self.request("GET", url, **kwargs)

    def options(self, url: str, **kwargs: Unpack[RequestKwargs]) -> Response:
        kwargs.setdefault("allow_redirects", True)
        return self.request("OPTIONS", url, **kwargs)

    def head(self, url: str, **kwargs: Unpack[RequestKwargs]) -> Response:
        kwargs.setdefault("allow_redirects", False)
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, data: Any = None, json: Any = None, **kwargs: Unpack[RequestKwargsNoBody]) -> Response:
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url: str, data: Any = None, **kwargs: Unpack[RequestKwargsNoData]) -> Response:
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url: str, data: Any = None, **kwargs: Unpack[RequestKwargsNoData]) -> Response:
        return self.request("PATCH", url, data=data, **kwargs)

    def delete(self, url: str, **kwargs: Unpack[RequestKwargs]) -> Response:
        return self.request("DELETE", url, **kwargs)

    def mount(self, prefix: str, adapter: Any) -> None:
        """Accepted for compatibility; the engine has its own connection handling."""

    def close(self) -> None:
        self._engine.close()
        for engine in (self._other_engines or {}).values():
            engine.close()

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _stats_of(listeners: Any) -> Any:
    """The stats of the run's stats listener among ``listeners``, if there is one."""
    for listener in listeners:
        if listener.__class__ is StatsListener:
            return listener.stats
    return None


def _add_query(url: str, session_params: Any, params: Any) -> str:
    """The URL with the session's and the request's parameters added to its query."""
    query = _encode_params(session_params) if session_params else ""
    extra = _encode_params(params)
    if extra:
        query = f"{query}&{extra}" if query else extra
    if not query:
        return url
    parts = urlsplit(url)
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


def _merge_headers(base: SessionHeaders, extra: Mapping[str, Any]) -> CaseInsensitiveDict:
    merged = base.copy()
    for k, v in extra.items():
        if v is None:
            merged.pop(k, None)  # requests: a None value removes a session header
        else:
            merged[k] = v
    return merged


def _auth_header(auth: Any) -> str:
    if isinstance(auth, (tuple, list)) and len(auth) == 2:
        return _basic_auth(auth[0], auth[1])
    if hasattr(auth, "username") and hasattr(auth, "password"):
        return _basic_auth(auth.username, auth.password)
    raise TypeError(f"unsupported auth {auth!r}: give a (user, password) tuple")


class RestResponseContextManager(ResponseContextManager):
    """The response of ``rest()``: a ``ResponseContextManager`` with the parsed JSON body in ``js``
    (None if the body was empty or not JSON)."""

    js: Any = None


# A frame line of a formatted traceback: file, line number, and the rest ("in func").
_FRAME_LINE = re.compile(r'  File "(/[^"]*)", line (\d*),(.*)')


class RestMixin:
    """``rest()`` and ``rest_()`` for users whose ``self.client`` takes ``catch_response``
    (``HttpUser`` and ``FastHttpUser``): JSON requests whose outcome is decided in the with-block."""

    client: Any
    # The class a rest() response becomes (FastHttpUser sets its own).
    _rest_response_class: type = RestResponseContextManager
    _callstack_regex = _FRAME_LINE

    @contextmanager
    def rest(
        self, method: str, url: str, headers: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Iterator[RestResponseContextManager]:
        """Sends a JSON request and yields its response, with the parsed body in ``response.js``.

        ``Content-Type`` and ``Accept`` default to ``application/json``; the request is always a
        ``catch_response`` one, so use it in a with-block. A body that is not JSON fails the request.
        A failed ``assert`` in the block fails it with the assertion's message (a message ending in
        "," gets ", response was <start of the body>" appended); any other exception in the block
        fails it too, with a short traceback, instead of leaving the task.

        Example::

            with self.rest("POST", "/api/login", json={"user": "ann"}) as resp:
                assert resp.js["token"], "no token,"
        """
        headers = dict(headers) if headers else {}
        present = {k.lower() for k in headers}
        if "content-type" not in present:
            headers["Content-Type"] = "application/json"
        if "accept" not in present:
            headers["Accept"] = "application/json"
        with self.client.request(method, url, catch_response=True, headers=headers, **kwargs) as resp:
            rest_class = self._rest_response_class
            if type(resp) is not rest_class and issubclass(rest_class, type(resp)):
                resp.__class__ = rest_class
            resp.js = None
            if resp.content is None:
                resp.failure(str(resp.error))
            elif resp.text:
                try:
                    resp.js = resp.json()
                except _json.JSONDecodeError as e:
                    resp.failure(
                        f"Could not parse response as JSON. {resp.text[:250]}, response code {resp.status_code}, "
                        f"error {e}"
                    )
            try:
                yield resp
            except AssertionError as e:
                if not e.args:
                    resp.failure("Assertion failed")
                elif isinstance(e.args[0], str) and e.args[0].endswith(","):
                    resp.failure(f"{e.args[0][:-1]}, response was {resp.text[:200] if resp.text else resp.text}")
                else:
                    resp.failure(e.args[0])
            except Exception as e:
                import traceback

                frames = []
                for line in traceback.format_exc().split("\n"):
                    m = self._callstack_regex.match(line)
                    if m:
                        # Shorten home directories, as Locust does, so the failure groups across machines.
                        filename = re.sub(r"/((home|Users)/\w*)/", "~/", m.group(1))
                        frames.append(f"{filename}:{m.group(2)}{m.group(3)}")
                short = resp.text[:200] if resp.text else resp.text
                resp.failure(f"{type(e).__name__}: {e} at {', '.join(frames)}. Response was {short}")

    @contextmanager
    def rest_(
        self, method: str, url: str, name: str | None = None, **kwargs: Any
    ) -> Iterator[RestResponseContextManager]:
        """``rest()`` with a ``_=<milliseconds since epoch>`` query parameter appended (to get past
        caches); ``name`` defaults to the URL with ``_=...``, so all calls share one stats entry."""
        separator = "&" if "?" in url else "?"
        if name is None:
            name = f"{url}{separator}_=..."
        with self.rest(method, f"{url}{separator}_={int(time.time() * 1000)}", name=name, **kwargs) as resp:
            yield resp
