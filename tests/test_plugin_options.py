"""Every --orchestrate-* option has an ini key; marker > command line > ini; nothing clashes with a project's own."""

from __future__ import annotations

from plugin_helpers import NO_TIMEOUT_PLUGIN
from plugin_helpers import assert_counts
from plugin_helpers import lean_inner_runs
from plugin_helpers import lines_matching
from plugin_helpers import order_of
from plugin_helpers import project
from plugin_helpers import script
from plugin_helpers import write
import pytest


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


FLAKY = """
import pytest

COUNTS = {}

def flaky(name, fails):
    COUNTS[name] = COUNTS.get(name, 0) + 1
    assert COUNTS[name] > fails

def test_twice(): flaky("twice", 2)

@pytest.mark.retry(max_attempts=1)
def test_marker_wins(): flaky("marker", 1)
"""


@pytest.mark.parametrize(
    ("ini", "args", "expected"),
    [
        ("orchestrate_retries = 2", (), {"passed": 1, "failed": 1, "rerun": 2}),
        ("orchestrate_retries = 1", ("--orchestrate-retries", "2"), {"passed": 1, "failed": 1, "rerun": 2}),
        ("orchestrate_retries = 2", ("--orchestrate-retries", "0"), {"failed": 2}),
    ],
)
def test_retries_ini_and_precedence(
    pytester: pytest.Pytester, ini: str, args: tuple[str, ...], expected: dict[str, int]
) -> None:
    project(pytester, ini)
    pytester.makepyfile(test_flaky=FLAKY)
    result = pytester.runpytest("--orchestrate", *args)
    assert_counts(result, **expected)


SLOW = """
import time
import pytest

def test_slow(): time.sleep(1.5)

@pytest.mark.timeout(5)
def test_marker_wins(): time.sleep(1.5)
"""


@pytest.mark.parametrize(
    ("ini", "args", "expected"),
    [
        ("orchestrate_timeout = 0.5", (), {"passed": 1, "failed": 1}),
        ("orchestrate_timeout = 10", ("--orchestrate-timeout", "0.5"), {"passed": 1, "failed": 1}),
        ("orchestrate_timeout = 0.5", ("--orchestrate-timeout", "10"), {"passed": 2}),
    ],
)
def test_timeout_ini_and_precedence(
    pytester: pytest.Pytester, ini: str, args: tuple[str, ...], expected: dict[str, int]
) -> None:
    project(pytester, ini)
    pytester.makepyfile(test_slow=SLOW)
    result = pytester.runpytest("--orchestrate", *NO_TIMEOUT_PLUGIN, *args)
    assert_counts(result, **expected)


DEPS = """
import pytest

def test_base(): pass

@pytest.mark.depends("test_base")
def test_top(): pass
"""


@pytest.mark.parametrize(
    ("ini", "args", "expected"),
    [
        ("orchestrate_deps = skip", (), {"skipped": 1}),
        ("orchestrate_deps = skip", ("--orchestrate-deps", "run"), {"passed": 2}),
        ("orchestrate_deps = ignore", (), {"passed": 1}),
        ("", (), {"passed": 2}),
    ],
)
def test_deps_ini_and_precedence(
    pytester: pytest.Pytester, ini: str, args: tuple[str, ...], expected: dict[str, int]
) -> None:
    project(pytester, ini)
    pytester.makepyfile(test_deps=DEPS)
    result = pytester.runpytest("--orchestrate", "-k", "top", *args)
    assert_counts(result, **expected)


STAGES = """
import pytest

@pytest.mark.stage("unit")
def test_unit(): pass

@pytest.mark.stage("slow")
def test_slow(): pass
"""


def test_stage_ini_and_precedence(pytester: pytest.Pytester) -> None:
    project(pytester, "orchestrate_stage = slow")
    pytester.makepyfile(test_stages=STAGES)
    result = pytester.runpytest("--orchestrate", "-v")
    assert order_of(result) == ["test_stages.py::test_slow"]
    result = pytester.runpytest("--orchestrate", "-v", "--orchestrate-stage", "unit")
    assert order_of(result) == ["test_stages.py::test_unit"]


def test_graph_ini_and_precedence(pytester: pytest.Pytester) -> None:
    project(pytester, "orchestrate_graph = dot")
    pytester.makepyfile(test_deps=DEPS)
    result = pytester.runpytest("--orchestrate")
    assert "digraph" in result.stdout.str()
    assert result.parseoutcomes().get("passed") is None
    result = pytester.runpytest("--orchestrate", "--orchestrate-graph", "mermaid")
    assert "digraph" not in result.stdout.str() and "graph" in result.stdout.str()


UNKNOWN = """
import pytest

@pytest.mark.depends("test_nowhere")
def test_lost(): pass

def test_fine(): pass
"""


