"""Hand-made servers for the fault tests: each misbehaves in one way that a real server cannot be
asked to (malformed chunk sizes, a close in mid-body, an accept queue that never drains). Plain
sockets and threads on 127.0.0.1, so the client under test meets the bytes exactly as written."""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass


@dataclass
class Reply:
    """What a path answers: ``parts`` written one after another (a pause between them makes the
    client read them separately), then the connection closed if ``close``, or without notice
    after every ``close_every``-th request on it, or reset (RST) if ``reset``."""

    parts: list[bytes]
    close: bool = False
    pause: float = 0.0
    close_every: int = 0
    reset: bool = False


def reply(*parts: bytes, close: bool = False, pause: float = 0.0, close_every: int = 0, reset: bool = False) -> Reply:
    return Reply(list(parts), close, pause, close_every, reset)


@dataclass
class RawServer:
    """Answers each request by its path from ``routes``; unknown paths get a 404. Keeps
    connections open between requests unless the reply closes them; ``connections`` counts the
    connections accepted."""

    routes: dict[str, Reply]

    def __post_init__(self) -> None:
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        served = 0
        try:
            while True:
                head, pending = _read_request(conn, pending)
                if head is None:
                    return
                path = head.split(b" ", 2)[1].decode("latin-1").split("?")[0]
                route = self.routes.get(path) or reply(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                for i, part in enumerate(route.parts):
                    if i and route.pause:
                        time.sleep(route.pause)
                    conn.sendall(part)
                served += 1
                if route.reset:
                    # A zero linger time makes close() send RST instead of FIN.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if route.close or (route.close_every and served % route.close_every == 0):
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()
        with self._lock:
            for conn in list(self._open):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _read_request(conn: socket.socket, pending: bytes) -> tuple[bytes | None, bytes]:
    """One request head (its body, if any, read and dropped) and what followed it, or None at the
    end of the connection."""
    while b"\r\n\r\n" not in pending:
        data = conn.recv(65536)
        if not data:
            return None, b""
        pending += data
    head, _, rest = pending.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            return None, b""
        rest += data
    return head, rest[length:]


class FullAcceptQueue:
    """A port whose listening socket never accepts and whose accept queue is full: the kernel
    drops further SYNs, so connecting hangs until the client's connect timeout."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        # Linux queues backlog + 1 connections; with 0 the first connection fills it.
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._fillers: list[socket.socket] = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass  # in progress: its SYN is what fills (or is dropped by) the queue
            self._fillers.append(s)
        self._wait_until_full()

    def _wait_until_full(self) -> None:
        # A probe that cannot connect within a moment shows that the queue drops SYNs; one that
        # connects took a place in the queue and is kept as a filler.
        for _ in range(50):
            probe = socket.socket()
            probe.settimeout(0.2)
            try:
                probe.connect(("127.0.0.1", self.port))
            except TimeoutError:
                probe.close()
                return
            self._fillers.append(probe)
        raise RuntimeError("the accept queue did not fill")

    def stop(self) -> None:
        for s in self._fillers:
            s.close()
        self._listener.close()

    def __enter__(self) -> FullAcceptQueue:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
