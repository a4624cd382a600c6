"""The scheduler: fire times, overlap, misfire, failures, cancel, run_now, targets (fake clock: no real sleeping)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from collections.abc import Callable
import datetime as dt
from pathlib import Path
import time
from typing import Any

import pytest

from pytest_orchestrator import Workflow
from pytest_orchestrator.errors import StateError
from pytest_orchestrator.schedule import FakeClock
from pytest_orchestrator.schedule import JobStatus
from pytest_orchestrator.schedule import OnceTrigger
from pytest_orchestrator.schedule import Scheduler
from pytest_orchestrator.schedule import cron
from pytest_orchestrator.schedule import every
from pytest_orchestrator.schedule.clock import settle


UTC = dt.UTC
T0 = dt.datetime(2024, 3, 30, 12, 0, tzinfo=UTC)


def simulate(body: Callable[[Scheduler, FakeClock], Awaitable[None]], **kwargs: Any) -> Scheduler:
    """Run ``body(scheduler, clock)`` while the scheduler serves on a fake clock; stop it afterwards."""
    clock = FakeClock(T0)
    scheduler = Scheduler(clock=clock, tz="UTC", **kwargs)

    async def main() -> None:
        serving = asyncio.create_task(scheduler.serve())
        await settle()
        try:
            await body(scheduler, clock)
        finally:
            scheduler.stop(wait=False)
            await serving

    asyncio.run(main())
    return scheduler


def test_interval_fires_once_per_interval_anchored_at_start() -> None:
    times: list[dt.datetime] = []
    clock_box: list[FakeClock] = []

    async def tick() -> None:
        times.append(clock_box[0].now())

    async def body(s: Scheduler, clock: FakeClock) -> None:
        clock_box.append(clock)
        s.schedule(tick, every(seconds=0.2))
        await clock.advance(1.0)

    simulate(body)
    assert times == [T0 + dt.timedelta(seconds=0.2 * k) for k in range(1, 6)]


def test_interval_does_not_drift_with_slow_runs() -> None:
    starts: list[float] = []

    async def body(s: Scheduler, clock: FakeClock) -> None:
        async def slow() -> None:
            starts.append(clock.monotonic())
            await clock.sleep(0.3)  # shorter than the interval, so every run happens

        s.schedule(slow, every(seconds=1), overlap="allow")
        await clock.advance(5.0)

    simulate(body)
    assert starts == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0])


def test_scheduler_sleeps_until_due_instead_of_polling() -> None:
    async def body(s: Scheduler, clock: FakeClock) -> None:
        s.schedule(lambda: None, cron("0 2 * * *"))
        await settle()
        assert clock.sleepers == 1  # one sleep, until tomorrow 02:00
        job = s.list_jobs()[0]
        assert job.next_fire_time == dt.datetime(2024, 3, 31, 2, 0, tzinfo=UTC)

    simulate(body)


def test_failing_job_records_error_and_scheduler_keeps_running() -> None:
    ok: list[int] = []

    async def boom() -> None:
        raise RuntimeError("disk full")

    async def fine() -> None:
        ok.append(1)

    async def body(s: Scheduler, clock: FakeClock) -> None:
        bad = s.schedule(boom, every(seconds=1), name="bad")
        s.schedule(fine, every(seconds=1))
        await clock.advance(3)
        job = s.get_job(bad)
        assert (job.name, job.runs, job.failures) == ("bad", 3, 3)
        assert job.last_error == "RuntimeError: disk full"
        assert job.status is JobStatus.SCHEDULED
        assert [r.status.value for r in job.history] == ["failed"] * 3

    simulate(body)
    assert len(ok) == 3


@pytest.mark.parametrize(("overlap", "expected_starts", "skipped"), [("skip", 2, 3), ("queue", 5, 0), ("allow", 5, 0)])
def test_overlap(overlap: str, expected_starts: int, skipped: int) -> None:
    starts: list[float] = []
    max_running: list[int] = []

    async def body(s: Scheduler, clock: FakeClock) -> None:
        running = 0

        async def long() -> None:
            nonlocal running
            starts.append(clock.monotonic())
            running += 1
            max_running.append(running)
            await clock.sleep(2.5)
            running -= 1

        job_id = s.schedule(long, every(seconds=1), overlap=overlap, max_runs=None if overlap != "queue" else 5)
        await clock.advance(5.0)
        assert s.get_job(job_id).skipped == skipped

    simulate(body)
    if overlap == "queue":  # fires at 1..5 queue behind each other: starts at 1, 3.5, 6, ... within 5 s only two
        assert starts == pytest.approx([1.0, 3.5])
        assert max(max_running) == 1
    elif overlap == "skip":
        assert starts == pytest.approx([1.0, 4.0])
        assert max(max_running) == 1
    else:
        assert len(starts) == expected_starts
        assert max(max_running) == 3


def test_max_runs_finishes_the_job() -> None:
    async def body(s: Scheduler, clock: FakeClock) -> None:
        job_id = s.schedule(_noop, every(seconds=1), max_runs=2)
        await clock.advance(10)
        job = s.get_job(job_id)
        assert (job.runs, job.status, job.next_fire_time) == (2, JobStatus.FINISHED, None)
        assert s.list_jobs("finished") == [job]

    simulate(body)


async def _noop() -> None:
    return None


def test_once_trigger_fires_once() -> None:
    async def body(s: Scheduler, clock: FakeClock) -> None:
        job_id = s.schedule(_noop, OnceTrigger(T0 + dt.timedelta(seconds=30)))
        await clock.advance(29)
        assert s.get_job(job_id).runs == 0
        await clock.advance(100)
        assert s.get_job(job_id).runs == 1
        assert s.get_job(job_id).status is JobStatus.FINISHED

    simulate(body)


def test_cancel_stops_a_job_and_not_the_others() -> None:
    async def body(s: Scheduler, clock: FakeClock) -> None:
        async def forever() -> None:
            await clock.sleep(1e9)

        a = s.schedule(forever, every(seconds=1))
        b = s.schedule(_noop, every(seconds=1))
        await clock.advance(1.5)
        assert s.get_job(a).status is JobStatus.RUNNING
        assert s.cancel(a) is True
        await settle()
        assert s.get_job(a).status is JobStatus.CANCELLED
        assert s.get_job(a).history[-1].status.value == "cancelled"
        assert s.cancel(a) is False
        await clock.advance(3)
        assert s.get_job(b).runs == 4

    simulate(body)


def test_run_now_fires_immediately_and_keeps_the_schedule() -> None:
    async def body(s: Scheduler, clock: FakeClock) -> None:
        job_id = s.schedule(_noop, cron("0 * * * *"))
        s.run_now(job_id)
        await settle()
        job = s.get_job(job_id)
        assert job.runs == 1
        assert job.next_fire_time == T0 + dt.timedelta(hours=1)

    simulate(body)


def test_misfire_policies() -> None:
    results: dict[str, int] = {}
    for policy in ("run_once", "skip"):

        async def body(s: Scheduler, clock: FakeClock, policy: str = policy) -> None:
            job_id = s.schedule(_noop, every(seconds=1), misfire=policy)
            s._fire_due(clock.now())  # the loop's view at start
            # the loop is blocked for 10 s: the fire time at 1 s is seen 9 s late
            clock._elapsed = 10.0
            s._fire_due(clock.now())
            await settle()
            job = s.get_job(job_id)
            results[policy] = job.runs
            assert job.next_fire_time == T0 + dt.timedelta(seconds=11)

        simulate(body)
    assert results == {"run_once": 1, "skip": 0}


def test_workflow_factory_target_and_listeners() -> None:
    events: list[str] = []

    def factory() -> Workflow:
        wf = Workflow("nightly")
        wf.add_task("a", lambda: 1).add_task("b", lambda a: a + 1, dependencies=["a"])
        return wf

    async def body(s: Scheduler, clock: FakeClock) -> None:
        s.add_listener(lambda e: events.append(type(e).__name__))
        job_id = s.schedule(factory, every(seconds=1))
        await clock.advance(1)
        for _ in range(200):
            if s.get_job(job_id).runs:
                break
            await asyncio.sleep(0.01)
        assert s.get_job(job_id).last_result == {"a": 1, "b": 2}

    simulate(body)
    assert events[0] == "JobStarted"
    assert "WorkflowStarted" in events
    assert "TaskFinished" in events
    assert events[-1] == "JobFinished"


def test_pipeline_and_folder_targets(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    out = tmp_path / "out.txt"
    pipeline.write_text(f"stages:\n  - name: write\n    commands: ['echo $ORCHESTRATE_PAYLOAD > {out}']\n")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "ok.py").write_text("print('fine')\n")
    with Scheduler() as s:
        p = s.schedule(pipeline, every(seconds=3600))
        f = s.schedule(scripts, every(seconds=3600))
        s.run_now(p)
        s.run_now(f)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (s.get_job(p).runs < 1 or s.get_job(f).runs < 1):
            time.sleep(0.05)
    assert s.get_job(p).failures == 0, s.get_job(p).last_error
    assert s.get_job(f).failures == 0, s.get_job(f).last_error
    assert out.exists()
    assert s.get_job(f).last_result == 0


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    s = Scheduler()
    with pytest.raises(ValueError, match="does not exist"):
        s.schedule(tmp_path / "missing.yaml", every(seconds=1))
    with pytest.raises(TypeError, match="next_fire_time"):
        s.schedule(_noop, 5)
    with pytest.raises(ValueError, match="did you mean 'queue'"):
        s.schedule(_noop, every(seconds=1), overlap="queu")
    with pytest.raises(ValueError, match="max_runs"):
        s.schedule(_noop, every(seconds=1), max_runs=0)
    with pytest.raises(KeyError, match="no job"):
        s.get_job("nope")
    with pytest.raises(StateError, match="state store"):
        Scheduler(state=object())


def test_real_time_every_runs_about_five_times_a_second() -> None:
    count = 0

    def tick() -> None:
        nonlocal count
        count += 1

    s = Scheduler()
    s.schedule(tick, every(seconds=0.2))
    with s:
        time.sleep(1.1)
    assert 4 <= count <= 6
    assert s.get_job("job-1").failures == 0


def test_imports_stay_cheap_and_the_original_name_works() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pytest_orchestrator, pytest_orchestrator.scheduler, pytest_orchestrator.triggers, "
        "pytest_orchestrator.monitors, pytest_orchestrator.templates;"
        "print(sorted(m for m in ('croniter', 'watchfiles', 'prometheus_client', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    import pytest_orchestrator.scheduler as original

    assert original.Scheduler is Scheduler
