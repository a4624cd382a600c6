"""The ``orchestrate`` command's documented exit statuses, in every path, from real processes: 0 ok, 1 failures,
2 usage or configuration error, 130 SIGINT, 143 SIGTERM; and ``list``/``graph``/``validate`` on a pipeline file."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

from pytest_orchestrator.cli import main


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux and bash")

PIPELINE = """\
name: ci
stages:
  - name: lint
    commands: ["true"]
  - name: unit
    commands: ["true"]
  - name: etl
    needs: [lint]
    commands: ["true"]
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_orchestrator.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


@pytest.fixture
def work(tmp_path: Path) -> Path:
    write(tmp_path / "ok" / "a.py", "print('a')\n")
    write(tmp_path / "bad" / "a.py", "raise SystemExit(3)\n")
    write(tmp_path / "broken" / "a.py", "# /// script\n# [tool.orchestrate]\n# depends = ['nope']\n# ///\n")
    write(tmp_path / "ci.yaml", PIPELINE)
    write(tmp_path / "failing.yaml", "stages:\n  - name: x\n    commands: ['exit 4']\n")
    write(tmp_path / "invalid.yaml", "stages:\n  - name: x\n    comands: [true]\n")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("run", "ok"), 0),
        (("run", "bad"), 1),
        (("run", "broken"), 2),  # unknown dependency
        (("run", "missing"), 2),  # no such folder
        (("run", "ok", "--jobs", "0"), 2),  # a bad flag value
        (("run", "ok", "--no-such-flag"), 2),
        (("run", "ok", "--scripts-dir", "bad"), 2),  # PATH and --scripts-dir disagree
        (("run", "ci.yaml"), 0),
        (("run", "failing.yaml"), 1),
        (("run", "invalid.yaml"), 2),
        (("run", "ci.yaml", "--filter", "x"), 2),  # a scripts-only flag
        (("validate", "ok"), 0),
        (("validate", "broken"), 2),
        (("validate", "ci.yaml"), 0),
        (("validate", "invalid.yaml"), 2),
        (("list", "ci.yaml"), 0),
        (("graph", "ci.yaml"), 0),
        (("list", "missing"), 2),
        (("show", "no-such-run"), 2),  # no state recorded here
        (("bogus",), 2),
        ((), 2),
        (("--help",), 0),
        (("run", "--help"), 0),
        (("--version",), 0),
    ],
)
def test_exit_status(work: Path, subprocess_env: dict[str, str], args: tuple[str, ...], status: int) -> None:
    result = cli(*args, cwd=work, env=subprocess_env)
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr


def test_validate_list_and_graph_take_a_pipeline_file(work: Path, subprocess_env: dict[str, str]) -> None:
    assert cli("validate", "ci.yaml", cwd=work, env=subprocess_env).stdout == "ok: pipeline 'ci', 3 stages\n"
    listing = cli("list", "ci.yaml", cwd=work, env=subprocess_env).stdout.splitlines()
    assert listing[0].split() == ["NAME", "STAGE", "DEPENDS", "PATH"]
    assert [line.split()[0] for line in listing[1:]] == ["lint", "unit", "etl"]
    assert listing[3].split()[:3] == ["etl", "commands", "lint"]
    graph = cli("graph", "ci.yaml", "--format", "dot", cwd=work, env=subprocess_env).stdout
    assert graph.startswith("digraph") and '"lint" -> "etl"' in graph
    invalid = cli("validate", "invalid.yaml", cwd=work, env=subprocess_env)
    assert "invalid.yaml:3:" in invalid.stderr and "did you mean 'commands'" in invalid.stderr


@pytest.mark.parametrize("command", ["run", "list", "graph", "validate", "runs", "show"])
def test_each_subcommand_help_has_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"orchestrate {command}" in out.split("examples:")[1]


def test_run_help_says_path_may_be_a_pipeline_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "PATH may be a folder of scripts (default: scripts) or a pipeline file" in out
    assert "a pipeline stops at its first failure unless it says fail_fast: false" in out


@pytest.mark.parametrize(
    ("target", "sig"),
    [
        ("scripts", signal.SIGINT),
        ("scripts", signal.SIGTERM),
        ("pipeline.yaml", signal.SIGINT),
        ("pipeline.yaml", signal.SIGTERM),
    ],
)
def test_a_signal_ends_a_running_orchestrate_run_with_128_plus_its_number(
    tmp_path: Path, subprocess_env: dict[str, str], target: str, sig: signal.Signals
) -> None:
    started = tmp_path / "started"
    write(tmp_path / "scripts" / "long.sh", f'touch "{started}"\nsleep 60\n')
    write(
        tmp_path / "pipeline.yaml",
        f"stages:\n  - name: long\n    commands: ['touch \"{started}\"; sleep 60']\n",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_orchestrator.cli", "run", target, "--no-state"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env,
    )
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert time.monotonic() < deadline, "the long item did not start"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        time.sleep(0.2)
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and "INTERRUPTED" in out
