"""Activation: markers and options always registered; everything else only under --orchestrate (or ini)."""

from __future__ import annotations

from plugin_helpers import SCRIPTS_INI
from plugin_helpers import lean_inner_runs
from plugin_helpers import order_of
from plugin_helpers import project
from plugin_helpers import script
import pytest


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


ORDER_SUITE = """
    import pytest

    @pytest.mark.depends("test_first")
    def test_second():
        pass

    def test_first():
        pass
"""


def test_inactive_keeps_order_and_collects_no_scripts(pytester: pytest.Pytester) -> None:
    """Without --orchestrate: original order, no script items, no summary; markers are known (--strict-markers)."""
    project(pytester)
    pytester.makepyfile(test_order=ORDER_SUITE)
    script(pytester, "scripts/load.py", "print('hi')")
    result = pytester.runpytest("-v", "--strict-markers")
    result.assert_outcomes(passed=2)
    assert order_of(result) == ["test_order.py::test_second", "test_order.py::test_first"]
    assert "workflow summary" not in result.stdout.str()
    assert "scripts/load.py" not in result.stdout.str()


def test_flag_activates(pytester: pytest.Pytester) -> None:
    project(pytester, SCRIPTS_INI)
    pytester.makepyfile(test_order=ORDER_SUITE)
    script(pytester, "scripts/load.py", "print('hi')")
    result = pytester.runpytest("-v", "--orchestrate")
    result.assert_outcomes(passed=3)
    assert order_of(result) == ["scripts/load.py::load", "test_order.py::test_first", "test_order.py::test_second"]
    assert "workflow summary" in result.stdout.str()


def test_ini_activates(pytester: pytest.Pytester) -> None:
    project(pytester, "orchestrate = true\n")
    pytester.makepyfile(test_order=ORDER_SUITE)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    assert order_of(result) == ["test_order.py::test_first", "test_order.py::test_second"]


