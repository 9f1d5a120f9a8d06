"""LoadTestShape: abstract base, run time, user count from the runner; and the task ratio report
(inspectuser) that --show-task-ratio and the web UI use."""

from __future__ import annotations

import json
import time

import pytest

from horde.shape import LoadTestShape
from horde.user import TaskSet, User, task
from horde.user.inspectuser import get_ratio, print_task_ratio, print_task_ratio_json


class Steps(LoadTestShape):
    def tick(self):
        run_time = self.get_run_time()
        return None if run_time > 60 else (10, 2)


def test_abstract_flag_and_abc():
    assert LoadTestShape.abstract is True
    assert Steps.abstract is False
    assert Steps.use_common_options is False
    with pytest.raises(TypeError):
        LoadTestShape()


def test_run_time_and_reset(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    shape = Steps()
    now[0] = 130.0
    assert shape.get_run_time() == 30.0
    assert shape.tick() == (10, 2)
    now[0] = 200.0
    assert shape.tick() is None
    shape.reset_time()
    assert shape.get_run_time() == 0.0


def test_current_user_count_comes_from_the_runner():
    class FakeRunner:
        user_count = 7

    shape = Steps()
    shape.runner = FakeRunner()
    assert shape.get_current_user_count() == 7


class Browse(TaskSet):
    @task(3)
    def read(self):
        pass

    @task
    def stop(self):
        self.interrupt()


class Reader(User):
    weight = 3
    tasks = {Browse: 1}

    @task(3)
    def home(self):
        pass


class Writer(User):
    @task
    def write(self):
        pass


def test_get_ratio_per_class_and_total():
    per_class = get_ratio([Reader, Writer], {"Reader": 3, "Writer": 1}, False)
    assert per_class["Reader"]["ratio"] == 0.75
    assert per_class["Reader"]["tasks"]["home"]["ratio"] == 0.75
    assert per_class["Reader"]["tasks"]["Browse"]["ratio"] == 0.25
    assert per_class["Reader"]["tasks"]["Browse"]["tasks"] == {"read": {"ratio": 0.75}, "stop": {"ratio": 0.25}}
    total = get_ratio([Reader, Writer], {"Reader": 3, "Writer": 1}, True)
    assert total["Reader"]["tasks"]["home"]["ratio"] == pytest.approx(0.5625)
    assert total["Reader"]["tasks"]["Browse"]["tasks"]["read"]["ratio"] == pytest.approx(0.75 * 0.25 * 0.75)
    assert total["Writer"]["tasks"]["write"]["ratio"] == 0.25


def test_print_task_ratio(capsys):
    print_task_ratio([Reader, Writer], None, False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["75.0", "Reader"]
    assert [line.split() for line in lines[1:5]] == [
        ["25.0", "Browse"],
        ["75.0", "read"],
        ["25.0", "stop"],
        ["75.0", "home"],
    ]
    assert lines[1].startswith("   25.0") and lines[2].startswith("     75.0")  # two spaces per level
    assert lines[-1].split() == ["100.0", "write"]


def test_print_task_ratio_json_with_fixed_count(capsys):
    class Fixed(User):
        fixed_count = 1

        @task
        def t(self):
            pass

    print_task_ratio_json([Fixed, Writer], 5)
    data = json.loads(capsys.readouterr().out)
    assert data["per_class"]["Fixed"]["ratio"] == 0.2
    assert data["total"]["Writer"]["tasks"]["write"]["ratio"] == 0.8
