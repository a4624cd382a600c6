"""The xdist DAG scheduler (``plugin/xdist_controller.py``) against a simulation of xdist's controller and workers.

The simulated worker follows xdist's rule (``xdist/remote.py``): it runs an item only once it has received the
next index or ``shutdown``. The simulated controller does what ``DSession`` does with a scheduler: ``add_node``,
``add_node_collection`` + ``schedule``, ``mark_test_complete``, a shutdown once ``tests_finished``, and on a crash
``remove_node`` followed by xdist's crash report and a replacement worker. Random DAGs check that nothing
deadlocks, nothing starts before its dependencies finished, and every item ends as serial mode's rules say.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
import random
import types
from typing import Any

import pytest

from pytest_orchestrator.core.scheduler import COMPLETED
from pytest_orchestrator.core.scheduler import FAILED
from pytest_orchestrator.core.scheduler import SKIPPED
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.dag import Node
from pytest_orchestrator.plugin.outcomes import SYNTHETIC_ATTR
from pytest_orchestrator.plugin.xdist_controller import ControllerPlugin
from pytest_orchestrator.plugin.xdist_controller import DagScheduling
from pytest_orchestrator.plugin.xdist_handoff import CHANNEL_KEY
from pytest_orchestrator.plugin.xdist_handoff import STOP
from pytest_orchestrator.plugin.xdist_handoff import VERDICT
from pytest_orchestrator.plugin.xdist_handoff import encode


SHUTDOWN = "shutdown"


class FakeGateway:
    def __init__(self, worker_id: str) -> None:
        self._id = worker_id

    @property
    def id(self) -> str:
        return self._id

    def newchannel(self) -> Any:
        raise AssertionError("the simulation hands the channel over directly")


class FakeChannel:
    """The execnet channel to one worker: the worker's hand-off message, and what the controller sent back."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.sent: list[Any] = []

    def receive(self, timeout: float | None = None) -> str:
        return self.message

    def send(self, item: Any) -> None:
        self.sent.append(item)


class FakeNode:
    """A worker as the scheduler sees it (``WorkerController``) plus the worker's queue."""

    def __init__(self, worker_id: str) -> None:
        self.gateway = FakeGateway(worker_id)
        self.queue: deque[int | str] = deque()
        self.held: int | str | None = None
        self.sent_shutdown = False
        self.down = False
        self.sent: list[list[int]] = []
        self.workerinput: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<FakeNode {self.gateway.id}>"

    @property
    def shutting_down(self) -> bool:
        return self.down or self.sent_shutdown

    def send_runtest_some(self, indices: list[int]) -> None:
        assert not self.shutting_down
        self.sent.append(list(indices))
        self.queue.extend(indices)

    def shutdown(self) -> None:
        if not self.down:
            self.queue.append(SHUTDOWN)
            self.sent_shutdown = True


