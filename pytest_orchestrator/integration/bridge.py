"""``OrchestratorBridge``: submit workflows and pipelines from any thread, and ask about them later.

Runs execute on one background asyncio event loop in a daemon thread; every method is thread-safe (a lock
guards the registry of runs). A run's status is ``pending`` (submitted, not started), ``running``,
``completed``, ``failed`` (a task failed, the workflow timed out or could not start) or ``cancelled``.

Usage::

    with OrchestratorBridge() as bridge:
        run_id = bridge.submit("pipeline.yaml")      # or a Workflow, or a PipelineConfig
        bridge.status(run_id)                         # "running"
        outcome = bridge.result(run_id, timeout=600)  # the summary, plus results {task: value}
        outcome["run_id"] == run_id                    # one id for the run
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import os
import threading
import time
from typing import Any
import uuid

from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.errors import TaskFailedError
from pytest_orchestrator.errors import WorkflowError
from pytest_orchestrator.pipelines.config import PipelineConfig


__all__ = ["RUN_STATUSES", "OrchestratorBridge"]

RUN_STATUSES = ("pending", "running", "completed", "failed", "cancelled")


@dataclasses.dataclass
class _Run:
    run_id: str
    workflow: Workflow
    submitted_at: float
    status: str = "pending"
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    cancel_requested: bool = False
    future: concurrent.futures.Future[None] | None = None

    def info(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "name": self.workflow.name,
            "status": self.status,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
        }


class OrchestratorBridge:
    """One facade for other systems to run workflows: ``submit``, ``status``, ``result``, ``cancel``,
    ``list_runs``. ``close()`` (or leaving the ``with`` block) cancels what still runs and stops the loop."""

    def __init__(self, name: str = "orchestrator-bridge") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- the loop --------------------------------------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        # called with the lock held
        if self._closed:
            raise WorkflowError("the bridge is closed")
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=serve, name=self.name, daemon=True)
            thread.start()
            ready.wait()
            self._loop, self._thread = loop, thread
        return self._loop

    # -- the API ---------------------------------------------------------------------------------------------
    def submit(self, work: Workflow | PipelineConfig | str | os.PathLike[str]) -> str:
        """Start ``work`` (a Workflow, a PipelineConfig or a pipeline YAML path) in the background; return its
        run id. An invalid pipeline raises ``ConfigError`` here; a workflow that cannot start fails its run."""
        workflow = self._workflow(work)
        run = _Run(uuid.uuid4().hex[:12], workflow, time.time())
        with self._lock:
            if any(r.workflow is workflow and r.status in ("pending", "running") for r in self._runs.values()):
                raise WorkflowError(f"workflow {workflow.name!r} is already submitted and not finished")
            loop = self._ensure_loop()
            self._runs[run.run_id] = run
            run.future = asyncio.run_coroutine_threadsafe(self._execute(run), loop)
        return run.run_id

    @staticmethod
    def _workflow(work: Any) -> Workflow:
        if isinstance(work, Workflow):
            return work
        if isinstance(work, PipelineConfig | str | os.PathLike):
            from pytest_orchestrator.pipelines.run import create_pipeline_workflow

            return create_pipeline_workflow(work)
        raise TypeError(f"expected a Workflow, a PipelineConfig or a pipeline file, got {type(work).__name__}")

    async def _execute(self, run: _Run) -> None:
        with self._lock:
            if run.cancel_requested:
                run.status = "cancelled"
                run.finished_at = run.finished_at or time.time()
                return
            run.status, run.started_at = "running", time.time()
        status, error = "completed", None
        try:
            await run.workflow.run(run_id=run.run_id)  # the workflow's run id is the one submit() returned
        except TaskFailedError as exc:
            status, error = "failed", exc.message
        except OrchestratorTimeoutError as exc:
            status, error = "failed", exc.message
        except asyncio.CancelledError:
            status, error = "cancelled", "cancelled"
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        with self._lock:
            if run.cancel_requested:
                status = "cancelled"
            elif status == "completed" and not run.workflow.get_summary()["success"]:
                status = "failed"
            run.status, run.error, run.finished_at = status, error, time.time()

    def _get(self, run_id: str) -> _Run:
        with self._lock:
            run = self._runs.get(run_id)
            known = list(self._runs)
        if run is None:
            from pytest_orchestrator.core.graph import close_matches

            hints = close_matches(str(run_id), known)
            raise WorkflowError(
                f"unknown run id {run_id!r}" + (f"; did you mean {hints[0]!r}?" if hints else ""), run_id=run_id
            )
        return run

    def status(self, run_id: str) -> str:
        """``pending``, ``running``, ``completed``, ``failed`` or ``cancelled``."""
        run = self._get(run_id)
        with self._lock:
            return run.status

    def result(self, run_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the run to finish (at most ``timeout`` seconds) and return its workflow summary, plus
        ``status``, ``error`` and ``results`` (``{task: value}``, ``None`` where a task did not complete).
        ``run_id`` is the id ``submit()`` returned. Raises ``TimeoutError`` if it is still running after
        ``timeout``."""
        run = self._get(run_id)
        assert run.future is not None
        try:
            run.future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"run {run_id} did not finish within {timeout:g} s") from None
        with self._lock:
            summary = run.workflow.get_summary()
            results = {
                name: task.result.value if task.result is not None and task.status is TaskStatus.COMPLETED else None
                for name, task in run.workflow.tasks.items()
            }
            summary.update(run_id=run.run_id, status=run.status, error=run.error, results=results)
        return summary

    def cancel(self, run_id: str) -> bool:
        """Stop a pending or running run (its running tasks are cancelled, their processes killed); False if it
        had already finished. ``result()`` then returns what completed."""
        run = self._get(run_id)
        with self._lock:
            if run.status not in ("pending", "running"):
                return False
            run.cancel_requested = True
            if run.status == "pending":  # _execute sees the request and does not start it
                run.status, run.finished_at = "cancelled", time.time()
            loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(run.workflow.cancel, "cancelled through the bridge")
        return True

    def list_runs(self) -> list[dict[str, Any]]:
        """Every run, oldest first: ``run_id, name, status, submitted_at, started_at, finished_at, error``."""
        with self._lock:
            return [run.info() for run in self._runs.values()]

    def close(self, timeout: float = 10.0) -> None:
        """Cancel unfinished runs, wait for them (at most ``timeout`` seconds) and stop the background loop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
            unfinished = [r for r in self._runs.values() if r.status in ("pending", "running")]
        for run in unfinished:
            self.cancel(run.run_id)
        deadline = time.monotonic() + timeout
        for run in unfinished:
            if run.future is not None:
                try:
                    run.future.result(max(0.0, deadline - time.monotonic()))
                except concurrent.futures.TimeoutError:
                    pass
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(max(0.1, deadline - time.monotonic()))
            if not thread.is_alive():
                loop.close()

    def __enter__(self) -> OrchestratorBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
