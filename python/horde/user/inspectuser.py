"""Task ratios: the share of each user class and of each task among all task executions, as
printed by ``--show-task-ratio``/``--show-task-ratio-json`` and served by the web UI's ``/tasks``."""

from __future__ import annotations

import inspect
import json
from collections import Counter
from typing import Any

from horde.user.task import TaskSet
from horde.user.users import User

__all__ = ["get_ratio", "print_task_ratio", "print_task_ratio_json"]


def print_task_ratio(user_classes: list[type[User]], num_users: int | None, total: bool) -> None:
    """Prints the ratio tree of the user classes for ``num_users`` users.

    Args:
        user_classes: The user classes of the run.
        num_users: Users to distribute between them (None: as many as the total weight).
        total: Ratios of all task executions (True) or within each parent (False).
    """
    _print_tree(get_ratio(user_classes, _calc_distribution(user_classes, num_users), total))


def print_task_ratio_json(user_classes: list[type[User]], num_users: int | None) -> None:
    """Prints ``{"per_class": ..., "total": ...}`` ratio trees as indented JSON."""
    counts = _calc_distribution(user_classes, num_users)
    data = {
        "per_class": get_ratio(user_classes, counts, False),
        "total": get_ratio(user_classes, counts, True),
    }
    print(json.dumps(data, indent=4))


def _calc_distribution(user_classes: list[type[User]], num_users: float | None) -> dict[str, int]:
    # How many users of each class num_users gives: fixed counts first, the rest by weight.
    fixed = sum(u.fixed_count for u in user_classes if u.fixed_count)
    total_weight = sum(u.weight for u in user_classes if not u.fixed_count)
    num_users = num_users or (total_weight if not fixed else 1)
    weighted = max(0, num_users - fixed)
    return {u.__name__: round(u.fixed_count or (u.weight / total_weight) * weighted) for u in user_classes}


def _print_tree(tree: dict[str, Any], level: int = 0) -> None:
    indent = "  " * level
    for name, node in tree.items():
        percent = f"{node.get('ratio', 1) * 100:<6.1f}"
        print(f" {indent + percent:<10} {indent + name:<50}")
        if "tasks" in node:
            _print_tree(node["tasks"], level + 1)


def get_ratio(user_classes: list[type[User]], user_spawned: dict[str, int], total: bool) -> dict[str, dict[str, Any]]:
    """The ratio tree: ``{ClassName: {"ratio": r, "tasks": {task_name: {"ratio": r[, "tasks": ...]}}}}``.

    Args:
        user_classes: The user classes.
        user_spawned: Number of users per class name (a class's ratio is its share of them).
        total: Task ratios as shares of all executions (True) or within their parent (False).
    """
    spawned = sum(user_spawned.values()) or 1
    tree: dict[str, dict[str, Any]] = {}
    for u in user_classes:
        share = user_spawned.get(u.__name__, 0) / spawned
        tree[u.__name__] = {"ratio": share, "tasks": _task_ratios(u.tasks, total, share)}
    return tree


def _task_ratios(tasks: list[Any], total: bool, parent_ratio: float) -> dict[str, dict[str, Any]]:
    scale = parent_ratio if total else 1.0
    out: dict[str, dict[str, Any]] = {}
    for t, count in Counter(tasks).items():
        ratio = count * scale / len(tasks)
        node: dict[str, Any] = {"ratio": ratio}
        if inspect.isclass(t) and issubclass(t, TaskSet):
            node["tasks"] = _task_ratios(t.tasks, total, ratio)
        out[t.__name__] = node
    return out
