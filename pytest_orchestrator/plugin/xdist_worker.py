"""The worker half of the DAG-aware xdist scheduler (see :mod:`pytest_orchestrator.plugin.xdist`).

On each xdist worker, once the session plugin has built and ordered the item graph, this plugin

- sends the graph on the execnet channel the controller handed over in ``workerinput`` (:mod:`.xdist_handoff`),
  *before* xdist sends ``collectionfinish``, so the controller has it when it schedules; a graph without edges is
  sent as its size alone, and nothing else of this plugin is active then;
- makes an item with dependencies wait, before it starts (before its ``logstart``), for the controller's verdict:
  the controller may hold such an item behind a running one before its dependencies finished (xdist's worker runs
  an item only once it has the next one, see :mod:`.xdist_scheduling`). A verdict that skips it is raised in its
  setup, so the skip is reported by this worker like any other (``[gwN]`` under ``-v``).

The verdicts arrive on the same channel, read by execnet's receiving thread; the item waits on a condition. The
same channel carries the worker's own lines for the user to the controller (sent before the graph, printed there
once) and its questions about how items on other workers ended (:meth:`WorkerPlugin.outcomes`, for
pytest-dependency's runtime ``depends(request, ...)``).
"""

from __future__ import annotations

from collections.abc import Generator
from collections.abc import Sequence
import threading
import time
from typing import TYPE_CHECKING
from typing import Any

import pytest

from pytest_orchestrator.plugin.names import SESSION_PLUGIN_NAME
from pytest_orchestrator.plugin.summary import DEPENDENCY_SKIP_ATTR
from pytest_orchestrator.plugin.xdist_handoff import ANSWER
from pytest_orchestrator.plugin.xdist_handoff import ASK
from pytest_orchestrator.plugin.xdist_handoff import CHANNEL_KEY
from pytest_orchestrator.plugin.xdist_handoff import FREE
from pytest_orchestrator.plugin.xdist_handoff import NOTES
from pytest_orchestrator.plugin.xdist_handoff import STOP
from pytest_orchestrator.plugin.xdist_handoff import VERDICT
from pytest_orchestrator.plugin.xdist_handoff import encode
from pytest_orchestrator.plugin.xdist_handoff import encode_error
from pytest_orchestrator.plugin.xdist_handoff import is_flat


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.dag import ItemGraph

__all__ = ["Verdicts", "WorkerGate", "WorkerPlugin"]

GATE_PLUGIN_NAME = "orchestrate-xdist-gate"
#: seconds a worker waits for the controller's answer (it answers at once, from its receiving thread)
ASK_TIMEOUT = 30.0


class Verdicts:
    """The controller's verdicts on held items, filled by the channel's callback (execnet's receiving thread)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._verdicts: dict[str, str | None] = {}
        #: why the run is stopping (every waiting item is skipped with it)
        self.stopped: str | None = None
        #: another scheduler runs the session: nothing waits
        self.free = False
        #: the channel is closed: the controller is gone
        self.closed = False
        self._answers: dict[int, dict[str, str | None]] = {}
        self._asked = 0

    def receive(self, message: Any) -> None:
        with self._cond:
            if isinstance(message, tuple | list) and len(message) == 3 and message[0] == ANSWER:
                self._answers[int(message[1])] = {str(k): None if v is None else str(v) for k, v in message[2].items()}
            elif isinstance(message, tuple | list) and message and message[0] == VERDICT:
                self._verdicts[str(message[1])] = None if message[2] is None else str(message[2])
            elif isinstance(message, tuple | list) and message and message[0] == FREE:
                self.free = True
            elif isinstance(message, tuple | list) and message and message[0] == STOP:
                self.stopped = str(message[1])
            else:  # the channel's end marker: the controller is gone
                self.closed = True
                self.stopped = self.stopped or "not run: the xdist controller went away"
            self._cond.notify_all()

    def ask(self, channel: Any, nodeids: Sequence[str], timeout: float = ASK_TIMEOUT) -> dict[str, str | None] | None:
        """Ask the controller how ``nodeids`` ended and wait (at most ``timeout`` seconds) for its answer: ``{node
        id: status or None}``, or ``None`` when no answer came (the controller is gone)."""
        with self._cond:
            if self.closed:
                return None
            self._asked += 1
            number = self._asked
        try:
            channel.send((ASK, number, list(nodeids)))
        except Exception:  # execnet's OSError: the channel is closed
            return None
        deadline = time.monotonic() + timeout
        with self._cond:
            while number not in self._answers and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._answers.pop(number, None)

    def wait(self, nodeid: str) -> str | None:
        """Block until ``nodeid`` has a verdict; None (run it) or why it is skipped."""
        with self._cond:
            if self.free:
                return None
            while nodeid not in self._verdicts and self.stopped is None and not self.free:
                self._cond.wait()
            if nodeid in self._verdicts:
                return self._verdicts.pop(nodeid)
            return self.stopped


class WorkerGate:
    """Registered on a worker whose graph has edges: items with dependencies wait for the controller's verdict."""

    def __init__(self, graph: ItemGraph, verdicts: Verdicts) -> None:
        self.gated = {n for n, node in graph.nodes.items() if node.deps}
        self.verdicts = verdicts
        self._skips: dict[str, str] = {}
        self._skipped: set[str] = set()

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        if item.nodeid in self.gated:
            reason = self.verdicts.wait(item.nodeid)
            if reason is not None:
                self._skips[item.nodeid] = reason
        return (yield)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        reason = self._skips.pop(item.nodeid, None)
        if reason is not None:
            self._skipped.add(item.nodeid)
            raise pytest.skip.Exception(reason, _use_item_location=True)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report: pytest.TestReport = yield
        if report.when == "setup" and item.nodeid in self._skipped:
            self._skipped.discard(item.nodeid)
            setattr(report, DEPENDENCY_SKIP_ATTR, True)  # the workflow summary lists it with the dependency skips
        return report


