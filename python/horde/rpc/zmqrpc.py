"""The master's ROUTER socket and a worker's DEALER socket (Locust's ``locust.rpc.zmqrpc``
``Server`` and ``Client``), each served by an OS thread of its own.

Locust runs its sockets in the same gevent loop as the users, so a worker whose users keep that loop
busy sends its heartbeats late and is marked missing (Locust issues #1843, #3065), and a master
with a thousand workers spends a core on their heartbeats and reports (#3142). Here:

- A worker's socket (``Client``, pyzmq) belongs to a real thread that sends what the gevent side
  queues, runs periodic jobs (heartbeats, stats reports) and may answer messages itself, whatever
  the users do. The thread needs the GIL for its Python work; CPython hands it over every few
  milliseconds even while user code spins.
- The master's socket (``Server``) is served by the engine (rust/horde-core/src/router.rs), which
  answers heartbeats and merges stats reports without Python.

Every other message goes to the gevent loop, where ``recv()`` returns it to a greenlet, as in Locust.
"""

from __future__ import annotations

import logging
import os
import socket as pysocket
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
import gevent.queue
import zmq
from gevent import monkey

from horde import _core
from horde.exception import RPCError, RPCReceiveError
from horde.rpc.protocol import Message

logger = logging.getLogger(__name__)

# The thread must be a real one even when the process is monkey-patched (as the CLI is).
_start_thread = monkey.get_original("_thread", "start_new_thread")
_allocate_lock = monkey.get_original("_thread", "allocate_lock")

