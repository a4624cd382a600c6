"""The package's one sense of time: a ``Clock`` gives wall time (``time()`` in seconds, ``now()`` as an aware
datetime), a monotonic time and an async ``sleep``.

The engine takes every timestamp, duration and retry delay from the workflow's clock (``Workflow(clock=...)``); the
scheduler (``schedule/``) reads the same protocol, and ``schedule.FakeClock`` is one more implementation of it.
``SYSTEM_CLOCK`` is the real one. ``VirtualClock`` is for tests: its ``sleep`` advances virtual time at once, so a
retry with a 10 s backoff takes no real time, and the delays it was asked for can be read back.

Timeouts are not the clock's business: they are scopes on the event loop (``core/limits.py``).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol
from typing import runtime_checkable


__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """A time source and a way to wait."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch (for ``started_at`` / ``finished_at`` and event times)."""
        ...

    def now(self) -> dt.datetime:
        """The wall-clock time as an aware datetime (the scheduler's fire times)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for durations); only differences mean anything."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a retry delay)."""
        ...


_wall_time = time.time
_perf_counter = time.perf_counter


class SystemClock:
    """The real clock: ``time.time``, ``datetime.now(UTC)``, ``time.perf_counter`` and ``asyncio.sleep``."""

    # the built-ins themselves, not wrappers: the engine reads the clock twice per task
    time = staticmethod(_wall_time)
    monotonic = staticmethod(_perf_counter)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def sleep(self, seconds: float) -> None:
        import asyncio  # imported when first awaited: the pytest plugin imports clocks and never needs asyncio

        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


#: the clock a ``Workflow`` uses unless it is given another
SYSTEM_CLOCK = SystemClock()


class VirtualClock:
    """A clock that only moves when told to: ``sleep`` (and ``advance``) add to virtual time at once.

    ``sleep`` still yields to the event loop once, so other tasks run in between, as they would during a real wait.
    ``sleeps`` records every delay asked for, in order.

    Usage::

        clock = VirtualClock()
        wf = Workflow("w", clock=clock)
        ...                          # a task retried with initial_delay=10 finishes at once
        assert clock.sleeps == [10.0]
    """

    def __init__(self, start: float = 0.0, *, wall: float = 1_000_000_000.0) -> None:
        self._now = float(start)
        self._wall_offset = float(wall) - self._now
        #: every ``sleep`` delay, in order
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self._wall_offset + self._now

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time(), dt.UTC)

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back: advance({seconds!r})")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))
        import asyncio

        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r})"
