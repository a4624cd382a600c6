"""Retries, in one place: ``RetryPolicy`` decides, ``run_attempts`` / ``run_attempts_async`` loop.

The policy is pure: it computes delays and answers questions, it never sleeps. The attempt loop (a sync and an
async face over one loop, :class:`_Loop`) calls the work, asks the policy, tells a listener about each
attempt and sleeps through an injectable ``sleep``. The engine, the runners, the thin decorators, the CI stages,
the agents and the pytest plugin all retry through it.
"""

from __future__ import annotations

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


class _Loop(Generic[T]):
    """The attempt loop's state and decisions, written once; ``run_attempts`` and ``run_attempts_async`` only
    call and sleep. ``next()`` gives the next attempt's number (``None`` when the loop is over), ``settle()``
    takes an attempt's outcome and sets ``delay`` (the wait before the next attempt)."""

    __slots__ = ("delay", "errors", "judge", "listener", "number", "policy", "result", "result_value", "stop")

    def __init__(
        self,
        policy: RetryPolicy | None,
        judge: Callable[[T], BaseException | None] | None,
        listener: AttemptListener | None,
        stop: Callable[[], bool] | None,
    ) -> None:
        self.policy, self.judge, self.listener, self.stop = policy, judge, listener, stop
        self.number = 0
        self.delay: float | None = 0.0
        self.errors: list[BaseException] = []
        self.result: Attempts[T] | None = None
        #: the value of the last attempt that will be retried (a judged failure can return one)
        self.result_value: T | None = None

    def next(self) -> int | None:
        if self.result is not None:
            return None
        if self.number and self.stop is not None and self.stop():  # cancelled while waiting to retry
            self.result = Attempts(self.result_value, self.errors[-1], self.number, self.errors[:-1])
            return None
        self.number += 1
        return self.number

    def settle(self, value: T | None, error: BaseException | None) -> None:
        """Attempt ``number`` returned ``value`` or raised ``error``; decide whether another follows."""
        number, policy, listener = self.number, self.policy, self.listener
        if error is None and self.judge is not None:
            error = self.judge(value)  # type: ignore[arg-type]  # value is a T when the call returned
        retry = (
            error is not None
            and policy is not None
            and policy.should_retry(error, number)
            and not (self.stop is not None and self.stop())
        )
        self.delay = policy.get_delay(number) if retry and policy is not None else 0.0
        if listener is not None:
            listener(Attempt(number, error, retry, self.delay))
        if retry:
            assert error is not None
            self.errors.append(error)
            self.result_value = value
        else:
            self.result = Attempts(value, error, number, self.errors)


def _call(call: Callable[[int], T], number: int) -> tuple[T | None, BaseException | None]:
    try:
        return call(number), None
    except Exception as exc:
        return None, exc


async def _call_async(call: Callable[[int], Awaitable[T]], number: int) -> tuple[T | None, BaseException | None]:
    try:
        return await call(number), None
    except Exception as exc:
        return None, exc


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
    loop: _Loop[T] = _Loop(policy, judge, listener, stop)
    while (number := loop.next()) is not None:
        loop.settle(*_call(call, number))
        if loop.result is None and loop.delay:
            sleep(loop.delay)
    assert loop.result is not None
    return loop.result


async def run_attempts_async(
    call: Callable[[int], Awaitable[T]],
    policy: RetryPolicy | None,
    *,
    judge: Callable[[T], BaseException | None] | None = None,
    listener: AttemptListener | None = None,
    sleep: Callable[[float], Awaitable[object]] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Attempts[T]:
    """The async face of :func:`run_attempts`: same decisions, ``await call(n)`` and ``await sleep(delay)``
    (``asyncio.sleep`` by default)."""
    if sleep is None:
        import asyncio  # here, not at module level: the pytest plugin imports this module and never needs asyncio

        sleep = asyncio.sleep
    loop: _Loop[T] = _Loop(policy, judge, listener, stop)
    while (number := loop.next()) is not None:
        loop.settle(*await _call_async(call, number))
        if loop.result is None and loop.delay:
            await sleep(loop.delay)
    assert loop.result is not None
    return loop.result
