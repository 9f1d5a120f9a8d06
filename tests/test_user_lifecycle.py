"""User's life cycle as Locust defines it: on_start/on_stop, the control-flow exceptions, task
errors and user_error, graceful and forced stop, class attributes, and HttpUser's stats names."""

from __future__ import annotations

import gevent
import pytest
from gevent.pool import Group

from horde import _core
from horde.env import Environment
from horde.exception import (
    InterruptTaskSet,
    MissingWaitTimeError,
    RescheduleTask,
    RescheduleTaskImmediately,
    StopTest,
    StopUser,
)
from horde.user import HttpUser, User, task
from horde.user.task import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING, DefaultTaskSet
from horde.user.wait_time import constant


def run_to_end(user: User, timeout: float = 10.0) -> gevent.Greenlet:
    """Runs ``user.run()`` in a greenlet and waits (bounded) until it ends."""
    g = gevent.spawn(user.run)
    g.join(timeout)
    assert g.dead, "the user did not stop"
    return g


def rows(stats) -> dict:
    entries, _total, _errors, _ = _core.RequestStats.snapshot(stats)
    return {(e.method, e.name): e for e in entries}


@pytest.fixture
def env():
    environment = Environment()
    # As in Locust's own tests: the runner's listener on the request event logs into env.stats.
    environment.create_local_runner()
    return environment


def test_on_start_tasks_and_on_stop_run_in_order(env):
    calls = []

    class MyUser(User):
        def on_start(self):
            calls.append("on_start")

        def on_stop(self):
            calls.append("on_stop")

        @task
        def t(self):
            calls.append("t")
            if calls.count("t") == 3:
                raise StopUser()

    run_to_end(MyUser(env))
    assert calls == ["on_start", "t", "t", "t", "on_stop"]


def test_task_exception_fires_user_error_logs_and_waits_then_continues(env, caplog):
    errors, waits = [], []

    class MyUser(User):
        def wait_time(self):
            waits.append(len(errors))
            return 0

        @task
        def t(self):
            if len(errors) == 2:
                raise StopUser()
            raise ZeroDivisionError("boom")

    env.events.user_error.add_listener(
        lambda user_instance, exception, tb: errors.append((user_instance, exception, tb))
    )
    user = MyUser(env)
    run_to_end(user)
    assert [type(e) for _, e, _ in errors] == [ZeroDivisionError, ZeroDivisionError]
    # As in Locust, user_instance is the running TaskSet (the DefaultTaskSet for the user's own tasks).
    assert all(isinstance(u, DefaultTaskSet) and u.user is user for u, _, _ in errors)
    assert all(tb is not None for _, _, tb in errors)
    assert waits == [1, 2]  # a wait after each failed task
    assert caplog.text.count("ZeroDivisionError: boom") == 2


def test_task_exception_ends_the_user_when_exceptions_are_not_caught():
    env = Environment(catch_exceptions=False)
    errors = []
    env.events.user_error.add_listener(lambda **kw: errors.append(kw["exception"]))

    class MyUser(User):
        @task
        def t(self):
            raise KeyError("x")

    g = run_to_end(MyUser(env))
    assert isinstance(g.exception, KeyError)
    assert len(errors) == 1


def test_on_start_exception_fires_user_error_and_the_user_dies(env):
    errors, ran = [], []
    env.events.user_error.add_listener(lambda **kw: errors.append(kw))

    class MyUser(User):
        def on_start(self):
            raise ValueError("bad start")

        def on_stop(self):
            ran.append("on_stop")

        @task
        def t(self):
            ran.append("t")

    user = MyUser(env)
    g = run_to_end(user)
    assert isinstance(g.exception, ValueError)
    assert ran == []
    assert len(errors) == 1 and errors[0]["user_instance"] is user and isinstance(errors[0]["exception"], ValueError)


def test_stop_user_in_on_start_runs_on_stop(env):
    ran = []

    class MyUser(User):
        def on_start(self):
            raise StopUser()

        def on_stop(self):
            ran.append("on_stop")

        @task
        def t(self):
            ran.append("t")

    g = run_to_end(MyUser(env))
    assert g.successful() and ran == ["on_stop"]


def test_stop_test_in_a_task_stops_this_user_like_stop_user(env):
    ran = []

    class MyUser(User):
        def on_stop(self):
            ran.append("on_stop")

        @task
        def t(self):
            ran.append("t")
            raise StopTest()

    g = run_to_end(MyUser(env))
    assert g.successful() and ran == ["t", "on_stop"]


