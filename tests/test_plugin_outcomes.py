"""The one table from pytest outcomes to TaskStatus, and the plugin's face of the attempt loop."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_orchestrator.core.retry import Attempt
from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.plugin.attempts import run_judged_attempts
from pytest_orchestrator.plugin.outcomes import OUTCOME_STATUS
from pytest_orchestrator.plugin.outcomes import RERUN
from pytest_orchestrator.plugin.outcomes import TIMEOUT_ATTR
from pytest_orchestrator.plugin.outcomes import report_outcome
from pytest_orchestrator.plugin.outcomes import report_status
from pytest_orchestrator.plugin.outcomes import worst
from pytest_orchestrator.plugin.summary import STATUSES


def _report(when: str, outcome: str, **attrs: Any) -> pytest.TestReport:
    longrepr = ("t.py", 1, "Skipped: why") if outcome == "skipped" else None
    report = pytest.TestReport("t.py::x", ("t.py", 0, "x"), {}, outcome, longrepr, when)  # type: ignore[arg-type]
    for name, value in attrs.items():
        setattr(report, name, value)
    return report


@pytest.mark.parametrize(
    ("when", "outcome", "attrs", "word", "status"),
    [
        ("call", "passed", {}, "passed", TaskStatus.COMPLETED),
        ("call", "failed", {}, "failed", TaskStatus.FAILED),
        ("call", "failed", {TIMEOUT_ATTR: "timed out after 1 s"}, "timeout", TaskStatus.FAILED),
        ("setup", "failed", {}, "error", TaskStatus.FAILED),
        ("teardown", "failed", {}, "error", TaskStatus.FAILED),
        ("setup", "skipped", {}, "skipped", TaskStatus.SKIPPED),
        ("call", "skipped", {"wasxfail": "known bug"}, "xfailed", TaskStatus.SKIPPED),
        ("call", "passed", {"wasxfail": "known bug"}, "xpassed", TaskStatus.COMPLETED),
        ("setup", "passed", {}, "passed", TaskStatus.COMPLETED),
        ("call", RERUN, {}, "rerun", TaskStatus.RETRYING),
    ],
)
def test_report_outcome_and_status(
    when: str, outcome: str, attrs: dict[str, Any], word: str, status: TaskStatus
) -> None:
    report = _report(when, outcome, **attrs)
    assert report_outcome(report) == word
    assert report_status(report) is status


def test_one_vocabulary() -> None:
    """Every word the summary counts has a status, and the statuses are the library's own."""
    assert set(STATUSES) | {RERUN} == set(OUTCOME_STATUS)
    assert all(isinstance(status, TaskStatus) for status in OUTCOME_STATUS.values())
    finished = {word for word, status in OUTCOME_STATUS.items() if status.finished}
    assert finished == set(STATUSES)


def test_worst_phase_wins() -> None:
    assert worst(None, TaskStatus.COMPLETED) is TaskStatus.COMPLETED
    assert worst(TaskStatus.COMPLETED, TaskStatus.SKIPPED) is TaskStatus.SKIPPED
    assert worst(TaskStatus.SKIPPED, TaskStatus.FAILED) is TaskStatus.FAILED
    assert worst(TaskStatus.FAILED, TaskStatus.SKIPPED) is TaskStatus.FAILED
    assert worst(TaskStatus.FAILED, TaskStatus.COMPLETED) is TaskStatus.FAILED


def test_judged_attempts_retry_what_the_judge_fails() -> None:
    heard: list[Attempt] = []
    outcome = run_judged_attempts(
        lambda n: n,
        RetryPolicy(max_attempts=5, initial_delay=0, retry_on=(ValueError,)),
        judge=lambda n: ValueError(f"attempt {n}") if n < 3 else None,
        listener=heard.append,
    )
    assert outcome.ok and outcome.value == 3 and outcome.attempts == 3
    assert [str(e) for e in outcome.errors] == ["attempt 1", "attempt 2"]
    assert [(a.number, a.will_retry) for a in heard] == [(1, True), (2, True), (3, False)]
    # retry_on is consulted: an error of another kind ends the loop
    outcome = run_judged_attempts(
        lambda n: n, RetryPolicy(max_attempts=5, initial_delay=0, retry_on=(ValueError,)), judge=TypeError
    )
    assert outcome.attempts == 1 and isinstance(outcome.error, TypeError)


def test_judged_attempts_let_a_raised_exception_through() -> None:
    """An exception raised by an attempt is no failed attempt: it is not retried and propagates unchanged."""
    calls: list[int] = []

    def attempt(n: int) -> int:
        calls.append(n)
        if n == 2:
            raise pytest.exit.Exception("stop the run")
        return n

    with pytest.raises(pytest.exit.Exception, match="stop the run"):
        run_judged_attempts(attempt, RetryPolicy(max_attempts=5, initial_delay=0), judge=ValueError)
    assert calls == [1, 2]
