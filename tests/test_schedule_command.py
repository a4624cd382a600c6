"""``orchestrate schedule`` and ``orchestrate watch``: the schedule file's checks (file:line errors), and the real
commands in a child process: a line per fire and finish, a prompt clean stop on SIGTERM, no process left behind,
a rerun on a real file write."""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from pytest_orchestrator.schedule import CronTrigger
from pytest_orchestrator.schedule import IntervalTrigger
from pytest_orchestrator.schedule.command import load_schedule
from pytest_orchestrator.scripts.errors import ConfigError
from pytest_orchestrator.state.jobs import JobTable
from pytest_orchestrator.state.store import StateStore


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def orchestrate(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_orchestrator.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# -- the schedule file --------------------------------------------------------------------------------------------
def test_a_schedule_file_is_read_into_jobs(tmp_path: Path) -> None:
    write(tmp_path / "mymod_ok.py", "def f(*a, **k):\n    return a, k\n")
    write(tmp_path / "p.yaml", "stages:\n  - name: s\n    commands: ['true']\n")
    (tmp_path / "scripts").mkdir()
    file = write(
        tmp_path / "schedule.yaml",
        """
        jobs:
          nightly:
            target: p.yaml
            cron: "0 2 * * MON-FRI"
            tz: Europe/Berlin
          often:
            target: mymod_ok:f
            every: 5m
            args: [1, two]
            kwargs: {x: 3}
            overlap: queue
            misfire: skip
            max_runs: 4
          morning:
            target: scripts
            at: "07:30"
        """,
    )
    nightly, often, morning = load_schedule(file)
    assert (nightly.name, nightly.target, nightly.trigger) == (
        "nightly",
        str(tmp_path / "p.yaml"),
        CronTrigger("0 2 * * MON-FRI", "Europe/Berlin"),
    )
    assert often.trigger == IntervalTrigger(300.0)
    assert often.target.__name__ == "f" and (often.args, often.kwargs) == ((1, "two"), {"x": 3})
    assert (often.overlap, often.misfire, often.max_runs) == ("queue", "skip", 4)
    assert (morning.target, morning.trigger) == (str(tmp_path / "scripts"), CronTrigger("30 7 * * *"))


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            "jobs:\n  a:\n    target: os:getcwd\n    every: 1\n    overlp: skip\n",
            5,
            "unknown key 'overlp'; did you mean 'overlap'",
        ),
        (
            "jobs:\n  a:\n    target: os:getcwd\n    every: 1\n    cron: '* * * * *'\n",
            5,
            "exactly one of cron, every or at",
        ),
        ("jobs:\n  a:\n    target: os:getcwd\n", 2, "exactly one of cron, every or at"),
        ("jobs:\n  a:\n    target: os:getcwd\n    cron: '61 * * * *'\n", 4, "invalid cron expression"),
        ("jobs:\n  a:\n    target: os:getcwd\n    every: soon\n", 4, "every must be a positive number"),
        ("jobs:\n  a:\n    target: os:getcwd\n    at: '25:00'\n", 4, "HH:MM"),
        ("jobs:\n  a:\n    every: 1\n", 2, "'target' is missing"),
        ("jobs:\n  a:\n    every: 1\n    target: nope_mod_xyz:f\n", 4, "cannot import target 'nope_mod_xyz:f'"),
        ("jobs:\n  a:\n    every: 1\n    target: gone.yaml\n", 4, "does not exist"),
        ("jobs:\n  a:\n    every: 1\n    target: os:getcwd\n    misfire: once\n", 5, "misfire must be one of"),
        ("jobs:\n  a:\n    every: 1\n    target: os:getcwd\n    args: 3\n", 5, "'args' must be a list"),
        ("jobs:\n  a:\n    every: 1\n    tz: UTC\n    target: os:getcwd\n", 3, "tz applies to cron and at"),
        ("job:\n  a: {}\n", 1, "unknown key 'job'"),
        ("jobs:\n  a: {every: 1, target: os:getcwd}\n  a: {every: 2, target: os:getcwd}\n", 3, "duplicate key 'a'"),
        ("jobs: [1, 2]\n", 1, "'jobs' must map job names"),
    ],
)
def test_schedule_file_errors_name_the_file_and_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    file = tmp_path / "schedule.yaml"
    file.write_text(body)
    with pytest.raises(ConfigError) as caught:
        load_schedule(file)
    assert str(caught.value).startswith(f"{file}:{line}: ")
    assert message in str(caught.value)


