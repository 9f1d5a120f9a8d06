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
import importlib
import io
import json as _json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from greenlet import getcurrent

from horde import _core
from horde._bridge import bridge
from horde.cookies import (
    CookieConflictError,
    RequestsCookieJar,
    SessionCookieJar,
    engine_cookies,
    engine_set_cookie,
    response_cookies,
)
from horde.exception import (
    CatchResponseError,
    InvalidProxyURL,
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
    "CookieConflictError",
    "HttpSession",
    "PreparedRequest",
    "RequestKwargs",
    "RequestKwargsNoBody",
    "RequestKwargsNoData",
    "RequestsCookieJar",
    "Response",
    "ResponseContextManager",
    "RestMixin",
    "RestResponseContextManager",
    "SessionCookieJar",
    "SessionHeaders",
]

_REDIRECT_CODES = frozenset((301, 302, 303, 307, 308))
_MISSING: Any = object()

logger = logging.getLogger(__name__)
# What horde has told once already (see _warn_once).
_WARNED: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    """Logs ``message`` the first time ``key`` comes up in this process: a locustfile's users all
    run the same code, and one line says what a thousand would."""
    if key not in _WARNED:
        _WARNED.add(key)
        logger.warning(message)


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
    proxies: Mapping[str, str | None] | None
    hooks: Mapping[str, Any] | None
    verify: Any
    stream: bool
    cert: Any


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
    _cookies: RequestsCookieJar | None = None
    _raw: RawResponse | None = None
    # The request event's keyword arguments (set when the request is reported or asked for), the
    # session that sent it and the request's own `context=`, from which they are built.
    _meta: dict[str, Any] | None = None
    _session: Any = None
    _context: dict | None = None
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
    def cookies(self) -> RequestsCookieJar:
        """The cookies this response set (not those of the redirects before it), as requests
        reads them: a ``RequestsCookieJar`` of ``http.cookiejar.Cookie`` objects."""
        jar = self._cookies
        if jar is None:
            set_cookie = [v for k, v in self._header_pairs() if k.lower() == "set-cookie"]
            jar = self._cookies = response_cookies(self.url, set_cookie)
        return jar

    @property
    def request_meta(self) -> dict[str, Any]:
        """The request event's keyword arguments for this request (Locust's ``request_meta``):
        ``request_type``, ``name``, ``response_time``, ``response_length``, ``response``,
        ``context``, ``exception``, ``start_time`` and ``url``. A ``catch_response`` response
        fires them when its with-block ends; a plain one has them built when first asked for."""
        meta = self._meta
        if meta is None:
            result = self._result
            if result is None:  # a redirect hop: requests' plain responses have no request_meta
                raise AttributeError(f"{type(self).__name__!r} object has no attribute 'request_meta'")
            history = result.history
            first_method, first_url = (history[0][4][0], history[0][2]) if history else (result.sent[0], self.url)
            session = self._session
            user = session.user if session is not None else None
            meta = self._meta = {
                "request_type": first_method,
                "response_time": result.response_time,
                "name": self._name,
                "context": {**(user.context() if user is not None else {}), **(self._context or {})},
                "response": self,
                "exception": self._outcome(),
                "start_time": result.start_time,
                "url": first_url,
                "response_length": result.content_length,
            }
        return meta

    @property
    def raw(self) -> RawResponse | None:
        """The body as a file with urllib3's ``HTTPResponse`` attributes (``read(amt)``,
        ``stream(amt)``, ``status``, ``headers``...); None for a request that got no response.

        The engine has read and decoded the whole body already: ``read()`` gives it decoded
        even for a compressed response (urllib3 gives the bytes as sent unless asked with
        ``decode_content=True``), and it can be read once, as urllib3's can."""
        raw = self._raw
        if raw is None and self.status_code:
            result = self._result
            version = 10 if result is not None and result.version == "HTTP/1.0" else 11
            raw = self._raw = RawResponse(
                self.content or b"", self.status_code, self.reason, version, self.headers, self.url
            )
        return raw

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The Link header's links keyed by their ``rel`` (else their URL), as requests gives them:
        ``{"next": {"url": "/page/2", "rel": "next"}}``."""
        value = self.headers.get("link")
        links: dict[str, dict[str, str]] = {}
        if value:
            for link in _parse_links(value):
                links[link.get("rel") or link["url"]] = link
        return links

    @property
    def apparent_encoding(self) -> str | None:
        """The body's encoding as guessed from its bytes. As requests, this asks charset_normalizer
        or chardet when one is installed; without them horde says "ascii" for a 7-bit body,
        "utf-8" for a valid UTF-8 one and None otherwise (requests says "utf-8" then)."""
        return _guess_encoding(self.content or b"")

    @property
    def is_permanent_redirect(self) -> bool:
        """True for a 301 or 308 with a Location header."""
        return "location" in self.headers and self.status_code in (301, 308)

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


class RawResponse(io.BytesIO):
    """``response.raw``: a response's body as a file, with the attributes of urllib3's
    ``HTTPResponse`` that locustfiles read. See ``Response.raw``."""

    decode_content = True

    def __init__(self, body: bytes, status: int, reason: str, version: int, headers: Any, url: str) -> None:
        super().__init__(body)
        self.status, self.reason, self.version, self.headers, self.url = status, reason, version, headers, url

    @property
    def version_string(self) -> str:
        return "HTTP/1.0" if self.version == 10 else "HTTP/1.1"

    @property
    def data(self) -> bytes:
        """The whole body (urllib3's ``data``)."""
        return self.getvalue()

    def read(self, amt: int | None = None, decode_content: bool | None = None, cache_content: bool = False) -> bytes:
        return super().read(-1 if amt is None else amt)

    def stream(self, amt: int | None = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        """The rest of the body in pieces of at most ``amt`` bytes."""
        while chunk := self.read(amt):
            yield chunk

    def release_conn(self) -> None:
        """Nothing to release: the engine returned the connection when the body was read."""


def _parse_links(value: str) -> list[dict[str, str]]:
    """The links of a Link header (``<url>; rel="next", <url2>; rel=last``) as dicts with ``url``
    and each parameter, quotes and spaces stripped, as requests parses them."""
    links = []
    # A new link starts at a comma followed by "<"; commas may appear inside a URL.
    for entry in re.split(r",\s*(?=<)", value.strip(" '\"")):
        target, _, params = entry.partition(";")
        link = {"url": target.strip("<> '\"")}
        for param in params.split(";"):
            if param.count("=") != 1:
                break  # requests stops at the first parameter that is not one key=value
            key, _, val = param.partition("=")
            link[key.strip(" '\"")] = val.strip(" '\"")
        links.append(link)
    return links if value.strip(" '\"") else []


# How a body's encoding is guessed: charset_normalizer's or chardet's detect(), as requests uses,
# or None for horde's own fallback; looked up on first use.
_detect: Any = _MISSING


def _guess_encoding(body: bytes) -> str | None:
    global _detect
    if _detect is _MISSING:
        _detect = None
        for module in ("charset_normalizer", "chardet"):
            try:
                _detect = importlib.import_module(module).detect
                break
            except ImportError:
                continue
    if _detect is not None:
        return _detect(body)["encoding"]
    if body.isascii():
        return "ascii"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "utf-8"


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

    Attributes:
        headers: Headers sent with every request (a case-insensitive mapping).
        cookies: The session's cookie jar (``requests.cookies.RequestsCookieJar``'s API).
        proxies: requests' proxies mapping (``{"http": "http://127.0.0.1:3128"}``, keys
            ``scheme``, ``scheme://host``, ``all``, ``all://host``, ``no_proxy``); http:// proxies
            only, which https:// URLs go through with CONNECT.
        trust_env: Also use the ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY``
            variables (True, as in requests; an ``HttpUser``'s client sets it False, as Locust's).
        hooks: requests' event hooks (``{"response": [callables]}``).
    """

    # As requests.Session: the environment's proxy variables apply (HttpUser turns this off, as
    # Locust does).
    trust_env = True
    # TLS client certificates: not supported (see request()).
    cert: Any = None
    # requests' hooks, made on first use (see the `hooks` property).
    _hooks: dict[str, list[Any]] | None = None
    # The engine's proxies for the last proxy settings seen, and those settings.
    _proxies_built: tuple[Any, Any] | None = None
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
        self._cookies = SessionCookieJar(self)

    @property
    def cookies(self) -> SessionCookieJar:
        """The session's cookies: a jar with ``requests.cookies.RequestsCookieJar``'s API over the
        cookies the engine keeps and sends."""
        return self._cookies

    @cookies.setter
    def cookies(self, value: Any) -> None:
        # requests lets a jar or a dict be assigned; its cookies then replace the session's.
        if value is not self._cookies:
            self._cookies.clear()
            self._cookies.update(value)

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
        for cookie in engine_cookies(old):
            new.set_cookie(*engine_set_cookie(cookie, "localhost"))

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
        proxies: Mapping[str, str | None] | None = None,
        hooks: Mapping[str, Any] | None = None,
        stream: bool = False,
        verify: Any = None,
        cert: Any = None,
        _max_redirects: int | None = None,
    ) -> Response:
        """Sends a request and returns its response (never raises for transport errors; see
        ``response.error``). With ``catch_response=True`` use the result in a ``with`` block.

        The keyword arguments are ``requests.Session.request``'s; any other raises ``TypeError``,
        as there. ``proxies`` go over the session's (and, with ``trust_env``, the environment's);
        ``hooks={"response": fn}`` runs ``fn(response, **settings)`` on each response, as
        requests does. ``cert`` (TLS client certificates) is not supported: it is logged once.
        ``_max_redirects`` is FastHttpSession's per-request limit, not part of the API.
        """
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

        if cert is not None or self.cert is not None:
            _warn_once("cert", "horde does not send TLS client certificates: cert= is ignored")
        rules = self._proxy_rules(proxies) if proxies or self.proxies or self.trust_env else None
        run_hooks: tuple[list[Any], dict[str, Any]] | None = None
        if hooks or self._hooks:
            hook_list = _response_hooks(hooks, self._hooks)
            if hook_list:
                settings = {"timeout": timeout, "verify": verify, "proxies": proxies, "stream": stream, "cert": cert}
                run_hooks = (hook_list, settings)
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
            proxies=rules,
            hooks=run_hooks,
            max_redirects=_max_redirects,
            stream=stream,
        )

    def _proxy_rules(self, proxies: Mapping[str, str | None] | None) -> Any:
        """The engine's proxies for a request (None: go direct), merged by requests' rules: the
        request's ``proxies`` (a None value takes a key away), then with ``trust_env`` the
        environment's ``*_proxy`` variables unless ``no_proxy`` (the request's, else the
        environment's) exempts the host, then the session's ``proxies``. Built again only when
        the settings change.

        Raises:
            InvalidProxyURL: A proxy URL of the request or the session is malformed or not an
                http:// one.
        """
        request = tuple((k, v) for k, v in (proxies or {}).items() if k != "no_proxy")
        session = tuple((k, v) for k, v in self.proxies.items() if v is not None and k != "no_proxy")
        environment = _environment_proxies() if self.trust_env else {}
        environment_no_proxy = environment.pop("no", None)
        no_proxy = (proxies or {}).get("no_proxy") or environment_no_proxy
        if not any(v for _, v in request) and not environment and not session:
            return None
        key = (request, tuple(environment.items()), session, no_proxy)
        cached = self._proxies_built
        if cached is not None and cached[0] == key:
            return cached[1]
        rules = _core.Proxies(request, list(environment.items()), session, no_proxy)
        if rules.invalid is not None:
            raise InvalidProxyURL(rules.invalid)
        self._proxies_built = (key, rules)
        return rules

    @property
    def hooks(self) -> dict[str, list[Any]]:
        """requests' event hooks: ``hooks["response"]`` holds callables run on every response
        (a request's own ``hooks=`` replace them for that request, as in requests)."""
        if self._hooks is None:
            self._hooks = {"response": []}
        return self._hooks

    @hooks.setter
    def hooks(self, value: dict[str, list[Any]]) -> None:
        self._hooks = value

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
        *,
        proxies: Any = None,
        hooks: tuple[list[Any], dict[str, Any]] | None = None,
        max_redirects: int | None = None,
        stream: bool = False,
    ) -> Response:
        """Sends one prepared request and turns the engine's result into the response: the one
        path every request method ends in. Runs the response hooks, then reports the request
        through the request event, or with ``catch_response`` prepares the with-block that will."""
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
            # With stream=True Locust counts the Content-Length as the response's length, which
            # the request event then carries (the engine would count the body it read).
            if len(listeners) == 1 and listeners[0].__class__ is StatsListener and not stream:
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
            proxies,
            max_redirects,
        )
        result = b.wait(token, first)
        status = result.resumed()
        if catch_response:
            cls: type[Response] = self._catch_response_class
        else:
            cls = self._response_class if status else self._error_response_class
        response: Any = cls.__new__(cls)
        response._result = result
        response.status_code = status
        response._name = name
        response._session = self
        if context:
            response._context = context
        if not status:
            response._url = full_url  # no response: its URL is the one requested
        if span is not None:
            tracing.end(span, status, response._outcome())
        if hooks is not None:
            response = _dispatch_hooks(response, *hooks)
        if not report:
            return response

        # In the order Locust builds it, for locustfiles that print it.
        meta = {
            "request_type": method,
            "response_time": result.response_time,
            "name": name,
            "context": {**(self.user.context() if self.user is not None else {}), **(context or {})},
            "response": response,
            "exception": None,
            "start_time": result.start_time,
            "url": full_url,
            "response_length": result.content_length,
        }
        if stream:
            meta["response_length"] = int(response.headers.get("content-length") or 0) if status else 0
        if catch_response:
            response._meta, response._manual_result, response._entered = meta, None, False
            return response
        meta["exception"] = response._outcome()
        response._meta = meta
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
        # without request()'s argument handling, when the session has nothing to add.
        if (
            (not kwargs or (len(kwargs) == 1 and "name" in kwargs))
            and not self.params
            and self.auth is None
            and not self.proxies
            and not (self.trust_env and _environment_proxies())
            and self._hooks is None
        ):
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
        """Accepted for compatibility: the engine does the transport itself, so no adapter is
        used. A default ``HTTPAdapter`` (what Locust mounts) changes nothing; any other (retries,
        a ``send()`` of its own) cannot apply, and horde says so once."""
        if not _is_default_adapter(adapter):
            _warn_once(
                "mount",
                f"horde does not use requests' transport adapters: mount({prefix!r}, {type(adapter).__name__}) "
                "has no effect (its retries and its own send() are not applied)",
            )

    def close(self) -> None:
        self._engine.close()
        for engine in (self._other_engines or {}).values():
            engine.close()

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _environment_proxies() -> dict[str, str]:
    """The environment's proxy variables for http, https, all and no (``no_proxy``), as urllib's
    ``getproxies_environment`` reads them for requests: the lower-case name over the upper-case
    one (an empty lower-case one unsets), and no ``HTTP_PROXY`` in a CGI script (httpoxy). Only the
    names that matter are looked up: urllib's scan of the whole environment cost more than a
    request."""
    environ = os.environ
    found = {}
    for scheme in ("http", "https", "all", "no"):
        value = environ.get(f"{scheme}_proxy")
        if value is None and not (scheme == "http" and "REQUEST_METHOD" in environ):
            value = environ.get(f"{scheme.upper()}_PROXY")
        if value:
            found[scheme] = value
    return found


def _is_default_adapter(adapter: Any) -> bool:
    """Whether a transport adapter is requests' own with its default retries (Locust mounts such
    a one), which the engine's transport stands in for."""
    if type(adapter).__name__ not in ("HTTPAdapter", "LocustHttpAdapter"):
        return False
    return not getattr(getattr(adapter, "max_retries", None), "total", 0)


def _response_hooks(request_hooks: Mapping[str, Any] | None, session_hooks: Mapping[str, Any] | None) -> list[Any]:
    """The response hooks that apply to a request: its own if it names any, else the session's
    (requests' merge), each a callable or a list of them."""
    for hooks in (request_hooks, session_hooks):
        found = hooks.get("response") if hooks else None
        if found:
            return [found] if callable(found) else list(found)
    return []


def _dispatch_hooks(response: Any, hooks: list[Any], settings: dict[str, Any]) -> Any:
    """Runs the response hooks on each response of the request, redirects first, as requests does
    when it receives them; a hook that returns something replaces the final response with it."""
    for hop in response.history:
        for hook in hooks:
            hook(hop, **settings)
    for hook in hooks:
        replaced = hook(response, **settings)
        if replaced is not None:
            response = replaced
    return response


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
