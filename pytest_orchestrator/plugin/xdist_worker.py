"""The worker half of the DAG-aware xdist scheduler (see :mod:`pytest_orchestrator.plugin.xdist`).

On each xdist worker, once the session plugin has built and ordered the item graph, this plugin

- writes the graph (and where the flush items sit) as JSON to the folder the controller named in
  ``workerinput`` (:mod:`.xdist_handoff`), *before* xdist sends ``collectionfinish``, so the controller can read it
  when it schedules;
- appends one :class:`FlushItem` per parent collector (module, class or script file) to ``session.items``,
  *after* xdist has sent the collected node ids: the controller addresses them by index, and they never show up
  in counts, reports or the collection comparison between workers;
- runs a flush item as a teardown towards the next item and nothing else (no reports unless that teardown fails).

Why flush items: an xdist worker runs an item only once it has received the *next* one (pytest needs ``nextitem``
to know which fixtures to tear down), so the last item of a worker's queue waits. The controller therefore always
sends a real item followed by the flush item of its parent: the real item runs at once with its module and class
fixtures kept (the flush is a sibling), and the worker then holds only the harmless flush.
"""

from __future__ import annotations

from collections.abc import Generator
import sys
from typing import TYPE_CHECKING
from typing import Any

import pytest

from pytest_orchestrator.plugin.compat import TracebackFilteredItem
from pytest_orchestrator.plugin.compat import teardown_towards
from pytest_orchestrator.plugin.names import SESSION_PLUGIN_NAME
from pytest_orchestrator.plugin.xdist_handoff import FLUSH_NAME
from pytest_orchestrator.plugin.xdist_handoff import GRAPH_DIR_KEY
from pytest_orchestrator.plugin.xdist_handoff import write_graph


if TYPE_CHECKING:
    from pathlib import Path

    from pytest_orchestrator.plugin.dag import ItemGraph

__all__ = ["FlushItem", "WorkerPlugin", "run_flush"]


class FlushItem(TracebackFilteredItem):
    """A no-op item: running it tears down what the next item does not share, and reports nothing."""

    def runtest(self) -> None:  # pragma: no cover - never run through the normal protocol
        pass

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"orchestrate flush of {self.parent.nodeid if self.parent else ''}"


def run_flush(item: FlushItem, nextitem: pytest.Item | None) -> None:
    """Tear down towards ``nextitem``.

    A failing teardown (a module or class fixture's) is logged as a teardown report of the flush item, without
    logstart/logfinish: the controller files it under the real item this worker ran last, as serial pytest would.
    """
    call = teardown_towards(item, nextitem)
    if call.excinfo is None:
        return
    ihook = item.ihook
    ihook.pytest_runtest_logreport(report=ihook.pytest_runtest_makereport(item=item, call=call))


class WorkerPlugin:
    """Registered on an xdist worker under ``--orchestrate``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        workerinput: dict[str, Any] = getattr(config, "workerinput", {})
        self.folder: str | None = workerinput.get(GRAPH_DIR_KEY)
        self.worker_id = str(workerinput.get("workerid", "gw"))
        self._flush: list[FlushItem] = []

    def _graph(self) -> ItemGraph | None:
        # the session plugin's graph of what runs (its public attribute; read, never written)
        plugin = self.config.pluginmanager.get_plugin(SESSION_PLUGIN_NAME)
        graph: ItemGraph | None = getattr(plugin, "graph", None)
        return graph

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_finish(self, session: pytest.Session) -> Generator[None, object, object]:
        # Called from a ``finally``: a usage error raised while the graph was built is in flight right now.
        error = sys.exc_info()[1]
        items = session.items
        self._flush = []
        if not isinstance(error, BaseException):
            parents: dict[str, pytest.Collector] = {}
            for item in items:
                if item.parent is not None and isinstance(item.parent, pytest.Collector):
                    parents.setdefault(item.parent.nodeid, item.parent)
            self._flush = [FlushItem.from_parent(parent, name=FLUSH_NAME) for parent in parents.values()]
        self._write(items, error)
        result = yield  # xdist's own hook sends the collected node ids now
        items.extend(self._flush)
        return result

    def _write(self, items: list[pytest.Item], error: BaseException | None) -> None:
        if self.folder is None:
            return
        data: dict[str, Any] = {"worker": self.worker_id}
        graph = self._graph()
        if error is not None:
            text = str(error.args[0]) if isinstance(error, pytest.UsageError) and error.args else str(error)
            data["error"] = text
            data["usage_error"] = isinstance(error, pytest.UsageError)
        elif graph is None:
            data["error"] = "orchestrate: the worker built no item graph"
            data["usage_error"] = False
        else:
            data["graph"] = graph.to_json()
            data["flush"] = {
                flush.parent.nodeid: len(items) + i for i, flush in enumerate(self._flush) if flush.parent is not None
            }
        write_graph(self.folder, self.worker_id, data)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        if isinstance(item, FlushItem):
            run_flush(item, nextitem)
            return True
        return None
