"""run_single_user: one user in the foreground, one printed line per request, host from the
command line's sources (LOCUST_HOST), init/test_start fired."""

from __future__ import annotations

import sys

import pytest

import horde
from horde import debug
from horde.event import Events
from horde.exception import StopUser
from horde.user import HttpUser, task


@pytest.fixture
def fresh_debug(monkeypatch):
    """A clean slate: no Environment from an earlier call, private global events, a bare argv."""
    monkeypatch.setattr(debug, "_env", None)
    monkeypatch.setattr(horde, "events", Events(), raising=False)
    monkeypatch.setattr(sys, "argv", ["locustfile.py"])
    yield
    monkeypatch.setattr(debug, "_env", None)


def test_prints_each_request_and_fires_init_and_test_start(fresh_debug, monkeypatch, demo, capsys):
    fired = []
    horde.events.init.add_listener(lambda environment, **kw: fired.append("init"))
    horde.events.test_start.add_listener(lambda environment, **kw: fired.append("test_start"))
    monkeypatch.setenv("LOCUST_HOST", demo.url)

    class MyUser(HttpUser):
        @task
        def t(self):
            self.client.get("/json")
            self.client.get("/status/404", name="missing")
            with self.client.get("/json", catch_response=True) as r:
                r.failure("not what I wanted")
            raise StopUser()

    debug.run_single_user(MyUser, include_length=True, loglevel=None)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ""
    assert out[1].split("\t")[:4] == ["type", "name".ljust(50), "resp_ms", "length"]
    lines = [line.split("\t") for line in out[2:]]
    assert [(cells[0], cells[1].strip()) for cells in lines] == [("GET", "/json"), ("GET", "missing"), ("GET", "/json")]
    assert all(int(cells[2]) >= 0 for cells in lines)
    assert int(lines[0][3]) > 0  # response length
    assert lines[0][4].strip() == ""
    assert "404 Client Error" in lines[1][4]
    assert lines[2][4].strip() == "not what I wanted"
    assert fired == ["init", "test_start"]
    assert MyUser.host == demo.url
    assert isinstance(debug._env.single_user_instance, MyUser)


def test_second_call_reuses_the_environment(fresh_debug, demo, capsys):
    class MyUser(HttpUser):
        host = demo.url

        @task
        def t(self):
            self.client.get("/")
            raise StopUser()

    debug.run_single_user(MyUser, include_context=True, include_payload=True, loglevel=None)
    first_env = debug._env
    debug.run_single_user(MyUser, loglevel=None)
    assert debug._env is first_env
    out = capsys.readouterr().out.splitlines()
    assert sum(1 for line in out if line.startswith("type\t")) == 1  # one header
    assert sum(1 for line in out if line.startswith("GET\t")) == 2
