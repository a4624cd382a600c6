"""``orchestrate run`` with durable state: on by default, ``--resume``, ``--no-state``, ``runs`` and ``show``, a
folder where state cannot be written, and a SIGKILLed run resumed."""

from __future__ import annotations

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import time

import pytest


def _script(folder: Path, name: str, body: str, depends: tuple[str, ...] = ()) -> None:
    header = ""
    if depends:
        header = "# /// script\n# [tool.orchestrate]\n# depends = " + json.dumps(list(depends)) + "\n# ///\n"
    counter = f"open({str(folder.parent / 'ran')!r} + '-{name}', 'a').write('x')\n"
    (folder / f"{name}.py").write_text(header + counter + textwrap.dedent(body))


def _orchestrate(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run(
        [sys.executable, "-m", "pytest_orchestrator.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _ran(root: Path) -> dict[str, int]:
    return {p.name.removeprefix("ran-"): p.read_text().count("x") for p in root.glob("ran-*")}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    _script(scripts, "a", "print('a')")
    _script(scripts, "b", "import os, sys\nsys.exit(0 if os.path.exists('fixed') else 3)", ("a",))
    _script(scripts, "c", "print('c')", ("b",))
    _script(scripts, "d", "print('d')")
    return tmp_path


def test_resume_reruns_only_what_did_not_complete(project: Path) -> None:
    first = _orchestrate(project, "run", "scripts", "-q")
    assert first.returncode == 1, first.stderr
    assert (project / ".orchestrate" / "state.db").exists()  # on by default
    (project / "fixed").touch()
    second = _orchestrate(project, "run", "scripts", "--resume")
    assert second.returncode == 0, second.stderr
    assert _ran(project) == {"a": 1, "b": 2, "c": 1, "d": 1}
    assert "PASS a (carried over from run" in second.stderr
    assert "2 carried over, 2 run again" in second.stdout
    folders = list((project / ".orchestrate" / "runs").iterdir())
    assert len(folders) == 1  # the resumed run's folder gains the new attempts
    summary = json.loads((folders[0] / "summary.json").read_text())
    assert sorted(summary["carried_over"]) == ["a", "d"] and summary["resumed_from"]
    assert {name: s["status"] for name, s in summary["scripts"].items()} == dict.fromkeys("abcd", "passed")


def test_resume_with_nothing_to_resume_runs_everything_and_says_so(project: Path) -> None:
    (project / "fixed").touch()
    result = _orchestrate(project, "run", "scripts", "-q", "--resume")
    assert result.returncode == 0
    assert "nothing to resume: no earlier run of" in result.stderr
    assert _ran(project) == dict.fromkeys("abcd", 1)


def test_no_state_records_nothing_and_cannot_resume(project: Path) -> None:
    (project / "fixed").touch()
    assert _orchestrate(project, "run", "scripts", "-q", "--no-state").returncode == 0
    assert not (project / ".orchestrate" / "state.db").exists()
    refused = _orchestrate(project, "run", "scripts", "-q", "--no-state", "--resume")
    assert refused.returncode == 2 and "--resume needs state" in refused.stderr


def test_an_unknown_run_id_is_a_usage_error(project: Path) -> None:
    _orchestrate(project, "run", "scripts", "-q")
    result = _orchestrate(project, "run", "scripts", "--resume", "nope")
    assert result.returncode == 2 and "no run 'nope'" in result.stderr
    assert _ran(project)["a"] == 1  # nothing ran


def test_where_state_cannot_be_written_the_run_goes_on_and_says_so_once(project: Path) -> None:
    (project / ".orchestrate").mkdir()
    (project / ".orchestrate" / "state.db").mkdir()  # not a file: the store cannot open it
    (project / "fixed").touch()
    result = _orchestrate(project, "run", "scripts", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("state is off for this run") == 1
    assert _ran(project) == dict.fromkeys("abcd", 1)


def test_runs_and_show(project: Path) -> None:
    _orchestrate(project, "run", "scripts", "-q")
    (project / "fixed").touch()
    _orchestrate(project, "run", "scripts", "-q", "--resume")
    runs = json.loads(_orchestrate(project, "runs", "--json").stdout)
    assert [r["status"] for r in runs] == ["completed", "failed"]
    assert runs[0]["resumed_from"] == runs[1]["run_id"]
    text = _orchestrate(project, "runs").stdout
    assert runs[0]["run_id"] in text and "(resumes " in text
    shown = _orchestrate(project, "show", runs[0]["run_id"])
    assert shown.returncode == 0
    assert "a  completed" in shown.stdout.replace("  ", "  ") and "(carried over)" in shown.stdout
    details = json.loads(_orchestrate(project, "show", runs[1]["run_id"], "--json").stdout)
    assert details["tasks"]["b"]["status"] == "failed" and "exited with status 3" in details["tasks"]["b"]["error"]
    missing = _orchestrate(project, "show", "nope")
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr


def test_runs_without_any_state_is_a_clear_error(tmp_path: Path) -> None:
    result = _orchestrate(tmp_path, "runs")
    assert result.returncode == 2 and "no state recorded here" in result.stderr


def test_pipeline_stages_resume(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(
        textwrap.dedent(
            """
            name: p
            stages:
              - name: one
                commands: ["echo x >> ran-one"]
              - name: two
                commands: ["echo x >> ran-two", "test -e fixed"]
              - name: three
                commands: ["echo x >> ran-three"]
            """
        )
    )
    assert _orchestrate(tmp_path, "run", "pipeline.yaml", "-q").returncode == 1
    (tmp_path / "fixed").touch()
    result = _orchestrate(tmp_path, "run", "pipeline.yaml", "-q", "--resume")
    assert result.returncode == 0, result.stderr + result.stdout
    assert _ran(tmp_path) == {"one": 1, "two": 2, "three": 1}


def test_a_sigkilled_run_resumes_without_rerunning_what_completed(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    _script(scripts, "fast", "print('fast')")
    _script(scripts, "slow", "import time; time.sleep(30)", ("fast",))
    _script(scripts, "after", "print('after')", ("slow",))
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    with subprocess.Popen(
        [sys.executable, "-m", "pytest_orchestrator.cli", "run", "scripts", "-q"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        deadline = time.monotonic() + 30
        while "slow" not in _ran(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the killed run's script dies with it (it is in our process tree, PR_SET_PDEATHSIG)
    (scripts / "slow.py").write_text(
        (scripts / "slow.py").read_text().replace("time.sleep(30)", "time.sleep(0)")
    )  # a changed script runs again, as it would anyway
    result = _orchestrate(tmp_path, "run", "scripts", "--resume")
    assert result.returncode == 0, result.stderr
    assert _ran(tmp_path) == {"fast": 1, "slow": 2, "after": 1}
    assert "PASS fast (carried over from run" in result.stderr
