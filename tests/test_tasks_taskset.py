"""TaskSet semantics: weighted picking, nested TaskSets and interrupt, schedule_task, on_start/on_stop,
wait_time delegation, and tag filtering."""

from __future__ import annotations

import random
from collections import Counter

import gevent
import pytest

from horde.env import Environment
from horde.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopUser
from horde.user import TaskSet, User, tag, task
from horde.user.sequential_taskset import SequentialTaskSet
from horde.user.task import filter_tasks_by_tags
from horde.user.wait_time import constant


def run_to_end(user: User, timeout: float = 10.0) -> gevent.Greenlet:
    g = gevent.spawn(user.run)
    g.join(timeout)
    assert g.dead, "the user did not stop"
    return g


@pytest.fixture
def env():
    return Environment()


@pytest.fixture
def seeded():
    state = random.getstate()
    random.seed(1234)
    yield
    random.setstate(state)


def test_weights_set_the_ratio_of_calls(env, seeded):
    counts: Counter[str] = Counter()
    total = 4000

    class MyUser(User):
        @task(1)
        def light(self):
            self.count("light")

        @task(3)
        def heavy(self):
            self.count("heavy")

        def count(self, name):
            counts[name] += 1
            if sum(counts.values()) >= total:
                raise StopUser()

    run_to_end(MyUser(env))
    assert sum(counts.values()) == total
    # Expected 0.75; the standard deviation over 4000 draws is about 0.007.
    assert 0.72 < counts["heavy"] / total < 0.78


def test_dict_weights_on_a_taskset(env, seeded):
    counts: Counter[str] = Counter()

    def a(ts):
        counts["a"] += 1

    def b(ts):
        counts["b"] += 1
        if sum(counts.values()) >= 2000:
            raise StopUser()

    class Weighted(TaskSet):
        tasks = {a: 4, b: 1}

    class MyUser(User):
        tasks = [Weighted]

    run_to_end(MyUser(env))
    assert 0.76 < counts["a"] / sum(counts.values()) < 0.84


def test_nested_taskset_runs_until_interrupted(env):
    log = []

    class Inner(TaskSet):
        def on_start(self):
            log.append("inner start")

        @task
        def work(self):
            log.append("inner work")
            if log.count("inner work") % 2 == 0:
                self.interrupt()

        def on_stop(self):
            log.append("inner stop")

    class Outer(TaskSet):
        rounds = 0

        def get_next_task(self):
            self.rounds += 1
            return Inner if self.rounds <= 2 else self.enough

        def enough(self):
            raise StopUser()

    class MyUser(User):
        tasks = [Outer]

        def on_stop(self):
            log.append("user stop")

    run_to_end(MyUser(env))
    one_round = ["inner start", "inner work", "inner work", "inner stop"]
    assert log == one_round * 2 + ["user stop"]


def test_interrupt_reschedule_decides_whether_the_parent_waits(env):
    class Inner(TaskSet):
        @task
        def t(self):
            self.interrupt(reschedule=self.user.reschedule)

    class MyUser(User):
        reschedule = True

    user = MyUser(env)
    user.reschedule = True
    with pytest.raises(RescheduleTaskImmediately):
        Inner(user).run()
    user.reschedule = False
    with pytest.raises(RescheduleTask):
        Inner(user).run()


def test_interrupt_in_on_start_leaves_at_once(env):
    ran = []

    class Leaves(TaskSet):
        def on_start(self):
            self.interrupt(reschedule=False)

        @task
        def t(self):
            ran.append("t")

    class MyUser(User):
        tasks = [Leaves]

    user = MyUser(env)
    with pytest.raises(RescheduleTask):
        Leaves(user).run()
    assert ran == []


def test_interrupt_inside_catch_response_block_leaves_the_request_unreported(env, demo):
    from horde.user import HttpUser

    class Inner(TaskSet):
        @task
        def t(self):
            with self.client.get("/", catch_response=True):
                raise InterruptTaskSet()

    class MyUser(HttpUser):
        host = demo.url
        tasks = [Inner]

    seen = []
    env.events.request.add_listener(lambda **kw: seen.append(kw))
    with pytest.raises(InterruptTaskSet):
        Inner(MyUser(env)).t()
    assert seen == []


