"""Importing locustfiles and finding their User and LoadTestShape classes."""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from typing import Any

from horde.shape import LoadTestShape
from horde.user import User


def is_user_class(item: Any) -> bool:
    """A runnable (non-abstract) User subclass."""
    return bool(inspect.isclass(item) and issubclass(item, User) and item.abstract is False)


def is_shape_class(item: Any) -> bool:
    return bool(inspect.isclass(item) and issubclass(item, LoadTestShape) and not getattr(item, "abstract", True))


def load_locustfile(path: str) -> tuple[dict[str, type[User]], list[LoadTestShape]]:
    """Imports the file as a module and returns its User classes by name and an instance of each
    LoadTestShape class. Import errors propagate (the caller reports them)."""
    directory, filename = os.path.split(os.path.abspath(path))
    # Like Locust: the working directory and the file's directory are importable from the file.
    for entry in (directory, os.getcwd()):
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)
    module_name = os.path.splitext(filename)[0]
    if module_name == "locust":
        module_name = "locustfile"  # would shadow the locust alias
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    user_classes = {name: value for name, value in vars(module).items() if is_user_class(value)}
    shapes = [value() for value in vars(module).values() if is_shape_class(value)]
    return user_classes, shapes
