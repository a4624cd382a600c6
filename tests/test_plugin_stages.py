"""@pytest.mark.stage, script stages and --orchestrate-stage selection."""

from __future__ import annotations

from plugin_helpers import assert_clean_error
from plugin_helpers import lean_inner_runs
from plugin_helpers import order_of
from plugin_helpers import project
from plugin_helpers import script
import pytest


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


STAGED = """
import pytest



@pytest.mark.stage("build")
def test_compile(): pass

@pytest.mark.stage("unit")
def test_fast(): pass

@pytest.mark.stage("deploy")
@pytest.mark.depends("test_compile", "etl_check")
def test_ship(): pass

def test_no_stage(): pass

@pytest.mark.stage("unit")
class TestGrouped:
    def test_inherits(self): pass

    @pytest.mark.stage("build")
    def test_overrides(self): pass
"""


@pytest.fixture
def staged(pytester: pytest.Pytester) -> pytest.Pytester:
    project(pytester)
    pytester.makepyfile(test_staged=STAGED)
    script(pytester, "scripts/etl_check.py", "print('etl')", meta='stage = "etl"')
    return pytester


def test_stage_selects_and_deselects(staged: pytest.Pytester) -> None:
    result = staged.runpytest("--orchestrate", "-v", "--orchestrate-stage", "unit")
    result.assert_outcomes(passed=2)
    assert order_of(result) == ["test_staged.py::test_fast", "test_staged.py::TestGrouped::test_inherits"]
    result.stdout.fnmatch_lines(["*collected 7 items / 5 deselected / 2 selected*", "*2 passed, 5 deselected*"])


def test_stage_is_repeatable(staged: pytest.Pytester) -> None:
    result = staged.runpytest("--orchestrate", "-v", "--orchestrate-stage", "unit", "--orchestrate-stage", "build")
    result.assert_outcomes(passed=4)
    assert set(order_of(result)) == {
        "test_staged.py::test_compile",
        "test_staged.py::test_fast",
        "test_staged.py::TestGrouped::test_inherits",
        "test_staged.py::TestGrouped::test_overrides",
    }


def test_dependencies_in_other_stages_run_first(staged: pytest.Pytester) -> None:
    result = staged.runpytest("--orchestrate", "-v", "--orchestrate-stage", "deploy")
    result.assert_outcomes(passed=3)
    # brought-back dependencies land just before their dependent, in declaration order
    assert order_of(result) == [
        "test_staged.py::test_compile",
        "scripts/etl_check.py::etl_check",
        "test_staged.py::test_ship",
    ]
    result.stdout.fnmatch_lines(["*collected 7 items / 4 deselected / 3 selected*"])


def test_dependencies_in_other_stages_skip_policy(staged: pytest.Pytester) -> None:
    result = staged.runpytest("--orchestrate", "-rs", "--orchestrate-stage", "deploy", "--orchestrate-deps", "skip")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*dependency 'test_staged.py::test_compile' was deselected*"])


def test_script_stage_from_metadata(staged: pytest.Pytester) -> None:
    result = staged.runpytest("--orchestrate", "-v", "--orchestrate-stage", "etl")
    result.assert_outcomes(passed=1)
    assert order_of(result) == ["scripts/etl_check.py::etl_check"]


def test_unknown_stage_is_an_error_naming_the_stages(staged: pytest.Pytester) -> None:
    result = staged.runpytest("--orchestrate", "--orchestrate-stage", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no stage named 'nope'; the stages are: build, deploy, etl, unit*"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("stage()", "expected one stage name, got 0"),
        ("stage(3)", "must be a non-empty string"),
        ("stage('a', x=1)", "x"),
    ],
)
def test_bad_stage_markers(pytester: pytest.Pytester, marker: str, message: str) -> None:
    project(pytester)
    pytester.makepyfile(test_bad=f"import pytest\n\n@pytest.mark.{marker}\ndef test_x(): pass\n")
    assert_clean_error(pytester.runpytest("--orchestrate"), "test_bad.py::test_x:", message)