class WorkerPlugin:
    """Registered on an xdist worker under ``--orchestrate``."""

    def __init__(self, config: pytest.Config, *, loadgroup: bool = False) -> None:
        self.config = config
        #: ``--dist loadgroup``: hand the items' ``xdist_group`` names over
        self.loadgroup = loadgroup
        workerinput: dict[str, Any] = getattr(config, "workerinput", {})
        #: the execnet channel to the controller (:mod:`.xdist_handoff`)
        self.channel: Any = workerinput.get(CHANNEL_KEY)
        #: what went wrong while the items were arranged (the graph was not built)
        self._error: BaseException | None = None
        #: the controller's messages, once the graph is handed over
        self.verdicts: Verdicts | None = None
        #: the item this worker is running
        self.current: pytest.Item | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        self.current = item

    def outcomes(self, nodeids: Sequence[str]) -> dict[str, str | None] | None:
        """How ``nodeids`` ended on any worker, as the controller recorded them (``None`` for one not finished);
        ``{}`` under ``--dist each`` (every worker runs every item: only its own outcomes count); ``None`` when the
        controller did not answer."""
        if self.config.getoption("dist", None) == "each":
            return {}
        if self.channel is None or self.verdicts is None:
            return None
        return self.verdicts.ask(self.channel, nodeids)

    def _graph(self) -> ItemGraph | None:
        # the session plugin's graph of what runs (its public attribute; read, never written)
        plugin = self.config.pluginmanager.get_plugin(SESSION_PLUGIN_NAME)
        graph: ItemGraph | None = getattr(plugin, "graph", None)
        return graph

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> Generator[None, object, object]:
        # Registered after the session plugin, so this wrapper is outside its: it sees the usage error raised
        # while the graph is built (pytest still calls ``pytest_collection_finish`` afterwards).
        self._error = None
        try:
            return (yield)
        except BaseException as exc:
            self._error = exc
            raise

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # tryfirst: before xdist's own implementation sends ``collectionfinish``
        if self.channel is None:
            return
        error = self._error
        graph = self._graph()
        if error is not None:
            text = str(error.args[0]) if isinstance(error, pytest.UsageError) and error.args else str(error)
            self.channel.send(encode_error(text, usage_error=isinstance(error, pytest.UsageError)))
            return
        if graph is None:
            self.channel.send(encode_error("orchestrate: the worker built no item graph", usage_error=False))
            return
        groups = xdist_groups(session.items) if self.loadgroup else None
        notes = getattr(self.config.pluginmanager.get_plugin(SESSION_PLUGIN_NAME), "notes", None)
        lines = notes() if notes is not None else []
        if lines:  # the controller prints them: this worker's terminal is nobody's
            self.channel.send((NOTES, lines))
        if not is_flat(graph):  # the controller reports skips of these items itself: it needs where they are
            for item in session.items:
                node = graph.nodes.get(item.nodeid)
                if node is not None:
                    node.location = item.location
        self.channel.send(encode(graph, groups=groups))
        verdicts = self.verdicts = Verdicts()
        self.channel.setcallback(verdicts.receive, endmarker=None)
        if not is_flat(graph):
            self.config.pluginmanager.register(WorkerGate(graph, verdicts), GATE_PLUGIN_NAME)


def xdist_groups(items: list[pytest.Item]) -> dict[str, str]:
    """``{node id: group}`` of the items with an ``xdist_group`` marker (``--dist loadgroup``)."""
    groups: dict[str, str] = {}
    for item in items:
        names = sorted(
            {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
        )
        if names:
            groups[item.nodeid] = "_".join(names)
    return groups
