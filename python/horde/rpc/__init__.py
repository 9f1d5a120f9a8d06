"""Messaging between a master and its workers (Locust's ``locust.rpc``): ``Message`` and the
ZeroMQ sockets in ``rpc`` (``zmqrpc``)."""

from horde.rpc import zmqrpc as rpc
from horde.rpc.protocol import Message

__all__ = ("Message", "rpc")