# -- orchestrate schedule -----------------------------------------------------------------------------------------
def test_orchestrate_schedule_fires_prints_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    pidfile = tmp_path / "sleeper.pid"
    write(tmp_path / "jobs_cmd.py", f"def mark():\n    with open({str(marks)!r}, 'a') as f:\n        f.write('x')\n")
    write(
        tmp_path / "long.yaml",
        f"""
        stages:
          - name: hang
            commands: ['echo $$ > {pidfile}; exec sleep 60']
        """,
    )
    write(
        tmp_path / "schedule.yaml",
        """
        jobs:
          tick:
            target: jobs_cmd:mark
            every: 0.3
          hang:
            target: long.yaml
            every: 0.5
        """,
    )
    proc = orchestrate("schedule", "schedule.yaml", "--grace", "2", cwd=tmp_path)  # room for a loaded machine
    try:
        assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() != "" and marks.exists()), (
            proc.poll(),
            proc.stderr.read() if proc.poll() is not None and proc.stderr else "",
        )
        assert wait_for(lambda: len(marks.read_text()) >= 2)
        sleeper = int(pidfile.read_text())
        assert alive(sleeper)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 6
    assert wait_for(lambda: not alive(sleeper), 5), "the pipeline's process outlived the scheduler"
    lines = out.splitlines()
    assert lines[0].startswith("orchestrate: 2 jobs from schedule.yaml; state in .orchestrate/state.db")
    assert any(" fire    tick (due " in line for line in lines)
    assert any(" finish  tick completed in " in line for line in lines)
    assert any(" fire    hang (due " in line for line in lines)
    assert any(" finish  hang cancelled in " in line for line in lines), out
    assert "orchestrate: stopping; waiting up to 2s for 1 running job" in out
    assert lines[-1] == "orchestrate: stopped"
    # the jobs are in the state file, with their runs
    rows = {row.name: row for row in JobTable(StateStore(tmp_path / ".orchestrate" / "state.db")).load()}
    assert set(rows) == {"tick", "hang"} and rows["tick"].runs >= 2
    assert rows["tick"].target == "jobs_cmd:mark"


def test_orchestrate_schedule_reports_a_bad_file_with_its_line(tmp_path: Path) -> None:
    write(tmp_path / "schedule.yaml", "jobs:\n  a:\n    target: os:getcwd\n    evry: 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_orchestrator.cli", "schedule", "schedule.yaml", "--no-state"],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "schedule.yaml:4: job 'a': unknown key 'evry'; did you mean 'every'?" in proc.stderr


# -- orchestrate watch --------------------------------------------------------------------------------------------
def test_orchestrate_watch_reruns_a_scripts_folder_on_a_real_file_write(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    count = tmp_path / "count.txt"
    script = scripts / "step.py"
    script.write_text(f"with open({str(count)!r}, 'a') as f:\n    f.write('x')\n")
    proc = orchestrate("watch", str(scripts), "--debounce", "0.1", cwd=scripts)  # its state lands in the folder
    try:
        assert wait_for(lambda: count.exists() and len(count.read_text()) == 1)
        time.sleep(1.0)  # the run's own files (.orchestrate/, __pycache__) do not make it run again
        assert len(count.read_text()) == 1
        script.write_text(script.read_text() + "# changed\n")
        assert wait_for(lambda: len(count.read_text()) == 2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    assert f"orchestrate: watching {scripts}" in out
    assert out.count(" finish  ") == 2 and "completed" in out