def test_reschedule_task_waits_and_reschedule_immediately_does_not(env):
    log = []

    class MyUser(User):
        def wait_time(self):
            log.append("wait")
            return 0

        @task
        def t(self):
            n = log.count("later") + log.count("now")
            if n == 0:
                log.append("later")
                raise RescheduleTask()
            if n == 1:
                log.append("now")
                raise RescheduleTaskImmediately()
            raise StopUser()

    run_to_end(MyUser(env))
    assert log == ["later", "wait", "now"]


def test_interrupt_at_the_top_level_is_an_error(env):
    stopped = []

    class MyUser(User):
        def on_stop(self):
            stopped.append(True)

        @task
        def t(self):
            raise InterruptTaskSet(reschedule=False)

    g = run_to_end(MyUser(env))
    # The user's own tasks have no parent to return to: the user dies, as in Locust.
    assert isinstance(g.exception, RescheduleTask)
    assert stopped == []


def test_missing_wait_time_raises(env):
    class MyUser(User):
        wait_time = None

        @task
        def t(self):
            pass

    ts = DefaultTaskSet(MyUser(env))
    with pytest.raises(MissingWaitTimeError, match="MyUser"):
        ts.wait_time()


def test_deprecated_min_wait_max_wait_are_milliseconds(env):
    class MyUser(User):
        wait_time = None
        min_wait = 100
        max_wait = 300

    ts = DefaultTaskSet(MyUser(env))
    for _ in range(50):
        assert 0.1 <= ts.wait_time() <= 0.3


def test_user_wait_inside_a_task(env):
    log = []

    class MyUser(User):
        wait_time = constant(0)

        @task
        def t(self):
            log.append(self._state)
            self.wait()
            log.append(self._state)
            raise StopUser()

    run_to_end(MyUser(env))
    assert log == [LOCUST_STATE_RUNNING, LOCUST_STATE_RUNNING]


def test_start_spawns_in_the_group_with_the_user_as_first_argument(env):
    class MyUser(User):
        @task
        def t(self):
            raise StopUser()

    group = Group()
    user = MyUser(env)
    g = user.start(group)
    assert user.greenlet is g and user.group is group and g.args[0] is user
    group.join(timeout=10)
    assert len(group) == 0


def test_graceful_stop_lets_the_task_finish(env):
    state = []
    release = gevent.event.Event()

    class MyUser(User):
        @task
        def t(self):
            state.append("started")
            release.wait(10)
            state.append("finished")

        def on_stop(self):
            state.append("on_stop")

    group = Group()
    user = MyUser(env)
    g = user.start(group)
    gevent.sleep(0)
    assert user._state == LOCUST_STATE_RUNNING
    assert user.stop(force=False) is False
    assert user._state == LOCUST_STATE_STOPPING
    release.set()
    g.join(10)
    assert g.dead and state == ["started", "finished", "on_stop"]


def test_stop_while_waiting_kills_at_once(env):
    state = []

    class MyUser(User):
        wait_time = constant(30)

        @task
        def t(self):
            state.append("t")

        def on_stop(self):
            state.append("on_stop")

    group = Group()
    user = MyUser(env)
    g = user.start(group)
    gevent.sleep(0)
    assert user._state == LOCUST_STATE_WAITING
    assert user.stop() is True
    assert g.dead and state == ["t", "on_stop"]


def test_forced_stop_interrupts_the_task(env):
    state = []

    class MyUser(User):
        @task
        def t(self):
            state.append("started")
            gevent.sleep(30)
            state.append("finished")

    group = Group()
    user = MyUser(env)
    g = user.start(group)
    gevent.sleep(0)
    assert user.stop(force=True) is True
    assert g.dead and state == ["started"]


def test_class_attributes_and_json():
    class Base(User):
        abstract = True
        weight = 3

    class A(Base):
        fixed_count = 2
        host = "http://example.invalid"

        @task(2)
        def one(self):
            pass

        @task
        def two(self):
            pass

    assert User.abstract and Base.abstract and not A.abstract
    assert A.weight == 3 and A.fixed_count == 2
    assert A.tasks == [A.one, A.one, A.two]
    assert A.json() == {"host": "http://example.invalid", "weight": 3, "fixed_count": 2, "tasks": ["one", "one", "two"]}
    assert A.fullname() == f"{__name__}.test_class_attributes_and_json.A"  # "<locals>" dropped


