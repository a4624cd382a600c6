"""@pytest.mark.depends: target forms, ordering, dependency skips, deselected and uncollected dependencies, errors."""

from __future__ import annotations

from plugin_helpers import SCRIPTS_INI
from plugin_helpers import assert_clean_error
from plugin_helpers import lean_inner_runs
from plugin_helpers import order_of
from plugin_helpers import project
from plugin_helpers import script
from plugin_helpers import write
import pytest

from pytest_orchestrator.core.scheduler import COMPLETED
from pytest_orchestrator.core.scheduler import FAILED
from pytest_orchestrator.plugin.dag import Blocker
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.dag import Node


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


def test_stable_topological_order(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_order="""
        import pytest

        @pytest.mark.depends("test_c")
        def test_b(): pass

        def test_a(): pass

        def test_c(): pass

        @pytest.mark.depends("test_a")
        def test_d(): pass

        def test_e(): pass
        """
    )
    result = pytester.runpytest("--orchestrate", "-v")
    result.assert_outcomes(passed=5)
    assert [n.split("::")[1] for n in order_of(result)] == ["test_a", "test_c", "test_b", "test_d", "test_e"]


def test_failed_and_skipped_dependencies_skip_dependents(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_chain="""
        import pytest

        def test_root():
            assert False

        @pytest.mark.depends("test_root")
        def test_child(): pass

        @pytest.mark.depends("test_child")
        def test_grandchild(): pass

        @pytest.mark.skip(reason="not today")
        def test_skipped(): pass

        @pytest.mark.depends("test_skipped")
        def test_after_skip(): pass

        @pytest.mark.xfail(reason="known")
        def test_xfail():
            assert False

        @pytest.mark.depends("test_xfail")
        def test_after_xfail(): pass

        def test_skips_inside():
            pytest.skip("inside")

        @pytest.mark.depends("test_skips_inside")
        def test_after_inside(): pass
        """
    )
    result = pytester.runpytest("--orchestrate", "-rs")
    result.assert_outcomes(failed=1, skipped=7, xfailed=1)
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1[]] test_chain.py:*: dependency 'test_chain.py::test_root' failed",
            "SKIPPED [[]1[]] test_chain.py:*: dependency 'test_chain.py::test_child' was skipped "
            "(root cause: 'test_chain.py::test_root' failed)",
            "SKIPPED [[]1[]] test_chain.py:*: dependency 'test_chain.py::test_skipped' was skipped",
            "SKIPPED [[]1[]] test_chain.py:*: dependency 'test_chain.py::test_xfail' was xfailed",
            "SKIPPED [[]1[]] test_chain.py:*: dependency 'test_chain.py::test_skips_inside' was skipped",
        ]
    )


def test_dependency_skip_runs_no_fixture(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_fix="""
        import pytest

        @pytest.fixture
        def expensive():
            raise RuntimeError("must not be set up")

        def test_root():
            assert False

        @pytest.mark.depends("test_root")
        def test_child(expensive): pass
        """
    )
    result = pytester.runpytest("--orchestrate")
    result.assert_outcomes(failed=1, skipped=1)
    assert "must not be set up" not in result.stdout.str()


