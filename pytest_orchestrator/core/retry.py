"""Retries, in one place: ``RetryPolicy`` decides, ``run_attempts`` / ``run_attempts_async`` loop.

The policy is pure: it computes delays and answers questions, it never sleeps. The attempt loop (a sync and an
async face over one decision, :func:`_decide`) calls the work, asks the policy, tells a listener about each
attempt and sleeps through an injectable ``sleep``. The engine, the runners, the thin decorators, the CI stages,
the agents and the pytest plugin all retry through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterable
import dataclasses
import math
import random
import time
from typing import Any
from typing import Generic
from typing import TypeVar


__all__ = ["Attempt", "AttemptListener", "Attempts", "RetryPolicy", "run_attempts", "run_attempts_async"]


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Retry with exponential backoff.

    ``get_delay(attempt) = min(initial_delay * exponential_base ** (attempt - 1), max_delay)``, spread by
    ``+-jitter`` (a fraction: ``jitter=0.1`` varies each delay by up to 10 %). ``attempt`` is the attempt that
    just failed, starting at 1. Only exceptions that are instances of ``retry_on`` are retried.

    Usage::

        RetryPolicy(max_attempts=3, initial_delay=0.5)          # waits 0.5 s, then 1 s
        RetryPolicy(max_attempts=5, retry_on=(ConnectionError,))
    """

    max_attempts: int = 3
    initial_delay: float = 1.0
    max_delay: float = 60.0
    exponential_base: float = 2.0
    jitter: float = 0.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        retry_on: Any = self.retry_on
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        retry_on = tuple(retry_on) if isinstance(retry_on, Iterable) else retry_on
        if not isinstance(retry_on, tuple) or not all(
            isinstance(c, type) and issubclass(c, BaseException) for c in retry_on
        ):
            raise ValueError(f"retry_on must be exception classes, got {self.retry_on!r}")
        object.__setattr__(self, "retry_on", retry_on)
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ValueError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        for field in ("initial_delay", "max_delay", "jitter"):
            value = getattr(self, field)
            if not isinstance(value, int | float) or math.isnan(value) or value < 0:
                raise ValueError(f"{field} must be a number >= 0, got {value!r}")
        if not isinstance(self.exponential_base, int | float) or self.exponential_base < 1:
            raise ValueError(f"exponential_base must be >= 1, got {self.exponential_base!r}")
        if self.jitter > 1:
            raise ValueError(f"jitter is a fraction between 0 and 1, got {self.jitter!r}")

    def get_delay(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        try:
            delay = self.initial_delay * self.exponential_base ** (attempt - 1)
        except OverflowError:
            delay = self.max_delay
        delay = min(delay, self.max_delay)
        if self.jitter and delay:
            spread = delay * self.jitter
            delay += (rng or random).uniform(-spread, spread)
        return max(0.0, delay)

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether failed attempt ``attempt`` (1-based) with ``error`` gets another try."""
        return attempt < self.max_attempts and isinstance(error, self.retry_on)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["retry_on"] = [c.__name__ for c in self.retry_on]
        return data

    @classmethod
    def from_value(cls, value: Any) -> RetryPolicy | None:
        """Build a policy from what configs and markers say: ``None``, an int (attempts), a dict or a policy."""
        if value is None or isinstance(value, RetryPolicy):
            return value
        if isinstance(value, bool):
            raise ValueError(f"retry must be a number of attempts or a mapping, got {value!r}")
        if isinstance(value, int):
            return cls(max_attempts=value)
        if isinstance(value, dict):
            unknown = set(value) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise ValueError(f"unknown retry setting(s): {', '.join(sorted(unknown))}")
            return cls(**value)
        raise ValueError(f"retry must be a number of attempts or a mapping, got {value!r}")


# --------------------------------------------------------------------------------------------------------------
# The attempt loop: the one place an attempt is retried. A sync and an async face over the same decision.

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One finished attempt, as an attempt listener hears it.

    ``error`` is ``None`` when the attempt succeeded; ``will_retry`` says whether another attempt follows, after
    ``delay`` seconds.
    """

    number: int
    error: BaseException | None
    will_retry: bool
    delay: float = 0.0


#: called after every attempt, before any wait; an exception in it propagates (listeners are the caller's code)
AttemptListener = Callable[[Attempt], None]


@dataclasses.dataclass
class Attempts(Generic[T]):
    """What an attempt loop ended with: the last attempt's value and error, and how many attempts it took.

    ``value`` is the last attempt's return value (also when ``judge`` called it a failure); ``error`` is ``None``
    when the last attempt succeeded; ``errors`` holds the errors of the attempts before the last.
    """

    value: T | None
    error: BaseException | None
    attempts: int
    errors: list[BaseException] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def _decide(
    policy: RetryPolicy | None,
    number: int,
    error: BaseException | None,
    listener: AttemptListener | None,
    stop: Callable[[], bool] | None,
) -> float | None:
    """The delay before the next attempt, or ``None`` when the loop ends; tells ``listener`` either way."""
    retry = (
        error is not None
        and policy is not None
        and policy.should_retry(error, number)
        and not (stop is not None and stop())
    )
    delay = policy.get_delay(number) if retry and policy is not None else 0.0
    if listener is not None:
        listener(Attempt(number, error, retry, delay))
    return delay if retry else None


def _judged(judge: Callable[[T], BaseException | None] | None, value: T) -> BaseException | None:
    return judge(value) if judge is not None else None


def run_attempts(
    call: Callable[[int], T],
    policy: RetryPolicy | None,
    *,
    judge: Callable[[T], BaseException | None] | None = None,
    listener: AttemptListener | None = None,
    sleep: Callable[[float], object] = time.sleep,
    stop: Callable[[], bool] | None = None,
) -> Attempts[T]:
    """Call ``call(attempt_number)`` until it succeeds or ``policy`` says stop; never raises an ``Exception``.

    An attempt fails when ``call`` raises an ``Exception`` or when ``judge(value)`` returns one (a script's exit
    status, a test report); the policy decides on that error (``retry_on``, ``max_attempts``) and its delay is
    slept with ``sleep``. ``stop()`` returning true ends the loop before another attempt (cancellation).
    ``BaseException`` s that are not ``Exception`` s (KeyboardInterrupt, cancellation) propagate at once.
    """
    errors: list[BaseException] = []
    number = 0
    while True:
        number += 1
        value: T | None = None
        try:
            value = call(number)
        except Exception as exc:
            error: BaseException | None = exc
        else:
            error = _judged(judge, value)
        delay = _decide(policy, number, error, listener, stop)
        if delay is None:
            return Attempts(value, error, number, errors)
        assert error is not None
        errors.append(error)
        if delay:
            sleep(delay)
        if stop is not None and stop():
            return Attempts(value, error, number, errors[:-1])


async def run_attempts_async(
    call: Callable[[int], Awaitable[T]],
    policy: RetryPolicy | None,
    *,
    judge: Callable[[T], BaseException | None] | None = None,
    listener: AttemptListener | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    stop: Callable[[], bool] | None = None,
) -> Attempts[T]:
    """The async face of :func:`run_attempts`: same decisions, ``await call(n)`` and ``await sleep(delay)``."""
    errors: list[BaseException] = []
    number = 0
    while True:
        number += 1
        value: T | None = None
        try:
            value = await call(number)
        except Exception as exc:
            error: BaseException | None = exc
        else:
            if judge is None and listener is None:
                # a success nobody judges or listens to ends the loop: the engine's common case, kept lean
                return Attempts(value, None, number, errors)
            error = _judged(judge, value)
        delay = _decide(policy, number, error, listener, stop)
        if delay is None:
            return Attempts(value, error, number, errors)
        assert error is not None
        errors.append(error)
        if delay:
            await sleep(delay)
        if stop is not None and stop():
            return Attempts(value, error, number, errors[:-1])
