"""The clock the scheduler and the triggers read: wall time, monotonic time and an async sleep.

``SystemClock`` is the real one. ``FakeClock`` is for tests: time stands still until ``await clock.advance(s)``
moves it, waking the sleepers whose deadlines pass, in order, so time-based tests never sleep for real.
The interface is deliberately small (three methods) so that it can merge with the engine's clock later.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import time
from typing import Protocol
from typing import runtime_checkable


__all__ = ["Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What the scheduler needs of time."""

    def now(self) -> dt.datetime:
        """The wall-clock time, an aware datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for durations)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock: ``datetime.now(UTC)``, ``time.monotonic()`` and ``asyncio.sleep``."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock that moves only when told to; for tests.

    Usage::

        clock = FakeClock(datetime(2024, 3, 30, 12, tzinfo=UTC))
        task = asyncio.create_task(scheduler.serve())
        await clock.advance(10)          # ten seconds pass; every sleeper due meanwhile wakes, in order
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        start = start if start is not None else dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        if start.tzinfo is None:
            raise ValueError(f"FakeClock needs an aware start time, got {start!r}")
        self._start = start
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> dt.datetime:
        return self._start + dt.timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._order), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many sleeps are waiting."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time ``seconds`` forward, waking each sleeper at its deadline and letting the loop run after each."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds!r})")
        target = self._elapsed + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            if future.done():  # cancelled sleep
                continue
            self._elapsed = max(self._elapsed, deadline)
            future.set_result(None)
            await settle()
        self._elapsed = target
        await settle()

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now().isoformat()})"


async def settle(rounds: int = 25) -> None:
    """Let every ready callback of the running loop run (a few passes of the loop, no real time)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
