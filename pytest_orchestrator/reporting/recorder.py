"""``ReportRecorder``: a workflow listener that keeps what a report needs and a ``TaskResult`` does not.

A ``TaskResult`` knows when a task started and finished and how many attempts it took, not when each attempt
started and ended nor why the earlier ones failed. The recorder hears every ``TaskStarted``/``TaskRetrying``/
``TaskFinished``/``TaskSkipped``/``TaskCancelled`` event and keeps one record per attempt::

    recorder = ReportRecorder.attach(wf)
    await wf.run()
    report = report_from_workflow(wf)      # finds the recorder among wf's listeners
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from typing import Any

from pytest_orchestrator.core import events as ev
from pytest_orchestrator.errors import OrchestratorTimeoutError


if TYPE_CHECKING:
    from pytest_orchestrator.core.workflow import TaskResult
    from pytest_orchestrator.core.workflow import Workflow

__all__ = ["ReportRecorder", "workflow_items"]

# the engine's words for an expired task timeout (``task 'x' timed out after 2 s``)
_TIMED_OUT = re.compile(r"\btimed out after\b")


def _outcome(result: TaskResult) -> str:
    status = result.status.value
    if status == "completed":
        return "passed"
    if status == "failed":
        timed_out = isinstance(result.exception, OrchestratorTimeoutError) or _TIMED_OUT.search(result.error or "")
        return "timeout" if timed_out else "failed"
    return status  # skipped (SkipTask raised by the action) or cancelled


class ReportRecorder:
    """Records each attempt of each task of a workflow run: ``attempts[task] = [{number, start, end, outcome,
    error}]``, plus the run's id and start and end times. Attach it before the run."""

    def __init__(self) -> None:
        self.attempts: dict[str, list[dict[str, Any]]] = {}
        self.run_id: str | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        #: when each task settled (for a skipped or cancelled task: when that was decided)
        self.settled: dict[str, float] = {}

    @classmethod
    def attach(cls, wf: Workflow) -> ReportRecorder:
        """A new recorder subscribed to ``wf``."""
        recorder = cls()
        wf.add_listener(recorder)
        return recorder

    def _open(self, task: str) -> dict[str, Any] | None:
        tries = self.attempts.get(task)
        return tries[-1] if tries and tries[-1]["end"] is None else None

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.TaskStarted):
            self.attempts.setdefault(event.task, []).append(
                {"number": event.attempt, "start": event.time, "end": None, "outcome": None, "error": None}
            )
        elif isinstance(event, ev.TaskRetrying):
            attempt = self._open(event.task)
            if attempt is not None:
                attempt.update(
                    end=event.time,
                    outcome="timeout" if _TIMED_OUT.search(event.error) else "failed",
                    error=event.error,
                )
        elif isinstance(event, ev.TaskFinished | ev.TaskSkipped | ev.TaskCancelled):
            self.settled[event.task] = event.time
            attempt = self._open(event.task)
            if attempt is not None:
                result = event.result
                error = result.error if result.status.value == "failed" else None
                attempt.update(end=event.time, outcome=_outcome(result), error=error)
        elif isinstance(event, ev.WorkflowStarted):
            self.attempts.clear()
            self.settled.clear()
            self.run_id, self.started_at, self.finished_at = event.run_id, event.time, None
        elif isinstance(event, ev.WorkflowFinished):
            self.finished_at = event.time


def _command_tail(value: Any) -> str | None:
    """The output of a command task (a process result: anything with ``stdout``/``stderr`` strings)."""
    parts = [getattr(value, stream, None) for stream in ("stdout", "stderr")]
    text = "\n".join(p.rstrip("\n") for p in parts if isinstance(p, str) and p.strip())
    return text or None


def workflow_items(wf: Workflow, recorder: ReportRecorder | None = None) -> list[dict[str, Any]]:
    """``build_report`` items for the tasks of ``wf``'s last run, in definition order."""
    items = []
    for name, task in wf.tasks.items():
        r = task.result
        status = task.status.value
        recorded = recorder.attempts.get(name) if recorder is not None else None
        attempts: list[dict[str, Any]] = []
        if recorded:
            attempts = [dict(a, outcome=a["outcome"] or "cancelled") for a in recorded]
        elif r is not None and r.attempts:
            # without a recorder: earlier attempts are known to have failed, but not when
            attempts = [
                {"number": n, "start": None, "end": None, "outcome": "failed", "error": None}
                for n in range(1, r.attempts)
            ]
            attempts.append(
                {
                    "number": r.attempts,
                    "start": r.started_at,
                    "end": r.finished_at,
                    "outcome": _outcome(r),
                    "error": r.error if status == "failed" else None,
                }
            )
        unrun = status in ("skipped", "cancelled") and not attempts
        items.append(
            {
                "id": name,
                "name": name,
                "kind": str(task.metadata.get("kind") or "task"),
                "status": status,
                "duration": r.execution_time if r is not None and not unrun else 0.0,
                "started_at": r.started_at if r is not None else None,
                "finished_at": (r.finished_at if r is not None else None)
                or (recorder.settled.get(name) if recorder is not None else None),
                "attempts": attempts,
                "stage": task.metadata.get("stage"),
                "dependencies": list(task.dependencies),
                "skip_cause": r.reason if r is not None and status in ("skipped", "cancelled") else None,
                "error": r.error if r is not None else None,
                "output_tail": _command_tail(r.value) if r is not None else None,
                "tags": list(task.tags),
            }
        )
    return items
