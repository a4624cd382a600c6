"""xdist's scheduler protocol over the item graph (see :mod:`pytest_orchestrator.plugin.xdist`).

:class:`DagScheduling` implements xdist's scheduler protocol (``xdist/scheduler/protocol.py``). It reads the item
graph a worker handed over (:mod:`.xdist_handoff`), drives a :class:`~pytest_orchestrator.core.scheduler.DagScheduler`
(the outcome rules shared with serial mode) and decides which item each worker runs; which *ready* item is
:mod:`.xdist_dispatch`'s choice, and what the controller reports itself (dependency skips, items that never ran) is
:mod:`.xdist_reports`'s job.

The next-item rule. xdist's worker runs an item only once it has received the *next* one (pytest needs ``nextitem``
to know which fixtures to tear down), so the last item of a worker's queue waits. The scheduler never hides items
to work around it; it keeps a *follower* behind every item it wants running:

- a ready item when there is one (stock xdist's pipelining);
- else an item whose unfinished dependencies are all sent already (*placed*), best when they are on the same
  worker. It is held behind the running one; before it starts, the worker waits for the controller's *verdict*
  (run, or skipped because a dependency did not complete: :mod:`.xdist_worker`). The wait is bounded by the
  dependencies' own run, and no wait is circular: an item only ever waits for items sent before it;
- else, when nothing is left to send, ``shutdown`` releases the worker's last item (the end of the run).

So every item with dependencies starts only after all of them finished on any worker, and the scheduler never holds
a ready item for want of a follower while any other item could be sent.

Affinity. Under ``--dist loadfile``, ``loadscope`` or ``loadgroup`` an item's group, once bound to a worker, runs
there alone (:mod:`.xdist_dispatch`), in the same DAG order. A worker holding its last item may then find nothing
it may run that could follow it while what its items wait for is bound to other workers: those items are sent to
their workers at once, behind what these run (:meth:`DagScheduling._unblock`), until something can follow. When
nothing left may ever run on it, a ``shutdown`` releases its last item. Items are still sent only after their
dependencies, so no wait is circular.

Crashes. ``remove_node`` returns the item the dead worker was running (xdist reports it as failed), puts the
items it had not started back, and the crash item's dependents are skipped when xdist's crash report arrives (so
the output reads cause before effect).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import time
from typing import TYPE_CHECKING
from typing import Any

import pytest

from pytest_orchestrator.core.scheduler import COMPLETED
from pytest_orchestrator.core.scheduler import FAILED
from pytest_orchestrator.core.scheduler import SKIPPED
from pytest_orchestrator.core.scheduler import DagScheduler
from pytest_orchestrator.plugin.compat import is_crash_report
from pytest_orchestrator.plugin.compat import pending_by_node
from pytest_orchestrator.plugin.compat import quiet_log
from pytest_orchestrator.plugin.compat import should_stop
from pytest_orchestrator.plugin.compat import worker_count
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.dag import Node
from pytest_orchestrator.plugin.item_hooks import xfailed_reason
from pytest_orchestrator.plugin.options import xfail_deps_of
from pytest_orchestrator.plugin.outcomes import SYNTHETIC_ATTR
from pytest_orchestrator.plugin.xdist_dispatch import AFFINITY_MODES
from pytest_orchestrator.plugin.xdist_dispatch import Dispatcher
from pytest_orchestrator.plugin.xdist_dispatch import affinity_groups
from pytest_orchestrator.plugin.xdist_handoff import CHANNEL_KEY
from pytest_orchestrator.plugin.xdist_handoff import STOP
from pytest_orchestrator.plugin.xdist_handoff import VERDICT
from pytest_orchestrator.plugin.xdist_handoff import Handoff
from pytest_orchestrator.plugin.xdist_handoff import HandoffError
from pytest_orchestrator.plugin.xdist_handoff import decode
from pytest_orchestrator.plugin.xdist_handoff import receive
from pytest_orchestrator.plugin.xdist_reports import CONTROLLER
from pytest_orchestrator.plugin.xdist_reports import header_line
from pytest_orchestrator.plugin.xdist_reports import not_run_line
from pytest_orchestrator.plugin.xdist_reports import not_run_reason
from pytest_orchestrator.plugin.xdist_reports import report_collection_error
from pytest_orchestrator.plugin.xdist_reports import report_skip
from pytest_orchestrator.plugin.xdist_reports import say_notes
from pytest_orchestrator.plugin.xdist_reports import write_line


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.compat import WorkerNode
    from pytest_orchestrator.plugin.compat import XdistLog

__all__ = ["DagScheduling"]

_RERUN = "rerun"


class DagScheduling:
    """xdist's ``Scheduling`` protocol over the item graph: see the module docstring."""

    def __init__(
        self,
        config: pytest.Config,
        log: XdistLog | None,
        delegate: Any = None,
        inbox: Callable[[WorkerNode], Any] | None = None,
    ) -> None:
        """``log`` is xdist's (None: say nothing); ``delegate`` is xdist's own scheduler for ``--dist``, which runs
        the session when the graph has nothing to schedule (no edges, nothing skipped up front); ``inbox`` gives
        where a worker's item graph is read (default: the channel in its ``workerinput``)."""
        self.config = config
        self._inbox = inbox or (lambda node: node.workerinput.get(CHANNEL_KEY))
        self.delegate = delegate
        #: the delegate runs the session
        self.flat = False
        self.log: XdistLog = log.dagsched if log is not None else quiet_log()
        self.numnodes = worker_count(config)
        self.node2pending: dict[WorkerNode, list[int]] = {}
        self.node2collection: dict[WorkerNode, list[str]] = {}
        self._collections = 0
        self._usable: set[WorkerNode] = set()
        self._unusable: set[WorkerNode] = set()
        #: why nothing more can run although items are left (no usable worker)
        self.starved: str | None = None
        #: sent and not finished: node id -> the worker it was sent to
        self._placed: dict[str, WorkerNode] = {}
        #: candidates to follow a held item: not sent, every unfinished dependency sent (checked when chosen)
        self._placeable: set[str] = set()
        #: items not finished
        self._open: set[str] = set()
        self._stop_sent = False
        self.collection: list[str] | None = None
        self.graph: ItemGraph | None = None
        self.sched: DagScheduler[str] | None = None
        #: set when nothing can run: collections differ, or the workers' graph is unusable
        self.aborted: str | None = None
        self._indices: dict[str, list[int]] = {}
        self._dispatcher = Dispatcher()
        #: when the first item was sent and the last one finished (``time.perf_counter``)
        self.first_sent: float | None = None
        self.last_done: float | None = None
        self._left: dict[str, int] = {}
        self._outcome: dict[str, str] = {}
        #: items that ended xfailed, and what that means for their dependents (``--orchestrate-xfail-deps``)
        self._xfailed: set[str] = set()
        self._xfail_deps = xfail_deps_of(config)
        self._started: set[str] = set()
        #: the item a crashed worker was running -> that worker (until xdist's crash report arrives)
        self._crashed: dict[str, WorkerNode] = {}
        self._rerun_after_crash: set[str] = set()
        #: node ids whose outcome is known (reported by a worker, by xdist's crash report or by us)
        self.accounted: set[str] = set()
        #: worker id -> seconds spent in the runtest protocol (flush items included)
        self.busy: dict[str, float] = {}
        self.dependency_skips = 0
        self.crashes = 0

    # -- the Scheduling protocol ---------------------------------------------------------------------------
    @property
    def nodes(self) -> list[WorkerNode]:
        if self.flat:
            return list(self.delegate.nodes)
        return list(self.node2pending)

    @property
    def collection_is_completed(self) -> bool:
        return self._collections >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        if self.flat:
            return bool(self.delegate.tests_finished)
        if self.aborted is not None or self.starved is not None:
            return True
        if self.sched is None:
            return False
        return not self.sched.is_active() and not self._placed

    @property
    def has_pending(self) -> bool:
        if self.flat:
            return bool(self.delegate.has_pending)
        return self.sched is not None and self.sched.is_active()

    def add_node(self, node: WorkerNode) -> None:
        assert node not in self.node2pending
        self.node2pending[node] = []
        if self.delegate is not None:
            self.delegate.add_node(node)

    def add_node_collection(self, node: WorkerNode, collection: Sequence[str]) -> None:
        assert node in self.node2pending
        if self.delegate is not None and (self.flat or self.collection is None):
            # once the graph runs the session the delegate is idle: a replacement worker is none of its business
            self.delegate.add_node_collection(node, collection)
        self._collections += 1
        if self.collection is None:
            self.node2collection[node] = list(collection)
            return
        # a worker that replaces a crashed one
        if list(collection) == self.collection:
            self._usable.add(node)
            return
        report_collection_error(
            self.config, self.log, self.collection, list(collection), "the first workers", node.gateway.id
        )
        self._unusable.add(node)
        if all(n in self._unusable for n in self.node2pending):
            self.starved = "no worker left that collected the same tests"

    def mark_test_complete(self, node: WorkerNode, item_index: int, duration: float = 0) -> None:
        worker = node.gateway.id
        self.busy[worker] = self.busy.get(worker, 0.0) + duration
        if self.flat:
            self.last_done = time.perf_counter()
            self.delegate.mark_test_complete(node, item_index, duration)
            return
        pending = self.node2pending.get(node)
        if pending is not None and item_index in pending:
            pending.remove(item_index)
        assert self.collection is not None
        nodeid = self.collection[item_index]
        left = self._left.get(nodeid, 1) - 1
        self._left[nodeid] = left
        if left <= 0:
            self._left.pop(nodeid, None)
            self._placed.pop(nodeid, None)
            self.accounted.add(nodeid)
            self._finish(nodeid, self._outcome.pop(nodeid, COMPLETED), node)
        self._dispatch()

    def mark_test_pending(self, item: str) -> None:
        """Run ``item`` again (a ``pytest_handlecrashitem`` hook asks for it after a crash)."""
        if self.flat:
            self.delegate.mark_test_pending(item)
            return
        if self.sched is None or item not in self._dispatcher or self.sched.is_finished(item):
            return
        if self._crashed.pop(item, None) is not None:
            self._rerun_after_crash.add(item)
        self.accounted.discard(item)
        self._outcome.pop(item, None)
        self._placed.pop(item, None)
        self._dispatcher.running.discard(item)
        self._dispatcher.pool.add(item)
        self._dispatch()

    def remove_pending_tests_from_node(self, node: WorkerNode, indices: Sequence[int]) -> None:
        if not self.flat:
            raise NotImplementedError("the DAG scheduler never steals")
        self.delegate.remove_pending_tests_from_node(node, indices)

    def remove_node(self, node: WorkerNode) -> str | None:
        pending = self.node2pending.pop(node)
        if self.flat:
            crashitem: str | None = self.delegate.remove_node(node)
            return crashitem
        self._usable.discard(node)
        self._unusable.discard(node)
        self._dispatcher.last_parent.pop(node, None)
        self._dispatcher.unbind(node)  # its groups go to the next worker that gets one of their items
        self.node2collection.pop(node, None)
        if self.collection is None or self.sched is None:
            return None
        crash: str | None = None
        seen: set[str] = set()
        lost: list[str] = []
        for index in pending:
            nodeid = self.collection[index]
            if nodeid in seen:
                continue
            seen.add(nodeid)
            self._left.pop(nodeid, None)
            self._outcome.pop(nodeid, None)
            self._placed.pop(nodeid, None)
            self._dispatcher.running.discard(nodeid)
            if crash is None and nodeid in self._started:
                crash = nodeid
            elif not self.sched.is_finished(nodeid):
                self._unplace(nodeid)  # never started: another worker runs it
            elif nodeid not in self.accounted:  # skipped on a verdict the worker did not live to act on
                lost.append(nodeid)
        if crash is not None:
            self.crashes += 1
            self._crashed[crash] = node
        for nodeid in lost:
            self._report_skip(nodeid, self.sched.reasons.get(nodeid, "a dependency did not complete"), worker=node)
        self._dispatch()
        return crash

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.flat:
            self.delegate.schedule()
            return
        if self.aborted is not None:
            return
        if self.sched is None:
            self._initialize()
            if self.aborted is not None:
                return
        self._dispatch()

    # -- reports (forwarded by the controller plugin) -----------------------------------------------------------
    def logstart(self, nodeid: str) -> None:
        self._started.add(nodeid)

    def logfinish(self, nodeid: str) -> None:
        self._started.discard(nodeid)

    def logreport(self, report: pytest.TestReport) -> None:
        if getattr(report, SYNTHETIC_ATTR, False) or self.sched is None:
            return
        nodeid = report.nodeid
        if nodeid not in self._dispatcher or report.outcome == _RERUN or self.sched.is_finished(nodeid):
            return
        if is_crash_report(report):
            # xdist's report for the item a crashed worker was running: now skip its dependents
            if nodeid in self._rerun_after_crash:
                self._rerun_after_crash.discard(nodeid)
            elif nodeid in self._crashed:
                crashed = self._crashed.pop(nodeid)
                self._started.discard(nodeid)
                self.accounted.add(nodeid)
                self._finish(nodeid, FAILED, crashed)
                self._dispatch()
            return
        if report.failed:
            self._outcome[nodeid] = FAILED
        elif report.skipped and hasattr(report, "wasxfail") and self._outcome.get(nodeid) != FAILED:
            self._xfailed.add(nodeid)  # --orchestrate-xfail-deps: skip its dependents (default), or count it as met
            if self._xfail_deps != "run":
                self._outcome[nodeid] = SKIPPED
        elif report.skipped and self._outcome.get(nodeid) != FAILED:
            self._outcome[nodeid] = SKIPPED

    # -- setting up ---------------------------------------------------------------------------------------------
    def _initialize(self) -> None:
        (first, collection), *others = self.node2collection.items()
        mismatch = False
        for node, other in others:
            if other != collection:
                mismatch = True
                report_collection_error(self.config, self.log, collection, other, first.gateway.id, node.gateway.id)
        if mismatch:
            self.aborted = "the workers collected different tests"
            write_line(self.config, "orchestrate: the workers collected different tests; nothing was run", verbosity=-1)
            return
        self.collection = collection
        self._usable.update(self.node2collection)
        handoff = self._read_handoff(first)
        if handoff is None:
            return
        say_notes(self.config, self._inbox(first))  # what the workers' collection has for the user, said once
        graph = handoff.graph
        dist = self.config.getoption("dist", None)
        # xdist's loadgroup reads the groups off "@group" node id suffixes, which the workers leave out under
        # --orchestrate: a session with groups is ours even without edges
        if graph is None and self.delegate is not None and not (dist == "loadgroup" and handoff.groups):
            # nothing to schedule: the items travel as stock xdist sends them, by xdist's own scheduler
            self.flat = True
            self.first_sent = time.perf_counter()
            self.delegate.schedule()
            return
        if graph is None:
            graph = ItemGraph(
                Node(n, parent=n.partition("::")[0], location=(n.partition("::")[0], None, n))
                for n in dict.fromkeys(collection)
            )
        groups = affinity_groups(dist, graph, handoff.groups) if dist in AFFINITY_MODES else {}
        self._setup(graph, collection, groups)

    def _read_handoff(self, node: WorkerNode) -> Handoff | None:
        try:
            return decode(receive(self._inbox(node), node.gateway.id), node.gateway.id)
        except HandoffError as exc:
            if exc.usage_error:
                raise pytest.UsageError(exc.message) from None
            self.aborted = exc.message
            write_line(self.config, f"{exc.message}; nothing was run", verbosity=-1)
            return None

    def _setup(self, graph: ItemGraph, collection: list[str], groups: dict[str, str]) -> None:
        position: dict[str, int] = {}
        for index, nodeid in enumerate(collection):
            self._indices.setdefault(nodeid, []).append(index)
            position.setdefault(nodeid, index)
        for nodeid in position:
            if nodeid not in graph:  # not expected: the graph covers every item the workers run
                graph.nodes[nodeid] = Node(nodeid, parent=nodeid.rpartition("::")[0])
        self.graph = graph
        self._open = set(graph.nodes)
        sched = self.sched = graph.make_scheduler()
        self._dispatcher.setup(graph, sched, position, len(collection), groups)
        header = header_line(self.config, self.numnodes, graph)
        write_line(self.config, header, verbosity=-1 if "overridden" in header else 0)  # the override shows under -q
        for nodeid in graph.order():
            if sched.state[nodeid] == SKIPPED:  # skipped up front: a deselected or uncollected dependency
                self._report_skip(nodeid, sched.reasons.get(nodeid, "a dependency will not run"))
        for nodeid in graph.order():
            if nodeid not in position and not sched.is_finished(nodeid):
                reason = "not collected by the xdist workers"
                self._report_skip(nodeid, reason, dependency=False)
                for skipped, why in sched.done(nodeid, SKIPPED, reason):
                    self._report_skip(skipped, why)

    # -- running ------------------------------------------------------------------------------------------------
    def _stopping(self) -> bool:
        return bool(should_stop(self.config))

    def _finish(self, nodeid: str, outcome: str, worker: WorkerNode | None = None) -> None:
        """``nodeid`` ended with ``outcome`` (on ``worker``): settle its dependents."""
        sched = self.sched
        assert sched is not None
        if sched.is_finished(nodeid):
            return
        skipped = sched.done(nodeid, outcome)
        self._open.discard(nodeid)
        self._dispatcher.finished(nodeid, skipped)
        self.last_done = time.perf_counter()
        for dependent, _ in skipped:
            self._open.discard(dependent)
            self._placeable.discard(dependent)
        for finished in [nodeid, *(n for n, _ in skipped)]:
            for dependent in sched.dependents(finished):
                if dependent in self._open and dependent not in self._placed:
                    self._placeable.add(dependent)  # one dependency fewer to wait for (checked when chosen)
        if self._stopping():
            return  # -x / --maxfail: listed with what did not run
        for dependent, reason in skipped:
            node = self._placed.get(dependent)
            if node is not None:
                self._verdict(node, dependent, reason)  # the worker holds it: it reports the skip
            else:
                self._report_skip(dependent, reason, worker=worker)

    def _report_skip(
        self, nodeid: str, reason: str, *, dependency: bool = True, worker: WorkerNode | None = None
    ) -> None:
        """Report ``nodeid`` as skipped in setup, as serial mode does, without a worker. Its line under ``-v`` is
        the worker's that would have run it: the one its group is bound to, else ``worker`` (whose item's end
        decided the skip), else the controller's."""
        assert self.graph is not None
        node = self._dispatcher.lane(nodeid) or worker
        self.accounted.add(nodeid)
        self._open.discard(nodeid)
        self._placeable.discard(nodeid)
        self._dispatcher.pool.remove(nodeid)
        if dependency:
            self.dependency_skips += 1
            reason = xfailed_reason(reason, self._xfailed)
        where = node if node is not None else CONTROLLER
        report_skip(self.config, nodeid, self.graph.nodes[nodeid].location, reason, dependency=dependency, node=where)

    def _verdict(self, node: WorkerNode, nodeid: str, reason: str | None) -> None:
        """Tell ``node`` that the held ``nodeid`` may start (``reason`` None) or is skipped."""
        channel = node.workerinput.get(CHANNEL_KEY)
        if reason is not None:
            reason = xfailed_reason(reason, self._xfailed)
        if channel is not None:
            channel.send((VERDICT, nodeid, reason))

    def _stop_workers(self) -> None:
        """-x / --maxfail: the workers skip what still waits for a verdict."""
        if self._stop_sent:
            return
        self._stop_sent = True
        reason = f"not run: {should_stop(self.config) or 'the session is stopping'}"
        for node in self.node2pending:
            channel = node.workerinput.get(CHANNEL_KEY)
            if channel is not None:
                channel.send((STOP, reason))

    def _unplace(self, nodeid: str) -> None:
        """``nodeid`` was not run by the worker it was sent to: send it again."""
        sched = self.sched
        assert sched is not None and self.graph is not None
        if not self._deps_done(nodeid):
            self._placeable.add(nodeid)
        else:
            self._dispatcher.pool.add(nodeid)

    def _deps_done(self, nodeid: str) -> bool:
        sched = self.sched
        assert sched is not None and self.graph is not None
        return all(sched.is_finished(d) for d in self.graph.nodes[nodeid].deps)

    def _can_place(self, nodeid: str) -> bool:
        """Whether every unfinished dependency of ``nodeid`` is sent (so it may be held behind another item)."""
        sched = self.sched
        assert sched is not None and self.graph is not None
        if nodeid in self._placed or nodeid not in self._open:
            return False
        return all(d in self._placed or sched.is_finished(d) for d in self.graph.nodes[nodeid].deps)

    def _follower(self, node: WorkerNode, *, local: bool) -> str | None:
        """The best item to hold behind ``node``'s last one when no item is ready: dependencies on ``node`` first
        (only those when ``local``)."""
        best: tuple[bool, tuple[float, int], str] | None = None
        stale = []
        assert self.graph is not None
        allowed = self._dispatcher.allowed
        for nodeid in self._placeable:
            if not allowed(nodeid, node):
                continue  # its group is bound to another worker
            if not self._can_place(nodeid) or self._deps_done(nodeid):
                stale.append(nodeid)  # not placeable yet, or ready (the pool's)
                continue
            remote = any(self._placed.get(d, node) is not node for d in self.graph.nodes[nodeid].deps)
            if remote and local:
                continue
            candidate = (remote, self._dispatcher.key[nodeid], nodeid)
            if best is None or candidate < best:
                best = candidate
        self._placeable.difference_update(stale)
        return best[2] if best is not None else None

    def _dispatch(self) -> None:
        sched = self.sched
        if sched is None or self.aborted is not None:
            return
        if self._stopping():
            self._stop_workers()
            return
        pool = self._dispatcher.pool
        for nodeid in sched.get_ready():
            node = self._placed.get(nodeid)
            if node is not None:
                self._verdict(node, nodeid, None)  # held on a worker: it may start now
            else:
                pool.add(nodeid)
        while self._dispatch_round():
            pass

    def _dispatch_round(self) -> bool:
        """One round of sending (see the module docstring); whether anything was sent."""
        pool = self._dispatcher.pool
        free = [n for n in self.node2pending if n in self._usable and not n.shutting_down]
        holders = [n for n in free if len(self.node2pending[n]) == 1]
        empty = [n for n in free if not self.node2pending[n]]
        self._dispatcher.warm_first(holders)
        self._dispatcher.warm_first(empty)
        holders.sort(key=self._hunger)
        sent = False
        # 1. a holder gets an item that waits only for items of its own queue (a chain stays on one worker)
        for node in holders:
            follower = self._follower(node, local=True)
            if follower is not None:
                self._send(node, [follower])
                sent = True
        holders = [n for n in holders if len(self.node2pending[n]) == 1]
        # 2. an empty worker gets a ready item and something to hold behind it
        for position, node in enumerate(empty):
            if not pool:
                break
            batch = self._dispatcher.take(node, len(empty), len(self._usable))
            if not batch:
                continue  # every ready item is bound to another worker
            if len(batch) == 1:
                self._place(node, batch)  # its dependents may follow it
                follower = self._follower(node, local=False)
                if follower is not None:
                    batch.append(follower)
                elif len(pool) > len(empty) - position - 1:
                    batch.extend(self._dispatcher.take(node, len(empty), len(self._usable)))
                # else it is held until an item can follow it (or the last items are released by a shutdown)
            self._send(node, batch)
            sent = True
            if len(self.node2pending[node]) == 1:
                holders.append(node)
        # 3. a holder gets a ready item, else one that waits for other workers, else (nothing left) a shutdown
        for node in holders:
            if len(self.node2pending[node]) != 1:
                continue
            batch = self._dispatcher.take(node, len(holders), len(self._usable)) if pool else []
            if not batch:
                follower = self._follower(node, local=False)
                if follower is None and self._dispatcher.group:
                    follower = self._unblock(node)
                batch = [follower] if follower is not None else []
            if batch:
                self._send(node, batch)
                sent = True
            elif not any(self._dispatcher.allowed(n, node) for n in self._open.difference(self._placed)):
                node.shutdown()  # nothing left it may run: release its last item
        return sent

    def _unblock(self, node: WorkerNode) -> str | None:
        """Affinity: a follower for ``node``, which holds its last item, after sending the items that what it may
        run waits for, and that are bound to other workers, to those workers (behind what they run).

        Without this, ``node``'s held item could wait for a follower that waits for an item bound to a worker that
        waits for the held item. Only items whose dependencies are all sent are sent, so no wait is circular; each
        round sends at least one item, and the first unsent dependency of an item ``node`` may run is always
        sendable, so the loop ends with a follower or with nothing left that ``node`` may run.
        """
        assert self.graph is not None
        dispatcher = self._dispatcher
        while True:
            follower = self._follower(node, local=False)
            if follower is not None:
                return follower
            unsent = self._open.difference(self._placed)
            wanted = [n for n in unsent if dispatcher.allowed(n, node)]
            blockers: list[str] = []
            seen: set[str] = set()
            while wanted:
                for dep in self.graph.nodes[wanted.pop()].deps:
                    if dep in unsent and dep not in seen:
                        seen.add(dep)
                        wanted.append(dep)
                        if not dispatcher.allowed(dep, node) and self._can_place(dep):
                            blockers.append(dep)
            sent = False
            for nodeid in sorted(blockers, key=dispatcher.key.__getitem__):
                owner = dispatcher.lane(nodeid)
                if owner is None or owner not in self._usable or owner.shutting_down:
                    continue  # not expected: a group is bound to a live worker only
                self._send(owner, [nodeid])
                sent = True
            if not sent:
                return None

    def _hunger(self, node: WorkerNode) -> int:
        """Who gets ready items first: a worker holding a ready item (one more item runs it), then an empty one,
        then one whose held item still waits for its dependencies."""
        pending = self.node2pending[node]
        if not pending:
            return 1
        assert self.collection is not None
        return 0 if self._deps_done(self.collection[pending[-1]]) else 2

    def _place(self, node: WorkerNode, batch: list[str]) -> None:
        assert self.graph is not None and self.sched is not None
        for nodeid in batch:
            self._placed[nodeid] = node
            self._dispatcher.bind(nodeid, node)
            self._placeable.discard(nodeid)
            if nodeid in self._dispatcher.pool:
                self._dispatcher.pool.remove(nodeid)
                self._dispatcher.running.add(nodeid)
            for dependent in self.sched.dependents(nodeid):
                if dependent not in self._placed and dependent in self._open:
                    self._placeable.add(dependent)

    def _send(self, node: WorkerNode, batch: list[str]) -> None:
        assert self.graph is not None and self.sched is not None
        self._place(node, batch)
        indices: list[int] = []
        if self.first_sent is None:
            self.first_sent = time.perf_counter()
        for nodeid in batch:
            own = self._indices[nodeid]
            self._left[nodeid] = len(own)
            indices.extend(own)
            if self.graph.nodes[nodeid].deps and self._deps_done(nodeid):
                self._verdict(node, nodeid, None)  # its dependencies are done
        self.node2pending[node].extend(indices)
        node.send_runtest_some(indices)

    def queued(self, but: WorkerNode | None = None) -> set[str]:
        """Node ids sent to a worker other than ``but`` and not finished there. Read from execnet's receiving thread
        (a worker asks, :mod:`.xdist_controller`): it copies what it reads."""
        pending = pending_by_node(self.delegate) if self.flat else pending_by_node(self)
        collection = list(self.collection or ())
        out: set[str] = set()
        for node, indices in pending.items():
            if node is not but:
                out.update(collection[i] for i in indices if 0 <= i < len(collection))
        return out

    # -- the end ---------------------------------------------------------------------------------------------
    def span(self) -> float:
        """Seconds from the first item sent to the last one finished."""
        if self.first_sent is None or self.last_done is None:
            return 0.0
        return max(0.0, self.last_done - self.first_sent)

    def not_run(self) -> list[str]:
        if self.graph is None:
            return []
        return [n for n in self.graph.order() if n not in self.accounted]

    def finish_run(self, error: BaseException | None) -> None:
        """After xdist's loop: account for every item that never ran."""
        if self.graph is None or self.aborted is not None:
            return
        missing = self.not_run()
        if not missing:
            return
        stop = should_stop(self.config)
        if stop or error is not None:
            write_line(self.config, not_run_line(missing, str(stop) if stop else "interrupted"), verbosity=-1)
            return
        reason = not_run_reason(self.config, self.starved, self.crashes)
        for nodeid in missing:
            self._report_skip(nodeid, reason, dependency=False)
