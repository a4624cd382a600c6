"""Tests of ``pytest_orchestrator.orchestrator``: a folder of real scripts run as a DAG (real subprocesses)."""

from __future__ import annotations

import json
import os
from pathlib import Path
import re
import sys
import time
from typing import Any

from proc_helpers import live_members
import pytest

from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.orchestrator import RunOptions
from pytest_orchestrator.orchestrator import build_plan
from pytest_orchestrator.orchestrator import run_orchestrator
from pytest_orchestrator.orchestrator import run_plan
from pytest_orchestrator.orchestrator.driver import RunDriver
from pytest_orchestrator.orchestrator.execute import ScriptsRun
from pytest_orchestrator.reporting.runfolder import RunFolder


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc and bash")

# a script that records when it started and ended (in <tmp_path>/times/<stem>.start|.end) around a sleep
TIMED = """
import os, pathlib, time
times = pathlib.Path(os.environ["TIMES_DIR"])
times.mkdir(exist_ok=True)
name = pathlib.Path(__file__).stem
(times / (name + ".start")).write_text(repr(time.time()))
time.sleep({sleep})
(times / (name + ".end")).write_text(repr(time.time()))
"""


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def write_script(folder: Path, filename: str, body: str = "", **meta: Any) -> Path:
    """Write a script with a PEP 723 ``[tool.orchestrate]`` block made of ``meta``."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    if meta:
        lines += ["# /// script", "# [tool.orchestrate]"]
        lines += [f"# {key} = {_toml(value)}" for key, value in meta.items()]
        lines += ["# ///"]
    path = folder / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n" + body.lstrip("\n"))
    return path


def times(tmp_path: Path, name: str) -> tuple[float, float]:
    folder = tmp_path / "times"
    return float((folder / f"{name}.start").read_text()), float((folder / f"{name}.end").read_text())


def only_run(runs: Path) -> Path:
    folders = [p for p in runs.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def summary_of(runs: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((only_run(runs) / "summary.json").read_text())
    return data


@pytest.fixture(autouse=True)
def _times_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMES_DIR", str(tmp_path / "times"))


def run(scripts: Path, runs: Path, *extra: str) -> int:
    return run_orchestrator([str(scripts), "--run-dir", str(runs), *extra])


# -- the DAG ---------------------------------------------------------------------------------------------------
def test_dependencies_from_metadata_are_respected(tmp_path: Path) -> None:
    """A diamond: b and c start after a ended, d after both; names by stem, file name and relative path."""
    s = tmp_path / "s"
    write_script(s, "a.py", TIMED.format(sleep=0.1))
    write_script(s, "b.py", TIMED.format(sleep=0.2), depends=["a"])
    write_script(s, "sub/c.py", TIMED.format(sleep=0.1), depends="a.py")
    write_script(s, "d.py", TIMED.format(sleep=0.0), depends=["b", "sub/c.py"])
    plan = build_plan(s)
    assert plan.ok, plan.problems
    assert plan.graph == {"a": [], "b": ["a"], "d": ["b", "c"], "c": ["a"]}

    assert run(s, tmp_path / "runs", "-j", "4", "-q") == 0
    a, b, c, d = (times(tmp_path, n) for n in "abcd")
    assert b[0] >= a[1] and c[0] >= a[1]
    assert d[0] >= max(b[1], c[1])
    assert b[0] < c[1] and c[0] < b[1], "b and c should overlap at -j 4"


def test_stems_that_clash_are_named_by_path(tmp_path: Path) -> None:
    s = tmp_path / "s"
    write_script(s, "x/load.py")
    write_script(s, "y/load.py")
    write_script(s, "after.py", depends=["x/load.py", "y/load"])
    plan = build_plan(s)
    assert plan.ok, plan.problems
    assert plan.graph["after"] == ["x/load.py", "y/load.py"]


def test_parallelism_follows_jobs(tmp_path: Path) -> None:
    """Four 1 s scripts at -j 4 run side by side (their spans overlap); at -j 2 at most two overlap."""
    s = tmp_path / "s"
    for name in "pqrs":
        write_script(s, f"{name}.py", TIMED.format(sleep=1.0))
    assert run(s, tmp_path / "runs4", "-j", "4", "-q") == 0
    spans = [times(tmp_path, n) for n in "pqrs"]
    assert max(sum(1 for s0, s1 in spans if s0 <= start < s1) for start, _ in spans) >= 3

    assert run(s, tmp_path / "runs2", "-j", "2", "-q") == 0
    spans = [times(tmp_path, n) for n in "pqrs"]
    for start, _ in spans:
        overlapping = sum(1 for s0, s1 in spans if s0 <= start < s1)
        assert overlapping <= 2


# -- outcomes ----------------------------------------------------------------------------------------------------
FLAKY = """
import pathlib, sys
marker = pathlib.Path(__file__).with_suffix(".attempted")
if not marker.exists():
    marker.write_text("x")
    print("transient trouble", file=sys.stderr)
    sys.exit(1)