class Hooks:
    """``config.hook``: forwards to the controller plugin as pluggy would, and records what is reported."""

    def __init__(self) -> None:
        self.plugin: ControllerPlugin | None = None
        self.events: list[tuple[str, Any]] = []

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.events.append(("logstart", nodeid))
        assert self.plugin is not None
        self.plugin.pytest_runtest_logstart(nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.events.append(("report", report))
        assert self.plugin is not None
        self.plugin.pytest_runtest_logreport(report)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self.events.append(("logfinish", nodeid))
        assert self.plugin is not None
        self.plugin.pytest_runtest_logfinish(nodeid)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self.events.append(("collectreport", report))


class FakeDSession:
    shouldstop: bool | str = False


def make_config(tmp_path: Path, workers: int, dist: str = "load") -> Any:
    hooks = Hooks()
    dsession = FakeDSession()
    plugins = {"dsession": dsession}
    options = {"tx": ["popen"] * workers, "dist": dist, "maxworkerrestart": None}
    return types.SimpleNamespace(
        hook=hooks,
        getvalue=lambda name: options[name],
        getoption=lambda name, default=None: options.get(name, default),
        option=types.SimpleNamespace(verbose=-1),
        pluginmanager=types.SimpleNamespace(get_plugin=plugins.get),
        rootpath=tmp_path,
        dsession=dsession,
    )


class Simulation:
    def __init__(
        self,
        tmp_path: Path,
        graph: ItemGraph,
        outcomes: dict[str, str],
        workers: int,
        *,
        seed: int = 0,
        dist: str = "load",
        groups: dict[str, str] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.graph = graph
        self.outcomes = outcomes
        self.config = make_config(tmp_path, workers, dist)
        self.plugin = ControllerPlugin(self.config)
        self.config.hook.plugin = self.plugin
        self.sched = DagScheduling(self.config, None)
        self.plugin.scheduler = self.sched
        self.collection = list(graph.nodes)
        data = encode(graph, groups)
        #: items that wait for the controller's verdict on the worker (they have dependencies)
        self.gated = {n for n, node in graph.nodes.items() if node.deps}
        #: items the workers skipped on the controller's verdict
        self.verdict_skips: dict[str, str] = {}
        self.workers = workers
        self.next_id = 0
        self.nodes: list[FakeNode] = []
        self.tmp_path = tmp_path
        self.data = data
        self.clock = 0
        self.finished_at: dict[str, int] = {}
        self.started_at: dict[str, int] = {}
        self.ran: list[str] = []
        #: node id -> the worker that ran it (last time)
        self.ran_on: dict[str, str] = {}
        self.shutdown_triggered = False
        self.max_restarts = 10
        #: act like a ``pytest_handlecrashitem`` hook that asks for the crashed item to run again
        self.rerun_crashed = False
        self.crashed_once: set[str] = set()

    def new_node(self) -> FakeNode:
        node = FakeNode(f"gw{self.next_id}")
        self.next_id += 1
        node.workerinput[CHANNEL_KEY] = FakeChannel(self.data)
        self.nodes.append(node)
        self.sched.add_node(node)
        return node

    def collect(self, node: FakeNode) -> None:
        self.sched.add_node_collection(node, self.collection)
        if self.sched.collection_is_completed:
            self.sched.schedule()
        self.after_event()

    def after_event(self) -> None:
        stop = self.sched.tests_finished or self.config.dsession.shouldstop
        if stop and not self.shutdown_triggered:
            self.shutdown_triggered = True
            for node in self.sched.nodes:
                node.shutdown()

    def report(self, nodeid: str, outcome: str, when: str) -> None:
        longrepr: Any = None
        if outcome == "skipped":
            longrepr = ("x.py", 1, "Skipped: own skip")
        elif outcome == "failed":
            longrepr = "boom"
        rep = pytest.TestReport(nodeid, ("x.py", 0, nodeid), {}, outcome, longrepr, when)  # type: ignore[arg-type]
        self.config.hook.pytest_runtest_logreport(rep)

    def verdict(self, node: FakeNode, nodeid: str, *, take: bool) -> tuple[bool, str | None]:
        """Whether the controller gave its verdict on ``nodeid`` to ``node``, and the skip reason if any."""
        sent = node.workerinput[CHANNEL_KEY].sent
        for i, message in enumerate(sent):
            if message[0] == VERDICT and message[1] == nodeid:
                if take:
                    del sent[i]
                return True, message[2]
        for message in sent:
            if message[0] == STOP:
                return True, message[1]
        return False, None

    def run_item(self, node: FakeNode, index: int) -> bool:
        """Run one index on ``node``; False when the worker crashed."""
        self.clock += 1
        nodeid = self.collection[index]
        if nodeid in self.gated:
            known, reason = self.verdict(node, nodeid, take=True)
            assert known
            if reason is not None:
                self.verdict_skips[nodeid] = reason
                self.config.hook.pytest_runtest_logstart(nodeid, None)
                self.report(nodeid, "skipped", "setup")
                self.report(nodeid, "passed", "teardown")
                self.config.hook.pytest_runtest_logfinish(nodeid, None)
                self.sched.mark_test_complete(node, index, 0.0)
                return True
        self.started_at[nodeid] = self.clock
        self.ran.append(nodeid)
        self.ran_on[nodeid] = node.gateway.id
        hooks = self.config.hook
        hooks.pytest_runtest_logstart(nodeid, None)
        own = self.outcomes.get(nodeid, "passed")
        if own == "crash_once":
            if nodeid not in self.crashed_once:
                self.crashed_once.add(nodeid)
                return False
            own = "passed"
        if own == "crash":
            return False
        if own == "skipped":
            self.report(nodeid, "skipped", "setup")
        else:
            self.report(nodeid, "passed", "setup")
            self.report(nodeid, own, "call")
        self.report(nodeid, "passed", "teardown")
        hooks.pytest_runtest_logfinish(nodeid, None)
        self.finished_at[nodeid] = self.clock
        self.sched.mark_test_complete(node, index, 0.01)
        return True

    def crash(self, node: FakeNode) -> None:
        node.down = True
        self.nodes.remove(node)
        crashitem = self.sched.remove_node(node)
        if crashitem:
            if self.rerun_crashed:
                self.sched.mark_test_pending(crashitem)
            rep = pytest.TestReport(crashitem, ("x.py", None, "x.py"), {}, "failed", "crashed", "???")  # type: ignore[arg-type]
            self.config.hook.pytest_runtest_logreport(rep)
            self.finished_at[crashitem] = self.clock
        self.max_restarts -= 1
        if self.max_restarts >= 0:
            self.shutdown_triggered = False
            self.collect(self.new_node())
        else:
            self.shutdown_triggered = True
            for other in self.sched.nodes:
                other.shutdown()
        self.after_event()

    def runnable(self, node: FakeNode) -> bool:
        if node.held is None:
            return bool(node.queue)
        if node.held == SHUTDOWN or not node.queue:
            return False
        held = node.held
        assert isinstance(held, int)
        return self.collection[held] not in self.gated or self.verdict(node, self.collection[held], take=False)[0]

    def step(self, node: FakeNode) -> None:
        if node.held is None:
            node.held = node.queue.popleft()
            if node.held == SHUTDOWN:
                self.finish_node(node)
            return
        index = node.held
        node.held = node.queue.popleft()
        assert isinstance(index, int)
        if not self.run_item(node, index):
            self.crash(node)
            return
        self.after_event()
        if node.held == SHUTDOWN:
            self.finish_node(node)

    def finish_node(self, node: FakeNode) -> None:
        node.down = True
        self.nodes.remove(node)
        assert self.sched.remove_node(node) is None

    def run(self) -> None:
        for _ in range(self.workers):
            self.new_node()
        for node in list(self.nodes):
            self.collect(node)
        for _ in range(100_000):
            ready = [n for n in self.nodes if self.runnable(n)]
            if not ready:
                break
            self.step(self.rng.choice(ready))
        stuck = [(n, n.held, list(n.queue)) for n in self.nodes]
        assert not self.nodes, f"deadlock: workers waiting {stuck}; not run {self.sched.not_run()}"
        self.sched.finish_run(None)


def expected(graph: ItemGraph, outcomes: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Serial mode's result: (node id -> completed/failed/skipped, node id -> skip reason of dependency skips)."""
    sched = graph.make_scheduler()
    for nodeid in graph.order():
        if sched.is_finished(nodeid):
            continue
        own = outcomes.get(nodeid, "passed")
        sched.done(nodeid, {"passed": COMPLETED, "failed": FAILED, "crash": FAILED, "skipped": SKIPPED}[own])
    return dict(sched.state), dict(sched.reasons)


def random_graph(rng: random.Random, size: int, modules: int = 3) -> ItemGraph:
    nodes: list[Node] = []
    for i in range(size):
        module = f"test_m{rng.randrange(modules)}.py"
        deps = list(dict.fromkeys(rng.choice(nodes).nodeid for _ in range(rng.choice((0, 0, 1, 1, 2, 3))) if nodes))
        nodes.append(Node(f"{module}::test_{i}", deps=deps, parent=module, location=(module, i, f"test_{i}")))
    return ItemGraph(nodes)


def synthetic_skips(sim: Simulation) -> dict[str, str]:
    out = {}
    for kind, value in sim.config.hook.events:
        if kind == "report" and getattr(value, SYNTHETIC_ATTR, False) and value.when == "setup":
            out[value.nodeid] = value.longrepr[2].removeprefix("Skipped: ")
    return out


def check(sim: Simulation, graph: ItemGraph, outcomes: dict[str, str]) -> None:
    states, reasons = expected(graph, outcomes)
    skips = synthetic_skips(sim) | sim.verdict_skips
    for nodeid in states:
        if nodeid in reasons:  # skipped by the rules: reported by the controller, never run
            assert nodeid not in sim.ran, nodeid
            assert skips.get(nodeid) == reasons[nodeid], nodeid
        else:
            assert nodeid in sim.ran, f"{nodeid} never ran"
            assert sim.ran.count(nodeid) == 1, nodeid
            for dep in graph.nodes[nodeid].deps:
                assert sim.finished_at[dep] < sim.started_at[nodeid], (nodeid, dep)
    assert sim.sched.not_run() == []


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_random_dags_no_deadlock_same_outcomes(tmp_path: Path, workers: int) -> None:
    rng = random.Random(workers)
    for case in range(40):
        graph = random_graph(rng, rng.randrange(0, 30))
        outcomes = {n: rng.choice(("passed",) * 6 + ("failed", "skipped")) for n in graph}
        folder = tmp_path / f"{case}"
        folder.mkdir()
        sim = Simulation(folder, graph, outcomes, workers, seed=case)
        sim.run()
        check(sim, graph, outcomes)


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda n: [[f"t.py::t{i - 1}"] if i else [] for i in range(n)], id="chain"),
        pytest.param(lambda n: [[] if i == 0 else ["t.py::t0"] for i in range(n)], id="fan-out"),
        pytest.param(
            lambda n: [[f"t.py::t{j}" for j in range(n - 1)] if i == n - 1 else [] for i in range(n)], id="fan-in"
        ),
        pytest.param(
            lambda n: [
                [] if i == 0 else ["t.py::t0"] if i < n - 1 else [f"t.py::t{j}" for j in range(1, n - 1)]
                for i in range(n)
            ],
            id="diamond",
        ),
    ],
)
@pytest.mark.parametrize("workers", [1, 2, 5])
def test_shapes(tmp_path: Path, shape: Callable[[int], list[list[str]]], workers: int) -> None:
    deps = shape(7)
    graph = ItemGraph(
        Node(f"t.py::t{i}", deps=d, parent="t.py", location=("t.py", i, f"t{i}")) for i, d in enumerate(deps)
    )
    sim = Simulation(tmp_path, graph, {}, workers)
    sim.run()
    check(sim, graph, {})


