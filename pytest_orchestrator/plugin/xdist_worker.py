"""The worker half of the DAG-aware xdist scheduler (see :mod:`pytest_orchestrator.plugin.xdist`).

On each xdist worker, once the session plugin has built and ordered the item graph, this plugin

- writes the graph (and where the flush items sit) as JSON to the folder the controller named in
  ``workerinput``, *before* xdist sends ``collectionfinish``, so the controller can read it when it schedules;
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
import json
import os
from pathlib import Path
import sys
import tempfile
from typing import Any

import _pytest
from _pytest.runner import CallInfo
from _pytest.runner import get_reraise_exceptions
import pluggy
import pytest


__all__ = ["FLUSH_NAME", "GRAPH_DIR_KEY", "FlushItem", "WorkerPlugin", "graph_file"]

#: the ``workerinput`` key naming the folder the workers write their graph files to
GRAPH_DIR_KEY = "orchestrate_graph_dir"
#: the name of a flush item under its parent collector
FLUSH_NAME = "__orchestrate_flush__"


def graph_file(folder: str, worker_id: str) -> str:
    """The path of the graph file worker ``worker_id`` writes in ``folder``."""
    return os.path.join(folder, f"{worker_id}.json")


class FlushItem(pytest.Item):
    """A no-op item: running it tears down what the next item does not share, and reports nothing."""

    def runtest(self) -> None:  # pragma: no cover - never run through the normal protocol
        pass

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"orchestrate flush of {self.parent.nodeid if self.parent else ''}"

    def _traceback_filter(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
        # show the fixture's code, not pytest's and pluggy's machinery around the teardown
        internal = (os.path.dirname(_pytest.__file__), os.path.dirname(pluggy.__file__), __file__)
        traceback = excinfo.traceback.filter(lambda entry: not str(entry.path).startswith(internal))
        return traceback or excinfo.traceback


def run_flush(item: FlushItem, nextitem: pytest.Item | None) -> None:
    """Tear down towards ``nextitem``.

    A failing teardown (a module or class fixture's) is logged as a teardown report of the flush item, without
    logstart/logfinish: the controller files it under the real item this worker ran last, as serial pytest would.
    """
    setupstate = item.session._setupstate
    call = CallInfo.from_call(
        lambda: setupstate.teardown_exact(nextitem),
        when="teardown",
        reraise=get_reraise_exceptions(item.config),
    )
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

    def _graph(self) -> Any:
        from pytest_orchestrator.plugin import SESSION_PLUGIN_NAME

        plugin = self.config.pluginmanager.get_plugin(SESSION_PLUGIN_NAME)
        return getattr(plugin, "graph", None)

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
        path = graph_file(self.folder, self.worker_id)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{self.worker_id}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(data, stream)
        os.replace(tmp, path)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        if isinstance(item, FlushItem):
            run_flush(item, nextitem)
            return True
        return None
