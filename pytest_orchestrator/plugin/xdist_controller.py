"""The controller half of the DAG-aware xdist scheduler (see :mod:`pytest_orchestrator.plugin.xdist`).

:class:`DagScheduling` implements xdist's scheduler protocol (``xdist/scheduler/protocol.py``). It reads the item
graph the workers wrote (:mod:`.xdist_worker`), drives a :class:`~pytest_orchestrator.core.scheduler.DagScheduler`
(the outcome rules shared with serial mode) and sends an item to a worker only once every dependency finished.

Dispatch. A worker gets work only when it has no real item in flight: the best ready item (longest remaining
path, then collection order), preferring items of the module or class the worker ran last (its fixtures are warm)
when they are as good (within :data:`TOLERANCE`), and otherwise a module no other worker is in. When the ready
pool is large, a batch of small independent items (no dependents) of the same parent follows the first one, to
save round trips. Every batch ends with the flush item of its last item's parent, so no real item is ever the
last one in a worker's queue (xdist's worker runs an item only once it knows the next one).

Skips. A dependent of an item that did not pass is never sent: the controller reports it as skipped itself
(logstart, a skipped setup report, a passed teardown report, logfinish), with the reason the rules give.

Crashes. ``remove_node`` returns the item the dead worker was running (xdist reports it as failed), puts the
items it had not started back into the pool, and the crash item's dependents are skipped when xdist's crash report
arrives (so the output reads cause before effect). Items that never ran because no worker was left are reported
as skipped at the end of the run; after ``-x``/``--maxfail`` one line lists what did not run.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
import heapq
import json
import os
import shutil
import tempfile
import time
from typing import TYPE_CHECKING
from typing import Any

import pytest

from pytest_orchestrator.core.scheduler import COMPLETED
from pytest_orchestrator.core.scheduler import FAILED
from pytest_orchestrator.core.scheduler import SKIPPED
from pytest_orchestrator.core.scheduler import DagScheduler
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.dag import Node
from pytest_orchestrator.plugin.summary import DEPENDENCY_SKIP_ATTR
from pytest_orchestrator.plugin.xdist_worker import FLUSH_NAME
from pytest_orchestrator.plugin.xdist_worker import GRAPH_DIR_KEY
from pytest_orchestrator.plugin.xdist_worker import graph_file


if TYPE_CHECKING:
    from xdist.remote import Producer
    from xdist.workermanage import WorkerController

__all__ = ["ControllerPlugin", "DagScheduling"]

#: set on the reports the controller makes up (dependency skips, items that never ran)
SYNTHETIC_ATTR = "orchestrate_synthetic"
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
_RERUN = "rerun"
FLUSH_SUFFIX = "::" + FLUSH_NAME


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


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


class DagScheduling:
    """xdist's ``Scheduling`` protocol over the item graph: see the module docstring."""

    def __init__(self, config: pytest.Config, log: Producer | None, plugin: ControllerPlugin) -> None:
        from xdist.remote import Producer
        from xdist.workermanage import parse_tx_spec_config

        self.config = config
        self.log = log.dagsched if log is not None else Producer("dagsched", enabled=False)
        self.plugin = plugin
        self.numnodes = len(parse_tx_spec_config(config))
        self.node2pending: dict[WorkerController, list[int]] = {}
        self.node2collection: dict[WorkerController, list[str]] = {}
        self._collections = 0
        self._usable: set[WorkerController] = set()
        self._unusable: set[WorkerController] = set()
        #: why nothing more can run although items are left (no usable worker)
        self.starved: str | None = None
        self._inflight: dict[WorkerController, int] = {}
        self._last_parent: dict[WorkerController, str] = {}
        self._last_item: dict[WorkerController, str] = {}
        self.collection: list[str] | None = None
        self.graph: ItemGraph | None = None
        self.sched: DagScheduler[str] | None = None
        #: set when nothing can run: collections differ, or the workers' graph is unusable
        self.aborted: str | None = None
        self._indices: dict[str, list[int]] = {}
        self._flush: dict[str, int] = {}
        self._flush_indices: set[int] = set()
        self._parent: dict[str, str] = {}
        self._key: dict[str, tuple[float, int]] = {}
        self._small: set[str] = set()
        self._weight: dict[str, float] = {}
        #: summed weight of the items not finished
        self._work = 0.0
        self._running: set[str] = set()
        #: when the first item was sent and the last one finished (``time.perf_counter``)
        self.first_sent: float | None = None
        self.last_done: float | None = None
        self._pool = _Pool(self._key, self._parent)
        self._left: dict[str, int] = {}
        self._outcome: dict[str, str] = {}
        self._started: set[str] = set()
        self._crashed: dict[str, str] = {}
        self._rerun_after_crash: set[str] = set()
        #: node ids whose outcome is known (reported by a worker, by xdist's crash report or by us)
        self.accounted: set[str] = set()
        #: worker id -> seconds spent in the runtest protocol (flush items included)
        self.busy: dict[str, float] = {}
        self.dependency_skips = 0
        self.crashes = 0

    # -- the Scheduling protocol ---------------------------------------------------------------------------
    @property
    def nodes(self) -> list[WorkerController]:
        return list(self.node2pending)

    @property
    def collection_is_completed(self) -> bool:
        return self._collections >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        if self.aborted is not None or self.starved is not None:
            return True
        if self.sched is None:
            return False
        return not self.sched.is_active() and not any(self._inflight.values())

    @property
    def has_pending(self) -> bool:
        return self.sched is not None and self.sched.is_active()

    def add_node(self, node: WorkerController) -> None:
        assert node not in self.node2pending
        self.node2pending[node] = []
        self._inflight[node] = 0

    def add_node_collection(self, node: WorkerController, collection: Sequence[str]) -> None:
        assert node in self.node2pending
        self._collections += 1
        if self.collection is None:
            self.node2collection[node] = list(collection)
            return
        # a worker that replaces a crashed one
        if list(collection) == self.collection:
            self._usable.add(node)
            return
        self._collection_error(self.collection, list(collection), "the first workers", node.gateway.id)
        self._unusable.add(node)
        if all(n in self._unusable for n in self.node2pending):
            self.starved = "no worker left that collected the same tests"

    def mark_test_complete(self, node: WorkerController, item_index: int, duration: float = 0) -> None:
        worker = node.gateway.id
        self.busy[worker] = self.busy.get(worker, 0.0) + duration
        pending = self.node2pending.get(node)
        if pending is not None and item_index in pending:
            pending.remove(item_index)
        if item_index in self._flush_indices:
            return
        assert self.collection is not None
        self._inflight[node] = self._inflight.get(node, 1) - 1
        nodeid = self.collection[item_index]
        self._last_item[node] = nodeid
        left = self._left.get(nodeid, 1) - 1
        self._left[nodeid] = left
        if left <= 0:
            self._left.pop(nodeid, None)
            self.accounted.add(nodeid)
            self._finish(nodeid, self._outcome.pop(nodeid, COMPLETED))
        self._dispatch()

    def mark_test_pending(self, item: str) -> None:
        """Run ``item`` again (a ``pytest_handlecrashitem`` hook asks for it after a crash)."""
        if self.sched is None or item not in self._key or self.sched.is_finished(item):
            return
        if self._crashed.pop(item, None) is not None:
            self._rerun_after_crash.add(item)
        self.accounted.discard(item)
        self._outcome.pop(item, None)
        self._running.discard(item)
        self._pool.add(item)
        self._dispatch()

    def remove_pending_tests_from_node(self, node: WorkerController, indices: Sequence[int]) -> None:
        raise NotImplementedError("the DAG scheduler never steals")

    def remove_node(self, node: WorkerController) -> str | None:
        pending = self.node2pending.pop(node)
        self._inflight.pop(node, None)
        self._usable.discard(node)
        self._unusable.discard(node)
        self._last_parent.pop(node, None)
        self._last_item.pop(node, None)
        self.node2collection.pop(node, None)
        if self.collection is None:
            return None
        crash: str | None = None
        seen: set[str] = set()
        for index in pending:
            if index in self._flush_indices:
                continue
            nodeid = self.collection[index]
            if nodeid in seen:
                continue
            seen.add(nodeid)
            self._left.pop(nodeid, None)
            self._outcome.pop(nodeid, None)
            self._running.discard(nodeid)
            if crash is None and nodeid in self._started:
                crash = nodeid
            else:
                self._pool.add(nodeid)  # never started: another worker runs it
        if crash is not None:
            self.crashes += 1
            self._crashed[crash] = node.gateway.id
        self._dispatch()
        return crash

    def schedule(self) -> None:
        assert self.collection_is_completed
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
        if nodeid not in self._key or report.outcome == _RERUN or self.sched.is_finished(nodeid):
            return
        if report.when == "???":
            # xdist's report for the item a crashed worker was running: now skip its dependents
            if nodeid in self._rerun_after_crash:
                self._rerun_after_crash.discard(nodeid)
            elif nodeid in self._crashed:
                del self._crashed[nodeid]
                self._started.discard(nodeid)
                self.accounted.add(nodeid)
                self._finish(nodeid, FAILED)
                self._dispatch()
            return
        if report.failed:
            self._outcome[nodeid] = FAILED
        elif report.skipped and self._outcome.get(nodeid) != FAILED:
            self._outcome[nodeid] = SKIPPED

    def adopt_flush_report(self, report: pytest.TestReport) -> None:
        """File a flush item's teardown error under the real item its worker ran last (serial pytest reports a
        module fixture's teardown error as the teardown error of the module's last item)."""
        node = getattr(report, "node", None)
        nodeid = self._last_item.get(node) if node is not None else None
        if nodeid is None or self.graph is None:
            return
        report.nodeid = nodeid
        report.location = self.graph.nodes[nodeid].location

    # -- setting up ---------------------------------------------------------------------------------------------
    def _collection_error(self, expected: list[str], got: list[str], from_id: str, to_id: str) -> None:
        from xdist.report import report_collection_diff

        msg = report_collection_diff(expected, got, from_id, to_id) or f"{to_id} collected different tests"
        self.log(msg)
        rep = pytest.CollectReport(nodeid=to_id, outcome="failed", longrepr=msg, result=[])
        self.config.hook.pytest_collectreport(report=rep)

    def _initialize(self) -> None:
        (first, collection), *others = self.node2collection.items()
        mismatch = False
        for node, other in others:
            if other != collection:
                mismatch = True
                self._collection_error(collection, other, first.gateway.id, node.gateway.id)
        if mismatch:
            self.aborted = "the workers collected different tests"
            self._line("orchestrate: the workers collected different tests; nothing was run", verbosity=-1)
            return
        self.collection = collection
        self._usable.update(self.node2collection)
        graph = self._read_graph(first.gateway.id)
        if graph is None:
            return
        self._setup(graph, collection)

    def _read_graph(self, worker: str) -> ItemGraph | None:
        folder = self.plugin.folder
        data: dict[str, Any] = {}
        if folder is not None:
            try:
                with open(graph_file(folder, worker), encoding="utf-8") as stream:
                    data = json.load(stream)
            except (OSError, ValueError) as exc:
                data = {"error": f"orchestrate: cannot read the item graph of worker {worker}: {exc}"}
        else:
            data = {"error": "orchestrate: no folder for the workers' item graph"}
        if "error" in data:
            if data.get("usage_error"):
                raise pytest.UsageError(str(data["error"]))
            self.aborted = str(data["error"])
            self._line(f"{data['error']}; nothing was run", verbosity=-1)
            return None
        self._flush = {str(k): int(v) for k, v in data.get("flush", {}).items()}
        return ItemGraph.from_json(data["graph"])

    def _setup(self, graph: ItemGraph, collection: list[str]) -> None:
        self._flush_indices = set(self._flush.values())
        position: dict[str, int] = {}
        for index, nodeid in enumerate(collection):
            self._indices.setdefault(nodeid, []).append(index)
            position.setdefault(nodeid, index)
        for nodeid in position:
            if nodeid not in graph:  # not expected: the graph covers every item the workers run
                graph.nodes[nodeid] = Node(nodeid, parent=nodeid.rpartition("::")[0])
        self.graph = graph
        sched = self.sched = graph.make_scheduler()
        remaining = sched.remaining_path
        end = len(collection)
        known = sorted(n.estimated_duration for n in graph.nodes.values() if n.estimated_duration is not None)
        unit = (known[len(known) // 2] if known else 1.0) or 1e-9
        for nodeid, node in graph.nodes.items():
            self._weight[nodeid] = unit if node.estimated_duration is None else node.estimated_duration
            self._parent[nodeid] = node.parent
            self._key[nodeid] = (-remaining.get(nodeid, 0.0), position.get(nodeid, end))
            estimate = node.estimated_duration
            if not sched.dependents(nodeid) and (estimate is None or estimate <= SMALL_ITEM):
                self._small.add(nodeid)
        session_plugin = self.plugin.session_plugin()
        if session_plugin is not None and getattr(session_plugin, "graph", None) is None:
            session_plugin.graph = graph  # the workflow summary's critical path and "not run" count
        self._work = sum(w for n, w in self._weight.items() if not sched.is_finished(n))
        self._header(graph)
        for nodeid in graph.order():
            if sched.state[nodeid] == SKIPPED:  # skipped up front: a deselected or uncollected dependency
                self._report_skip(nodeid, sched.reasons.get(nodeid, "a dependency will not run"))
        for nodeid in graph.order():
            if nodeid not in position and not sched.is_finished(nodeid):
                reason = "not collected by the xdist workers"
                self._report_skip(nodeid, reason, dependency=False)
                for skipped, why in sched.done(nodeid, SKIPPED, reason):
                    self._report_skip(skipped, why)

    def _header(self, graph: ItemGraph) -> None:
        dist = self.config.getoption("dist", None)
        text = (
            f"orchestrate: DAG scheduling on {_plural(self.numnodes, 'worker')}: "
            f"{_plural(len(graph), 'item')}, {graph.edge_count()} "
            f"{'dependency' if graph.edge_count() == 1 else 'dependencies'}"
        )
        if dist not in (None, "no", "load"):
            text += f"; --dist={dist} overridden by the DAG scheduler"
        self._line(text)

    def _line(self, text: str, *, verbosity: int = 0) -> None:
        """Print ``text`` unless ``-q`` brought the verbosity below ``verbosity``."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and self.config.option.verbose >= verbosity:
            reporter.ensure_newline()
            reporter.write_line(text)

    # -- running ------------------------------------------------------------------------------------------------
    def _stopping(self) -> bool:
        dsession = self.config.pluginmanager.get_plugin("dsession")
        return bool(getattr(dsession, "shouldstop", False))

    def _finish(self, nodeid: str, outcome: str) -> None:
        sched = self.sched
        assert sched is not None
        if sched.is_finished(nodeid):
            return
        skipped = sched.done(nodeid, outcome)
        self._running.discard(nodeid)
        self._work -= self._weight[nodeid] + sum(self._weight[n] for n, _ in skipped)
        self.last_done = time.perf_counter()
        if self._stopping():
            return  # -x / --maxfail: listed with what did not run
        for dependent, reason in skipped:
            self._report_skip(dependent, reason)

    def _report_skip(self, nodeid: str, reason: str, *, dependency: bool = True) -> None:
        """Report ``nodeid`` as skipped in setup, as serial mode does, without a worker."""
        assert self.graph is not None
        self.accounted.add(nodeid)
        self._pool.remove(nodeid)
        if dependency:
            self.dependency_skips += 1
        rel, lineno, domain = self.graph.nodes[nodeid].location
        if not rel:
            rel = nodeid.split("::")[0]
            domain = domain or nodeid
        location = (rel, lineno, domain)
        path = os.path.normpath(os.path.join(str(self.config.rootpath), rel))
        longrepr = (path, (lineno or 0) + 1, f"Skipped: {reason}")
        hook = self.config.hook
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        setup = pytest.TestReport(nodeid, location, {}, "skipped", longrepr, "setup", user_properties=[])
        setattr(setup, SYNTHETIC_ATTR, True)
        if dependency:
            setattr(setup, DEPENDENCY_SKIP_ATTR, True)
        hook.pytest_runtest_logreport(report=setup)
        teardown = pytest.TestReport(nodeid, location, {}, "passed", None, "teardown", user_properties=[])
        setattr(teardown, SYNTHETIC_ATTR, True)
        hook.pytest_runtest_logreport(report=teardown)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)

    def _dispatch(self) -> None:
        sched = self.sched
        if sched is None or self.aborted is not None or self._stopping():
            return
        for nodeid in sched.get_ready():
            self._pool.add(nodeid)
        if not self._pool:
            return
        idle = [n for n in self.node2pending if n in self._usable and not n.shutting_down and not self._inflight[n]]
        # workers whose warm module has ready items choose first
        idle.sort(key=lambda n: self._pool.best(self._last_parent.get(n, "\0")) is None)
        for node in idle:
            if not self._pool:
                break
            head = self._choose(node)
            self._send(node, self._batch(head, len(idle)))

    def _choose(self, node: WorkerController) -> str:
        """The item ``node`` runs next: the best critical item, else one of its warm module, else of a module
        no other worker is in, else the best."""
        pool, key, parent = self._pool, self._key, self._parent
        best = pool.best()
        assert best is not None
        top = -key[best][0]  # keys hold the negated remaining path
        horizon = max(top, self._work / max(1, len(self._usable)))
        if self._running:
            horizon = max(horizon, *(-key[n][0] for n in self._running))
        critical = top >= horizon * (1 - SLACK)
        last = self._last_parent.get(node)
        warm = pool.best(last) if last is not None else None
        if warm is not None and (not critical or -key[warm][0] >= top * (1 - TOLERANCE)):
            return warm
        if critical:
            return best
        owned = {p for n, p in self._last_parent.items() if n is not node}
        if parent[best] not in owned:
            return best
        choice: str | None = None
        for group, first in pool.parent_tops():
            if group not in owned and (choice is None or key[first] < key[choice]):
                choice = first
        return choice or best

    def _batch(self, head: str, idle: int) -> list[str]:
        batch = [head]
        self._pool.remove(head)
        if head not in self._small:
            return batch
        workers = max(1, len(self._usable), idle)
        limit = min(MAX_BATCH, len(self._pool) // (2 * workers))
        budget = BATCH_SECONDS
        graph = self.graph
        assert graph is not None
        parent = self._parent[head]
        while len(batch) <= limit:
            candidate = self._pool.best(parent)
            if candidate is None or candidate not in self._small:
                candidate = self._pool.best()
            if candidate is None or candidate not in self._small:
                break
            budget -= graph.nodes[candidate].estimated_duration or 0.0
            if budget < 0:
                break
            batch.append(candidate)
            self._pool.remove(candidate)
            parent = self._parent[candidate]
        return batch

    def _send(self, node: WorkerController, batch: list[str]) -> None:
        indices: list[int] = []
        if self.first_sent is None:
            self.first_sent = time.perf_counter()
        for nodeid in batch:
            self._running.add(nodeid)
            own = self._indices[nodeid]
            self._left[nodeid] = len(own)
            indices.extend(own)
        parent = self._parent[batch[-1]]
        flush = self._flush.get(parent)
        if flush is None:  # not expected; any flush item keeps the last real one from being held
            flush = min(self._flush_indices)
        indices.append(flush)
        self._inflight[node] += len(indices) - 1
        self._last_parent[node] = parent
        self.node2pending[node].extend(indices)
        node.send_runtest_some(indices)

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
        dsession = self.config.pluginmanager.get_plugin("dsession")
        stop = getattr(dsession, "shouldstop", False)
        if stop or error is not None:
            why = str(stop) if stop else "interrupted"
            shown = ", ".join(missing[:10]) + (f", ... ({len(missing) - 10} more)" if len(missing) > 10 else "")
            self._line(f"orchestrate: {_plural(len(missing), 'item')} not run ({why}): {shown}", verbosity=-1)
            return
        if self.starved is not None:
            reason = f"not run: {self.starved}"
        else:
            restart = self.config.getoption("maxworkerrestart", None)
            reason = f"not run: no xdist worker left ({_plural(self.crashes, 'worker crash')}"
            reason += f", --max-worker-restart={restart})" if restart is not None else ")"
        for nodeid in missing:
            self._report_skip(nodeid, reason, dependency=False)


class ControllerPlugin:
    """Registered on the xdist controller under ``--orchestrate``: installs :class:`DagScheduling`."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.folder: str | None = None
        self.scheduler: DagScheduling | None = None

    def session_plugin(self) -> Any:
        from pytest_orchestrator.plugin import SESSION_PLUGIN_NAME

        return self.config.pluginmanager.get_plugin(SESSION_PLUGIN_NAME)

    def pytest_configure_node(self, node: WorkerController) -> None:
        if self.folder is None:
            self.folder = tempfile.mkdtemp(prefix="pytest-orchestrate-")
        node.workerinput[GRAPH_DIR_KEY] = self.folder

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Producer) -> DagScheduling:
        self.scheduler = DagScheduling(config, log, self)
        return self.scheduler

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        if self.scheduler is not None:
            self.scheduler.logstart(nodeid)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        if self.scheduler is not None:
            self.scheduler.logfinish(nodeid)

    @pytest.hookimpl(tryfirst=True, specname="pytest_runtest_logreport")
    def pytest_runtest_logreport_flush(self, report: pytest.TestReport) -> None:
        if self.scheduler is not None and report.nodeid.endswith(FLUSH_SUFFIX):
            self.scheduler.adopt_flush_report(report)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # trylast: the terminal and junitxml have shown a crash report before its dependents' skips
        if self.scheduler is not None:
            self.scheduler.logreport(report)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        error: BaseException | None = None
        try:
            return (yield)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if self.scheduler is not None and not isinstance(error, pytest.UsageError):
                self.scheduler.finish_run(error)

    def pytest_orchestrate_summary(self, config: pytest.Config, summary: dict[str, Any], lines: list[str]) -> None:
        sched = self.scheduler
        if sched is None or not sched.busy:
            return
        span = sched.span()
        shown = span >= 0.05  # percentages of a tiny span are noise
        parts = []
        for worker in sorted(sched.busy, key=lambda w: (len(w), w)):
            busy = sched.busy[worker]
            parts.append(f"{worker} {busy:.2f} s" + (f" ({min(1.0, busy / span):.0%})" if shown else ""))
        total = sum(sched.busy.values())
        line = "xdist workers busy: " + ", ".join(parts)
        if shown:
            efficiency = min(1.0, total / (span * sched.numnodes))
            line += f"; parallel efficiency {efficiency:.0%} ({sched.numnodes} workers x {span:.2f} s)"
        lines.append(line)
        notes = []
        if sched.dependency_skips:
            notes.append(f"{_plural(sched.dependency_skips, 'dependency skip')} reported by the controller")
        if sched.crashes:
            notes.append(_plural(sched.crashes, "worker crash"))
        if notes:
            lines.append("xdist: " + ", ".join(notes))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
