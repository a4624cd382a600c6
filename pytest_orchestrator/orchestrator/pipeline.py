"""A pipeline run: ``orchestrate run PIPELINE.yaml`` as a :class:`PipelineWorkflow` driven by the run driver.

It shares what a scripts run has (:class:`~.driver.RunDriver`, ``reporting/runfolder.py``, ``reporting/summary.py``):
the same folder layout (``.orchestrate/runs/<run_id>/logs/<stage>.log`` and ``summary.json``), the same
``[ 2/5] PASS lint`` progress lines on stderr and the same end-of-run summary, one entry per stage. ``summary.json``
keeps the scripts run's keys (its ``scripts`` entries are the stages) and adds ``kind: "pipeline"``, ``pipeline``,
``file``, ``warnings`` (allowed failures), ``timeout_error`` and ``workflow`` (the workflow summary).

``--executor dask://HOST:PORT`` connects to the cluster before anything runs (:mod:`.cluster`; exit status 2 naming
the address if it cannot be reached) and runs each stage on a worker (see ``pipelines/run.py``).

Which CI hosts the run is not known here: output for a CI (GitHub Actions groups, annotations, the job summary) is
a :class:`~.driver.RunListener` the caller gives (the ``orchestrate`` command attaches it on GitHub Actions).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import contextlib
import dataclasses
import os
from pathlib import Path
import sys
from typing import Any
from typing import TextIO

from pytest_orchestrator.core import events as ev
from pytest_orchestrator.core.graph import generations
from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.errors import ConcurrencyError
from pytest_orchestrator.execution.cluster import ClusterExecutor
from pytest_orchestrator.orchestrator.cluster import open_cluster
from pytest_orchestrator.orchestrator.driver import ItemProgress
from pytest_orchestrator.orchestrator.driver import RunDriver
from pytest_orchestrator.orchestrator.driver import RunKind
from pytest_orchestrator.orchestrator.driver import RunListener
from pytest_orchestrator.orchestrator.options import run_parser
from pytest_orchestrator.orchestrator.state import open_state
from pytest_orchestrator.pipelines.config import PipelineConfig
from pytest_orchestrator.pipelines.config import StageConfig
from pytest_orchestrator.pipelines.loader import load_pipeline
from pytest_orchestrator.pipelines.run import PipelineWorkflow
from pytest_orchestrator.pipelines.stages import pytest_command
from pytest_orchestrator.reporting.runfolder import DEFAULT_RUNS_DIR
from pytest_orchestrator.reporting.runfolder import RunFolder
from pytest_orchestrator.reporting.runfolder import new_run_id
from pytest_orchestrator.reporting.runs import finish_run_output
from pytest_orchestrator.reporting.summary import STDERR_TAIL_LINES
from pytest_orchestrator.reporting.summary import RunReport
from pytest_orchestrator.reporting.summary import ScriptOutcome
from pytest_orchestrator.reporting.summary import format_plan
from pytest_orchestrator.reporting.summary import format_summary
from pytest_orchestrator.scripts.errors import ConfigError


__all__ = [
    "PipelineReport",
    "PipelineRun",
    "open_pipeline",
    "pipeline_outcomes",
    "run_pipeline",
    "run_pipeline_file",
    "stage_command",
]


@dataclasses.dataclass
class PipelineReport(RunReport):
    """A :class:`RunReport` whose entries are stages, plus what only a pipeline has."""

    pipeline: str = ""
    file: str | None = None
    #: allowed failures: ``{"stage": name, "error": why}``
    warnings: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: ``PipelineWorkflow.get_summary()``
    workflow: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: set when the pipeline's own timeout expired
    timeout_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(
            kind="pipeline",
            pipeline=self.pipeline,
            file=self.file,
            warnings=list(self.warnings),
            timeout_error=self.timeout_error,
            workflow=self.workflow,
        )
        return data


def stage_command(stage: StageConfig, junit_xml: Path | None = None) -> list[str]:
    """What a stage runs, as a list of command lines (for reports)."""
    if stage.kind == "script":
        return [stage.script or ""]
    if stage.kind == "pytest":
        return pytest_command(stage, junit_xml)
    return list(stage.commands)


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


class PipelineRun(RunKind):
    """A :class:`PipelineConfig` as a workflow for the :class:`~.driver.RunDriver`, and its report.

    ``workflow`` writes its stage logs (and pytest JUnit XML) into ``folder``.
    """

    def __init__(
        self,
        config: PipelineConfig,
        folder: RunFolder,
        *,
        fail_fast: bool | None = None,
        jobs: int | None = None,
        executor: ClusterExecutor | None = None,
    ) -> None:
        self.config = config
        self.folder = folder
        self.workflow = PipelineWorkflow(
            config,
            name=workflow_name(config),
            fail_fast=fail_fast,
            run_dir=folder.path,
            env={"ORCHESTRATE_RUN_ID": folder.run_id},
            max_concurrency=jobs,
            executor=executor,
        )
        for stage in config.stage_list:  # a stage's identity for resume: its whole configuration
            self.workflow.tasks[stage.name].metadata["fingerprint"] = repr(stage)
        self.jobs = jobs or len(config.stage_list)
        #: after Ctrl-C or SIGTERM the ``when: always`` stages run, for at most this many seconds
        self.interrupt_grace = config.interrupt_grace

    # -- live progress ---------------------------------------------------------------------------------------
    def progress(self, event: ev.TaskFinished | ev.TaskSkipped | ev.TaskCancelled, run: RunDriver) -> ItemProgress:
        if isinstance(event, ev.TaskSkipped):
            return ItemProgress("skipped", detail=event.reason)
        if isinstance(event, ev.TaskCancelled):
            return ItemProgress("cancelled", detail=event.reason)
        result = self.workflow.stage_results.get(event.task)
        r = event.result
        detail: str | None
        if result is not None and result.allowed_failure:
            status, detail = "warn", f"allowed failure: {result.error}"
        elif r.status is TaskStatus.COMPLETED:
            status, detail = "passed", result.error if result is not None else None
        else:
            status = "timeout" if result is not None and result.timed_out else "failed"
            detail = result.error if result is not None else r.error
        if r.attempts > 1:
            detail = f"{r.attempts} attempts" + (f", {detail}" if detail else "")
        return ItemProgress(status, r.execution_time, detail)

    # -- the report ------------------------------------------------------------------------------------------
    def _outcome(self, stage: StageConfig, depends: list[str]) -> ScriptOutcome:
        return ScriptOutcome(
            name=stage.name,
            path=self._file(),
            depends=depends,
            timeout=stage.timeout,
            max_attempts=stage.retry + 1,
            retry_delay=stage.retry_delay if stage.retry else 0.0,
            command=stage_command(stage, self.workflow.junit_path(stage)),
        )

    def _file(self) -> str:
        return _display(self.config.path) if self.config.path is not None else "<pipeline>"

    def report(self, run: RunDriver) -> PipelineReport:
        wf = self.workflow
        report = PipelineReport(
            run_id=run.run_id,
            root=self._file(),
            jobs=self.jobs,
            fail_fast=wf.fail_fast,
            started_at=run.started_at,
            elapsed=run.elapsed,
            interrupted=run.interrupted,
            run_folder=_display(self.folder.path.absolute()),
            pipeline=self.config.name,
            file=self._file() if self.config.path is not None else None,
            warnings=wf.warnings,
            timeout_error=run.timeout_error,
        )
        graph = self.config.dependencies()
        for stage in self.config.stage_list:
            report.scripts.append(self._stage_outcome(stage, graph[stage.name], run))
        summary = wf.get_summary()
        report.workflow = summary
        if any(s.attempts for s in report.scripts):
            report.critical_path = list(summary.get("critical_path") or [])
        return report

    def _stage_outcome(self, stage: StageConfig, depends: list[str], run: RunDriver) -> ScriptOutcome:
        wf = self.workflow
        outcome = self._outcome(stage, depends)
        task = wf.tasks[stage.name]
        r = task.result
        result = wf.stage_results.get(stage.name)
        if r is not None:
            outcome.attempts = r.attempts
            outcome.duration = r.execution_time
            outcome.started_at = r.started_at
            outcome.finished_at = r.finished_at
            outcome.reason = r.reason
        outcome.attempt_errors = list(wf.attempt_errors.get(stage.name, ()))
        outcome.log = wf.logs.get(stage.name)
        if result is not None and result.results:
            outcome.exit_code = result.results[-1].returncode
        if task.status is TaskStatus.COMPLETED:
            outcome.status = "passed"
            if result is not None and result.allowed_failure:
                outcome.reason = f"allowed failure: {result.error}"
            elif result is not None and result.error:  # a script that skipped itself
                outcome.status, outcome.reason = "skipped", result.error
        elif task.status is TaskStatus.FAILED:
            outcome.status = "timeout" if result is not None and result.timed_out else "failed"
            outcome.reason = (result.error if result is not None else None) or (r.error if r else None)
            if result is not None:
                tail = result.output_tail(STDERR_TAIL_LINES)
                outcome.stderr_tail = [line for line in tail.splitlines() if line.strip()]
        elif task.status is TaskStatus.SKIPPED:
            outcome.status = "skipped"
        elif task.status is TaskStatus.CANCELLED:
            outcome.status = "cancelled"
            if run.interrupted:
                outcome.reason = run.cancel_reason(r.reason if r is not None else None)
        else:
            outcome.status, outcome.reason = "not_run", "interrupted" if run.interrupted else "not run"
        return outcome

    # -- text ------------------------------------------------------------------------------------------------
    def summary_text(self, report: PipelineReport) -> str:
        """``format_summary`` of a scripts run, headed by the pipeline (``passed with warnings`` when a stage failed
        with ``allow_failure``), with the allowed failures listed as warnings."""
        head = f"pipeline {report.pipeline!r}" + (f" ({report.file})" if report.file else "")
        if report.success and report.warnings:  # GitLab's "passed with warnings"
            count = len(report.warnings)
            head += f": passed with warnings ({count} stage{'s' if count != 1 else ''} failed, allowed)"
        lines = [head]
        text = format_summary(report)
        extra: list[str] = []
        if report.warnings:
            extra.append("warnings:")
            extra += [f"  {w['stage']}: allowed failure: {w['error']}" for w in report.warnings]
        if report.timeout_error:
            extra.append(f"timeout: {report.timeout_error}")
        return "\n".join(lines) + "\n" + text + ("\n".join(extra) + "\n" if extra else "")

    def plan_text(self) -> str:
        """The ``--dry-run`` text: stages by level, with their settings."""
        graph = self.config.dependencies()
        by_name = {s.name: s for s in self.config.stage_list}
        levels = [[self._outcome(by_name[n], graph[n]) for n in level] for level in generations(graph)]
        return format_plan(levels, jobs=self.jobs, fail_fast=self.workflow.fail_fast)


def run_pipeline(
    config: PipelineConfig,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    quiet: bool = False,
    fail_fast: bool | None = None,
    jobs: int | None = None,
    dry_run: bool = False,
    stream: TextIO | None = None,
    out: TextIO | None = None,
    listeners: Sequence[RunListener] = (),
    state: bool = False,
    resume: bool | str = False,
    report_path: str | os.PathLike[str] | None = None,
    as_json: bool = False,
    executor: str | ClusterExecutor | None = None,
) -> int:
    """Run a loaded pipeline as ``orchestrate run PIPELINE.yaml`` does; return the exit status.

    Live progress goes to ``stream`` (default stderr), the summary (or, with ``dry_run``, the plan) to ``out``
    (default stdout). ``listeners`` hear the run start and end (e.g. ``integration.ci.GitHubReporter``).
    ``state`` records the run in ``.orchestrate/state.db``; ``resume`` (``True`` or a run id) reruns only the
    stages that did not complete there. ``executor`` (``"dask://HOST:PORT"`` or an open ``ClusterExecutor``) runs
    the stages on a cluster's workers; one that cannot be reached is a usage error (2) before anything runs.
    """
    err = stream if stream is not None else sys.stderr
    cluster = None if isinstance(executor, str) else executor
    with contextlib.ExitStack() as opened_here:
        if isinstance(executor, str) and not dry_run:
            try:
                cluster, _ = open_cluster(executor)
            except ConcurrencyError as exc:
                print(f"orchestrate: error: {exc.message}", file=err)
                return 2
            opened_here.callback(cluster.shutdown)
        return _run_pipeline(
            config,
            err,
            out if out is not None else sys.stdout,
            run_dir=run_dir,
            quiet=quiet,
            fail_fast=fail_fast,
            jobs=jobs,
            dry_run=dry_run,
            listeners=listeners,
            state=state,
            resume=resume,
            report_path=report_path,
            as_json=as_json,
            executor=cluster,
        )


def _run_pipeline(
    config: PipelineConfig,
    err: TextIO,
    target: TextIO,
    *,
    run_dir: str | os.PathLike[str] | None,
    quiet: bool,
    fail_fast: bool | None,
    jobs: int | None,
    dry_run: bool,
    listeners: Sequence[RunListener],
    state: bool,
    resume: bool | str,
    report_path: str | os.PathLike[str] | None,
    as_json: bool,
    executor: ClusterExecutor | None,
) -> int:
    run_state = None
    if not dry_run:
        opened = open_state(workflow_name(config), enabled=state, resume=resume, err=err)
        if isinstance(opened, str):
            print(f"orchestrate: error: {opened}", file=err)
            return 2
        run_state = opened
    folder_id = (run_state.folder_id() if run_state is not None else None) or new_run_id()
    folder = RunFolder(run_dir if run_dir is not None else DEFAULT_RUNS_DIR, folder_id)
    kind = PipelineRun(config, folder, fail_fast=fail_fast, jobs=jobs, executor=executor)
    if dry_run:
        target.write(kind.plan_text())
        return 0
    driver = RunDriver(
        kind.workflow, kind, folder=folder, stream=err, quiet=quiet, listeners=listeners, state=run_state
    )
    try:
        report = driver.run()
    except OSError as exc:
        print(f"orchestrate: error: cannot create the run folder: {exc}", file=err)
        return 2
    except ConcurrencyError as exc:  # the cluster, as the run opened it (before any stage started)
        print(f"orchestrate: error: {exc.message}", file=err)
        return 2
    assert isinstance(report, PipelineReport)
    finish_run_output(
        report,
        kind.summary_text(report),
        target,
        kind="pipeline",
        name=config.name,
        report_path=report_path,
        as_json=as_json,
    )
    return report.exit_code


def workflow_name(config: PipelineConfig) -> str:
    """The name a pipeline's runs go by in the state store: its file (or its name, for one built in Python)."""
    return f"pipeline:{config.path.resolve() if config.path is not None else config.name}"