def test_batches_shape(tmp_path: Path) -> None:
    graph = ItemGraph(
        Node(f"m{i % 3}.py::t{i}", parent=f"m{i % 3}.py", location=(f"m{i % 3}.py", i, "")) for i in range(300)
    )
    sim = Simulation(tmp_path, graph, {}, 2)
    nodes: list[FakeNode] = []
    original = sim.new_node

    def keep() -> FakeNode:
        node = original()
        nodes.append(node)
        return node

    sim.new_node = keep  # type: ignore[method-assign]
    sim.run()
    check(sim, graph, {})
    # independent tiny items travel in batches: far fewer round trips than items
    assert sum(len(node.sent) for node in nodes) < 300 / 4


def test_dependency_skip_names_first_declared_dependency(tmp_path: Path) -> None:
    graph = ItemGraph(
        [
            Node("t.py::slow", parent="t.py", location=("t.py", 0, "slow")),
            Node("t.py::fast", parent="t.py", location=("t.py", 1, "fast")),
            Node("t.py::child", deps=["t.py::slow", "t.py::fast"], parent="t.py", location=("t.py", 2, "child")),
        ]
    )
    outcomes = {"t.py::slow": "failed", "t.py::fast": "failed"}
    for seed in range(10):
        folder = tmp_path / str(seed)
        folder.mkdir()
        sim = Simulation(folder, graph, outcomes, 2, seed=seed)
        sim.run()
        assert synthetic_skips(sim) | sim.verdict_skips == {"t.py::child": "dependency 't.py::slow' failed"}


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_crashes_fail_the_item_and_skip_dependents_after_the_crash_report(tmp_path: Path, workers: int) -> None:
    rng = random.Random(workers * 11)
    for case in range(25):
        graph = random_graph(rng, rng.randrange(1, 25))
        outcomes = {n: rng.choice(("passed",) * 8 + ("failed", "skipped", "crash")) for n in graph}
        folder = tmp_path / f"{case}"
        folder.mkdir()
        sim = Simulation(folder, graph, outcomes, workers, seed=case)
        sim.run()
        check(sim, graph, outcomes)
        # cause before effect: a dependent's skip comes after the crash report of the item it names
        events = sim.config.hook.events
        crash_at = {v.nodeid: i for i, (k, v) in enumerate(events) if k == "report" and v.when == "???"}
        for i, (kind, value) in enumerate(events):
            if kind == "report" and getattr(value, SYNTHETIC_ATTR, False) and value.when == "setup":
                for crashed, at in crash_at.items():
                    if f"dependency {crashed!r}" in value.longrepr[2]:
                        assert at < i


