"""``retry`` and ``timeout`` decorators that keep a function sync or async."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from collections.abc import Callable
import contextvars
import functools
import inspect
import math
import threading
import time
from typing import Any
from typing import cast
from typing import overload

from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.thin._common import F
from pytest_orchestrator.thin._common import _check_attempts
from pytest_orchestrator.thin._common import _check_seconds


# -- decorators ------------------------------------------------------------------------------------------------
@overload
def retry(
    fn: F,
    *,
    max_attempts: int = 3,
    delay: float = 1.0,
    backoff: float = 2.0,
    retry_on: tuple[type[BaseException], ...] | type[BaseException] = (Exception,),
) -> F: ...


@overload
def retry(
    fn: None = None,
    *,
    max_attempts: int = 3,
    delay: float = 1.0,
    backoff: float = 2.0,
    retry_on: tuple[type[BaseException], ...] | type[BaseException] = (Exception,),
) -> Callable[[F], F]: ...


def retry(
    fn: Callable[..., Any] | None = None,
    *,
    max_attempts: int = 3,
    delay: float = 1.0,
    backoff: float = 2.0,
    retry_on: tuple[type[BaseException], ...] | type[BaseException] = (Exception,),
) -> Any:
    """Call the function again when it raises one of ``retry_on``, up to ``max_attempts`` calls in total.

    Waits ``delay`` seconds after the first failure, multiplied by ``backoff`` after each further one; the last
    exception propagates. Use as ``@retry`` or ``@retry(max_attempts=5, delay=0.1)``. A sync function stays sync
    (it sleeps), an async one stays async (it awaits). Bad arguments raise ``ValueError`` at decoration time.
    """
    _check_attempts(max_attempts, "max_attempts")
    if isinstance(delay, bool) or not isinstance(delay, int | float) or math.isnan(delay) or delay < 0:
        raise ValueError(f"delay must be a number of seconds >= 0, got {delay!r}")
    if isinstance(backoff, bool) or not isinstance(backoff, int | float) or math.isnan(backoff) or backoff < 1:
        raise ValueError(f"backoff must be a number >= 1, got {backoff!r}")
    policy = RetryPolicy(
        max_attempts=max_attempts,
        initial_delay=float(delay),
        max_delay=math.inf,
        exponential_base=float(backoff),
        retry_on=retry_on if isinstance(retry_on, tuple) else (retry_on,),
    )

    def decorate(func: F) -> F:
        if not callable(func):
            raise TypeError(f"@retry decorates a function, got {func!r}")
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                attempt = 0
                while True:
                    attempt += 1
                    try:
                        return await func(*args, **kwargs)
                    except policy.retry_on:
                        if attempt >= policy.max_attempts:
                            raise
                    await asyncio.sleep(policy.get_delay(attempt))

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            attempt = 0
            while True:
                attempt += 1
                try:
                    return func(*args, **kwargs)
                except policy.retry_on:
                    if attempt >= policy.max_attempts:
                        raise
                time.sleep(policy.get_delay(attempt))

        return cast(F, wrapper)

    return decorate(fn) if fn is not None else decorate


def timeout(seconds: float) -> Callable[[F], F]:
    """Fail a call that takes longer than ``seconds`` with ``OrchestratorTimeoutError``.

    An async function is cancelled at expiry. A sync function runs in a daemon thread while the caller waits; at
    expiry the caller gets the error but the thread cannot be killed: it is abandoned and runs on until the
    function returns (its result is dropped). Use ``python_func`` when the work must really be stopped. The
    decorated function keeps its kind. ``seconds`` must be > 0 (``ValueError`` at decoration time).
    """
    limit = _check_seconds(seconds, "timeout")

    def expired(func: Callable[..., Any]) -> OrchestratorTimeoutError:
        name = getattr(func, "__qualname__", repr(func))
        return OrchestratorTimeoutError(f"{name} timed out after {limit:g} s", function=name, timeout=limit)

    def decorate(func: F) -> F:
        if not callable(func):
            raise TypeError(f"@timeout decorates a function, got {func!r}")
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                scope = asyncio.timeout(limit)
                try:
                    async with scope:
                        return await cast(Awaitable[Any], func(*args, **kwargs))
                except TimeoutError:
                    if scope.expired():
                        raise expired(func) from None
                    raise

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outcome: list[tuple[bool, Any]] = []
            context = contextvars.copy_context()

            def target() -> None:
                try:
                    outcome.append((True, context.run(func, *args, **kwargs)))
                except BaseException as exc:  # handed to the caller below
                    outcome.append((False, exc))

            thread = threading.Thread(
                target=target, name=f"orchestrate-timeout-{getattr(func, '__name__', 'call')}", daemon=True
            )
            thread.start()
            thread.join(limit)
            if thread.is_alive() or not outcome:
                raise expired(func)
            ok, value = outcome[0]
            if ok:
                return value
            raise value

        return cast(F, wrapper)

    return decorate
