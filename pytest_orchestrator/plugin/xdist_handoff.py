"""The item-graph hand-off between the xdist workers and the controller: both sides of it, and its names.

Each worker (:mod:`.xdist_worker`) writes its item graph, and the index of the flush item of each parent collector,
as JSON to the folder the controller (:mod:`.xdist_controller`) named in ``workerinput`` under
:data:`GRAPH_DIR_KEY`; the scheduler (:mod:`.xdist_scheduling`) reads the first worker's file. The worker writes
before xdist sends ``collectionfinish`` and the controller reads after it received it, so the file is complete when
it is read. This module is what both sides share; neither side imports the other.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from pytest_orchestrator.plugin.dag import ItemGraph


__all__ = ["FLUSH_NAME", "FLUSH_SUFFIX", "GRAPH_DIR_KEY", "HandoffError", "graph_file", "read_graph", "write_graph"]

#: the ``workerinput`` key naming the folder the workers write their graph files to
GRAPH_DIR_KEY = "orchestrate_graph_dir"
#: the name of a flush item under its parent collector
FLUSH_NAME = "__orchestrate_flush__"
#: how a flush item's node id ends
FLUSH_SUFFIX = "::" + FLUSH_NAME


class HandoffError(Exception):
    """No usable item graph: the worker's error, or why its file cannot be read."""

    def __init__(self, message: str, *, usage_error: bool = False) -> None:
        super().__init__(message)
        self.message = message
        #: the worker failed with a ``pytest.UsageError`` (raise it again on the controller)
        self.usage_error = usage_error


def graph_file(folder: str, worker_id: str) -> str:
    """The path of the graph file worker ``worker_id`` writes in ``folder``."""
    return os.path.join(folder, f"{worker_id}.json")


def write_graph(folder: str, worker_id: str, data: dict[str, Any]) -> None:
    """Write worker ``worker_id``'s ``data`` to its graph file in ``folder``, atomically (a reader never sees half)."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{worker_id}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        json.dump(data, stream)
    os.replace(tmp, graph_file(folder, worker_id))


def read_graph(folder: str | None, worker: str) -> tuple[ItemGraph, dict[str, int]]:
    """The item graph worker ``worker`` wrote in ``folder``, and the flush item index per parent collector.

    Raises :class:`HandoffError` when the file holds the worker's error or cannot be read.
    """
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
        raise HandoffError(str(data["error"]), usage_error=bool(data.get("usage_error")))
    flush = {str(k): int(v) for k, v in data.get("flush", {}).items()}
    return ItemGraph.from_json(data["graph"]), flush