print("fine now")
"""


def test_retries_from_metadata_and_from_the_flag(tmp_path: Path) -> None:
    s = tmp_path / "s"
    write_script(s, "flaky.py", FLAKY, retry={"max_attempts": 3, "initial_delay": 0.05})
    write_script(s, "flaky2.py", FLAKY)
    runs = tmp_path / "runs"
    assert run(s, runs, "-q", "--retries", "1") == 0
    scripts = summary_of(runs)["scripts"]
    assert scripts["flaky"]["status"] == "passed" and scripts["flaky"]["attempts"] == 2
    assert scripts["flaky"]["max_attempts"] == 3
    assert scripts["flaky2"]["attempts"] == 2 and scripts["flaky2"]["max_attempts"] == 2
    assert scripts["flaky"]["attempt_errors"] == ["exited with status 1"]


def test_without_retries_a_flaky_script_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = tmp_path / "s"
    write_script(s, "flaky.py", FLAKY)
    assert run(s, tmp_path / "runs", "-q") == 1
    out = capsys.readouterr().out
    assert "FAIL flaky: exited with status 1" in out
    assert "| transient trouble" in out


def test_timeout_kills_the_script_and_its_children(tmp_path: Path) -> None:
    s = tmp_path / "s"
    write_script(
        s,
        "hang.sh",
        f'echo $$ > "{tmp_path}/pgid"\nsleep 30 &\nwait\n',
        timeout=0.5,
    )
    runs = tmp_path / "runs"
    t0 = time.monotonic()
    assert run(s, runs, "-q") == 1
    assert time.monotonic() - t0 < 10
    entry = summary_of(runs)["scripts"]["hang"]
    assert entry["status"] == "timeout"
    assert entry["reason"] == "timed out after 0.5 s"
    pgid = int((tmp_path / "pgid").read_text())
    assert not live_members(pgid, wait=3.0)


def test_timeout_flag_is_the_default_for_scripts_without_one(tmp_path: Path) -> None:
    s = tmp_path / "s"
    write_script(s, "slow.py", "import time\ntime.sleep(5)\n")
    write_script(s, "own.py", "import time\ntime.sleep(0.6)\n", timeout=5)
    runs = tmp_path / "runs"
    assert run(s, runs, "-q", "--timeout", "0.3") == 1
    scripts = summary_of(runs)["scripts"]
    assert scripts["slow"]["status"] == "timeout" and scripts["slow"]["timeout"] == 0.3
    assert scripts["own"]["status"] == "passed" and scripts["own"]["timeout"] == 5


def test_exit_77_skips_the_script_and_its_dependents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = tmp_path / "s"
    write_script(s, "gate.py", "import sys\nprint('no credentials', file=sys.stderr)\nsys.exit(77)\n")
    write_script(s, "child.py", "open('child-ran', 'w')\n", depends=["gate"])
    write_script(s, "grandchild.py", "open('grandchild-ran', 'w')\n", depends=["child"])
    write_script(s, "other.py", "print('independent')\n")
    runs = tmp_path / "runs"
    assert run(s, runs) == 0
    scripts = summary_of(runs)["scripts"]
    assert scripts["gate"]["status"] == "skipped" and scripts["gate"]["reason"] == "no credentials"
    assert scripts["gate"]["exit_code"] == 77
    assert scripts["child"] == {**scripts["child"], "status": "skipped", "reason": "dependency 'gate' was skipped"}
    assert scripts["grandchild"]["status"] == "skipped"
    assert "child" in scripts["grandchild"]["reason"]
    assert scripts["other"]["status"] == "passed"
    assert not (tmp_path / "child-ran").exists() and not Path("child-ran").exists()
    err = capsys.readouterr().err
    assert re.search(r"\[ *\d/4\] SKIP gate \(\d+\.\d\ds, no credentials\)", err)
    assert "SKIP child (dependency 'gate' was skipped)" in err


def test_skip_marks_the_engine_task_skipped(tmp_path: Path) -> None:
    s = tmp_path / "s"
    write_script(s, "gate.py", "raise SystemExit(77)\n")
    write_script(s, "child.py", depends=["gate"])
    plan = build_plan(s)
    folder = RunFolder(tmp_path / "runs", "run-1")
    scripts_run = ScriptsRun(plan, RunOptions(quiet=True), folder)
    wf = scripts_run.build_workflow()
    report = RunDriver(wf, scripts_run, folder=folder, stream=None).run()
    assert [s.status for s in report.scripts] == ["skipped", "skipped"]
    assert wf.tasks["gate"].status is TaskStatus.SKIPPED
    assert wf.tasks["child"].status is TaskStatus.SKIPPED
    summary = wf.get_summary()
    assert summary["skipped"] == 2 and summary["completed"] == 0
    assert json.loads((tmp_path / "runs" / "run-1" / "summary.json").read_text())["run_id"] == "run-1"


def test_failure_exits_1_skips_dependents_and_runs_independent_branches(tmp_path: Path) -> None:
    s = tmp_path / "s"
    write_script(s, "bad.py", "import sys\nsys.exit(3)\n")
    write_script(s, "after_bad.py", "open('x', 'w')\n", depends=["bad"])
    write_script(s, "good.py", TIMED.format(sleep=0.3))
    runs = tmp_path / "runs"
    assert run(s, runs, "-q", "-j", "2") == 1
    data = summary_of(runs)
    assert data["success"] is False and data["exit_code"] == 1
    scripts = data["scripts"]
    assert scripts["bad"]["status"] == "failed" and scripts["bad"]["exit_code"] == 3
    assert data["scripts"]["bad"]["reason"] == "exited with status 3"
    assert scripts["after_bad"]["status"] == "skipped"
    assert scripts["after_bad"]["reason"] == "dependency 'bad' failed"
    assert scripts["good"]["status"] == "passed"


def test_fail_fast_kills_what_runs_and_starts_nothing_new(tmp_path: Path) -> None:
    s = tmp_path / "s"
    write_script(s, "bad.py", "import time, sys\ntime.sleep(0.2)\nsys.exit(1)\n")
    write_script(s, "long.sh", f'echo $$ > "{tmp_path}/pgid"\nsleep 30 & wait\n')
    write_script(s, "later.py", depends=["long"])
    runs = tmp_path / "runs"
    t0 = time.monotonic()
    assert run(s, runs, "-q", "-j", "2", "--fail-fast") == 1
    assert time.monotonic() - t0 < 10
    scripts = summary_of(runs)["scripts"]
    assert scripts["bad"]["status"] == "failed"
    assert scripts["long"]["status"] == "cancelled"
    assert "fail_fast" in scripts["long"]["reason"]
    assert scripts["later"]["status"] == "cancelled"
    assert not live_members(int((tmp_path / "pgid").read_text()), wait=3.0)


def test_a_script_that_cannot_run_is_an_error(tmp_path: Path) -> None:
    s = tmp_path / "s"
    write_script(s, "ok.py")
    plan = build_plan(s)
    (s / "ok.py").unlink()
    report = run_plan(plan, RunOptions(quiet=True, runs_dir=tmp_path / "runs"))
    assert report.exit_code == 1
    assert report.scripts[0].status == "error"
    assert "not found" in (report.scripts[0].reason or "")


def test_skip_in_the_config_file(tmp_path: Path) -> None:
    s = tmp_path / "s"
    write_script(s, "legacy.py", "open('legacy-ran', 'w')\n")
    write_script(s, "uses_legacy.py", depends=["legacy"])
    (tmp_path / "orchestrate.yaml").write_text("scripts:\n  s/legacy.py:\n    skip: true\n")
    runs = tmp_path / "runs"
    assert run(s, runs, "-q") == 0
    scripts = summary_of(runs)["scripts"]
    assert scripts["legacy"]["status"] == "skipped"
    assert scripts["legacy"]["reason"] == "skipped by configuration"
    assert scripts["uses_legacy"]["status"] == "skipped"


# -- the run folder and the output -----------------------------------------------------------------------------
def test_run_folder_has_a_log_per_script_and_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = tmp_path / "s"
    write_script(s, "hello.py", "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n")
    write_script(s, "world.sh", "echo shell says hi\nexit 4\n", depends=["hello"])
    write_script(s, "never.py", depends=["world.sh"])
    runs = tmp_path / "runs"
    assert run(s, runs) == 1
    folder = only_run(runs)
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", folder.name)
    hello = (folder / "logs" / "hello.log").read_text()
    assert f"command: {sys.executable} {s / 'hello.py'}" in hello
    assert "exit code: 0" in hello and "status: passed" in hello
    assert "----- stdout -----\nto stdout\n" in hello and "----- stderr -----\nto stderr\n" in hello
    world = (folder / "logs" / "world.log").read_text()
    assert "command: bash " in world and "exit code: 4" in world and "shell says hi" in world
    assert not (folder / "logs" / "never.log").exists()

    data = json.loads((folder / "summary.json").read_text())
    assert set(data["scripts"]) == {"hello", "world", "never"}
    assert data["counts"] == {
        "total": 3,
        "passed": 1,
        "failed": 1,
        "timeout": 0,
        "error": 0,
        "skipped": 1,
        "cancelled": 0,
        "not_run": 0,
    }
    assert data["scripts"]["hello"]["log"] == "logs/hello.log"
    assert data["scripts"]["never"]["log"] is None
    assert data["critical_path"] == ["hello", "world"]
    assert data["run_id"] == folder.name

    out, err = capsys.readouterr()
    assert "orchestrate: FAILED: 3 scripts" in out
    assert "1 passed, 1 failed, 1 skipped" in out
    assert "slowest:" in out and "critical path: hello -> world" in out
    assert f"run folder: {folder}" in out
    assert re.search(r"^\[ /3\] START hello$", err, re.M)
    assert re.search(r"^\[1/3\] PASS hello \(\d+\.\d\ds\)$", err, re.M)
    assert re.search(r"^\[2/3\] FAIL world \(\d+\.\d\ds, exited with status 4\)$", err, re.M)


def test_default_run_folder_is_under_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_script(tmp_path / "scripts", "one.py")
    assert run_orchestrator(["-q"]) == 0
    folder = only_run(tmp_path / ".orchestrate" / "runs")
    assert (folder / "summary.json").is_file()
    assert f"run folder: {os.path.join('.orchestrate', 'runs', folder.name)}" in capsys.readouterr().out


def test_quiet_prints_no_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = tmp_path / "s"
    write_script(s, "one.py")
    assert run(s, tmp_path / "runs", "-q") == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "1 passed" in out


def test_scripts_see_the_run_id(tmp_path: Path) -> None:
    s = tmp_path / "s"
    write_script(s, "env.py", "import os\nprint(os.environ['ORCHESTRATE_RUN_ID'], os.environ['ORCHESTRATE_RUN_DIR'])\n")
    runs = tmp_path / "runs"
    assert run(s, runs, "-q") == 0
    folder = only_run(runs)
    assert f"{folder.name} {folder}" in (folder / "logs" / "env.log").read_text()


# -- bad graphs and the dry run --------------------------------------------------------------------------------
def test_unknown_dependency_exits_2_naming_script_and_dependency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = tmp_path / "s"
    write_script(s, "extract.py", "open('ran', 'w')\n")
    write_script(s, "transform.py", depends=["extrct"])
    assert run(s, tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert "transform.py: unknown dependency 'extrct' (did you mean 'extract'?)" in err
    assert not (tmp_path / "runs").exists()


def test_cycle_exits_2_with_the_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = tmp_path / "s"
    write_script(s, "a.py", depends=["c"])
    write_script(s, "b.py", depends=["a"])
    write_script(s, "c.py", depends=["b"])
    assert run(s, tmp_path / "runs") == 2
    assert "dependency cycle: a -> c -> b -> a" in capsys.readouterr().err


def test_ambiguous_dependency(tmp_path: Path) -> None:
    s = tmp_path / "s"
    write_script(s, "load.py")
    write_script(s, "load.sh")
    write_script(s, "user.py", depends=["load"])
    plan = build_plan(s)
    assert len(plan.problems) == 1
    assert "dependency 'load' is ambiguous: it matches load.py, load.sh" in plan.problems[0]


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = tmp_path / "s"
    write_script(s, "first.py", f"open(r'{tmp_path}/ran', 'w')\n", timeout=5)
    write_script(s, "second.py", f"open(r'{tmp_path}/ran', 'w')\n", depends=["first"], retry=3)
    runs = tmp_path / "runs"
    assert run(s, runs, "--dry-run", "-j", "3") == 0
    assert not (tmp_path / "ran").exists()
    assert not runs.exists()
    out = capsys.readouterr().out
    assert "plan: 2 scripts in 2 levels (-j 3, fail-fast off); nothing is run" in out
    assert re.search(r"level 1:\n  first +deps: -  timeout: 5s  retry: no retry\n", out)
    assert re.search(r"level 2:\n  second +deps: first  timeout: 60s  retry: 3 attempts, delay 1s\n", out)
