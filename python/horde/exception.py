"""horde's exceptions, in one hierarchy.

Locust's names (``LocustError``, ``StopUser``, ``CatchResponseError``, ...) are here because
locustfiles import them from ``locust.exception``. Transport failures use the names of
``requests.exceptions`` because locustfiles written for ``HttpUser`` catch those.
"""

from __future__ import annotations


class LocustError(Exception):
    """Base class of Locust's own errors."""


class ResponseError(Exception):
    """Raised inside a ``catch_response`` block to mark the response as failed."""


class CatchResponseError(Exception):
    """The failure recorded by ``response.failure("message")``."""


class MissingWaitTimeError(LocustError):
    pass


class InterruptTaskSet(Exception):
    """Leaves the current TaskSet; ``reschedule`` picks the parent's next task at once."""

    def __init__(self, reschedule: bool = True) -> None:
        super().__init__(reschedule)
        self.reschedule = reschedule


class StopUser(Exception):
    """Stops the user that raises it (``on_stop`` still runs)."""


class StopTest(Exception):
    """Stops the whole test run."""


class RescheduleTask(Exception):
    """Ends the current task; the user waits, then picks the next one."""


class RescheduleTaskImmediately(Exception):
    """Ends the current task; the next one starts without waiting."""


class RPCError(Exception):
    pass


class RPCSendError(RPCError):
    pass


class RPCReceiveError(RPCError):
    def __init__(self, *args: object, addr: str | None = None) -> None:
        super().__init__(*args)
        self.addr = addr


class RunnerAlreadyExistsError(Exception):
    pass


# Transport errors, named as in requests.exceptions.


class RequestException(IOError):
    """A request could not be completed."""

    def __init__(self, *args: object, request: object = None, response: object = None) -> None:
        super().__init__(*args)
        self.request = request
        self.response = response


class HTTPError(RequestException):
    """The server answered with a status that counts as an error."""


class ConnectionError(RequestException):  # noqa: A001 - requests' name, kept on purpose
    """The connection could not be made or broke (refused, reset, closed early, garbage)."""


class SSLError(ConnectionError):
    """The TLS handshake failed, e.g. the certificate did not verify."""


class Timeout(RequestException):
    """The request took longer than its timeout."""


class ConnectTimeout(ConnectionError, Timeout):
    """Connecting took longer than the connect timeout."""


class ReadTimeout(Timeout):
    """The server sent nothing for longer than the read timeout."""


class ChunkedEncodingError(RequestException):
    """The body broke off or was malformed: the connection closed inside it, or a chunk's size
    was not a number."""


class TooManyRedirects(RequestException):
    """More redirects than the session allows."""


class InvalidURL(RequestException, ValueError):
    """The URL cannot be sent."""


class InvalidHeader(RequestException, ValueError):
    """A header name or value cannot be sent (it would break the request's framing)."""


class MissingSchema(InvalidURL):
    """A relative URL without a base URL to resolve it against."""


class ContentDecodingError(RequestException):
    """The body could not be decoded as its Content-Encoding says."""


class ProxyError(ConnectionError):
    """The proxy could not be reached, or refused to open a tunnel to the origin."""


class InvalidProxyURL(InvalidURL):
    """A proxy URL is malformed, or names a kind of proxy horde does not speak (only http://)."""
