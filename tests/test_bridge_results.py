"""What the bridges hand back: ``OrchestratorBridge.result`` (summary, values, one run id) and how a stage that
failed with ``allow_failure`` shows: a warning, as GitLab's "passed with warnings"."""

from __future__ import annotations

import asyncio
from pathlib import Path
import sys

import pytest

from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.integration.bridge import OrchestratorBridge
from pytest_orchestrator.integration.ci import CICDBridge
from pytest_orchestrator.integration.ci import GitHubReporter
from pytest_orchestrator.orchestrator.pipeline import PipelineRun
from pytest_orchestrator.orchestrator.pipeline import run_pipeline_file
from pytest_orchestrator.pipelines import PipelineConfig
from pytest_orchestrator.pipelines import run_ci_stage
from pytest_orchestrator.reporting.runfolder import RunFolder


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux and bash")

ALLOWED = """\
name: ci
stages:
  - name: ok
    commands: ['true']
  - name: flaky
    commands: ['exit 3']
    allow_failure: true
"""


def test_bridge_result_has_the_values_and_one_run_id() -> None:
    def fetch() -> int:
        return 21

    def double(data: int) -> int:
        return data * 2

    def boom() -> None:
        raise RuntimeError("no")

    wf = Workflow("values", fail_fast=False).add_task("fetch", fetch).add_task("double", double, dependencies=["fetch"])
    wf.add_task("boom", boom).add_task("after", fetch, dependencies=["boom"])
    with OrchestratorBridge() as bridge:
        run_id = bridge.submit(wf)
        out = bridge.result(run_id, timeout=20)
    assert out["run_id"] == run_id and "bridge_run_id" not in out
    assert out["results"] == {"fetch": 21, "double": 42, "boom": None, "after": None}
    assert out["status"] == "failed" and out["tasks"]["double"]["status"] == "completed"
    assert wf.run_id == run_id  # the workflow ran under the id submit() returned


def test_run_ci_stage_success_means_the_commands_succeeded() -> None:
    failed = asyncio.run(run_ci_stage("t", ["exit 1"], allow_failure=True))
    assert (failed.success, failed.allowed_failure) == (False, True)
    passed = asyncio.run(run_ci_stage("t", ["true"], allow_failure=True))
    assert (passed.success, passed.allowed_failure) == (True, False)


def test_cicd_bridge_shows_an_allowed_failure_as_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    result = CICDBridge("generic").run_stage({"name": "lint", "commands": ["exit 2"], "allow_failure": True})
    assert not result.success and result.allowed_failure
    assert "warning: stage 'lint' failed, allowed: command 'exit 2' exited with status 2" in capsys.readouterr().err


def test_the_pipeline_summary_and_the_github_step_summary_say_passed_with_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ci.yaml").write_text(ALLOWED)
    step_summary = tmp_path / "summary.md"
    reporter = GitHubReporter(env={"GITHUB_STEP_SUMMARY": str(step_summary)}, out=sys.stderr)
    assert run_pipeline_file("ci.yaml", ["-q", "--no-state"], listeners=[reporter]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pipeline 'ci' (ci.yaml): passed with warnings (1 stage failed, allowed)\n")
    markdown = step_summary.read_text()
    assert "### Pipeline `ci`: ⚠️ passed with warnings" in markdown
    assert "| flaky | ⚠️ allowed failure |" in markdown


def test_a_clean_pipeline_still_just_passes(tmp_path: Path) -> None:
    config = PipelineConfig("clean", [{"name": "ok", "commands": ["true"]}])
    kind = PipelineRun(config, RunFolder(tmp_path, "r1"))
    asyncio.run(kind.workflow.run())

    class Run:
        run_id, started_at, elapsed, interrupted, timeout_error = "r1", 0.0, 0.1, False, None

    report = kind.report(Run())  # type: ignore[arg-type]
    assert "### Pipeline `clean`: ✅ passed" in GitHubReporter(env={}).summary_markdown(report)
    assert kind.summary_text(report).startswith("pipeline 'clean'\n")
