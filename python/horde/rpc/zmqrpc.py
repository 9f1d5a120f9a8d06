"""The master's ROUTER socket and a worker's DEALER socket (Locust's ``locust.rpc.zmqrpc``
``Server`` and ``Client``), each served by an OS thread of its own.

Locust runs its sockets in the same gevent loop as the users, so a worker whose users keep that loop
busy sends its heartbeats late and is marked missing (Locust issues #1843, #3065). Here the socket
belongs to a real thread that sends what the gevent side queues, runs periodic jobs (heartbeats,
stats reports) and may answer messages itself (heartbeats), whatever the users do; every other
message is handed to the gevent loop, where ``recv()`` returns it to a greenlet, as in Locust.

Only the thread touches the socket (ZeroMQ sockets are not thread-safe). The thread needs the GIL
for its Python work; CPython hands it over every few milliseconds even while user code spins.
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
    """A ZeroMQ socket and the thread that serves it.

    Args:
        sock_type: ``zmq.ROUTER`` (master) or ``zmq.DEALER`` (worker).
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
        self._router = sock_type == zmq.ROUTER
        self._outbox: deque[list[bytes]] = deque()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._jobs: list[list[Any]] = []  # [interval, next due (monotonic), function]
        self._handlers: list[Callable[[str | None, Message], bool]] = []
        self._raw_handlers: list[Callable[[str | None, bytes], Any]] = []
        self._replies: list[list[bytes]] = []
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

    def handle_raw_in_thread(self, handler: Callable[[str | None, bytes], Any]) -> None:
        """Offers each received message's bytes to ``handler(addr, payload)`` on the socket's
        thread before they are decoded: True means it handled the message; a Message it returns
        goes to ``recv()`` in place of the decoded one; ``RPCReceiveError`` it raises goes there as
        the error; None passes it on."""
        self._raw_handlers.append(handler)

    def reply_now(self, frames: list[bytes]) -> None:
        """Sends from the socket's thread (from a handler) without the queue or a wake-up: right
        after the batch of messages being handled, all replies together, which ZeroMQ's I/O
        thread takes in one go instead of being woken for each. A peer that cannot take it then
        misses it (a heartbeat answer comes again a second later)."""
        self._replies.append(frames)

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

    def send_to_client(self, msg: Message) -> None:
        """Queues a message to the worker ``msg.node_id`` (master side); returns at once."""
        self._queue([msg.node_id.encode(), msg.serialize()])

    def recv(self) -> Message:
        """The next message from the peer (waits cooperatively)."""
        return self._next()[1]

    def recv_from_client(self) -> tuple[str, Message]:
        """The next message from any worker and that worker's id (waits cooperatively).

        Raises:
            RPCReceiveError: The frames could not be decoded; ``addr`` names the sender if known.
        """
        addr, msg = self._next()
        return addr or "", msg

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
                if self._router:
                    self._outbox.popleft()  # a worker that went away: ROUTER cannot queue for it
                    continue
                return  # the master is not reachable yet: DEALER keeps the rest for later
            except zmq.ZMQError as e:
                logger.error("Sending a message failed: %s", e)
            self._outbox.popleft()

    def _receive_all(self) -> None:
        sock = self.socket
        recv = sock.recv
        get: Callable[[int], int] = sock.get  # type: ignore[assignment]  # int options give ints
        try:
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
        finally:
            self._send_replies()

    def _send_replies(self) -> None:
        replies, self._replies = self._replies, []
        if self._closing:
            return
        for frames in replies:
            try:
                self._send_frames(frames)
            except zmq.ZMQError:
                pass

    def _on_frames(self, frames: list[bytes]) -> None:
        addr: str | None = None
        if self._router:
            if len(frames) != 2:
                self._inbox.append(RPCReceiveError(f"a message of {len(frames)} frames"))
                self._async.send()
                return
            try:
                addr = frames[0].decode()
            except UnicodeDecodeError:
                self._inbox.append(RPCReceiveError("ZMQ interrupted or corrupted message"))
                self._async.send()
                return
        payload = frames[-1]
        for raw_handler in self._raw_handlers:
            try:
                handled = raw_handler(addr, payload)
            except RPCReceiveError as e:
                self._inbox.append(e)
                self._async.send()
                return
            except Exception:
                logger.error("Handling a message on the messaging thread failed:\n%s", traceback.format_exc())
                return
            if handled is True:
                return
            if handled is not None:
                self.deliver(handled, addr)
                return
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


class Server(BaseSocket):
    """The master's ROUTER socket, bound to ``host:port`` (port 0: a free port, see ``port``)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(zmq.ROUTER, self.ipv4_only(host, port))
        try:
            if port == 0:
                self.port = self.socket.bind_to_random_port(f"tcp://{host}")
            else:
                self.socket.bind(f"tcp://{host}:{port}")
                self.port = port
        except zmq.ZMQError as e:
            self.close(linger=0)
            raise RPCError(f"Socket bind failure: {e}") from e


class Client(BaseSocket):
    """A worker's DEALER socket, connected to the master at ``host:port`` as ``identity``."""

    def __init__(self, host: str, port: int, identity: str) -> None:
        super().__init__(zmq.DEALER, self.ipv4_only(host, port))
        self.socket.setsockopt(zmq.IDENTITY, identity.encode())
        self.socket.connect(f"tcp://{host}:{port}")
