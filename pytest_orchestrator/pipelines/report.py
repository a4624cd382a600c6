"""One ``orchestrate run PIPELINE.yaml``: the run folder, live progress, the report and its summary.

It reuses what a scripts run uses (``reporting/runfolder.py`` and ``reporting/summary.py``): the same folder
layout (``.orchestrate/runs/<run_id>/logs/<stage>.log`` and ``summary.json``), the same ``[ 2/5] PASS lint``
progress lines on stderr and the same end-of-run summary, one entry per stage. ``summary.json`` keeps the scripts
run's keys (its ``scripts`` entries are the stages) and adds ``kind: "pipeline"``, ``pipeline``, ``file``,
``warnings`` (allowed failures) and ``workflow`` (the workflow summary).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path
import time
from typing import Any
from typing import TextIO

from pytest_orchestrator.core import events as ev
from pytest_orchestrator.core.graph import generations
from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.errors import TaskFailedError
from pytest_orchestrator.pipelines.config import PipelineConfig
from pytest_orchestrator.pipelines.config import StageConfig
from pytest_orchestrator.pipelines.run import PipelineWorkflow
from pytest_orchestrator.pipelines.stages import pytest_command
from pytest_orchestrator.reporting.runfolder import DEFAULT_RUNS_DIR
from pytest_orchestrator.reporting.runfolder import RunFolder
from pytest_orchestrator.reporting.runfolder import new_run_id
from pytest_orchestrator.reporting.summary import STDERR_TAIL_LINES
from pytest_orchestrator.reporting.summary import ProgressPrinter
from pytest_orchestrator.reporting.summary import RunReport
from pytest_orchestrator.reporting.summary import ScriptOutcome
from pytest_orchestrator.reporting.summary import format_plan
from pytest_orchestrator.reporting.summary import format_summary


__all__ = ["PipelineReport", "PipelineRun", "stage_command"]


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


class PipelineRun:
    """Runs a :class:`PipelineConfig` once, with progress, a run folder and a :class:`PipelineReport`."""

    def __init__(
        self,
        config: PipelineConfig,
        *,
        runs_dir: str | os.PathLike[str] | None = None,
        quiet: bool = False,
        fail_fast: bool | None = None,
        jobs: int | None = None,
        stream: TextIO | None = None,
        out: TextIO | None = None,
        environ: dict[str, str] | None = None,
        github: bool | None = None,
    ) -> None:
        self.config = config
        self.run_id = new_run_id()
        self.folder = RunFolder(runs_dir if runs_dir is not None else DEFAULT_RUNS_DIR, self.run_id)
        self.wf = PipelineWorkflow(
            config,
            fail_fast=fail_fast,
            run_dir=self.folder.path,
            env={"ORCHESTRATE_RUN_ID": self.run_id},
            max_concurrency=jobs,
        )
        self.jobs = jobs or len(config.stage_list)
        self.progress = ProgressPrinter(len(config.stage_list), stream, enabled=not quiet)
        self.stream = stream
        self.interrupted = False
        self.timeout_error: str | None = None
        self.wf.add_listener(self._on_event)
        from pytest_orchestrator.integration.ci import GitHubReporter
        from pytest_orchestrator.integration.ci import detect_ci

        if github is None:
            github = detect_ci(environ) == "github"
        self.github = GitHubReporter(config, out=out, env=environ) if github else None
        if self.github is not None:
            self.wf.stage_callbacks.append(self.github.stage_finished)

    # -- progress --------------------------------------------------------------------------------------------
    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.TaskStarted) and event.attempt == 1:
            self.progress.started(event.task)
        elif isinstance(event, ev.TaskRetrying):
            if self.progress.enabled and self.stream is not None:
                self.stream.write(
                    f"{'':{len(str(self.progress.total)) * 2 + 4}} RETRY {event.task} (attempt {event.attempt}:"
                    f" {event.error}; next in {event.delay:.2g}s)\n"
                )
        elif isinstance(event, ev.TaskFinished):
            result = self.wf.stage_results.get(event.task)
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
            self.progress.finished(event.task, status, duration=r.execution_time, detail=detail)
        elif isinstance(event, ev.TaskSkipped):
            self.progress.finished(event.task, "skipped", detail=event.reason)
        elif isinstance(event, ev.TaskCancelled):
            self.progress.finished(event.task, "cancelled", detail=event.reason)

    # -- the run -----------------------------------------------------------------------------------------------
    def run(self, started: float | None = None) -> PipelineReport:
        """Run the pipeline and write ``summary.json``; raises ``OSError`` if the run folder cannot be made."""
        self.folder.create()
        started = time.time() if started is None else started
        t0 = time.perf_counter()
        try:
            asyncio.run(self.wf.run())
        except TaskFailedError:
            pass  # reported per stage
        except OrchestratorTimeoutError as exc:
            self.timeout_error = exc.message
        except KeyboardInterrupt:
            self.interrupted = True
        report = self.report(started, time.perf_counter() - t0)
        try:
            self.folder.write_summary(report)
        except OSError:
            report.run_folder = None
        if self.github is not None:
            self.github.pipeline_finished(report)
        return report

    def _outcome(self, stage: StageConfig, depends: list[str]) -> ScriptOutcome:
        return ScriptOutcome(
            name=stage.name,
            path=self._file(),
            depends=depends,
            timeout=stage.timeout,
            max_attempts=stage.retry + 1,
            retry_delay=stage.retry_delay if stage.retry else 0.0,
            command=stage_command(stage, self.wf.junit_path(stage)),
        )

    def _file(self) -> str:
        return _display(self.config.path) if self.config.path is not None else "<pipeline>"

    def report(self, started: float, elapsed: float) -> PipelineReport:
        wf = self.wf
        report = PipelineReport(
            run_id=self.run_id,
            root=self._file(),
            jobs=self.jobs,
            fail_fast=wf.fail_fast,
            started_at=started,
            elapsed=elapsed,
            interrupted=self.interrupted,
            run_folder=_display(self.folder.path.absolute()),
            pipeline=self.config.name,
            file=self._file() if self.config.path is not None else None,
            warnings=wf.warnings,
            timeout_error=self.timeout_error,
        )
        graph = self.config.dependencies()
        for stage in self.config.stage_list:
            outcome = self._outcome(stage, graph[stage.name])
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
                if self.interrupted:
                    outcome.reason = "interrupted"
            else:
                outcome.status, outcome.reason = "not_run", "interrupted" if self.interrupted else "not run"
            report.scripts.append(outcome)
        summary = wf.get_summary()
        report.workflow = summary
        if any(s.attempts for s in report.scripts):
            report.critical_path = list(summary.get("critical_path") or [])
        return report

    # -- text --------------------------------------------------------------------------------------------------
    def summary_text(self, report: PipelineReport) -> str:
        """``format_summary`` of a scripts run, headed by the pipeline, with allowed failures as warnings."""
        lines = [f"pipeline {report.pipeline!r}" + (f" ({report.file})" if report.file else "")]
        text = format_summary(report)
        extra: list[str] = []
        if report.warnings:
            extra.append("warnings:")
            extra += [f"  {w['stage']}: allowed failure: {w['error']}" for w in report.warnings]
        if report.timeout_error:
            extra.append(f"timeout: {report.timeout_error}")
        return "\n".join(lines) + "\n" + text + ("\n".join(extra) + "\n" if extra else "")

    def plan_text(self) -> str:
        graph = self.config.dependencies()
        by_name = {s.name: s for s in self.config.stage_list}
        levels = [[self._outcome(by_name[n], graph[n]) for n in level] for level in generations(graph)]
        return format_plan(levels, jobs=self.jobs, fail_fast=self.wf.fail_fast)