def test_target_forms(pytester: pytest.Pytester) -> None:
    """Node id, same-module name, Class::name, parametrised base, file, folder, script path and stem, alias, on=."""
    project(pytester, SCRIPTS_INI)
    script(pytester, "scripts/seed.py", "print('seeded')")
    script(pytester, "scripts/extract.py", "print('extracted')")
    write(
        pytester,
        "tests/unit/test_lib.py",
        """
        def test_one(): pass
        def test_two(): pass
        """,
    )
    write(
        pytester,
        "tests/test_base.py",
        """
        import pytest

        @pytest.mark.depends(name="db")
        def test_db(): pass

        @pytest.mark.depends(name="db")
        def test_db_more(): pass

        class TestGroup:
            def test_member(self): pass

        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_param(n): pass
        """,
    )
    write(
        pytester,
        "tests/test_zdeps.py",
        """
        import pytest

        @pytest.mark.depends("tests/test_base.py::test_db")
        def test_by_nodeid(): pass

        @pytest.mark.depends("test_by_nodeid")
        def test_by_local_name(): pass

        @pytest.mark.depends("tests/test_base.py::TestGroup::test_member")
        def test_by_class_member(): pass

        @pytest.mark.depends("tests/test_base.py::test_param")
        def test_by_param_base(): pass

        @pytest.mark.depends("tests/unit/test_lib.py")
        def test_by_file(): pass

        @pytest.mark.depends("unit")
        def test_by_folder_relative_to_test(): pass

        @pytest.mark.depends("scripts/seed.py")
        def test_by_script_path(): pass

        @pytest.mark.depends(on=["extract"])
        def test_by_script_stem(): pass

        @pytest.mark.depends("db")
        def test_by_alias(): pass

        class TestLocal:
            def test_first(self): pass

            @pytest.mark.depends("test_first")
            def test_second(self): pass

        @pytest.mark.depends("TestLocal::test_second")
        def test_by_class_name(): pass
        """,
    )
    conftest = """
    import json

    def pytest_orchestrate_modify_graph(config, graph):
        config.stash_graph = {n: graph.dependencies(n) for n in graph}

    def pytest_sessionfinish(session):
        graph = session.config.stash_graph
        with open("graph.json", "w") as fh:
            json.dump(graph, fh)
    """
    pytester.makeconftest(conftest)
    result = pytester.runpytest("--orchestrate")
    result.assert_outcomes(passed=22)
    import json

    graph = json.loads((pytester.path / "graph.json").read_text())
    z = "tests/test_zdeps.py::"
    b = "tests/test_base.py::"
    assert graph[z + "test_by_nodeid"] == [b + "test_db"]
    assert graph[z + "test_by_local_name"] == [z + "test_by_nodeid"]
    assert graph[z + "test_by_class_member"] == [b + "TestGroup::test_member"]
    assert graph[z + "test_by_param_base"] == [b + "test_param[1]", b + "test_param[2]", b + "test_param[3]"]
    assert graph[z + "test_by_file"] == ["tests/unit/test_lib.py::test_one", "tests/unit/test_lib.py::test_two"]
    assert graph[z + "test_by_folder_relative_to_test"] == graph[z + "test_by_file"]
    assert graph[z + "test_by_script_path"] == ["scripts/seed.py::seed"]
    assert graph[z + "test_by_script_stem"] == ["scripts/extract.py::extract"]
    assert graph[z + "test_by_alias"] == [b + "test_db", b + "test_db_more"]
    assert graph[z + "TestLocal::test_second"] == [z + "TestLocal::test_first"]
    assert graph[z + "test_by_class_name"] == [z + "TestLocal::test_second"]


def test_script_dependencies_from_metadata(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    script(pytester, "scripts/a_load.py", "print('load')", meta='depends = ["z_extract"]')
    script(pytester, "scripts/z_extract.py", "raise SystemExit(1)")
    script(pytester, "scripts/m_report.py", "print('report')", meta='depends = ["a_load.py"]')
    result = pytester.runpytest("--orchestrate", "-v", "-rs")
    result.assert_outcomes(failed=1, skipped=2)
    assert order_of(result) == [
        "scripts/z_extract.py::z_extract",
        "scripts/a_load.py::a_load",
        "scripts/m_report.py::m_report",
    ]
    result.stdout.fnmatch_lines(
        [
            "*scripts/a_load.py:1: dependency 'scripts/z_extract.py::z_extract' failed",
            "*scripts/m_report.py:1: dependency 'scripts/a_load.py::a_load' was skipped "
            "(root cause: 'scripts/z_extract.py::z_extract' failed)",
        ]
    )


def test_unknown_target_is_a_usage_error_when_strict(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_u="""
        import pytest

        def test_login(): pass

        @pytest.mark.depends("test_logni")
        def test_use(): pass
        """
    )
    result = pytester.runpytest("--orchestrate", "--orchestrate-strict")
    assert_clean_error(
        result,
        "test_u.py::test_use: dependency 'test_logni' matches no collected test, script, file or alias",
        "did you mean 'test_login'",
    )


def test_unknown_name_in_existing_file_when_strict(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_u="""
        import pytest

        def test_login(): pass

        @pytest.mark.depends("test_u.py::test_logon")
        def test_use(): pass
        """
    )
    result = pytester.runpytest("--orchestrate", "--orchestrate-strict")
    assert_clean_error(result, "'test_u.py::test_logon'", "test_u.py::test_login")


def test_cycle_is_a_usage_error_when_strict(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_cyc="""
        import pytest

        @pytest.mark.depends("test_b")
        def test_a(): pass

        @pytest.mark.depends("test_a")
        def test_b(): pass

        @pytest.mark.depends("test_c")
        def test_c(): pass
        """
    )
    assert_clean_error(
        pytester.runpytest("--orchestrate", "--orchestrate-strict"),
        "dependency cycle: test_cyc.py::test_a -> test_cyc.py::test_b -> test_cyc.py::test_a",
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("depends(42)", "a dependency target must be a string"),
        ("depends()", "give at least one target"),
        ("depends('x', after='y')", "unexpected keyword argument(s) after"),
        ("depends(name='')", "name= must be a non-empty string"),
        ("depends(on=3)", "on= must be a target or a list of targets"),
    ],
)
def test_bad_depends_markers(pytester: pytest.Pytester, marker: str, message: str) -> None:
    project(pytester)
    pytester.makepyfile(test_bad=f"import pytest\n\n@pytest.mark.{marker}\ndef test_x(): pass\n")
    assert_clean_error(pytester.runpytest("--orchestrate"), "test_bad.py::test_x:", message)


