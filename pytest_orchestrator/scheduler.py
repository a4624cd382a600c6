"""The original module's name for :mod:`pytest_orchestrator.schedule`."""

from __future__ import annotations

from pytest_orchestrator.schedule import Clock as Clock
from pytest_orchestrator.schedule import CronTrigger as CronTrigger
from pytest_orchestrator.schedule import EventSource as EventSource
from pytest_orchestrator.schedule import FakeClock as FakeClock
from pytest_orchestrator.schedule import IntervalTrigger as IntervalTrigger
from pytest_orchestrator.schedule import Job as Job
from pytest_orchestrator.schedule import JobFinished as JobFinished
from pytest_orchestrator.schedule import JobSkipped as JobSkipped
from pytest_orchestrator.schedule import JobStarted as JobStarted
from pytest_orchestrator.schedule import JobStatus as JobStatus
from pytest_orchestrator.schedule import OnceTrigger as OnceTrigger
from pytest_orchestrator.schedule import RunRecord as RunRecord
from pytest_orchestrator.schedule import Scheduler as Scheduler
from pytest_orchestrator.schedule import SystemClock as SystemClock
from pytest_orchestrator.schedule import Trigger as Trigger
from pytest_orchestrator.schedule import at as at
from pytest_orchestrator.schedule import cron as cron
from pytest_orchestrator.schedule import every as every
from pytest_orchestrator.schedule import last_started as last_started


__all__ = [
    "Clock",
    "CronTrigger",
    "EventSource",
    "FakeClock",
    "IntervalTrigger",
    "Job",
    "JobFinished",
    "JobSkipped",
    "JobStarted",
    "JobStatus",
    "OnceTrigger",
    "RunRecord",
    "Scheduler",
    "SystemClock",
    "Trigger",
    "at",
    "cron",
    "every",
    "last_started",
]
