"""The web UI under bad input: ``/swarm`` forms with missing, wrongly typed, out-of-range or huge
fields get a clear JSON answer (Locust's ``success: false`` with a message, or a 4xx for what
the server refuses to read), traversal out of ``/assets`` is a 404, and the UI keeps working
after each: a real ``horde`` process, driven over HTTP."""

from __future__ import annotations

import pytest
from test_web_api import HordeUI, Reply, http_get, until

LOCUSTFILE = """
from locust import HttpUser, constant, task


class Quiet(HttpUser):
    wait_time = constant(0.2)

    @task
    def home(self):
        self.client.get("/")
"""


@pytest.fixture(scope="module")
def ui(demo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web_bad_input")
    locustfile = tmp / "bad_input_locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    server = HordeUI(tmp, "-f", str(locustfile), "-H", demo.url, "-u", "1", "-r", "1")
    yield server
    server.stop()


def _still_working(ui: HordeUI) -> None:
    """The page and the stats answer, and the process is alive."""
    assert ui.proc.poll() is None, ui.stderr()[-3000:]
    assert ui.get("/").status_code == 200
    report = ui.get("/stats/requests")
    assert report.status_code == 200
    assert report.json()["state"] in ("ready", "stopped", "running", "spawning")


def _refused(reply: Reply) -> str:
    """The message of a /swarm that started nothing: Locust's 200 with ``success: false``, or a
    4xx, in JSON either way."""
    assert reply.status_code == 200 or 400 <= reply.status_code < 500, (reply.status_code, reply.text[:500])
    body = reply.json()
    assert body["success"] is False, body
    assert isinstance(body["message"], str) and body["message"]
    return body["message"]


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({}, "Missing or invalid user_count or spawn_rate"),
        ({"spawn_rate": "1"}, "Missing or invalid user_count or spawn_rate"),
        ({"user_count": "1"}, "Missing or invalid user_count or spawn_rate"),
        ({"user_count": "abc", "spawn_rate": "1"}, "Invalid user_count value: 'abc'"),
        ({"user_count": "1.5", "spawn_rate": "1"}, "Invalid user_count value: '1.5'"),
        ({"user_count": "", "spawn_rate": "1"}, "Invalid user_count value: ''"),
        ({"user_count": "-3", "spawn_rate": "1"}, "Missing or invalid user_count or spawn_rate"),
        ({"user_count": "1", "spawn_rate": "-1"}, "Missing or invalid user_count or spawn_rate"),
        ({"user_count": "1", "spawn_rate": "0"}, "Missing or invalid user_count or spawn_rate"),
        ({"user_count": "1", "spawn_rate": "nan"}, "Missing or invalid user_count or spawn_rate"),
        ({"user_count": "1", "spawn_rate": "inf"}, "Missing or invalid user_count or spawn_rate"),
        ({"user_count": "1", "spawn_rate": "fast"}, "Invalid spawn_rate value: 'fast'"),
        ({"user_count": "1", "spawn_rate": "1", "run_time": "soon"}, "Valid run_time formats are"),
        ({"user_count": "1", "spawn_rate": "1", "arrival_rate": "-2"}, "Invalid arrival_rate value: '-2'"),
        ({"user_count": "1", "spawn_rate": "1", "arrival_rate": "5", "max_users": "0"}, "Invalid max_users"),
        ({"user_count": "1", "spawn_rate": "1", "arrival_distribution": "weird"}, "Invalid arrival_distribution"),
    ],
)
def test_bad_swarm_forms_get_a_clear_message(ui, form, says):
    message = _refused(ui.post("/swarm", data=form))
    assert says in message, message
    assert ui.stats()["user_count"] == 0
    _still_working(ui)


def test_a_huge_user_count_is_refused_or_bounded(ui):
    # A number with a hundred digits: not a count of users anyone can run.
    reply = ui.post("/swarm", data={"user_count": "9" * 100, "spawn_rate": "1"})
    message = _refused(reply)
    assert "user_count" in message, message
    assert ui.stats()["user_count"] == 0
    _still_working(ui)


def test_a_one_megabyte_host_is_refused_and_the_ui_goes_on(ui):
    host = "http://" + "a" * (1 << 20)
    reply = ui.post("/swarm", data={"user_count": "1", "spawn_rate": "1", "host": host})
    # The form is larger than the server reads into memory: a 413 in JSON.
    assert reply.status_code == 413, reply.text[:500]
    assert reply.json()["success"] is False
    # The page does not carry the huge host back.
    page = ui.get("/")
    assert "a" * 1000 not in page.text
    _still_working(ui)


def test_json_or_garbage_bodies_instead_of_a_form(ui):
    for body, content_type in [
        ('{"user_count": 1, "spawn_rate": 1}', "application/json"),
        ("\xff\xfe garbage \x00", "application/x-www-form-urlencoded"),
        ("user_count=%ZZ&spawn_rate=%%", "application/x-www-form-urlencoded"),
    ]:
        reply = ui.post("/swarm", data=body, headers={"Content-Type": content_type})
        _refused(reply)
    _still_working(ui)


@pytest.mark.parametrize(
    "path",
    [
        "/assets/../../etc/passwd",
        "/assets/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/assets/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/assets/%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/assets//etc/passwd",
        "/assets/%2fetc%2fpasswd",
        "/assets/..\\..\\etc\\passwd",
        "/assets/app.js%00.png",
        "/assets/../routes.py",
        "/assets/%2e%2e/templates/index.html",
    ],
)
def test_asset_paths_cannot_leave_the_asset_folders(ui, path):
    # http.client sends the path as written: no client-side normalisation of "..".
    reply = http_get(ui.url("") + path)
    assert reply.status_code == 404, (path, reply.status_code, reply.text[:300])
    assert "root:" not in reply.text
    _still_working(ui)


def test_a_valid_swarm_still_runs_after_the_bad_ones(ui):
    reply = ui.post("/swarm", data={"user_count": "2", "spawn_rate": "10"})
    assert reply.status_code == 200 and reply.json()["success"] is True, reply.text
    until(lambda: ui.stats()["user_count"] == 2, "2 users running")
    assert ui.get("/assets/app.js").status_code == 200
    assert ui.post("/stop").status_code == 200
    until(lambda: ui.stats()["state"] == "stopped", "the test stopped")
    _still_working(ui)
