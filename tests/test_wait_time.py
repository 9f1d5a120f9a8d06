"""Wait time functions: ranges, pacing arithmetic (with a fake clock, so no timing is asserted),
and how User and TaskSet pick them up."""

from __future__ import annotations

import random

import pytest

from horde.env import Environment
from horde.user import TaskSet, User
from horde.user import wait_time as wait_time_module
from horde.user.wait_time import between, constant, constant_pacing, constant_throughput, poisson


@pytest.fixture
def env():
    return Environment()


@pytest.fixture
def clock(monkeypatch):
    """A fake perf_counter for the wait time module: ``clock.now`` is the time."""

    class Clock:
        now = 1000.0

    monkeypatch.setattr(wait_time_module.time, "perf_counter", lambda: Clock.now)
    return Clock


def test_between_stays_in_range(env):
    class MyUser(User):
        wait_time = between(3, 9)

    class Own(TaskSet):
        wait_time = between(20.0, 21.0)

    user = MyUser(env)
    values = [user.wait_time() for _ in range(200)]
    assert all(3 <= v <= 9 for v in values) and len(set(values)) > 1
    assert all(20 <= Own(user).wait_time() <= 21 for _ in range(50))


def test_constant_and_default(env):
    class Fixed(User):
        wait_time = constant(13)

    class Default(User):
        pass

    class Ts(TaskSet):
        pass

    assert Fixed(env).wait_time() == 13
    assert Ts(Fixed(env)).wait_time() == 13
    assert Default(env).wait_time() == 0


def test_constant_pacing_subtracts_the_task_time(clock):
    class Holder:
        pass

    pace = constant_pacing(10)
    user = Holder()
    user._cp_last_run, user._cp_last_wait_time = clock.now, 0
    clock.now += 3  # the task took 3 s
    assert pace(user) == pytest.approx(7)
    clock.now += 7  # the wait
    clock.now += 12  # a task longer than the pace
    assert pace(user) == 0
    clock.now += 4
    assert pace(user) == pytest.approx(6)


def test_constant_pacing_keeps_state_per_instance(env, clock):
    class MyUser(User):
        wait_time = constant_pacing(5)

    a, b = MyUser(env), MyUser(env)
    clock.now += 2
    assert a.wait_time() == pytest.approx(3)
    clock.now += 1
    assert b.wait_time() == pytest.approx(2)


def test_constant_throughput_is_the_inverse_of_pacing(clock):
    class Holder:
        pass

    user = Holder()
    user._cp_last_run, user._cp_last_wait_time = clock.now, 0
    clock.now += 0.1
    assert constant_throughput(2)(user) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        constant_throughput(0)


def test_poisson_has_the_right_mean():
    state = random.getstate()
    random.seed(7)
    try:
        draws = [poisson(4)(None) for _ in range(20000)]
    finally:
        random.setstate(state)
    assert all(d >= 0 for d in draws)
    # Mean 1/4; the standard error over 20000 draws is under 0.002.
    assert sum(draws) / len(draws) == pytest.approx(0.25, abs=0.01)
    with pytest.raises(ValueError):
        poisson(0)


def test_wait_functions_are_exported_from_horde():
    import horde

    assert horde.between is between and horde.poisson is poisson
    assert horde.wait_time is wait_time_module


def test_a_zero_wait_yields_on_every_iteration_while_others_send_requests(demo):
    # Locust's constant(0) yields to the other users after every task (gevent.sleep(0)). A user
    # whose tasks send no request must do so on every iteration even while other users' requests
    # keep the thread's request count moving: two such users then take strict turns.
    import gevent

    from horde import HttpUser, task

    order: list[str] = []

    def spinner(label: str) -> type:
        class Spinner(User):
            wait_time = constant(0)

            @task
            def spin(self):
                order.append(label)

        Spinner.__name__ = f"Spinner{label}"
        return Spinner

    class Requester(HttpUser):
        host = demo.url
        wait_time = constant(0)

        @task
        def get(self):
            self.client.get("/")

    env = Environment()
    env.create_local_runner()
    users = [cls(env) for cls in (spinner("A"), spinner("B"), Requester, Requester)]
    greenlets = [gevent.spawn(u.run) for u in users]

    def spins() -> str:
        return "".join(order[order.index("B") :]) if "B" in order else ""

    # Until 50 turns were taken (bounded): how long that takes depends on the machine's load.
    for _ in range(400):
        if len(spins()) > 50:
            break
        gevent.sleep(0.05)
    gevent.killall(greenlets)
    # Once both spinners run, neither runs twice in a row: each yields on every iteration.
    spins = spins()
    assert len(spins) > 50
    assert "AA" not in spins and "BB" not in spins, spins[:200]
