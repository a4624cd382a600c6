"""@pytest.mark.retry and --orchestrate-retries: reruns, retry_on, backoff, scripts, JUnit XML."""

from __future__ import annotations

import time

from plugin_helpers import assert_clean_error
from plugin_helpers import assert_counts
from plugin_helpers import junit_cases
from plugin_helpers import lean_inner_runs
from plugin_helpers import project
from plugin_helpers import properties
from plugin_helpers import script
import pytest


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


FLAKY = """
import pytest



CALLS = {"flaky": 0, "broken": 0, "typed": 0, "fail": 0}

@pytest.fixture
def fresh():
    return []

@pytest.mark.retry(max_attempts=3, initial_delay=0)
def test_flaky(fresh):
    assert fresh == []
    fresh.append(1)
    CALLS["flaky"] += 1
    assert CALLS["flaky"] >= 2, f"attempt {CALLS['flaky']}"

@pytest.mark.retry(max_attempts=3, initial_delay=0)
def test_broken():
    CALLS["broken"] += 1
    assert False, f"broken attempt {CALLS['broken']}"

@pytest.mark.retry(max_attempts=3, initial_delay=0, retry_on=(ValueError,))
def test_wrong_type():
    CALLS["typed"] += 1
    raise TypeError("not retried")

@pytest.mark.retry(max_attempts=2, initial_delay=0)
def test_pytest_fail():
    CALLS["fail"] += 1
    if CALLS["fail"] == 1:
        pytest.fail("first call fails")

def test_plain():
    pass
"""


