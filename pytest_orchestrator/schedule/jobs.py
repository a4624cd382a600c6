"""What the scheduler keeps about a job (``Job``, ``JobStatus``, ``RunRecord``) and the events it emits.

Scheduler listeners receive ``JobStarted``, then ``JobFinished`` for each run, and ``JobSkipped`` for a fire time
that did not run (``overlap="skip"`` while a run was going, or a misfire under ``misfire="skip"``). Engine events
of the workflows that jobs run are forwarded to the same listeners.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
from typing import Any

from pytest_orchestrator.core.workflow import TaskStatus


__all__ = [
    "Job",
    "JobEvent",
    "JobFinished",
    "JobSkipped",
    "JobStarted",
    "JobStatus",
    "MISFIRE_POLICIES",
    "OVERLAP_POLICIES",
    "RunRecord",
]

MISFIRE_POLICIES = ("run_once", "skip")
OVERLAP_POLICIES = ("skip", "queue", "allow")
#: runs remembered per job
HISTORY = 100


class JobStatus(enum.StrEnum):
    """Where a job is: waiting for its next fire time, running, done for good (``finished``) or cancelled."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a job (or one fire time that did not run: ``status`` SKIPPED with a ``reason``)."""

    job_id: str
    due: dt.datetime
    status: TaskStatus
    started: dt.datetime | None = None
    finished: dt.datetime | None = None
    duration: float = 0.0
    lag: float = 0.0
    error: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "due": self.due.isoformat(),
            "status": self.status.value,
            "started": self.started.isoformat() if self.started else None,
            "finished": self.finished.isoformat() if self.finished else None,
            "duration": self.duration,
            "lag": self.lag,
            "error": self.error,
            "reason": self.reason,
        }


@dataclasses.dataclass(eq=False)
class Job:
    """A scheduled job, kept up to date by its scheduler (``Scheduler.get_job`` returns the live object).

    ``runs`` counts finished runs, ``failures`` the failed ones, ``skipped`` the fire times that did not run.
    """

    id: str
    name: str
    trigger: Any
    target: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    max_runs: int | None = None
    misfire: str = "run_once"
    overlap: str = "skip"
    status: JobStatus = JobStatus.SCHEDULED
    runs: int = 0
    failures: int = 0
    skipped: int = 0
    running: int = 0
    last_error: str | None = None
    last_exception: BaseException | None = dataclasses.field(default=None, repr=False)
    last_result: Any = dataclasses.field(default=None, repr=False)
    last_fire_time: dt.datetime | None = None
    next_fire_time: dt.datetime | None = None
    history: collections.deque[RunRecord] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=HISTORY), repr=False
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "trigger": repr(self.trigger),
            "target": self.target,
            "status": self.status.value,
            "runs": self.runs,
            "failures": self.failures,
            "skipped": self.skipped,
            "running": self.running,
            "last_error": self.last_error,
            "last_fire_time": self.last_fire_time.isoformat() if self.last_fire_time else None,
            "next_fire_time": self.next_fire_time.isoformat() if self.next_fire_time else None,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class JobEvent:
    job_id: str
    job: str
    #: wall-clock time of the event, seconds since the epoch
    time: float


@dataclasses.dataclass(frozen=True, slots=True)
class JobStarted(JobEvent):
    due: dt.datetime
    lag: float


@dataclasses.dataclass(frozen=True, slots=True)
class JobFinished(JobEvent):
    record: RunRecord


@dataclasses.dataclass(frozen=True, slots=True)
class JobSkipped(JobEvent):
    record: RunRecord
