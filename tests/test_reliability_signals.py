"""No process left behind, on every path: signals to ``pytest --orchestrate`` (serial and ``-n 2``), a worker killed
with SIGKILL, a Python test that times out.

Each scenario runs a real ``pytest`` in its own session with a unique marker in its environment and in the command
line of every process the scripts start; afterwards the process table is walked (``/proc``) and any survivor fails
the test (and is killed, so one failure does not leak into the next test).
"""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import json
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET

from plugin_helpers import REPO_ROOT
from plugin_helpers import XDIST_LEAN_ADDOPTS
from plugin_helpers import lean_xdist_inner_runs
from proc_helpers import env_survivors
from proc_helpers import kill_env_survivors
from proc_helpers import new_marker
from proc_helpers import survivors
from proc_helpers import wait_for_file
import pytest


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")

#: a script that starts a grandchild which leaves its session, says it started (with its parent's pid), and sleeps
SLOW_SCRIPT = textwrap.dedent(
    """
    import os, subprocess, sys, time
    marker, folder = sys.argv[1], sys.argv[2]
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker], start_new_session=True)
    name = os.path.splitext(os.path.basename(__file__))[0]
    with open(os.path.join(folder, name + ".tmp"), "w") as fh:
        fh.write(str(os.getppid()))
    os.rename(os.path.join(folder, name + ".tmp"), os.path.join(folder, name + ".started"))
    time.sleep(60)
    """
)

#: a Python test that starts a child, says it started, and sleeps
SLOW_TEST = textwrap.dedent(
    """
    import os, subprocess, sys, time

    def test_sleeps():
        marker, folder = os.environ["PO_TEST_MARKER"], os.environ["PO_TEST_FOLDER"]
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
        with open(os.path.join(folder, "test.tmp"), "w") as fh:
            fh.write(str(os.getpid()))
        os.rename(os.path.join(folder, "test.tmp"), os.path.join(folder, "test.started"))
        time.sleep(60)
    """
)


@dataclasses.dataclass
class Run:
    returncode: int
    elapsed: float
    output: str
    junit: Path

    def assert_counts_agree(self) -> None:
        assert_counts_agree(self.output.splitlines())


def pytest_stats(lines: list[str]) -> dict[str, int]:
    """pytest's own final stats line, as ``{"passed": 1, "error": 1, ...}`` (warnings and deselected left out)."""
    last = [line for line in lines if line.startswith("=")][-1]
    found = {word.rstrip("s") if word == "errors" else word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last)}
    return {k: v for k, v in found.items() if k not in ("warning", "warnings", "deselected")}


def summary_counts(lines: list[str]) -> dict[str, int]:
    """The counts pytest also shows, from the workflow summary's ``N items: ...`` line (a timeout is pytest's
    ``failed``; ``interrupted`` and ``not run`` items are not in pytest's line)."""
    found = [line for line in lines if re.match(r"^\d+ items?:", line)]
    if not found:  # the summary prints its counts only where they differ from pytest's (timeouts, interruptions)
        return pytest_stats(lines)
    head, _, reruns = found[-1].split(":", 1)[1].partition(";")
    counts: dict[str, int] = {}
    for n, word in re.findall(r"(\d+) (\w+)", head):
        key = "failed" if word == "timeout" else word
        if key not in ("interrupted", "not"):
            counts[key] = counts.get(key, 0) + int(n)
    for n in re.findall(r"(\d+) reruns?", reruns):
        counts["rerun"] = int(n)
    return counts


def assert_counts_agree(lines: list[str]) -> None:
    """The workflow summary's totals equal pytest's own stats line."""
    assert summary_counts(lines) == pytest_stats(lines), "\n".join(lines)


