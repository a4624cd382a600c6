"""``StoreRecorder``: a workflow run recorded in a ``StateStore`` (the engine's ``RunRecorder``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any

from pytest_orchestrator.core.graph import topological_order
from pytest_orchestrator.core.recording import carry_over
from pytest_orchestrator.core.recording import task_fingerprint


if TYPE_CHECKING:
    from pytest_orchestrator.core.workflow import TaskResult
    from pytest_orchestrator.core.workflow import Workflow
    from pytest_orchestrator.state.store import StateStore

__all__ = ["StoreRecorder"]


class StoreRecorder:
    """Records one run of a workflow: its tasks' final rows, their failed attempts, and the run's outcome.

    Made by ``StateStore.open_run``. Rows are buffered; ``flush`` commits them, and the engine flushes before it
    starts a task one of whose dependencies is buffered (``needs_flush``), so a completed task is committed before
    any dependent starts.
    """

    def __init__(
        self,
        store: StateStore,
        workflow: Workflow,
        resume: bool | str,
        *,
        kind: str = "workflow",
        run_id: str | None = None,
    ) -> None:
        self.store = store
        described: dict[Any, Any] = {}
        self.fingerprints = {name: task_fingerprint(task, described) for name, task in workflow.tasks.items()}
        self.resumed_from: str | None = None
        self.carried: dict[str, Any] = {}
        self.rerun_reasons: dict[str, str] = {}
        self.message: str | None = None
        stored = {}
        if resume:
            self.resumed_from, self.message = store.resumable(workflow.name, resume)
            if self.resumed_from is not None:
                graph = workflow.graph()
                stored = store.tasks(self.resumed_from)
                need = {n: t.metadata.get("state_value", True) is not False for n, t in workflow.tasks.items()}
                self.carried, self.rerun_reasons = carry_over(
                    topological_order(graph), graph, self.fingerprints, stored, need_values=need
                )
                self.message = (
                    f"resuming run {self.resumed_from} of {workflow.name!r}: {len(self.carried)} of "
                    f"{len(workflow.tasks)} tasks carried over"
                )
        self.run_id = store.begin_run(
            workflow.name,
            kind=kind,
            resumed_from=self.resumed_from,
            run_id=run_id,
            carried={name: stored[name] for name in self.carried},
        )
        #: finished tasks whose rows are not made yet, and their names
        self._finished: list[tuple[str, TaskResult]] = []
        self._buffered: set[str] = set()

    def attempt_failed(self, name: str, number: int, error: str) -> None:
        self.store.record_attempt(self.run_id, name, number, "failed", error=error)

    def task_finished(self, name: str, result: TaskResult, *, carried_over: bool = False) -> None:
        if carried_over:
            return  # copied into this run when it began
        # the final attempt is the task's own row; failed attempts before it were recorded by attempt_failed. The
        # rows are made at the next flush, all at once.
        self._finished.append((name, result))
        self._buffered.add(name)

    def needs_flush(self, dependencies: Iterable[str]) -> bool:
        buffered = self._buffered
        return bool(buffered) and not buffered.isdisjoint(dependencies)

    def _make_rows(self) -> None:
        if self._finished:
            self.store.record_results(self.run_id, self._finished, self.fingerprints)
            self._finished = []
        self._buffered.clear()

    def flush(self) -> None:
        self._make_rows()
        self.store.flush(self.run_id)

    def finish(self, status: str, summary: dict[str, Any]) -> None:
        self._make_rows()
        self.store.finish_run(self.run_id, status, summary)
