"""Without --orchestrate: retry and timeout markers act where they are written; ignored ordering markers are
counted in one warning line; nothing else changes."""

from __future__ import annotations

from plugin_helpers import NO_TIMEOUT_PLUGIN
from plugin_helpers import assert_counts
from plugin_helpers import lean_inner_runs
from plugin_helpers import lines_matching
from plugin_helpers import project
import pytest


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


SUITE = """
import time
import pytest

COUNT = []

@pytest.mark.retry(max_attempts=3, initial_delay=0)
def test_flaky():
    COUNT.append(1)
    assert len(COUNT) > 1

@pytest.mark.timeout(0.5)
def test_slow():
    time.sleep(2)

@pytest.mark.depends("test_flaky")
def test_ordered(): pass

@pytest.mark.stage("unit")
def test_staged(): pass

def test_plain(): pass
"""


def test_retry_and_timeout_act_without_orchestrate(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_inactive=SUITE)
    result = pytester.runpytest(*NO_TIMEOUT_PLUGIN)
    assert_counts(result, passed=4, failed=1, rerun=1)
    result.stdout.fnmatch_lines(["*timed out after 0.5 s*"])
    assert lines_matching(result, "2 items carry depends/stage/dependency/order markers, ignored without")
    assert not lines_matching(result, "workflow summary")


def test_pytest_timeout_keeps_the_timeout_marker(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_timeout")
    project(pytester)
    pytester.makepyfile(test_t="import time, pytest\n\n@pytest.mark.timeout(0.5)\ndef test_slow(): time.sleep(2)\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.parseoutcomes() == {"failed": 1}
    assert "Timeout" in result.stdout.str()


def test_no_markers_no_line(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_p="def test_plain(): pass\n")
    result = pytester.runpytest()
    assert_counts(result, passed=1)
    assert not lines_matching(result, "orchestrate")
