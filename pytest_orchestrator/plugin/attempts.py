"""The plugin's face of THE attempt loop (:func:`pytest_orchestrator.core.retry.run_attempts`).

The plugin's attempts (a test's setup / call / teardown, a script run) fail only by what they *return*: a test's
reports, a script's result, which ``judge`` turns into the error the retry policy sees. An exception raised by the
attempt itself is not a failed attempt but something that ends the run (``pytest.exit`` is an ``Exception``; so is
an internal error): :func:`run_judged_attempts` lets it propagate unchanged, as pytest would, instead of letting the
loop retry it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from typing import cast

from pytest_orchestrator.core.retry import AttemptListener
from pytest_orchestrator.core.retry import Attempts
from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.retry import run_attempts


__all__ = ["run_judged_attempts"]

T = TypeVar("T")


def run_judged_attempts(
    call: Callable[[int], T],
    policy: RetryPolicy | None,
    *,
    judge: Callable[[T], BaseException | None],
    listener: AttemptListener | None = None,
) -> Attempts[T]:
    """:func:`~pytest_orchestrator.core.retry.run_attempts` where only ``judge`` fails an attempt.

    An exception raised by ``call`` ends the loop (the listener hears a final attempt) and is raised again, from
    where it was raised; the attempts before it stand.
    """
    raised: list[Exception] = []

    def attempt(number: int) -> T:
        try:
            return call(number)
        except Exception as exc:  # not the attempt's failure: raised again below, once the loop has ended
            raised.append(exc)
            return cast(T, None)  # never judged and never returned

    def judged(value: T) -> BaseException | None:
        return None if raised else judge(value)

    outcome = run_attempts(attempt, policy, judge=judged, listener=listener)
    if raised:
        raise raised[0]
    return outcome
