"""``FastHttpUser``: Locust's geventhttpclient-based user, here on the same Rust engine as
``HttpUser``. ``FastHttpSession`` is an ``HttpSession`` that follows FastHttpSession's rules where
they differ: stats names, success codes, response attributes, defaults.
"""

from __future__ import annotations

import io
import json as _json
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import quote

from horde.clients import (
    _MISSING,
    HttpSession,
    PreparedRequest,
    Response,
    RestMixin,
    _basic_auth,
    _warn_once,
)
from horde.clients import ResponseContextManager as _SessionResponseContextManager
from horde.cookies import SessionCookieJar
from horde.exception import LocustError, StopTest
from horde.failures import engine_exception
from horde.user.users import User

__all__ = [
    "ErrorResponse",
    "FastHttpSession",
    "FastHttpUser",
    "FastRequest",
    "FastResponse",
    "ResponseContextManager",
    "RestResponseContextManager",
]

_NO_HOST = (
    "You must specify the base host. Either in the host attribute in the User class, or on the command line "
    "using the --host option."
)
_NEEDS_CATCH_RESPONSE = (
    "If you want to change the state of the request, you must pass catch_response=True. See "
    "http://docs.locust.io/en/stable/writing-a-locustfile.html#validating-responses"
)


class FastRequest(PreparedRequest):
    """The request a ``FastResponse`` answers: ``method``, ``url``, ``headers`` and ``body``, also
    as ``payload`` (a str when the body was given as one, or as ``json=``)."""

    __slots__ = ()

    @property
    def payload(self) -> str | bytes | None:
        return self.body


class FastResponse(Response):
    """A response with the attributes of Locust's ``FastResponse``.

    Differences from ``HttpSession``'s ``Response``: ``text`` is None without a body; ``ok`` only
    compares the status with 400; a status FastHttpUser does not accept sets ``error``, which
    ``raise_for_status()`` raises (nothing else does); ``len()`` is the declared body length, and
    a response is true when that length is not 0.
    """

    _request_class = FastRequest
    _kind = "FastHttpUser"
    _payload: str | None = None

    @property
    def error(self) -> Exception | None:
        """The connection error, or the failure for a status FastHttpUser does not accept, as
        the engine decided it (built on first use: most responses are never asked)."""
        error = self._error
        if error is _MISSING:
            result = self._result
            failure = result.failure if result is not None else None
            error = None if failure is None else engine_exception(failure, self)
            self._error = error
        return error

    @error.setter
    def error(self, value: Exception | None) -> None:
        self._error = value

    def _outcome(self) -> Exception | None:
        return self.error

    def _materialize(self) -> None:
        super()._materialize()
        if self._payload is not None and self._request is not None:
            self._request.body = self._payload  # geventhttpclient keeps a str payload as given

    @property
    def text(self) -> str | None:  # type: ignore[override]
        if self.content is None:
            return None
        return Response.text.fget(self)  # type: ignore[attr-defined]

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    def __len__(self) -> int:
        declared = self.headers.get("content-length")
        if declared is not None and declared.strip().isdigit():
            return int(declared)
        return len(self.content or b"")

    def __bool__(self) -> bool:
        # geventhttpclient's responses have __len__ and no __bool__: truth is a non-empty body.
        return len(self) > 0

    def raise_for_status(self) -> None:
        """Raises the response's ``error`` (connection error or unaccepted status), if any."""
        if self.error is not None:
            raise self.error

    @property
    def cookies(self) -> Any:
        # Locust's FastResponse has no cookies (the session's cookiejar has them): a locustfile
        # that reads them here would fail under Locust, so it fails here too.
        raise AttributeError(f"{type(self).__name__!r} object has no attribute 'cookies'")

    @property
    def request_meta(self) -> dict[str, Any]:
        """The request event's keyword arguments; only a ``catch_response`` response has them, as
        in Locust."""
        if self._meta is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute 'request_meta'")
        return self._meta

    @property
    def stream(self) -> io.BytesIO:
        """The body as a file-like object (the engine has read it already)."""
        return io.BytesIO(self.content or b"")

    def iter_content(self, chunk_size: int | None = 1024, decode_content: bool = True) -> Iterator[Any]:
        """The body in chunks of ``chunk_size`` bytes, decoded to text when they are UTF-8."""
        data = self.content or b""
        size = chunk_size or len(data) or 1
        for i in range(0, len(data), size):
            chunk: Any = data[i : i + size]
            if decode_content:
                try:
                    chunk = chunk.decode("utf-8")
                except UnicodeDecodeError:
                    pass  # keep the bytes, as Locust does
            yield chunk

    # A with-block over a plain response is allowed (geventhttpclient releases the connection).
    def __enter__(self) -> Any:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool | None:
        pass

    def success(self) -> None:
        raise LocustError(_NEEDS_CATCH_RESPONSE)

    def failure(self, *_args: Any, **_kwargs: Any) -> None:
        raise LocustError(_NEEDS_CATCH_RESPONSE)


