"""Time triggers: when a scheduled job fires next.

Every trigger answers ``next_fire_time(after)``: the first fire time strictly after the aware datetime ``after``,
or ``None`` when it will not fire again. ``CronTrigger`` is parsed and iterated by croniter (imported when a
trigger is made); ``IntervalTrigger`` counts whole intervals from its anchor, so it never drifts;
``OnceTrigger`` fires once. ``cron``, ``every`` and ``at`` are the shorthands.

An *event source* (``EventSource``: a file watcher, an in-process event) has no fire times; the scheduler starts its
``listen`` coroutine and runs the job each time it calls ``fire(payload)``.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import datetime as dt
import math
import re
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from typing import runtime_checkable


if TYPE_CHECKING:
    from pytest_orchestrator.schedule.clock import Clock

__all__ = [
    "CronTrigger",
    "EventSource",
    "IntervalTrigger",
    "OnceTrigger",
    "Trigger",
    "at",
    "cron",
    "every",
    "resolve_zone",
]


@runtime_checkable
class Trigger(Protocol):
    """Anything that says when a job fires next."""

    def next_fire_time(self, after: dt.datetime) -> dt.datetime | None: ...


@runtime_checkable
class EventSource(Protocol):
    """A trigger driven by events: ``listen`` runs until cancelled, calling ``fire(payload)`` per event.

    It calls ``ready()`` once it is watching (``Scheduler.start()`` returns only after that).
    """

    def next_fire_time(self, after: dt.datetime) -> dt.datetime | None: ...

    async def listen(self, fire: Callable[[Any], None], ready: Callable[[], None], clock: Clock) -> None: ...


def resolve_zone(tz: dt.tzinfo | str | None) -> dt.tzinfo | None:
    """``tz`` as a ``tzinfo``: a name (``"Europe/Berlin"``) is looked up in the IANA database."""
    if tz is None or isinstance(tz, dt.tzinfo):
        return tz
    if isinstance(tz, str):
        from zoneinfo import ZoneInfo
        from zoneinfo import ZoneInfoNotFoundError

        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r}") from None
    raise TypeError(f"tz must be a tzinfo, a zone name or None, got {type(tz).__name__}")


def _aware(after: dt.datetime, what: str) -> dt.datetime:
    if not isinstance(after, dt.datetime):
        raise TypeError(f"{what} must be a datetime, got {type(after).__name__}")
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (with tzinfo), got {after!r}")
    return after


class CronTrigger:
    """Fires on a cron expression: ``"m h dom mon dow"`` or ``@hourly``, ``@daily``, ``@weekly``, ...

    Standard semantics as croniter defines them: 0 and 7 are Sunday, a day-of-month and a day-of-week both given
    match either, names (``MON``, ``JAN``), ranges and steps. With ``tz`` the expression is read in that zone;
    without, in the zone of the ``after`` it is asked about. Daylight-saving transitions behave as in croniter.
    """

    def __init__(self, expr: str, tz: dt.tzinfo | str | None = None) -> None:
        from croniter import croniter

        if not isinstance(expr, str) or not expr.strip():
            raise ValueError(f"a cron expression must be a non-empty string, got {expr!r}")
        expr = " ".join(expr.split())
        if len(expr.split()) not in (1, 5) or not croniter.is_valid(expr):
            raise ValueError(
                f"invalid cron expression {expr!r}: expected 'minute hour day-of-month month day-of-week' "
                "(e.g. '30 2 * * MON-FRI') or @hourly, @daily, @weekly, @monthly, @yearly"
            )
        self.expr = expr
        self.tz = resolve_zone(tz)

    def next_fire_time(self, after: dt.datetime) -> dt.datetime | None:
        from croniter import croniter

        after = _aware(after, "after")
        if self.tz is not None:
            after = after.astimezone(self.tz)
        value = croniter(self.expr, after).get_next(dt.datetime)
        assert isinstance(value, dt.datetime)
        return value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CronTrigger) and (self.expr, self.tz) == (other.expr, other.tz)

    def __hash__(self) -> int:
        return hash((self.expr, self.tz))

    def __repr__(self) -> str:
        return f"CronTrigger({self.expr!r}" + (f", tz={self.tz!s}" if self.tz is not None else "") + ")"


@dataclasses.dataclass(frozen=True)
class IntervalTrigger:
    """Fires every ``seconds`` at ``start_at + k * seconds`` (k = 0, 1, ...): never drifting, never on every poll.

    Without ``start_at`` the scheduler anchors it when the job starts counting (``start()``, or when scheduled on a
    running scheduler), so the first run is one interval later; asked directly, it fires ``seconds`` after
    ``after``.
    """

    seconds: float
    start_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        s = self.seconds
        if isinstance(s, bool) or not isinstance(s, int | float) or math.isnan(s) or math.isinf(s) or s <= 0:
            raise ValueError(f"an interval must be a positive number of seconds, got {s!r}")
        if self.start_at is not None:
            _aware(self.start_at, "start_at")

    def anchored(self, start: dt.datetime) -> IntervalTrigger:
        """This interval counted from ``start`` (unless it has its own ``start_at``)."""
        return self if self.start_at is not None else dataclasses.replace(self, start_at=start)

    def next_fire_time(self, after: dt.datetime) -> dt.datetime | None:
        after = _aware(after, "after")
        if self.start_at is None:
            return after + dt.timedelta(seconds=self.seconds)
        if after < self.start_at:
            return self.start_at
        elapsed = (after - self.start_at).total_seconds()
        k = math.floor(elapsed / self.seconds) + 1
        fire = self.start_at + dt.timedelta(seconds=k * self.seconds)
        while fire <= after:  # float rounding
            k += 1
            fire = self.start_at + dt.timedelta(seconds=k * self.seconds)
        return fire


@dataclasses.dataclass(frozen=True)
class OnceTrigger:
    """Fires once, at ``at`` (an aware datetime)."""

    at: dt.datetime

    def __post_init__(self) -> None:
        _aware(self.at, "at")

    def next_fire_time(self, after: dt.datetime) -> dt.datetime | None:
        return self.at if self.at > _aware(after, "after") else None


def cron(expr: str, tz: dt.tzinfo | str | None = None) -> CronTrigger:
    """``CronTrigger(expr, tz)``."""
    return CronTrigger(expr, tz)


def every(
    seconds: float | None = None, *, minutes: float = 0, hours: float = 0, start_at: dt.datetime | None = None
) -> IntervalTrigger:
    """A recurring interval: ``every(seconds=0.2)``, ``every(minutes=5)``, ``every(hours=1, start_at=...)``."""
    total = (seconds or 0) + minutes * 60 + hours * 3600
    if seconds is None and not minutes and not hours:
        raise TypeError("every() needs seconds=, minutes= or hours=")
    return IntervalTrigger(total, start_at)


_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def at(hhmm: str, tz: dt.tzinfo | str | None = None) -> CronTrigger:
    """Every day at ``"HH:MM"`` (in ``tz``, else in the zone the scheduler runs in). ``OnceTrigger`` is the one-off."""
    match = _HHMM.match(hhmm.strip()) if isinstance(hhmm, str) else None
    if match is None:
        raise ValueError(f"at() takes a time of day 'HH:MM' (00:00 to 23:59), got {hhmm!r}")
    return CronTrigger(f"{int(match.group(2))} {int(match.group(1))} * * *", tz)
