"""``stage`` and ``root_cause`` as user properties (JUnit XML ``<property>``), noted where reports are logged.

:class:`ItemProperties` runs on the process that logs the reports (serial: the process, when some item has a
stage or may be skipped for its dependencies, see :func:`sync_properties`; ``-n N``: the controller, which also
makes the dependency skips up): before JUnit XML reads an item's teardown report, it adds the item's
``stage`` (from the item graph) and, for an item skipped because of its dependencies, ``root_cause``: the node id
of the item whose failure started the chain (the first dependency, in declaration order, that failed; else the root
cause of the first one that was skipped; else the dependency that will not run at all). The per-attempt
properties (``attempts``, ``attempt_N_outcome``, ``attempt_N_error``) are set on the item where it runs
(:mod:`.runtest`, :mod:`.item_hooks`). :func:`session_graph` finds the item graph in either process.
"""

from __future__ import annotations

import pytest

from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.names import SESSION_PLUGIN_NAME
from pytest_orchestrator.plugin.outcomes import DEPENDENCY_SKIP_ATTR
from pytest_orchestrator.plugin.outcomes import RERUN


__all__ = ["PROPERTIES_PLUGIN_NAME", "ItemProperties", "session_graph", "sync_properties"]

PROPERTIES_PLUGIN_NAME = "orchestrate-properties"


def session_graph(config: pytest.Config) -> ItemGraph | None:
    """The session's item graph: the session plugin's (serial, or a worker), else the xdist scheduler's."""
    session_plugin = config.pluginmanager.get_plugin(SESSION_PLUGIN_NAME)
    graph = getattr(session_plugin, "graph", None)
    if isinstance(graph, ItemGraph):
        return graph
    from pytest_orchestrator.plugin.xdist import CONTROLLER_PLUGIN_NAME

    controller = config.pluginmanager.get_plugin(CONTROLLER_PLUGIN_NAME)
    graph = getattr(getattr(controller, "scheduler", None), "graph", None)
    return graph if isinstance(graph, ItemGraph) else None


class ItemProperties:
    """Adds ``stage`` and ``root_cause`` to teardown reports (see the module docstring)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        #: items with a failed phase
        self.failed: set[str] = set()
        #: dependency-skipped item -> its root cause
        self.roots: dict[str, str] = {}

    def root_cause(self, nodeid: str, seen: set[str] | None = None) -> str | None:
        """The failed item a dependency skip of ``nodeid`` goes back to, through the graph (a skipped dependency's
        own skip may be reported later: under ``-n N`` another worker or the controller reports it)."""
        graph = session_graph(self.config)
        node = graph.nodes.get(nodeid) if graph is not None else None
        seen = set() if seen is None else seen
        if node is None or nodeid in seen:
            return None
        seen.add(nodeid)
        hard = [d for d in node.deps if d not in node.soft]  # a soft dependency orders only: it skips nothing
        for dep in hard:
            if dep in self.failed:
                return dep
        for dep in hard:
            root = self.roots.get(dep) or self.root_cause(dep, seen)
            if root is not None:
                return root
        return node.blocked[0].target if node.blocked else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.outcome == RERUN:
            return
        nodeid = report.nodeid
        if report.failed:
            self.failed.add(nodeid)
        if report.when == "setup" and report.skipped and getattr(report, DEPENDENCY_SKIP_ATTR, False):
            root = self.root_cause(nodeid)
            if root is not None:
                self.roots[nodeid] = root
        if report.when != "teardown":
            return
        have = {name for name, _ in report.user_properties}
        extra: list[tuple[str, object]] = []
        graph = session_graph(self.config)
        node = graph.nodes.get(nodeid) if graph is not None else None
        if node is not None and node.stage and "stage" not in have:
            extra.append(("stage", node.stage))
        if nodeid in self.roots and "root_cause" not in have:
            extra.append(("root_cause", self.roots[nodeid]))
        if extra:
            report.user_properties = [*report.user_properties, *extra]


def sync_properties(config: pytest.Config, graph: ItemGraph, *, dependency_skips: bool) -> None:
    """Where the session arranged its own items (serial): :class:`ItemProperties` is registered only when it has
    something to add, a stage on some item or dependency skips that may happen; a suite with neither does not pay
    for it on every report. (Arranging again, as a watch rerun may, registers or drops it as the new graph needs.)
    The xdist controller, which arranges nothing, registers it at configure."""
    manager = config.pluginmanager
    registered = manager.get_plugin(PROPERTIES_PLUGIN_NAME)
    needed = dependency_skips or any(node.stage for node in graph.nodes.values())
    if needed and registered is None:
        manager.register(ItemProperties(config), PROPERTIES_PLUGIN_NAME)
    elif not needed and registered is not None:
        manager.unregister(registered)