class ErrorResponse(FastResponse):
    """The response of a request that got no answer (refused, reset, timed out, ...):
    ``status_code`` is 0, ``content`` and ``text`` are None, ``error`` is the exception."""


class ResponseContextManager(_SessionResponseContextManager, FastResponse):
    """The response of a ``catch_response=True`` request: mark it with ``success()`` or
    ``failure(msg)`` inside the with-block; unmarked, an error or an unaccepted status fails it."""

    @classmethod
    def _hop_class(cls) -> type[Response]:
        return FastResponse


class RestResponseContextManager(ResponseContextManager):
    """The response of ``FastHttpUser.rest()``: the parsed JSON body is in ``js``."""

    js: Any = None


class FastHttpSession(HttpSession):
    """``self.client`` of a ``FastHttpUser``: Locust's FastHttpSession API on horde's engine.

    As in Locust: the stats name defaults to the URL as passed (``name=`` overrides it); only
    200-208, 226 and 301/302/303/304/307/308 succeed; ``json=`` also sets ``Accept: application/json``; ``auth``
    is basic auth only; a base URL with ``user:password@`` sets ``auth_header``.

    Args:
        base_url: Prefixed to relative URLs.
        request_event: Locust's ``events.request`` hook.
        user: The user owning this client (its ``context()`` is merged into each request's).
        insecure: Skip TLS certificate verification (Locust's default for FastHttpUser).
        client_pool: Accepted for compatibility; the engine pools connections itself.
        ssl_context_factory: Accepted for compatibility; TLS is set up by the engine.
        network_timeout: Seconds to wait for the server while reading a response.
        connection_timeout: Seconds to wait for a connection.
        max_redirects: Most redirects followed for one request.
        max_retries: Accepted for compatibility; the engine does not retry.
        concurrency: Accepted for compatibility; the engine does not limit a user's connections.
        headers: Headers sent with every request.
        proxy_host: An HTTP proxy every request goes through (a CONNECT tunnel for https://).
        proxy_port: The proxy's port (required with ``proxy_host``).
        proxy_user: The proxy's user name, sent to it as basic credentials (geventhttpclient's).
        proxy_password: The proxy user's password.
    """

    _kind = "FastHttpUser"
    _tracing = None  # no spans: Locust traces only the requests library's calls (HttpUser)
    # geventhttpclient reads no proxy variables from the environment.
    trust_env = False
    _response_class = FastResponse
    _error_response_class = ErrorResponse
    _catch_response_class = ResponseContextManager
    max_retries = 0
    concurrency = 10
    client_pool: Any = None
    ssl_context_factory: Callable[..., Any] | None = None
    proxy_host: str | None = None
    proxy_port: int | None = None

    def __init__(
        self,
        base_url: str | None,
        request_event: Any,
        user: Any,
        insecure: bool = True,
        client_pool: Any = None,
        ssl_context_factory: Callable[..., Any] | None = None,
        *,
        network_timeout: float = 60.0,
        connection_timeout: float = 60.0,
        max_redirects: int = 30,
        max_retries: int = 0,
        concurrency: int = 10,
        headers: dict[str, str] | None = None,
        proxy_host: str | None = None,
        proxy_port: int | None = None,
        proxy_user: str | None = None,
        proxy_password: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            base_url=base_url,
            request_event=request_event,
            user=user,
            verify=not insecure,
            max_redirects=max_redirects,
        )
        self.insecure = insecure
        self.network_timeout = network_timeout
        self.connection_timeout = connection_timeout
        # The compatibility-only settings are class attributes unless given: past about 30
        # attributes an instance's __dict__ stops sharing its keys with the class's other instances
        # and grows from ~0.4 to 1.6 KB, per user (see the class attributes below).
        for attr, value in (
            ("max_retries", max_retries),
            ("concurrency", concurrency),
            ("client_pool", client_pool),
            ("ssl_context_factory", ssl_context_factory),
            ("proxy_host", proxy_host),
            ("proxy_port", proxy_port),
        ):
            if value != getattr(FastHttpSession, attr):
                setattr(self, attr, value)
        if proxy_host is not None:
            if proxy_port is None:
                raise ValueError("you have to provide proxy_port if you set proxy_host")
            host = f"[{proxy_host}]" if ":" in proxy_host and not proxy_host.startswith("[") else proxy_host
            credentials = ""
            if proxy_user is not None or proxy_password is not None:
                credentials = f"{quote(proxy_user or '', safe='')}:{quote(proxy_password or '', safe='')}@"
            self.proxies = {"all": f"http://{credentials}{host}:{proxy_port}"}
        for k, v in (headers or {}).items():
            self.headers[k] = v
        # FastHttpSession keeps credentials from the base URL as a ready header, not as `auth`.
        self.auth_header: str | None = None
        if self.auth is not None:
            self.auth_header = _basic_auth(*self.auth)
            self.auth = None

    @property
    def cookiejar(self) -> SessionCookieJar:
        """The session's cookies (``self.cookies``)."""
        return self.cookies

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        name: str | None = None,
        data: Any = None,
        catch_response: bool = False,
        stream: bool = False,
        headers: dict[str, Any] | None = None,
        auth: tuple[str | bytes, str | bytes] | None = None,
        json: Any = None,
        allow_redirects: bool = True,
        context: dict | None = None,
        *,
        params: Any = None,
        files: Any = None,
        max_redirects: int | None = None,
        max_retries: int | None = None,
        debug_stream: Any = None,
        to_string: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Sends a request.

        Args:
            method: HTTP method.
            url: Path appended to the base URL, or an absolute URL.
            name: Stats name (default: ``url`` as passed, query string included).
            data: Body: str, bytes or a dict (form-encoded).
            catch_response: Return a ``ResponseContextManager`` to decide the outcome in a with-block.
            stream: Accepted for compatibility (the engine reads the whole body).
            headers: Extra headers for this request.
            auth: ``(user, password)`` for basic auth.
            json: Body serialised as JSON when ``data`` is empty; sets Content-Type and Accept.
            allow_redirects: Follow redirects.
            context: Extra items for the request event's ``context``.
            params: Query parameters (a dict, a list of pairs or a string).
            files: Files for a multipart body, as ``HttpSession`` takes them.
            max_redirects: This request's limit on redirects (default: the session's).
            max_retries: Not applied (the engine does not retry); logged once.
            debug_stream: Not applied; logged once.
            to_string: Not applied; logged once.
            **kwargs: As in Locust, whose geventhttpclient takes any other keyword as a parameter:
                a form field of a POST whose ``data`` is None or a dict, else a query parameter.
                So ``timeout=`` or ``verify=`` here are parameters, not settings.

        Returns:
            A ``FastResponse`` (``ErrorResponse`` if the request got no answer), or a
            ``ResponseContextManager`` with ``catch_response=True``.
        """
        hdrs = None
        if headers or auth or self.auth_header or (not data and json is not None):
            hdrs = dict(headers) if headers else {}
            if auth:
                hdrs["Authorization"] = _basic_auth(auth[0], auth[1])
            elif self.auth_header:
                hdrs["Authorization"] = self.auth_header
            if not data and json is not None:
                data = _json.dumps(json)
                present = {k.lower() for k in hdrs}
                if "content-type" not in present:
                    hdrs["Content-Type"] = "application/json"
                if "accept" not in present:
                    hdrs["Accept"] = "application/json"
        if kwargs:
            # geventhttpclient's urlopen(**kw): form fields of a POST, else query parameters; a
            # body or query given as text leaves no room for them, and they are dropped, as there.
            if method.upper() == "POST":
                if data is None:
                    data = kwargs
                elif isinstance(data, dict):
                    data = {**data, **kwargs}
            elif params is None:
                params = kwargs
            elif isinstance(params, dict):
                params = {**params, **kwargs}
        if max_retries:
            _warn_once("max_retries", "horde does not retry failed requests: max_retries is ignored")
        if debug_stream is not None or to_string:
            _warn_once("debug_stream", "horde's FastHttpSession ignores debug_stream= and to_string=")
        response = super().request(
            method,
            url,
            name,
            catch_response,
            context,
            params=params,
            data=data,
            headers=hdrs,
            files=files,
            allow_redirects=allow_redirects,
            stream=stream,
            _max_redirects=max_redirects,
        )
        if isinstance(data, str):
            cast(FastResponse, response)._payload = data
        return response

    def _default_name(self, url: str, full_url: str) -> str:
        """FastHttpSession names a request by the URL as passed."""
        return url

    @property
    def network_timeout(self) -> float:
        """Read timeout in seconds."""
        return self._network_timeout

    @network_timeout.setter
    def network_timeout(self, value: float) -> None:
        self._network_timeout = value
        self.default_timeouts = (getattr(self, "_connection_timeout", None), value, None)

    @property
    def connection_timeout(self) -> float:
        """Connect timeout in seconds."""
        return self._connection_timeout

    @connection_timeout.setter
    def connection_timeout(self, value: float) -> None:
        self._connection_timeout = value
        self.default_timeouts = (value, getattr(self, "_network_timeout", None), None)

    def get(self, url: str, **kwargs: Any) -> Any:
        """Sends a GET request."""
        # `get(url)` and `get(url, name=...)` are how most tasks call the client: prepared here
        # without request()'s argument handling.
        if (
            (not kwargs or (len(kwargs) == 1 and "name" in kwargs))
            and not self.auth_header
            and not self.params
            and not self.proxies
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
        return self.request("GET", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Any:
        """Sends an OPTIONS request."""
        return self.request("OPTIONS", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Any:
        """Sends a HEAD request."""
        return self.request("HEAD", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        """Sends a DELETE request."""
        return self.request("DELETE", url, **kwargs)

    def post(self, url: str, data: Any = None, json: Any = None, **kwargs: Any) -> Any:
        """Sends a POST request."""
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url: str, data: Any = None, **kwargs: Any) -> Any:
        """Sends a PUT request."""
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url: str, data: Any = None, **kwargs: Any) -> Any:
        """Sends a PATCH request."""
        return self.request("PATCH", url, data=data, **kwargs)

    def iter_lines(self, url: str, method: str = "GET", **kwargs: Any) -> Iterator[str]:
        """Sends a request and yields its body line by line (without the newlines).

        Raises:
            Exception: The response's ``error`` (connection error or unaccepted status), if any.
        """
        response = self.request(method, url, stream=True, **kwargs)
        response.raise_for_status()
        pending = ""
        for chunk in response.iter_content(chunk_size=1024, decode_content=True):
            if isinstance(chunk, bytes):
                chunk = chunk.decode("utf-8", errors="replace")
            pending += chunk
            while "\n" in pending:
                line, pending = pending.split("\n", 1)
                yield line
        if pending:
            yield pending


class FastHttpUser(User, RestMixin):
    """A user whose ``self.client`` is a ``FastHttpSession``: the same API as ``HttpUser`` with
    Locust's FastHttpUser rules (see ``FastHttpSession``). Set the attributes below in a subclass.

    Attributes:
        network_timeout: Read timeout in seconds.
        connection_timeout: Connect timeout in seconds.
        max_redirects: Most redirects followed for one request.
        max_retries: Accepted for compatibility (no retries).
        insecure: Skip TLS certificate verification (default True, as in Locust).
        default_headers: Headers sent with every request.
        concurrency: Accepted for compatibility.
        proxy_host: An HTTP proxy every request goes through (a CONNECT tunnel for https://).
        proxy_port: The proxy's port.
        client_pool: Accepted for compatibility; the engine pools connections itself.
        ssl_context_factory: Accepted for compatibility; TLS is set up by the engine.

    Raises:
        StopTest: On creation, if neither the class nor ``--host`` gives a host.
    """

    network_timeout: float = 60.0
    connection_timeout: float = 60.0
    max_redirects: int = 30
    max_retries: int = 0
    insecure: bool = True
    default_headers: dict | None = None
    concurrency: int = 10
    proxy_host: str | None = None
    proxy_port: int | None = None
    client_pool: Any = None
    ssl_context_factory: Callable[..., Any] | None = None
    abstract = True

    _rest_response_class = RestResponseContextManager

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if self.host is None:
            raise StopTest(_NO_HOST)
        self.client: FastHttpSession = FastHttpSession(
            base_url=self.host,
            request_event=self.environment.events.request,
            user=self,
            insecure=self.insecure,
            client_pool=self.client_pool,
            ssl_context_factory=self.ssl_context_factory,
            network_timeout=self.network_timeout,
            connection_timeout=self.connection_timeout,
            max_redirects=self.max_redirects,
            max_retries=self.max_retries,
            concurrency=self.concurrency,
            headers=self.default_headers,
            proxy_host=self.proxy_host,
            proxy_port=self.proxy_port,
        )


class _DeprecatedFastHttpLocustMeta(type):
    def __new__(mcs, classname: str, bases: tuple[type, ...], class_dict: dict[str, Any]) -> type:
        if classname == "FastHttpLocust":
            return super().__new__(mcs, classname, bases, class_dict)
        raise ImportError(
            "The FastHttpLocust class has been renamed to FastHttpUser in version 1.0. "
            "For more info see: https://docs.locust.io/en/latest/changelog.html#changelog-1-0"
        )


class FastHttpLocust(metaclass=_DeprecatedFastHttpLocustMeta):
    """Renamed ``FastHttpUser`` in Locust 1.0; subclassing it raises ImportError saying so."""
