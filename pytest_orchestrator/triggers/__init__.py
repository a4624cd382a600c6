"""Event triggers: run a function, a workflow or a pipeline when files change or the program emits an event.

Both are triggers for ``Scheduler.schedule``; the job receives the change set or the payload as its first argument.

Usage::

    from pytest_orchestrator.schedule import Scheduler
    from pytest_orchestrator.triggers import EventTrigger, FileTrigger, emit

    with Scheduler() as scheduler:
        scheduler.schedule(rebuild, FileTrigger("src", patterns=("*.py",)))
        scheduler.schedule("deploy.yaml", EventTrigger("release"))
        emit("release", {"version": "1.2"})
"""

from __future__ import annotations

from pytest_orchestrator.triggers.events import EventTrigger
from pytest_orchestrator.triggers.events import emit
from pytest_orchestrator.triggers.files import ChangeSet
from pytest_orchestrator.triggers.files import FileChange
from pytest_orchestrator.triggers.files import FileTrigger


__all__ = ["ChangeSet", "EventTrigger", "FileChange", "FileTrigger", "emit"]
