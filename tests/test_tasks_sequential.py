"""SequentialTaskSet: declaration order (tasks list and @task methods interleaved), weights as
repeats, inheritance, cycling, and the empty case."""

from __future__ import annotations

import pytest

from horde.env import Environment
from horde.exception import LocustError, RescheduleTask
from horde.user import User, task
from horde.user.sequential_taskset import SequentialTaskSet


@pytest.fixture
def user():
    return User(Environment())


def test_list_order_and_cycling(user):
    log = []

    def t1(ts):
        log.append(1)

    def t2(ts):
        log.append(2)

    def t3(ts):
        log.append(3)
        if log.count(3) == 2:
            ts.interrupt(reschedule=False)

    class Seq(SequentialTaskSet):
        tasks = [t1, t2, t3]

    with pytest.raises(RescheduleTask):
        Seq(user).run()
    assert log == [1, 2, 3, 1, 2, 3]


def test_dict_weights_repeat_in_place(user):
    log = []

    def a(ts):
        log.append("a")

    def b(ts):
        log.append("b")
        ts.interrupt(reschedule=False)

    class Seq(SequentialTaskSet):
        tasks = {a: 3, b: 1}

    with pytest.raises(RescheduleTask):
        Seq(user).run()
    assert log == ["a", "a", "a", "b"]


def test_methods_and_list_interleave_by_declaration(user):
    log = []

    def listed(ts):
        log.append("listed")

    class Seq(SequentialTaskSet):
        @task
        def first(self):
            log.append("first")

        tasks = [listed]

        @task(2)
        def second(self):
            log.append("second")

        @task
        def last(self):
            log.append("last")
            self.interrupt(reschedule=False)

    with pytest.raises(RescheduleTask):
        Seq(user).run()
    assert log == ["first", "listed", "second", "second", "last"]


def test_subclass_runs_base_tasks_first(user):
    log = []

    class Base(SequentialTaskSet):
        @task
        def base(self):
            log.append("base")

    class Sub(Base):
        @task
        def sub(self):
            log.append("sub")
            self.interrupt(reschedule=False)

    with pytest.raises(RescheduleTask):
        Sub(user).run()
    assert log == ["base", "sub"]


def test_tasks_must_be_a_list_or_dict():
    with pytest.raises(ValueError, match="list or dict"):

        class Bad(SequentialTaskSet):
            tasks = (lambda ts: None,)


def test_no_tasks(user):
    class Empty(SequentialTaskSet):
        pass

    with pytest.raises(LocustError, match="No tasks defined"):
        Empty(user).get_next_task()
