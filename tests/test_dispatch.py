"""horde's UsersDispatcher against Locust 2.47.0's, step by step.

The same scenarios (workers, user classes, ramps, workers joining and leaving) drive both dispatchers:
Locust's in a subprocess under the ``.venv-locust`` interpreter (tests/run.sh installs it), horde's in
this process. Every yielded distribution, with its key order, must be the same; so must the number of
pauses between steps, the wait per step and ``dispatch_in_progress``. Pauses are recorded, not slept.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import pytest

from horde.dispatch import UsersDispatcher, _kl_order

ROOT = Path(__file__).resolve().parent.parent
LOCUST_PYTHON = os.environ.get("HORDE_LOCUST_PYTHON") or str(ROOT / ".venv-locust" / "bin" / "python")


def run_scenarios(
    scenarios: list[dict[str, Any]],
    dispatcher_class: type,
    user_base: type,
    make_node: Callable[[str], Any],
    pauses: list[float],
) -> list[list[list[Any]]]:
    """Drives ``dispatcher_class`` through ``scenarios`` and logs what it does.

    Runs under both interpreters (its source is sent to Locust's), so it uses nothing but its arguments.
    ``pauses`` is the list the patched ``gevent.sleep`` appends to.
    """
    logs = []
    for scenario in scenarios:
        classes = {
            name: type(name, (user_base,), {"weight": weight, "fixed_count": fixed, "__module__": "scenario"})
            for name, weight, fixed in scenario["classes"]
        }
        dispatcher = dispatcher_class(
            worker_nodes=[make_node(worker_id) for worker_id in scenario["workers"]],
            user_classes=list(classes.values()),
        )
        log: list[list[Any]] = []
        for op, *args in scenario["ops"]:
            if op == "dispatch":
                target, rate, *subset = args
                try:
                    dispatcher.new_dispatch(target, rate, [classes[name] for name in subset[0]] if subset else None)
                except ValueError as e:
                    log.append(["error", str(e)])
                    continue
                log.append(["wait", dispatcher._wait_between_dispatch])
            elif op in ("next", "drain"):
                for _ in range(args[0] if op == "next" else 100_000):
                    before = len(pauses)
                    try:
                        item = next(dispatcher)
                    except StopIteration:
                        log.append(["stop", len(pauses) - before])
                        break
                    distribution = [[worker, list(counts.items())] for worker, counts in item.items()]
                    log.append(["item", distribution, len(pauses) - before])
                log.append(["steps timed", len(dispatcher.dispatch_iteration_durations)])
            elif op == "add":
                dispatcher.add_worker(make_node(args[0]))
            elif op == "remove":
                dispatcher.remove_worker(make_node(args[0]))
            elif op == "rebalance":
                # Locust 2.47.0 has only the private name.
                (getattr(dispatcher, "prepare_rebalance", None) or dispatcher._prepare_rebalance)()
            else:
                raise ValueError(f"unknown op {op!r}")
            log.append(["state", dispatcher.dispatch_in_progress, dispatcher._rebalance])
        logs.append(log)
    return logs


def _classes(*specs: tuple[str, float, int]) -> list[list[Any]]:
    return [list(spec) for spec in specs]


# Each scenario: classes as (name, weight, fixed_count), worker ids, then ops:
#   ["dispatch", target, spawn_rate(, [class names])]  new_dispatch (a subset, as a LoadTestShape tick)
#   ["next", n]  up to n items      ["drain"]  items until StopIteration
#   ["add", id]  ["remove", id]  ["rebalance"]
SCENARIOS: list[dict[str, Any]] = [
    {
        "name": "1 worker, equal weights, spawn rate below 1",
        "classes": _classes(("User1", 1, 0), ("User2", 1, 0), ("User3", 1, 0)),
        "workers": ["1"],
        "ops": [["dispatch", 9, 0.5], ["drain"], ["dispatch", 11, 0.3], ["drain"]],
    },
    {
        "name": "3 workers, weights 5/1 with ties, up down up",
        "classes": _classes(("Heavy", 5, 0), ("Light", 1, 0), ("Other", 1, 0), ("Also", 5, 0)),
        "workers": ["1", "2", "3"],
        "ops": [
            ["dispatch", 20, 1],
            ["drain"],
            ["dispatch", 7, 3],
            ["drain"],
            ["dispatch", 25, 4],
            ["drain"],
            # A new cycle while one is under way, as when a shape tick or a new -u interrupts a ramp.
            ["dispatch", 40, 2],
            ["next", 3],
            ["dispatch", 10, 5],
            ["drain"],
        ],
    },
    {
        "name": "4 workers, non-integer weights, fractional spawn rates",
        "classes": _classes(("A", 0.1, 0), ("B", 0.3, 0), ("C", 2.5, 0), ("D", 1 / 3, 0), ("E", 0.7, 0)),
        "workers": ["w1", "w2", "w3", "w4"],
        "ops": [["dispatch", 37, 2.4], ["drain"], ["dispatch", 10, 7.5], ["drain"], ["dispatch", 40, 40], ["drain"]],
    },
    {
        "name": "2 workers, fixed_count mixed with weights, fixed total above the target",
        "classes": _classes(("FixedA", 1, 3), ("FixedB", 1, 1), ("Weighted1", 2, 0), ("Weighted2", 1, 0)),
        "workers": ["1", "2"],
        "ops": [
            ["dispatch", 2, 1],
            ["drain"],
            ["dispatch", 10, 3],
            ["drain"],
            ["dispatch", 1, 2],
            ["drain"],
            ["dispatch", 12, 5],
            ["drain"],
            ["dispatch", 3, 1],
            ["next", 4],
            ["dispatch", 9, 2],
            ["drain"],
            ["dispatch", 0, 100],
            ["drain"],
        ],
    },
    {
        "name": "3 workers, only fixed_count classes, target above their total",
        "classes": _classes(("F1", 1, 2), ("F2", 1, 3)),
        "workers": ["1", "2", "3"],
        "ops": [
            ["dispatch", 10, 1],
            ["drain"],
            ["dispatch", 10, 2],
            ["drain"],
            ["dispatch", 3, 1],
            ["drain"],
            ["dispatch", 10, 10],
            ["drain"],
        ],
    },
    {
        "name": "cycle abandoned right after running out of classes",
        "classes": _classes(("Fixed", 1, 2), ("Weighted", 1, 0)),
        "workers": ["1", "2"],
        "ops": [
            ["dispatch", 5, 10, ["Fixed"]],
            ["next", 1],
            ["dispatch", 10, 2, ["Fixed", "Weighted"]],
            ["drain"],
            ["dispatch", 14, 3],
            ["drain"],
        ],
    },
    {
        "name": "5 workers, spawn rate equal to and above the target",
        "classes": _classes(("Reader", 3, 0), ("Writer", 2, 0)),
        "workers": ["1", "2", "3", "4", "5"],
        "ops": [
            ["dispatch", 7, 7],
            ["drain"],
            ["dispatch", 3, 100],
            ["drain"],
            ["dispatch", 50, 1000],
            ["drain"],
            ["dispatch", 50, 0.2],
            ["drain"],
            ["dispatch", 0, 50],
            ["drain"],
        ],
    },
    {
        "name": "user_classes subsets, as a LoadTestShape passes them",
        "classes": _classes(("A", 1, 0), ("B", 2, 0), ("C", 3, 0), ("D", 1, 2)),
        "workers": ["1", "2"],
        "ops": [
            ["dispatch", 6, 2, ["A"]],
            ["drain"],
            ["dispatch", 12, 3, ["C", "B"]],
            ["drain"],
            ["dispatch", 4, 2, ["C"]],
            ["drain"],
            ["dispatch", 10, 10],
            ["drain"],
            ["dispatch", 16, 4, ["D", "C", "B", "A"]],
            ["drain"],
            ["dispatch", 20, 4, ["A", "B", "C", "D"]],
            ["drain"],
        ],
    },
    {
        "name": "the same user_classes on every tick continue the weighted order",
        "classes": _classes(("Light", 1, 0), ("Heavy", 3, 0), ("Unused", 1, 0)),
        "workers": ["1", "2", "3"],
        "ops": [
            ["dispatch", 3, 3, ["Light", "Heavy"]],
            ["drain"],
            ["dispatch", 5, 1, ["Heavy", "Light"]],
            ["drain"],
            ["dispatch", 9, 2, ["Light", "Heavy"]],
            ["drain"],
            ["dispatch", 11, 2],
            ["drain"],
        ],
    },
    {
        "name": "workers added during and after a ramp-up",
        "classes": _classes(("User1", 1, 0), ("User2", 1, 0), ("User3", 1, 0)),
        "workers": ["1", "2"],
        "ops": [
            ["dispatch", 12, 3],
            ["next", 2],
            ["add", "3"],
            ["next", 1],
            ["add", "4"],
            ["add", "5"],
            ["drain"],
            ["add", "6"],
            ["dispatch", 12, 3],
            ["drain"],
            ["dispatch", 20, 4],
            ["drain"],
        ],
    },
    {
        "name": "workers removed during and after a ramp-down",
        "classes": _classes(("Browse", 4, 0), ("Buy", 1, 0), ("Admin", 1, 1)),
        "workers": ["1", "2", "3", "4"],
        "ops": [
            ["dispatch", 16, 16],
            ["drain"],
            ["dispatch", 4, 3],
            ["next", 2],
            ["remove", "2"],
            ["drain"],
            ["remove", "3"],
            ["dispatch", 4, 3],
            ["drain"],
            # After a cycle that only rebalanced, dispatch_in_progress stays True in Locust.
            ["add", "5"],
            ["dispatch", 4, 3],
            ["drain"],
            ["dispatch", 8, 2],
            ["drain"],
        ],
    },
    {
        "name": "workers across hosts, removals keep the order, last worker removed",
        "classes": _classes(("Alpha", 2, 0), ("Beta", 1, 0), ("Gamma", 1, 1)),
        "workers": ["hostC_2", "hostA_2", "hostB_1", "hostA_1", "hostC_1"],
        "ops": [
            ["dispatch", 13, 2],
            ["drain"],
            ["remove", "hostA_1"],
            ["dispatch", 20, 5],
            ["drain"],
            ["add", "hostB_2"],
            ["dispatch", 20, 5],
            ["drain"],
            ["remove", "hostA_2"],
            ["remove", "hostB_1"],
            ["remove", "hostB_2"],
            ["remove", "hostC_1"],
            ["dispatch", 6, 2],
            ["drain"],
            ["remove", "hostC_2"],
            ["add", "hostD_1"],
            ["dispatch", 5, 5],
            ["drain"],
        ],
    },
    {
        "name": "fixed_count users while workers come and go mid-ramp",
        "classes": _classes(("Fixed", 1, 2), ("Weighted", 1, 0)),
        "workers": ["1", "2", "3"],
        "ops": [
            ["dispatch", 9, 3],
            ["next", 1],
            ["remove", "1"],
            ["next", 1],
            ["add", "4"],
            ["drain"],
            ["dispatch", 1, 1],
            ["next", 1],
            ["add", "5"],
            ["drain"],
            ["dispatch", 6, 2],
            ["drain"],
        ],
    },
    {
        "name": "prepare_rebalance called directly",
        "classes": _classes(("X", 2, 0), ("Y", 3, 0)),
        "workers": ["1", "2", "3"],
        "ops": [
            ["dispatch", 6, 6],
            ["drain"],
            ["rebalance"],
            ["next", 2],
            ["dispatch", 6, 6],
            ["drain"],
            ["dispatch", 15, 2],
            ["next", 2],
            ["rebalance"],
            ["drain"],
        ],
    },
    {
        "name": "zero target",
        "classes": _classes(("One", 1, 0), ("Two", 2, 0)),
        "workers": ["1", "2"],
        "ops": [["dispatch", 0, 1], ["drain"], ["dispatch", 5, 5], ["drain"], ["dispatch", 0, 2], ["drain"]],
    },
    {
        "name": "invalid arguments leave the dispatcher as it was",
        "classes": _classes(("One", 1, 0)),
        "workers": ["1"],
        "ops": [
            ["dispatch", -1, 1],
            ["dispatch", 5, 0],
            ["dispatch", 5, -2],
            ["dispatch", 5, math.inf],
            ["dispatch", 5, math.nan],
            ["dispatch", 3, 1],
            ["drain"],
        ],
    },
    {
        "name": "a worker id reported twice",
        "classes": _classes(("P", 1, 0), ("Q", 1, 0)),
        "workers": ["1", "2"],
        "ops": [
            ["dispatch", 6, 6],
            ["drain"],
            ["add", "2"],
            ["dispatch", 6, 6],
            ["drain"],
            ["dispatch", 9, 9],
            ["drain"],
            ["remove", "2"],
            ["dispatch", 9, 9],
            ["drain"],
        ],
    },
    {
        "name": "5 workers, equal weights, names sorted case-sensitively",
        "classes": _classes(("zeta", 2, 0), ("Alpha", 2, 0), ("beta", 2, 0), ("Gamma", 2, 0)),
        "workers": ["5", "3", "1", "4", "2"],
        "ops": [["dispatch", 23, 4], ["drain"], ["dispatch", 2, 1.5], ["drain"]],
    },
    {
        "name": "classes with weight zero",
        "classes": _classes(("Never", 0, 0), ("Sometimes", 1, 0)),
        "workers": ["1"],
        "ops": [
            ["dispatch", 5, 5],
            ["drain"],
            ["dispatch", 7, 1, ["Never"]],
            ["drain"],
            ["dispatch", 2, 1],
            ["drain"],
        ],
    },
]

_LOCUST_MAIN = """
import json, sys

import locust  # first: without Locust the test is skipped, not failed
import gevent
from locust import User
from locust.dispatch import UsersDispatcher
from locust.runners import WorkerNode

pauses = []
gevent.sleep = lambda seconds=0, *args, **kwargs: pauses.append(seconds)
logs = run_scenarios(json.load(sys.stdin), UsersDispatcher, User, WorkerNode, pauses)
print(json.dumps({"version": locust.__version__, "logs": logs}))
"""


@pytest.fixture(scope="module")
def locust_logs() -> list[Any]:
    if not os.path.exists(LOCUST_PYTHON):
        pytest.skip(f"Locust 2.47.0 reference interpreter not found at {LOCUST_PYTHON} (tests/run.sh installs it)")
    script = "from __future__ import annotations\n" + textwrap.dedent(inspect.getsource(run_scenarios))
    script += "from typing import Any, Callable\n" + _LOCUST_MAIN
    proc = subprocess.run(
        [LOCUST_PYTHON, "-c", script],
        input=json.dumps(SCENARIOS),
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
    )
    if "No module named 'locust'" in proc.stderr:
        pytest.skip(f"Locust 2.47.0 is not installed in {LOCUST_PYTHON} (tests/run.sh installs it)")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["version"] == "2.47.0", f"the reference must be Locust 2.47.0, {LOCUST_PYTHON} has {out['version']}"
    return out["logs"]


def _horde_logs(scenarios: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    from horde.runners import WorkerNode
    from horde.user.users import User

    pauses: list[float] = []
    monkeypatch.setattr(gevent, "sleep", lambda seconds=0, *args, **kwargs: pauses.append(seconds))
    # A JSON round trip, as Locust's side gets: the same floats, lists for tuples.
    return json.loads(json.dumps(run_scenarios(scenarios, UsersDispatcher, User, WorkerNode, pauses)))


@pytest.mark.parametrize("index", range(len(SCENARIOS)), ids=[s["name"] for s in SCENARIOS])
def test_same_steps_as_locust(index: int, locust_logs: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    expected = locust_logs[index]
    actual = _horde_logs([SCENARIOS[index]], monkeypatch)[0]
    assert len(expected) > 3
    for position, (mine, theirs) in enumerate(zip(actual, expected)):
        assert mine == theirs, f"op log entry {position} differs"
    assert len(actual) == len(expected)


# --- horde's dispatcher on its own ---------------------------------------------------------------------


class _Node:
    def __init__(self, id: str) -> None:
        self.id = id


def _user_class(name: str, weight: float = 1, fixed_count: int = 0) -> type:
    return type(name, (), {"weight": weight, "fixed_count": fixed_count})


def _totals(distribution: dict[str, dict[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for counts in distribution.values():
        for name, count in counts.items():
            totals[name] = totals.get(name, 0) + count
    return totals


def _ramp(dispatcher: UsersDispatcher, target: int, rate: float, **kwargs: Any) -> list[dict[str, dict[str, int]]]:
    dispatcher.new_dispatch(target, rate, **kwargs)
    dispatcher._wait_between_dispatch = 0
    return list(dispatcher)


def test_kl_order_interleaves_by_weight() -> None:
    order = _kl_order([("A", 5), ("B", 1)])
    # Locust's own docstring claims AAABAAAAABAA; its code gives this.
    assert "".join(str(next(order)) for _ in range(12)) == "AABAAAAABAAA"
    assert next(_kl_order([("A", 0), ("B", -1)])) is None


def test_totals_reach_every_target_and_workers_stay_even() -> None:
    classes = [_user_class("Big", 7), _user_class("Mid", 2.5), _user_class("Small", 0.5), _user_class("Fix", 1, 4)]
    dispatcher = UsersDispatcher([_Node(str(i)) for i in range(4)], classes)
    for target, rate in [(50, 7), (13, 3.5), (0, 100), (33, 0.8), (33, 5), (101, 101), (6, 1000)]:
        steps = _ramp(dispatcher, target, rate)
        final = steps[-1]
        assert sum(_totals(final).values()) == target
        assert dispatcher.get_current_user_count() == target
        assert _totals(final)["Fix"] == min(4, target)
        per_worker = [sum(counts.values()) for counts in final.values()]
        assert max(per_worker) - min(per_worker) <= 1, per_worker
        # Each step moves at most max(1, floor(rate)) users.
        sizes = [sum(_totals(step).values()) for step in steps]
        assert all(abs(b - a) <= max(1, math.floor(rate)) for a, b in zip(sizes, sizes[1:]))
        assert not dispatcher.dispatch_in_progress


def test_rebalance_spreads_the_same_users_over_new_workers() -> None:
    classes = [_user_class("A", 3), _user_class("B", 1)]
    nodes = [_Node("1"), _Node("2")]
    dispatcher = UsersDispatcher(nodes, classes)
    before = _totals(_ramp(dispatcher, 20, 20)[-1])
    dispatcher.add_worker(_Node("3"))
    dispatcher.remove_worker(nodes[0])
    (rebalanced,) = _ramp(dispatcher, 20, 20)
    assert list(rebalanced) == ["2", "3"]
    assert _totals(rebalanced) == before
    assert [sum(counts.values()) for counts in rebalanced.values()] == [10, 10]
    dispatcher.remove_worker(_Node("2"))
    assert dispatcher._rebalance
    assert _ramp(dispatcher, 20, 20) == [{"3": _totals(rebalanced)}]
    # Removing the last worker leaves nothing to rebalance onto.
    dispatcher.remove_worker(_Node("3"))
    assert not dispatcher._rebalance


def test_pacing_sleeps_between_steps_only(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(gevent, "sleep", lambda seconds=0: pauses.append(seconds))
    dispatcher = UsersDispatcher([_Node("1")], [_user_class("A")])
    dispatcher.new_dispatch(10, 2.5)
    assert dispatcher._wait_between_dispatch == 2 / 2.5
    assert dispatcher._user_count_per_dispatch_iteration == 2
    steps = list(dispatcher)
    assert len(steps) == 5
    assert len(pauses) == 4
    assert all(0 <= pause <= 0.8 for pause in pauses)
    assert len(dispatcher.dispatch_iteration_durations) == 5


def test_real_gevent_sleeps() -> None:
    dispatcher = UsersDispatcher([_Node("1"), _Node("2")], [_user_class("A"), _user_class("B", 2)])
    dispatcher.new_dispatch(1500, 500)
    # Steps are floor(rate) users about a second apart; shorten the wait, as Locust's own tests do.
    dispatcher._wait_between_dispatch = 0.002
    steps = list(dispatcher)
    assert [sum(_totals(step).values()) for step in steps] == [500, 1000, 1500]


def test_dispatch_in_progress_and_items_are_copies() -> None:
    dispatcher = UsersDispatcher([_Node("1")], [_user_class("A")])
    assert not dispatcher.dispatch_in_progress
    dispatcher.new_dispatch(3, 1)
    dispatcher._wait_between_dispatch = 0
    first = next(dispatcher)
    assert dispatcher.dispatch_in_progress
    first["1"]["A"] = 99
    assert list(dispatcher)[-1] == {"1": {"A": 3}}
    assert not dispatcher.dispatch_in_progress


def test_invalid_use_raises() -> None:
    with pytest.raises(AssertionError):
        UsersDispatcher([_Node("1")], [])
    dispatcher = UsersDispatcher([_Node("1")], [_user_class("A")])
    with pytest.raises(RuntimeError, match="new_dispatch"):
        next(dispatcher)
    with pytest.raises(ValueError, match="spawn_rate must be > 0"):
        dispatcher.new_dispatch(1, 0)
    with pytest.raises(ValueError, match="target_user_count must be >= 0"):
        dispatcher.new_dispatch(-5, 1)


def test_locust_dispatch_import_gives_horde_dispatcher() -> None:
    from horde import locust_alias

    locust_alias.install()
    try:
        from locust.dispatch import UsersDispatcher as Aliased  # type: ignore[import-not-found]
    finally:
        locust_alias.uninstall()
    assert Aliased is UsersDispatcher
    assert sys.modules.get("locust.dispatch") is None
