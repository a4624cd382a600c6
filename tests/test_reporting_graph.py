"""``reporting/graph.py``: Mermaid and DOT pictures of a dependency graph, drawn as its transitive reduction."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_orchestrator.reporting.graph import render_graph
from pytest_orchestrator.reporting.graph import to_dot
from pytest_orchestrator.reporting.graph import to_mermaid
from pytest_orchestrator.reporting.graph import transitive_reduction


#: a -> b -> c, plus the redundant a -> c
REDUNDANT = {"a": [], "b": ["a"], "c": ["a", "b"]}


def test_reduction_drops_the_redundant_edge() -> None:
    assert transitive_reduction(REDUNDANT) == {"a": [], "b": ["a"], "c": ["b"]}


def test_reduction_keeps_order_and_drops_unknown_and_repeated_dependencies() -> None:
    graph = {"x": [], "y": [], "z": ["y", "missing", "x", "y"]}
    assert transitive_reduction(graph) == {"x": [], "y": [], "z": ["y", "x"]}


def test_reduction_of_a_longer_chain_with_shortcuts() -> None:
    graph = {"a": [], "b": ["a"], "c": ["b", "a"], "d": ["c", "b", "a"], "e": ["a"]}
    assert transitive_reduction(graph) == {"a": [], "b": ["a"], "c": ["b"], "d": ["c"], "e": ["a"]}


def test_a_cycle_is_drawn_whole() -> None:
    graph = {"a": ["c"], "b": ["a"], "c": ["b", "a"]}
    assert transitive_reduction(graph) == graph


def test_mermaid_draws_the_reduction() -> None:
    text = to_mermaid(REDUNDANT)
    assert text.count("-->") == 2
    assert "n0_a --> n1_b" in text and "n1_b --> n2_c" in text
    assert "n0_a --> n2_c" not in text
    assert to_mermaid(REDUNDANT, reduce=False).count("-->") == 3


def test_dot_draws_the_reduction() -> None:
    text = render_graph(REDUNDANT, "dot")
    assert '"a" -> "b";' in text and '"b" -> "c";' in text
    assert '"a" -> "c";' not in text
    assert '"a" -> "c";' in to_dot(REDUNDANT, reduce=False)


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown graph format 'svg'"):
        render_graph(REDUNDANT, "svg")


def test_networkx_is_loaded_only_to_draw() -> None:
    code = (
        "import sys\n"
        "import pytest_orchestrator.reporting.graph as g\n"
        "assert 'networkx' not in sys.modules, 'imported with the module'\n"
        "g.to_mermaid({'a': []})\n"
        "assert 'networkx' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