class Project:
    def __init__(self, root: Path, marker: str) -> None:
        self.root = root
        self.marker = marker
        self.started = root / "started"
        self.started.mkdir(parents=True)
        self.tmp = root / "tmp"
        self.tmp.mkdir()
        (root / "pytest.ini").write_text("[pytest]\norchestrate_scripts = scripts/*.py\n")
        (root / "orchestrate.yaml").write_text(f"defaults:\n  args: [{marker}, {self.started}]\n")
        scripts = root / "scripts"
        scripts.mkdir()
        (scripts / "a_fast.py").write_text("print('fast')\n")

    def slow_script(self, name: str) -> None:
        (self.root / "scripts" / f"{name}.py").write_text(SLOW_SCRIPT)

    def slow_test(self) -> None:
        (self.root / "tests").mkdir(exist_ok=True)
        (self.root / "tests" / "test_slow.py").write_text(SLOW_TEST)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTEST_ADDOPTS"] = XDIST_LEAN_ADDOPTS
        env["TMPDIR"] = str(self.tmp)
        env["PO_TEST_MARKER"] = self.marker
        env["PO_TEST_FOLDER"] = str(self.started)
        for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
            env.pop(name, None)
        return env

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        self.out = self.root / "out.txt"
        command = [sys.executable, "-m", "pytest", "--orchestrate", "-p", "no:cacheprovider", "-rA"]
        command += [f"--junitxml={self.root / 'junit.xml'}", *args]
        with open(self.out, "wb") as out:
            return subprocess.Popen(
                command, cwd=self.root, env=self.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_started(self, *names: str, timeout: float = 60.0) -> dict[str, int]:
        return {name: int(wait_for_file(self.started / f"{name}.started", timeout=timeout)) for name in names}

    def finish(self, proc: subprocess.Popen[bytes], since: float, timeout: float = 30.0) -> Run:
        try:
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        elapsed = time.monotonic() - since
        return Run(proc.returncode, elapsed, self.out.read_text(errors="replace"), self.root / "junit.xml")

    def leftovers(self) -> list[str]:
        return [p.name for p in self.tmp.iterdir() if p.name.startswith("pytest-orchestrate-")]


@pytest.fixture
def proj(tmp_path: Path) -> Iterator[Project]:
    marker = new_marker("po-signal-test")
    yield Project(tmp_path / "proj", marker)
    left = kill_env_survivors(marker)
    assert left == [], f"processes left behind: {left}"


def _assert_clean_stop(proj: Project, run: Run, sig: int) -> None:
    assert run.elapsed < 5.0, f"took {run.elapsed:.1f} s to stop\n{run.output}"
    run.assert_counts_agree()
    assert "interrupted" in [line for line in run.output.splitlines() if " items: " in line][-1], run.output
    assert run.returncode == 128 + sig, run.output
    assert env_survivors(proj.marker, wait=0.5) == [], run.output
    assert survivors(proj.marker) == []
    assert run.junit.exists(), run.output
    ET.parse(run.junit)  # complete, well-formed
    assert proj.leftovers() == [], run.output


# -- serial -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_a_script_stops_everything_serially(proj: Project, sig: int) -> None:
    proj.slow_script("slow")
    proc = proj.start()
    proj.wait_started("slow")
    os.kill(proc.pid, sig)
    run = proj.finish(proc, time.monotonic())
    _assert_clean_stop(proj, run, sig)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_a_python_test_stops_everything_serially(proj: Project, sig: int) -> None:
    proj.slow_test()
    proc = proj.start()
    proj.wait_started("test")
    os.kill(proc.pid, sig)
    run = proj.finish(proc, time.monotonic())
    _assert_clean_stop(proj, run, sig)


# -- xdist --------------------------------------------------------------------------------------------------------


def test_sigterm_to_the_controller_stops_everything_under_xdist(proj: Project) -> None:
    proj.slow_script("slow_a")
    proj.slow_script("slow_b")
    proc = proj.start("-n", "2")
    proj.wait_started("slow_a", "slow_b")
    os.kill(proc.pid, signal.SIGTERM)
    run = proj.finish(proc, time.monotonic())
    _assert_clean_stop(proj, run, signal.SIGTERM)


def test_ctrl_c_stops_everything_under_xdist(proj: Project) -> None:
    """Ctrl-C in a terminal: SIGINT to the whole foreground process group (controller and workers)."""
    proj.slow_script("slow_a")
    proj.slow_script("slow_b")
    proc = proj.start("-n", "2")
    proj.wait_started("slow_a", "slow_b")
    os.killpg(proc.pid, signal.SIGINT)
    run = proj.finish(proc, time.monotonic())
    _assert_clean_stop(proj, run, signal.SIGINT)


def test_sigint_to_the_controller_alone_stops_everything_under_xdist(proj: Project) -> None:
    proj.slow_script("slow_a")
    proj.slow_script("slow_b")
    proc = proj.start("-n", "2")
    proj.wait_started("slow_a", "slow_b")
    os.kill(proc.pid, signal.SIGINT)
    run = proj.finish(proc, time.monotonic())
    _assert_clean_stop(proj, run, signal.SIGINT)


def test_a_killed_worker_leaves_no_script_alive(proj: Project) -> None:
    proj.slow_script("slow")
    proc = proj.start("-n", "2")
    worker = proj.wait_started("slow")["slow"]
    os.kill(worker, signal.SIGKILL)
    run = proj.finish(proc, time.monotonic(), timeout=60)
    assert "crashed" in run.output, run.output
    assert env_survivors(proj.marker, wait=1.0) == [], run.output
    run.assert_counts_agree()


# -- a Python test's timeout --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "limit",
    [
        pytest.param(("-p", "no:timeout"), id="our timeout marker"),
        pytest.param(("--timeout", "1"), id="pytest-timeout --timeout"),
    ],
)
def test_a_timed_out_test_takes_what_it_started_with_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, limit: tuple[str, ...]
) -> None:
    """The processes a test started during its call die with it, whichever plugin's timeout fired; a session
    fixture's process, started before, is left alone (it is alive in the fixture's teardown).

    (In a subprocess: the abandoned ``Popen`` objects of the timed-out test are that process's business.)"""
    if "--timeout" in limit:
        pytest.importorskip("pytest_timeout")
    lean_xdist_inner_runs(monkeypatch)
    marker = new_marker("po-timeout-test")
    session_marker = new_marker("po-session-test")
    teardown = pytester.path / "server.teardown"
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(
        f"""
        import subprocess, sys, pytest

        @pytest.fixture(scope="session")
        def server():
            proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", {session_marker!r}])
            yield proc
            with open({str(teardown)!r}, "w") as fh:
                fh.write("alive" if proc.poll() is None else "dead")
            proc.kill()
            proc.wait()
        """
    )
    mark = "@pytest.mark.timeout(1)" if "no:timeout" in limit else ""
    pytester.makepyfile(
        test_t=f"""
        import subprocess, sys, time, pytest

        def test_first(server):
            assert server.poll() is None

        {mark}
        def test_hangs(server):
            setsid = subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(60)", {marker!r}], start_new_session=True
            )
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", {marker!r}])
            time.sleep(30)

        def test_after(server):
            assert server.poll() is None, "the session fixture's process was killed"
        """
    )
    try:
        result = pytester.runpytest_subprocess("--orchestrate", "-p", "no:cacheprovider", *limit)
        result.assert_outcomes(passed=2, failed=1)
        assert ("pytest-timeout" in result.stdout.str()) is ("--timeout" in limit)
        assert survivors(marker, wait=1.0) == []
        assert teardown.read_text() == "alive"
        assert_counts_agree(result.outlines)
    finally:
        from proc_helpers import kill_survivors

        kill_survivors(marker)
        kill_survivors(session_marker)


