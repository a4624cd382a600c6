"""An unknown dependency or a cycle errors the items concerned at setup and the rest runs (serial and -n 2);
--orchestrate-strict (ini orchestrate_strict) keeps the usage error; a malformed marker always is one."""

from __future__ import annotations

from plugin_helpers import assert_clean_error
from plugin_helpers import lean_xdist_inner_runs
from plugin_helpers import project
import pytest


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_xdist_inner_runs(monkeypatch)


SUITE = """
import pytest

def test_login(): pass

@pytest.mark.depends("test_logni")
def test_typo(): pass

@pytest.mark.depends("test_typo")
def test_after_typo(): pass

@pytest.mark.depends("test_b")
def test_a(): pass

@pytest.mark.depends("test_a")
def test_b(): pass

@pytest.mark.depends("test_login")
def test_fine(): pass
"""


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "n2"])
def test_bad_items_error_the_rest_runs(
    pytester: pytest.Pytester, workers: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest does not shorten the -r summary lines on CI: the message count below is for an ordinary terminal
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    project(pytester)
    pytester.makepyfile(test_bad=SUITE)
    result = pytester.runpytest_subprocess("--orchestrate", "-rEs", "-p", "no:cacheprovider", *workers)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 2 and outcomes.get("errors") == 3 and outcomes.get("skipped") == 1, outcomes
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = result.stdout.str()
    assert "dependency 'test_logni' matches no collected test, script, file or alias" in text
    assert "did you mean 'test_login'" in text
    assert text.count("dependency cycle: test_bad.py::test_a -> test_bad.py::test_b -> test_bad.py::test_a") == 2
    assert "Traceback" not in text


def test_strict_ini_keeps_the_usage_error(pytester: pytest.Pytester) -> None:
    project(pytester, "orchestrate_strict = true\n")
    pytester.makepyfile(test_bad=SUITE)
    assert_clean_error(pytester.runpytest("--orchestrate"), "unknown dependencies", "test_logni")


def test_malformed_marker_stays_a_usage_error(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_bad="import pytest\n@pytest.mark.depends(42)\ndef test_x(): pass\n")
    assert_clean_error(pytester.runpytest("--orchestrate"), "a dependency target must be a string")
