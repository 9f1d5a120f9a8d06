"""The local runner: Locust's spawn order and steps, events around a run, stopping."""

from __future__ import annotations

import gevent

from horde import User, constant, task
from horde.dispatch import UsersDispatcher
from horde.env import Environment
from horde.event import Events
from horde.runners import STATE_RUNNING, STATE_STOPPED, WorkerNode


def _user(name: str, **attrs):
    attrs.setdefault("wait_time", constant(0.01))
    return type(name, (User,), {**attrs, "t": task(lambda self: None)})


def _local_steps(dispatcher: UsersDispatcher, target: int, rate: float) -> list[dict[str, int]]:
    # The local runner's dispatcher has one worker node, "local"; pauses are skipped here.
    dispatcher._wait_between_dispatch = 0
    dispatcher.new_dispatch(target, rate)
    return [step["local"] for step in dispatcher]


def test_the_local_runner_spawns_in_locusts_order():
    # What Locust 2.47.0's dispatcher yields for weights 5 and 1 (its docstring's example is off by one).
    d = UsersDispatcher([WorkerNode("local")], [_user("A", weight=5), _user("B", weight=1)])
    order = []
    last = {"A": 0, "B": 0}
    for step in _local_steps(d, 12, 1):
        order += [name for name in step if step[name] > last[name]]
        last = step
    assert "".join(order) == "AABAAAAABAAA"


def test_fixed_count_first_then_weights():
    fixed, heavy, light = _user("Fixed", fixed_count=2), _user("Heavy", weight=3), _user("Light", weight=1)
    d = UsersDispatcher([WorkerNode("local")], [fixed, heavy, light])
    steps = _local_steps(d, 6, 100)
    assert steps[-1] == {"Fixed": 2, "Heavy": 3, "Light": 1}


def test_ramp_goes_in_steps_of_the_spawn_rate_and_back_down():
    d = UsersDispatcher([WorkerNode("local")], [_user("A"), _user("B")])
    assert [sum(c.values()) for c in _local_steps(d, 10, 3)] == [3, 6, 9, 10]
    assert [sum(c.values()) for c in _local_steps(d, 4, 3)] == [7, 4]


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