def test_no_restarts_left_reports_every_item(tmp_path: Path) -> None:
    graph = ItemGraph(Node(f"t.py::t{i}", deps=[f"t.py::t{i - 1}"] if i % 2 else [], parent="t.py") for i in range(10))
    sim = Simulation(tmp_path, graph, {"t.py::t0": "crash"}, 1)
    sim.max_restarts = 0
    sim.run()
    skips = synthetic_skips(sim)
    assert skips["t.py::t1"] == "dependency 't.py::t0' failed"
    not_run = [n for n, reason in skips.items() if reason.startswith("not run: no xdist worker left")]
    assert sorted(not_run) == sorted(f"t.py::t{i}" for i in range(2, 10))
    assert sim.sched.not_run() == []


def test_empty_graph_finishes_at_once(tmp_path: Path) -> None:
    sim = Simulation(tmp_path, ItemGraph(), {}, 2)
    sim.run()
    assert sim.sched.tests_finished
    assert sim.ran == []


def test_stop_lists_what_did_not_run(tmp_path: Path) -> None:
    graph = ItemGraph(Node(f"t.py::t{i}", deps=[f"t.py::t{i - 1}"] if i else [], parent="t.py") for i in range(5))
    sim = Simulation(tmp_path, graph, {}, 1)
    sim.config.dsession.shouldstop = "stopping after 1 failures"
    sim.run()  # nothing is dispatched once the session should stop
    assert sim.ran == []
    assert sim.sched.not_run() == list(graph.nodes)


