"""Hook specifications of the orchestrate plugin, added in ``pytest_addhooks``.

Every hook is prefixed ``pytest_orchestrate_``. Implement them in a ``conftest.py`` or a plugin; they are called
only under ``--orchestrate``. This module imports nothing at run time, so adding the specs costs nothing when the
plugin is inactive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

import pytest


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.dag import ItemGraph

hookspec = pytest.hookspec


@hookspec
def pytest_orchestrate_modify_graph(config: pytest.Config, graph: ItemGraph) -> None:
    """Inspect or change the item dependency graph before it is checked and ordered.

    Called once per session, after collection and dependency resolution and before pytest's selection (``-k``,
    ``-m``, ``--orchestrate-stage``) is applied to the graph. The graph holds every collected item. Add or remove
    edges with
    ``graph.add_dependency(node, dependency)`` and ``graph.remove_dependency(node, dependency)`` (node ids);
    a cycle or an unknown node id introduced here is reported as a usage error like one from a marker.

    :param config: The pytest config object.
    :param graph: The :class:`~pytest_orchestrator.plugin.dag.ItemGraph` of the collected items.

    Use in conftest plugins
    =======================

    Any conftest file can implement this hook.
    """


@hookspec
def pytest_orchestrate_attempt(item: pytest.Item, attempt: int, report: pytest.TestReport, will_retry: bool) -> None:
    """Called after each attempt of an item that has a retry policy.

    :param item: The item.
    :param attempt: The attempt number, starting at 1.
    :param report: The report deciding the attempt: its call report, or its setup report when setup did not pass.
        A failed attempt that will be retried has ``report.outcome == "rerun"``.
    :param will_retry: Whether another attempt follows.

    Use in conftest plugins
    =======================

    A conftest file can implement this hook for the items in its directory.
    """


@hookspec
def pytest_orchestrate_summary(config: pytest.Config, summary: dict[str, Any], lines: list[str]) -> None:
    """Add to (or change) the terminal "workflow summary" before it is printed.

    :param config: The pytest config object.
    :param summary: The summary as a JSON-ready dict: ``counts``, ``wall_time``, ``total_duration``,
        ``efficiency``, ``workers``, ``critical_path``, ``critical_path_duration``, ``flaky``, ``retried_failed``,
        ``timeouts``, ``dependency_skips`` and ``items`` (node id -> ``status``, ``attempts``, ``duration``,
        ``start``).
    :param lines: The lines about to be printed; append to or edit this list in place.

    Use in conftest plugins
    =======================

    Any conftest file can implement this hook.
    """
