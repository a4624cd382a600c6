"""The engine's vocabulary, defined once: a task's statuses, which of them are final, the trigger rules and the
ready-queue strategies. A leaf (the standard library only): the scheduler and the pytest plugin read it without
loading the workflow machinery; ``core.workflow`` re-exports every name."""

from __future__ import annotations

import enum


__all__ = ["FINISHED", "STRATEGIES", "TRIGGER_RULES", "TaskStatus"]

#: when a task runs once its dependencies finished (``Task.trigger_rule``); ``DagScheduler`` applies them
TRIGGER_RULES = ("all_success", "all_done", "one_failed")
#: which ready task starts first when they queue (``Workflow(strategy=...)``); ``DagScheduler`` applies them:
#: ``critical_path`` (default) priority, then most work left behind the task; ``priority`` priority, then
#: definition order; ``fifo`` the order in which tasks became ready
STRATEGIES = ("critical_path", "priority", "fifo")


class TaskStatus(enum.StrEnum):
    """Where a task is in its life. The finished states are COMPLETED, FAILED, SKIPPED and CANCELLED."""

    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        """Whether this status is final (one of ``FINISHED``)."""
        return self in FINISHED


#: The finished statuses, defined once. ``TaskStatus`` is a ``StrEnum``, so the plain strings match too
#: (``"failed" in FINISHED``): the scheduler, which works with string outcomes, uses this same set.
FINISHED: frozenset[str] = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED}
)
