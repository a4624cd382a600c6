"""The one run driver of ``orchestrate run``: a built workflow in, a run folder, live progress and a report out.

A scripts run (:mod:`.execute`) and a pipeline run (:mod:`.pipeline`) are two ways of building the workflow; the
:class:`RunDriver` drives either the same way:

1. tells each :class:`RunListener` the run is starting (``run_started(workflow)``: a listener attaches what it
   needs, e.g. the GitHub Actions output of a pipeline run);
2. creates the run folder (``.orchestrate/runs/<run_id>/``), starts the :class:`RunKind`'s resources;
3. runs the workflow, printing ``[ 2/5] PASS lint (0.12s)`` lines as its events arrive; Ctrl-C and SIGTERM end the
   run as *interrupted* (running items are cancelled, their processes killed), a workflow timeout is kept as the
   report's ``timeout_error``, failing items are reported per item. A kind with an ``interrupt_grace`` (a
   pipeline: its ``when: always`` stages) has its cleanup items run after the interrupt, for at most that many
   seconds (:meth:`Workflow.interrupt`); then, or at a second signal, they are killed too;
4. asks the kind for the report, writes ``summary.json`` (even after Ctrl-C) and hands the report to every
   listener (``run_finished(report)``).

The kind says what only it knows: how a finished, skipped or cancelled item is described in the progress line
(:meth:`RunKind.progress`) and how the report is built (:meth:`RunKind.report`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
import dataclasses
import signal
import time
from typing import TYPE_CHECKING
from typing import Protocol
from typing import TextIO

from pytest_orchestrator.core import events as ev
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.errors import TaskFailedError
from pytest_orchestrator.reporting.runfolder import new_run_id
from pytest_orchestrator.reporting.summary import ProgressPrinter


if TYPE_CHECKING:
    from pytest_orchestrator.core.workflow import Workflow
    from pytest_orchestrator.orchestrator.state import RunState
    from pytest_orchestrator.reporting.runfolder import RunFolder
    from pytest_orchestrator.reporting.summary import RunReport

__all__ = ["ItemProgress", "RunDriver", "RunKind", "RunListener"]

#: the engine's reason for tasks cancelled because the run itself was cancelled (Ctrl-C, SIGTERM)
RUN_CANCELLED_REASON = "workflow run was cancelled"
#: the reason given to tasks cancelled by an interrupt that lets cleanup run (a kind with ``interrupt_grace``)
RUN_INTERRUPTED_REASON = "workflow run was interrupted"


@dataclasses.dataclass(frozen=True)
class ItemProgress:
    """How one item's final progress line reads: ``[ 3/5] <STATUS> <name> (<duration>, <detail>)``."""

    status: str
    duration: float | None = None
    detail: str | None = None


class RunListener(Protocol):
    """Something a run reports to besides the terminal (e.g. GitHub Actions): told when a run starts and ends."""

    def run_started(self, workflow: Workflow) -> None:
        """Before the workflow runs: attach callbacks or event listeners to it."""

    def run_finished(self, report: RunReport) -> None:
        """After ``summary.json`` was written."""


class RunKind:
    """What a kind of run (scripts, pipeline) tells the driver. Subclasses implement :meth:`progress` and
    :meth:`report`; :meth:`open` and :meth:`close` bracket the workflow's run (default: nothing to do)."""

    #: seconds the cleanup items (``trigger_rule="all_done"``) get to run after Ctrl-C or SIGTERM; ``None``: the
    #: run stops at once, cleanup included
    interrupt_grace: float | None = None

    def open(self) -> None:
        """Before the workflow runs (e.g. start a thread pool)."""

    def close(self, interrupted: bool) -> None:
        """After it ran, even when interrupted (e.g. kill what still runs, stop the pool)."""

    def progress(self, event: ev.TaskFinished | ev.TaskSkipped | ev.TaskCancelled, run: RunDriver) -> ItemProgress:
        """The final progress line of the item of ``event``."""
        raise NotImplementedError

    def report(self, run: RunDriver) -> RunReport:
        """The report of the settled (or interrupted) run."""
        raise NotImplementedError