def test_tasks_attribute_forms():
    def a(user):
        pass

    def b(user):
        pass

    class ListUser(User):
        tasks = [a, b]

    class DictUser(User):
        tasks = {a: 1, b: 3}

    class PairUser(User):
        tasks = [(a, 2), (b, 1)]

    class SubUser(ListUser):
        @task
        def c(self):
            pass

    assert ListUser.tasks == [a, b]
    assert DictUser.tasks == [a, b, b, b]
    assert PairUser.tasks == [a, a, b]
    assert SubUser.tasks == [a, b, SubUser.c]


def test_task_named_run_is_refused():
    with pytest.raises(Exception, match="User.run"):

        class MyUser(User):
            @task
            def run(self):
                pass


def test_no_tasks_gives_a_clear_error(env):
    class Empty(User):
        pass

    with pytest.raises(Exception, match="No tasks defined on Empty"):
        DefaultTaskSet(Empty(env)).get_next_task()


def test_http_user_needs_a_host(env):
    class NoHost(HttpUser):
        pass

    with pytest.raises(StopTest, match="You must specify the base host"):
        NoHost(env)


def test_http_user_logs_requests_under_their_names(env, demo):
    seen = []

    class MyUser(HttpUser):
        host = demo.url

        def context(self):
            return {"user": "ann"}

        @task
        def t(self):
            self.client.get("/json")
            self.client.get("/delay/1", name="delay")
            self.client.get("/redirect/1")
            self.client.get("/status/500")
            with self.client.get("/status/404", catch_response=True) as r:
                r.success()
            raise StopUser()

    env.events.request.add_listener(lambda **kw: seen.append((kw["name"], kw["context"], kw["exception"])))
    run_to_end(MyUser(env))
    got = {k: (e.num_requests, e.num_failures) for k, e in rows(env.stats).items()}
    assert got == {
        ("GET", "/json"): (1, 0),
        ("GET", "delay"): (1, 0),
        ("GET", "/redirect/1"): (1, 0),
        ("GET", "/status/500"): (1, 1),
        ("GET", "/status/404"): (1, 0),
    }
    assert [name for name, _, _ in seen] == ["/json", "delay", "/redirect/1", "/status/500", "/status/404"]
    assert all(ctx == {"user": "ann"} for _, ctx, _ in seen)
    assert [exc is None for _, _, exc in seen] == [True, True, True, False, True]


def test_http_user_base_url_credentials(env, demo):
    class MyUser(HttpUser):
        host = demo.url.replace("http://", "http://u:p@")

    user = MyUser(env)
    assert user.client.get("/basic-auth/u/p").status_code == 200
    assert user.client.trust_env is False


def test_http_user_rest(env, demo):
    class MyUser(HttpUser):
        host = demo.url

    user = MyUser(env)
    with user.rest("POST", "/echo", json={"a": 1}) as r:
        assert r.js["json"] == {"a": 1}
        assert r.js["headers"]["accept"] == "application/json"
    with user.rest("GET", "/json") as r:
        assert r.js["nope"] == 1, "missing key,"  # KeyError -> failure with a short traceback
    with user.rest("GET", "/") as r:  # not JSON
        pass
    with user.rest("GET", "/json") as r:
        # (raised by hand: pytest rewrites the message of a plain assert in test modules)
        raise AssertionError("wanted something else,")
    with user.rest_("GET", "/echo?x=1") as r:
        assert r.js["args"]["x"] == "1" and "_" in r.js["args"]
    _, _, errors, _ = _core.RequestStats.snapshot(env.stats)
    by_name = {(e[1], e[2].split("(")[0]) for e in errors}
    assert ("/json", "CatchResponseError") in by_name
    assert ("/", "CatchResponseError") in by_name
    texts = " ".join(e[2] for e in errors)
    assert "KeyError: " in texts and "nope" in texts and "in test_http_user_rest" in texts
    assert "Could not parse response as JSON" in texts
    assert "wanted something else, response was {" in texts
    assert ("GET", "/echo?x=1&_=...") in rows(env.stats)


def test_stop_before_the_user_ran_kills_it(env):
    ran = []

    class MyUser(User):
        @task
        def t(self):
            ran.append("t")

    group = Group()
    user = MyUser(env)
    g = user.start(group)
    assert user._state is None  # the greenlet has not run yet
    assert user.stop() is True
    assert g.dead and ran == []
