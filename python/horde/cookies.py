"""Cookie jars with requests' API: ``response.cookies`` (the cookies one response set, parsed by the
standard library's ``http.cookiejar`` as requests does) and ``client.cookies`` (a session's jar,
kept by the engine and read through the same API). Both yield ``http.cookiejar.Cookie`` objects.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from http.cookiejar import Cookie, CookieJar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from horde.clients import HttpSession

__all__ = ["CookieConflictError", "RequestsCookieJar", "SessionCookieJar", "make_cookie"]


class CookieConflictError(RuntimeError):
    """More than one cookie matches a name (and the domain and path given): use ``get()`` with
    ``domain=`` or ``path=`` to say which."""


def make_cookie(name: str, value: str, **attributes: Any) -> Cookie:
    """A cookie from a name, a value and any of ``http.cookiejar.Cookie``'s attributes, with
    requests' defaults: no domain (sent everywhere), path ``/``, a session cookie."""
    fields: dict[str, Any] = {
        "version": 0,
        "name": name,
        "value": value,
        "port": None,
        "domain": "",
        "path": "/",
        "secure": False,
        "expires": None,
        "discard": True,
        "comment": None,
        "comment_url": None,
        "rest": {"HttpOnly": None},
        "rfc2109": False,
    }
    unknown = set(attributes) - set(fields)
    if unknown:
        raise TypeError(f"make_cookie() got unexpected keyword arguments: {sorted(unknown)}")
    fields.update(attributes)
    fields["port_specified"] = bool(fields["port"])
    fields["domain_specified"] = bool(fields["domain"])
    fields["domain_initial_dot"] = fields["domain"].startswith(".")
    fields["path_specified"] = bool(fields["path"])
    return Cookie(**fields)


