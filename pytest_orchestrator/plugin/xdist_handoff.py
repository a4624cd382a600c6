"""The controller's side of the item-graph hand-off (the workers' side is :mod:`.xdist_worker`).

Each worker writes its item graph, and the index of the flush item of each parent collector, as JSON to the folder
the controller named in ``workerinput``; the scheduler (:mod:`.xdist_scheduling`) reads the first worker's file.
"""

from __future__ import annotations

import json
from typing import Any

from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.xdist_worker import graph_file


__all__ = ["HandoffError", "read_graph"]


class HandoffError(Exception):
    """No usable item graph: the worker's error, or why its file cannot be read."""

    def __init__(self, message: str, *, usage_error: bool = False) -> None:
        super().__init__(message)
        self.message = message
        #: the worker failed with a ``pytest.UsageError`` (raise it again on the controller)
        self.usage_error = usage_error


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
