"""``core/graph.py``: validation, stable order, cycles, generations, critical path, and the analysis report."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import itertools
import json
from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from pytest_orchestrator import CycleError
from pytest_orchestrator import DependencyResolutionError
from pytest_orchestrator import Workflow
from pytest_orchestrator import analyze_workflow_dependencies
from pytest_orchestrator.core.graph import close_matches
from pytest_orchestrator.core.graph import critical_path
from pytest_orchestrator.core.graph import dependents_of
from pytest_orchestrator.core.graph import find_cycle
from pytest_orchestrator.core.graph import generations
from pytest_orchestrator.core.graph import remaining_path_lengths
from pytest_orchestrator.core.graph import topological_order
from pytest_orchestrator.core.graph import upstream
from pytest_orchestrator.core.graph import validate_graph


# -- helpers -----------------------------------------------------------------------------------------------------


def assert_real_cycle(graph: Mapping[Any, Sequence[Any]], cycle: Sequence[Any]) -> None:
    """``cycle`` starts and ends on the same node and each step follows a "depends on" edge of ``graph``."""
    assert len(cycle) >= 2
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1, "a cycle visits each node once"
    for node, dep in itertools.pairwise(cycle):
        assert dep in graph[node], f"{node} -> {dep} is not an edge"


def assert_topological(graph: dict[Any, list[Any]], order: list[Any]) -> None:
    assert sorted(order, key=str) == sorted(graph, key=str)
    position = {n: i for i, n in enumerate(order)}
    for node, deps in graph.items():
        for dep in deps:
            assert position[dep] < position[node], f"{dep} must come before {node}"


def all_paths(graph: dict[int, list[int]]) -> list[list[int]]:
    """Every maximal chain root -> ... -> leaf, by brute force (small graphs only)."""
    children = {n: [c for c in graph if n in graph[c]] for n in graph}
    out: list[list[int]] = []

    def walk(path: list[int]) -> None:
        kids = children[path[-1]]
        if not kids:
            out.append(path)
        for kid in kids:
            walk([*path, kid])

    for root in (n for n in graph if not graph[n]):
        walk([root])
    return out


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 12) -> dict[int, list[int]]:
    """A random DAG over 0..n-1 (edges only from lower to higher index), in a random definition order."""
    n = draw(st.integers(1, max_nodes))
    deps = {j: sorted(draw(st.sets(st.integers(0, j - 1), max_size=j)) if j else []) for j in range(n)}
    order = draw(st.permutations(list(range(n))))
    return {node: deps[node] for node in order}


# -- validate_graph ----------------------------------------------------------------------------------------------


def test_validate_accepts_a_dag() -> None:
    validate_graph({"a": [], "b": ["a"], "c": ["a", "b"]})


def test_validate_reports_unknown_dependency_with_close_matches() -> None:
    """An unknown dependency names the task, the missing name and close matches."""
    with pytest.raises(DependencyResolutionError) as info:
        validate_graph({"build": [], "test": ["biuld"]})
    err = info.value
    assert err.task_name == "test"
    assert err.missing == "biuld"
    assert "build" in err.suggestions
    assert "biuld" in str(err) and "test" in str(err)


def test_validate_reports_the_first_unknown_dependency_in_definition_order() -> None:
    with pytest.raises(DependencyResolutionError) as info:
        validate_graph({"a": ["zzz"], "b": ["yyy"]})
    assert (info.value.task_name, info.value.missing) == ("a", "zzz")


def test_validate_reports_a_cycle() -> None:
    graph = {"a": ["c"], "b": ["a"], "c": ["b"]}
    with pytest.raises(CycleError) as info:
        validate_graph(graph)
    assert_real_cycle(graph, info.value.cycle)
    assert " -> ".join(info.value.cycle) in str(info.value)


def test_close_matches() -> None:
    """Typos and substrings are suggested; unrelated names are not."""
    assert close_matches("biuld", ["build", "test", "deploy"]) == ["build"]
    assert close_matches("load", ["scripts/load.py", "other"]) == ["scripts/load.py"]
    assert close_matches("qqqq", ["build", "test"]) == []


# -- find_cycle --------------------------------------------------------------------------------------------------


def test_find_cycle_none_on_a_dag() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None


def test_find_cycle_two_nodes() -> None:
    graph = {"a": ["b"], "b": ["a"]}
    cycle = find_cycle(graph)
    assert cycle is not None
    assert_real_cycle(graph, cycle)
    assert set(cycle) == {"a", "b"}


def test_find_cycle_self_dependency() -> None:
    assert find_cycle({"x": [], "a": ["a"]}) == ["a", "a"]


def test_find_cycle_ignores_nodes_outside_the_cycle() -> None:
    graph = {"root": [], "a": ["root", "c"], "b": ["a"], "c": ["b"], "leaf": ["c"]}
    cycle = find_cycle(graph)
    assert cycle is not None
    assert_real_cycle(graph, cycle)
    assert set(cycle) == {"a", "b", "c"}


def test_find_cycle_handles_deep_graphs() -> None:
    """A long chain does not hit the recursion limit."""
    n = 5000
    graph = {i: [i - 1] if i else [] for i in range(n)}
    assert find_cycle(graph) is None
    graph[0] = [n - 1]
    cycle = find_cycle(graph)
    assert cycle is not None
    assert len(cycle) == n + 1


@settings(max_examples=150, deadline=None)
@given(data=st.data(), dag=dags())
def test_find_cycle_agrees_with_networkx(data: st.DataObject, dag: dict[int, list[int]]) -> None:
    """Adding random back edges: a cycle is reported exactly when there is one, and it is a real cycle."""
    nx = pytest.importorskip("networkx")
    graph = {n: list(d) for n, d in dag.items()}
    nodes = sorted(graph)
    for _ in range(data.draw(st.integers(0, 2))):
        lo = data.draw(st.sampled_from(nodes))
        hi = data.draw(st.sampled_from([n for n in nodes if n >= lo]))
        graph[lo].append(hi)  # lo depends on hi >= lo: may close a cycle (or a self-loop)
    g = nx.DiGraph()
    g.add_nodes_from(graph)
    g.add_edges_from((n, d) for n, deps in graph.items() for d in deps)
    cycle = find_cycle(graph)
    if nx.is_directed_acyclic_graph(g):
        assert cycle is None
        assert_topological(graph, topological_order(graph))
    else:
        assert cycle is not None
        assert_real_cycle(graph, cycle)
        with pytest.raises(CycleError) as info:
            topological_order(graph)
        assert_real_cycle(graph, [int(x) for x in info.value.cycle])


# -- topological_order -------------------------------------------------------------------------------------------


def test_topological_order_keeps_definition_order_when_allowed() -> None:
    graph = {"c": [], "a": [], "b": ["c"], "d": []}
    assert topological_order(graph) == ["c", "a", "b", "d"]


def test_topological_order_moves_only_what_it_must() -> None:
    """A node defined before its dependency moves just after it; the rest keep their places."""
    graph = {"test": ["build"], "lint": [], "build": [], "docs": []}
    assert topological_order(graph) == ["lint", "build", "test", "docs"]


def test_topological_order_raises_on_cycle() -> None:
    with pytest.raises(CycleError) as info:
        topological_order({"a": ["b"], "b": ["a"]})
    assert info.value.cycle[0] == info.value.cycle[-1]


@settings(max_examples=150, deadline=None)
@given(dag=dags())
def test_topological_order_is_valid_and_stable(dag: dict[int, list[int]]) -> None:
    """Dependencies come first, and at each step the earliest-defined node that may go next is the one taken."""
    order = topological_order(dag)
    assert_topological(dag, order)
    index = {n: i for i, n in enumerate(dag)}
    placed: set[int] = set()
    for node in order:
        available = [n for n in dag if n not in placed and all(d in placed for d in dag[n])]
        assert index[node] == min(index[n] for n in available)
        placed.add(node)
    # and it is deterministic
    assert topological_order(dict(dag)) == order


@settings(max_examples=60, deadline=None)
@given(dag=dags())
def test_already_sorted_definition_order_is_returned_unchanged(dag: dict[int, list[int]]) -> None:
    ordered = {n: dag[n] for n in sorted(dag)}
    assert topological_order(ordered) == sorted(dag)


# -- generations -------------------------------------------------------------------------------------------------


def test_generations_group_by_depth_in_definition_order() -> None:
    graph = {"a": [], "b": [], "c": ["a"], "d": ["c", "b"], "e": ["a"]}
    assert generations(graph) == [["a", "b"], ["c", "e"], ["d"]]
    assert generations({}) == []


@settings(max_examples=100, deadline=None)
@given(dag=dags())
def test_generations_place_each_node_one_after_its_deepest_dependency(dag: dict[int, list[int]]) -> None:
    levels = generations(dag)
    level = {n: i for i, group in enumerate(levels) for n in group}
    assert sorted(level) == sorted(dag)
    assert all(group for group in levels)
    index = {n: i for i, n in enumerate(dag)}
    for node, deps in dag.items():
        assert level[node] == (1 + max(level[d] for d in deps) if deps else 0)
    for group in levels:
        assert [index[n] for n in group] == sorted(index[n] for n in group)


# -- critical path and remaining path lengths --------------------------------------------------------------------


def test_critical_path_follows_the_heavy_branch() -> None:
    graph = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    assert critical_path(graph, {"a": 1, "b": 5, "c": 1, "d": 1}) == ["a", "b", "d"]
    assert critical_path(graph, {"a": 1, "b": 1, "c": 5, "d": 1}) == ["a", "c", "d"]


def test_critical_path_unweighted_is_the_longest_chain() -> None:
    graph = {"x": [], "a": [], "b": ["a"], "c": ["b"], "y": ["x"]}
    assert critical_path(graph) == ["a", "b", "c"]
    assert critical_path({}) == []


def test_critical_path_unknown_durations_are_not_zero() -> None:
    """A task of unknown duration counts as a unit of work: three unknown steps outweigh one known 2 s step."""
    graph = {"a": [], "b": ["a"], "c": ["b"], "big": []}
    assert critical_path(graph, {"big": 2.0}) == ["a", "b", "c"]
    assert critical_path(graph, {"big": 2.0, "a": 0.1, "b": 0.1, "c": 0.1}) == ["big"]


def test_remaining_path_lengths() -> None:
    graph = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    weights = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 3.0}
    remaining = remaining_path_lengths(graph, weights)
    assert remaining == {"d": 3.0, "b": 8.0, "c": 5.0, "a": 9.0}
    assert remaining_path_lengths({"a": [], "b": ["a"]}) == {"a": 2.0, "b": 1.0}


@settings(max_examples=100, deadline=None)
@given(data=st.data(), dag=dags(max_nodes=8))
def test_critical_path_is_a_heaviest_chain(data: st.DataObject, dag: dict[int, list[int]]) -> None:
    """Against brute force: the path is a real root-to-leaf chain of maximal weight, and
    ``remaining_path_lengths[n]`` is the heaviest chain starting at ``n``."""
    weights = {n: data.draw(st.integers(0, 20)) / 4 for n in dag}
    path = critical_path(dag, weights)
    paths = all_paths(dag)
    best = max(sum(weights[n] for n in p) for p in paths)
    assert path in paths
    assert sum(weights[n] for n in path) == pytest.approx(best)
    remaining = remaining_path_lengths(dag, weights)
    for node in dag:
        from_node = [p[p.index(node) :] for p in paths if node in p]
        assert remaining[node] == pytest.approx(max(sum(weights[n] for n in q) for q in from_node))


def test_dependents_of() -> None:
    graph = {"a": [], "b": ["a"], "c": ["a", "a"], "d": ["b"]}
    assert dependents_of(graph) == {"a": ["b", "c"], "b": ["d"], "c": [], "d": []}


# -- analyze_workflow_dependencies -------------------------------------------------------------------------------


def test_analyze_success() -> None:
    report = analyze_workflow_dependencies([{"id": "build"}, {"id": "test", "dependencies": ["build"]}])
    assert report["status"] == "success"
    assert report["valid_dag"] is True
    assert report["execution_order"] == ["build", "test"]
    assert report["levels"] == [["build"], ["test"]]
    assert report["critical_path"] == ["build", "test"]
    assert report["roots"] == ["build"]
    assert report["leaves"] == ["test"]
    assert report["task_count"] == 2
    assert report["edge_count"] == 1
    assert report["max_parallelism"] == 1
    json.dumps(report)


def test_analyze_diamond() -> None:
    report = analyze_workflow_dependencies(
        [
            {"id": "fetch"},
            {"id": "clean", "dependencies": ["fetch"]},
            {"id": "stats", "dependencies": ["fetch"]},
            {"id": "report", "dependencies": ["clean", "stats"]},
        ]
    )
    assert report["levels"] == [["fetch"], ["clean", "stats"], ["report"]]
    assert report["max_parallelism"] == 2
    assert report["execution_order"] == ["fetch", "clean", "stats", "report"]


def test_analyze_cycle() -> None:
    report = analyze_workflow_dependencies(
        [{"id": "a", "dependencies": ["b"]}, {"id": "b", "dependencies": ["a"]}, {"id": "c"}]
    )
    assert report["status"] == "error"
    assert report["valid_dag"] is False
    assert set(report["cycle"]) == {"a", "b"}
    assert report["cycle"][0] == report["cycle"][-1]
    assert " -> ".join(report["cycle"]) in report["error"]
    assert "execution_order" not in report
    json.dumps(report)


def test_analyze_unknown_dependency() -> None:
    report = analyze_workflow_dependencies([{"id": "build"}, {"id": "test", "dependencies": ["biuld"]}])
    assert report["status"] == "error"
    assert report["valid_dag"] is False
    assert report["missing"] == "biuld"
    assert report["task"] == "test"
    assert "biuld" in report["error"]
    assert "build" in report["suggestions"]
    json.dumps(report)


def test_analyze_accepts_a_workflow() -> None:
    wf = Workflow("w")
    wf.add_task("build", lambda: 1)
    wf.add_task("test", lambda: 2, dependencies=["build"])
    wf.add_task("lint", lambda: 3)
    report = analyze_workflow_dependencies(wf)
    assert report["status"] == "success"
    assert report["execution_order"] == ["build", "test", "lint"]
    assert report["levels"] == [["build", "lint"], ["test"]]


def test_analyze_accepts_a_mapping_and_other_keys() -> None:
    assert analyze_workflow_dependencies({"a": [], "b": ["a"]})["execution_order"] == ["a", "b"]
    report = analyze_workflow_dependencies([{"name": "x"}, {"name": "y", "depends_on": "x"}])
    assert report["execution_order"] == ["x", "y"]


def test_analyze_uses_durations_for_the_critical_path() -> None:
    report = analyze_workflow_dependencies(
        [
            {"id": "a", "duration": 1},
            {"id": "slow", "dependencies": ["a"], "duration": 10},
            {"id": "fast", "dependencies": ["a"], "duration": 1},
        ]
    )
    assert report["critical_path"] == ["a", "slow"]


def test_analyze_duplicate_id_is_an_error_report() -> None:
    report = analyze_workflow_dependencies([{"id": "a"}, {"id": "a"}])
    assert report["status"] == "error"
    assert report["valid_dag"] is False
    assert "duplicate" in report["error"]


def test_analyze_reports_redundant_edges_and_components() -> None:
    """``test -> build`` is implied by ``test -> lint -> build``; ``docs`` stands alone."""
    report = analyze_workflow_dependencies(
        {"build": [], "lint": ["build"], "test": ["build", "lint"], "docs": [], "site": ["docs"]}
    )
    assert report["redundant_edges"] == [["build", "test"]]
    assert report["components"] == [["build", "lint", "test"], ["docs", "site"]]
    assert report["critical_path"] == ["build", "lint", "test"]
    json.dumps(report)


def test_analyze_of_a_self_dependency_is_a_cycle() -> None:
    report = analyze_workflow_dependencies({"a": ["a"]})
    assert report["cycle"] == ["a", "a"]
    assert report["valid_dag"] is False


@settings(max_examples=150, deadline=None)
@given(data=st.data(), dag=dags())
def test_analyze_agrees_with_the_hand_written_core(data: st.DataObject, dag: dict[int, list[int]]) -> None:
    """networkx in the report, the hand-written core in the engine: the same critical path (ties included) and
    order; each reported cycle is a real cycle; a redundant edge is implied by the edges kept."""
    graph = {str(n): [str(d) for d in deps] for n, deps in dag.items()}
    weights = {n: data.draw(st.sampled_from([None, 0.5, 1.0, 2.0, 3.0])) for n in graph}
    tasks = [{"id": n, "dependencies": deps, "duration": weights[n]} for n, deps in graph.items()]
    report = analyze_workflow_dependencies(tasks)
    assert report["critical_path"] == critical_path(graph, weights)
    assert report["execution_order"] == topological_order(graph)
    assert sorted(n for c in report["components"] for n in c) == sorted(graph)
    kept = {(d, n) for n, deps in graph.items() for d in deps} - {tuple(e) for e in report["redundant_edges"]}
    for dep, node in report["redundant_edges"]:
        reach, stack = set(), [dep]
        while stack:  # what dep reaches through the kept edges
            here = stack.pop()
            for a, b in kept:
                if a == here and b not in reach:
                    reach.add(b)
                    stack.append(b)
        assert node in reach
    back = data.draw(st.sampled_from(sorted(graph)))
    graph[back].append(data.draw(st.sampled_from(sorted(graph))))
    cyclic = analyze_workflow_dependencies(graph)
    if cyclic["valid_dag"] is False:
        assert_real_cycle(graph, cyclic["cycle"])
    else:
        assert find_cycle(graph) is None


def test_to_networkx() -> None:
    nx = pytest.importorskip("networkx")
    wf = Workflow("w")
    wf.add_task("build", lambda: 1, priority=2, tags=["ci"], timeout=5)
    wf.add_task("test", lambda: 2, dependencies=["build"])
    g = wf.to_networkx()
    assert isinstance(g, nx.DiGraph)
    assert list(g.nodes) == ["build", "test"]
    assert list(g.edges) == [("build", "test")]  # dependency -> dependent
    assert g.nodes["build"] == {"status": "pending", "priority": 2, "tags": ("ci",), "timeout": 5.0}
    assert g.nodes["test"]["timeout"] is None


def test_upstream_is_every_node_depended_on_directly_or_not() -> None:
    graph = {"a": [], "b": ["a"], "c": ["b"], "d": ["a"], "e": ["c", "d"]}
    assert upstream(graph, "e") == {"a", "b", "c", "d"}
    assert upstream(graph, "a") == set()
    assert upstream(dependents_of(graph), "b") == {"c", "e"}  # the reverse graph: who depends on it
    assert upstream({"x": ["y"], "y": ["x"]}, "x") == {"x", "y"}  # a node itself only on a cycle