class RunDriver:
    """Runs ``workflow`` once for ``kind``, with progress lines on ``stream`` and the run folder ``folder``.

    After :meth:`run`: ``interrupted`` (Ctrl-C or SIGTERM), ``timeout_error`` (the workflow's own timeout expired),
    ``started_at`` (wall clock) and ``elapsed`` (seconds).
    """

    def __init__(
        self,
        workflow: Workflow,
        kind: RunKind,
        *,
        folder: RunFolder,
        stream: TextIO | None,
        quiet: bool = False,
        listeners: Sequence[RunListener] = (),
        state: RunState | None = None,
    ) -> None:
        self.workflow = workflow
        #: the run's durable state (``orchestrate run`` records by default), and its id there
        self.state = state
        self.state_run_id: str | None = None
        self.kind = kind
        self.folder = folder
        self.listeners = list(listeners)
        self.progress = ProgressPrinter(len(workflow.tasks), stream, enabled=not quiet)
        self.interrupted = False
        #: the signal that interrupted the run (``SIGINT`` or ``SIGTERM``), if one did
        self.signal: int | None = None
        self.timeout_error: str | None = None
        #: why the items still running when the interrupt's grace period ran out were killed
        self.grace_expired: str | None = None
        self.started_at = 0.0
        self.elapsed = 0.0
        workflow.add_listener(self._on_event)

    @property
    def run_id(self) -> str:
        return self.folder.run_id

    def cancel_reason(self, reason: str | None) -> str:
        """Why an item was cancelled, in report words: ``interrupted`` when the run itself was (or why a cleanup item
        was killed after the interrupt)."""
        if reason is not None and reason == self.grace_expired:
            return reason
        return "interrupted" if self.interrupted or reason == RUN_CANCELLED_REASON else reason or "cancelled"

    # -- live progress ---------------------------------------------------------------------------------------
    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.TaskStarted):
            if event.attempt == 1:
                self.progress.started(event.task)
        elif isinstance(event, ev.TaskRetrying):
            self.progress.retrying(event.task, event.attempt, event.error, event.delay)
        elif isinstance(event, ev.TaskFinished) and event.result.carried_over:
            assert self.state is not None
            self.progress.finished(event.task, "passed", detail=f"carried over from run {self.state.resumed}")
        elif isinstance(event, ev.TaskFinished | ev.TaskSkipped | ev.TaskCancelled):
            line = self.kind.progress(event, self)
            self.progress.finished(event.task, line.status, duration=line.duration, detail=line.detail)

    # -- the run ---------------------------------------------------------------------------------------------
    def run(self, started: float | None = None) -> RunReport:
        """Run the workflow and write ``summary.json``; Ctrl-C ends it with ``report.interrupted`` set.

        ``started`` (wall clock) defaults to now. Raises ``OSError`` if the run folder cannot be created.
        """
        for listener in self.listeners:
            listener.run_started(self.workflow)
        self.folder.create()
        self.started_at = time.time() if started is None else started
        t0 = time.perf_counter()
        self.kind.open()
        try:
            asyncio.run(self._main())
        except TaskFailedError:
            pass  # reported per item
        except OrchestratorTimeoutError as exc:
            self.timeout_error = exc.message
        except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM (see _main)
            self.interrupted = True
            self.signal = self.signal or signal.SIGINT
        finally:
            self.kind.close(self.interrupted)
        self.elapsed = time.perf_counter() - t0
        report = self.kind.report(self)
        report.signal = int(self.signal) if self.interrupted and self.signal is not None else None
        self._state_report(report)
        try:
            self.folder.write_summary(report)
        except OSError:
            report.run_folder = None
        for listener in self.listeners:
            listener.run_finished(report)
        return report

    def _state_report(self, report: RunReport) -> None:
        """What state adds to the report: the run's id in the store, and which items were carried over."""
        if self.state is None:
            return
        report.state_run_id = self.state_run_id
        report.resumed_from = self.state.resumed
        tasks = self.workflow.tasks
        for outcome in report.scripts:
            task = tasks.get(outcome.name)
            if task is not None and task.result is not None and task.result.carried_over:
                outcome.carried_over = True
                outcome.status, outcome.reason = "passed", f"carried over from run {self.state.resumed}"

    async def _run_workflow(self) -> None:
        state = self.state
        if state is None:
            await self.workflow.run()
            return
        # items of a scripts or pipeline run hand no values on: a completed one is carried over without its value
        for task in self.workflow.tasks.values():
            task.metadata.setdefault("state_value", False)
        self.workflow.state = state.store
        self.state_run_id = self.run_id if state.resumed is None else new_run_id()
        await self.workflow.run(resume=state.resumed or False, run_id=self.state_run_id)

    async def _run_with_grace(self, grace: float) -> None:
        """Run the workflow; on Ctrl-C or SIGTERM (this task is cancelled), interrupt it so that its cleanup items
        run, for at most ``grace`` seconds; then, or at a second signal, cancel what still runs."""
        work = asyncio.ensure_future(self._run_workflow())
        try:
            await asyncio.shield(work)
            return
        except asyncio.CancelledError:
            if work.done():  # the workflow itself was cancelled, not this run
                raise
        self.interrupted = True
        self.signal = self.signal or signal.SIGINT
        if not self.workflow.interrupt(RUN_INTERRUPTED_REASON):  # the signal came before the workflow started
            work.cancel()
        cleanup = [n for n, t in self.workflow.tasks.items() if t.trigger_rule == "all_done" and t.result is None]
        if cleanup:
            name = signal.Signals(self.signal).name
            self.progress.note(
                f"{name}: running cleanup ({', '.join(cleanup)}) for up to {grace:g} s; signal again to stop now"
            )
        try:
            done, _ = await asyncio.wait([work], timeout=grace)
            why = f"killed: the {grace:g} s grace period after the interrupt ran out"
        except asyncio.CancelledError:  # a second signal
            done, why = set(), "killed: interrupted again"
        if not done:
            self.grace_expired = why
            self.workflow.cancel(why)
            await asyncio.wait([work])
        try:
            work.result()
        except asyncio.CancelledError:
            pass

    def _terminate(self, main_task: asyncio.Task[None]) -> None:
        """SIGTERM: end the run as Ctrl-C does, and remember the signal (exit status 143)."""
        self.signal = signal.SIGTERM
        main_task.cancel()

    async def _main(self) -> None:
        """Run the workflow; SIGTERM is treated like Ctrl-C (running items are killed, the summary written)."""
        loop = asyncio.get_running_loop()
        main_task = asyncio.current_task()
        assert main_task is not None
        try:
            if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
                raise ValueError("someone else handles SIGTERM")
            loop.add_signal_handler(signal.SIGTERM, self._terminate, main_task)
        except (AttributeError, NotImplementedError, RuntimeError, ValueError):  # not the main thread, not POSIX
            await self._run_workflow()
            return
        grace = self.kind.interrupt_grace
        try:
            if grace is None:
                await self._run_workflow()
            else:
                await self._run_with_grace(grace)
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
