"""Shared fixtures: horde's demo target (plain and TLS) and httpbin under gunicorn, all on
127.0.0.1, started once per test session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from horde import DemoServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture(scope="session")
def demo():
    """horde's demo target on 127.0.0.1 (a DemoServer; ``demo.url`` is its base URL)."""
    server = DemoServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def demo_tls(tmp_path_factory):
    """The demo target over HTTPS with a self-signed certificate; ``cert_file`` is its PEM."""
    server = DemoServer(tls=True)
    cert = tmp_path_factory.mktemp("tls") / "demo-cert.pem"
    cert.write_text(server.cert_pem)
    yield SimpleNamespace(url=server.url, cert_file=str(cert), server=server)
    server.stop()


@pytest.fixture(scope="session")
def httpbin(tmp_path_factory) -> str:
    """httpbin (an independent server) under gunicorn on 127.0.0.1; yields its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("httpbin") / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "-k", "gevent", "httpbin:app"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    try:
        wait_for_port(port, proc)
    except RuntimeError as e:
        proc.kill()
        raise RuntimeError(f"httpbin did not start: {e}\n{Path(log).read_text()}") from e
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"