def open_pipeline(path: str | os.PathLike[str], err: TextIO | None = None) -> PipelineConfig | int:
    """The pipeline of the file ``path``, or the usage-error status (2) after printing why it cannot be used
    (``file:line: message`` for an invalid one) on ``err`` (default stderr)."""
    stream = err if err is not None else sys.stderr
    try:
        return load_pipeline(path)
    except ConfigError as exc:
        print(f"orchestrate: error: {exc.message}", file=stream)
    except OSError as exc:
        print(f"orchestrate: error: cannot read {os.fspath(path)!r}: {exc.strerror or exc}", file=stream)
    return 2


def pipeline_outcomes(config: PipelineConfig) -> list[ScriptOutcome]:
    """Every stage with its settings, in dependency order, nothing run (``orchestrate list PIPELINE.yaml``).

    The ``stage`` column holds what the stage runs (``commands``, ``pytest`` or ``script``); ``path`` the file.
    """
    graph = config.dependencies()
    by_name = {s.name: s for s in config.stage_list}
    file = _display(config.path) if config.path is not None else "<pipeline>"
    return [
        ScriptOutcome(
            name=name,
            path=file,
            depends=graph[name],
            stage=by_name[name].kind,
            timeout=by_name[name].timeout,
            max_attempts=by_name[name].retry + 1,
            retry_delay=by_name[name].retry_delay if by_name[name].retry else 0.0,
        )
        for level in generations(graph)
        for name in level
    ]


