"""A scripts run: a plan as a workflow on the core engine, driven by :class:`~.driver.RunDriver`.

One task per script, at most ``jobs`` at once. A task's action runs :func:`~pytest_orchestrator.runners.run_script`
in a worker thread; the script's retries and timeout are applied by ``run_script`` itself (so the engine gets no
retry policy and no timeout). Outcomes map to the engine as follows:

- passed -> the task completes with the script's ``ScriptResult``;
- failed, timed out, could not run -> the action raises ``ScriptFailedError``: the task fails, its dependents
  are skipped, independent branches run on (unless ``fail_fast``);
- skipped (exit status 77, or ``skip`` in the config) -> the action raises ``SkipTask``: the task ends SKIPPED,
  and the engine's trigger rules skip its dependents ("dependency 'x' was skipped").

Every ``ScriptResult`` is kept in ``ScriptsRun.results`` as its script finishes (a skipped or failed task has
no value), for the progress lines, the log files and the report.

Cancellation (``--fail-fast``, Ctrl-C): the engine cancels the running actions; each sets its script's cancel
event, which kills the script's process group, and waits for that before the run ends.

With ``--executor dask://HOST:PORT`` (``RunOptions.executor``) the cluster is connected to before anything runs
(:mod:`.cluster`) and each script's ``run_script`` runs on a Dask worker instead of a local thread
(``ClusterSession.run_killable``): the script is a subprocess of that worker, killed with its process group there
on timeout or cancellation; its result comes back to write the log and the report here. The driver turns Ctrl-C
into ``RunReport.interrupted``: the run folder still gets its ``summary.json``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from collections.abc import Sequence
import concurrent.futures
import hashlib
import os
import sys
import threading
from typing import Any

from pytest_orchestrator.core import events as ev
from pytest_orchestrator.core.graph import critical_path
from pytest_orchestrator.core.graph import topological_order
from pytest_orchestrator.core.workflow import SkipTask
from pytest_orchestrator.core.workflow import Task
from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.errors import StateError
from pytest_orchestrator.errors import StepError
from pytest_orchestrator.execution.cluster import ClusterExecutor
from pytest_orchestrator.execution.cluster import ClusterSession
from pytest_orchestrator.execution.cluster import active_session
from pytest_orchestrator.orchestrator.cluster import open_cluster
from pytest_orchestrator.orchestrator.driver import ItemProgress
from pytest_orchestrator.orchestrator.driver import RunDriver
from pytest_orchestrator.orchestrator.driver import RunKind
from pytest_orchestrator.orchestrator.driver import RunListener
from pytest_orchestrator.orchestrator.options import CONFIG_SKIP_REASON
from pytest_orchestrator.orchestrator.options import RunOptions
from pytest_orchestrator.orchestrator.options import effective_limits
from pytest_orchestrator.orchestrator.options import script_outcome
from pytest_orchestrator.orchestrator.plan import Plan
from pytest_orchestrator.orchestrator.plan import ScriptSpec
from pytest_orchestrator.orchestrator.plan import display_path
from pytest_orchestrator.orchestrator.state import open_state
from pytest_orchestrator.reporting.runfolder import DEFAULT_RUNS_DIR
from pytest_orchestrator.reporting.runfolder import RunFolder
from pytest_orchestrator.reporting.runfolder import new_run_id
from pytest_orchestrator.reporting.runfolder import previous_durations
from pytest_orchestrator.reporting.summary import STDERR_TAIL_LINES
from pytest_orchestrator.reporting.summary import RunReport
from pytest_orchestrator.reporting.summary import ScriptOutcome
from pytest_orchestrator.runners import ScriptResult
from pytest_orchestrator.runners import run_script


__all__ = ["ScriptFailedError", "ScriptsRun", "run_plan"]


class ScriptFailedError(StepError):
    """A script failed, timed out or could not be run (after its retries). ``.result`` is its ``ScriptResult``."""


def run_plan(plan: Plan, options: RunOptions | None = None, *, listeners: Sequence[RunListener] = ()) -> RunReport:
    """Run a valid plan and write its run folder; Ctrl-C ends it with ``RunReport.interrupted`` set.

    ``listeners`` hear the run start and end (see :class:`~.driver.RunListener`). Raises ``ValueError`` if the
    plan has problems, ``OSError`` if the run folder cannot be created, ``ConcurrencyError`` if the cluster of
    ``options.executor`` cannot be reached (before anything runs).
    """
    if plan.problems:
        raise ValueError("the plan has problems:\n" + "\n".join(plan.problems))
    options = options or RunOptions()
    if isinstance(options.executor, str):
        executor, threads = open_cluster(options.executor)
        try:
            return _run_plan(plan, options, listeners, executor, threads)
        finally:
            executor.shutdown()
    if options.executor is not None:
        return _run_plan(plan, options, listeners, options.executor, options.executor.connect())
    return _run_plan(plan, options, listeners, None, None)


def _run_plan(
    plan: Plan,
    options: RunOptions,
    listeners: Sequence[RunListener],
    executor: ClusterExecutor | None,
    cluster_threads: int | None,
) -> RunReport:
    stream = options.stream if options.stream is not None else sys.stderr
    state = open_state(workflow_name(plan), enabled=options.state, resume=options.resume, err=stream)
    if isinstance(state, str):
        raise StateError(state)
    folder_id = (state.folder_id() if state is not None else None) or new_run_id()
    folder = RunFolder(options.runs_dir if options.runs_dir is not None else DEFAULT_RUNS_DIR, folder_id)
    kind = ScriptsRun(plan, options, folder, executor=executor, cluster_threads=cluster_threads)
    driver = RunDriver(
        kind.build_workflow(),
        kind,
        folder=folder,
        stream=stream,
        quiet=options.quiet,
        listeners=listeners,
        state=state,
    )
    return driver.run()


def workflow_name(plan: Plan) -> str:
    """The name a scripts folder's runs go by in the state store (one per folder: resume finds its own runs)."""
    return f"scripts:{plan.root.resolve()}"


