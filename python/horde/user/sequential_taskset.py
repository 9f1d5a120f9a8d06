"""``SequentialTaskSet``: a TaskSet that runs its tasks in the order they are declared, over and
over, instead of picking them at random."""

from __future__ import annotations

from itertools import cycle
from typing import Any

from horde.exception import LocustError
from horde.user.task import TaskSet, TaskSetMeta

__all__ = ["SequentialTaskSet", "SequentialTaskSetMeta"]


class SequentialTaskSetMeta(TaskSetMeta):
    """Builds the task list in declaration order: the bases' tasks, then the class body's ``tasks``
    attribute and ``@task`` methods in the order they appear (a class body keeps its order)."""

    def __new__(mcs, classname: str, bases: tuple[type, ...], class_dict: dict[str, Any]) -> SequentialTaskSetMeta:
        ordered: list[Any] = []
        for base in bases:
            ordered.extend(getattr(base, "tasks", None) or [])
        for key, value in class_dict.items():
            if key == "tasks":
                if isinstance(value, list):
                    ordered.extend(value)
                elif isinstance(value, dict):
                    for t, weight in value.items():
                        ordered.extend([t] * weight)
                else:
                    raise ValueError("The 'tasks' attribute can only be set to list or dict")
            if "locust_task_weight" in dir(value):
                ordered.extend([value] * value.locust_task_weight)
        class_dict["tasks"] = ordered
        # Skip TaskSetMeta's random-order collection: the order is the point here.
        return type.__new__(mcs, classname, bases, class_dict)


class SequentialTaskSet(TaskSet, metaclass=SequentialTaskSetMeta):
    """A TaskSet whose tasks run one after the other in declaration order, cycling forever (until
    interrupted or the user stops). A weight repeats a task that many times in a row.

    Example::

        class Checkout(SequentialTaskSet):
            @task
            def cart(self):
                self.client.get("/cart")

            @task
            def pay(self):
                self.client.post("/pay")
                self.interrupt()
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._task_cycle = cycle(self.tasks)

    def get_next_task(self) -> Any:
        if not self.tasks:
            raise LocustError(
                "No tasks defined. Use the @task decorator or set the 'tasks' attribute of the SequentialTaskSet"
            )
        return next(self._task_cycle)
