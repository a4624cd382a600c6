"""CI systems: detect the one we run in, run stages for it, and report to GitHub Actions.

- :func:`detect_ci` / ``CICDBridge.detect()``: ``"github"`` (``GITHUB_ACTIONS=true``), ``"gitlab"``
  (``GITLAB_CI``), ``"generic"`` (``CI``), else ``None``.
- :class:`CICDBridge`: pipelines to workflows, one stage at a time (``run_stage`` is synchronous and returns a
  ``StageResult``; ``arun_stage`` is the same coroutine for code already in an event loop), whole pipelines,
  and export to GitHub Actions / GitLab CI (``export.py``).
- :class:`GitHubReporter`: what ``orchestrate run PIPELINE.yaml`` adds on GitHub Actions: a ``::group::`` of
  output per stage, ``::error`` annotations for failed stages (pointing at the stage in the pipeline file) and
  failed tests (from a pytest stage's JUnit XML), and a Markdown table in ``$GITHUB_STEP_SUMMARY``. It is a
  :class:`~pytest_orchestrator.orchestrator.driver.RunListener`: the run driver is given it (``ci_listeners()``
  gives it on GitHub Actions; the ``orchestrate`` command asks), the library never looks for a CI itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from collections.abc import Sequence
import os
import sys
from typing import TYPE_CHECKING
from typing import Any
from typing import TextIO

from pytest_orchestrator.core.retry import Attempt
from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.retry import run_attempts_async
from pytest_orchestrator.errors import StepError
from pytest_orchestrator.errors import WorkflowError
from pytest_orchestrator.integration.export import to_github_actions
from pytest_orchestrator.integration.export import to_gitlab_ci
from pytest_orchestrator.integration.github import github_annotations_for_junit
from pytest_orchestrator.integration.github import github_error
from pytest_orchestrator.integration.github import github_warning
from pytest_orchestrator.integration.github import group_end
from pytest_orchestrator.integration.github import group_start
from pytest_orchestrator.integration.github import markdown_table
from pytest_orchestrator.integration.github import write_step_summary
from pytest_orchestrator.orchestrator.driver import RunListener
from pytest_orchestrator.orchestrator.pipeline import PipelineReport
from pytest_orchestrator.orchestrator.pipeline import run_pipeline
from pytest_orchestrator.orchestrator.pipeline import run_pipeline_file
from pytest_orchestrator.pipelines.config import PipelineConfig
from pytest_orchestrator.pipelines.config import StageConfig
from pytest_orchestrator.pipelines.run import MAX_RETRY_DELAY
from pytest_orchestrator.pipelines.run import PipelineWorkflow
from pytest_orchestrator.pipelines.run import create_pipeline_workflow
from pytest_orchestrator.pipelines.stages import StageResult
from pytest_orchestrator.pipelines.stages import execute_stage


if TYPE_CHECKING:
    from pytest_orchestrator.core.workflow import Workflow
    from pytest_orchestrator.reporting.summary import RunReport

__all__ = ["PROVIDERS", "CICDBridge", "GitHubReporter", "ci_listeners", "detect_ci"]

PROVIDERS = ("github", "gitlab", "generic")


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


def detect_ci(env: Mapping[str, str] | None = None) -> str | None:
    """The CI system these variables (default ``os.environ``) describe, or ``None`` outside CI."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS", "").lower() == "true":
        return "github"
    if _truthy(env.get("GITLAB_CI")):
        return "gitlab"
    if _truthy(env.get("CI")):
        return "generic"
    return None


def _cwd_relative(path: os.PathLike[str]) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return os.fspath(path)


def ci_listeners(env: Mapping[str, str] | None = None) -> list[RunListener]:
    """The run listeners for the CI these variables (default ``os.environ``) describe: on GitHub Actions a
    :class:`GitHubReporter`, elsewhere none."""
    return [GitHubReporter(env=env)] if detect_ci(env) == "github" else []


