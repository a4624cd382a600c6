"""The dispatch policy of the xdist DAG scheduler (:mod:`.xdist_scheduling`): which ready item a free worker gets.

A worker gets work only when it has no real item in flight: the best ready item (longest remaining path, then
collection order), preferring items of the module or class the worker ran last (its fixtures are warm) when they
are as good (within :data:`TOLERANCE`), and otherwise a module no other worker is in. When the ready pool is large,
a batch of small independent items (no dependents) of the same parent follows the first one, to save round trips.
(The scheduler, :mod:`.xdist_scheduling`, decides when a worker gets work: xdist's worker runs an item only once
it knows the next one.)
"""

from __future__ import annotations

from collections.abc import Iterator
import heapq
from typing import TYPE_CHECKING

from pytest_orchestrator.core.graph import node_weights
from pytest_orchestrator.core.scheduler import DagScheduler
from pytest_orchestrator.plugin.dag import ItemGraph


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.compat import WorkerNode

__all__ = ["BATCH_SECONDS", "MAX_BATCH", "SLACK", "SMALL_ITEM", "TOLERANCE", "Dispatcher"]

#: an item is *critical* when its remaining path is within this fraction of the horizon (the longer of the longest
#: remaining path and the remaining work per worker): it goes first even if it costs a module's fixtures
SLACK = 0.2
#: a critical item's module-mates within this fraction of its remaining path are as good
TOLERANCE = 0.1
#: at most this many items per batch
MAX_BATCH = 64
#: extra items join a batch only when their remembered duration is at most this (or unknown) ...
SMALL_ITEM = 0.02
#: ... and while the extras of the batch add up to at most this many seconds
BATCH_SECONDS = 0.1


class _Pool:
    """Ready items not yet sent, best first overall and per parent collector (heaps with lazy deletion)."""

    def __init__(self, key: dict[str, tuple[float, int]], parent: dict[str, str]) -> None:
        self._key = key
        self._parent = parent
        self._members: set[str] = set()
        self._heap: list[tuple[tuple[float, int], str]] = []
        self._by_parent: dict[str, list[tuple[tuple[float, int], str]]] = {}

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, nodeid: object) -> bool:
        return nodeid in self._members

    def add(self, nodeid: str) -> None:
        if nodeid in self._members:
            return
        self._members.add(nodeid)
        entry = (self._key[nodeid], nodeid)
        heapq.heappush(self._heap, entry)
        heapq.heappush(self._by_parent.setdefault(self._parent[nodeid], []), entry)

    def remove(self, nodeid: str) -> None:
        self._members.discard(nodeid)

    def _top(self, heap: list[tuple[tuple[float, int], str]]) -> str | None:
        while heap and heap[0][1] not in self._members:
            heapq.heappop(heap)
        return heap[0][1] if heap else None

    def best(self, parent: str | None = None) -> str | None:
        """The best ready item (of ``parent`` when given)."""
        if parent is None:
            return self._top(self._heap)
        heap = self._by_parent.get(parent)
        if heap is None:
            return None
        top = self._top(heap)
        if top is None:
            del self._by_parent[parent]
        return top

    def parent_tops(self) -> Iterator[tuple[str, str]]:
        for parent in list(self._by_parent):
            top = self.best(parent)
            if top is not None:
                yield parent, top


