"""Working with pytest's friends: -x / --maxfail, --junitxml, coverage, --lf and xdist."""

from __future__ import annotations

import os
import subprocess
import sys

from plugin_helpers import NO_TIMEOUT_PLUGIN
from plugin_helpers import SCRIPTS_INI
from plugin_helpers import assert_counts
from plugin_helpers import junit_cases
from plugin_helpers import lean_inner_runs
from plugin_helpers import order_of
from plugin_helpers import project
from plugin_helpers import properties
from plugin_helpers import script
from plugin_helpers import summary_lines
import pytest


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


LEAN = ("-p", "no:hypothesispytest", "-p", "no:benchmark")

CHAIN = """
import pytest

def test_one(): pass

def test_two():
    assert False

@pytest.mark.depends("test_two")
def test_three(): pass

def test_four():
    assert False

def test_five(): pass
"""


def test_exitfirst_stops_cleanly(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_chain=CHAIN)
    result = pytester.runpytest("--orchestrate", "-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    assert summary_lines(result)[0] == "5 items: 1 passed, 1 failed, 3 not run"
    assert "Traceback" not in result.stdout.str().split("FAILURES")[0]


def test_maxfail_stops_cleanly(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_chain=CHAIN)
    result = pytester.runpytest("--orchestrate", "--maxfail=2")
    result.assert_outcomes(passed=1, failed=2, skipped=1)
    assert summary_lines(result)[0] == "5 items: 1 passed, 2 failed, 1 skipped, 1 not run"


def test_exitfirst_during_retries(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_r="""
        import pytest

        @pytest.mark.retry(max_attempts=3, initial_delay=0)
        def test_a():
            assert False

        def test_b(): pass
        """
    )
    result = pytester.runpytest("--orchestrate", "-x")
    assert_counts(result, failed=1, rerun=2)


ALL_OUTCOMES = """
import time
import pytest



N = []

def test_passed(): pass

def test_failed():
    assert False, "plain failure"

@pytest.mark.skip(reason="by marker")
def test_skipped(): pass

@pytest.mark.depends("test_failed")
def test_dependency_skipped(): pass

@pytest.mark.retry(max_attempts=2, initial_delay=0)
def test_rerun_then_passed():
    N.append(1)
    assert len(N) > 1, "first attempt fails"

@pytest.mark.retry(max_attempts=2, initial_delay=0)
def test_rerun_then_failed():
    assert False, "always fails"

@pytest.mark.timeout(0.2)
def test_timed_out():
    time.sleep(5)
"""


def test_junitxml_for_every_outcome(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_all=ALL_OUTCOMES)
    script(pytester, "scripts/job.py", "raise SystemExit(3)", meta="retry = {max_attempts = 2, initial_delay = 0}")
    xml = pytester.path / "out.xml"
    result = pytester.runpytest("--orchestrate", f"--junitxml={xml}", *NO_TIMEOUT_PLUGIN)
    assert_counts(result, passed=2, failed=4, skipped=2, rerun=3)
    cases = junit_cases(xml)
    assert len(cases) == 8

    def outcome(key: str) -> str:
        case = cases[key]
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                return tag
        return "passed"

    assert outcome("test_all.test_passed") == "passed"
    assert outcome("test_all.test_failed") == "failure"
    assert outcome("test_all.test_skipped") == "skipped"
    dep = cases["test_all.test_dependency_skipped"].find("skipped")
    assert dep is not None and dep.get("message") == "dependency 'test_all.py::test_failed' failed"
    assert outcome("test_all.test_rerun_then_passed") == "passed"
    assert properties(cases["test_all.test_rerun_then_passed"])["attempt_1_error"].startswith(
        "AssertionError: first attempt fails"
    )
    assert outcome("test_all.test_rerun_then_failed") == "failure"
    assert properties(cases["test_all.test_rerun_then_failed"])["attempts"] == "2"
    timed_out = cases["test_all.test_timed_out"].find("failure")
    assert timed_out is not None and "timed out after 0.2 s" in (timed_out.get("message") or "")
    job = next(v for k, v in cases.items() if k.endswith("job"))
    assert job.find("failure") is not None
    assert properties(job) == {
        "attempts": "2",
        "attempt_1_error": "scripts/job.py exited with status 3",
        "attempt_2_error": "scripts/job.py exited with status 3",
    }


def test_last_failed_brings_back_passed_dependencies(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_lf="""
        import os
        import pytest

        def test_setup(): pass

        @pytest.mark.depends("test_setup")
        def test_flaky_env():
            assert os.environ.get("FIXED") == "1"

        def test_other(): pass
        """
    )
    pytester.runpytest("--orchestrate").assert_outcomes(passed=2, failed=1)
    os.environ["FIXED"] = "1"
    try:
        result = pytester.runpytest("--orchestrate", "--lf", "-v")
    finally:
        del os.environ["FIXED"]
    result.assert_outcomes(passed=2)
    assert order_of(result) == ["test_lf.py::test_setup", "test_lf.py::test_flaky_env"]


def test_scripts_run_under_coverage(pytester: pytest.Pytester) -> None:
    """`coverage run -m pytest --orchestrate`: the script's lines count after `coverage combine`."""
    pytest.importorskip("coverage")
    project(pytester, SCRIPTS_INI)
    script(
        pytester,
        "scripts/calc.py",
        """
        import sys

        def double(x):
            return 2 * x

        if len(sys.argv) > 5:
            print("never")
        print(double(21))
        """,
    )
    pytester.makepyfile(test_plain="def test_x():\n    pass\n")
    env = dict(os.environ)
    env.pop("COVERAGE_PROCESS_START", None)
    env.pop("COVERAGE_PROCESS_CONFIG", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(pytester.path), env.get("PYTHONPATH", "")) if p)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", *args],
            check=False,
            cwd=pytester.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    tested = run("coverage", "run", "-m", "pytest", "--orchestrate", "-q", *LEAN, "-p", "no:cacheprovider")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert list(pytester.path.glob(".coverage.*")), "the script wrote no parallel data file"
    combined = run("coverage", "combine", "--append")
    assert combined.returncode == 0, combined.stdout + combined.stderr
    report = run("coverage", "report", "--include=scripts/*", "--show-missing")
    assert report.returncode == 0, report.stdout + report.stderr
    line = next(line for line in report.stdout.splitlines() if "calc.py" in line)
    statements, missed = (int(n) for n in line.split()[1:3])
    assert statements == 6 and missed == 1, report.stdout


def test_xdist_smoke(pytester: pytest.Pytester) -> None:
    """Under -n the plugin runs without crashing and the controller prints the summary (the DAG-aware
    scheduler is a separate feature)."""
    pytest.importorskip("xdist")
    project(pytester)
    pytester.makepyfile(
        test_x="""
        import pytest

        @pytest.mark.retry(max_attempts=2, initial_delay=0)
        def test_a():
            pass

        def test_b(): pass

        def test_c(): pass
        """
    )
    result = pytester.runpytest_subprocess("--orchestrate", "-n", "2", *LEAN)
    result.assert_outcomes(passed=3)
    lines = summary_lines(result)
    assert lines[0] == "3 items: 3 passed"
    assert "(2 workers)" in lines[1]
