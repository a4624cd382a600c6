"""@pytest.mark.timeout and --orchestrate-timeout: our SIGALRM path, scripts, and pytest-timeout coexistence."""

from __future__ import annotations

import time

from plugin_helpers import NO_TIMEOUT_PLUGIN
from plugin_helpers import assert_clean_error
from plugin_helpers import assert_counts
from plugin_helpers import lean_inner_runs
from plugin_helpers import project
from plugin_helpers import script
import pytest


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


#: keep subprocess start-up short: these plugins are irrelevant here and slow to import
LEAN = ("-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:cacheprovider")

SLOW = """
import time
import pytest



@pytest.mark.timeout(0.5)
def test_marked():
    time.sleep(20)

def test_unmarked():
    time.sleep(20)

@pytest.mark.timeout(0)
def test_disabled():
    time.sleep(0.8)

def test_quick():
    pass

@pytest.mark.timeout(0.5)
def test_swallows():
    try:
        time.sleep(20)
    except Exception:
        pass
"""


def test_marker_and_default_timeout_fail_only_the_test(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_slow=SLOW)
    start = time.monotonic()
    result = pytester.runpytest_subprocess("--orchestrate", "--orchestrate-timeout", "0.5", *NO_TIMEOUT_PLUGIN, *LEAN)
    assert time.monotonic() - start < 15
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*ItemTimeout: timed out after 0.5 s",
            "*timeouts:",
            "  test_slow.py::test_marked: timed out after 0.5 s",
            "  test_slow.py::test_unmarked: timed out after 0.5 s",
            "  test_slow.py::test_swallows: timed out after 0.5 s",
        ]
    )


def test_timeout_is_retried(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_retry_timeout="""
        import time
        import pytest

        N = []

        @pytest.mark.retry(max_attempts=2, initial_delay=0, retry_on=(TimeoutError,))
        @pytest.mark.timeout(0.3)
        def test_slow_first():
            N.append(1)
            if len(N) == 1:
                time.sleep(20)

        @pytest.mark.retry(max_attempts=3, initial_delay=0, retry_on=(TimeoutError,))
        def test_assertion_not_retried():
            assert False
        """
    )
    result = pytester.runpytest_subprocess("--orchestrate", *NO_TIMEOUT_PLUGIN, *LEAN)
    assert_counts(result, passed=1, failed=1, rerun=1)


def test_pytest_timeout_keeps_its_marker(pytester: pytest.Pytester) -> None:
    """With pytest-timeout active its marker works as always; --orchestrate-timeout covers unmarked tests, enforced
    by pytest-timeout (the shorter limit wins)."""
    pytest.importorskip("pytest_timeout")
    project(pytester)
    pytester.makepyfile(
        test_both="""
        import time
        import pytest

        @pytest.mark.timeout(0.5, method="signal")
        def test_marked():
            time.sleep(20)

        def test_unmarked():
            time.sleep(20)
        """
    )
    result = pytester.runpytest_subprocess("--orchestrate", "--orchestrate-timeout", "0.5", *LEAN)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*test_marked - Failed: Timeout (>0.5s) from pytest-time*"])
    result.stdout.fnmatch_lines(["*test_unmarked - Failed: Timeout (>0.5s) from pytest-time*"])


@pytest.mark.parametrize(
    ("theirs", "ours", "limit"), [("0.5", "30", "0.5"), ("30", "0.5", "0.5")], ids=["theirs-shorter", "ours-shorter"]
)
def test_the_shorter_of_timeout_and_orchestrate_timeout_wins(
    pytester: pytest.Pytester, theirs: str, ours: str, limit: str
) -> None:
    """--orchestrate-timeout never weakens pytest-timeout's --timeout (which also bounds fixtures)."""
    pytest.importorskip("pytest_timeout")
    project(pytester)
    pytester.makepyfile(test_slow="import time\n\ndef test_slow():\n    time.sleep(20)\n")
    result = pytester.runpytest_subprocess("--orchestrate", "--timeout", theirs, "--orchestrate-timeout", ours, *LEAN)
    result.assert_outcomes(failed=1)
    assert f"Timeout (>{limit}s) from pytest-timeout" in result.stdout.str()


def test_script_timeout_is_always_ours(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_timeout")
    project(pytester)
    script(pytester, "scripts/hang.py", "import time\ntime.sleep(30)\n", meta="timeout = 0.5")
    result = pytester.runpytest("--orchestrate")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["scripts/hang.py timed out after 0.5 s (process group killed)"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("timeout(-1)", "seconds must be >= 0"),
        ("timeout('soon')", "seconds must be a number"),
        ("timeout(1, 2)", "expected one number of seconds, got 2 values"),
        ("timeout(seconds=True)", "seconds must be a number"),
    ],
)
def test_bad_timeout_markers(pytester: pytest.Pytester, marker: str, message: str) -> None:
    project(pytester)
    pytester.makepyfile(test_bad=f"import pytest\n\n@pytest.mark.{marker}\ndef test_x(): pass\n")
    result = pytester.runpytest("--orchestrate", *NO_TIMEOUT_PLUGIN)
    assert_clean_error(result, "test_bad.py::test_x:", message)


@pytest.mark.parametrize(
    "marker", ["timeout(None)", "timeout(5, method='thread')", "timeout(5, func_only=True)", "timeout(timeout=5)"]
)
def test_every_form_of_pytest_timeouts_marker_is_accepted(pytester: pytest.Pytester, marker: str) -> None:
    project(pytester)
    pytester.makepyfile(test_forms=f"import pytest\n\n@pytest.mark.{marker}\ndef test_x(): pass\n")
    pytester.runpytest("--orchestrate", *NO_TIMEOUT_PLUGIN).assert_outcomes(passed=1)
