"""Retry and timeout around an item's run (the runtest protocol).

**Retry.** An item with a retry policy runs through :func:`run_with_retries` instead of pytest's own protocol:
each attempt is a full setup / call / teardown (so function fixtures are fresh), and a failed *call* whose error
matches the policy's ``retry_on`` is retried after ``policy.get_delay(attempt)`` seconds, by the one attempt loop
(:func:`~pytest_orchestrator.core.retry.run_attempts`, through :mod:`.attempts`). Each retried attempt is
logged as one call report with outcome ``"rerun"`` (letter ``R``, word ``RERUN``); only the last attempt is logged
as the item's real outcome, so JUnit XML holds one testcase per item. Setup failures, skips and teardown errors are
never retried. ``item.user_properties`` gets ``attempts`` and ``attempt_N_error`` *before* the final reports are
made (a report copies the list when it is created).

**Timeout.** A Python test's call phase is interrupted by ``SIGALRM`` (``setitimer``, main thread only), raising
:class:`ItemTimeout` inside the test: the test fails, the run goes on. Script items enforce their timeout on the
subprocess instead (its process group is killed).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import re
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

import pytest

from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.plugin.compat import Failed
from pytest_orchestrator.plugin.compat import runtestprotocol
from pytest_orchestrator.plugin.kinds import is_script_failure
from pytest_orchestrator.plugin.names import stashed
from pytest_orchestrator.plugin.outcomes import RERUN


if TYPE_CHECKING:
    from pytest_orchestrator.core.retry import Attempt
    from pytest_orchestrator.core.retry import RetryPolicy


__all__ = [
    "ItemTimeout",
    "alarm",
    "attempt_error_text",
    "error_key",
    "is_timeout",
    "retry_error",
    "run_with_retries",
    "set_property",
]

#: the exception raised by the item's last call phase (or None when it passed)
error_key = pytest.StashKey["BaseException | None"]()
#: the attempt an item with a retry policy is on
attempt_key = pytest.StashKey[int]()


class ItemTimeout(Failed):
    """Raised inside a Python test when its timeout expires (a ``pytest.fail`` that ``except Exception`` does not
    swallow). For ``retry_on`` it counts as an :class:`~pytest_orchestrator.errors.OrchestratorTimeoutError`."""

    # shown as "ItemTimeout: timed out after 2 s", like pytest's own "Failed: ..."
    __module__ = "builtins"


@contextlib.contextmanager
def alarm(seconds: float | None) -> Iterator[None]:
    """Raise :class:`ItemTimeout` in the main thread after ``seconds`` (a no-op where SIGALRM cannot be used)."""
    usable = (
        seconds is not None
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return
    assert seconds is not None

    def expire(signum: int, frame: FrameType | None) -> None:
        __tracebackhide__ = True
        raise ItemTimeout(f"timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


#: how pytest-timeout's ``signal`` method words the failure it raises inside a test
_PYTEST_TIMEOUT_FAILURE = re.compile(r"Timeout \(>[^)]*s\) from pytest-timeout")


def is_timeout(error: BaseException) -> bool:
    """Whether ``error`` ended a test on its timeout: ours (:class:`ItemTimeout`) or pytest-timeout's."""
    if isinstance(error, ItemTimeout):
        return True
    return isinstance(error, Failed) and _PYTEST_TIMEOUT_FAILURE.match(str(error.msg or "")) is not None


def retry_error(error: BaseException) -> BaseException:
    """The exception a retry policy judges: a timeout counts as ``OrchestratorTimeoutError`` (a ``TimeoutError``),
    ``pytest.fail`` as ``AssertionError``; anything else as itself."""
    if isinstance(error, ItemTimeout):
        return OrchestratorTimeoutError(str(error))
    if isinstance(error, Failed):
        return AssertionError(str(error))
    return error


def attempt_error_text(error: BaseException | None, report: pytest.TestReport) -> str:
    """A one-line message for a failed attempt (for JUnit properties and the summary)."""
    if isinstance(error, Failed):
        text = str(error.msg or "")
    elif is_script_failure(error):
        text = str(error)
    elif error is not None:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    else:
        text = report.longreprtext.strip().splitlines()[-1] if report.longreprtext.strip() else report.outcome
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def set_property(item: pytest.Item, name: str, value: object) -> None:
    """Set ``name`` in ``item.user_properties``, replacing an earlier value."""
    item.user_properties[:] = [p for p in item.user_properties if p[0] != name]
    item.user_properties.append((name, value))


def _attempt_error(item: pytest.Item, reports: list[pytest.TestReport]) -> BaseException | None:
    """The error the retry policy judges for one attempt, or ``None`` when the attempt is final whatever the policy
    says: it passed, its setup did not pass (a failure or a skip), its teardown failed, or the session is stopping."""
    if item.session.shouldfail or item.session.shouldstop:
        return None
    setup, call = reports[0], next((r for r in reports if r.when == "call"), None)
    teardown = reports[-1]
    if call is None or not setup.passed or not call.failed or teardown.failed:
        return None
    error = stashed(item.stash, error_key, None)
    return None if error is None else retry_error(error)


def _call_report(reports: list[pytest.TestReport]) -> pytest.TestReport | None:
    return next((r for r in reports if r.when == "call"), None)


def run_with_retries(item: pytest.Item, nextitem: pytest.Item | None, policy: RetryPolicy) -> None:
    """pytest's runtest protocol for one item, with retries per ``policy``."""
    # the attempt loop loads with the first item that has a policy (whoever made the policy loaded core.retry)
    from pytest_orchestrator.plugin.attempts import run_judged_attempts

    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    latest: list[pytest.TestReport] = []

    def attempt(number: int) -> list[pytest.TestReport]:
        item.stash[attempt_key] = number
        set_property(item, "attempts", number)
        latest[:] = runtestprotocol(item, nextitem=nextitem, log=False)
        return list(latest)

    def rerun(attempt: Attempt) -> None:
        # a failed attempt that will be retried is logged as one "rerun" call report; the last one is logged below
        if not attempt.will_retry:
            return
        call = _call_report(latest)
        assert call is not None  # only a failed call is retried
        call.outcome = RERUN  # type: ignore[assignment]
        ihook.pytest_runtest_logreport(report=call)
        ihook.pytest_orchestrate_attempt(item=item, attempt=attempt.number, report=call, will_retry=True)

    outcome = run_judged_attempts(attempt, policy, judge=lambda reports: _attempt_error(item, reports), listener=rerun)
    reports = outcome.value
    assert reports  # an attempt that returned no reports raised instead
    for report in reports:
        ihook.pytest_runtest_logreport(report=report)
    decisive = _call_report(reports) or reports[0]
    ihook.pytest_orchestrate_attempt(item=item, attempt=outcome.attempts, report=decisive, will_retry=False)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
