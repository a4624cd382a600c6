"""Jobs that survive a restart: schema 2 of the state file, persistence, restore, misfire, broken targets.

Real SQLite files in tmp_path; a fake clock moves time, so no test sleeps for real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterator
import datetime as dt
import importlib
from pathlib import Path
import sqlite3
import sys
import textwrap
from types import ModuleType
import uuid

import pytest

from pytest_orchestrator import Workflow
from pytest_orchestrator.core.clock import SYSTEM_CLOCK
from pytest_orchestrator.core.clock import Clock as CoreClock
from pytest_orchestrator.core.clock import VirtualClock
from pytest_orchestrator.schedule import Clock
from pytest_orchestrator.schedule import FakeClock
from pytest_orchestrator.schedule import Scheduler
from pytest_orchestrator.schedule import SystemClock
from pytest_orchestrator.schedule import cron
from pytest_orchestrator.schedule import every
from pytest_orchestrator.schedule.clock import settle
from pytest_orchestrator.state import SCHEMA_VERSION
from pytest_orchestrator.state import StateStore
from pytest_orchestrator.state.jobs import JobTable
from pytest_orchestrator.state.store import _SCHEMA_V1


UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, 0, 0, tzinfo=UTC)


@pytest.fixture
def jobs_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """An importable module of job functions (a fresh name per test)."""
    name = f"sched_jobs_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            CALLS = []

            async def tick(*args, **kwargs):
                CALLS.append((args, kwargs))

            async def other():
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)


def serve_for(scheduler: Scheduler, clock: FakeClock, body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        serving = asyncio.create_task(scheduler.serve())
        await settle()
        try:
            await body()
        finally:
            scheduler.stop(wait=True)
            await serving

    asyncio.run(main())


# -- schema -------------------------------------------------------------------------------------------------------
def test_a_version_1_file_is_migrated_in_place_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_V1)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute(
        "INSERT INTO runs (run_id, name, kind, status, started_at, finished_at) "
        "VALUES ('r1', 'etl', 'workflow', 'completed', 1.0, 2.0)"
    )
    conn.execute("INSERT INTO tasks (run_id, task, status, attempts) VALUES ('r1', 'load', 'completed', 1)")
    conn.commit()
    conn.close()

    store = StateStore(path)
    runs = store.list_runs()
    assert [(r.run_id, r.name, r.status, r.counts) for r in runs] == [("r1", "etl", "completed", {"completed": 1})]
    version = store.connect().execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    tables = {row[0] for row in store.connect().execute("SELECT name FROM sqlite_master WHERE type='table'")}
    store.close()
    assert version == str(SCHEMA_VERSION)
    assert {"jobs", "job_runs", "runs", "tasks"} <= tables
    assert JobTable(StateStore(path)).load() == []


# -- restart ------------------------------------------------------------------------------------------------------
def test_jobs_come_back_after_a_restart_and_missed_runs_follow_misfire(tmp_path: Path, jobs_module: ModuleType) -> None:
    path = tmp_path / "state.db"
    clock = FakeClock(T0)
    first = Scheduler(state=StateStore(path), clock=clock, tz="UTC")
    tick_id = first.schedule(jobs_module.tick, every(seconds=60), name="tick", args=(1,), kwargs={"k": "v"})
    five_id = first.schedule(jobs_module.tick, cron("*/5 * * * *"), name="five", misfire="skip")

    async def two_minutes() -> None:
        await clock.advance(130)

    serve_for(first, clock, two_minutes)
    assert first.get_job(tick_id).runs == 2
    assert len(jobs_module.CALLS) == 2

    rows = {row.name: row for row in JobTable(StateStore(path)).load()}
    assert rows["tick"].target == f"{jobs_module.__name__}:tick"
    assert rows["tick"].target_kind == "import"
    assert rows["tick"].trigger == {"kind": "interval", "seconds": 60, "start_at": T0.isoformat()}
    assert rows["tick"].next_fire_time == (T0 + dt.timedelta(minutes=3)).isoformat()
    assert rows["five"].trigger == {"kind": "cron", "expr": "*/5 * * * *", "tz": None}
    assert (rows["tick"].runs, rows["tick"].status) == (2, "scheduled")

    # ten minutes pass while no scheduler runs; a new one on the same file has the jobs back
    async def stopped() -> None:
        await clock.advance(600)

    asyncio.run(stopped())
    second = Scheduler(state=StateStore(path), clock=clock, tz="UTC")
    jobs = {job.name: job for job in second.list_jobs()}
    assert set(jobs) == {"tick", "five"}
    tick, five = jobs["tick"], jobs["five"]
    assert (tick.id, five.id) == (tick_id, five_id)
    assert (tick.runs, tick.args, tick.kwargs) == (2, (1,), {"k": "v"})
    assert tick.next_fire_time == T0 + dt.timedelta(minutes=3)
    assert five.next_fire_time == T0 + dt.timedelta(minutes=5)
    assert len(tick.history) == 2 and all(r.status.value == "completed" for r in tick.history)
    # scheduling it again (as a program does at each start) takes the restored job's place: no duplicate
    assert second.schedule(jobs_module.tick, every(seconds=60), name="tick", args=(1,), kwargs={"k": "v"}) == tick_id
    assert len(second.list_jobs()) == 2
    assert second.get_job(tick_id).next_fire_time == T0 + dt.timedelta(minutes=3)

    async def settle_down() -> None:
        await clock.advance(0)

    serve_for(second, clock, settle_down)
    now = clock.now()  # 00:12:10
    tick, five = second.get_job(tick_id), second.get_job(five_id)
    # run_once: one catch-up run for the seven missed minutes, then back on the minute grid of the first start
    assert tick.runs == 3
    assert tick.next_fire_time == T0 + dt.timedelta(minutes=13)
    # skip: the missed 00:05 and 00:10 are dropped (one skip record), none runs
    assert (five.runs, five.skipped) == (0, 1)
    assert five.next_fire_time == T0 + dt.timedelta(minutes=15)
    assert len(jobs_module.CALLS) == 3
    assert now == T0 + dt.timedelta(minutes=12, seconds=10)

    third = Scheduler(state=StateStore(path), clock=clock, tz="UTC")
    assert {(j.name, j.runs, j.skipped) for j in third.list_jobs()} == {("tick", 3, 0), ("five", 0, 1)}
    assert [r.status.value for r in third.get_job(five_id).history] == ["skipped"]
    assert (third.get_job(five_id).history[-1].reason or "").startswith("misfire")


def test_a_job_whose_target_no_longer_imports_is_listed_as_broken(tmp_path: Path, jobs_module: ModuleType) -> None:
    path = tmp_path / "state.db"
    clock = FakeClock(T0)
    first = Scheduler(state=path, clock=clock, tz="UTC")
    job_id = first.schedule(jobs_module.tick, every(seconds=60), name="tick")
    first.schedule(jobs_module.other, every(seconds=60), name="fine")
    serve_for(first, clock, lambda: clock.advance(61))

    Path(jobs_module.__file__ or "").write_text("async def other():\n    pass\n")  # the function is gone
    sys.modules.pop(jobs_module.__name__)
    importlib.invalidate_caches()
    with pytest.warns(RuntimeWarning, match=r"'tick' \(job-1\).*cannot run.*has no attribute 'tick'") as caught:
        second = Scheduler(state=path, clock=clock, tz="UTC")
    assert len([w for w in caught if "cannot run" in str(w.message)]) == 1
    broken = second.list_jobs(status="broken")
    assert [j.id for j in broken] == [job_id]
    assert "has no attribute 'tick'" in (broken[0].last_error or "")
    assert broken[0].next_fire_time is None
    with pytest.raises(ValueError, match="broken: cannot restore"):
        second.run_now(job_id)
    assert second.metrics()["jobs"]["broken"] == 1
    serve_for(second, clock, lambda: clock.advance(120))  # it never runs; the file keeps it as it was
    assert second.get_job(job_id).runs == 1
    row = {r.job_id: r for r in JobTable(StateStore(path)).load()}[job_id]
    assert (row.status, row.target) == ("scheduled", f"{jobs_module.__name__}:tick")
    # still there on the next start; removing it deletes it from the file
    with pytest.warns(RuntimeWarning, match="cannot run"):
        third = Scheduler(state=path, clock=clock, tz="UTC")
    third.remove(job_id)
    assert [r.name for r in JobTable(StateStore(path)).load()] == ["fine"]


def test_what_cannot_be_stored_is_refused_when_scheduled(tmp_path: Path, jobs_module: ModuleType) -> None:
    s = Scheduler(state=tmp_path / "state.db", tz="UTC")

    def local() -> None:
        pass

    with pytest.raises(ValueError, match="importable by name"):
        s.schedule(lambda: None, every(seconds=1))
    with pytest.raises(ValueError, match="importable by name"):
        s.schedule(local, every(seconds=1))
    with pytest.raises(ValueError, match="schedule the function that builds it"):
        s.schedule(Workflow("w"), every(seconds=1))
    with pytest.raises(ValueError, match="JSON data"):
        s.schedule(jobs_module.tick, every(seconds=1), args=(object(),))
    assert s.list_jobs() == []


def test_stop_with_grace_cancels_runs_that_outlast_it() -> None:
    async def forever() -> None:
        await asyncio.sleep(3600)

    s = Scheduler(tz="UTC")
    s.start()
    job = s.schedule(forever, every(seconds=0.05))
    t0 = dt.datetime.now(UTC)
    while s.get_job(job).running == 0 and (dt.datetime.now(UTC) - t0).total_seconds() < 5:
        pass
    s.stop(wait=True, grace=0.1)
    assert (dt.datetime.now(UTC) - t0).total_seconds() < 3
    assert s.get_job(job).history[-1].status.value == "cancelled"
    with pytest.raises(ValueError, match="grace"):
        s.stop(grace=-1)


# -- one clock ----------------------------------------------------------------------------------------------------
def test_one_clock_protocol_for_the_engine_and_the_scheduler() -> None:
    assert Clock is CoreClock and isinstance(SYSTEM_CLOCK, SystemClock)
    fake, virtual = FakeClock(T0), VirtualClock(wall=T0.timestamp())
    for clock in (SYSTEM_CLOCK, fake, virtual):
        assert isinstance(clock, Clock)
        assert clock.now().tzinfo is not None
        assert clock.now().timestamp() == pytest.approx(clock.time(), abs=1.0)
    assert fake.time() == T0.timestamp() and virtual.now() == T0
    virtual.advance(90)
    assert virtual.now() == T0 + dt.timedelta(seconds=90)
