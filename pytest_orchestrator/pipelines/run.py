"""Pipelines as workflows: :class:`PipelineWorkflow` and ``create_pipeline_workflow``.

Each stage is one task of a :class:`PipelineWorkflow`; its ``when`` is the task's trigger rule, its ``retry`` a
``RetryPolicy`` (``retry_delay`` seconds, doubling, at most 10 s), and a failing stage raises so that fail_fast,
retries and dependent skips work as for any task. A stage with ``allow_failure`` completes on its last failed
attempt: its :class:`StageResult` has ``allowed_failure=True`` and the summary lists it under ``warnings``.

With a cluster executor (``PipelineWorkflow(executor="dask://HOST:PORT")``, ``orchestrate run X.yaml --executor
...``) each attempt of a stage runs on a worker (``execute_stage_blocking`` there), its commands subprocesses of that
worker, killed there on timeout or cancellation; logs are written here from the result that comes back.

Running a pipeline file with a run folder, progress and a summary (``orchestrate run X.yaml``) is
:func:`pytest_orchestrator.orchestrator.run_pipeline_file`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import concurrent.futures
import logging
import os
from pathlib import Path
from typing import Any

from pytest_orchestrator.core import events as ev
from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.errors import StepError
from pytest_orchestrator.execution.cluster import active_session
from pytest_orchestrator.pipelines.config import PipelineConfig
from pytest_orchestrator.pipelines.config import StageConfig
from pytest_orchestrator.pipelines.stages import StageResult
from pytest_orchestrator.pipelines.stages import execute_stage
from pytest_orchestrator.pipelines.stages import execute_stage_blocking
from pytest_orchestrator.pipelines.stages import safe_filename


__all__ = ["PipelineWorkflow", "StageCallback", "create_pipeline_workflow"]

log = logging.getLogger("pytest_orchestrator")

#: ``callback(stage, result, final)`` after every attempt of a stage (``final``: no retry follows)
StageCallback = Callable[[StageConfig, StageResult, bool], Any]
MAX_RETRY_DELAY = 10.0


class PipelineWorkflow(Workflow):
    """A :class:`Workflow` whose tasks are the stages of ``config``.

    Besides the workflow's own state it keeps ``stage_results`` (the last :class:`StageResult` of each stage that
    ran), ``attempt_errors`` (why earlier attempts failed) and ``logs`` (per-stage log files, when it has a run
    folder). ``get_summary()`` adds ``pipeline``, ``warnings`` (allowed failures) and ``stages``.
    """

    def __init__(
        self,
        config: PipelineConfig,
        *,
        name: str | None = None,
        fail_fast: bool | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        max_concurrency: int | None = None,
        executor: str | concurrent.futures.Executor | None = None,
    ) -> None:
        super().__init__(
            name or config.name,
            fail_fast=config.fail_fast if fail_fast is None else fail_fast,
            timeout=config.timeout,
            max_concurrency=max_concurrency,
            executor=executor,
        )
        self.config = config
        #: the folder that receives ``logs/<stage>.log`` and ``<stage>.xml``; ``None``: no files are written
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.cwd = cwd
        self.env = dict(env or {})
        self.stage_results: dict[str, StageResult] = {}
        self.attempt_errors: dict[str, list[str]] = {}
        self.logs: dict[str, str] = {}
        self.stage_callbacks: list[StageCallback] = []
        self._attempt: dict[str, int] = {}
        self.add_listener(self._track)
        graph = config.dependencies()
        for stage in config.stage_list:
            policy = None
            if stage.retry:
                policy = RetryPolicy(
                    max_attempts=stage.retry + 1,
                    initial_delay=stage.retry_delay,
                    max_delay=max(MAX_RETRY_DELAY, stage.retry_delay),
                )
            self.add_task(
                stage.name,
                self._action(stage),
                dependencies=graph[stage.name],
                retry_policy=policy,
                trigger_rule=stage.trigger_rule,
                metadata={"stage": stage.kind},
            )

    # -- bookkeeping ---------------------------------------------------------------------------------------
    def _track(self, event: ev.Event) -> None:
        if isinstance(event, ev.WorkflowStarted):
            self.stage_results.clear()
            self.attempt_errors.clear()
            self.logs.clear()
        elif isinstance(event, ev.TaskStarted):
            self._attempt[event.task] = event.attempt
        elif isinstance(event, ev.TaskRetrying):
            self.attempt_errors.setdefault(event.task, []).append(event.error)

    def log_path(self, stage: str) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "logs" / f"{safe_filename(stage)}.log"

    def junit_path(self, stage: StageConfig) -> Path | None:
        if self.run_dir is None or stage.kind != "pytest":
            return None
        return (self.run_dir / f"{safe_filename(stage.name)}.xml").absolute()

    def stage_env(self, stage: StageConfig) -> dict[str, str]:
        env = {"ORCHESTRATE_PIPELINE": self.config.name, "ORCHESTRATE_STAGE": stage.name}
        if self.run_dir is not None:
            env["ORCHESTRATE_RUN_DIR"] = str(self.run_dir.absolute())
        return {**env, **self.env, **self.config.variables, **stage.environment}

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """One entry per stage whose failure was allowed: ``{"stage": name, "error": why}``."""
        return [{"stage": name, "error": r.error} for name, r in self.stage_results.items() if r.allowed_failure]

    def get_summary(self) -> dict[str, Any]:
        summary = super().get_summary()
        summary["pipeline"] = self.config.name
        summary["warnings"] = self.warnings
        summary["stages"] = {
            name: {
                "kind": self.config.stage(name).kind,
                "allowed_failure": r.allowed_failure,
                "commands_executed": r.commands_executed,
                "error": r.error,
                "attempts": r.attempts,
                "junit_xml": r.junit_xml,
                "log": self.logs.get(name),
            }
            for name, r in self.stage_results.items()
        }
        return summary

    # -- running a stage -------------------------------------------------------------------------------------
    def _action(self, stage: StageConfig) -> Callable[[], Any]:
        max_attempts = stage.retry + 1

        async def run_stage() -> StageResult:
            attempt = self._attempt.get(stage.name, 1)
            session = active_session()
            try:
                if session is None:
                    result = await execute_stage(
                        stage, env=self.stage_env(stage), cwd=self.cwd, junit_xml=self.junit_path(stage)
                    )
                else:  # on a worker of the run's cluster (paths: the same on every host)
                    where = {"cwd": self.cwd or os.getcwd(), "junit_xml": self.junit_path(stage)}
                    result = await session.run_killable(
                        execute_stage_blocking, (stage,), {"env": self.stage_env(stage), **where}, name=stage.name
                    )
            except asyncio.CancelledError:
                self._write_log(stage, None, attempt, max_attempts)
                raise
            result.attempts = attempt
            final = result.success or attempt >= max_attempts
            result.allowed_failure = not result.success and final and stage.allow_failure
            self.stage_results[stage.name] = result
            self._write_log(stage, result, attempt, max_attempts)
            for callback in self.stage_callbacks:
                try:
                    callback(stage, result, final)
                except Exception:
                    log.exception("stage callback %r raised; ignored", callback)
            if result.success or result.allowed_failure:
                return result
            if result.timed_out:
                raise OrchestratorTimeoutError(
                    f"stage {stage.name!r}: {result.error}", task_name=stage.name, timeout=stage.timeout
                )
            raise StepError(f"stage {stage.name!r}: {result.error}", step_name=stage.name)

        return run_stage

    def _write_log(self, stage: StageConfig, result: StageResult | None, attempt: int, max_attempts: int) -> None:
        path = self.log_path(stage.name)
        if path is None:
            return
        if result is None:
            status = "cancelled"
        elif result.success:
            status = "passed" + (f" ({result.error})" if result.error else "")
        else:
            status = ("allowed failure" if result.allowed_failure else "failed") + f": {result.error}"
        lines = [f"===== stage {stage.name}: attempt {attempt} of {max_attempts}: {status}"]
        for r in result.results if result is not None else ():
            lines.append(f"$ {r.command}")
            lines += [text.rstrip("\n") for text in (r.stdout, r.stderr) if text]
            lines.append(f"[exit status {r.returncode}, {r.execution_time:.3f}s]" + (f" {r.error}" if r.error else ""))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w" if attempt == 1 else "a", encoding="utf-8", errors="replace") as fh:
                fh.write("\n".join(lines) + "\n")
            self.logs[stage.name] = path.relative_to(self.run_dir).as_posix() if self.run_dir else str(path)
        except OSError as exc:
            log.warning("cannot write the log of stage %r: %s", stage.name, exc)


def _as_config(source: Any, name: str | None) -> PipelineConfig:
    if isinstance(source, PipelineConfig):
        return source
    if isinstance(source, str | os.PathLike):
        from pytest_orchestrator.pipelines.loader import load_pipeline

        return load_pipeline(source)
    if isinstance(source, Sequence):
        return PipelineConfig(name or "pipeline", list(source))
    raise TypeError(f"expected a PipelineConfig, a pipeline file or a list of stages, got {type(source).__name__}")


def create_pipeline_workflow(
    config_or_stage_dicts: PipelineConfig | Sequence[StageConfig | Mapping[str, Any]] | str | os.PathLike[str],
    name: str | None = None,
    fail_fast: bool | None = None,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> PipelineWorkflow:
    """A workflow with one task per stage (see :class:`PipelineWorkflow`); ``await wf.run()`` runs it.

    ``config_or_stage_dicts``: a :class:`PipelineConfig`, a pipeline YAML path, or a list of stages
    (``StageConfig`` or dicts of its fields). ``name`` defaults to the pipeline's (``"pipeline"`` for a list),
    ``fail_fast`` to the pipeline's (``True``). ``run_dir`` receives per-stage logs and pytest JUnit XML; ``env``
    is added under the pipeline's variables. Raises ``ConfigError`` for an invalid pipeline.

    Usage::

        wf = create_pipeline_workflow([
            {"name": "build", "commands": ["make"]},
            {"name": "test", "commands": ["make test"], "retry": 1},
        ])
        asyncio.run(wf.run())
    """
    config = _as_config(config_or_stage_dicts, name)
    return PipelineWorkflow(config, name=name, fail_fast=fail_fast, run_dir=run_dir, cwd=cwd, env=env)
