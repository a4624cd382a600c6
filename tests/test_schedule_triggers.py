"""Time triggers: cron against croniter's own answers across DST in two zones, intervals, once, shorthands."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from pytest_orchestrator.schedule import CronTrigger
from pytest_orchestrator.schedule import IntervalTrigger
from pytest_orchestrator.schedule import OnceTrigger
from pytest_orchestrator.schedule import at
from pytest_orchestrator.schedule import cron
from pytest_orchestrator.schedule import every


UTC = dt.UTC
EXPRESSIONS = ("30 2 * * *", "0 * * * *", "*/15 1-3 * * MON-FRI", "0 0 1,15 * 0", "@daily", "5 4 * JAN,MAR 7")


def _croniter_next(expr: str, after: dt.datetime) -> dt.datetime:
    from croniter import croniter

    value = croniter(expr, after).get_next(dt.datetime)
    assert isinstance(value, dt.datetime)
    return value


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
def test_cron_matches_croniter_every_minute_around_dst(zone: str) -> None:
    tz = ZoneInfo(zone)
    spring = {"Europe/Berlin": dt.datetime(2024, 3, 30), "America/New_York": dt.datetime(2024, 3, 9)}[zone]
    autumn = {"Europe/Berlin": dt.datetime(2024, 10, 26), "America/New_York": dt.datetime(2024, 11, 2)}[zone]
    triggers = [CronTrigger(e, tz=zone) for e in EXPRESSIONS[:3]]
    for start in (spring, autumn):
        after = (start + dt.timedelta(hours=22)).replace(tzinfo=tz).astimezone(UTC)
        for _ in range(6 * 60):  # every minute of the six hours around the change (the whole year: the slow test)
            for trigger in triggers:
                assert trigger.next_fire_time(after) == _croniter_next(trigger.expr, after.astimezone(tz))
            after += dt.timedelta(minutes=1)


@pytest.mark.slow
@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
def test_cron_matches_croniter_every_minute_of_a_year(zone: str) -> None:
    tz = ZoneInfo(zone)
    trigger = CronTrigger("30 2 * * *", tz=zone)
    after = dt.datetime(2024, 1, 1, tzinfo=tz).astimezone(UTC)
    end = dt.datetime(2025, 1, 1, tzinfo=tz).astimezone(UTC)
    while after < end:
        assert trigger.next_fire_time(after) == _croniter_next(trigger.expr, after.astimezone(tz))
        after += dt.timedelta(minutes=1)


def test_cron_semantics() -> None:
    monday = cron("0 9 * * MON")
    nxt = monday.next_fire_time(dt.datetime(2024, 3, 30, 12, tzinfo=UTC))  # a Saturday
    assert nxt == dt.datetime(2024, 4, 1, 9, tzinfo=UTC)
    assert nxt is not None and nxt.weekday() == 0
    sunday0, sunday7 = cron("0 0 * * 0"), cron("0 0 * * 7")
    after = dt.datetime(2024, 3, 27, tzinfo=UTC)
    assert sunday0.next_fire_time(after) == sunday7.next_fire_time(after) == dt.datetime(2024, 3, 31, tzinfo=UTC)
    # day-of-month OR day-of-week
    either = cron("0 0 13 * FRI")
    assert either.next_fire_time(dt.datetime(2024, 3, 9, tzinfo=UTC)) == dt.datetime(2024, 3, 13, tzinfo=UTC)  # 13th
    assert either.next_fire_time(dt.datetime(2024, 3, 13, 1, tzinfo=UTC)) == dt.datetime(2024, 3, 15, tzinfo=UTC)  # Fri
    assert cron("@hourly").next_fire_time(dt.datetime(2024, 1, 1, 0, 30, tzinfo=UTC)) == dt.datetime(
        2024, 1, 1, 1, tzinfo=UTC
    )


def test_cron_without_tz_uses_the_zone_of_after() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    nxt = cron("30 2 * * *").next_fire_time(dt.datetime(2024, 1, 1, 12, tzinfo=berlin))
    assert nxt == dt.datetime(2024, 1, 2, 2, 30, tzinfo=berlin)
    # with tz, `after` in another zone is converted first
    nxt = cron("30 2 * * *", tz="Europe/Berlin").next_fire_time(dt.datetime(2024, 1, 1, 12, tzinfo=UTC))
    assert nxt == dt.datetime(2024, 1, 2, 1, 30, tzinfo=UTC)


def test_at_is_every_day_at_that_time() -> None:
    trigger = at("07:05")
    first = trigger.next_fire_time(dt.datetime(2024, 5, 1, 8, tzinfo=UTC))
    assert first == dt.datetime(2024, 5, 2, 7, 5, tzinfo=UTC)
    assert trigger.next_fire_time(first) == dt.datetime(2024, 5, 3, 7, 5, tzinfo=UTC)
    for bad in ("7", "24:00", "12:60", "noon"):
        with pytest.raises(ValueError, match="HH:MM"):
            at(bad)


def test_interval_is_anchored_and_does_not_drift() -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    trigger = IntervalTrigger(seconds=0.1, start_at=start)
    t = start
    for _ in range(10_000):
        nxt = trigger.next_fire_time(t)
        assert nxt is not None
        t = nxt
    assert t == start + dt.timedelta(seconds=1000)
    # asked late, it answers the next point on the grid, not "late + interval"
    assert trigger.next_fire_time(start + dt.timedelta(seconds=5.05)) == start + dt.timedelta(seconds=5.1)
    assert every(seconds=5).next_fire_time(start) == start + dt.timedelta(seconds=5)
    assert every(minutes=2).seconds == 120


def test_once() -> None:
    when = dt.datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert OnceTrigger(when).next_fire_time(when - dt.timedelta(seconds=1)) == when
    assert OnceTrigger(when).next_fire_time(when) is None


def test_bad_triggers() -> None:
    with pytest.raises(ValueError, match="invalid cron expression"):
        cron("61 * * * *")
    with pytest.raises(ValueError, match="invalid cron expression"):
        cron("* * *")
    with pytest.raises(ValueError, match="positive"):
        every(seconds=0)
    with pytest.raises(ValueError, match="aware"):
        cron("* * * * *").next_fire_time(dt.datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="unknown time zone"):
        cron("* * * * *", tz="Mars/Olympus")