def test_parent_user_and_client_shortcuts(env):
    parents = {}

    class Sub(TaskSet):
        def on_start(self):
            parents["sub"] = self.parent

        @task
        class SubSub(TaskSet):
            def on_start(self):
                parents["subsub"] = self.parent
                parents["user"] = self.user
                parents["client"] = self.client

            @task
            def stop(self):
                raise StopUser()

    class Root(TaskSet):
        tasks = [Sub]

    class MyUser(User):
        tasks = [Root]

    user = MyUser(env)
    user.client = object()
    run_to_end(user)
    assert isinstance(parents["sub"], Root)
    assert isinstance(parents["subsub"], Sub)
    assert parents["user"] is user and parents["client"] is user.client


def test_user_property_is_read_only(env):
    class MyUser(User):
        pass

    class Ts(TaskSet):
        pass

    ts = Ts(MyUser(env))
    with pytest.raises(AttributeError):
        ts.user = "someone else"


def test_schedule_task_runs_queued_tasks_first(env):
    log = []

    def free(ts, arg="default"):
        log.append(("free", arg))

    class Ts(TaskSet):
        @task
        def t1(self):
            log.append("t1")
            self.schedule_task(self.t2)

        def t2(self):
            log.append("t2")

    class MyUser(User):
        pass

    ts = Ts(MyUser(env))
    ts.schedule_task(ts.get_next_task())
    ts.execute_next_task()
    ts.execute_next_task()
    ts.schedule_task(free)
    ts.execute_next_task()
    assert log == ["t1", "t2", ("free", "default")]


def test_taskset_on_stop_runs_when_the_user_stops(env):
    log = []

    class Ts(TaskSet):
        @task
        def t(self):
            log.append("t")
            raise StopUser()

        def on_stop(self):
            log.append("ts stop")

    class MyUser(User):
        tasks = [Ts]

        def on_stop(self):
            log.append("user stop")

    run_to_end(MyUser(env))
    assert log == ["t", "ts stop", "user stop"]


def test_taskset_wait_time_overrides_the_users(env):
    class MyUser(User):
        wait_time = constant(5)

    class Own(TaskSet):
        wait_time = constant(0.5)

    class Inherits(TaskSet):
        pass

    class Method(TaskSet):
        def wait_time(self):
            return 2

    user = MyUser(env)
    assert Own(user).wait_time() == 0.5
    assert Inherits(user).wait_time() == 5
    assert Method(user).wait_time() == 2


def test_taskset_inheritance_collects_tasks():
    def t1(ts):
        pass

    class Base(TaskSet):
        tasks = [t1]

    class Sub(Base):
        @task
        def t2(self):
            pass

    assert Sub.tasks == [t1, Sub.t2]


def test_no_tasks_on_a_taskset(env):
    class MyUser(User):
        pass

    class Empty(TaskSet):
        task = "oops"

    with pytest.raises(Exception, match="maybe you meant to set 'tasks'"):
        Empty(MyUser(env)).get_next_task()


def test_tag_filtering_keeps_and_drops_tasks():
    class Nested(TaskSet):
        @tag("b")
        @task
        def nested_b(self):
            pass

        @task
        def nested_plain(self):
            pass

    @tag("c")
    class TaggedSet(TaskSet):
        @task
        def inner(self):
            pass

    class MyUser(User):
        tasks = [Nested, TaggedSet]

        @tag("a")
        @task
        def only_a(self):
            pass

        @tag("a", "b")
        @task
        def a_and_b(self):
            pass

        @task
        def untagged(self):
            pass

    assert MyUser.only_a.locust_tag_set == {"a"}
    assert TaggedSet.inner.locust_tag_set == {"c"}

    filter_tasks_by_tags(MyUser, tags={"b"})
    names = {t.__name__ for t in MyUser.tasks}
    assert names == {"Nested", "a_and_b"}
    assert [t.__name__ for t in Nested.tasks] == ["nested_b"]


def test_exclude_tags():
    class MyUser(User):
        @tag("slow")
        @task
        def slow(self):
            pass

        @task
        def fast(self):
            pass

    filter_tasks_by_tags(MyUser, exclude_tags={"slow"})
    assert [t.__name__ for t in MyUser.tasks] == ["fast"]


def test_environment_filters_by_its_tags():
    class MyUser(User):
        @tag("x")
        @task
        def x(self):
            pass

        @task
        def y(self):
            pass

    env = Environment(user_classes=[MyUser], tags=["x"])
    env._filter_tasks_by_tags()
    assert [t.__name__ for t in MyUser.tasks] == ["x"]


def test_tag_needs_a_name():
    with pytest.raises(ValueError):

        @tag
        def f(self):
            pass


def test_sequential_taskset_is_a_taskset():
    assert issubclass(SequentialTaskSet, TaskSet)
