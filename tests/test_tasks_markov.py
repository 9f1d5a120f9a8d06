"""MarkovTaskSet: the walk follows the declared transitions with their weights, starting at the
first task declared; broken chains are refused when the class is created."""

from __future__ import annotations

import logging
import random
from collections import Counter

import pytest

from horde.env import Environment
from horde.exception import RescheduleTask
from horde.user import User, tag, task
from horde.user.markov_taskset import (
    InvalidTransitionError,
    MarkovTaskSet,
    MarkovTaskTagError,
    NoMarkovTasksError,
    NonMarkovTaskTransitionError,
    transition,
    transitions,
)
from horde.user.task import filter_tasks_by_tags


@pytest.fixture
def user():
    return User(Environment())


@pytest.fixture
def seeded():
    state = random.getstate()
    random.seed(99)
    yield
    random.setstate(state)


def test_deterministic_chain_starts_at_the_first_task(user):
    log = []

    class Chain(MarkovTaskSet):
        @transition("b")
        def a(self):
            log.append("a")

        @transition("c")
        def b(self):
            log.append("b")

        @transition("a")
        def c(self):
            log.append("c")
            if len(log) >= 9:
                self.interrupt(reschedule=False)

    assert Chain.current is Chain.__dict__["a"]
    with pytest.raises(RescheduleTask):
        Chain(user).run()
    assert log == ["a", "b", "c"] * 3


def test_weighted_transitions_follow_their_weights(user, seeded):
    moves: Counter[str] = Counter()

    class Chain(MarkovTaskSet):
        @transitions({"left": 1, "right": 3})
        def hub(self):
            pass

        @transition("hub")
        def left(self):
            moves["left"] += 1

        @transitions(["hub"])
        def right(self):
            moves["right"] += 1
            if sum(moves.values()) >= 2000:
                self.interrupt(reschedule=False)

    with pytest.raises(RescheduleTask):
        Chain(user).run()
    # 3 in 4 moves from the hub go right (standard deviation about 0.01 over 2000 moves).
    assert 0.71 < moves["right"] / sum(moves.values()) < 0.79


def test_transitions_list_with_pairs_and_names():
    class Chain(MarkovTaskSet):
        @transitions([("b", 2), "c"])
        def a(self):
            pass

        @transition("a")
        def b(self):
            pass

        @transition("a", weight=0)
        @transition("b")
        def c(self):
            pass

    assert sorted(Chain.a.transitions) == ["b", "b", "c"]
    assert Chain.c.transitions == ["b"]  # a weight of 0 removes the transition


def test_no_markov_tasks():
    with pytest.raises(NoMarkovTasksError, match="No Markov tasks defined in class Plain"):

        class Plain(MarkovTaskSet):
            @task
            def t(self):
                pass


def test_transition_to_a_missing_task():
    with pytest.raises(InvalidTransitionError, match="Transition to nowhere from a is invalid"):

        class Chain(MarkovTaskSet):
            @transition("nowhere")
            def a(self):
                pass


def test_transition_to_a_task_without_transitions():
    with pytest.raises(NonMarkovTaskTransitionError, match="Chain.plain cannot be used as a target"):

        class Chain(MarkovTaskSet):
            @transition("plain")
            def a(self):
                pass

            def plain(self):
                pass


def test_tags_are_refused():
    with pytest.raises(MarkovTaskTagError, match="Tags are unsupported for MarkovTaskSet"):

        class Chain(MarkovTaskSet):
            @tag("x")
            @transition("a")
            def a(self):
                pass


def test_unreachable_tasks_are_reported(caplog):
    with caplog.at_level(logging.WARNING):

        class Chain(MarkovTaskSet):
            @transition("a")
            def a(self):
                pass

            @transition("a")
            def orphan(self):
                pass

    assert "unreachable in class Chain: {'orphan'}" in caplog.text


def test_abstract_markov_taskset_is_not_validated():
    class Base(MarkovTaskSet):
        abstract = True

    assert Base.abstract
    assert not hasattr(Base, "current")


def test_markov_taskset_survives_tag_filtering():
    class Chain(MarkovTaskSet):
        @transition("a")
        def a(self):
            pass

    class MyUser(User):
        tasks = [Chain]

        @tag("x")
        @task
        def tagged(self):
            pass

    filter_tasks_by_tags(MyUser, tags={"x"})
    assert MyUser.tasks == [Chain, MyUser.tagged]