class _DictView:
    """requests' dict-like reading of a jar, over ``iter(self)`` (``Cookie`` objects). Lookups
    walk every cookie, as requests' do: jars in load tests hold a handful."""

    def __iter__(self) -> Iterator[Cookie]:
        raise NotImplementedError

    def _find(self, name: str, domain: str | None = None, path: str | None = None) -> str | None:
        """The value of the one cookie named ``name`` (in ``domain`` and at ``path`` when given).

        Raises:
            KeyError: No cookie matches.
            CookieConflictError: More than one does.
        """
        found: Cookie | None = None
        for cookie in self:
            if (
                cookie.name == name
                and (domain is None or cookie.domain == domain)
                and (path is None or cookie.path == path)
            ):
                if found is not None:
                    raise CookieConflictError(f"There are multiple cookies with name, {name!r}")
                found = cookie
        if found is None:
            raise KeyError(f"name={name!r}, domain={domain!r}, path={path!r}")
        return found.value

    def get(self, name: str, default: Any = None, domain: str | None = None, path: str | None = None) -> Any:
        """The value of the cookie ``name`` (in ``domain``, at ``path``), or ``default``.

        Raises:
            CookieConflictError: Several cookies match; pass ``domain`` or ``path``.
        """
        try:
            return self._find(name, domain, path)
        except KeyError:
            return default

    def __getitem__(self, name: str) -> str | None:
        return self._find(name)

    def __contains__(self, name: object) -> bool:
        return any(cookie.name == name for cookie in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def iterkeys(self) -> Iterator[str]:
        return (cookie.name for cookie in self)

    def keys(self) -> list[str]:
        return list(self.iterkeys())

    def itervalues(self) -> Iterator[str | None]:
        return (cookie.value for cookie in self)

    def values(self) -> list[str | None]:
        return list(self.itervalues())

    def iteritems(self) -> Iterator[tuple[str, str | None]]:
        return ((cookie.name, cookie.value) for cookie in self)

    def items(self) -> list[tuple[str, str | None]]:
        return list(self.iteritems())

    def list_domains(self) -> list[str]:
        """Every domain in the jar, once each."""
        return list(dict.fromkeys(cookie.domain for cookie in self))

    def list_paths(self) -> list[str]:
        """Every path in the jar, once each."""
        return list(dict.fromkeys(cookie.path for cookie in self))

    def multiple_domains(self) -> bool:
        """Whether two cookies of the jar share a domain (requests' name for this check)."""
        seen: set[str] = set()
        for cookie in self:
            if cookie.domain in seen:
                return True
            seen.add(cookie.domain)
        return False

    def get_dict(self, domain: str | None = None, path: str | None = None) -> dict[str, str | None]:
        """The cookies as a plain ``{name: value}`` dict, optionally only those of ``domain`` and
        ``path``."""
        return {
            cookie.name: cookie.value
            for cookie in self
            if (domain is None or cookie.domain == domain) and (path is None or cookie.path == path)
        }

    def copy(self) -> RequestsCookieJar:
        """A detached copy, as a ``RequestsCookieJar``."""
        jar = RequestsCookieJar()
        for cookie in self:
            jar.set_cookie(copy.copy(cookie))
        return jar

    def __repr__(self) -> str:
        return f"<{type(self).__name__}[{', '.join(repr(c) for c in self)}]>"

    def __str__(self) -> str:
        return f"<{type(self).__name__}[{', '.join(str(c) for c in self)}]>"


class RequestsCookieJar(_DictView, CookieJar, MutableMapping):  # type: ignore[misc]
    """A cookie jar that is also a dict of names to values, as ``requests.cookies.RequestsCookieJar``:
    ``response.cookies`` is one. Iterating it yields ``http.cookiejar.Cookie`` objects;
    ``get(name, domain=..., path=...)`` picks among cookies of the same name."""

    def __init__(self, policy: Any = None) -> None:
        CookieJar.__init__(self, policy)

    def __iter__(self) -> Iterator[Cookie]:
        return CookieJar.__iter__(self)

    def __len__(self) -> int:
        return CookieJar.__len__(self)

    def set(self, name: str, value: str | None, **attributes: Any) -> Cookie | None:
        """Adds a cookie (``make_cookie``'s attributes); a None value removes the cookies of that
        name instead."""
        if value is None:
            self._remove(name, attributes.get("domain"), attributes.get("path"))
            return None
        cookie = make_cookie(name, value, **attributes)
        self.set_cookie(cookie)
        return cookie

    def set_cookie(self, cookie: Cookie, *args: Any, **kwargs: Any) -> None:
        value = cookie.value
        if value is not None and value.startswith('"') and value.endswith('"'):
            cookie.value = value.replace('\\"', "")  # as requests stores quoted values
        CookieJar.set_cookie(self, cookie, *args, **kwargs)

    def __setitem__(self, name: str, value: str | None) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        self._remove(name, None, None)

    def _remove(self, name: str, domain: str | None, path: str | None) -> None:
        doomed = [c for c in self if c.name == name and domain in (None, c.domain) and path in (None, c.path)]
        for cookie in doomed:
            CookieJar.clear(self, cookie.domain, cookie.path, cookie.name)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Adds the cookies of another jar, or the items of a mapping."""
        if isinstance(other, (CookieJar, SessionCookieJar)):
            for cookie in other:
                self.set_cookie(copy.copy(cookie))
        else:
            MutableMapping.update(self, other, **kwargs)


class SessionCookieJar(_DictView, MutableMapping):  # type: ignore[misc]
    """A session's cookies (``client.cookies``; ``client.cookiejar`` of a FastHttpUser): the
    engine keeps them and sends them, this reads and changes them with requests' API.

    Cookies come out as ``http.cookiejar.Cookie`` objects named as ``http.cookiejar`` names them:
    a Domain cookie's domain has a leading dot, and a host without a dot gets ``.local``
    appended (``localhost.local``), so ``get_dict(domain=...)`` matches what requests gives.
    """

    def __init__(self, session: HttpSession) -> None:
        self._session = session

    def __iter__(self) -> Iterator[Cookie]:
        return iter(engine_cookies(self._session._engine))

    def set(
        self,
        name: str,
        value: str | None,
        domain: str | None = None,
        path: str | None = None,
        **attributes: Any,
    ) -> Cookie | None:
        """Stores a cookie for ``domain`` (default: the session's host) and ``path`` (default
        ``/``); ``secure``, ``expires`` and ``rest={"HttpOnly": None}`` are kept too. A None value
        removes the cookies of that name (in ``domain`` and at ``path`` when given)."""
        if value is None:
            self.clear(domain, path, name)
            return None
        cookie = make_cookie(name, value, domain=domain or "", path=path or "/", **attributes)
        self.set_cookie(cookie)
        return cookie

    def set_cookie(self, cookie: Cookie, *args: Any, **kwargs: Any) -> None:
        """Stores an ``http.cookiejar.Cookie``; one without a domain goes to the session's host."""
        self._session._engine.set_cookie(*engine_set_cookie(cookie, self._session._host_for_cookies()))

    def __setitem__(self, name: str, value: str | None) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        # requests' jar removes silently when there is no such cookie, and so does this one.
        self.clear(name=name)

    def clear(self, domain: str | None = None, path: str | None = None, name: str | None = None) -> None:
        """Removes the cookies of ``domain``, at ``path``, named ``name`` (each filter optional);
        every cookie when none is given."""
        self._session._engine.clear_cookies(name, _engine_domain(domain) if domain else None, path)

    def clear_session_cookies(self) -> None:
        """Removes the cookies that have no expiry (those a browser drops when it closes)."""
        for cookie in self:
            if cookie.expires is None:
                self._session._engine.clear_cookies(cookie.name, _engine_domain(cookie.domain), cookie.path)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Adds the cookies of another jar, or the items of a mapping (for the session's host)."""
        if isinstance(other, (CookieJar, SessionCookieJar)):
            for cookie in other:
                self.set_cookie(cookie)
            return
        pairs: Iterable[Any] = other.items() if isinstance(other, Mapping) or hasattr(other, "items") else other
        for name, value in [*pairs, *kwargs.items()]:
            self.set(name, value)


def engine_set_cookie(cookie: Cookie, default_host: str) -> tuple[str, str]:
    """What the engine's ``set_cookie`` takes to store ``cookie``: a URL that may set it and a
    Set-Cookie value with its attributes. A cookie without a domain goes to ``default_host``."""
    host = _engine_domain(cookie.domain) or default_host
    attributes = [f"{cookie.name}={cookie.value or ''}", f"Path={cookie.path or '/'}"]
    if cookie.domain_specified and cookie.domain:
        attributes.append(f"Domain={host}")
    if cookie.secure:
        attributes.append("Secure")
    if cookie.has_nonstandard_attr("HttpOnly"):
        attributes.append("HttpOnly")
    if cookie.expires is not None:
        attributes.append(f"Max-Age={max(0, int(cookie.expires - time.time()))}")
    scheme = "https" if cookie.secure else "http"
    return f"{scheme}://{host}{cookie.path or '/'}", "; ".join(attributes)


def engine_cookies(engine: Any) -> list[Cookie]:
    """The cookies of an engine session, as ``http.cookiejar`` would have stored them."""
    return [_from_engine(*c) for c in engine.cookies()]


def _from_engine(
    name: str,
    value: str,
    domain: str,
    path: str,
    domain_specified: bool,
    secure: bool,
    http_only: bool,
    expires: int | None,
) -> Cookie:
    """An engine cookie as ``http.cookiejar`` would have stored it."""
    # http.cookiejar keeps attributes without a value, such as HttpOnly, as None.
    rest: Any = {"HttpOnly": None} if http_only else {}
    if domain_specified:
        domain = f".{domain}"
    elif "." not in domain and domain:
        domain = f"{domain}.local"
    return Cookie(
        version=0,
        name=name,
        value=value,
        port=None,
        port_specified=False,
        domain=domain,
        domain_specified=domain_specified,
        domain_initial_dot=False,
        path=path,
        path_specified=True,
        secure=secure,
        expires=expires,
        discard=expires is None,
        comment=None,
        comment_url=None,
        rest=rest,
        rfc2109=False,
    )


def _engine_domain(domain: str) -> str:
    """A domain as ``http.cookiejar`` writes it, as the engine keeps it: no leading dot, no
    ``.local`` added to a host without dots."""
    domain = domain.lstrip(".")
    if domain.endswith(".local") and "." not in domain[: -len(".local")]:
        return domain[: -len(".local")]
    return domain


class _HeadersForCookies:
    """The one method of a response's headers that ``http.cookiejar`` calls."""

    __slots__ = ("_set_cookie",)

    def __init__(self, set_cookie: list[str]) -> None:
        self._set_cookie = set_cookie

    def get_all(self, name: str, default: Any = None) -> Any:
        return list(self._set_cookie) if name.lower() == "set-cookie" and self._set_cookie else default


class _ResponseForCookies:
    """A response as ``http.cookiejar.CookieJar.extract_cookies`` reads it."""

    __slots__ = ("_headers",)

    def __init__(self, set_cookie: list[str]) -> None:
        self._headers = _HeadersForCookies(set_cookie)

    def info(self) -> _HeadersForCookies:
        return self._headers


class _RequestForCookies:
    """The request a response answered, as ``http.cookiejar`` reads it (its URL decides the
    cookies' default domain and path, and which Domain attributes it may set)."""

    __slots__ = ("_url", "host", "origin_req_host", "type")
    unverifiable = False

    def __init__(self, url: str) -> None:
        self._url = url
        parts = urlsplit(url)
        self.host = self.origin_req_host = parts.netloc.rpartition("@")[2]
        self.type = parts.scheme

    def get_full_url(self) -> str:
        return self._url

    def has_header(self, name: str) -> bool:
        return False

    def get_header(self, name: str, default: Any = None) -> Any:
        return default


def response_cookies(url: str, set_cookie: list[str]) -> RequestsCookieJar:
    """The cookies a response to ``url`` set with these Set-Cookie values, as requests reads them
    (``http.cookiejar``'s rules: default domain and path, Domain attributes the URL may not set
    are dropped, expired cookies are left out)."""
    jar = RequestsCookieJar()
    if set_cookie:
        jar.extract_cookies(_ResponseForCookies(set_cookie), _RequestForCookies(url))  # type: ignore[arg-type]
    return jar
