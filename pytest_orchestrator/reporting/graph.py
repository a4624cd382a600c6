"""Render a dependency graph (``{node: dependencies}``) as Mermaid or Graphviz DOT text.

Edges point from a dependency to its dependent, in the direction work flows.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import re


__all__ = ["render_graph", "to_dot", "to_mermaid"]


def _ids(graph: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Short, unique, syntax-safe identifiers for the nodes (labels keep the real names)."""
    out: dict[str, str] = {}
    for i, node in enumerate(graph):
        stem = re.sub(r"\W+", "_", node.rsplit("::", 1)[-1]).strip("_")[:40] or "node"
        out[node] = f"n{i}_{stem}"
    return out


def _escape_mermaid(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(
    graph: Mapping[str, Sequence[str]],
    *,
    labels: Mapping[str, str] | None = None,
    classes: Mapping[str, str] | None = None,
    direction: str = "TD",
) -> str:
    """A Mermaid ``flowchart``. ``classes`` maps nodes to a status (passed, failed, ...) for colouring."""
    ids = _ids(graph)
    lines = [f"flowchart {direction}"]
    for node in graph:
        label = _escape_mermaid((labels or {}).get(node, node))
        lines.append(f'    {ids[node]}["{label}"]')
    for node, deps in graph.items():
        for dep in deps:
            if dep in ids:
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
    graph: Mapping[str, Sequence[str]], *, labels: Mapping[str, str] | None = None, name: str = "workflow"
) -> str:
    """A Graphviz ``digraph``."""
    lines = [f"digraph {_quote_dot(name)} {{", "    rankdir=LR;", "    node [shape=box];"]
    for node in graph:
        label = (labels or {}).get(node, node)
        lines.append(f"    {_quote_dot(node)} [label={_quote_dot(label)}];")
    for node, deps in graph.items():
        for dep in deps:
            if dep in graph:
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