def test_a_crashed_item_put_back_by_a_handlecrashitem_hook_runs_again(tmp_path: Path) -> None:
    graph = ItemGraph(Node(f"t.py::t{i}", deps=[f"t.py::t{i - 1}"] if i else [], parent="t.py") for i in range(4))
    sim = Simulation(tmp_path, graph, {"t.py::t1": "crash_once"}, 2)
    sim.rerun_crashed = True
    sim.run()
    assert sim.ran == ["t.py::t0", "t.py::t1", "t.py::t1", "t.py::t2", "t.py::t3"]
    assert synthetic_skips(sim) == {}
    assert sim.sched.not_run() == []


def grouped_graph(rng: random.Random, size: int) -> tuple[ItemGraph, dict[str, str]]:
    """A random DAG over a few modules and classes (dependencies cross them), and random ``xdist_group`` names."""
    nodes: list[Node] = []
    groups: dict[str, str] = {}
    for i in range(size):
        module = f"test_m{rng.randrange(4)}.py"
        parent = module if rng.random() < 0.6 else f"{module}::TestC{rng.randrange(2)}"
        deps = list(dict.fromkeys(rng.choice(nodes).nodeid for _ in range(rng.choice((0, 1, 1, 2, 3))) if nodes))
        nodeid = f"{parent}::test_{i}"
        nodes.append(Node(nodeid, deps=deps, parent=parent, location=(module, i, f"test_{i}")))
        if rng.random() < 0.6:
            groups[nodeid] = rng.choice(("db", "net", "gpu"))
    return ItemGraph(nodes), groups


def affinity_key(dist: str, graph: ItemGraph, groups: dict[str, str], nodeid: str) -> str | None:
    """What must stay on one worker, by xdist's rule for ``dist``."""
    if dist == "loadfile":
        return nodeid.split("::", 1)[0]
    if dist == "loadscope":
        return nodeid.rsplit("::", 1)[0]
    return groups.get(nodeid)


@pytest.mark.parametrize("dist", ["loadfile", "loadscope", "loadgroup"])
@pytest.mark.parametrize("workers", [2, 3, 5])
def test_affinity_keeps_groups_on_one_worker_without_deadlock(tmp_path: Path, dist: str, workers: int) -> None:
    # with groups bound to different workers, a worker may hold its last item while what could follow it waits for
    # an item bound to a busy worker that waits for the held one (the scheduler then sends that item at once)
    rng = random.Random(f"{dist}{workers}")
    for case in range(40):
        graph, groups = grouped_graph(rng, rng.randrange(1, 40))
        outcomes = {n: rng.choice(("passed",) * 8 + ("failed", "skipped")) for n in graph}
        folder = tmp_path / f"{case}"
        folder.mkdir()
        sim = Simulation(folder, graph, outcomes, workers, seed=case, dist=dist, groups=groups)
        sim.run()
        check(sim, graph, outcomes)
        where: dict[str, set[str]] = {}
        for nodeid, worker in sim.ran_on.items():
            key = affinity_key(dist, graph, groups, nodeid)
            if key is not None:
                where.setdefault(key, set()).add(worker)
        assert all(len(w) == 1 for w in where.values()), (case, where)


@pytest.mark.parametrize("dist", ["loadfile", "loadgroup"])
def test_affinity_survives_crashes(tmp_path: Path, dist: str) -> None:
    rng = random.Random(dist)
    for case in range(25):
        graph, groups = grouped_graph(rng, rng.randrange(1, 30))
        outcomes = {n: rng.choice(("passed",) * 8 + ("failed", "crash")) for n in graph}
        folder = tmp_path / f"{case}"
        folder.mkdir()
        sim = Simulation(folder, graph, outcomes, 2, seed=case, dist=dist, groups=groups)
        sim.run()
        check(sim, graph, outcomes)