DESELECT_SUITE = """
import pytest



def test_setup_db():
    print("SETUP-DB-RAN")

@pytest.mark.depends("test_setup_db")
def test_query(): pass

def test_unrelated(): pass
"""


def test_deselected_dependency_runs_first_by_default(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_sel=DESELECT_SUITE)
    result = pytester.runpytest("--orchestrate", "-v", "-k", "query")
    result.assert_outcomes(passed=2)
    assert order_of(result) == ["test_sel.py::test_setup_db", "test_sel.py::test_query"]
    result.stdout.fnmatch_lines(
        ["*collected 3 items / 1 deselected / 2 selected", "*1 deselected dependencies brought back*"]
    )
    result.stdout.fnmatch_lines(["*2 passed, 1 deselected*"])
    result = pytester.runpytest("--orchestrate", "-v", "--deselect", "test_sel.py::test_setup_db")
    result.assert_outcomes(passed=3)


def test_deselected_dependency_skip_policy(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_sel=DESELECT_SUITE)
    result = pytester.runpytest("--orchestrate", "-rs", "-k", "query", "--orchestrate-deps=skip")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*dependency 'test_sel.py::test_setup_db' was deselected (--orchestrate-deps=skip)"])


def test_deselected_dependency_ignore_policy(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_sel=DESELECT_SUITE)
    result = pytester.runpytest("--orchestrate", "-s", "-k", "query", "--orchestrate-deps=ignore")
    result.assert_outcomes(passed=1)
    assert "SETUP-DB-RAN" not in result.stdout.str()


