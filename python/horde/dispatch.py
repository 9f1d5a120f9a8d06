"""Decides how many users of each class every worker runs, step by step, while a test ramps up or down.

This is horde's ``locust.dispatch``: it reproduces Locust 2.47.0's ``UsersDispatcher`` decision for
decision (class order, worker order, step sizes, rebalancing and pacing), so a horde master spreads users
over its workers exactly as a Locust master would, and locustfiles that import the class keep working.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import defaultdict
from collections.abc import Generator, Iterable, Iterator, Sequence
from heapq import heapify, heapreplace
from typing import TYPE_CHECKING, Protocol

import gevent

if TYPE_CHECKING:
    from horde.user.users import User

# {worker node id: {user class name: user count}}
Distribution = dict[str, dict[str, int]]


class _WorkerNodeLike(Protocol):
    # What the dispatcher needs of a worker (horde.runners.WorkerNode, or Locust's): duck typing, so
    # that runners can import this module without an import cycle.
    @property
    def id(self) -> str: ...


def _kl_order(weights: Iterable[tuple[str, float]]) -> Iterator[str | None]:
    """Yields names forever, each time the one whose pick lowers the Kullback-Leibler divergence between
    the picks so far and the weights the most; weights 5 and 1 give A A B A A A A A B A A A ...
    (Locust's docstring says A A A B ..., but its code, and so this, gives the above)

    Names with a weight <= 0 never come; with none left it yields None forever. Ties go to the entry
    that is smaller as a tuple (picks + weight, then weight, then name): Locust keeps these tuples in a
    heap, and its order is what a Locust master produces, so it is kept here down to the float arithmetic
    (the running count is a float advanced by 1.0 per pick, not weight + picks computed afresh).
    """
    # Entry: (change of divergence if this name is picked next, weight + picks + 1, weight, name).
    heap = [(w * math.log2(w / (w + 1.0)), w + 1.0, w, name) for name, w in weights if w > 0]
    if not heap:
        yield from itertools.repeat(None)
    heapify(heap)
    while True:
        _, seen, weight, name = heap[0]
        yield name
        heapreplace(heap, (weight * math.log2(seen / (seen + 1.0)), seen + 1.0, weight, name))


def _empty_counts(nodes: Iterable[_WorkerNodeLike], user_classes: Iterable[type[User]]) -> Distribution:
    return {node.id: {cls.__name__: 0 for cls in user_classes} for node in nodes}


def _copy(distribution: Distribution) -> Distribution:
    # Callers get their own dicts; the inner ones are what the dispatcher keeps mutating.
    return {node_id: dict(counts) for node_id, counts in distribution.items()}


class UsersDispatcher(Iterator):
    """Iterator over the per-worker user counts of one ramp (a "dispatch cycle").

    Call ``new_dispatch`` to start a ramp, then iterate: each item is the whole distribution
    ``{worker_node_id: {user_class_name: count}}`` after one more step of ``max(1, floor(spawn_rate))``
    users, and the iteration stops when the target is reached. Between steps the iterator itself waits
    (``gevent.sleep``) so that the spawn rate holds, counting the time the caller spent on the previous
    item. Users of ``fixed_count`` classes are placed first, the others by weight; workers take users in
    turn, round-robin across hosts; ramping down removes the most recently added users first. A worker
    joining or leaving makes the next item a rebalanced distribution, computed as if the current users
    had been ramped up from zero on the new set of workers.

    Subclasses may be passed to ``Environment(dispatcher_class=...)``, as in Locust.
    """

    def __init__(self, worker_nodes: Sequence[_WorkerNodeLike], user_classes: list[type[User]]) -> None:
        """Creates a dispatcher with no users running.

        Args:
            worker_nodes: The workers (anything with a string ``id``; ``"host_rest"`` ids are spread
                across hosts first).
            user_classes: The user classes; each reads ``__name__``, ``weight`` and ``fixed_count``.
        """
        self._worker_nodes = self._ordered(worker_nodes)
        # The classes the test started with fix the keys of every distribution; a shape's new_dispatch may
        # narrow the classes that get new users, but counts of the others stay visible (and removable).
        self._original_user_classes = sorted(user_classes, key=lambda cls: cls.__name__)
        self._user_classes = list(self._original_user_classes)
        assert len(user_classes) > 0, "UsersDispatcher needs at least one user class"
        assert len(set(self._user_classes)) == len(self._user_classes), "user classes must be distinct"

        self._target_user_count = 0
        self._spawn_rate = 0.0
        self._user_count_per_dispatch_iteration = 0
        # Seconds between the starts of two steps. Locust's name: its tests (and tests ported from them)
        # set it to 0 after new_dispatch to run a ramp without waiting.
        self._wait_between_dispatch = 0.0

        # Keyed in the caller's worker order here (later distributions use the dispatcher's order), as in
        # Locust; the order decides which worker a master messages first.
        self._initial_users_on_workers = _empty_counts(worker_nodes, self._user_classes)
        self._users_on_workers = _copy(self._initial_users_on_workers)
        self._current_user_count = self.get_current_user_count()

        self._steps: Generator[Distribution] | None = None
        self._user_generator: Iterator[str | None] = self._user_order()
        self._worker_node_generator: Iterator[_WorkerNodeLike] = itertools.cycle(self._worker_nodes)
        # Every user placed so far, oldest first: ramping down pops from the end.
        self._active_users: list[tuple[_WorkerNodeLike, str]] = []
        self._dispatch_iteration_durations: list[float] = []
        self._dispatch_in_progress = False
        # Set by prepare_rebalance: the next item is the rebalanced distribution. Locust's name, which its
        # tests read.
        self._rebalance = False
        # True when fixed_count users may be missing (at the start, after a removal or a rebalance): the
        # next user drawn first tops them up.
        self._try_dispatch_fixed = True
        # Set when no class can give another user (every fixed_count class is full and no class with a
        # positive weight is left): the ramp ends short of its target.
        # It is instance state, not a local of the ramp, because Locust's is: a cycle abandoned right after
        # the step that set it ends the next cycle's ramp-up after its first step.
        self._no_user_to_spawn = False

    # --- public API (Locust's names) -------------------------------------------------------------------

    @property
    def dispatch_in_progress(self) -> bool:
        """True from the first item of a cycle until its ramp completes.

        As in Locust it stays True after a cycle whose only item was a rebalance (the target was already
        reached), until a later cycle completes a ramp.
        """
        return self._dispatch_in_progress

    @property
    def dispatch_iteration_durations(self) -> list[float]:
        """Seconds each step of the current cycle took, the caller's handling of the item included."""
        return self._dispatch_iteration_durations

    def get_current_user_count(self) -> int:
        """Returns the number of users in the current distribution, all workers and classes together."""
        return sum(sum(counts.values()) for counts in self._users_on_workers.values())

    def new_dispatch(
        self, target_user_count: int, spawn_rate: float, user_classes: list[type[User]] | None = None
    ) -> None:
        """Starts a new dispatch cycle from the current distribution; iterating then walks it to the target.

        Args:
            target_user_count: Users wanted at the end of the cycle, all workers together.
            spawn_rate: Users per second; each step adds or removes ``max(1, floor(spawn_rate))`` users,
                one step every ``step / spawn_rate`` seconds.
            user_classes: The classes new users are drawn from (a ``LoadTestShape`` tick may name some);
                None keeps the current ones.

        Raises:
            ValueError: ``target_user_count`` is negative or ``spawn_rate`` is not a positive finite number.
        """
        if target_user_count < 0:
            raise ValueError(f"target_user_count must be >= 0, got {target_user_count}")
        if spawn_rate <= 0:
            raise ValueError(f"spawn_rate must be > 0, got {spawn_rate}")
        if not math.isfinite(spawn_rate):
            raise ValueError(f"spawn_rate must be a finite number, got {spawn_rate}")

        if user_classes is not None:
            requested = sorted(user_classes, key=lambda cls: cls.__name__)
            if requested != self._user_classes:
                # A new class set restarts the weighted order from scratch, as in Locust; the same set
                # (in any order) continues it.
                self._user_classes = requested
                self._user_generator = self._user_order()

        self._target_user_count = target_user_count
        self._spawn_rate = spawn_rate
        self._user_count_per_dispatch_iteration = max(1, math.floor(spawn_rate))
        self._wait_between_dispatch = self._user_count_per_dispatch_iteration / spawn_rate
        # A cycle that is already at its target yields the distribution it started from.
        self._initial_users_on_workers = self._users_on_workers
        self._users_on_workers = _copy(self._initial_users_on_workers)
        self._current_user_count = self.get_current_user_count()
        self._steps = self._cycle()
        self._dispatch_iteration_durations.clear()

    def add_worker(self, worker_node: _WorkerNodeLike) -> None:
        """Adds a worker (one that connected, or came back) and rebalances the users over all workers.

        The next item of the current cycle, or the first of the next one, is the rebalanced distribution.

        Args:
            worker_node: The new worker (anything with a string ``id``).
        """
        self._worker_nodes = self._ordered([*self._worker_nodes, worker_node])
        self._prepare_rebalance()

    def remove_worker(self, worker_node: _WorkerNodeLike) -> None:
        """Removes a worker (it quit or went missing) and rebalances the users over the remaining ones.

        Removing the last worker only forgets it: there is nothing to rebalance onto.

        Args:
            worker_node: The worker to remove; every worker with the same ``id`` goes.
        """
        # The remaining workers keep their order; Locust does not re-sort here, and re-sorting could
        # change which host goes first.
        self._worker_nodes = [node for node in self._worker_nodes if node.id != worker_node.id]
        if not self._worker_nodes:
            return
        self._prepare_rebalance()

    def prepare_rebalance(self) -> None:
        """Recomputes the distribution of the current users over the current workers.

        The result is what a ramp from zero to the current user count would give on these workers; the
        next item yielded is that distribution (at once, without waiting), and later steps continue from it.
        """
        # Fixed_count users are topped up against this empty distribution, so the replay places all of them.
        self._users_on_workers = _empty_counts(self._worker_nodes, self._original_user_classes)
        self._try_dispatch_fixed = True
        counts, users, workers, active = self._replay(self._current_user_count)
        self._users_on_workers = counts
        self._active_users = active
        # Continuing from the replay's own generators keeps the steps after the rebalance in sequence.
        self._user_generator = users
        self._worker_node_generator = workers
        self._rebalance = True

    def _prepare_rebalance(self) -> None:
        # Locust's name for prepare_rebalance; add_worker/remove_worker call it, so a subclass overriding
        # either name is honoured.
        self.prepare_rebalance()

    def _get_user_current_count(self, user: str) -> int:
        # Locust's name (its tests call it): users of class ``user`` on all workers together.
        return sum(counts.get(user, 0) for counts in self._users_on_workers.values())

    def __iter__(self) -> UsersDispatcher:
        return self

    def __next__(self) -> Distribution:
        if self._steps is None:
            raise RuntimeError("call new_dispatch() before iterating over a UsersDispatcher")
        return _copy(next(self._steps))

    # --- the cycle -------------------------------------------------------------------------------------

    def _cycle(self) -> Generator[Distribution]:
        # Yields the live distribution; __next__ hands out copies.
        self._dispatch_in_progress = True

        if self._rebalance:
            self._rebalance = False
            yield self._users_on_workers
            if self._current_user_count == self._target_user_count:
                # Locust returns here without clearing dispatch_in_progress; kept, since a master's
                # reaction to later worker changes depends on it.
                return

        if self._current_user_count == self._target_user_count:
            yield self._initial_users_on_workers
            self._dispatch_in_progress = False
            return

        while self._current_user_count < self._target_user_count:
            started = time.perf_counter()
            yield self._add_users()
            yield from self._rebalanced_if_requested()
            exhausted = self._no_user_to_spawn
            self._no_user_to_spawn = False
            self._pace(started)
            if exhausted:
                break

        while self._current_user_count > self._target_user_count:
            started = time.perf_counter()
            yield self._remove_users()
            yield from self._rebalanced_if_requested()
            self._pace(started)

        self._dispatch_in_progress = False

    def _rebalanced_if_requested(self) -> Generator[Distribution]:
        # A worker joined or left while the caller handled the last step: its next item is the rebalanced
        # distribution, given within the same step (no extra wait).
        if self._rebalance:
            self._rebalance = False
            yield self._users_on_workers

    def _pace(self, started: float) -> None:
        # Runs when the caller asks for the item after a step, so `elapsed` includes the caller's own work
        # (sending spawn messages, starting greenlets) and the wait only makes up the rest. Not reached if
        # the cycle is abandoned or closed at a yield: no wait then. No wait after the final step either.
        elapsed = time.perf_counter() - started
        self._dispatch_iteration_durations.append(elapsed)
        if self._current_user_count == self._target_user_count:
            return
        gevent.sleep(max(0.0, self._wait_between_dispatch - elapsed))

    def _add_users(self) -> Distribution:
        goal = min(self._current_user_count + self._user_count_per_dispatch_iteration, self._target_user_count)
        for user in self._user_generator:
            if not user:
                self._no_user_to_spawn = True
                break
            node = next(self._worker_node_generator)
            self._users_on_workers[node.id][user] += 1
            self._current_user_count += 1
            self._active_users.append((node, user))
            if self._current_user_count >= goal:
                break
        return self._users_on_workers

    def _remove_users(self) -> Distribution:
        goal = max(self._current_user_count - self._user_count_per_dispatch_iteration, self._target_user_count)
        while self._active_users:
            node, user = self._active_users.pop()
            self._users_on_workers[node.id][user] -= 1
            self._current_user_count -= 1
            # A removed user may be a fixed_count one: the next ramp-up tops fixed classes up again.
            self._try_dispatch_fixed = True
            if self._current_user_count == 0 or self._current_user_count <= goal:
                break
        return self._users_on_workers

    # --- orders ----------------------------------------------------------------------------------------

    @staticmethod
    def _ordered(nodes: Sequence[_WorkerNodeLike]) -> list[_WorkerNodeLike]:
        # The n-th worker of every host (id "host_rest"; a host's workers ranked by id) comes before any
        # host's (n+1)-th, ids breaking ties: users reach every host before any host gets a second one,
        # and the order does not depend on connection order.
        rank_on_host: defaultdict[str, int] = defaultdict(int)
        rank: dict[int, int] = {}
        for node in sorted(nodes, key=lambda node: node.id):
            host = node.id.split("_")[0]
            # Keyed by object: one node object listed twice keeps its last rank, as with Locust, which
            # stores the rank on the node.
            rank[id(node)] = rank_on_host[host]
            rank_on_host[host] += 1
        return sorted(nodes, key=lambda node: (rank[id(node)], node.id))

    def _user_order(self) -> Generator[str | None]:
        # The class of every next user. Generator bodies run on first use, so the classes and weights are
        # read then, as Locust reads them.
        weighted = _kl_order((cls.__name__, cls.weight) for cls in self._user_classes if not cls.fixed_count)
        while True:
            if not self._try_dispatch_fixed:
                yield next(weighted)
                continue
            self._try_dispatch_fixed = False
            # Missing fixed_count users come first, interleaved by how many of each are missing. Their
            # number is fixed now: a removal while they are handed out only takes effect afterwards.
            missing = [
                (cls.__name__, cls.fixed_count - self._get_user_current_count(cls.__name__))
                for cls in self._user_classes
                if cls.fixed_count
            ]
            missing = [(name, count) for name, count in missing if count > 0]
            fixed = _kl_order(missing)
            for _ in range(sum(count for _, count in missing)):
                yield next(fixed)

    def _replay(
        self, user_count: int
    ) -> tuple[Distribution, Iterator[str | None], Iterator[_WorkerNodeLike], list[tuple[_WorkerNodeLike, str]]]:
        # A ramp from zero to user_count on the current workers, without steps or waits: the distribution,
        # the class and worker generators positioned after it, and the placed users in order.
        users = self._user_order()
        workers = itertools.cycle(self._worker_nodes)
        counts = _empty_counts(self._worker_nodes, self._original_user_classes)
        active: list[tuple[_WorkerNodeLike, str]] = []
        while len(active) < user_count:
            user = next(users)
            if not user:
                break
            node = next(workers)
            counts[node.id][user] += 1
            active.append((node, user))
        return counts, users, workers, active