def _script_fingerprint(spec: ScriptSpec) -> str:
    """A script's identity for resume: its content and its settings (a changed script runs again)."""
    try:
        content = hashlib.blake2b(spec.path.read_bytes(), digest_size=8).hexdigest()
    except OSError:
        content = "unreadable"
    return f"{content}|{sorted(spec.settings.items(), key=lambda kv: kv[0])!r}"


async def _wait_through_cancellation(future: asyncio.Future[Any]) -> None:
    """Wait for ``future`` even if this task is cancelled again meanwhile (the kill is already under way)."""
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            continue


def _tail(result: ScriptResult, lines: int = STDERR_TAIL_LINES) -> list[str]:
    text = result.stderr if result.stderr.strip() else result.stdout
    return [line for line in text.splitlines() if line.strip()][-lines:]


class ScriptsRun(RunKind):
    """A plan as a workflow for the :class:`~.driver.RunDriver`: the worker threads, the results and the logs."""

    def __init__(
        self,
        plan: Plan,
        options: RunOptions,
        folder: RunFolder,
        *,
        executor: ClusterExecutor | None = None,
        cluster_threads: int | None = None,
    ) -> None:
        self.plan = plan
        self.options = options
        #: the cluster the scripts run on (``--executor``), or None: local threads
        self.executor = executor
        # on a cluster, as many scripts at once as it has worker threads unless -j says
        self.jobs = options.jobs or cluster_threads or options.effective_jobs
        self.runs_dir = folder.base
        self.folder = folder
        #: every script that ran, by name, stored as it finishes
        self.results: dict[str, ScriptResult] = {}
        self.logs: dict[str, str] = {}
        self.cancel_events: list[threading.Event] = []
        self.cwd = str(options.cwd) if options.cwd is not None else None
        self.env = {
            "ORCHESTRATE_RUN_ID": folder.run_id,
            "ORCHESTRATE_RUN_DIR": str(folder.path.absolute()),
            **(options.env or {}),
        }
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None

    # -- the workflow ----------------------------------------------------------------------------------------
    def build_workflow(self) -> Workflow:
        wf = Workflow(
            workflow_name(self.plan),
            fail_fast=self.options.fail_fast,
            max_concurrency=self.jobs,
            executor=self.executor,
        )
        remembered = previous_durations(self.runs_dir, list(self.plan.scripts))
        for name, spec in self.plan.scripts.items():
            metadata: dict[str, Any] = {"path": str(spec.path), "fingerprint": _script_fingerprint(spec)}
            if name in remembered:
                metadata["estimated_duration"] = remembered[name]
            wf.add_task(
                name,
                self._action(spec),
                dependencies=spec.depends,
                tags=(spec.settings["stage"],) if spec.settings.get("stage") else (),
                metadata=metadata,
            )
        return wf

    def _action(self, spec: ScriptSpec) -> Callable[[], Any]:
        if spec.settings.get("skip"):

            async def skip_by_configuration() -> None:
                raise SkipTask(CONFIG_SKIP_REASON)

            return skip_by_configuration

        async def run_one_script() -> ScriptResult:
            session = active_session() if self.executor is not None else None
            if session is not None:
                result = await self._execute_on(session, spec)
            else:
                assert self.pool is not None
                cancel = threading.Event()
                self.cancel_events.append(cancel)
                future = asyncio.get_running_loop().run_in_executor(self.pool, self._execute, spec, cancel)
                try:
                    result = await asyncio.shield(future)
                except asyncio.CancelledError:
                    cancel.set()  # kills the script's process group
                    await _wait_through_cancellation(future)
                    raise
            if result.status == "skipped":
                raise SkipTask(result.skip_reason)
            if result.status in ("failed", "timeout", "error"):
                raise ScriptFailedError(
                    f"{spec.name}: {result.error or result.status}", step_name=spec.name, result=result
                )
            return result

        return run_one_script

    def _execute(self, spec: ScriptSpec, cancel: threading.Event) -> ScriptResult:
        """Run one script (in a worker thread), keep its result and write its log."""
        timeout, policy = effective_limits(spec, self.options)
        config = {**spec.settings, "timeout": timeout, "retry": policy}
        result = run_script(spec.path, config=config, timeout=timeout, env=self.env, cwd=self.cwd, cancel_event=cancel)
        self._keep(spec, result)
        return result

    async def _execute_on(self, session: ClusterSession, spec: ScriptSpec) -> ScriptResult:
        """Run one script on a worker of the cluster (killed there when this is cancelled); keep it and its log.

        Its path and working folder are sent as absolute paths: the same on every host (a shared file system)."""
        timeout, policy = effective_limits(spec, self.options)
        config = {**spec.settings, "timeout": timeout, "retry": policy}
        result: ScriptResult = await session.run_killable(
            run_script,
            (spec.path.absolute(),),
            {"config": config, "timeout": timeout, "env": self.env, "cwd": self.cwd or os.getcwd()},
            name=spec.name,
        )
        self._keep(spec, result)
        return result

    def _keep(self, spec: ScriptSpec, result: ScriptResult) -> None:
        self.results[spec.name] = result
        try:
            self.logs[spec.name] = self.folder.write_log(spec.name, result, cwd=self.cwd)
        except OSError:
            pass

    # -- the worker threads ----------------------------------------------------------------------------------
    def open(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(self.jobs, thread_name_prefix="orchestrate-script")

    def close(self, interrupted: bool) -> None:
        for event in self.cancel_events:  # after a second Ctrl-C some scripts may still run
            if interrupted:
                event.set()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    # -- live progress ---------------------------------------------------------------------------------------
    def progress(self, event: ev.TaskFinished | ev.TaskSkipped | ev.TaskCancelled, run: RunDriver) -> ItemProgress:
        if isinstance(event, ev.TaskCancelled):
            return ItemProgress("cancelled", detail=run.cancel_reason(event.reason))
        result = self.results.get(event.task)
        if result is not None and self.options.verbose and not self.options.quiet:
            self._print_output(event.task, result)
        if result is not None:
            detail = result.skip_reason if result.status == "skipped" else result.error
            if result.attempts > 1:
                detail = f"{result.attempts} attempts" + (f", {detail}" if detail else "")
            return ItemProgress(result.status, result.execution_time, detail)
        if isinstance(event, ev.TaskSkipped):  # by configuration, or because of a dependency
            return ItemProgress("skipped", detail=event.reason or "skipped")
        return ItemProgress("error", detail=event.result.error)

    def _print_output(self, name: str, result: ScriptResult) -> None:
        """``-v``: the script's output, indented, just above its progress line."""
        stream = self.options.stream if self.options.stream is not None else sys.stderr
        lines = [f"    | {line}" for text in (result.stdout, result.stderr) for line in text.splitlines()]
        if not lines:
            return
        try:
            stream.write(f"    output of {name}:\n" + "\n".join(lines) + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass

    # -- the report ------------------------------------------------------------------------------------------
    def report(self, run: RunDriver) -> RunReport:
        report = RunReport(
            run_id=run.run_id,
            root=str(self.plan.root),
            jobs=self.jobs,
            fail_fast=self.options.fail_fast,
            started_at=run.started_at,
            elapsed=run.elapsed,
            interrupted=run.interrupted,
            run_folder=display_path(self.folder.path.absolute()),
        )
        tasks = run.workflow.tasks
        report.scripts = [self._outcome(name, tasks[name], run) for name in topological_order(self.plan.graph)]
        ran = {s.name: s.duration for s in report.scripts if s.attempts}
        if ran:  # the longest chain of scripts that ran, by their durations
            graph = {name: [d for d in deps if d in ran] for name, deps in self.plan.graph.items() if name in ran}
            report.critical_path = critical_path(graph, ran)
        return report

    def _outcome(self, name: str, task: Task, run: RunDriver) -> ScriptOutcome:
        """One script's line of the report: from its ``ScriptResult`` if it ran, else from its engine task."""
        outcome = script_outcome(self.plan.scripts[name], self.options)
        reason = task.result.reason if task.result is not None else None
        result = self.results.get(name)
        if result is None:
            if task.status is TaskStatus.SKIPPED:  # by configuration, or because of a dependency
                outcome.status, outcome.reason = "skipped", reason or "skipped"
                if task.result is not None:
                    outcome.started_at, outcome.finished_at = task.result.started_at, task.result.finished_at
            elif task.status is TaskStatus.CANCELLED:
                outcome.status, outcome.reason = "cancelled", run.cancel_reason(reason)
            else:
                outcome.status, outcome.reason = "not_run", "interrupted" if run.interrupted else "not run"
            return outcome
        outcome.status = result.status
        outcome.exit_code = result.exit_code
        outcome.attempts = result.attempts
        outcome.duration = result.execution_time
        outcome.started_at = result.start_time
        outcome.finished_at = result.end_time
        outcome.command = list(result.command)
        outcome.attempt_errors = list(result.attempt_errors)
        outcome.log = self.logs.get(name)
        if result.status == "skipped" and result.error == "cancelled":  # killed by --fail-fast / Ctrl-C
            outcome.status, outcome.reason = "cancelled", run.cancel_reason(reason)
        elif result.status == "skipped":
            outcome.reason = result.skip_reason
        elif result.status != "passed":
            outcome.reason = result.error or result.status
            outcome.stderr_tail = _tail(result)
        return outcome
