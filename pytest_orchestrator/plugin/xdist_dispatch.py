"""The dispatch policy of the xdist DAG scheduler (:mod:`.xdist_scheduling`): which ready item a free worker gets.

A worker gets work only when it has no real item in flight: the best ready item (longest remaining path, then
collection order), preferring items of the module or class the worker ran last (its fixtures are warm) when they
are as good (within :data:`TOLERANCE`), and otherwise a module no other worker is in. When the ready pool is large,
a batch of small independent items (no dependents) of the same parent follows the first one, to save round trips.
(The scheduler, :mod:`.xdist_scheduling`, decides when a worker gets work: xdist's worker runs an item only once
it knows the next one.)

Affinity (``--dist loadfile``, ``loadscope``, ``loadgroup``): each item may have a *group* (:func:`affinity_groups`:
its file, its module or class, its ``xdist_group``). The first item of a group sent to a worker binds the group to
that worker; from then on the group's items are offered to that worker alone (:meth:`Dispatcher.allowed`), still in
the DAG's order. A crashed worker's groups are unbound, so the next worker that gets one of their items keeps them.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
import heapq
from typing import TYPE_CHECKING

from pytest_orchestrator.core.graph import node_weights
from pytest_orchestrator.core.scheduler import DagScheduler
from pytest_orchestrator.plugin.dag import ItemGraph


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.compat import WorkerNode

__all__ = [
    "AFFINITY_MODES",
    "BATCH_SECONDS",
    "MAX_BATCH",
    "SLACK",
    "SMALL_ITEM",
    "TOLERANCE",
    "Dispatcher",
    "affinity_groups",
]

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


#: the ``--dist`` modes that keep items together on one worker (:func:`affinity_groups`)
AFFINITY_MODES = ("loadfile", "loadscope", "loadgroup")

_Entry = tuple[tuple[float, int], str]


def affinity_groups(dist: str | None, graph: ItemGraph, xdist_groups: Mapping[str, str]) -> dict[str, str]:
    """``{node id: group}`` for ``--dist`` mode ``dist``; an item without a group goes to any worker.

    ``loadfile``: the file of the node id (xdist's ``LoadFileScheduling``); ``loadscope``: the module or class the
    item belongs to, its parent collector (xdist's ``LoadScopeScheduling`` splits the node id at its last ``::``,
    the same collector unless a parameter id holds ``::``); ``loadgroup``: the ``xdist_group`` names the worker
    handed over (``xdist_groups``), items without one are free, as in xdist's ``LoadGroupScheduling``.
    """
    if dist == "loadfile":
        return {n: n.split("::", 1)[0] for n in graph.nodes}
    if dist == "loadscope":
        return {n: node.parent or n.rsplit("::", 1)[0] for n, node in graph.nodes.items()}
    if dist == "loadgroup":
        return {n: group for n, group in xdist_groups.items() if n in graph.nodes}
    return {}


class _Pool:
    """Ready items not yet sent, best first overall and per parent collector (heaps with lazy deletion).

    Each item is in one *lane*: the worker its group is bound to, or None (any worker); a worker is offered its
    own lane and lane None.
    """

    def __init__(
        self, key: dict[str, tuple[float, int]], parent: dict[str, str], lane: Callable[[str], object]
    ) -> None:
        self._key = key
        self._parent = parent
        self._lane = lane
        #: node id -> its lane
        self._members: dict[str, object] = {}
        self._heap: dict[object, list[_Entry]] = {}
        self._by_parent: dict[tuple[object, str], list[_Entry]] = {}

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, nodeid: object) -> bool:
        return nodeid in self._members

    def add(self, nodeid: str) -> None:
        if nodeid in self._members:
            return
        lane = self._lane(nodeid)
        self._members[nodeid] = lane
        entry = (self._key[nodeid], nodeid)
        heapq.heappush(self._heap.setdefault(lane, []), entry)
        heapq.heappush(self._by_parent.setdefault((lane, self._parent[nodeid]), []), entry)

    def remove(self, nodeid: str) -> None:
        self._members.pop(nodeid, None)

    def relane(self, nodeid: str) -> None:
        """``nodeid``'s group was bound or unbound: move it to its lane now."""
        if nodeid in self._members:
            self.remove(nodeid)
            self.add(nodeid)

    def _top(self, lane: object, heap: list[_Entry]) -> str | None:
        members = self._members
        while heap and (heap[0][1] not in members or members[heap[0][1]] is not lane):
            heapq.heappop(heap)
        return heap[0][1] if heap else None

    def _lane_best(self, lane: object, parent: str | None) -> str | None:
        if parent is None:
            heap = self._heap.get(lane)
            return self._top(lane, heap) if heap is not None else None
        heap = self._by_parent.get((lane, parent))
        if heap is None:
            return None
        top = self._top(lane, heap)
        if top is None:
            del self._by_parent[(lane, parent)]
        return top

    def best(self, parent: str | None = None, node: object = None) -> str | None:
        """The best ready item ``node`` may run (of ``parent`` when given); ``node`` None: of lane None only."""
        best = self._lane_best(None, parent)
        if node is not None:
            own = self._lane_best(node, parent)
            if own is not None and (best is None or self._key[own] < self._key[best]):
                best = own
        return best

    def parent_tops(self, node: object = None) -> Iterator[tuple[str, str]]:
        for lane, parent in list(self._by_parent):
            if lane is None or lane is node:
                top = self._lane_best(lane, parent)
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
        #: node id -> its affinity group (items without one go to any worker)
        self.group: dict[str, str] = {}
        #: affinity group -> the worker it is bound to
        self.bound: dict[str, WorkerNode] = {}
        self._members: dict[str, list[str]] = {}
        self.pool = _Pool(self.key, self.parent, self.lane)
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

    def setup(
        self,
        graph: ItemGraph,
        sched: DagScheduler[str],
        position: dict[str, int],
        end: int,
        groups: Mapping[str, str] | None = None,
    ) -> None:
        """Rank the items of ``graph``; ``position`` is each one's first index in the collection (else ``end``);
        ``groups`` are the items' affinity groups (:func:`affinity_groups`)."""
        self._graph = graph
        self.group = dict(groups or {})
        for nodeid, group in self.group.items():
            self._members.setdefault(group, []).append(nodeid)
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

    # -- affinity ----------------------------------------------------------------------------------------------
    def lane(self, nodeid: str) -> WorkerNode | None:
        """The worker ``nodeid`` must run on (its group is bound to it), else None."""
        group = self.group.get(nodeid)
        return None if group is None else self.bound.get(group)

    def allowed(self, nodeid: str, node: WorkerNode) -> bool:
        """Whether ``node`` may run ``nodeid``: it has no group, or its group is unbound or bound to ``node``."""
        lane = self.lane(nodeid)
        return lane is None or lane is node

    def bind(self, nodeid: str, node: WorkerNode) -> None:
        """``nodeid`` is sent to ``node``: its group (if unbound) is bound to ``node`` from now on."""
        group = self.group.get(nodeid)
        if group is None or group in self.bound:
            return
        self.bound[group] = node
        for member in self._members[group]:
            self.pool.relane(member)

    def unbind(self, node: WorkerNode) -> None:
        """``node`` is gone: its groups go to the next worker that gets one of their items."""
        for group in [g for g, n in self.bound.items() if n is node]:
            del self.bound[group]
            for member in self._members[group]:
                self.pool.relane(member)

    def finished(self, nodeid: str, skipped: list[tuple[str, str]]) -> None:
        """``nodeid`` finished and the rules skipped ``skipped`` (``(node id, reason)`` pairs)."""
        self.running.discard(nodeid)
        self._work -= self._weight[nodeid] + sum(self._weight[n] for n, _ in skipped)

    def warm_first(self, idle: list[WorkerNode]) -> None:
        """Sort ``idle`` in place: workers whose warm module has ready items choose first."""
        idle.sort(key=lambda n: self.pool.best(self.last_parent.get(n, "\0"), n) is None)

    def take(self, node: WorkerNode, idle: int, usable: int) -> list[str]:
        """Take ``node``'s next batch out of the pool (``idle`` workers are free, ``usable`` can run items); empty
        when no ready item may run on ``node``."""
        if self.pool.best(node=node) is None:
            return []
        batch = self._batch(node, self._choose(node, usable), idle, usable)
        self.running.update(batch)
        self.last_parent[node] = self.parent[batch[-1]]
        return batch

    def _choose(self, node: WorkerNode, usable: int) -> str:
        """The item ``node`` runs next: the best critical item, else one of its warm module, else of a module
        no other worker is in, else the best."""
        pool, key, parent = self.pool, self.key, self.parent
        best = pool.best(node=node)
        assert best is not None
        top = -key[best][0]  # keys hold the negated remaining path
        horizon = max(top, self._work / max(1, usable))
        if self.running:
            horizon = max(horizon, *(-key[n][0] for n in self.running))
        critical = top >= horizon * (1 - SLACK)
        last = self.last_parent.get(node)
        warm = pool.best(last, node) if last is not None else None
        if warm is not None and (not critical or -key[warm][0] >= top * (1 - TOLERANCE)):
            return warm
        if critical:
            return best
        owned = {p for n, p in self.last_parent.items() if n is not node}
        if parent[best] not in owned:
            return best
        choice: str | None = None
        for group, first in pool.parent_tops(node):
            if group not in owned and (choice is None or key[first] < key[choice]):
                choice = first
        return choice or best

    def _batch(self, node: WorkerNode, head: str, idle: int, usable: int) -> list[str]:
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
            candidate = self.pool.best(parent, node)
            if candidate is None or candidate not in self._small:
                candidate = self.pool.best(node=node)
            if candidate is None or candidate not in self._small:
                break
            budget -= graph.nodes[candidate].estimated_duration or 0.0
            if budget < 0:
                break
            batch.append(candidate)
            self.pool.remove(candidate)
            parent = self.parent[candidate]
        return batch
