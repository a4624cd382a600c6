"""The worker half of the DAG-aware xdist scheduler (see :mod:`pytest_orchestrator.plugin.xdist`).

On each xdist worker, once the session plugin has built and ordered the item graph, this plugin

- sends the graph (and where the flush items sit) on the execnet channel the controller handed over in
  ``workerinput`` (:mod:`.xdist_handoff`), *before* xdist sends ``collectionfinish``, so the controller has it
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
from typing import TYPE_CHECKING
from typing import Any

import pytest

from pytest_orchestrator.plugin.compat import TracebackFilteredItem
from pytest_orchestrator.plugin.compat import teardown_towards
from pytest_orchestrator.plugin.names import SESSION_PLUGIN_NAME
from pytest_orchestrator.plugin.xdist_handoff import CHANNEL_KEY
from pytest_orchestrator.plugin.xdist_handoff import FLUSH_NAME
from pytest_orchestrator.plugin.xdist_handoff import encode
from pytest_orchestrator.plugin.xdist_handoff import encode_error


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
        #: the execnet channel to the controller (:mod:`.xdist_handoff`)
        self.channel: Any = workerinput.get(CHANNEL_KEY)
        self._flush: list[FlushItem] = []
        #: what went wrong while the items were arranged (the graph was not built)
        self._error: BaseException | None = None

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

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_finish(self, session: pytest.Session) -> Generator[None, object, object]:
        error = self._error
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
        if self.channel is None:
            return
        graph = self._graph()
        if error is not None:
            text = str(error.args[0]) if isinstance(error, pytest.UsageError) and error.args else str(error)
            message = encode_error(text, usage_error=isinstance(error, pytest.UsageError))
        elif graph is None:
            message = encode_error("orchestrate: the worker built no item graph", usage_error=False)
        else:
            flush = {
                flush.parent.nodeid: len(items) + i for i, flush in enumerate(self._flush) if flush.parent is not None
            }
            message = encode(graph, flush=flush)
        self.channel.send(message)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        if isinstance(item, FlushItem):
            run_flush(item, nextitem)
            return True
        return None
