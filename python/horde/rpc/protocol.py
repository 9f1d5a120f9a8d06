"""Locust's wire format: every message is a msgpack array ``[type, data, node_id]``, with
datetimes (and bson ObjectIds, when bson is installed) encoded as tagged maps, as Locust 2.47 does.
"""

from __future__ import annotations

import datetime
from typing import Any

import msgpack

try:
    from bson import ObjectId
except ImportError:  # bson comes with pymongo; without it ObjectIds cannot travel (as in Locust)
    ObjectId = None

_DATETIME_FORMAT = "%Y%m%dT%H:%M:%S.%f"


def encode(obj: Any) -> Any:
    """msgpack's ``default``: the tagged maps Locust sends for the types msgpack lacks."""
    if isinstance(obj, datetime.datetime):
        return {"__datetime__": True, "as_str": obj.strftime(_DATETIME_FORMAT)}
    if ObjectId is not None and isinstance(obj, ObjectId):
        return {"__ObjectId__": True, "as_str": str(obj)}
    return obj


def decode(obj: dict) -> Any:
    """msgpack's ``object_hook``: turns Locust's tagged maps back into their types."""
    if "__datetime__" in obj:
        return datetime.datetime.strptime(obj["as_str"], _DATETIME_FORMAT)
    if "__ObjectId__" in obj:
        if ObjectId is None:
            raise ValueError("an ObjectId arrived: install pymongo (or bson) to receive ObjectIds")
        return ObjectId(obj["as_str"])
    return obj


class Message:
    """One message between master and worker: ``type``, ``data`` and the worker's ``node_id``
    (both directions carry the worker's id)."""

    __slots__ = ("type", "data", "node_id")

    def __init__(self, message_type: str, data: Any, node_id: str) -> None:
        self.type = message_type
        self.data = data
        self.node_id = node_id

    def __repr__(self) -> str:
        return f"<Message {self.type}:{self.node_id}>"

    def serialize(self) -> bytes:
        return msgpack.dumps((self.type, self.data, self.node_id), default=encode)

    @classmethod
    def unserialize(cls, data: bytes) -> Message:
        """Decodes a message; raises ``ValueError`` (msgpack's errors are ValueErrors) or
        ``TypeError`` for anything that is not a well-formed three-element message."""
        decoded = msgpack.loads(data, raw=False, strict_map_key=False, object_hook=decode)
        if not isinstance(decoded, (list, tuple)) or len(decoded) != 3:
            raise ValueError(f"not a [type, data, node_id] message: {type(decoded).__name__}")
        message_type, payload, node_id = decoded
        if not isinstance(message_type, str) or not isinstance(node_id, str):
            raise ValueError("a message's type and node id must be strings")
        return cls(message_type, payload, node_id)
