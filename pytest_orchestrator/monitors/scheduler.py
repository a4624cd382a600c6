"""``get_scheduler_metrics()``: the live numbers of a scheduler (by default the one started most recently)."""

from __future__ import annotations

from typing import Any

from pytest_orchestrator.schedule.jobs import JobStatus
from pytest_orchestrator.schedule.scheduler import Scheduler
from pytest_orchestrator.schedule.scheduler import last_started


__all__ = ["get_scheduler_metrics"]


def get_scheduler_metrics(scheduler: Scheduler | None = None) -> dict[str, Any]:
    """The live numbers of ``scheduler``: ``runs``, ``failures``, ``jobs`` (by state), ``next_fire_times``, ``lag``.

    Without an argument: the scheduler started most recently in this process. If none was ever started, the
    numbers are zeros and ``"scheduler"`` is ``None`` (so a metrics endpoint can answer before the start).
    """
    if scheduler is None:
        scheduler = last_started()
    if scheduler is None:
        return {
            "scheduler": None,
            "running": False,
            "started_at": None,
            "runs": 0,
            "failures": 0,
            "skipped": 0,
            "jobs": dict.fromkeys((s.value for s in JobStatus), 0),
            "active_runs": 0,
            "next_fire_times": {},
            "lag": {"last": 0.0, "mean": 0.0, "max": 0.0, "samples": 0},
        }
    if not isinstance(scheduler, Scheduler):
        raise TypeError(f"get_scheduler_metrics() takes a Scheduler or None, got {type(scheduler).__name__}")
    return {"scheduler": repr(scheduler), **scheduler.metrics()}
