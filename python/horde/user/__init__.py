"""Locust's user model: ``User``, ``HttpUser``, ``TaskSet`` and the ``task``/``tag`` decorators
(``locust.user``); the TaskSet variants and wait times live in the submodules."""

from horde.user.task import TaskSet, tag, task
from horde.user.users import HttpUser, User

__all__ = ["HttpUser", "TaskSet", "User", "tag", "task"]
