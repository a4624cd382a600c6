"""The item graph as text: the collection header line, and the picture ``--orchestrate-graph`` prints.

``--orchestrate-graph=mermaid|dot`` prints the graph of what would run (after selection and
``--orchestrate-stage``) and ends the session without running anything; with cached durations it adds the
estimated critical path as a comment.
"""

from __future__ import annotations

import pytest

from pytest_orchestrator.plugin.dag import ItemGraph


__all__ = ["collection_line", "graph_text", "print_graph"]


def _has_estimates(graph: ItemGraph) -> bool:
    return any(n.estimated_duration is not None for n in graph.nodes.values())


def collection_line(graph: ItemGraph) -> str:
    """``orchestrate: N items, M dependencies[, ...]``: the line under pytest's "collected N items"."""
    text = f"orchestrate: {len(graph)} items, {graph.edge_count()} dependencies"
    brought = graph.brought_back()
    if brought:
        text += f", {len(brought)} deselected dependencies brought back"
    stages = sorted({n.stage for n in graph.nodes.values() if n.stage})
    if stages:
        text += ", stages: " + ", ".join(stages)
    if _has_estimates(graph) and graph.edge_count():
        path = graph.critical_path()
        estimate = sum(graph.nodes[n].estimated_duration or 0.0 for n in path)
        text += f"; estimated critical path {estimate:.2f} s ({len(path)} items, cached durations)"
    return text


def graph_text(graph: ItemGraph, fmt: str) -> str:
    """The graph in ``fmt`` (``"mermaid"`` or ``"dot"``), with the estimated critical path as a comment."""
    from pytest_orchestrator.reporting.graph import render_graph

    text = render_graph(graph.deps_map(), fmt)
    if _has_estimates(graph) and graph.edge_count():
        comment = "%%" if fmt == "mermaid" else "//"
        path = graph.critical_path()
        text += f"{comment} estimated critical path (cached durations): {' -> '.join(path)}\n"
    return text


def print_graph(config: pytest.Config, graph: ItemGraph, fmt: str) -> None:
    """Write :func:`graph_text` through the terminal reporter (stdout when there is none)."""
    text = graph_text(graph, fmt)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write(text)
    else:
        print(text, end="")
