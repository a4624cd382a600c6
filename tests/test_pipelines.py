"""Tests of ``pytest_orchestrator.pipelines``: real YAML files in ``tmp_path`` and real subprocesses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import io
import json
import os
from pathlib import Path
import subprocess
import sys
import time
from typing import Any

import pytest
from script_helpers import write

from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.errors import TaskFailedError
from pytest_orchestrator.orchestrator import run_pipeline_file
from pytest_orchestrator.pipelines import ConfigError
from pytest_orchestrator.pipelines import PipelineConfig
from pytest_orchestrator.pipelines import StageConfig
from pytest_orchestrator.pipelines import StageResult
from pytest_orchestrator.pipelines import create_pipeline_workflow
from pytest_orchestrator.pipelines import load_pipeline
from pytest_orchestrator.pipelines import run_ci_stage


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux process groups")

#: the ``run_workflow`` fixture (conftest.py)
Run = Callable[..., Any]


def bad(tmp_path: Path, body: str) -> ConfigError:
    path = write(tmp_path / "pipeline.yaml", body)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    return info.value


# -- configuration ---------------------------------------------------------------------------------------------
def test_stage_defaults_and_normalisation() -> None:
    stage = StageConfig("build", commands="make", environment={"N": 1, "ON": True}, pytest=None)
    assert stage.commands == ["make"]
    assert (stage.needs, stage.allow_failure, stage.timeout, stage.retry, stage.when, stage.shell) == (
        None,
        False,
        300.0,
        0,
        "on_success",
        True,
    )
    assert stage.environment == {"N": "1", "ON": "true"}
    assert stage.kind == "commands" and stage.trigger_rule == "all_success"
    assert StageConfig("t", pytest="tests -k 'a and b'").pytest == ["tests", "-k", "a and b"]
    assert StageConfig("c", commands=["x"], when="always").trigger_rule == "all_done"
    assert StageConfig("c", commands=["x"], when="on_failure").trigger_rule == "one_failed"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "nothing to run"),
        ({"commands": ["a"], "script": "x.py"}, "only one of"),
        ({"commands": ["a"], "when": "on_sucess"}, "did you mean 'on_success'"),
        ({"commands": ["a"], "timeout": 0}, "timeout must be a positive number"),
        ({"commands": ["a"], "timeout": "fast"}, "timeout must be a positive number"),
        ({"commands": ["a"], "retry": -1}, "retry is a number of extra attempts"),
        ({"commands": ["a"], "retry": True}, "retry is a number of extra attempts"),
        ({"commands": ["a"], "allow_failure": "yes"}, "allow_failure must be true or false"),
        ({"commands": ["a"], "environment": {"X": [1]}}, "must be a string or a number"),
        ({"commands": [""]}, "a command is empty"),
    ],
)
def test_stage_validation(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        StageConfig("s", **kwargs)
    assert "stage 's'" in info.value.message


def test_implicit_dependencies() -> None:
    config = PipelineConfig(
        "p",
        [
            {"name": "a", "commands": ["true"]},
            {"name": "b", "commands": ["true"]},
            {"name": "side", "commands": ["true"], "needs": []},
            {"name": "notify", "commands": ["true"], "when": "on_failure"},
            {"name": "c", "commands": ["true"]},
            {"name": "d", "commands": ["true"], "needs": ["a", "side"]},
            {"name": "cleanup", "commands": ["true"], "when": "always"},
        ],
    )
    assert config.dependencies() == {
        "a": [],
        "b": ["a"],
        "side": [],
        "notify": ["a", "b", "side"],
        "c": ["side"],  # the closest earlier on_success stage; notify is skipped over
        "d": ["a", "side"],
        "cleanup": ["a", "b", "side", "notify", "c", "d"],
    }


def test_pipeline_validation_errors() -> None:
    with pytest.raises(ConfigError, match=r"needs unknown stage 'biuld'; did you mean 'build'\?"):
        PipelineConfig("p", [{"name": "build", "commands": ["x"]}, {"name": "t", "commands": ["x"], "needs": "biuld"}])
    with pytest.raises(ConfigError, match="dependency cycle: a -> b -> a") as info:
        PipelineConfig(
            "p", [{"name": "a", "commands": ["x"], "needs": ["b"]}, {"name": "b", "commands": ["x"], "needs": ["a"]}]
        )
    assert info.value.context["cycle"] == ["a", "b", "a"]
    with pytest.raises(ConfigError, match="duplicate stage name"):
        PipelineConfig("p", [{"name": "a", "commands": ["x"]}, {"name": "a", "commands": ["y"]}])
    with pytest.raises(ConfigError, match="no stages"):
        PipelineConfig("p", [])


def test_load_list_and_mapping_forms_are_equal(tmp_path: Path) -> None:
    listed = write(
        tmp_path / "a.yaml",
        """
        name: ci
        variables: {A: 1}
        timeout: 60
        fail_fast: false
        stages:
          - name: lint
            commands: [ruff check .]
          - name: test
            pytest: [tests, -q]
            retry: 2
        """,
    )
    mapped = write(
        tmp_path / "b.yaml",
        """
        name: ci
        variables: {A: 1}
        timeout: 60
        fail_fast: false
        stages:
          lint:
            commands: [ruff check .]
          test:
            pytest: [tests, -q]
            retry: 2
        """,
    )
    a, b = load_pipeline(listed), load_pipeline(mapped)
    assert a == b
    assert (a.name, a.variables, a.timeout, a.fail_fast) == ("ci", {"A": "1"}, 60.0, False)
    assert a.stage("test").retry == 2 and a.dependencies() == {"lint": [], "test": ["lint"]}
    assert a.stage_lines == {"lint": 6, "test": 8} and b.stage_lines == {"lint": 6, "test": 8}


def test_unknown_stage_key_names_file_line_and_close_match(tmp_path: Path) -> None:
    err = bad(
        tmp_path,
        """
        stages:
          - name: build
            commands: [make]
          - name: test
            commands: [make test]
            need: [build]
        """,
    )
    assert (
        err.message == f"{tmp_path / 'pipeline.yaml'}:6: stage 'test': unknown stage key 'need' (did you mean 'needs'?)"
    )
    assert err.context["line"] == 6 and err.context["stage"] == "test"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    err = bad(tmp_path, "name: x\nvariable: {A: 1}\nstages: [{name: a, commands: [x]}]\n")
    assert ":2: unknown pipeline key 'variable' (did you mean 'variables'?)" in err.message


def test_unknown_needs_with_suggestion_and_line(tmp_path: Path) -> None:
    err = bad(
        tmp_path,
        """
        stages:
          build:
            commands: [make]
          test:
            commands: [make test]
            needs: [biuld]
        """,
    )
    assert err.message.endswith(":6: stage 'test': needs unknown stage 'biuld'; did you mean 'build'?")


def test_cycle_names_path_and_line(tmp_path: Path) -> None:
    err = bad(
        tmp_path,
        """
        stages:
          - name: a
            commands: [x]
            needs: [c]
          - name: b
            commands: [x]
            needs: [a]
          - name: c
            commands: [x]
            needs: [b]
        """,
    )
    assert ":4: stage 'a': dependency cycle: a -> c -> b -> a" in err.message


def test_wrong_type_names_line(tmp_path: Path) -> None:
    err = bad(tmp_path, "stages:\n  - name: a\n    commands: [x]\n    timeout: fast\n")
    assert err.message.endswith(":4: stage 'a': timeout must be a positive number of seconds, got 'fast'")
    err = bad(tmp_path, "stages:\n  - name: a\n    commands: {x: 1}\n")
    assert ":3: stage 'a': commands must be a string or a list of strings" in err.message
    err = bad(tmp_path, "stages: nope\n")
    assert ":1: stages must be a list of stages" in err.message


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    err = bad(tmp_path, "name: x\nstages:\n  - name: a\n    commands: [x\n  - name: b\n")
    assert "invalid YAML" in err.message
    assert err.context["line"] in (4, 5, 6)
    assert err.message.startswith(f"{tmp_path / 'pipeline.yaml'}:{err.context['line']}: ")


def test_other_bad_files(tmp_path: Path) -> None:
    assert "got an empty file" in bad(tmp_path, "").message
    assert "got a list" in bad(tmp_path, "- a\n").message
    assert ":3: duplicate key 'name'" in bad(tmp_path, "stages:\n  - name: a\n    name: b\n").message
    assert ":2: stage #1 has no name" in bad(tmp_path, "stages:\n  - commands: [x]\n").message
    with pytest.raises(FileNotFoundError):
        load_pipeline(tmp_path / "missing.yaml")


# -- run_ci_stage ------------------------------------------------------------------------------------------------
def test_run_ci_stage_contract_example() -> None:
    result = asyncio.run(run_ci_stage("t", ["echo $X", "exit 2", "echo never"], env={"X": "y"}))
    assert isinstance(result, StageResult)
    assert result.success is False and result.commands_executed == 2 and result.stage == "t"
    assert [r.command for r in result.results] == ["echo $X", "exit 2"]
    assert result.results[0].stdout == "y\n" and result.results[0].returncode == 0
    assert result.results[1].returncode == 2 and "exited with status 2" in (result.results[1].error or "")
    assert result.allowed_failure is False
    json.dumps(result.to_dict())


def test_run_ci_stage_unstartable_command_is_a_failed_line() -> None:
    result = asyncio.run(run_ci_stage("t", ["definitely-not-a-program-xyz --x"], shell=False))
    assert result.success is False and result.commands_executed == 1
    assert result.results[0].returncode is None and "cannot start" in (result.results[0].error or "")
    allowed = asyncio.run(run_ci_stage("t", ["exit 1"], allow_failure=True))
    assert allowed.success is False and allowed.allowed_failure is True


def test_run_ci_stage_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    t0 = time.monotonic()
    result = asyncio.run(run_ci_stage("slow", [f"sleep 30 & echo $! > {pid_file}; wait"], timeout=0.5))
    assert time.monotonic() - t0 < 6
    assert result.success is False and result.timed_out is True
    assert "timed out after 0.5 s" in (result.error or "")
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 3
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        if state in ("Z", "X"):
            break
        time.sleep(0.05)
    else:
        assert not Path(f"/proc/{pid}").exists()


# -- workflows -----------------------------------------------------------------------------------------------------
def test_independent_stages_run_concurrently(run_workflow: Run) -> None:
    wf = create_pipeline_workflow(
        [{"name": "a", "commands": ["sleep 0.5"]}, {"name": "b", "commands": ["sleep 0.5"], "needs": []}]
    )
    assert wf.name == "pipeline" and wf.fail_fast is True
    t0 = time.monotonic()
    results = run_workflow(wf)
    assert time.monotonic() - t0 < 0.95
    assert results["a"].success and results["b"].success


def test_retry_counts(tmp_path: Path, run_workflow: Run) -> None:
    counter = tmp_path / "n"
    # fails on the first two attempts, passes on the third
    flaky = f'n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ "$n" -ge 3 ]'
    wf = create_pipeline_workflow(
        [
            {"name": "flaky", "commands": [flaky], "retry": 2, "retry_delay": 0.05},
            {"name": "broken", "commands": ["exit 1"], "retry": 1, "retry_delay": 0.05, "needs": []},
        ],
        fail_fast=False,
    )
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    assert info.value.failed == ["broken"]
    summary = wf.get_summary()
    assert summary["tasks"]["flaky"]["attempts"] == 3 and summary["tasks"]["flaky"]["status"] == "completed"
    assert summary["tasks"]["broken"]["attempts"] == 2 and summary["tasks"]["broken"]["status"] == "failed"
    assert counter.read_text().strip() == "3"
    assert wf.stage_results["flaky"].attempts == 3
    assert len(wf.attempt_errors["flaky"]) == 2


def test_allow_failure_is_a_warning_and_dependents_run(run_workflow: Run) -> None:
    wf = create_pipeline_workflow(
        [
            {"name": "optional", "commands": ["echo oops >&2; exit 3"], "allow_failure": True, "retry": 1,
             "retry_delay": 0.01},
            {"name": "after", "commands": ["echo ran"]},
        ]
    )  # fmt: skip
    results = run_workflow(wf)
    assert results["optional"].allowed_failure is True and results["optional"].success is False
    assert results["after"].success
    summary = wf.get_summary()
    assert summary["success"] is True
    assert summary["tasks"]["optional"]["attempts"] == 2
    assert summary["warnings"] == [
        {"stage": "optional", "error": "command 'echo oops >&2; exit 3' exited with status 3"}
    ]
    assert summary["stages"]["optional"]["allowed_failure"] is True


def test_when_always_and_on_failure(run_workflow: Run) -> None:
    stages = [
        {"name": "build", "commands": ["exit 1"]},
        {"name": "test", "commands": ["echo never"]},
        {"name": "notify", "commands": ["echo failed"], "when": "on_failure"},
        {"name": "cleanup", "commands": ["echo clean"], "when": "always"},
    ]
    wf = create_pipeline_workflow(stages)
    with pytest.raises(TaskFailedError):
        run_workflow(wf)
    status = {n: t.status for n, t in wf.tasks.items()}
    assert status == {
        "build": TaskStatus.FAILED,
        "test": TaskStatus.CANCELLED,
        "notify": TaskStatus.COMPLETED,
        "cleanup": TaskStatus.COMPLETED,
    }
    stages[0]["commands"] = ["true"]
    wf = create_pipeline_workflow(stages)
    run_workflow(wf)
    status = {n: t.status for n, t in wf.tasks.items()}
    assert status["notify"] is TaskStatus.SKIPPED and status["cleanup"] is TaskStatus.COMPLETED
    assert status["test"] is TaskStatus.COMPLETED


def test_fail_fast_off_skips_dependents_only(run_workflow: Run) -> None:
    wf = create_pipeline_workflow(
        [
            {"name": "a", "commands": ["exit 1"]},
            {"name": "b", "commands": ["true"]},
            {"name": "c", "commands": ["sleep 0.2"], "needs": []},
        ],
        fail_fast=False,
    )
    with pytest.raises(TaskFailedError):
        run_workflow(wf)
    assert wf.tasks["b"].status is TaskStatus.SKIPPED and "'a'" in (wf.tasks["b"].result.reason or "")  # type: ignore[union-attr]
    assert wf.tasks["c"].status is TaskStatus.COMPLETED


def test_stage_timeout_and_pipeline_timeout(run_workflow: Run) -> None:
    wf = create_pipeline_workflow([{"name": "slow", "commands": ["sleep 20"], "timeout": 0.3}])
    t0 = time.monotonic()
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    assert time.monotonic() - t0 < 6
    assert isinstance(info.value.__cause__, OrchestratorTimeoutError)
    assert wf.stage_results["slow"].timed_out
    config = PipelineConfig("p", [{"name": "slow", "commands": ["sleep 20"]}], timeout=0.3)
    wf = create_pipeline_workflow(config)
    t0 = time.monotonic()
    with pytest.raises(OrchestratorTimeoutError):
        run_workflow(wf)
    assert time.monotonic() - t0 < 6
    assert wf.tasks["slow"].status is TaskStatus.CANCELLED


def test_variables_environment_and_shell_false(tmp_path: Path, run_workflow: Run) -> None:
    config = PipelineConfig(
        "vars",
        [
            {"name": "a", "commands": ['echo "$A $B $ORCHESTRATE_STAGE $ORCHESTRATE_PIPELINE"'],
             "environment": {"B": "stage"}},
            {"name": "b", "commands": ["echo $A"], "shell": False},
        ],
        variables={"A": "pipe", "B": "pipe"},
    )  # fmt: skip
    results = run_workflow(create_pipeline_workflow(config, run_dir=tmp_path / "run"))
    assert results["a"].results[0].stdout == "pipe stage a vars\n"
    assert results["b"].results[0].stdout == "$A\n"  # no shell: no expansion
    log = (tmp_path / "run" / "logs" / "a.log").read_text()
    assert "attempt 1 of 1: passed" in log and "pipe stage a vars" in log


def test_script_stage(tmp_path: Path, run_workflow: Run) -> None:
    script = write(tmp_path / "hello.py", "import sys, os\nprint('hello', sys.argv[1], os.environ['W'])\n")
    skipper = write(tmp_path / "skip.sh", "echo 'no data' >&2\nexit 77\n")
    wf = create_pipeline_workflow(
        [
            {"name": "hello", "script": f"{script} world", "environment": {"W": "!"}},
            {"name": "skip", "script": str(skipper)},
        ]
    )
    results = run_workflow(wf)
    assert results["hello"].success and results["hello"].results[0].stdout == "hello world !\n"
    assert results["skip"].success and "skipped itself: no data" in (results["skip"].error or "")


def _tests_dir(tmp_path: Path, *, failing: bool = False) -> Path:
    folder = tmp_path / "suite"
    write(
        folder / "test_small.py",
        f"""
        import pytest

        @pytest.mark.stage("unit")
        def test_unit():
            assert 1 + 1 == 2

        @pytest.mark.stage("slow")
        def test_other():
            assert {"False" if failing else "True"}
        """,
    )
    return folder


def test_pytest_stage_writes_junit_into_the_run_folder(
    tmp_path: Path, subprocess_env: dict[str, str], run_workflow: Run
) -> None:
    suite = _tests_dir(tmp_path, failing=True)
    run_dir = tmp_path / "run"
    wf = create_pipeline_workflow(
        [{"name": "unit tests", "pytest": [str(suite), "-q", "-p", "no:cacheprovider"]}],
        run_dir=run_dir,
        env={"PYTHONPATH": subprocess_env["PYTHONPATH"]},
    )
    with pytest.raises(TaskFailedError):
        run_workflow(wf, 60)
    result = wf.stage_results["unit tests"]
    assert result.results[0].command.startswith(f"{sys.executable} -m pytest --orchestrate ")
    assert result.junit_xml == str((run_dir / "unit_tests.xml").absolute())
    xml = Path(result.junit_xml).read_text()
    assert 'tests="2"' in xml and 'failures="1"' in xml
    assert "1 failed, 1 passed" in result.results[0].stdout


def _pytest_help_fails() -> str | None:
    """Why ``pytest --help`` fails in this environment (a plugin of the machine's that breaks under xdist), or None."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {proc.returncode}"


def test_pytest_stage_selects_a_stage(tmp_path: Path, subprocess_env: dict[str, str], run_workflow: Run) -> None:
    broken = _pytest_help_fails()
    if broken is not None:
        pytest.skip(f"pytest cannot start here: {broken}")
    suite = _tests_dir(tmp_path, failing=True)  # the failing test is in stage "slow", not selected
    wf = create_pipeline_workflow(
        [{"name": "unit", "pytest": [str(suite), "-q", "-p", "no:cacheprovider", "--orchestrate-stage", "unit"]}],
        env={"PYTHONPATH": subprocess_env["PYTHONPATH"]},
    )
    results = run_workflow(wf, 60)
    assert "1 passed" in results["unit"].results[0].stdout
    assert "failed" not in results["unit"].results[0].stdout


# -- run_pipeline_file ------------------------------------------------------------------------------------------
def test_run_pipeline_file_success_writes_the_run_folder(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.yaml",
        """
        name: small
        stages:
          - name: one
            commands: ["echo first"]
          - name: two
            commands: ["echo second"]
            allow_failure: true
          - name: three
            commands: ["exit 4"]
            allow_failure: true
        """,
    )
    err, out = io.StringIO(), io.StringIO()
    code = run_pipeline_file(path, run_dir=tmp_path / "runs", stream=err, out=out)
    assert code == 0
    (folder,) = (tmp_path / "runs").iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["kind"] == "pipeline" and summary["success"] is True and summary["exit_code"] == 0
    assert summary["scripts"]["one"]["status"] == "passed"
    assert summary["scripts"]["three"]["reason"].startswith("allowed failure")
    assert summary["warnings"] == [{"stage": "three", "error": "command 'exit 4' exited with status 4"}]
    assert "$ echo first\nfirst\n" in (folder / "logs" / "one.log").read_text()
    assert "START one" in err.getvalue() and "WARN three" in err.getvalue()
    text = out.getvalue()
    assert text.startswith("pipeline 'small'") and "warnings:" in text and "run folder:" in text


def test_run_pipeline_file_failure_and_bad_yaml(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", "stages:\n  - name: boom\n    commands: ['echo out; echo bad >&2; exit 1']\n")
    out = io.StringIO()
    assert run_pipeline_file(path, ["-q", "--run-dir", str(tmp_path / "runs")], stream=io.StringIO(), out=out) == 1
    assert "FAIL boom" in out.getvalue() and "| bad" in out.getvalue()
    broken = write(tmp_path / "broken.yaml", "stages:\n  - name: a\n    comands: [x]\n")
    err = io.StringIO()
    assert run_pipeline_file(broken, stream=err) == 2
    assert err.getvalue() == (
        f"orchestrate: error: {broken}:3: stage 'a': unknown stage key 'comands' (did you mean 'commands'?)\n"
    )


def test_orchestrate_run_yaml_through_the_cli(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    write(tmp_path / "ok.yaml", "stages:\n  - name: a\n    commands: [echo hi]\n  - name: b\n    commands: [exit 3]\n")
    write(tmp_path / "bad.yaml", "stages:\n  - name: a\n    commands: [x]\n    needs: [zz]\n")
    cmd = [sys.executable, "-m", "pytest_orchestrator.cli", "run"]
    proc = subprocess.run(
        [*cmd, "ok.yaml"], cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1, proc.stderr
    assert "START a" in proc.stderr and "FAIL b" in proc.stderr
    assert (tmp_path / ".orchestrate" / "runs").is_dir()
    proc = subprocess.run(
        [*cmd, "bad.yaml"], cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert "bad.yaml:4: stage 'a': needs unknown stage 'zz'" in proc.stderr


def test_example_pipeline_runs(
    repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, subprocess_env: dict[str, str]
) -> None:
    config = load_pipeline(repo_root / "examples/ci/pipeline.yaml")
    assert config.dependencies()["etl"] == ["lint"] and config.dependencies()["unit"] == ["lint"]
    # a work folder whose examples/ is the repository's, so that nested run folders land in tmp_path
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(repo_root / "examples")
    monkeypatch.chdir(work)
    monkeypatch.setenv("ETL_WORKDIR", str(tmp_path / "etl-work"))
    monkeypatch.setenv("PYTHONPATH", subprocess_env["PYTHONPATH"])
    bin_dir = Path(sys.executable).parent  # `orchestrate` is installed next to this interpreter
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    out = io.StringIO()
    code = run_pipeline_file("examples/ci/pipeline.yaml", run_dir=tmp_path / "runs", stream=io.StringIO(), out=out)
    assert code == 0, out.getvalue()
    (folder,) = (tmp_path / "runs").iterdir()
    assert (folder / "unit.xml").is_file()
    assert "revenue by region" in (folder / "logs" / "report.log").read_text()