def test_brought_back_dependencies_are_transitive_and_marker_deselection(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_m="""
        import pytest

        def test_a(): pass

        @pytest.mark.depends("test_a")
        def test_b(): pass

        @pytest.mark.fast
        @pytest.mark.depends("test_b")
        def test_c(): pass
        """
    )
    result = pytester.runpytest("--orchestrate", "-v", "-m", "fast", "-W", "ignore::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(passed=3)
    assert order_of(result) == ["test_m.py::test_a", "test_m.py::test_b", "test_m.py::test_c"]


def test_uncollected_dependency_skips_with_hint(pytester: pytest.Pytester) -> None:
    project(pytester)
    write(pytester, "tests/test_b.py", "def test_x(): pass\n")
    write(
        pytester,
        "tests/test_a.py",
        """
        import pytest

        @pytest.mark.depends("tests/test_b.py::test_x")
        def test_needs_b(): pass

        @pytest.mark.depends("test_needs_b")
        def test_after(): pass
        """,
    )
    script(pytester, "scripts/seed.py", "print(1)")
    write(
        pytester,
        "tests/test_c.py",
        """
        import pytest

        @pytest.mark.depends("seed")
        def test_needs_seed(): pass
        """,
    )
    result = pytester.runpytest("--orchestrate", "-rs", "tests/test_a.py", "tests/test_c.py")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines_random(
        [
            "*tests/test_a.py:3: dependency 'tests/test_b.py::test_x' was not collected "
            "(add tests/test_b.py to the command line)",
            "*tests/test_a.py:6: dependency 'tests/test_a.py::test_needs_b' was skipped "
            "(root cause: 'tests/test_b.py::test_x' was not collected)",
            "*tests/test_c.py:3: dependency 'seed' was not collected (add scripts/seed.py to the command line)",
        ]
    )


def test_graph_json_round_trip_and_scheduler() -> None:
    graph = ItemGraph(
        [
            Node("t.py::a", kind="test", parent="t.py", location=("t.py", 3, "a"), estimated_duration=1.5),
            Node("t.py::b", deps=["t.py::a"], stage="etl", aliases=("bee",)),
            Node("s/x.py::x", kind="script", missing=[("other.py", "add other.py to the command line")]),
            Node("t.py::c", deps=["t.py::b", "s/x.py::x"], blocked=[Blocker("z", "deselected", "why")]),
        ]
    )
    again = ItemGraph.from_json(graph.to_json())
    assert again.to_json() == graph.to_json()
    assert again.nodes["t.py::a"].location == ("t.py", 3, "a")
    assert again.nodes["t.py::c"].blocked == [Blocker("z", "deselected", "why")]
    with pytest.raises(ValueError, match="version"):
        ItemGraph.from_json('{"version": 99, "nodes": {}}')

    run = graph.select(["t.py::c"], "run")
    assert list(run) == ["t.py::a", "t.py::b", "s/x.py::x", "t.py::c"]
    assert run.brought_back() == ["t.py::a", "t.py::b", "s/x.py::x"]
    assert run.nodes["s/x.py::x"].blocked[0].state == "not collected"
    sched = run.make_scheduler()
    assert sched.state["s/x.py::x"] == "skipped"
    assert sched.done("t.py::a", COMPLETED) == []
    assert sched.done("t.py::b", COMPLETED) == [
        ("t.py::c", "dependency 's/x.py::x' was skipped (root cause: 'other.py' was not collected)")
    ]
    sched = run.make_scheduler()
    assert sched.done("t.py::a", FAILED) == [
        ("t.py::b", "dependency 't.py::a' failed"),
        ("t.py::c", "dependency 't.py::b' was skipped (root cause: 't.py::a' failed)"),
    ]

    skip = graph.select(["t.py::b", "t.py::c"], "skip")
    assert skip.nodes["t.py::b"].blocked[0].reason == "dependency 't.py::a' was deselected (--orchestrate-deps=skip)"
    ignore = graph.select(["t.py::b", "s/x.py::x"], "ignore")
    assert ignore.nodes["t.py::b"].deps == [] and not ignore.nodes["s/x.py::x"].blocked
    sched = ignore.make_scheduler()
    assert sched.done("t.py::b", COMPLETED) == []
    with pytest.raises(ValueError, match="unknown dependency policy"):
        graph.select([], "later")


def test_item_graph_to_networkx() -> None:
    """Node ids are the nodes (collection order, with their data); edges go from a dependency to its dependent."""
    nx = pytest.importorskip("networkx")
    graph = ItemGraph(
        [
            Node("t.py::a", parent="t.py", estimated_duration=1.5),
            Node("t.py::b", deps=["t.py::a"], stage="etl", aliases=("bee",)),
            Node("s/x.py::x", kind="script"),
            Node("t.py::c", deps=["t.py::b", "s/x.py::x"]),
        ]
    )
    g = graph.to_networkx()
    assert isinstance(g, nx.DiGraph)
    assert list(g.nodes) == ["t.py::a", "t.py::b", "s/x.py::x", "t.py::c"]
    assert sorted(g.edges) == [("s/x.py::x", "t.py::c"), ("t.py::a", "t.py::b"), ("t.py::b", "t.py::c")]
    assert g.nodes["t.py::a"]["estimated_duration"] == 1.5 and g.nodes["t.py::a"]["parent"] == "t.py"
    assert g.nodes["t.py::b"]["stage"] == "etl" and g.nodes["t.py::b"]["aliases"] == ("bee",)
    assert g.nodes["s/x.py::x"]["kind"] == "script"
    # what users ask of it agrees with the plugin's own order
    assert set(nx.ancestors(g, "t.py::c")) == {"t.py::a", "t.py::b", "s/x.py::x"}
    order = graph.order()
    assert all(order.index(u) < order.index(v) for u, v in g.edges)
