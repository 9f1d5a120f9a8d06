"""The local runner: Locust's spawn order and steps, events around a run, stopping."""

from __future__ import annotations

import itertools

import gevent
import pytest

from horde import User, constant, task
from horde.env import Environment
from horde.event import Events
from horde.runners import STATE_RUNNING, STATE_STOPPED, UsersDispatcher, kl_order


def test_kl_order_matches_locusts_dispatcher():
    # What Locust 2.47.0's dispatcher yields for these weights (its docstring's example is off by one).
    assert "".join(itertools.islice(kl_order([("A", 5), ("B", 1)]), 12)) == "AABAAAAABAAA"
    assert "".join(itertools.islice(kl_order([("A", 3), ("B", 2), ("C", 1)]), 12)) == "ABCABAABCABA"


def _user(name: str, **attrs):
    attrs.setdefault("wait_time", constant(0.01))
    return type(name, (User,), {**attrs, "t": task(lambda self: None)})


def test_fixed_count_first_then_weights():
    fixed, heavy, light = _user("Fixed", fixed_count=2), _user("Heavy", weight=3), _user("Light", weight=1)
    d = UsersDispatcher([fixed, heavy, light])
    *_, final = d.steps(6, 100)
    assert final == {"Fixed": 2, "Heavy": 3, "Light": 1}


def test_ramp_goes_in_steps_of_the_spawn_rate_and_back_down():
    d = UsersDispatcher([_user("A"), _user("B")])
    assert [sum(c.values()) for c in d.steps(10, 3)] == [3, 6, 9, 10]
    assert d.step_interval == pytest.approx(1.0)
    assert [sum(c.values()) for c in d.steps(4, 3)] == [7, 4]
    assert [sum(c.values()) for c in d.steps(4, 3)] == [4]


def test_a_run_fires_locusts_events_and_stops_cleanly():
    events = Events()
    seen: list[str] = []
    for name in ("test_start", "spawning_complete", "test_stopping", "test_stop"):
        getattr(events, name).add_listener(lambda _n=name, **kw: seen.append(_n))
    a, b = _user("A", weight=1), _user("B", weight=1)
    env = Environment(user_classes=[a, b], events=events)
    runner = env.create_local_runner()
    runner.start(6, 100)
    for _ in range(100):
        if runner.state == STATE_RUNNING:
            break
        gevent.sleep(0.02)
    assert runner.user_count == 6
    assert runner.user_classes_count == {"A": 3, "B": 3}
    runner.stop()
    assert runner.state == STATE_STOPPED and runner.user_count == 0
    assert seen == ["test_start", "spawning_complete", "test_stopping", "test_stop"]
    runner.quit()
