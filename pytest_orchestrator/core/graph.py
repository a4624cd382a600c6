"""Dependency graphs: validation, order, generations and the critical path.

A graph here is a mapping ``node -> dependencies`` (the nodes it waits for), in the order the nodes were defined.
Everything is pure and deterministic: the same graph always gives the same order, cycle and path. The workflow
engine, the pytest plugin (whose nodes are test ids) and the CLI share these functions.

Which code is used where: the engine, the scheduler and the plugin run on the small hand-written functions here
(validating and ordering a 10,000-task random DAG takes a fraction of the time networkx needs just to build its
graph; ``bench/engine.py`` prints both). ``analyze_workflow_dependencies`` (a report, not on any hot path) and
``Workflow.to_networkx`` use networkx, imported inside the function that needs it.
"""

from __future__ import annotations

from collections.abc import Hashable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import difflib
import heapq
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

from pytest_orchestrator.errors import CycleError
from pytest_orchestrator.errors import DependencyResolutionError


if TYPE_CHECKING:
    from pytest_orchestrator.core.workflow import Workflow

__all__ = [
    "analyze_workflow_dependencies",
    "check_known",
    "close_matches",
    "critical_path",
    "dependents_of",
    "find_cycle",
    "node_weights",
    "generations",
    "remaining_path_lengths",
    "topological_order",
    "upstream",
    "validate_graph",
]

