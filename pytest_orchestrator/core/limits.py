"""Limits in one place: the check of a number of seconds or attempts, and the one timeout scope.

``within`` bounds an awaitable (the engine's task timeouts, the ``timeout`` decorator's async face, the agents);
``call_within`` bounds a sync call by running it in a daemon thread that is abandoned at expiry (a thread cannot be
killed). Both raise the error that ``expired()`` builds, so each caller keeps its own message. Standard library
only, and cheap to import.
"""

from __future__ import annotations

from collections.abc import Awaitable
from collections.abc import Callable
import contextvars
import math
import threading
from typing import Any
from typing import TypeVar


__all__ = ["call_within", "check_attempts", "check_seconds", "within"]

T = TypeVar("T")


def check_seconds(
    value: Any,
    what: str,
    *,
    zero: bool = False,
    error: Callable[[str], Exception] = ValueError,
) -> float:
    """``value`` as a float if it is a positive number of seconds (``zero=True`` also accepts 0).

    Otherwise raises ``error(message)``; the message names ``what`` and the value, e.g. "timeout must be a positive
    number of seconds, got -1". Booleans and NaN are refused.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or value < 0
        or (value == 0 and not zero)
    ):
        kind = "a number of seconds >= 0" if zero else "a positive number of seconds"
        raise error(f"{what} must be {kind}, got {value!r}")
    return float(value)


def check_attempts(value: Any, what: str, *, error: Callable[[str], Exception] = ValueError) -> int:
    """``value`` if it is a whole number of attempts >= 1; otherwise raises ``error(message)``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise error(f"{what} must be an integer >= 1 (attempts in total), got {value!r}")
    return value


async def within(seconds: float | None, awaitable: Awaitable[T], expired: Callable[[], BaseException]) -> T:
    """Await ``awaitable``, cancelled after ``seconds`` (``None``: no limit); expiry raises ``expired()``.

    A ``TimeoutError`` raised by the work itself (not by this scope's expiry) propagates unchanged.
    """
    if seconds is None:
        return await awaitable
    import asyncio  # the pytest plugin imports this module for check_seconds and never needs asyncio

    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            return await awaitable
    except TimeoutError:
        if scope.expired():
            raise expired() from None
        raise


def call_within(
    seconds: float, fn: Callable[..., T], expired: Callable[[], BaseException], *args: Any, **kwargs: Any
) -> T:
    """Call ``fn(*args, **kwargs)`` in a daemon thread and wait at most ``seconds``; expiry raises ``expired()``.

    The thread cannot be killed: at expiry it is abandoned and runs on until ``fn`` returns (its result is dropped).
    The call sees the caller's context variables.
    """
    outcome: list[tuple[bool, T | BaseException]] = []
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome.append((True, context.run(fn, *args, **kwargs)))
        except BaseException as exc:  # handed to the caller below
            outcome.append((False, exc))

    thread = threading.Thread(target=target, name=f"orchestrate-timeout-{getattr(fn, '__name__', 'call')}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive() or not outcome:
        raise expired()
    ok, value = outcome[0]
    if isinstance(value, BaseException) and not ok:
        raise value
    return value  # type: ignore[return-value]