def test_strict_ini_and_flag(pytester: pytest.Pytester) -> None:
    project(pytester, "orchestrate_strict = true")
    pytester.makepyfile(test_unknown=UNKNOWN)
    assert pytester.runpytest("--orchestrate").ret == pytest.ExitCode.USAGE_ERROR
    project(pytester)
    assert pytester.runpytest("--orchestrate", "--orchestrate-strict").ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.parametrize(
    ("ini", "fragment"),
    [
        ("orchestrate_retries = many", "ini orchestrate_retries: expected a whole number of retries"),
        ("orchestrate_timeout = 0", "ini orchestrate_timeout: a number of seconds must be more than 0"),
        ("orchestrate_deps = maybe", "ini orchestrate_deps: expected one of run, skip, ignore"),
        ("orchestrate_graph = svg", "ini orchestrate_graph: expected one of mermaid, dot"),
    ],
)
def test_bad_ini_values_are_usage_errors(pytester: pytest.Pytester, ini: str, fragment: str) -> None:
    project(pytester, ini)
    pytester.makepyfile(test_deps=DEPS)
    result = pytester.runpytest("--orchestrate")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert fragment in result.stderr.str() + result.stdout.str()


def test_a_conftest_with_its_own_stage_option_still_starts(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makeconftest(
        """
        def pytest_addoption(parser):
            parser.addoption("--stage", default="dev")
        """
    )
    pytester.makepyfile(test_ok="def test_ok(request): assert request.config.getoption('stage') == 'prod'")
    pytester.runpytest("--stage", "prod").assert_outcomes(passed=1)
    pytester.runpytest("--orchestrate", "--stage", "prod").assert_outcomes(passed=1)


# -- running scripts is opt-in ----------------------------------------------------------------------------------
def test_undeclared_scripts_do_not_run_and_one_line_says_how(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_ok="def test_ok(): pass")
    write(pytester, "scripts/release.py", "raise SystemExit('released!')")
    write(pytester, "scripts/bump.sh", "exit 1", executable=True)
    result = pytester.runpytest("--orchestrate", "-q")
    assert_counts(result, passed=1)
    assert len(lines_matching(result, "scripts are opt-in")) == 1
    assert "orchestrate_scripts = scripts/**/*.py" in result.stdout.str()


def test_scripts_declared_three_ways(pytester: pytest.Pytester) -> None:
    project(pytester, "orchestrate_scripts = jobs/*.py\n")
    pytester.makepyfile(test_ok="def test_ok(): pass")
    write(pytester, "jobs/by_glob.py", "print('glob')")
    script(pytester, "scripts/by_block.py", "print('block')", meta="timeout = 10")
    write(pytester, "scripts/by_config.py", "print('config')")
    write(pytester, "scripts/undeclared.py", "raise SystemExit(1)")
    write(pytester, "orchestrate.yaml", "scripts:\n  scripts/by_config.py:\n    timeout: 5\n")
    result = pytester.runpytest("--orchestrate", "-v")
    assert_counts(result, passed=4)
    assert sorted(order_of(result)) == [
        "jobs/by_glob.py::by_glob",
        "scripts/by_block.py::by_block",
        "scripts/by_config.py::by_config",
        "test_ok.py::test_ok",
    ]
    assert not lines_matching(result, "scripts are opt-in")


def test_a_dependency_on_an_undeclared_script_says_how_to_include_it(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_dep="import pytest\n@pytest.mark.depends('seed')\ndef test_dep(): pass\n")
    write(pytester, "scripts/seed.py", "print('seed')")
    result = pytester.runpytest("--orchestrate", "-rs")
    assert_counts(result, skipped=1)
    result.stdout.fnmatch_lines(["*dependency 'seed' was not collected (add scripts/seed.py to the command line)*"])


# -- say what was done for the user -----------------------------------------------------------------------------
def test_brought_back_dependencies_are_named_even_under_q(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_deps=DEPS)
    result = pytester.runpytest("--orchestrate", "-q", "-k", "top")
    assert_counts(result, passed=2)
    result.stdout.fnmatch_lines(
        ["orchestrate: 1 deselected dependency run because selected items need it *: test_deps.py::test_base"]
    )


XFAIL_DEP = """
import pytest

@pytest.mark.xfail(reason="known bug")
def test_base(): assert False

@pytest.mark.depends("test_base")
def test_top(): pass
"""


@pytest.mark.parametrize(
    ("args", "ini", "expected"),
    [
        ((), "", {"xfailed": 1, "skipped": 1}),
        (("--orchestrate-xfail-deps", "run"), "", {"xfailed": 1, "passed": 1}),
        ((), "orchestrate_xfail_deps = run", {"xfailed": 1, "passed": 1}),
    ],
)
def test_xfailed_dependency(
    pytester: pytest.Pytester, args: tuple[str, ...], ini: str, expected: dict[str, int]
) -> None:
    project(pytester, ini)
    pytester.makepyfile(test_x=XFAIL_DEP)
    result = pytester.runpytest("--orchestrate", "-rs", *args)
    assert_counts(result, **expected)
    if "skipped" in expected:
        result.stdout.fnmatch_lines(["*dependency 'test_x.py::test_base' was xfailed*"])
