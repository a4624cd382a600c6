"""Tests of the ``orchestrate`` command (``pytest_orchestrator.cli``): sub-commands, bad input and Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time

from proc_helpers import live_members
import pytest

from pytest_orchestrator import __version__
from pytest_orchestrator.cli import main


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc and bash")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def meta(**fields: str) -> str:
    """A PEP 723 block; values are TOML as written."""
    return "# /// script\n# [tool.orchestrate]\n" + "".join(f"# {k} = {v}\n" for k, v in fields.items()) + "# ///\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """extract -> (clean, geo.sh) -> join."""
    s = tmp_path / "scripts"
    write(s / "extract.py", meta(stage='"extract"') + "print('extract')\n")
    write(s / "clean.py", meta(depends='["extract"]', stage='"transform"') + "print('clean')\n")
    write(s / "geo.sh", meta(depends='["extract.py"]') + "echo geo\n")
    write(s / "join.py", meta(depends='["clean", "geo.sh"]', retry="2") + "print('join')\n")
    return s


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_orchestrator.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


# -- help and version ------------------------------------------------------------------------------------------
def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "list", "graph", "validate"):
        assert command in out
    for command in ("run", "list", "graph", "validate"):
        assert main([command, "--help"]) == 0
        assert "PATH" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"orchestrate {__version__}"


def test_no_command_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: orchestrate" in capsys.readouterr().err


def test_the_console_script(subprocess_env: dict[str, str], project: Path) -> None:
    result = cli("--version", env=subprocess_env)
    assert result.returncode == 0 and result.stdout.strip() == f"orchestrate {__version__}"
    exe = shutil.which("orchestrate")
    if exe is None:
        pytest.skip("the orchestrate console script is not installed")
    result = subprocess.run([exe, "validate", str(project)], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok: 4 scripts\n"


def test_bad_option_values_are_usage_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(project), "-j", "0"]) == 2
    assert "must be at least 1" in capsys.readouterr().err
    assert main(["run", str(project), "--timeout", "soon"]) == 2
    assert "expected a number of seconds" in capsys.readouterr().err
    assert main(["graph", str(project), "--format", "png"]) == 2


# -- bad PATH --------------------------------------------------------------------------------------------------
def test_missing_path_is_one_line_and_exit_2(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    for command in ("run", "list", "graph", "validate"):
        result = cli(command, str(tmp_path / "nowhere"), env=subprocess_env)
        assert result.returncode == 2
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1, lines
        assert "nowhere" in lines[0] and "does not exist" in lines[0]


def test_default_path_is_scripts(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    result = cli("validate", cwd=tmp_path, env=subprocess_env)
    assert result.returncode == 2
    assert result.stderr == (
        "orchestrate: error: 'scripts' does not exist; PATH must be a folder of scripts or a pipeline file\n"
    )
    write(tmp_path / "scripts" / "a.py", "")
    result = cli("validate", cwd=tmp_path, env=subprocess_env)
    assert (result.returncode, result.stdout) == (0, "ok: 1 script\n")


def test_path_that_is_a_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(project / "extract.py")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["validate", str(tmp_path / "empty")]) == 2
    assert "no scripts found" in capsys.readouterr().err


def test_yaml_path_runs_the_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    pipeline = write(tmp_path / "pipeline.yaml", "name: p\nstages:\n  - name: hello\n    commands: ['echo hi']\n")
    runs = tmp_path / "runs"
    assert main(["run", str(pipeline), "-q", "--run-dir", str(runs)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("pipeline 'p' (") and "orchestrate: OK: 1 script" in out
    assert err == "" and "::group::" not in out
    (folder,) = runs.iterdir()
    assert json.loads((folder / "summary.json").read_text())["kind"] == "pipeline"

    assert main(["run", str(pipeline), "--dry-run"]) == 0
    assert "plan: 1 script in 1 level" in capsys.readouterr().out
    assert main(["run", str(write(tmp_path / "bad.yaml", "stages: 3\n"))]) == 2
    assert "bad.yaml:1: stages must be a list" in capsys.readouterr().err


def test_on_github_actions_the_command_attaches_the_github_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = write(tmp_path / "pipeline.yaml", "name: p\nstages:\n  - name: hello\n    commands: ['echo hi']\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step.md"))
    assert main(["run", str(pipeline), "-q", "--run-dir", str(tmp_path / "runs")]) == 0
    assert capsys.readouterr().out.startswith("::group::hello\n$ echo hi\nhi\n::endgroup::\n")
    assert "### Pipeline `p`: ✅ passed" in (tmp_path / "step.md").read_text()


# -- list, graph, validate -------------------------------------------------------------------------------------
def test_list(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", str(project)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "STAGE", "DEPENDS", "PATH"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == ["extract", "clean", "geo", "join"]  # dependency order
    assert rows["clean"].split() == ["clean", "transform", "extract", "clean.py"]
    assert rows["join"].split() == ["join", "-", "clean,", "geo", "join.py"]


def test_graph_formats(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(project)]) == 0
    mermaid = capsys.readouterr().out
    assert mermaid.startswith("flowchart TD\n")
    assert '["extract"]' in mermaid and mermaid.count("-->") == 4

    assert main(["graph", str(project), "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith('digraph "workflow" {')
    assert '"extract" -> "clean";' in dot and '"geo" -> "join";' in dot


def test_validate_ok(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(project)]) == 0
    assert capsys.readouterr().out == "ok: 4 scripts\n"


def test_validate_reports_every_problem_on_its_own_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = tmp_path / "s"
    write(s / "a.py", meta(depends='["b"]'))
    write(s / "b.py", meta(depends='["a"]'))
    write(s / "c.py", meta(depends='["a", "missing_one"]'))
    write(s / "d.py", meta(timout="3"))
    assert main(["validate", str(s)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 3, lines
    assert any(
        line.endswith("d.py:3: unknown key 'timout' in [tool.orchestrate]; did you mean 'timeout'?") for line in lines
    )
    assert any("c.py: unknown dependency 'missing_one'" in line for line in lines)
    assert "dependency cycle: a -> b -> a" in lines


def test_config_errors_are_shown_as_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = tmp_path / "s"
    write(s / "a.py", "")
    write(tmp_path / "orchestrate.yaml", "defaults:\n  timeout: -1\n")
    assert main(["run", str(s)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path / 'orchestrate.yaml'}:2: ")
    assert "Traceback" not in err and "[ConfigError]" not in err


def test_list_and_graph_still_show_a_graph_with_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = tmp_path / "s"
    write(s / "a.py", meta(depends='["b"]'))
    write(s / "b.py", meta(depends='["a"]'))
    assert main(["graph", str(s)]) == 2
    out, err = capsys.readouterr()
    assert out.count("-->") == 2 and "dependency cycle" in err


# -- run -------------------------------------------------------------------------------------------------------
def test_run_prints_progress_and_summary(project: Path, tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    result = cli("run", str(project), "-j", "2", "--run-dir", str(tmp_path / "runs"), env=subprocess_env)
    assert result.returncode == 0, result.stderr
    assert "orchestrate: OK: 4 scripts" in result.stdout and "4 passed" in result.stdout
    assert "critical path: extract -> " in result.stdout
    assert result.stderr.count("START") == 4 and result.stderr.count("PASS") == 4


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_kills_running_scripts_and_writes_the_summary(
    tmp_path: Path, subprocess_env: dict[str, str], sig: signal.Signals
) -> None:
    """Ctrl-C (and SIGTERM alike): running scripts' process groups are killed, summary.json marks the rest; the exit
    status is 128 + the signal (130 for SIGINT, 143 for SIGTERM), in summary.json too."""
    s = tmp_path / "s"
    write(s / "long.sh", f'echo $$ > "{tmp_path}/pgid"\nsleep 60 &\nwait\n')
    write(s / "after.py", meta(depends='["long"]'))
    write(s / "quick.py", "print('done')\n")
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_orchestrator.cli", "run", str(s), "-j", "2", "--run-dir", str(runs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env,
    )
    try:
        pgid_file = tmp_path / "pgid"
        deadline = time.monotonic() + 30
        while not (pgid_file.exists() and pgid_file.read_text().strip()):
            assert time.monotonic() < deadline, "the long script did not start"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        pgid = int(pgid_file.read_text())
        assert live_members(pgid, wait=0)
        time.sleep(0.3)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err
    assert "orchestrate: INTERRUPTED" in out
    assert not live_members(pgid, wait=3.0), "the script's process group survived Ctrl-C"

    [folder] = list(runs.iterdir())
    data = json.loads((folder / "summary.json").read_text())
    assert data["interrupted"] is True and data["exit_code"] == 128 + sig
    scripts = data["scripts"]
    assert set(scripts) == {"long", "after", "quick"}
    assert scripts["long"]["status"] == "cancelled" and scripts["long"]["reason"] == "interrupted"
    assert scripts["after"]["status"] in ("cancelled", "not_run")
    assert scripts["quick"]["status"] == "passed"
    assert (folder / "logs" / "long.log").is_file()


def test_a_skipped_link_and_a_config_entry_naming_no_script_are_said_not_silent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As under the pytest plugin: a link whose target leaves the folder is skipped with a line naming it, and an
    orchestrate.yaml entry that names no script is a line with the entry to write; the run goes on."""
    outside = write(tmp_path / "elsewhere" / "evil.py", "print('evil')\n")
    scripts = tmp_path / "project" / "scripts"
    write(scripts / "loader.py", "print('load')\n")
    (scripts / "evil.py").symlink_to(outside)
    write(scripts / "orchestrate.yaml", "scripts:\n  loadr:\n    timeout: 5\n")
    assert main(["list", str(scripts)]) == 0
    out, err = capsys.readouterr()
    assert "loader" in out and "evil" not in out
    lines = err.splitlines()
    assert any(
        line.startswith("orchestrate: skipped ") and "evil.py: a link to " in line and str(outside) in line
        for line in lines
    ), err
    assert any(
        line.endswith("orchestrate.yaml:2: scripts entry 'loadr' names no script; did you mean 'loader.py'?")
        for line in lines
    ), err