# Pending messages are delivered for up to this long when a socket closes (final reports, quit).
_LINGER_MS = 2000
# Messages queued for sending beyond this are dropped (a peer that stopped reading must not grow
# the process without bound); ZeroMQ's own high-water mark applies after this.
_MAX_OUTBOX = 100_000
# pyzmq's flags as plain ints, and its socket calls made directly rather than through
# send_multipart/recv_multipart and a zmq.Again per drained queue: a master with a thousand workers
# handles thousands of messages a second on one thread, and pyzmq's helpers and its exception (whose
# constructor imports a module) cost it more than the messages' own handling.
_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
_RCVMORE = int(zmq.RCVMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


class _Closed(Exception):
    pass


class BaseSocket:
    """A ZeroMQ socket and the thread that serves it (a worker's: see ``Client``).

    Args:
        sock_type: ``zmq.DEALER``.
        ipv4_only: Leave IPv6 off (the host resolves to IPv4 only).
    """

    def __init__(self, sock_type: int, ipv4_only: bool) -> None:
        self._context = zmq.Context()
        self.socket = self._context.socket(sock_type)
        self.socket.setsockopt(zmq.TCP_KEEPALIVE, 1)
        self.socket.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 30)
        self.socket.setsockopt(zmq.LINGER, _LINGER_MS)
        if pysocket.has_dualstack_ipv6() and not ipv4_only:
            self.socket.setsockopt(zmq.IPV6, 1)
        self._outbox: deque[list[bytes]] = deque()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._jobs: list[list[Any]] = []  # [interval, next due (monotonic), function]
        self._handlers: list[Callable[[str | None, Message], bool]] = []
        # Thread -> gevent: decoded messages (or receive errors) wait here, and an async watcher
        # wakes the hub, which moves them into a gevent queue for recv().
        self._inbox: deque[Any] = deque()
        self._received: gevent.queue.Queue = gevent.queue.Queue()
        self._async = gevent.get_hub().loop.async_()
        self._async.start(self._deliver)
        self._closing = False
        self._stopped = _allocate_lock()
        self._stopped.acquire()
        self._started = False

    # -- configuration, before start() --------------------------------------------------------

    def every(self, interval: float, job: Callable[[], None]) -> None:
        """Runs ``job()`` on the socket's thread every ``interval`` seconds (first after one)."""
        self._jobs.append([interval, time.monotonic() + interval, job])

    def handle_in_thread(self, handler: Callable[[str | None, Message], bool]) -> None:
        """Offers each received message to ``handler(addr, message)`` on the socket's thread
        first; a message it returns True for is not passed on to ``recv()``."""
        self._handlers.append(handler)

    def deliver(self, msg: Message, addr: str | None = None) -> None:
        """Hands ``msg`` to ``recv()`` as if it had arrived (from the socket's thread or any other)."""
        self._inbox.append((addr, msg))
        self._async.send()

    def start(self) -> None:
        """Starts the socket's thread (once)."""
        if not self._started:
            self._started = True
            _start_thread(self._serve, ())

    # -- Locust's API ---------------------------------------------------------------------------

    def send(self, msg: Message) -> None:
        """Queues a message to the peer (a worker's master); returns at once."""
        self._queue([msg.serialize()])

    def recv(self) -> Message:
        """The next message from the peer (waits cooperatively)."""
        return self._next()[1]

    def close(self, linger: int | None = None) -> None:
        """Sends what is queued (for up to ``linger`` ms), then closes the socket and its thread."""
        if self._closing:
            return
        self._closing = True
        if linger is not None:
            self._linger = linger
        self._wake()
        if self._started:
            # A short, bounded wait: the thread exits after its next poll.
            self._stopped.acquire(True, (_LINGER_MS if linger is None else linger) / 1000 + 2)
        else:
            self._shutdown()
        self._async.stop()
        self._async.close()

    # -- the gevent side ------------------------------------------------------------------------

    def _queue(self, frames: list[bytes]) -> None:
        if self._closing:
            raise RPCError("the socket is closed")
        if len(self._outbox) >= _MAX_OUTBOX:
            logger.error("Dropping a message: %d messages are waiting to be sent", len(self._outbox))
            return
        self._outbox.append(frames)
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full or closed: the thread is awake, or gone

    def _deliver(self) -> None:
        # On the hub: hand what the thread received to the greenlets waiting in recv().
        while self._inbox:
            self._received.put_nowait(self._inbox.popleft())

    def _next(self) -> tuple[str | None, Message]:
        item = self._received.get()
        if isinstance(item, Exception):
            raise item
        return item

    # -- the socket's thread ---------------------------------------------------------------------

    _linger = _LINGER_MS

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self._wake_read, zmq.POLLIN)
        try:
            while True:
                self._send_queued()
                if self._closing:
                    break
                now = time.monotonic()
                due = min((job[1] for job in self._jobs), default=now + 1.0)
                events = dict(poller.poll(int(max(0.0, due - now) * 1000)))  # pyzmq would int() it too
                if self._wake_read in events:
                    try:
                        while os.read(self._wake_read, 4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                if self.socket in events:
                    self._receive_all()
                self._run_due_jobs()
        except Exception:
            logger.error("The messaging thread failed:\n%s", traceback.format_exc())
        finally:
            self._shutdown()
            self._stopped.release()

    def _send_frames(self, frames: list[bytes]) -> None:
        send = self.socket.send
        for frame in frames[:-1]:
            send(frame, _SNDMORE_NOBLOCK)
        send(frames[-1], _NOBLOCK)

    def _send_queued(self) -> None:
        while self._outbox:
            frames = self._outbox[0]
            try:
                self._send_frames(frames)
            except zmq.Again:
                return  # the master is not reachable yet: DEALER keeps the rest for later
            except zmq.ZMQError as e:
                logger.error("Sending a message failed: %s", e)
            self._outbox.popleft()

    def _receive_all(self) -> None:
        sock = self.socket
        recv = sock.recv
        get: Callable[[int], int] = sock.get  # type: ignore[assignment]  # int options give ints
        for _ in range(10_000):  # bounded, so jobs and sends still get their turn
            if not get(_EVENTS) & _POLLIN:
                return
            try:
                frames = [recv(_NOBLOCK)]
                while get(_RCVMORE):
                    frames.append(recv(_NOBLOCK))
            except zmq.Again:
                return
            self._on_frames(frames)

    def _on_frames(self, frames: list[bytes]) -> None:
        addr: str | None = None
        payload = frames[-1]
        try:
            msg = Message.unserialize(payload)
        except Exception as e:  # msgpack raises several kinds for garbage
            self._inbox.append(RPCReceiveError(f"ZMQ interrupted or corrupted message ({e})", addr=addr))
            self._async.send()
            return
        for handler in self._handlers:
            try:
                if handler(addr, msg):
                    return
            except Exception:
                logger.error("Handling %s on the messaging thread failed:\n%s", msg, traceback.format_exc())
                return
        self._inbox.append((addr, msg))
        self._async.send()

    def _run_due_jobs(self) -> None:
        now = time.monotonic()
        for job in self._jobs:
            if job[1] <= now:
                # The next run keeps the cadence, but never piles up runs that were missed.
                job[1] = max(job[1] + job[0], now + job[0] / 2)
                try:
                    job[2]()
                except Exception:
                    logger.error("A messaging job failed:\n%s", traceback.format_exc())

    def _shutdown(self) -> None:
        try:
            self.socket.close(linger=self._linger)
            self._context.term()
        except Exception:
            pass
        for fd in (self._wake_read, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass

    @staticmethod
    def ipv4_only(host: str, port: int) -> bool:
        """Whether ``host`` resolves to IPv4 addresses only (then IPv6 stays off, as in Locust)."""
        if host == "*":
            return False
        try:
            infos = pysocket.getaddrinfo(host, port, proto=pysocket.IPPROTO_TCP)
        except pysocket.gaierror as e:
            logger.warning(f"Error resolving address {host}: {e}")
            return False
        return all(info[0] != pysocket.AF_INET6 for info in infos)


class MergedReport(Message):
    """A worker's stats report that the master's socket has merged into the statistics already.
    It carries the report's ``user_classes_count`` (when they changed), and the whole report only
    when a locustfile listens to ``worker_report``."""

    __slots__ = ("user_classes_count",)

    def __init__(self, node_id: str, user_classes_count: dict[str, int] | None, data: Any) -> None:
        super().__init__("stats", data, node_id)
        self.user_classes_count = user_classes_count


class AnsweredHeartbeat(Message):
    """A heartbeat that the master's socket has answered and noted already (when its worker was
    last heard from); passed on for a change of state, the CPU warning or ``heartbeat_sent``
    listeners."""

    __slots__ = ()


class Server:
    """The master's ROUTER socket, bound to ``host:port`` (port 0: a free port, see ``port``).

    The engine serves it (``router`` is the engine's handle): heartbeats of the workers the runner
    counts live are answered there and stats reports merged into the statistics given to
    ``router.merge_into``; ``recv_from_client()`` gets everything else, and what the runner must
    see of those (``MergedReport``, ``AnsweredHeartbeat``).
    """

    def __init__(self, host: str, port: int, cpu_threshold: float = 90) -> None:
        try:
            self.router = _core.Router(host, port, cpu_threshold)
        except OSError as e:
            raise RPCError(f"Socket bind failure: {e}") from e
        self.port = self.router.port
        self._pending: deque[tuple[str, Any, Any, Any]] = deque()
        self._readable = gevent.get_hub().loop.io(self.router.fileno(), 1)
        self._closed = False

    def send_to_client(self, msg: Message) -> None:
        """Queues a message to the worker ``msg.node_id``; returns at once."""
        if self._closed:
            raise RPCError("the socket is closed")
        self.router.send(msg.node_id, msg.serialize())

    def recv_from_client(self) -> tuple[str, Message]:
        """The next message from any worker and that worker's id (waits cooperatively).

        Raises:
            RPCReceiveError: The frames could not be decoded; ``addr`` names the sender if known.
        """
        while not self._pending:
            gevent.get_hub().wait(self._readable)  # after close(), until the greenlet is killed
            self._pending.extend(self.router.take())
        kind, addr, first, second = self._pending.popleft()
        if kind == "error":
            raise RPCReceiveError(first, addr=addr)
        if kind == "report":
            data = None if second is None else self._decode(addr, second).data
            return addr, MergedReport(addr, first, data)
        msg = self._decode(addr, first)
        if second:
            msg = AnsweredHeartbeat(msg.type, msg.data, msg.node_id)
        return addr, msg

    @staticmethod
    def _decode(addr: str, payload: bytes) -> Message:
        try:
            return Message.unserialize(payload)
        except Exception as e:  # msgpack raises several kinds for garbage
            raise RPCReceiveError(f"ZMQ interrupted or corrupted message ({e})", addr=addr) from None

    def close(self, linger: int | None = None) -> None:
        """Sends what is queued (for up to ``linger`` ms), then closes the socket."""
        if self._closed:
            return
        self._closed = True
        self.router.close((_LINGER_MS if linger is None else linger) / 1000)


class Client(BaseSocket):
    """A worker's DEALER socket, connected to the master at ``host:port`` as ``identity``."""

    def __init__(self, host: str, port: int, identity: str) -> None:
        super().__init__(zmq.DEALER, self.ipv4_only(host, port))
        self.socket.setsockopt(zmq.IDENTITY, identity.encode())
        self.socket.connect(f"tcp://{host}:{port}")
