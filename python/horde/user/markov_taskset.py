"""``MarkovTaskSet``: a TaskSet that walks a Markov chain of tasks. Each task declares, with
``@transition``/``@transitions``, which tasks may follow it and with what weight.

The chain is checked when the class is created, so a broken chain fails at import time.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, TypeVar

from horde.exception import LocustError
from horde.user.task import TaskSet, TaskSetMeta

__all__ = [
    "InvalidTransitionError",
    "MarkovTaskSet",
    "MarkovTaskSetMeta",
    "MarkovTaskTagError",
    "NoMarkovTasksError",
    "NonMarkovTaskTransitionError",
    "transition",
    "transitions",
]

MarkovTaskT = TypeVar("MarkovTaskT", bound=Callable[..., Any])


class NoMarkovTasksError(LocustError):
    """A MarkovTaskSet class has no method decorated with ``@transition``/``@transitions``."""


class InvalidTransitionError(LocustError):
    """A transition names something that does not exist on the class."""


class NonMarkovTaskTransitionError(LocustError):
    """A transition names a member that declares no transitions of its own."""


class MarkovTaskTagError(LocustError):
    """A Markov task is tagged; tag filtering could cut the chain, so it is refused."""


def _is_markov_task(obj: Any) -> bool:
    return "transitions" in dir(obj)


def transition(func_name: str, weight: int = 1) -> Callable[[MarkovTaskT], MarkovTaskT]:
    """Adds one transition from the decorated task to the task named ``func_name``.

    Args:
        func_name: Name of the method to go to.
        weight: Relative likelihood of this transition among the task's transitions.

    Example::

        class Shopper(MarkovTaskSet):
            @transition("browse")
            def index(self):
                self.client.get("/")

            @transition("index", weight=3)
            @transition("browse")
            def browse(self):
                self.client.get("/products")
    """

    def add(func: MarkovTaskT) -> MarkovTaskT:
        if not hasattr(func, "transitions"):
            func.transitions = {}  # type: ignore[attr-defined]
        func.transitions[func_name] = weight  # type: ignore[attr-defined]
        return func

    return add


def transitions(weights: dict[str, int] | list[tuple[str, int] | str]) -> Callable[[MarkovTaskT], MarkovTaskT]:
    """Adds several transitions from the decorated task at once.

    Args:
        weights: ``{name: weight}``, or a list of names (weight 1) and ``(name, weight)`` pairs.

    Example::

        class Shopper(MarkovTaskSet):
            @transitions({"checkout": 1, "browse": 3})
            def cart(self):
                ...

            @transitions([("index", 2), "browse"])
            def checkout(self):
                ...
    """
    if isinstance(weights, dict):
        pairs = dict(weights)
    else:
        pairs = dict(item if isinstance(item, tuple) else (item, 1) for item in weights)

    def add(func: MarkovTaskT) -> MarkovTaskT:
        if not hasattr(func, "transitions"):
            func.transitions = {}  # type: ignore[attr-defined]
        func.transitions.update(pairs)  # type: ignore[attr-defined]
        return func

    return add


def _weighted(transitions_: dict[str, int]) -> list[str]:
    # The list random.choice draws from; a weight <= 0 leaves the target out.
    return [name for name, weight in transitions_.items() for _ in range(weight)]


def _validate(markov_tasks: list[Any], class_dict: dict[str, Any], classname: str) -> None:
    if not markov_tasks:
        raise NoMarkovTasksError(
            f"No Markov tasks defined in class {classname}. Use the @transition(s) decorators to define some."
        )
    for t in markov_tasks:
        for dest in t.transitions:
            target = class_dict.get(dest)
            if not target:
                raise InvalidTransitionError(
                    f"Transition to {dest} from {t.__name__} is invalid since no such element exists on class "
                    f"{classname}"
                )
            if not _is_markov_task(target):
                raise NonMarkovTaskTransitionError(
                    f"{classname}.{dest} cannot be used as a target for a transition since it does not define any "
                    f"transitions of its own. Used as a transition from {t.__name__}."
                )

    # Warn about tasks the walk can never reach from the start state (the first task declared).
    reached: set[str] = set()
    pending = [markov_tasks[0].__name__]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        pending.extend(set(_weighted(class_dict[name].transitions)) - reached)
    unreachable = {t.__name__ for t in markov_tasks} - reached
    if unreachable:
        logging.warning(f"The following markov tasks are unreachable in class {classname}: {unreachable}")

    for t in markov_tasks:
        if t.__name__ in ("on_start", "on_stop"):
            logging.warning(
                "You have tagged your on_stop/start function with @transition. This will make the method get "
                "called both as a step AND on stop/start."
            )
        if t.__name__ == "run":
            raise Exception(
                "TaskSet.run() is a method used internally by Locust, and you must not override it or annotate "
                "it with transitions"
            )
        if "locust_tag_set" in dir(t):
            raise MarkovTaskTagError(
                "Tags are unsupported for MarkovTaskSet since they can make the markov chain invalid. "
                f"Tags detected on {classname}.{t.__name__}: {t.locust_tag_set}"
            )


class MarkovTaskSetMeta(TaskSetMeta):
    """Validates the chain of a concrete MarkovTaskSet class, sets its start state (``current``,
    the first Markov task declared) and turns each task's transitions into a weighted list."""

    def __new__(mcs, classname: str, bases: tuple[type, ...], class_dict: dict[str, Any]) -> MarkovTaskSetMeta:
        if not class_dict.get("abstract"):
            class_dict["abstract"] = False
            markov_tasks = [v for v in class_dict.values() if _is_markov_task(v)]
            _validate(markov_tasks, class_dict, classname)
            class_dict["current"] = markov_tasks[0]
            for t in markov_tasks:
                t.transitions = _weighted(t.transitions)
        # Not TaskSetMeta's collection: the chain, not ``tasks``, says what runs.
        return type.__new__(mcs, classname, bases, class_dict)


class MarkovTaskSet(TaskSet, metaclass=MarkovTaskSetMeta):
    """A TaskSet that runs its tasks as a Markov chain: it starts at the first task declared with
    ``@transition``/``@transitions`` and after each task moves to one of that task's transition
    targets, picked by weight. Plain ``@task`` methods are not part of the chain.

    Attributes:
        abstract: True on a base class whose chain is not validated (subclasses are concrete).
    """

    current: Any
    abstract: bool = True

    def get_next_task(self) -> Any:
        """Returns the current task and moves the chain on to one of its targets."""
        this = self.current
        self.current = getattr(self, random.choice(this.transitions))
        return this
