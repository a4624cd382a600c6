"""``retry`` and ``timeout`` decorators that keep a function sync or async.

Both are thin faces over ``core``: ``retry`` loops through :func:`~pytest_orchestrator.core.retry.run_attempts`
(or its async face), ``timeout`` bounds a call with :func:`~pytest_orchestrator.core.limits.within` (async) or
:func:`~pytest_orchestrator.core.limits.call_within` (sync, in an abandoned daemon thread).
"""

from __future__ import annotations

from collections.abc import Awaitable
from collections.abc import Callable
import functools
import inspect
import math
from typing import Any
from typing import cast
from typing import overload

from pytest_orchestrator.core.limits import call_within
from pytest_orchestrator.core.limits import check_attempts
from pytest_orchestrator.core.limits import check_seconds
from pytest_orchestrator.core.limits import within
from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.retry import run_attempts
from pytest_orchestrator.core.retry import run_attempts_async
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.thin.common import F


__all__ = ["retry", "timeout"]


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
    check_attempts(max_attempts, "max_attempts")
    check_seconds(delay, "delay", zero=True)
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
                outcome = await run_attempts_async(lambda _n: cast(Awaitable[Any], func(*args, **kwargs)), policy)
                if outcome.error is not None:
                    raise outcome.error
                return outcome.value

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outcome = run_attempts(lambda _n: func(*args, **kwargs), policy)
            if outcome.error is not None:
                raise outcome.error
            return outcome.value

        return cast(F, wrapper)

    return decorate(fn) if fn is not None else decorate


def timeout(seconds: float) -> Callable[[F], F]:
    """Fail a call that takes longer than ``seconds`` with ``OrchestratorTimeoutError``.

    An async function is cancelled at expiry. A sync function runs in a daemon thread while the caller waits; at
    expiry the caller gets the error but the thread cannot be killed: it is abandoned and runs on until the
    function returns (its result is dropped). Use ``python_func`` when the work must really be stopped. The
    decorated function keeps its kind. ``seconds`` must be > 0 (``ValueError`` at decoration time).
    """
    limit = check_seconds(seconds, "timeout")

    def expired(func: Callable[..., Any]) -> OrchestratorTimeoutError:
        name = getattr(func, "__qualname__", repr(func))
        return OrchestratorTimeoutError(f"{name} timed out after {limit:g} s", function=name, timeout=limit)

    def decorate(func: F) -> F:
        if not callable(func):
            raise TypeError(f"@timeout decorates a function, got {func!r}")
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await within(limit, cast(Awaitable[Any], func(*args, **kwargs)), lambda: expired(func))

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # the arguments are bound here, so that none of them can collide with call_within's own parameters
            call = functools.wraps(func)(functools.partial(func, *args, **kwargs))
            return call_within(limit, call, lambda: expired(func))

        return cast(F, wrapper)

    return decorate
