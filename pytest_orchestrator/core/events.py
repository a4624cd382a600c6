"""Lifecycle events of a workflow run, and the listener protocol.

A listener is any callable taking one event. ``Workflow.add_listener(fn)`` subscribes it; the engine emits, in
order: ``WorkflowStarted``, then per task ``TaskStarted`` (each attempt), ``TaskRetrying``, and exactly one of
``TaskFinished`` (completed or failed), ``TaskSkipped`` or ``TaskCancelled``; last ``WorkflowFinished``.
State stores, metrics and reports are listeners. A listener that raises is logged and never breaks the run.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import logging
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol


if TYPE_CHECKING:
    from pytest_orchestrator.core.workflow import TaskResult

__all__ = [
    "Event",
    "Listener",
    "TaskCancelled",
    "TaskFinished",
    "TaskRetrying",
    "TaskSkipped",
    "TaskStarted",
    "WorkflowFinished",
    "WorkflowStarted",
    "emit",
    "progress_adapter",
]

log = logging.getLogger("pytest_orchestrator")


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    workflow: str
    time: float


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowStarted(Event):
    total_tasks: int
    run_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class TaskStarted(Event):
    task: str
    attempt: int


@dataclasses.dataclass(frozen=True, slots=True)
class TaskRetrying(Event):
    task: str
    attempt: int
    delay: float
    error: str


@dataclasses.dataclass(frozen=True, slots=True)
class TaskFinished(Event):
    """A task completed or failed (after its last attempt); ``result.status`` says which."""

    task: str
    result: TaskResult


@dataclasses.dataclass(frozen=True, slots=True)
class TaskSkipped(Event):
    task: str
    reason: str
    result: TaskResult


@dataclasses.dataclass(frozen=True, slots=True)
class TaskCancelled(Event):
    task: str
    reason: str
    result: TaskResult


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowFinished(Event):
    success: bool
    summary: dict[str, Any]


class Listener(Protocol):
    def __call__(self, event: Event, /) -> None: ...


def emit(listeners: list[Callable[[Event], Any]], event: Event) -> None:
    """Deliver ``event`` to every listener; a listener that raises is logged, never propagated."""
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            log.exception("workflow listener %r raised on %s; ignored", listener, type(event).__name__)


def progress_adapter(callback: Callable[[str, str, dict[str, Any]], Any]) -> Callable[[Event], None]:
    """Turn a ``progress_callback(task_name, status, details)`` into a listener."""

    def listener(event: Event) -> None:
        if isinstance(event, TaskStarted):
            callback(event.task, "running", {"attempt": event.attempt})
        elif isinstance(event, TaskRetrying):
            callback(event.task, "retrying", {"attempt": event.attempt, "delay": event.delay, "error": event.error})
        elif isinstance(event, TaskFinished):
            r = event.result
            details = {"execution_time": r.execution_time, "attempts": r.attempts}
            if r.success:
                callback(event.task, "completed", details)
            else:
                callback(event.task, "failed", {**details, "error": r.error})
        elif isinstance(event, TaskSkipped):
            callback(event.task, "skipped", {"reason": event.reason})
        elif isinstance(event, TaskCancelled):
            callback(event.task, "cancelled", {"reason": event.reason})
        elif isinstance(event, WorkflowStarted):
            callback("workflow", "started", {"total_tasks": event.total_tasks, "run_id": event.run_id})
        elif isinstance(event, WorkflowFinished):
            callback("workflow", "completed", dict(event.summary))

    return listener
