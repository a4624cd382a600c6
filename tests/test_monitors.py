"""MetricsCollector on a workflow and a scheduler, get_scheduler_metrics, JSON and Prometheus exports."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from pytest_orchestrator import RetryPolicy
from pytest_orchestrator import Workflow
from pytest_orchestrator.monitors import MetricsCollector
from pytest_orchestrator.monitors import get_scheduler_metrics
from pytest_orchestrator.schedule import FakeClock
from pytest_orchestrator.schedule import Scheduler
from pytest_orchestrator.schedule import every
from pytest_orchestrator.schedule.clock import settle


def _workflow() -> Workflow:
    calls = {"flaky": 0}

    def flaky() -> int:
        calls["flaky"] += 1
        if calls["flaky"] < 2:
            raise ValueError("first time")
        return 1

    wf = Workflow("w", fail_fast=False, max_concurrency=2)
    wf.add_task("slow", lambda: time.sleep(0.05))
    wf.add_task("fast", lambda: None)
    wf.add_task(
        "flaky", flaky, dependencies=["slow", "fast"], retry_policy=RetryPolicy(max_attempts=2, initial_delay=0)
    )
    wf.add_task("bad", lambda: 1 / 0)
    wf.add_task("after_bad", lambda: None, dependencies=["bad"])
    return wf


def test_collector_on_a_workflow() -> None:
    wf = _workflow()
    collector = MetricsCollector().attach(wf)
    with pytest.raises(Exception, match="bad"):
        asyncio.run(wf.run())
    data = collector.to_dict()
    assert data["counts"] == {"completed": 3, "failed": 1, "skipped": 1, "cancelled": 0}
    assert data["retries"] == {"total": 1, "tasks": {"flaky": 1}}
    assert data["durations"]["tasks"]["slow"]["max"] >= 0.05
    assert data["durations"]["overall"]["max"] == data["durations"]["tasks"]["slow"]["max"]
    assert set(data["queue_wait"]["tasks"]) == {"slow", "fast", "flaky", "bad"}
    assert 1 <= data["concurrency"]["max"] <= 2
    assert data["concurrency"]["timeline"][-1][1] == 0
    assert data["critical_path"] == ["slow", "flaky"]
    assert json.loads(collector.to_json()) == data


def test_prometheus_text_parses() -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    wf = _workflow()
    collector = MetricsCollector().attach(wf)
    with pytest.raises(Exception, match="bad"):
        asyncio.run(wf.run())
    families = {f.name: f for f in parser.text_string_to_metric_families(collector.to_prometheus())}
    tasks = families["orchestrate_tasks"]
    assert {(s.labels["status"], s.value) for s in tasks.samples} >= {("completed", 3.0), ("failed", 1.0)}
    assert families["orchestrate_task_duration_seconds"].type == "summary"
    metrics = get_scheduler_metrics()
    from pytest_orchestrator.monitors import scheduler_text

    names = {f.name for f in parser.text_string_to_metric_families(scheduler_text(metrics))}
    assert {"orchestrate_scheduler_runs", "orchestrate_scheduler_jobs", "orchestrate_scheduler_lag_seconds"} <= names


def test_scheduler_metrics_are_live_and_follow_the_last_started() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    collector = MetricsCollector().attach(scheduler)

    async def boom() -> None:
        raise RuntimeError("no")

    async def fine() -> None:
        return None

    async def main() -> None:
        scheduler.schedule(fine, every(seconds=1), name="fine")
        scheduler.schedule(boom, every(seconds=2), name="boom", max_runs=1)
        serving = asyncio.create_task(scheduler.serve())
        await settle()
        await clock.advance(4)
        metrics = get_scheduler_metrics()  # the one started most recently
        assert metrics["runs"] == 5
        assert metrics["failures"] == 1
        assert metrics["jobs"] == {"scheduled": 1, "running": 0, "finished": 1, "cancelled": 0}
        assert set(metrics["next_fire_times"]) == {"fine"}
        assert metrics["lag"]["max"] == 0.0
        scheduler.stop()
        await serving

    asyncio.run(main())
    assert get_scheduler_metrics(scheduler)["running"] is False
    jobs = collector.to_dict()["jobs"]
    assert jobs["fine"]["counts"]["completed"] == 4
    assert jobs["boom"]["counts"]["failed"] == 1
