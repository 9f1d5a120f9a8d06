"""``--web-login``: who may use the web UI.

Locust's flag turns on a login page that a locustfile must wire to flask-login itself; horde's
asks for credentials with no code: HTTP Basic auth with ``HORDE_WEB_USER``/``HORDE_WEB_PASSWORD``,
and/or a token (``HORDE_WEB_TOKEN``) sent as ``Authorization: Bearer <token>``, ``?token=<token>``
or the cookie set after a ``?token=`` visit. With none of them set a random token is made (and
logged with the UI's URL). Secrets are compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from typing import Any

TOKEN_COOKIE = "horde_web_token"


def _same(given: str, expected: str) -> bool:
    # hmac.compare_digest takes time independent of where the two differ.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class Credentials:
    """The credentials the web UI accepts when ``--web-login`` is on.

    Args:
        user: Basic-auth user name (None: no Basic auth).
        password: Basic-auth password.
        token: Bearer / ``?token=`` token (None: no token).
    """

    def __init__(self, user: str | None = None, password: str | None = None, token: str | None = None) -> None:
        self.user = user
        self.password = password
        self.token = token
        self.generated_token = False

    @classmethod
    def from_environment(cls, environ: Any = None) -> Credentials:
        """From ``HORDE_WEB_USER``/``HORDE_WEB_PASSWORD``/``HORDE_WEB_TOKEN``; a random token when
        none is set (``generated_token`` is then True)."""
        environ = os.environ if environ is None else environ
        credentials = cls(
            environ.get("HORDE_WEB_USER") or None,
            environ.get("HORDE_WEB_PASSWORD") or None,
            environ.get("HORDE_WEB_TOKEN") or None,
        )
        if credentials.user is not None and credentials.password is None:
            raise ValueError("HORDE_WEB_USER is set but HORDE_WEB_PASSWORD is not")
        if credentials.user is None and credentials.token is None:
            credentials.token = secrets.token_urlsafe(24)
            credentials.generated_token = True
        return credentials

    @property
    def uses_basic(self) -> bool:
        """Whether a Basic-auth user is configured."""
        return self.user is not None

    def check(self, request: Any) -> str | None:
        """How ``request`` (a Flask request) proved who it is: "basic", "bearer", "query",
        "cookie", or None when it did not."""
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and self.user is not None and self.password is not None:
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            # Both compared always, so the time does not tell which of the two was wrong.
            user_ok = _same(user, self.user)
            password_ok = _same(password, self.password)
            return "basic" if user_ok and password_ok else None
        if self.token is None:
            return None
        if scheme == "bearer":
            return "bearer" if _same(value.strip(), self.token) else None
        given = request.args.get("token")
        if given is not None:
            return "query" if _same(given, self.token) else None
        cookie = request.cookies.get(TOKEN_COOKIE)
        if cookie is not None:
            return "cookie" if _same(cookie, self.token) else None
        return None
