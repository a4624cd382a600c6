"""``core/clock.py``: the real clock, and the virtual one whose ``sleep`` takes no real time."""

from __future__ import annotations

import asyncio
import time

import pytest

from pytest_orchestrator.core.clock import SYSTEM_CLOCK
from pytest_orchestrator.core.clock import Clock
from pytest_orchestrator.core.clock import SystemClock
from pytest_orchestrator.core.clock import VirtualClock


def test_system_clock_reads_the_real_time() -> None:
    assert isinstance(SYSTEM_CLOCK, SystemClock) and isinstance(SYSTEM_CLOCK, Clock)
    assert abs(SYSTEM_CLOCK.time() - time.time()) < 5
    a = SYSTEM_CLOCK.monotonic()
    asyncio.run(SYSTEM_CLOCK.sleep(0.01))
    assert SYSTEM_CLOCK.monotonic() - a >= 0.005


def test_virtual_sleep_advances_at_once_and_is_recorded() -> None:
    clock = VirtualClock(start=5.0, wall=100.0)
    assert (clock.monotonic(), clock.time()) == (5.0, 100.0)
    started = time.perf_counter()
    asyncio.run(clock.sleep(3600.0))
    assert time.perf_counter() - started < 1.0
    clock.advance(0.5)
    assert (clock.monotonic(), clock.time()) == (3605.5, 3700.5)
    assert clock.sleeps == [3600.0]


def test_virtual_sleep_lets_other_tasks_run() -> None:
    clock = VirtualClock()
    order: list[str] = []

    async def sleeper() -> None:
        await clock.sleep(10)
        order.append("sleeper")

    async def other() -> None:
        order.append("other")

    async def main() -> None:
        await asyncio.gather(sleeper(), other())

    asyncio.run(main())
    assert order == ["other", "sleeper"]


def test_virtual_clock_does_not_go_back() -> None:
    with pytest.raises(ValueError, match="does not go back"):
        VirtualClock().advance(-1)
