"""Names Locust removed in 1.0. Subclassing one raises an ImportError that says what to use
instead, as Locust does, so an old locustfile fails with a useful message."""

from __future__ import annotations

from typing import Any

_CHANGELOG = "For more info see: https://docs.locust.io/en/latest/changelog.html#changelog-1-0"


def _renamed(old: str, new: str) -> type:
    """A class named ``old`` that cannot be subclassed."""

    class _Meta(type):
        def __new__(mcs, classname: str, bases: tuple[type, ...], class_dict: dict[str, Any]) -> type:
            if classname == old and not bases:
                return super().__new__(mcs, classname, bases, class_dict)
            raise ImportError(f"The {old} class has been renamed to {new} in version 1.0. {_CHANGELOG}")

    return _Meta(old, (), {"__doc__": f"Renamed ``{new}`` in Locust 1.0."})


Locust = _renamed("Locust", "User")
HttpLocust = _renamed("HttpLocust", "HttpUser")
