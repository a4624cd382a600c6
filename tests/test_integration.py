"""Tests of ``pytest_orchestrator.integration``: CI detection, GitHub output, CI export and OrchestratorBridge."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
from pathlib import Path
import random
import re
import sys
import time
from typing import Any

import pytest
from script_helpers import write
import yaml

from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.errors import WorkflowError
from pytest_orchestrator.integration import CICDBridge
from pytest_orchestrator.integration import GitHubReporter
from pytest_orchestrator.integration import OrchestratorBridge
from pytest_orchestrator.integration import detect_ci
from pytest_orchestrator.integration import github_annotations_for_junit
from pytest_orchestrator.integration import github_error
from pytest_orchestrator.integration import to_github_actions
from pytest_orchestrator.integration import to_gitlab_ci
from pytest_orchestrator.integration.ci import ci_listeners
from pytest_orchestrator.integration.github import escape_data
from pytest_orchestrator.integration.github import escape_property
from pytest_orchestrator.orchestrator import RunOptions
from pytest_orchestrator.orchestrator import build_plan
from pytest_orchestrator.orchestrator import run_pipeline_file
from pytest_orchestrator.orchestrator import run_plan
from pytest_orchestrator.pipelines import PipelineConfig
from pytest_orchestrator.pipelines import StageResult
from pytest_orchestrator.pipelines import load_pipeline


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux process groups")


# -- detection and GitHub workflow commands ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GITHUB_ACTIONS": "true", "CI": "true"}, "github"),
        ({"GITLAB_CI": "true", "CI": "true"}, "gitlab"),
        ({"CI": "1"}, "generic"),
        ({"CI": "false"}, None),
        ({"GITHUB_ACTIONS": "false"}, None),
        ({}, None),
    ],
)
def test_detect_ci(env: dict[str, str], expected: str | None) -> None:
    assert detect_ci(env) == expected
    assert CICDBridge.detect(env) == expected
    assert CICDBridge(env=env).provider == expected
    assert CICDBridge("gitlab", env=env).provider == "gitlab"


def test_github_error_escaping() -> None:
    assert github_error("plain") == "::error::plain"
    assert (
        github_error("100% bad\r\nsecond line", file="a,b:c.py", line=3, title="t: 1, 2%")
        == "::error file=a%2Cb%3Ac.py,line=3,title=t%3A 1%2C 2%25::100%25 bad%0D%0Asecond line"
    )
    assert escape_data("a:b,c") == "a:b,c" and escape_property("a:b,c") == "a%3Ab%2Cc"


def test_github_annotations_for_junit(tmp_path: Path) -> None:
    xml = write(
        tmp_path / "report.xml",
        """
        <?xml version="1.0" encoding="utf-8"?>
        <testsuites><testsuite name="pytest" errors="1" failures="1" tests="3">
          <testcase classname="tests.test_math" name="test_ok" time="0.001"/>
          <testcase classname="tests.test_math" name="test_add" time="0.002">
            <failure message="assert 3 == 4">def test_add():
        &gt;       assert 1 + 2 == 4
        E       assert 3 == 4

        tests/test_math.py:7: AssertionError</failure>
          </testcase>
          <testcase classname="tests.test_db" name="test_conn" file="tests/test_db.py" line="11" time="0">
            <error message="failed on setup with &quot;RuntimeError: no db&quot;">no traceback</error>
          </testcase>
        </testsuite></testsuites>
        """,
    )
    assert github_annotations_for_junit(xml) == [
        "::error file=tests/test_math.py,line=7,title=tests.test_math.test_add failed::assert 3 == 4",
        "::error file=tests/test_db.py,line=12,title=tests.test_db.test_conn errored::"
        'failed on setup with "RuntimeError: no db"',
    ]
    assert github_annotations_for_junit(tmp_path / "missing.xml") == []


def test_github_actions_output_of_a_pipeline_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path / "ci.yaml",
        """
        name: gh
        fail_fast: false
        stages:
          - name: build
            commands: ["echo building"]
          - name: flaky
            needs: []
            commands: ["exit 1"]
            allow_failure: true
          - name: test
            commands: ["echo 'tests: 1 failed' >&2; exit 1"]
        """,
    )
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("# earlier content\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    out = io.StringIO()
    listeners = [GitHubReporter(out=out)]
    code = run_pipeline_file(path, run_dir=tmp_path / "runs", stream=io.StringIO(), out=out, listeners=listeners)
    assert code == 1
    text = out.getvalue()
    lines = text.splitlines()
    assert "::group::build" in lines and "::group::test" in lines and "::group::flaky" in lines
    assert lines.count("::endgroup::") == 3
    build = lines.index("::group::build")
    assert lines[build : build + 4] == ["::group::build", "$ echo building", "building", "::endgroup::"]
    error = next(line for line in lines if line.startswith("::error "))
    assert re.fullmatch(
        r"::error file=[^,]*ci\.yaml,line=10,title=Stage test failed::"
        r"command \"echo 'tests: 1 failed' >&2; exit 1\" exited with status 1",
        error,
    ), error
    assert any(line.startswith("::warning ") and "title=Stage flaky failed (allowed)" in line for line in lines)
    summary = step_summary.read_text()
    assert summary.startswith("# earlier content\n### Pipeline `gh`: ❌ failed")
    assert "| Stage | Status | Duration | Attempts |" in summary
    assert re.search(r"\| build \| ✅ passed \| \d+\.\d\d s \| 1 \|", summary)
    assert "| flaky | ⚠️ allowed failure |" in summary and "| test | ❌ failed |" in summary


def test_ci_listeners_give_the_github_output_on_github_actions_only(tmp_path: Path) -> None:
    (listener,) = ci_listeners({"GITHUB_ACTIONS": "true"})
    assert isinstance(listener, GitHubReporter)
    assert ci_listeners({"CI": "true"}) == [] and ci_listeners({}) == []


def test_the_github_output_ignores_a_scripts_run(tmp_path: Path) -> None:
    write(tmp_path / "scripts" / "ok.py", "print('ok')\n")
    out = io.StringIO()
    summary = tmp_path / "step.md"
    options = RunOptions(quiet=True, runs_dir=tmp_path / "runs")
    reporter = GitHubReporter(out=out, env={"GITHUB_STEP_SUMMARY": str(summary)})
    report = run_plan(build_plan(tmp_path / "scripts"), options, listeners=[reporter])
    assert report.exit_code == 0
    assert out.getvalue() == "" and not summary.exists()


def test_pytest_stage_failures_become_annotations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, subprocess_env: dict[str, str]
) -> None:
    write(tmp_path / "suite" / "test_it.py", "def test_ok():\n    pass\n\n\ndef test_bad():\n    assert 1 == 2\n")
    write(tmp_path / "ci.yaml", "stages:\n  - name: unit\n    pytest: [suite, -q, -p, no:cacheprovider]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setenv("PYTHONPATH", subprocess_env["PYTHONPATH"])
    out = io.StringIO()
    listeners = [GitHubReporter(out=out)]
    assert (
        run_pipeline_file("ci.yaml", run_dir=tmp_path / "runs", stream=io.StringIO(), out=out, listeners=listeners) == 1
    )
    text = out.getvalue()
    assert re.search(
        r"^::error file=suite/test_it\.py,line=6,title=\S*suite\.test_it\.test_bad failed::assert 1 == 2$", text, re.M
    )
    assert "::error file=ci.yaml,line=2,title=Stage unit failed::pytest: tests failed (1 failed, 1 passed in " in text


# -- export ------------------------------------------------------------------------------------------------------
def _random_pipeline(seed: int) -> PipelineConfig:
    rng = random.Random(seed)
    names = ["lint", "unit tests", "build/docs", "2nd", "stages", "e2e:smoke", "Deploy", "deploy", "x" * 3, "pages"]
    stages: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        stage: dict[str, Any] = {"name": name, "commands": [f"echo {i}"]}
        roll = rng.random()
        if i and roll < 0.6:
            stage["needs"] = rng.sample(names[:i], rng.randint(1, min(3, i)))
        elif roll < 0.7:
            stage["needs"] = []
        stage["when"] = rng.choice(["on_success", "on_success", "always", "on_failure"])
        stage["allow_failure"] = rng.random() < 0.3
        stage["retry"] = rng.randint(0, 4)
        stage["timeout"] = rng.choice([30, 300, 3601])
        stages.append(stage)
    return PipelineConfig(f"random-{seed}", stages, variables={"A": "1"})


def _edges(config: PipelineConfig) -> set[tuple[str, str]]:
    return {(stage, dep) for stage, deps in config.dependencies().items() for dep in deps}


@pytest.mark.parametrize("seed", range(5))
def test_github_export_round_trip_keeps_every_edge(seed: int) -> None:
    config = _random_pipeline(seed)
    doc = yaml.safe_load(to_github_actions(config))
    jobs = doc["jobs"]
    name_of = {job_id: job["name"] for job_id, job in jobs.items()}
    assert sorted(name_of.values()) == sorted(s.name for s in config.stage_list)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", job_id) for job_id in jobs)
    assert len({j.lower() for j in jobs}) == len(jobs)
    edges = {(name_of[j], name_of[need]) for j, job in jobs.items() for need in job.get("needs", [])}
    assert edges == _edges(config)
    for stage in config.stage_list:
        job = next(job for job in jobs.values() if job["name"] == stage.name)
        assert job["runs-on"] == "ubuntu-latest"
        assert job["steps"][0] == {"uses": "actions/checkout@v4"}
        assert [s["run"] for s in job["steps"][1:]] == list(stage.commands)
        assert job.get("if") == {"on_success": None, "always": "always()", "on_failure": "failure()"}[stage.when]
        assert job.get("continue-on-error", False) is stage.allow_failure
        assert job["timeout-minutes"] == -(-int(stage.timeout) // 60)
    assert doc["on"] == ["push", "pull_request"] and doc["env"] == {"A": "1"}


@pytest.mark.parametrize("seed", range(5))
def test_gitlab_export_round_trip_keeps_every_edge(seed: int) -> None:
    config = _random_pipeline(seed)
    text = to_gitlab_ci(config)
    doc = yaml.safe_load(text)
    jobs = {k: v for k, v in doc.items() if k not in ("stages", "variables", "default")}
    assert "stages" not in jobs and "pages" not in jobs  # reserved words are renamed
    assert len(jobs) == len(config.stage_list)
    ids = list(jobs)
    name_of = dict(zip(ids, (s.name for s in config.stage_list), strict=True))
    edges = {(name_of[j], name_of[need]) for j, job in jobs.items() for need in job["needs"]}
    assert edges == _edges(config)
    for job_id, job in jobs.items():
        stage = config.stage(name_of[job_id])
        assert job["script"] == list(stage.commands)
        assert job.get("when", "on_success") == stage.when
        assert job.get("allow_failure", False) is stage.allow_failure
        assert job.get("retry", 0) == min(stage.retry, 2)
        assert job["timeout"] == f"{-(-int(stage.timeout) // 60)}m"
        assert job["stage"] in doc["stages"]
        for need in job["needs"]:  # a need is in an earlier GitLab stage
            assert doc["stages"].index(jobs[need]["stage"]) < doc["stages"].index(job["stage"])
    if any(s.retry > 2 for s in config.stage_list):
        assert "clamped to GitLab's maximum of 2" in text


def test_export_of_the_example_and_stage_kinds(repo_root: Path, tmp_path: Path) -> None:
    config = load_pipeline(repo_root / "examples/ci/pipeline.yaml")
    gh = yaml.safe_load(to_github_actions(config, python="3.11", setup=["pip install -e ."]))
    unit = gh["jobs"]["unit"]
    assert unit["needs"] == ["lint"]
    assert unit["steps"][1] == {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}}
    assert unit["steps"][2] == {"run": "pip install -e ."}
    assert unit["steps"][3]["run"].startswith("python -m pytest --orchestrate examples/ci/tests")
    assert gh["jobs"]["cleanup"]["if"] == "always()"
    write(tmp_path / "k.yaml", "stages:\n  - name: s\n    script: tools/do.py --fast\n  - name: t\n    script: x.sh\n")
    gl = yaml.safe_load(CICDBridge().export(tmp_path / "k.yaml", "gitlab"))
    assert gl["s"]["script"] == ["python tools/do.py --fast"] and gl["t"]["script"] == ["bash x.sh"]


# -- CICDBridge ----------------------------------------------------------------------------------------------------
def test_cicd_bridge_run_stage_sync_and_async(tmp_path: Path) -> None:
    bridge = CICDBridge(env={})
    counter = tmp_path / "n"
    flaky = f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; [ "$n" -ge 1 ]'
    result = bridge.run_stage({"name": "flaky", "commands": [flaky], "retry": 2, "retry_delay": 0.01})
    assert isinstance(result, StageResult) and result.success and result.attempts == 2
    result = bridge.run_stage({"name": "env", "commands": ["echo $A$B"], "environment": {"A": "1"}}, env={"B": "2"})
    assert result.results[0].stdout == "12\n"
    allowed = bridge.run_stage({"name": "x", "commands": ["exit 1"], "allow_failure": True})
    assert not allowed.success and allowed.allowed_failure

    async def inside_a_loop() -> StageResult:
        with pytest.raises(WorkflowError, match="arun_stage"):
            bridge.run_stage({"name": "x", "commands": ["true"]})
        return await bridge.arun_stage({"name": "x", "commands": ["echo async"]})

    assert asyncio.run(inside_a_loop()).results[0].stdout == "async\n"
    wf = bridge.create_workflow_from_pipeline([{"name": "a", "commands": ["true"]}], name="from-list")
    assert asyncio.run(wf.run())["a"].success and wf.name == "from-list"


def test_cicd_bridge_on_github_groups_stage_output(capsys: pytest.CaptureFixture[str]) -> None:
    bridge = CICDBridge("github", env={})
    bridge.run_stage({"name": "grouped", "commands": ["echo inside"]})
    assert capsys.readouterr().out.splitlines() == ["::group::grouped", "$ echo inside", "inside", "::endgroup::"]
    with pytest.raises(WorkflowError, match="unknown CI provider"):
        CICDBridge("jenkins")


# -- OrchestratorBridge ----------------------------------------------------------------------------------------------
def _sleepy(name: str, seconds: float) -> Workflow:
    async def nap() -> str:
        await asyncio.sleep(seconds)
        return name

    return Workflow(name).add_task("nap", nap)


def test_bridge_submit_status_result(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", "name: fromfile\nstages:\n  - name: a\n    commands: ['echo a']\n")
    with OrchestratorBridge() as bridge:
        wf_id = bridge.submit(_sleepy("wf", 0.3))
        assert bridge.status(wf_id) in ("pending", "running")
        file_id = bridge.submit(path)
        config_id = bridge.submit(PipelineConfig("cfg", [{"name": "bad", "commands": ["exit 1"]}]))
        summary = bridge.result(wf_id, timeout=20)
        assert summary["status"] == "completed" and summary["success"] and summary["name"] == "wf"
        assert bridge.result(file_id, timeout=20)["pipeline"] == "fromfile"
        failed = bridge.result(config_id, timeout=20)
        assert failed["status"] == "failed" and "exited with status 1" in failed["error"]
        assert bridge.status(config_id) == "failed"
        runs = bridge.list_runs()
        assert [r["run_id"] for r in runs] == [wf_id, file_id, config_id]
        assert {r["status"] for r in runs} == {"completed", "failed"}
        with pytest.raises(WorkflowError, match="unknown run id"):
            bridge.status("nope")
        with pytest.raises(TimeoutError):
            bridge.result(bridge.submit(_sleepy("slow", 1.0)), timeout=0.05)


def test_bridge_cancel_running_and_pending(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    config = PipelineConfig("long", [{"name": "sleep", "commands": [f"echo $$ > {pid_file}; sleep 30"]}])
    with OrchestratorBridge() as bridge:
        run_id = bridge.submit(config)
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert bridge.status(run_id) == "running"
        t0 = time.monotonic()
        assert bridge.cancel(run_id) is True
        summary = bridge.result(run_id, timeout=15)
        assert time.monotonic() - t0 < 8
        assert summary["status"] == "cancelled" and summary["tasks"]["sleep"]["status"] == "cancelled"
        assert bridge.cancel(run_id) is False  # already finished
        done = bridge.submit(_sleepy("quick", 0))
        bridge.result(done, timeout=10)
        assert bridge.cancel(done) is False


def test_bridge_from_many_threads() -> None:
    with OrchestratorBridge() as bridge:

        def client(i: int) -> tuple[str, dict[str, Any]]:
            run_id = bridge.submit(_sleepy(f"wf{i}", 0.2))
            bridge.status(run_id)
            bridge.list_runs()
            return run_id, bridge.result(run_id, timeout=20)

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(client, range(16)))
        assert time.monotonic() - t0 < 3  # they ran side by side on the bridge's loop
        assert len({run_id for run_id, _ in outcomes}) == 16
        assert all(summary["status"] == "completed" for _, summary in outcomes)
        assert sorted(r["name"] for r in bridge.list_runs()) == sorted(f"wf{i}" for i in range(16))
        # cancel from another thread while a third waits for the result
        slow = bridge.submit(_sleepy("slow", 30))
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            waiting = pool.submit(bridge.result, slow, 20)
            time.sleep(0.1)
            assert pool.submit(bridge.cancel, slow).result(5) is True
            assert waiting.result(20)["status"] == "cancelled"
    with pytest.raises(WorkflowError, match="closed"):
        bridge.submit(_sleepy("late", 0))