class GitHubReporter:
    """Workflow commands and the job summary for one pipeline run on GitHub Actions.

    As a run listener: ``run_started`` hooks ``stage_finished`` into a pipeline workflow (its stage callback),
    ``run_finished`` writes the job summary of a pipeline run (a scripts run gets neither). ``stage_finished`` and
    ``pipeline_finished`` may be used directly too. Output goes to ``out`` (default: ``sys.stdout`` at the time of
    writing), where the runner reads commands.
    """

    _STATUS = {
        "passed": "✅ passed",
        "failed": "❌ failed",
        "timeout": "⏱️ timed out",
        "error": "❌ error",
        "skipped": "⏭️ skipped",
        "cancelled": "🚫 cancelled",
        "not_run": "not run",
    }

    def __init__(
        self, config: PipelineConfig | None = None, *, out: TextIO | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        #: the pipeline whose stages are annotated (set by ``run_started`` when not given)
        self.config = config
        self.out = out
        self.env = env

    def run_started(self, workflow: Workflow) -> None:
        if isinstance(workflow, PipelineWorkflow):
            self.config = workflow.config
            workflow.stage_callbacks.append(self.stage_finished)

    def run_finished(self, report: RunReport) -> None:
        if isinstance(report, PipelineReport):
            self.pipeline_finished(report)

    def _write(self, lines: Sequence[str]) -> None:
        out = self.out if self.out is not None else sys.stdout
        out.write("".join(line if line.endswith("\n") else line + "\n" for line in lines))
        out.flush()

    def stage_finished(self, stage: StageConfig, result: StageResult, final: bool) -> None:
        title = stage.name.replace("\n", " ")
        if result.attempts > 1:
            title += f" (attempt {result.attempts})"
        lines = [group_start(title)]
        for r in result.results:
            lines.append(f"$ {r.command}")
            lines += [text.rstrip("\n") for text in (r.stdout, r.stderr) if text.strip()]
            if r.error:
                lines.append(r.error)
        lines.append(group_end())
        if final and not result.success:
            config = self.config
            file = _cwd_relative(config.path) if config is not None and config.path is not None else None
            line = config.stage_lines.get(stage.name) if config is not None and file else None
            if result.allowed_failure:
                lines.append(
                    github_warning(
                        f"{result.error} (allow_failure: the pipeline goes on)",
                        file=file,
                        line=line,
                        title=f"Stage {stage.name} failed (allowed)",
                    )
                )
            else:
                lines.append(
                    github_error(result.error or "failed", file=file, line=line, title=f"Stage {stage.name} failed")
                )
            if result.junit_xml:
                lines += github_annotations_for_junit(result.junit_xml)
        self._write(lines)

    def summary_markdown(self, report: PipelineReport) -> str:
        if not report.success:
            verdict = "❌ failed"
        else:  # GitLab's "passed with warnings": a stage failed and allow_failure let the pipeline go on
            verdict = "⚠️ passed with warnings" if report.warnings else "✅ passed"
        rows = []
        for s in report.scripts:
            status = self._STATUS.get(s.status, s.status)
            if s.status == "passed" and s.reason and s.reason.startswith("allowed failure"):
                status = "⚠️ allowed failure"
            duration = f"{s.duration:.2f} s" if s.attempts else "-"
            rows.append((s.name, status, duration, s.attempts or "-"))
        text = f"### Pipeline `{report.pipeline}`: {verdict} in {report.elapsed:.2f} s\n\n"
        text += markdown_table(("Stage", "Status", "Duration", "Attempts"), rows)
        if report.warnings:
            text += "\n" + "".join(f"- ⚠️ `{w['stage']}`: {w['error']}\n" for w in report.warnings)
        return text

    def pipeline_finished(self, report: PipelineReport) -> None:
        try:
            write_step_summary(self.summary_markdown(report), self.env)
        except OSError as exc:
            self._write([github_warning(f"cannot write the job summary: {exc}")])


class CICDBridge:
    """Pipelines for (and inside) a CI system.

    ``provider`` is fixed if given, else detected from ``env`` (default ``os.environ``) each time it is read.

    Usage::

        bridge = CICDBridge()
        bridge.provider                                   # "github" on GitHub Actions
        result = bridge.run_stage({"name": "t", "commands": ["pytest -q"], "retry": 1})
        result.success
        wf = bridge.create_workflow_from_pipeline("pipeline.yaml")
        print(bridge.export("pipeline.yaml", "gitlab"))
    """

    def __init__(self, provider: str | None = None, *, env: Mapping[str, str] | None = None) -> None:
        if provider is not None and provider not in PROVIDERS:
            raise WorkflowError(f"unknown CI provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
        self._provider = provider
        self.env = env

    @staticmethod
    def detect(env: Mapping[str, str] | None = None) -> str | None:
        return detect_ci(env)

    @property
    def provider(self) -> str | None:
        return self._provider if self._provider is not None else detect_ci(self.env)

    @property
    def is_ci(self) -> bool:
        return self.provider is not None

    def create_workflow_from_pipeline(
        self, config: PipelineConfig | Sequence[StageConfig | Mapping[str, Any]] | str | os.PathLike[str], **kwargs: Any
    ) -> PipelineWorkflow:
        """``create_pipeline_workflow(config, **kwargs)``; on GitHub Actions stage output is grouped and
        failures annotated."""
        wf = create_pipeline_workflow(config, **kwargs)
        if self.provider == "github":
            wf.stage_callbacks.append(GitHubReporter(wf.config, env=self.env).stage_finished)
        return wf

    async def arun_stage(
        self, stage: StageConfig | Mapping[str, Any], env: Mapping[str, str] | None = None
    ) -> StageResult:
        """Run one stage with its retries; ``env`` is added to the stage's environment.

        A stage that failed with ``allow_failure`` is shown as a warning (a ``::warning`` annotation on GitHub
        Actions, a ``warning:`` line on stderr elsewhere); its result has ``success=False`` and
        ``allowed_failure=True``."""
        stage = stage if isinstance(stage, StageConfig) else StageConfig(**stage)
        environment = {**stage.environment, **(env or {})}
        policy = RetryPolicy(
            max_attempts=stage.retry + 1,
            initial_delay=stage.retry_delay,
            max_delay=MAX_RETRY_DELAY,
            retry_on=(StepError,),  # a failed attempt; anything else is a bug and propagates
        )
        reporter = (
            GitHubReporter(PipelineConfig(stage.name, [stage]), env=self.env) if self.provider == "github" else None
        )
        results: dict[int, StageResult] = {}

        async def attempt(number: int) -> StageResult:
            result = await execute_stage(stage, env=environment)
            result.attempts = number
            results[number] = result
            return result

        def judge(result: StageResult) -> StepError | None:
            return None if result.success else StepError(result.error or "failed", step_name=stage.name)

        def heard(done: Attempt) -> None:
            result = results.get(done.number)
            if result is None:  # the attempt raised: nothing to report
                return
            final = not done.will_retry
            result.allowed_failure = final and not result.success and stage.allow_failure
            if reporter is not None:
                reporter.stage_finished(stage, result, final)

        outcome = await run_attempts_async(attempt, policy, judge=judge, listener=heard)
        if outcome.value is None:
            assert outcome.error is not None
            raise outcome.error
        if outcome.value.allowed_failure and reporter is None:  # on GitHub the ::warning annotation says it
            print(f"warning: stage {stage.name!r} failed, allowed: {outcome.value.error}", file=sys.stderr)
        return outcome.value

    def run_stage(self, stage: StageConfig | Mapping[str, Any], env: Mapping[str, str] | None = None) -> StageResult:
        """:meth:`arun_stage`, blocking. Inside a running event loop, ``await arun_stage(...)`` instead."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun_stage(stage, env))
        raise WorkflowError("run_stage() blocks; inside an event loop use 'await bridge.arun_stage(...)'")

    def run_pipeline(
        self,
        config: PipelineConfig | str | os.PathLike[str],
        *,
        run_dir: str | os.PathLike[str] | None = None,
        quiet: bool = False,
        fail_fast: bool | None = None,
    ) -> int:
        """Run a whole pipeline as ``orchestrate run`` does (run folder, progress, summary); return the exit
        status. On GitHub Actions stage output is grouped, failures annotated and the job summary written."""
        listeners: list[RunListener] = [GitHubReporter(env=self.env)] if self.provider == "github" else []
        if not isinstance(config, PipelineConfig):
            return run_pipeline_file(config, run_dir=run_dir, quiet=quiet, fail_fast=fail_fast, listeners=listeners)
        return run_pipeline(config, run_dir=run_dir, quiet=quiet, fail_fast=fail_fast, listeners=listeners)

    def export(self, config: PipelineConfig | str | os.PathLike[str], provider: str | None = None) -> str:
        """The pipeline as CI YAML for ``provider`` (default: the detected one, else GitHub Actions)."""
        if not isinstance(config, PipelineConfig):
            from pytest_orchestrator.pipelines.loader import load_pipeline

            config = load_pipeline(config)
        target = provider or self.provider or "github"
        if target == "github":
            return to_github_actions(config)
        if target == "gitlab":
            return to_gitlab_ci(config)
        raise WorkflowError(f"cannot export to {target!r}; use 'github' or 'gitlab'")
