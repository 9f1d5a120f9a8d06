"""``import locust`` under horde: every name Locust 2.47 exports, and the modules locustfiles
import from, resolve to horde's implementation (the same objects as ``horde.X``)."""

from __future__ import annotations

import importlib

import pytest

from horde import locust_alias

# locust/__init__.py's __all__ in 2.47.0
LOCUST_ALL = [
    "FastHttpUser", "HttpLocust", "HttpUser", "LoadTestShape", "Locust", "MarkovTaskSet", "SequentialTaskSet",
    "TaskSet", "User", "__version__", "between", "constant", "constant_pacing", "constant_throughput", "events",
    "poisson", "run_single_user", "tag", "task", "transition", "transitions", "wait_time",
]  # fmt: skip

MODULES = [
    "locust.exception", "locust.env", "locust.runners", "locust.stats", "locust.event", "locust.user",
    "locust.user.wait_time", "locust.user.task", "locust.user.users", "locust.user.sequential_taskset",
    "locust.user.markov_taskset", "locust.contrib.fasthttp", "locust.clients", "locust.log", "locust.shape",
    "locust.debug", "locust.util.timespan", "locust.argument_parser",
]  # fmt: skip


@pytest.fixture
def aliased():
    locust_alias.install()
    yield
    locust_alias.uninstall()


def test_every_locust_export_is_there(aliased):
    locust = importlib.import_module("locust")
    import horde

    assert locust is horde
    missing = [name for name in LOCUST_ALL if not hasattr(locust, name)]
    assert missing == []


@pytest.mark.parametrize("name", MODULES)
def test_locust_modules_are_horde_modules(aliased, name):
    module = importlib.import_module(name)
    assert module is importlib.import_module("horde" + name[len("locust") :])


def test_same_classes_under_both_names(aliased):
    from locust import HttpUser as FromLocust
    from locust.contrib.fasthttp import FastHttpUser as FastFromLocust

    from horde import FastHttpUser, HttpUser

    assert FromLocust is HttpUser and FastFromLocust is FastHttpUser


def test_missing_module_says_so(aliased):
    with pytest.raises(ModuleNotFoundError, match="horde provides Locust's API"):
        importlib.import_module("locust.no_such_module")


def test_renamed_classes_fail_with_locusts_message(aliased):
    from locust import HttpLocust

    with pytest.raises(ImportError, match="renamed to HttpUser"):
        type("Old", (HttpLocust,), {})
