"""``EventTrigger`` and ``emit``: run jobs when the program says so, in process.

``emit(name, payload)`` (from any thread) fires every listening ``EventTrigger(name)``; each job receives the
payload as its first argument (a pipeline, in ``ORCHESTRATE_PAYLOAD``). Nothing is queued for triggers that are not
listening yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import datetime as dt
import threading
from typing import TYPE_CHECKING
from typing import Any


if TYPE_CHECKING:
    from pytest_orchestrator.schedule.clock import Clock

__all__ = ["EventTrigger", "emit"]

_lock = threading.Lock()
#: name -> the fire callbacks listening, each with the loop it belongs to
_listeners: dict[str, list[tuple[asyncio.AbstractEventLoop, Callable[[Any], None]]]] = {}


class EventTrigger:
    """Fires on ``emit(name, payload)``; the job receives ``payload``."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"an event name must be a non-empty string, got {name!r}")
        self.name = name

    def __repr__(self) -> str:
        return f"EventTrigger({self.name!r})"

    def next_fire_time(self, after: dt.datetime) -> dt.datetime | None:
        """Never: an event trigger fires on ``emit``, not at times."""
        return None

    async def listen(self, fire: Callable[[Any], None], ready: Callable[[], None], clock: Clock) -> None:
        entry = (asyncio.get_running_loop(), fire)
        with _lock:
            _listeners.setdefault(self.name, []).append(entry)
        ready()
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            with _lock:
                _listeners[self.name].remove(entry)
                if not _listeners[self.name]:
                    del _listeners[self.name]


def emit(name: str, payload: Any = None) -> int:
    """Fire every listening ``EventTrigger(name)`` with ``payload``; return how many were fired."""
    with _lock:
        targets = list(_listeners.get(name, ()))
    for loop, fire in targets:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fire(payload)
        else:
            try:
                loop.call_soon_threadsafe(fire, payload)
            except RuntimeError:  # that loop has closed
                continue
    return len(targets)
