"""A User with its own client: it times its work and fires the request event, as Locust's docs show
for non-HTTP protocols. Here the "protocol" is a raw socket speaking HTTP/1.0 to the target."""

import socket
import time
from urllib.parse import urlsplit

from locust import User, constant, task


class RawSocketClient:
    def __init__(self, host, request_event):
        parts = urlsplit(host)
        self.address = (parts.hostname, parts.port or 80)
        self.request_event = request_event

    def get(self, path):
        start = time.perf_counter()
        exception, length = None, 0
        try:
            with socket.create_connection(self.address, timeout=5) as sock:
                sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            length = len(data)
            if not data.startswith(b"HTTP/1.") or b" 200 " not in data.split(b"\r\n", 1)[0]:
                raise ValueError(f"unexpected answer: {data[:30]!r}")
        except Exception as e:
            exception = e
        self.request_event.fire(
            request_type="RAW",
            name=path,
            response_time=(time.perf_counter() - start) * 1000,
            response_length=length,
            exception=exception,
            context={},
        )


class RawUser(User):
    wait_time = constant(0.05)

    def __init__(self, environment):
        super().__init__(environment)
        self.client = RawSocketClient(self.host, environment.events.request)

    @task
    def raw_get(self):
        self.client.get("/")

    @task
    def raw_missing(self):
        self.client.get("/status/500")