class Dispatcher:
    """The pool of ready items not yet sent, the rank of every item, and the choice of each worker's next batch.

    The scheduler adds ready items to :attr:`pool`, tells :meth:`finished` when an item finished (with the
    dependents the rules skipped), and asks :meth:`take` for a free worker's batch.
    """

    def __init__(self) -> None:
        #: node id -> (negated remaining path, collection position): smaller is better
        self.key: dict[str, tuple[float, int]] = {}
        #: node id -> its parent collector (module, class or script file)
        self.parent: dict[str, str] = {}
        self.pool = _Pool(self.key, self.parent)
        #: items sent and not finished
        self.running: set[str] = set()
        #: worker -> the parent of the last item sent to it (its fixtures are warm)
        self.last_parent: dict[WorkerNode, str] = {}
        self._graph: ItemGraph | None = None
        self._small: set[str] = set()
        self._weight: dict[str, float] = {}
        #: summed weight of the items not finished
        self._work = 0.0

    def __contains__(self, nodeid: object) -> bool:
        """Whether ``nodeid`` is an item of the graph."""
        return nodeid in self.key

    def setup(self, graph: ItemGraph, sched: DagScheduler[str], position: dict[str, int], end: int) -> None:
        """Rank the items of ``graph``; ``position`` is each one's first index in the collection (else ``end``)."""
        self._graph = graph
        remaining = sched.remaining_path
        # the weights of the scheduler's remaining paths: unknown durations count as the median known one
        self._weight.update(node_weights(graph.deps_map(), graph.estimates()))
        for nodeid, node in graph.nodes.items():
            self.parent[nodeid] = node.parent
            self.key[nodeid] = (-remaining.get(nodeid, 0.0), position.get(nodeid, end))
            estimate = node.estimated_duration
            if not sched.dependents(nodeid) and (estimate is None or estimate <= SMALL_ITEM):
                self._small.add(nodeid)
        self._work = sum(w for n, w in self._weight.items() if not sched.is_finished(n))

    def finished(self, nodeid: str, skipped: list[tuple[str, str]]) -> None:
        """``nodeid`` finished and the rules skipped ``skipped`` (``(node id, reason)`` pairs)."""
        self.running.discard(nodeid)
        self._work -= self._weight[nodeid] + sum(self._weight[n] for n, _ in skipped)

    def warm_first(self, idle: list[WorkerNode]) -> None:
        """Sort ``idle`` in place: workers whose warm module has ready items choose first."""
        idle.sort(key=lambda n: self.pool.best(self.last_parent.get(n, "\0")) is None)

    def take(self, node: WorkerNode, idle: int, usable: int) -> list[str]:
        """Take ``node``'s next batch out of the pool (``idle`` workers are free, ``usable`` can run items)."""
        batch = self._batch(self._choose(node, usable), idle, usable)
        self.running.update(batch)
        self.last_parent[node] = self.parent[batch[-1]]
        return batch

    def _choose(self, node: WorkerNode, usable: int) -> str:
        """The item ``node`` runs next: the best critical item, else one of its warm module, else of a module
        no other worker is in, else the best."""
        pool, key, parent = self.pool, self.key, self.parent
        best = pool.best()
        assert best is not None
        top = -key[best][0]  # keys hold the negated remaining path
        horizon = max(top, self._work / max(1, usable))
        if self.running:
            horizon = max(horizon, *(-key[n][0] for n in self.running))
        critical = top >= horizon * (1 - SLACK)
        last = self.last_parent.get(node)
        warm = pool.best(last) if last is not None else None
        if warm is not None and (not critical or -key[warm][0] >= top * (1 - TOLERANCE)):
            return warm
        if critical:
            return best
        owned = {p for n, p in self.last_parent.items() if n is not node}
        if parent[best] not in owned:
            return best
        choice: str | None = None
        for group, first in pool.parent_tops():
            if group not in owned and (choice is None or key[first] < key[choice]):
                choice = first
        return choice or best

    def _batch(self, head: str, idle: int, usable: int) -> list[str]:
        batch = [head]
        self.pool.remove(head)
        if head not in self._small:
            return batch
        workers = max(1, usable, idle)
        limit = min(MAX_BATCH, len(self.pool) // (2 * workers))
        budget = BATCH_SECONDS
        graph = self._graph
        assert graph is not None
        parent = self.parent[head]
        while len(batch) <= limit:
            candidate = self.pool.best(parent)
            if candidate is None or candidate not in self._small:
                candidate = self.pool.best()
            if candidate is None or candidate not in self._small:
                break
            budget -= graph.nodes[candidate].estimated_duration or 0.0
            if budget < 0:
                break
            batch.append(candidate)
            self.pool.remove(candidate)
            parent = self.parent[candidate]
        return batch
