"""What a failed request is called: the exception a locustfile sees for a failure the engine
decided (``horde_core::locust`` decides the class, message and text; the classes live in
``horde.exception``), and the text under which the failures table groups any exception.
"""

from __future__ import annotations

import re
from typing import Any

from horde import exception

_ADDRESS = re.compile(r"object at 0x[0-9a-fA-F]+")


def error_text(error: Any) -> str:
    """The text under which a failure is grouped, as Locust's ``StatsError.parse_error``: the
    exception's repr with memory addresses masked (a string is kept as it is). For a failure the
    engine decided, the text the engine gave it (the repr of the exception Locust would have
    recorded, which for refused and reset connections is the OS error inside requests' one)."""
    if isinstance(error, str):
        return error
    known = getattr(error, "_locust_text", None)
    if known is not None:
        return known
    return _ADDRESS.sub("object at 0x....", repr(error))


def engine_exception(failure: tuple[str, str, str], response: Any = None) -> Exception:
    """The exception for a failure the engine decided: ``(class name, message, text)``."""
    name, message, text = failure
    cls = getattr(exception, name)
    error = cls(message, response=response) if issubclass(cls, exception.RequestException) else cls(message)
    error._locust_text = text
    return error