def test_reruns_and_final_outcomes(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_flaky=FLAKY)
    result = pytester.runpytest("--orchestrate", "-v")
    assert_counts(result, passed=3, failed=2, rerun=4)
    result.stdout.fnmatch_lines(
        [
            "test_flaky.py::test_flaky RERUN*",
            "test_flaky.py::test_flaky PASSED*",
            "test_flaky.py::test_broken RERUN*",
            "test_flaky.py::test_broken RERUN*",
            "test_flaky.py::test_broken FAILED*",
            "test_flaky.py::test_wrong_type FAILED*",
            "test_flaky.py::test_pytest_fail RERUN*",
            "test_flaky.py::test_pytest_fail PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(["*broken attempt 3*"])
    assert "broken attempt 4" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*2 failed, 3 passed, 4 rerun*"])


def test_rerun_letter(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_flaky=FLAKY)
    result = pytester.runpytest("--orchestrate", "-k", "test_flaky")
    result.stdout.fnmatch_lines(["test_flaky.py R.*"])


def test_setup_failures_are_not_retried(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_setup="""
        import pytest

        SETUPS = []

        @pytest.fixture
        def broken():
            SETUPS.append(1)
            raise RuntimeError(f"setup {len(SETUPS)}")

        @pytest.mark.retry(max_attempts=3, initial_delay=0)
        def test_x(broken):
            pass
        """
    )
    result = pytester.runpytest("--orchestrate")
    result.assert_outcomes(errors=1)
    assert "setup 2" not in result.stdout.str()


def test_skips_teardown_errors_and_exit_are_not_retried(pytester: pytest.Pytester) -> None:
    """Only a failed call is retried: a skip, a failing teardown and pytest.exit (which ends the run) are not."""
    project(pytester)
    pytester.makepyfile(
        test_final="""
        import pytest

        CALLS = {"skip": 0, "teardown": 0, "exit": 0}

        @pytest.fixture
        def broken_teardown():
            yield
            raise RuntimeError("teardown broke")

        @pytest.mark.retry(max_attempts=3, initial_delay=0)
        def test_skip():
            CALLS["skip"] += 1
            pytest.skip(f"skip {CALLS['skip']}")

        @pytest.mark.retry(max_attempts=3, initial_delay=0)
        def test_teardown(broken_teardown):
            CALLS["teardown"] += 1
            assert False, f"teardown test {CALLS['teardown']}"

        @pytest.mark.retry(max_attempts=3, initial_delay=0)
        def test_exit():
            CALLS["exit"] += 1
            pytest.exit(f"exit {CALLS['exit']}")

        def test_after_exit():
            pass
        """
    )
    result = pytester.runpytest("--orchestrate")
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, out
    assert "skip 2" not in out and "teardown test 2" not in out
    result.stdout.fnmatch_lines(["*Exit: exit 1*"])
    assert "exit 2" not in out
    result.assert_outcomes(skipped=1, failed=1, errors=1)


def test_backoff_delays_are_honoured(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_delay="""
        import pytest, time

        STAMPS = []

        @pytest.mark.retry(max_attempts=3, initial_delay=0.2, exponential_base=2)
        def test_x():
            STAMPS.append(time.monotonic())
            if len(STAMPS) == 3:
                gaps = [b - a for a, b in zip(STAMPS, STAMPS[1:])]
                assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps
                return
            assert False
        """
    )
    start = time.monotonic()
    result = pytester.runpytest("--orchestrate")
    assert_counts(result, passed=1, rerun=2)
    assert time.monotonic() - start >= 0.6


def test_default_retries_option(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_default="""
        import pytest

        N = {"a": 0, "b": 0}

        def test_a():
            N["a"] += 1
            assert N["a"] >= 3

        @pytest.mark.retry(max_attempts=1)
        def test_b():
            N["b"] += 1
            assert False
        """
    )
    result = pytester.runpytest("--orchestrate", "--orchestrate-retries", "2")
    assert_counts(result, passed=1, failed=1, rerun=2)


def test_script_retries(pytester: pytest.Pytester) -> None:
    project(pytester)
    counter = pytester.path / "count.txt"
    script(
        pytester,
        "scripts/flaky.py",
        f"""
        import pathlib, sys
        p = pathlib.Path({str(counter)!r})
        n = int(p.read_text()) + 1 if p.exists() else 1
        p.write_text(str(n))
        sys.exit(0 if n >= 3 else 1)
        """,
        meta="retry = {max_attempts = 3, initial_delay = 0}",
    )
    script(pytester, "scripts/skipper.py", "raise SystemExit(77)", meta="retry = 3")
    result = pytester.runpytest("--orchestrate", "-v")
    assert_counts(result, passed=1, skipped=1, rerun=2)
    assert counter.read_text() == "3"


def test_junit_one_testcase_per_item_with_attempts(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_flaky=FLAKY)
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest("--orchestrate", f"--junitxml={xml}")
    assert_counts(result, passed=3, failed=2, rerun=4)
    cases = junit_cases(xml)
    assert len(cases) == 5
    flaky = cases["test_flaky.test_flaky"]
    assert flaky.find("failure") is None
    props = properties(flaky)
    assert props["attempts"] == "2"
    assert "attempt 1" in props["attempt_1_error"]
    broken = cases["test_flaky.test_broken"]
    assert broken.find("failure") is not None
    props = properties(broken)
    assert props["attempts"] == "3"
    assert [k for k in props if k.startswith("attempt_")] == [
        f"attempt_{n}_{what}" for n in (1, 2, 3) for what in ("outcome", "error")
    ]
    assert [props[f"attempt_{n}_outcome"] for n in (1, 2, 3)] == ["failed", "failed", "failed"]
    assert "broken attempt 2" in props["attempt_2_error"]
    assert properties(cases["test_flaky.test_wrong_type"])["attempts"] == "1"
    assert not properties(cases["test_flaky.test_plain"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("retry(max_attempts=0)", "max_attempts must be >= 1, got 0"),
        ("retry(initial_delay=-1)", "initial_delay must be a number >= 0"),
        ("retry(retry_on=42)", "retry_on must be exception classes"),
        ("retry(tries=3)", "unexpected keyword argument 'tries'"),
    ],
)
def test_bad_retry_markers(pytester: pytest.Pytester, marker: str, message: str) -> None:
    project(pytester)
    pytester.makepyfile(test_bad=f"import pytest\n\n@pytest.mark.{marker}\ndef test_x(): pass\n")
    assert_clean_error(pytester.runpytest("--orchestrate"), f"test_bad.py::test_x: @pytest.mark.{marker}", message)