def run_pipeline_file(
    path: str | os.PathLike[str],
    args: argparse.Namespace | Sequence[str] | None = None,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    quiet: bool = False,
    fail_fast: bool | None = None,
    stream: TextIO | None = None,
    out: TextIO | None = None,
    listeners: Sequence[RunListener] = (),
) -> int:
    """Run a pipeline file as ``orchestrate run PIPELINE.yaml`` does; return the exit status.

    Live progress goes to ``stream`` (stderr), the summary to ``out`` (stdout); the run folder
    ``<run_dir>/<run_id>/`` (``run_dir`` defaults to ``.orchestrate/runs``, like a scripts run) holds
    ``logs/<stage>.log``, ``<stage>.xml`` for pytest stages and ``summary.json``. ``fail_fast=None`` keeps the
    pipeline's setting. ``args`` (the parsed ``run`` flags, or a list such as ``["-q", "--fail-fast"]``) fills
    ``quiet``, ``fail_fast``, ``run_dir``, ``jobs``, ``dry_run`` and ``executor``. Relative paths in the pipeline are
    relative to the current directory. ``listeners`` hear the run start and end: pass
    ``integration.ci.GitHubReporter()`` for log groups, error annotations and the job summary on GitHub Actions
    (the ``orchestrate`` command does so there).

    Returns 0 when every stage passed (allowed failures and skips included), 1 when one failed or the pipeline
    timed out, 2 for an invalid pipeline file (its ``file:line: message`` is printed), 130 after Ctrl-C, 143 after
    SIGTERM.
    """
    jobs: int | None = None
    dry_run = False
    state = False
    resume: bool | str = False
    report_path = None
    as_json = False
    executor: str | None = None
    if args is not None:
        ns = args if isinstance(args, argparse.Namespace) else run_parser().parse_args(list(args))
        quiet = quiet or bool(getattr(ns, "quiet", False))
        if getattr(ns, "fail_fast", False):
            fail_fast = True
        run_dir = run_dir if run_dir is not None else getattr(ns, "run_dir", None)
        jobs = getattr(ns, "jobs", None)
        dry_run = bool(getattr(ns, "dry_run", False))
        state = not getattr(ns, "no_state", True)
        resume = getattr(ns, "resume", False) or False
        report_path = getattr(ns, "report", None)
        as_json = bool(getattr(ns, "json", False))
        executor = getattr(ns, "executor", None)
    err = stream if stream is not None else sys.stderr
    config = open_pipeline(path, err)
    if isinstance(config, int):
        return config
    return run_pipeline(
        config,
        run_dir=run_dir,
        quiet=quiet,
        fail_fast=fail_fast,
        jobs=jobs,
        dry_run=dry_run,
        stream=err,
        out=out,
        listeners=listeners,
        state=state,
        resume=resume,
        report_path=report_path,
        as_json=as_json,
        executor=executor,
    )