def test_inactive_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    """A real subprocess run without --orchestrate loads no yaml, networkx, engine or session modules."""
    project(pytester)
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            heavy = [
                "yaml",
                "networkx",
                "pytest_orchestrator.core.engine",
                "pytest_orchestrator.core.workflow",
                "pytest_orchestrator.plugin.session",
                "pytest_orchestrator.plugin.collect",
                "pytest_orchestrator.plugin.lastfailed",
                "pytest_orchestrator.plugin.arrange",
                "pytest_orchestrator.plugin.graph_output",
                "pytest_orchestrator.plugin.durations",
                "pytest_orchestrator.plugin.item_hooks",
                "pytest_orchestrator.plugin.dag",
                "pytest_orchestrator.plugin.targets",
                "pytest_orchestrator.plugin.outcomes",
                "pytest_orchestrator.plugin.attempts",
                "pytest_orchestrator.plugin.runtest",
                "pytest_orchestrator.plugin.summary",
                "pytest_orchestrator.plugin.items",
                "pytest_orchestrator.scripts.config",
            ]
            loaded = [name for name in heavy if name in sys.modules]
            assert not loaded, f"imported while inactive: {loaded}"
            print("IMPORT-CHECK-OK")
        """
    )
    pytester.makepyfile(test_order=ORDER_SUITE)
    (pytester.path / "orchestrate.yaml").write_text("defaults:\n  timeout: 5\n")
    script(pytester, "scripts/load.py", "print('hi')")
    result = pytester.runpytest_subprocess("-s", "-p", "no:hypothesispytest", "-p", "no:benchmark")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*IMPORT-CHECK-OK*"])


def test_active_imports_no_networkx_yaml_or_engine(pytester: pytest.Pytester) -> None:
    """Under --orchestrate, a run of Python tests with dependencies, retries and timeouts (every per-item hook)
    loads no networkx, no yaml and not the engine: the plugin works on the hand-written graph core."""
    project(pytester)
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            heavy = ["yaml", "networkx", "pytest_orchestrator.core.engine"]
            loaded = [name for name in heavy if name in sys.modules]
            assert not loaded, f"imported while active: {loaded}"
            print("ACTIVE-IMPORT-CHECK-OK")
        """
    )
    pytester.makepyfile(
        test_order=ORDER_SUITE
        + """
    @pytest.mark.retry(max_attempts=2, initial_delay=0)
    @pytest.mark.timeout(5)
    def test_third():
        pass
    """
    )
    result = pytester.runpytest_subprocess(
        "-s", "--orchestrate", "-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:timeout"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*ACTIVE-IMPORT-CHECK-OK*"])


PER_REPORT_HOOKS = "pytest_runtest_logreport", "pytest_report_teststatus", "pytest_runtest_protocol"


def _our_per_report_hooks(conftest_flag: str) -> str:
    return f"""
        def pytest_collection_finish(session):
            pm = session.config.pluginmanager
            ours = sorted(
                f"{{name}}:{{pm.get_name(impl.plugin)}}"
                for name in {PER_REPORT_HOOKS!r}
                for impl in getattr(pm.hook, name).get_hookimpls()
                if (pm.get_name(impl.plugin) or "").startswith("orchestrate")
            )
            print("{conftest_flag}", ours)
        """


def test_a_suite_with_nothing_to_schedule_gets_one_report_hook_of_ours(pytester: pytest.Pytester) -> None:
    """No markers of ours, no retries, no stages: per report, the plugin adds one hook (its records), not the
    JUnit properties, the RERUN word, the dependency gate or the retry protocol."""
    pytester.makeconftest(_our_per_report_hooks("HOOKS"))
    pytester.makepyfile(test_flat="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess("-s", "--orchestrate", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["HOOKS ['pytest_runtest_logreport:orchestrate-session']"])


def test_markers_on_a_collector_still_count_when_items_have_none(pytester: pytest.Pytester) -> None:
    """Marker lookups are skipped only when no item or collector carries a marker of ours: a module-level
    ``retry`` and ``stage`` still apply (the retry hooks, the RERUN word and the JUnit stage are there)."""
    pytester.makeconftest(_our_per_report_hooks("HOOKS"))
    pytester.makepyfile(
        test_mod="""
        import pytest

        pytestmark = [pytest.mark.retry(max_attempts=2, initial_delay=0), pytest.mark.stage("unit")]
        seen = []

        def test_flaky():
            seen.append(1)
            assert len(seen) > 1
        """
    )
    result = pytester.runpytest_subprocess("-s", "-v", "--orchestrate", "-p", "no:randomly", "--junitxml=out.xml")
    assert result.parseoutcomes() == {"passed": 1, "rerun": 1}
    result.stdout.fnmatch_lines(["*RERUN*", "*PASSED*"])
    hooks = next(line for line in result.stdout.lines if line.startswith("HOOKS"))
    for expected in (
        "pytest_report_teststatus:orchestrate-rerun-word",
        "pytest_runtest_logreport:orchestrate-properties",
        "pytest_runtest_protocol:orchestrate-retries",
    ):
        assert expected in hooks
    assert '<property name="stage" value="unit"' in (pytester.path / "out.xml").read_text()


def test_markers_listed_with_signatures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    for pattern in (
        "@pytest.mark.depends([*]targets, on=(), name=None, before=(), any_of=(), soft=False):*",
        "@pytest.mark.retry(max_attempts=3, initial_delay=1.0*retry_on=(Exception,)):*",
        "@pytest.mark.timeout(seconds):*",
        "@pytest.mark.stage(name):*",
    ):
        result.stdout.fnmatch_lines([pattern])


def test_help_shows_one_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = result.stdout.str()
    group = text[text.index("Workflow orchestration (pytest-orchestrator):") :]
    group = group[: group.index("\n\n")]
    for option in (
        "--orchestrate ",
        "--orchestrate-deps",
        "--orchestrate-retries",
        "--orchestrate-timeout",
        "--orchestrate-stage",
        "--orchestrate-graph",
    ):
        assert option in group, option
    assert "orchestrate_scripts" in text


def test_graph_with_xdist_is_a_usage_error(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_order=ORDER_SUITE)
    result = pytester.runpytest("--orchestrate", "--orchestrate-graph=dot", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "drop -n" in result.stderr.str() + result.stdout.str()


def test_bad_option_values_are_usage_errors(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = pytester.runpytest("--orchestrate", "--orchestrate-retries", "-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*a whole number of retries must be at least 0*"])
    result = pytester.runpytest("--orchestrate", "--orchestrate-timeout", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result = pytester.runpytest("--orchestrate", "--orchestrate-deps", "maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
