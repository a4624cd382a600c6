"""The plugin's own hooks, implemented from a conftest: modify_graph, attempt and summary."""

from __future__ import annotations

from plugin_helpers import assert_clean_error
from plugin_helpers import lean_inner_runs
from plugin_helpers import order_of
from plugin_helpers import project
from plugin_helpers import summary_lines
import pytest


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


SUITE = """
def test_migrate():
    assert False

def test_query():
    pass
"""


def test_modify_graph_adds_an_edge(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makeconftest(
        """
        def pytest_orchestrate_modify_graph(config, graph):
            assert "test_g.py::test_migrate" in graph and len(graph) == 2
            graph.add_dependency("test_g.py::test_query", "test_g.py::test_migrate")
        """
    )
    pytester.makepyfile(test_g="def test_query():\n    pass\n\ndef test_migrate():\n    assert False\n")
    result = pytester.runpytest("--orchestrate", "-v", "-rs")
    result.assert_outcomes(failed=1, skipped=1)
    assert order_of(result) == ["test_g.py::test_migrate", "test_g.py::test_query"]
    result.stdout.fnmatch_lines(["*dependency 'test_g.py::test_migrate' failed"])


def test_modify_graph_can_remove_an_edge(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makeconftest(
        """
        def pytest_orchestrate_modify_graph(config, graph):
            for node in list(graph):
                for dep in graph.dependencies(node):
                    graph.remove_dependency(node, dep)
        """
    )
    pytester.makepyfile(
        test_g="import pytest\n\ndef test_migrate():\n    assert False\n\n"
        "@pytest.mark.depends('test_migrate')\ndef test_query():\n    pass\n"
    )
    pytester.runpytest("--orchestrate").assert_outcomes(failed=1, passed=1)


def test_modify_graph_cycle_and_unknown_are_usage_errors(pytester: pytest.Pytester) -> None:
    """A cycle is a usage error under --orchestrate-strict; an unknown node id added by the hook always is."""
    project(pytester)
    pytester.makepyfile(test_g=SUITE)
    pytester.makeconftest(
        """
        def pytest_orchestrate_modify_graph(config, graph):
            graph.add_dependency("test_g.py::test_query", "test_g.py::test_migrate")
            graph.add_dependency("test_g.py::test_migrate", "test_g.py::test_query")
        """
    )
    assert_clean_error(
        pytester.runpytest("--orchestrate", "--orchestrate-strict"),
        "dependency cycle: test_g.py::test_migrate -> test_g.py::test_query -> test_g.py::test_migrate",
    )
    pytester.makeconftest(
        """
        def pytest_orchestrate_modify_graph(config, graph):
            graph.add_dependency("test_g.py::test_query", "test_g.py::test_migrat")
        """
    )
    assert_clean_error(pytester.runpytest("--orchestrate"), "'test_g.py::test_migrat'", "test_g.py::test_migrate")


def test_modify_graph_cycle_in_a_suite_without_markers_errors_its_items(pytester: pytest.Pytester) -> None:
    """Without any marker the graph is built straight from the items; a cycle the hook adds still errors the items
    on it (naming the cycle) and the rest runs."""
    project(pytester)
    pytester.makeconftest(
        """
        def pytest_orchestrate_modify_graph(config, graph):
            graph.add_dependency("test_g.py::test_query", "test_g.py::test_migrate")
            graph.add_dependency("test_g.py::test_migrate", "test_g.py::test_query")
        """
    )
    pytester.makepyfile(test_g="def test_query(): pass\n\ndef test_migrate(): pass\n\ndef test_other(): pass\n")
    result = pytester.runpytest("--orchestrate")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*dependency cycle: test_g.py::test_*", "*1 passed, 2 errors*"])


def test_attempt_hook_sees_every_attempt(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makeconftest(
        """
        SEEN = []

        def pytest_orchestrate_attempt(item, attempt, report, will_retry):
            SEEN.append((item.name, attempt, report.when, report.outcome, will_retry))

        def pytest_sessionfinish(session):
            print("SEEN", SEEN)
        """
    )
    pytester.makepyfile(
        test_a="""
        import pytest

        N = []

        @pytest.mark.retry(max_attempts=3, initial_delay=0)
        def test_flaky():
            N.append(1)
            assert len(N) == 3

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest("--orchestrate", "-s")
    assert (
        "SEEN [('test_flaky', 1, 'call', 'rerun', True), ('test_flaky', 2, 'call', 'rerun', True), "
        "('test_flaky', 3, 'call', 'passed', False)]"
    ) in result.stdout.str()


def test_summary_hook_adds_lines(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makeconftest(
        """
        import json

        def pytest_orchestrate_summary(config, summary, lines):
            json.dumps(summary)
            lines.append(f"custom: {summary['counts']['failed']} failed of {summary['total_items']}")
            lines.append("critical: " + ",".join(summary["critical_path"]))
            items = summary["items"].items()
            lines.append("items: " + ",".join(f"{n.split('::')[-1]}={i['status']}" for n, i in items))
        """
    )
    pytester.makepyfile(test_g=SUITE)
    lines = summary_lines(pytester.runpytest("--orchestrate"))
    assert "custom: 1 failed of 2" in lines
    assert "critical: " in lines  # no dependencies, no critical path (not the slowest test)
    # the per-item entries are made for a hook implementation (the session makes them only where one reads them)
    assert any(line.startswith("items: ") and "=failed" in line and "=passed" in line for line in lines), lines


def test_hooks_unknown_without_orchestrate_are_fine(pytester: pytest.Pytester) -> None:
    """The specs are registered even when inactive, so a conftest implementing them validates."""
    project(pytester)
    pytester.makeconftest("def pytest_orchestrate_summary(config, summary, lines):\n    raise AssertionError\n")
    pytester.makepyfile(test_g=SUITE)
    pytester.runpytest().assert_outcomes(failed=1, passed=1)


def test_a_graph_built_straight_from_the_items_is_the_resolved_one(pytester: pytest.Pytester) -> None:
    """Where nothing names anything the graph skips target resolution: its nodes are what resolution makes."""
    from pytest_orchestrator.plugin import arrange
    from pytest_orchestrator.plugin.markers import NO_SPEC

    pytester.makepyfile(
        test_shapes="""
        import pytest

        def test_plain(): pass

        @pytest.mark.parametrize("n", [1, 2])
        def test_cases(n): pass

        class TestGroup:
            def test_inside(self): pass

            @pytest.mark.parametrize("x", "ab")
            def test_cases(self, x): pass
        """
    )
    items = pytester.getitems(pytester.path / "test_shapes.py")
    specs = dict.fromkeys((item.nodeid for item in items), NO_SPEC)
    durations = {items[1].nodeid: 0.25}
    lone = arrange._lone_graph(items, specs, durations)
    resolved, unknown = arrange._resolved_graph(items[0].config, items, specs, set(), None, False, durations)
    assert unknown == []
    assert list(lone.nodes.items()) == list(resolved.nodes.items())
    assert lone.nodes["test_shapes.py::TestGroup::test_inside"].parent == "test_shapes.py::TestGroup"
