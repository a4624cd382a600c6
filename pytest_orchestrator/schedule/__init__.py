"""Time-based jobs: the ``Scheduler``, its triggers and its clock (the original module's ``scheduler``).

- :mod:`.triggers`: ``CronTrigger``, ``IntervalTrigger``, ``OnceTrigger`` and ``cron``/``every``/``at``; the
  ``Trigger`` and ``EventSource`` protocols (``pytest_orchestrator.triggers`` has the file and event sources);
- :mod:`.scheduler`: ``Scheduler`` (``start``/``stop``, ``serve``, ``schedule``/``cancel``/``run_now``);
- :mod:`.jobs`: ``Job``, ``JobStatus``, ``RunRecord`` and the job events;
- :mod:`.targets`: how a function, a workflow, a pipeline file or a scripts folder is run;
- :mod:`.clock`: ``SystemClock`` and ``FakeClock`` (tests).

Usage::

    from pytest_orchestrator.schedule import Scheduler, cron, every

    with Scheduler() as scheduler:
        scheduler.schedule("pipelines/nightly.yaml", cron("0 2 * * *"), name="nightly")
        scheduler.schedule(check_health, every(seconds=30))
        ...
"""

from __future__ import annotations

from pytest_orchestrator.schedule.clock import Clock
from pytest_orchestrator.schedule.clock import FakeClock
from pytest_orchestrator.schedule.clock import SystemClock
from pytest_orchestrator.schedule.jobs import Job
from pytest_orchestrator.schedule.jobs import JobFinished
from pytest_orchestrator.schedule.jobs import JobSkipped
from pytest_orchestrator.schedule.jobs import JobStarted
from pytest_orchestrator.schedule.jobs import JobStatus
from pytest_orchestrator.schedule.jobs import RunRecord
from pytest_orchestrator.schedule.scheduler import Scheduler
from pytest_orchestrator.schedule.scheduler import last_started
from pytest_orchestrator.schedule.triggers import CronTrigger
from pytest_orchestrator.schedule.triggers import EventSource
from pytest_orchestrator.schedule.triggers import IntervalTrigger
from pytest_orchestrator.schedule.triggers import OnceTrigger
from pytest_orchestrator.schedule.triggers import Trigger
from pytest_orchestrator.schedule.triggers import at
from pytest_orchestrator.schedule.triggers import cron
from pytest_orchestrator.schedule.triggers import every


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