# -- counts that do not lie ---------------------------------------------------------------------------------------


def test_an_output_flood_says_what_was_kept_and_what_was_dropped(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\norchestrate_scripts = scripts/*.py\n")
    (pytester.path / "scripts").mkdir()
    (pytester.path / "scripts" / "flood.py").write_text(
        "import sys\nline = 'x' * 99 + '\\n'\nfor _ in range(50_000):\n    sys.stdout.write(line)\nsys.exit(3)\n"
    )
    # pytest-benchmark, where installed, warns as an error in a session run inside an xdist worker
    result = pytester.runpytest("--orchestrate", "-p", "no:cacheprovider", "-p", "no:benchmark")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "----- stdout (last 20 of the 10000 lines kept; output truncated: first 4.0 MB / 40,000 lines dropped, "
            "last 1.0 MB kept) -----"
        ]
    )
    assert_counts_agree(result.outlines)


# -- a pipeline's cleanup after a signal ----------------------------------------------------------------------------

#: a stage command that, in its first run, says it started and sleeps with ``marker`` in its command line; in a resumed
#: run (``started`` exists) it passes at once
_LONG_STAGE = (
    "test -e {started} || {python} -c 'import sys, time; open(sys.argv[2], \"w\").close(); time.sleep(60)' "
    "{marker} {started}"
)


class PipelineProject:
    """``orchestrate run pipeline.yaml`` in a folder of its own: a long stage, a stage after it and a ``when: always``
    cleanup stage, every process carrying ``marker``."""

    def __init__(self, root: Path, marker: str, subprocess_env: dict[str, str]) -> None:
        self.root, self.marker, self.env = root, marker, subprocess_env
        root.mkdir()
        self.started = root / "long.started"

    def write(self, cleanup: str, *, grace: float | None = None) -> None:
        """The pipeline (as JSON, which YAML reads) with ``cleanup`` as the cleanup stage's command."""
        long = _LONG_STAGE.format(started=self.started, python=sys.executable, marker=self.marker)
        pipeline: dict[str, object] = {"name": "cleanup-after-signal"}
        if grace is not None:
            pipeline["interrupt_grace"] = grace
        pipeline["stages"] = [
            {"name": "long", "commands": [long]},
            {"name": "next", "commands": ["touch next.ran"]},
            {"name": "cleanup", "when": "always", "commands": [cleanup]},
        ]
        (self.root / "pipeline.yaml").write_text(json.dumps(pipeline, indent=1))

    def run(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "pytest_orchestrator.cli", "run", "pipeline.yaml", *args],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, proc: subprocess.Popen[str], timeout: float = 30.0) -> tuple[int, str]:
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        return proc.returncode, out + err

    def summary(self) -> dict[str, dict[str, object]]:
        """``{stage: {status, reason, ...}}`` of the latest run's ``summary.json``."""
        latest = max((self.root / ".orchestrate" / "runs").glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
        scripts: dict[str, dict[str, object]] = json.loads(latest.read_text())["scripts"]
        return scripts


@pytest.fixture
def pipeline_proj(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[PipelineProject]:
    marker = new_marker("po-pipeline-signal-test")
    yield PipelineProject(tmp_path / "proj", marker, subprocess_env)
    from proc_helpers import kill_survivors

    assert kill_survivors(marker) == [], "processes left behind"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_kills_the_running_stages_then_runs_the_cleanup_stages(
    pipeline_proj: PipelineProject, sig: int
) -> None:
    proj = pipeline_proj
    proj.write("echo cleaned > cleaned.txt")
    proc = proj.run()
    _wait_exists(proj.started, proc)
    os.kill(proc.pid, sig)
    status, output = proj.finish(proc)
    assert status == 128 + sig, output
    assert (proj.root / "cleaned.txt").read_text() == "cleaned\n", output
    assert not (proj.root / "next.ran").exists(), output
    assert survivors(proj.marker, wait=1.0) == [], output
    stages = proj.summary()
    assert stages["long"]["status"] == "cancelled" and stages["long"]["reason"] == "interrupted"
    assert stages["next"]["status"] == "cancelled" and stages["next"]["reason"] == "interrupted"
    assert stages["cleanup"]["status"] == "passed"
    assert "running cleanup (cleanup) for up to 30 s" in output
    # the interrupted stages run again on resume (and the cleanup after them)
    status, output = proj.finish(proj.run("--resume"))
    assert status == 0, output
    stages = proj.summary()
    assert {name: (s["status"], s["carried_over"]) for name, s in stages.items()} == {
        "long": ("passed", False),
        "next": ("passed", False),
        "cleanup": ("passed", False),
    }
    assert (proj.root / "next.ran").exists()


@pytest.mark.parametrize("stop", ["grace", "again"], ids=["grace period over", "second signal"])
def test_a_cleanup_stage_that_hangs_is_killed_after_the_grace_period(pipeline_proj: PipelineProject, stop: str) -> None:
    """A hanging ``when: always`` stage is killed when the grace period runs out, or at once at a second signal."""
    proj = pipeline_proj
    hang = f'touch cleanup.started; {sys.executable} -c "import time; time.sleep(60)" {proj.marker}'
    proj.write(hang, grace=1 if stop == "grace" else 60)
    proc = proj.run("--no-state")
    _wait_exists(proj.started, proc)
    os.kill(proc.pid, signal.SIGTERM)
    since = time.monotonic()
    if stop == "again":
        _wait_exists(proj.root / "cleanup.started", proc)
        os.kill(proc.pid, signal.SIGTERM)
    status, output = proj.finish(proc)
    elapsed = time.monotonic() - since
    assert status == 143, output
    assert (proj.root / "cleanup.started").exists(), output
    assert elapsed < 8, f"took {elapsed:.1f} s to stop\n{output}"
    assert survivors(proj.marker, wait=1.0) == [], output
    cleanup = proj.summary()["cleanup"]
    assert cleanup["status"] == "cancelled", output
    if stop == "grace":
        assert cleanup["reason"] == "killed: the 1 s grace period after the interrupt ran out", output
    else:
        assert cleanup["reason"] == "killed: interrupted again", output


def _wait_exists(path: Path, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} did not appear"
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