N = TypeVar("N", bound=Hashable)
Graph = Mapping[N, Sequence[N]]


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Names among ``candidates`` that look like ``name`` (for "did you mean" hints)."""
    candidates = list(candidates)
    found = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    if not found:
        # A short name that is a substring (``load`` for ``scripts/load.py``) is a good hint too.
        found = [c for c in candidates if name and name in c][:n]
    return found


def validate_graph(graph: Graph[N]) -> None:
    """Raise if the graph cannot run.

    Raises ``DependencyResolutionError`` naming the first node (in definition order) that depends on an unknown
    node, with close matches; ``CycleError`` with the cycle's path if there is one.
    """
    check_known(graph)
    cycle = find_cycle(graph)
    if cycle is not None:
        raise CycleError(cycle=[str(n) for n in cycle])


def find_cycle(graph: Graph[N]) -> list[N] | None:
    """A cycle as a path whose first and last nodes are the same, or ``None``.

    Self-dependencies count (``[a, a]``). Unknown dependencies are ignored here (``validate_graph`` reports them).
    Iterative DFS, so deep graphs do not hit the recursion limit.
    """
    white, grey, black = 0, 1, 2
    colour: dict[N, int] = dict.fromkeys(graph, white)
    for root in graph:
        if colour[root] != white:
            continue
        stack: list[tuple[N, Iterable[N]]] = [(root, iter(graph[root]))]
        path: list[N] = [root]
        colour[root] = grey
        while stack:
            node, deps = stack[-1]
            advanced = False
            for dep in deps:
                state = colour.get(dep)
                if state is None:
                    continue
                if state == grey:
                    start = path.index(dep)
                    # path follows "depends on" edges; print it as such: a -> b means a depends on b.
                    return [*path[start:], dep]
                if state == white:
                    colour[dep] = grey
                    stack.append((dep, iter(graph[dep])))
                    path.append(dep)
                    advanced = True
                    break
            if not advanced:
                colour[node] = black
                stack.pop()
                path.pop()
    return None


def dependents_of(graph: Graph[N]) -> dict[N, list[N]]:
    """The reverse graph: ``node -> nodes that depend on it``, in definition order (unknown names ignored)."""
    out: dict[N, list[N]] = {node: [] for node in graph}
    for node, deps in graph.items():
        for dep in dict.fromkeys(deps) if len(deps) > 1 else deps:
            children = out.get(dep)
            if children is not None:
                children.append(node)
    return out


def upstream(graph: Mapping[N, Sequence[N]], node: N) -> set[N]:
    """Every node ``node`` depends on, directly or not (``node`` itself only on a cycle). Pass the reverse graph
    (:func:`dependents_of`) for every node that depends on ``node``."""
    seen: set[N] = set()
    stack = list(graph.get(node, ()))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(graph.get(current, ()))
    return seen


def check_known(graph: Graph[N]) -> None:
    """Raise ``DependencyResolutionError`` for the first node (in definition order) with an unknown dependency."""
    for node, deps in graph.items():
        for dep in deps:
            if dep not in graph:
                hints = close_matches(str(dep), (str(n) for n in graph if n != node))
                raise DependencyResolutionError(task_name=str(node), missing=str(dep), suggestions=hints)


def topological_order(graph: Graph[N], *, rdeps: Mapping[N, Sequence[N]] | None = None, stable: bool = True) -> list[N]:
    """A stable topological order: definition order is kept wherever dependencies allow.

    ``rdeps`` (from ``dependents_of``) may be passed when the caller has it already. ``stable=False`` gives some
    topological order, cheaper (for callers that only need the cycle check). Raises ``CycleError`` if there is a
    cycle.
    """
    index = {node: i for i, node in enumerate(graph)}
    if rdeps is None:
        rdeps = dependents_of(graph)
    indegree = {node: 0 for node in graph}
    for children in rdeps.values():
        for child in children:
            indegree[child] += 1
    if not stable:
        order = [node for node, n in indegree.items() if n == 0]
        for node in order:  # the list grows while it is walked: a FIFO queue
            for child in rdeps[node]:
                left = indegree[child] - 1
                indegree[child] = left
                if not left:
                    order.append(child)
        if len(order) != len(graph):
            raise CycleError(cycle=[str(n) for n in find_cycle(graph) or []])
        return order
    heap = [index[node] for node, n in indegree.items() if n == 0]
    heapq.heapify(heap)
    nodes = list(graph)
    order = []
    while heap:
        node = nodes[heapq.heappop(heap)]
        order.append(node)
        for child in rdeps[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(heap, index[child])
    if len(order) != len(graph):
        cycle = find_cycle(graph)
        raise CycleError(cycle=[str(n) for n in cycle or []])
    return order


def generations(graph: Graph[N]) -> list[list[N]]:
    """Nodes grouped by depth: every node sits one level after its deepest dependency."""
    level: dict[N, int] = {}
    for node in topological_order(graph):
        level[node] = 1 + max((level[d] for d in graph[node] if d in level), default=-1)
    out: list[list[N]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for node in graph:
        out[level[node]].append(node)
    return out


def node_weights(graph: Graph[N], weights: Mapping[N, float | None] | None) -> dict[N, float]:
    """Known durations, and for the unknown ones one unit: the median known duration, or 1.0."""
    known = sorted(w for w in (weights or {}).values() if w is not None and w >= 0)
    unit = known[len(known) // 2] if known else 1.0
    unit = unit or 1e-9
    out = {}
    for node in graph:
        w = (weights or {}).get(node)
        out[node] = unit if w is None or w < 0 else float(w)
    return out


def remaining_path_lengths(
    graph: Graph[N],
    weights: Mapping[N, float | None] | None = None,
    *,
    order: Sequence[N] | None = None,
    rdeps: Mapping[N, Sequence[N]] | None = None,
) -> dict[N, float]:
    """For each node, the longest weighted path from it to the end of the graph, itself included.

    This is the priority of list scheduling by critical path: the node with the most work behind it goes first.
    """
    w = node_weights(graph, weights)
    if rdeps is None:
        rdeps = dependents_of(graph)
    out: dict[N, float] = {}
    for node in reversed(order if order is not None else topological_order(graph, rdeps=rdeps)):
        children = rdeps[node]
        if not children:
            out[node] = w[node]
        elif len(children) == 1:
            out[node] = w[node] + out[children[0]]
        else:
            out[node] = w[node] + max([out[c] for c in children])
    return out


def critical_path(graph: Graph[N], weights: Mapping[N, float | None] | None = None) -> list[N]:
    """The longest weighted chain of dependencies, first node first."""
    if not graph:
        return []
    order = topological_order(graph)
    remaining = remaining_path_lengths(graph, weights, order=order)
    rdeps = dependents_of(graph)
    index = {node: i for i, node in enumerate(graph)}
    node = max((n for n in graph if not any(d in graph for d in graph[n])), key=lambda n: (remaining[n], -index[n]))
    path = [node]
    while rdeps[node]:
        node = max(rdeps[node], key=lambda n: (remaining[n], -index[n]))
        path.append(node)
    return path


def _graph_from(tasks: Any) -> tuple[dict[str, list[str]], dict[str, float | None]]:
    """Read ``{id|name, dependencies|depends_on|needs}`` dicts, ``Task`` objects or a ``Workflow``."""
    if hasattr(tasks, "tasks") and isinstance(tasks.tasks, Mapping):
        tasks = list(tasks.tasks.values())
    elif isinstance(tasks, Mapping):
        tasks = [
            {"id": k, "dependencies": v} if isinstance(v, list | tuple) else {"id": k, **dict(v)}
            for k, v in tasks.items()
        ]
    graph: dict[str, list[str]] = {}
    weights: dict[str, float | None] = {}
    for i, task in enumerate(tasks):
        if isinstance(task, Mapping):
            name = task.get("id", task.get("name", f"task_{i}"))
            deps = task.get("dependencies", task.get("depends_on", task.get("needs", ()))) or ()
            duration = task.get("duration", task.get("estimated_duration"))
        else:
            name = task.name
            deps = task.dependencies
            duration = task.estimated_duration
        if isinstance(deps, str):
            deps = [deps]
        if name in graph:
            raise ValueError(f"duplicate task id {name!r}")
        graph[str(name)] = [str(d) for d in deps]
        weights[str(name)] = duration
    return graph, weights


def analyze_workflow_dependencies(
    tasks: Workflow | Iterable[Mapping[str, Any]] | Mapping[str, Any],
) -> dict[str, Any]:
    """Check a set of tasks and describe their graph, as a JSON-ready dict (with networkx, imported here).

    ``tasks`` is a ``Workflow``, a list of ``{"id": ..., "dependencies": [...]}`` dicts, or a mapping
    ``{id: [dependencies]}``. On success: ``status "success"``, ``valid_dag True``, ``execution_order``,
    ``levels``, ``critical_path`` (the longest chain, weighted by ``duration``), ``roots``, ``leaves``,
    ``task_count``, ``edge_count``, ``max_parallelism``, ``redundant_edges`` (``[dependency, dependent]`` pairs
    that the transitive reduction drops: the dependency is implied through another path) and ``components``
    (weakly connected groups of tasks, each in definition order). On a cycle or an unknown dependency:
    ``status "error"``, ``valid_dag False`` and ``error`` (with ``cycle`` or ``missing``).
    """
    import networkx as nx

    try:
        graph, weights = _graph_from(tasks)
    except (ValueError, TypeError, AttributeError) as exc:
        return {"status": "error", "valid_dag": False, "error": f"invalid task list: {exc}"}
    base: dict[str, Any] = {
        "task_count": len(graph),
        "edge_count": sum(len(d) for d in graph.values()),
    }
    try:
        check_known(graph)
    except DependencyResolutionError as exc:
        return {
            **base,
            "status": "error",
            "valid_dag": False,
            "task": exc.task_name,
            "missing": exc.missing,
            "suggestions": exc.suggestions,
            "error": exc.message,
        }
    g = nx.DiGraph()
    g.add_nodes_from(graph)
    g.add_edges_from((dep, node) for node, deps in graph.items() for dep in deps)
    if not nx.is_directed_acyclic_graph(g):
        # searched along "depends on" edges from the first defined node, and printed that way: a -> b means a
        # depends on b
        edges = nx.find_cycle(g.reverse(copy=False), source=list(graph))
        error = CycleError(cycle=[str(u) for u, _ in edges] + [str(edges[0][0])])
        return {**base, "status": "error", "valid_dag": False, "cycle": error.cycle, "error": error.message}
    order = topological_order(graph)
    index = {node: i for i, node in enumerate(graph)}
    kept = nx.transitive_reduction(g)
    redundant = [
        [dep, node] for node, deps in graph.items() for dep in dict.fromkeys(deps) if not kept.has_edge(dep, node)
    ]
    components = sorted(
        (sorted(c, key=index.__getitem__) for c in nx.weakly_connected_components(g)), key=lambda c: index[c[0]]
    )
    levels = generations(graph)
    rdeps = dependents_of(graph)
    return {
        **base,
        "status": "success",
        "valid_dag": True,
        "execution_order": order,
        "levels": levels,
        "critical_path": _longest_path(nx, g, graph, weights, order),
        "roots": [n for n, d in graph.items() if not d],
        "leaves": [n for n, c in rdeps.items() if not c],
        "max_parallelism": max((len(level) for level in levels), default=0),
        "redundant_edges": redundant,
        "components": components,
    }


def _longest_path(
    nx: Any, g: Any, graph: dict[str, list[str]], weights: Mapping[str, float | None], order: list[str]
) -> list[str]:
    """The critical path by networkx, with the same ties as ``critical_path``.

    The search runs on the reversed graph (dependent -> dependency) from an end sentinel joined to every leaf, node
    weights becoming the weights of the edges into each node, so each node's distance is its remaining path. The
    walk order puts the roots last, in definition order, and each node's predecessors are its dependents in
    definition order: ties go to the first-defined node, as in ``critical_path``.
    """
    if not graph:
        return []
    w = node_weights(graph, weights)
    end = object()
    rdeps = dependents_of(graph)
    h = nx.DiGraph()
    h.add_edges_from((end, n, {"weight": w[n]}) for n in graph if not rdeps[n])
    h.add_edges_from((node, dep, {"weight": w[dep]}) for node in graph for dep in dict.fromkeys(graph[node]))
    roots = [n for n in graph if not graph[n]]
    walk = [end, *(n for n in reversed(order) if graph[n]), *roots]
    path: list[Any] = nx.dag_longest_path(h, weight="weight", topo_order=walk)
    return [str(n) for n in reversed(path[1:])]
