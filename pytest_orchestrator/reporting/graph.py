"""Render a dependency graph (``{node: dependencies}``) as Mermaid or Graphviz DOT text.

Edges point from a dependency to its dependent, in the direction work flows. The picture is the graph's transitive
reduction: an edge ``a -> c`` is left out when a longer path ``a -> b -> c`` already says it, so a suite whose
items name every ancestor reads as the chain it is (computed with networkx, imported only when a graph is drawn).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import re


__all__ = ["render_graph", "to_dot", "to_mermaid", "transitive_reduction"]


def transitive_reduction(graph: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """``graph`` without its redundant edges: a node keeps the dependencies not reachable through another one.

    Dependencies on names outside the graph and repeated ones are dropped; the order of the rest is kept. A graph
    with a cycle has no unique reduction: it comes back with every edge (the picture should show the cycle).

    Usage::

        transitive_reduction({"a": [], "b": ["a"], "c": ["a", "b"]})  # {"a": [], "b": ["a"], "c": ["b"]}
    """
    import networkx as nx

    kept = {node: list(dict.fromkeys(dep for dep in deps if dep in graph)) for node, deps in graph.items()}
    digraph = nx.DiGraph()
    digraph.add_nodes_from(kept)
    digraph.add_edges_from((dep, node) for node, deps in kept.items() for dep in deps)
    if not nx.is_directed_acyclic_graph(digraph):
        return kept
    reduced = nx.transitive_reduction(digraph)
    return {node: [dep for dep in deps if reduced.has_edge(dep, node)] for node, deps in kept.items()}


def _ids(graph: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Short, unique, syntax-safe identifiers for the nodes (labels keep the real names)."""
    out: dict[str, str] = {}
    for i, node in enumerate(graph):
        stem = re.sub(r"\W+", "_", node.rsplit("::", 1)[-1]).strip("_")[:40] or "node"
        out[node] = f"n{i}_{stem}"
    return out


def _edges(graph: Mapping[str, Sequence[str]], reduce: bool) -> Mapping[str, Sequence[str]]:
    """The edges to draw, as ``{node: dependencies}``: the reduction, or every edge to a node of the graph."""
    if reduce:
        return transitive_reduction(graph)
    return {node: [dep for dep in deps if dep in graph] for node, deps in graph.items()}


def _escape_mermaid(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(
    graph: Mapping[str, Sequence[str]],
    *,
    labels: Mapping[str, str] | None = None,
    classes: Mapping[str, str] | None = None,
    direction: str = "TD",
    reduce: bool = True,
) -> str:
    """A Mermaid ``flowchart``. ``classes`` maps nodes to a status (passed, failed, ...) for colouring;
    ``reduce=False`` draws every edge instead of the transitive reduction."""
    ids = _ids(graph)
    lines = [f"flowchart {direction}"]
    for node in graph:
        label = _escape_mermaid((labels or {}).get(node, node))
        lines.append(f'    {ids[node]}["{label}"]')
    for node, deps in _edges(graph, reduce).items():
        for dep in deps:
            lines.append(f"    {ids[dep]} --> {ids[node]}")
    if classes:
        palette = {
            "passed": "fill:#d4edda,stroke:#28a745",
            "completed": "fill:#d4edda,stroke:#28a745",
            "failed": "fill:#f8d7da,stroke:#dc3545",
            "timeout": "fill:#f8d7da,stroke:#dc3545",
            "skipped": "fill:#fff3cd,stroke:#ffc107",
            "cancelled": "fill:#e2e3e5,stroke:#6c757d",
        }
        used = sorted({c for c in classes.values() if c in palette})
        for name in used:
            lines.append(f"    classDef {name} {palette[name]}")
        for node, status in classes.items():
            if node in ids and status in palette:
                lines.append(f"    class {ids[node]} {status}")
    return "\n".join(lines) + "\n"


def _quote_dot(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(
    graph: Mapping[str, Sequence[str]],
    *,
    labels: Mapping[str, str] | None = None,
    name: str = "workflow",
    reduce: bool = True,
) -> str:
    """A Graphviz ``digraph``; ``reduce=False`` draws every edge instead of the transitive reduction."""
    lines = [f"digraph {_quote_dot(name)} {{", "    rankdir=LR;", "    node [shape=box];"]
    for node in graph:
        label = (labels or {}).get(node, node)
        lines.append(f"    {_quote_dot(node)} [label={_quote_dot(label)}];")
    for node, deps in _edges(graph, reduce).items():
        for dep in deps:
            lines.append(f"    {_quote_dot(dep)} -> {_quote_dot(node)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_graph(graph: Mapping[str, Sequence[str]], fmt: str, **kwargs: object) -> str:
    """``to_mermaid`` or ``to_dot`` by name."""
    if fmt == "mermaid":
        return to_mermaid(graph, **kwargs)  # type: ignore[arg-type]
    if fmt == "dot":
        return to_dot(graph, **kwargs)  # type: ignore[arg-type]
    raise ValueError(f"unknown graph format {fmt!r}; use 'mermaid' or 'dot'")
