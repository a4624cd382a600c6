"""``DagScheduler``: the state machine that decides what may start next, and what must be skipped.

It has the shape of ``graphlib.TopologicalSorter`` (``get_ready`` / ``done`` / ``is_active``) and, like it, does
no I/O and no threading, so one set of rules drives the asyncio engine, the serial pytest plugin and the xdist
scheduler alike.

The rules:

- A node becomes *decidable* once every one of its dependencies has finished (in any state).
- Its trigger rule then decides: ``all_success`` (default) runs only if every dependency completed, else the node
  is skipped with a reason naming the first dependency, in declaration order, that did not complete (and the root
  cause when that dependency was itself skipped because of another); ``all_done`` always runs; ``one_failed`` runs
  only if a dependency failed. Under ``all_success``, a *soft* dependency (``soft``) orders only: the node runs
  whatever it ended in; and of each *any-of* group (``any_of``) one completed dependency is enough.
- Ready nodes come out by the ``strategy`` (``STRATEGIES``): ``critical_path`` (default) by ``priority`` (higher
  first), then longest remaining path (most work behind them), then definition order; ``priority`` by priority,
  then definition order; ``fifo`` in the order they became ready.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Mapping
from collections.abc import Sequence
import heapq
from typing import Generic
from typing import Literal
from typing import TypeVar

from pytest_orchestrator.core.graph import dependents_of
from pytest_orchestrator.core.graph import remaining_path_lengths
from pytest_orchestrator.core.graph import topological_order
from pytest_orchestrator.core.status import FINISHED
from pytest_orchestrator.core.status import STRATEGIES
from pytest_orchestrator.core.status import TRIGGER_RULES


__all__ = [
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "SKIPPED",
    "STRATEGIES",
    "TRIGGER_RULES",
    "DagScheduler",
    "Outcome",
]

N = TypeVar("N", bound=Hashable)

Outcome = Literal["completed", "failed", "skipped", "cancelled"]
COMPLETED: Outcome = "completed"
FAILED: Outcome = "failed"
SKIPPED: Outcome = "skipped"
CANCELLED: Outcome = "cancelled"

_WAITING = "waiting"
_READY = "ready"
_RUNNING = "running"


class DagScheduler(Generic[N]):
    """Hands out ready nodes of a validated DAG and applies the outcome rules.

    Usage::

        sched = DagScheduler({"a": [], "b": ["a"], "c": ["a"]})
        while sched.is_active():
            for node in sched.get_ready():
                ...                       # start it
            skipped = sched.done(node, "failed")   # when one finishes: [(node, reason), ...] now skipped

    The graph's dependencies must all be known (``graph.check_known``); a cycle raises ``CycleError``.
    ``strategy`` orders the ready queue (see the module docstring). ``critical_path=False`` skips the path lengths
    and the ordering when everything ready runs at once anyway.
    """

    def __init__(
        self,
        graph: Mapping[N, Sequence[N]],
        *,
        weights: Mapping[N, float | None] | None = None,
        priorities: Mapping[N, int] | None = None,
        trigger_rules: Mapping[N, str] | None = None,
        critical_path: bool = True,
        strategy: str = "critical_path",
        soft: Mapping[N, Sequence[N]] | None = None,
        any_of: Mapping[N, Sequence[Sequence[N]]] | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
        self._deps: dict[N, tuple[N, ...]] = {
            n: (tuple(d) if len(d) < 2 else tuple(dict.fromkeys(d))) for n, d in graph.items()
        }
        self._rdeps = dependents_of(self._deps)
        order = topological_order(self._deps, rdeps=self._rdeps, stable=critical_path)  # raises CycleError
        #: node by definition index
        self._nodes: list[N] = list(self._deps)
        self._index = {n: i for i, n in enumerate(self._nodes)}
        #: with critical_path=False everything ready runs at once anyway: no path lengths, and the ready queue is
        #: first in, first out (indices), as with strategy "fifo"; otherwise a heap of (-priority, -remaining path,
        #: index), smallest first ("priority": the remaining path is 0 for all)
        self._fifo = not critical_path or strategy == "fifo"
        if critical_path and strategy == "critical_path":
            remaining = remaining_path_lengths(self._deps, weights, order=order, rdeps=self._rdeps)
            priorities = priorities or {}
            self._key = {n: (-priorities.get(n, 0), -remaining[n], i) for n, i in self._index.items()}
        elif not self._fifo:  # "priority": priority, then definition order
            remaining = {}
            priorities = priorities or {}
            self._key = {n: (-priorities.get(n, 0), 0.0, i) for n, i in self._index.items()}
        else:
            remaining = {}
            self._key = {}
        #: longest weighted path from each node to the end (empty with critical_path=False)
        self.remaining_path = remaining
        self._rules = dict(trigger_rules or {})
        #: per node: dependencies that order only, and groups of which one completed dependency is enough
        self._soft = {n: frozenset(d) for n, d in (soft or {}).items() if d}
        self._any_of = {n: [tuple(g) for g in groups] for n, groups in (any_of or {}).items() if groups}
        self._unfinished_deps = {n: len(d) for n, d in self._deps.items()}
        #: how many of a node's finished dependencies did not complete
        self._bad_deps = dict.fromkeys(self._deps, 0)
        self.state: dict[N, str] = dict.fromkeys(self._deps, _WAITING)
        #: why a node was skipped or cancelled by the rules
        self.reasons: dict[N, str] = {}
        #: for a node skipped because of its dependencies: (root node, its outcome)
        self.root_cause: dict[N, tuple[N, str]] = {}
        # A node finished or cancelled while ready stays in its queue and is dropped when it comes up (its state is
        # no longer ready): removing it at once cost O(n) per node, O(n^2) for a pytest session that finishes its
        # items in its own order. _nready counts the live entries.
        self._ready: list[tuple[int, float, int]] = []
        self._queue: collections.deque[int] = collections.deque()
        self._nready = 0
        self._active = len(self._deps)
        for node in order if critical_path else self._nodes:
            if not self._deps[node]:
                self._push(node)

    # -- queries ---------------------------------------------------------------------------------------------
    def is_active(self) -> bool:
        """True while some node has not finished."""
        return self._active > 0

    def dependents(self, node: N) -> list[N]:
        return self._rdeps[node]

    def has_ready(self) -> bool:
        return self._nready > 0

    def is_finished(self, node: N) -> bool:
        return self.state[node] in FINISHED

    # -- transitions -----------------------------------------------------------------------------------------
    def get_ready(self, limit: int | None = None) -> list[N]:
        """Take up to ``limit`` ready nodes (all if ``None``), best first, and mark them running."""
        out: list[N] = []
        nodes, state = self._nodes, self.state
        if self._fifo:
            queue = self._queue
            count = self._nready if limit is None else min(limit, self._nready)
            while len(out) < count:
                node = nodes[queue.popleft()]
                if state[node] == _READY:
                    state[node] = _RUNNING
                    out.append(node)
        else:
            ready = self._ready
            count = self._nready if limit is None else min(limit, self._nready)
            while len(out) < count:
                node = nodes[heapq.heappop(ready)[2]]
                if state[node] == _READY:
                    state[node] = _RUNNING
                    out.append(node)
        self._nready -= len(out)
        return out

    def done(self, node: N, outcome: str, reason: str | None = None) -> list[tuple[N, str]]:
        """Record that ``node`` finished with ``outcome``; return the nodes the rules now skip, with reasons.

        ``node`` may be waiting, ready or running: a caller may finish a node that never started (a marker skip,
        a deselected dependency). Newly runnable dependents join the ready queue.
        """
        if outcome not in FINISHED:
            raise ValueError(f"unknown outcome {outcome!r}; expected one of {sorted(map(str, FINISHED))}")
        state = self.state[node]
        if state in FINISHED:
            raise ValueError(f"node {node!r} already finished ({state})")
        if state == _READY:
            self._unqueue(node)
        self.state[node] = outcome
        self._active -= 1
        if reason is not None:
            self.reasons[node] = reason
        skipped: list[tuple[N, str]] = []
        if self._rdeps[node]:
            self._release(node, skipped)
        return skipped

    def cancel_pending(
        self, reason: str, keep: Callable[[N], bool] | None = None
    ) -> tuple[list[N], list[tuple[N, str]]]:
        """Stop new work: every node not yet running is cancelled, except those ``keep`` spares.

        By default nodes whose trigger rule is ``all_done`` or ``one_failed`` are spared (that is how cleanup is
        written). Returns ``(cancelled, skipped)``: skipped are spared nodes whose rule now says skip.
        """
        if keep is None:

            def keep(n: N) -> bool:
                return self._rules.get(n, "all_success") != "all_success"

        victims = [n for n, s in self.state.items() if s in (_WAITING, _READY) and not keep(n)]
        for node in victims:
            if self.state[node] == _READY:
                self._unqueue(node)
            self._finish(node, CANCELLED, reason)
        skipped: list[tuple[N, str]] = []
        for node in victims:
            self._release(node, skipped)
        return victims, skipped

    # -- internals -------------------------------------------------------------------------------------------
    def _push(self, node: N) -> None:
        self.state[node] = _READY
        self._nready += 1
        if self._fifo:
            self._queue.append(self._index[node])
        else:
            heapq.heappush(self._ready, self._key[node])

    def _unqueue(self, node: N) -> None:
        # the caller changes the node's state next: its queue entry is dropped when it comes up
        self._nready -= 1

    def _finish(self, node: N, outcome: str, reason: str | None) -> None:
        self.state[node] = outcome
        self._active -= 1
        if reason is not None:
            self.reasons[node] = reason

    def _release(self, node: N, skipped: list[tuple[N, str]]) -> None:
        unfinished, bad, state, rdeps, rules = (
            self._unfinished_deps,
            self._bad_deps,
            self.state,
            self._rdeps,
            self._rules,
        )
        stack = [node]
        while stack:
            finished = stack.pop()
            completed = state[finished] == COMPLETED
            for child in rdeps[finished]:
                left = unfinished[child] - 1
                unfinished[child] = left
                if not completed:
                    bad[child] += 1
                if left or state[child] != _WAITING:
                    continue
                if not bad[child] and (not rules or rules.get(child, "all_success") != "one_failed"):
                    self._push(child)  # every dependency completed: the common case needs no verdict
                    continue
                reason = self._verdict(child)
                if reason is None:
                    self._push(child)
                else:
                    self._finish(child, SKIPPED, reason)
                    skipped.append((child, reason))
                    stack.append(child)

    def _verdict(self, node: N) -> str | None:
        """None if ``node`` may run now that its dependencies finished, else the reason it is skipped."""
        rule = self._rules.get(node, "all_success")
        deps = self._deps[node]
        if rule == "all_done":
            return None
        if rule == "one_failed":
            if any(self.state[d] == FAILED for d in deps):
                return None
            return "trigger rule one_failed: no dependency failed"
        soft = self._soft.get(node, frozenset())
        groups = self._any_of.get(node, ())
        grouped = {d for g in groups for d in g}
        failing = [d for d in deps if d not in soft and d not in grouped and self.state[d] != COMPLETED]
        for group in groups:
            if not any(self.state[d] == COMPLETED for d in group):
                failing.append(group[0])
        for dep in sorted(failing, key=deps.index):
            outcome = self.state[dep]
            root = self.root_cause.get(dep)
            if root is None:
                root = (dep, outcome)
            self.root_cause[node] = root
            reason = f"dependency {dep!r} " + ("failed" if outcome == FAILED else f"was {outcome}")
            if root[0] != dep:
                reason += f" (root cause: {root[0]!r} " + ("failed" if root[1] == FAILED else f"was {root[1]}") + ")"
            return reason
        return None
