"""No process left behind: real process trees that escape their group, run through ``run_process``.

Every process a test starts carries a unique marker in its command line (an argv element); the ``marker`` fixture
fails the test if any process with it is still alive afterwards (and kills it, so one failure does not leak into
the next test).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import time

from proc_helpers import kill_survivors
from proc_helpers import new_marker
from proc_helpers import pid_alive
from proc_helpers import survivors
from proc_helpers import wait_for_file
from proc_helpers import zombie_children
import pytest

from pytest_orchestrator.execution import reaper
from pytest_orchestrator.execution.process import ProcessResult
from pytest_orchestrator.execution.process import run_process
from pytest_orchestrator.execution.process import run_process_async


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc and prctl")

PY = sys.executable
REPO_ROOT = Path(__file__).resolve().parents[1]

#: the escaped process: ``python -c SLEEPER MARKER PIDFILE [ignore-term]`` writes its pid, then sleeps
SLEEPER = textwrap.dedent(
    """
    import os, signal, sys, time
    if sys.argv[3:] == ["ignore-term"]:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(sys.argv[2] + ".tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    time.sleep(60)
    """
)

#: a leader whose child calls setsid (``start_new_session``) and keeps the leader's stdout; the leader sleeps
SETSID_LEADER = textwrap.dedent(
    """
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", sys.argv[1], *sys.argv[2:]], start_new_session=True)
    time.sleep(60)
    """
)

#: a leader that double-forks (the middle process calls setsid and exits) and then sleeps, or exits at once
DOUBLE_FORK_LEADER = textwrap.dedent(
    """
    import os, sys, time
    sleeper, marker, pidfile, then = sys.argv[1:5]
    middle = os.fork()
    if middle == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", sleeper, marker, pidfile])
        os._exit(0)
    os.waitpid(middle, 0)
    if then == "sleep":
        time.sleep(60)
    """
)


@pytest.fixture
def marker() -> Iterator[str]:
    """The marker of this test's processes; the test fails if one of them is still alive at the end."""
    value = new_marker()
    yield value
    left = kill_survivors(value)
    assert left == [], f"processes left behind: {left}"


def _gone(pid: int) -> bool:
    """Neither alive nor an unreaped zombie child of ours."""
    return not pid_alive(pid) and pid not in zombie_children()


# -- escaping the process group --------------------------------------------------------------------------------


def test_setsid_grandchild_is_killed_on_timeout(tmp_path: Path, marker: str) -> None:
    pidfile = tmp_path / "grandchild"
    result = run_process([PY, "-c", SETSID_LEADER, SLEEPER, marker, str(pidfile)], timeout=2.5, grace=1.0)
    assert result.timed_out
    grandchild = int(pidfile.read_text())
    assert survivors(marker) == []
    assert _gone(grandchild)


def test_double_forked_grandchild_is_killed_on_timeout(tmp_path: Path, marker: str) -> None:
    pidfile = tmp_path / "grandchild"
    argv = [PY, "-c", DOUBLE_FORK_LEADER, SLEEPER, marker, str(pidfile), "sleep"]
    result = run_process(argv, timeout=2.5, grace=1.0)
    assert result.timed_out
    grandchild = int(pidfile.read_text())
    assert survivors(marker) == []
    assert _gone(grandchild)  # re-parented to us, killed, and reaped


def test_daemon_of_an_exited_leader_is_killed_on_timeout(tmp_path: Path, marker: str) -> None:
    """The leader is gone before the timeout; the daemon it left holds the pipes: the timeout still kills it."""
    pidfile = tmp_path / "grandchild"
    argv = [PY, "-c", DOUBLE_FORK_LEADER, SLEEPER, marker, str(pidfile), "exit"]
    result = run_process(argv, timeout=2.5, grace=1.0)
    assert result.timed_out
    assert result.returncode == 0  # the leader itself had exited normally
    grandchild = int(pidfile.read_text())
    assert survivors(marker) == []
    assert _gone(grandchild)


def test_term_ignoring_escaped_grandchild_gets_sigkill_after_grace(tmp_path: Path, marker: str) -> None:
    pidfile = tmp_path / "grandchild"
    timeout, grace = 2.5, 1.0
    start = time.monotonic()
    result = run_process(
        [PY, "-c", SETSID_LEADER, SLEEPER, marker, str(pidfile), "ignore-term"], timeout=timeout, grace=grace
    )
    elapsed = time.monotonic() - start
    assert result.timed_out
    assert survivors(marker) == []
    assert elapsed >= timeout + grace - 0.1  # it really ignored SIGTERM
    assert elapsed < timeout + grace + 1.5


def test_async_cancellation_kills_the_escaped_grandchild(tmp_path: Path, marker: str) -> None:
    pidfile = tmp_path / "grandchild"

    async def main() -> None:
        argv = [PY, "-c", SETSID_LEADER, SLEEPER, marker, str(pidfile)]
        task = asyncio.ensure_future(run_process_async(argv, grace=0.5))
        deadline = time.monotonic() + 10
        while not pidfile.exists():
            assert time.monotonic() < deadline, "the grandchild did not start"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert survivors(marker) == []
    assert _gone(int(pidfile.read_text()))


def test_keyboard_interrupt_kills_the_escaped_grandchild(tmp_path: Path, marker: str) -> None:
    pidfile = tmp_path / "grandchild"
    driver = textwrap.dedent(
        f"""
        import signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from pytest_orchestrator.execution.process import run_process
        run_process([sys.executable, "-c", {SETSID_LEADER!r}, {SLEEPER!r}, {marker!r}, {str(pidfile)!r}], grace=0.5)
        """
    )
    proc = subprocess.Popen([PY, "-c", driver, marker], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    try:
        wait_for_file(pidfile, timeout=10)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"KeyboardInterrupt" in stderr, stderr
    assert survivors(marker, wait=1.0) == []


# -- dying with the parent -------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}


def test_child_dies_when_the_orchestrating_process_is_killed(tmp_path: Path, marker: str) -> None:
    pidfile = tmp_path / "child"
    driver = textwrap.dedent(
        f"""
        import sys
        from pytest_orchestrator.execution.process import run_process
        run_process([sys.executable, "-c", {SLEEPER!r}, {marker!r}, {str(pidfile)!r}])
        """
    )
    proc = subprocess.Popen([PY, "-c", driver, marker], env=_env())
    try:
        child = int(wait_for_file(pidfile, timeout=10))
        assert pid_alive(child)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert survivors(marker, wait=3.0) == []
    _reap_if_ours(child)


def _reap_if_ours(pid: int) -> None:
    """Orphans of a killed driver come back to this process when it is a subreaper: do not leave them as zombies."""
    if pid in zombie_children():
        os.waitpid(pid, 0)


# -- the subreaper and the reaping of orphans ------------------------------------------------------------------


def test_starting_a_process_makes_us_a_subreaper() -> None:
    assert run_process([PY, "-c", "pass"]).ok
    assert reaper.is_subreaper()
    assert reaper.enable_subreaper()  # idempotent
    assert reaper.is_subreaper()


def test_leftover_daemon_is_not_killed_but_reaped_once_it_exits(tmp_path: Path, marker: str) -> None:
    """A program that exits by itself may leave a daemon running (as before); once it exits it is not left as a
    zombie of ours."""
    pidfile = tmp_path / "daemon"
    short = SLEEPER.replace("time.sleep(60)", "time.sleep(0.5)")
    code = (
        "import os, subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', sys.argv[1], *sys.argv[2:]], start_new_session=True,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    )
    result = run_process([PY, "-c", code, short, marker, str(pidfile)], timeout=10)
    assert result.ok, result
    daemon = int(wait_for_file(pidfile, timeout=10))
    assert pid_alive(daemon)  # not killed: the program finished by itself
    deadline = time.monotonic() + 10
    while pid_alive(daemon):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    reaper.reap_orphans()
    assert _gone(daemon)


def test_descendants_lists_the_whole_tree_as_psutil_does() -> None:
    """The /proc ``children`` walk finds children and grandchildren, including those a thread started."""
    import threading

    import psutil

    procs = [subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30"]) for _ in range(2)]
    started: list[subprocess.Popen[bytes]] = []
    thread = threading.Thread(target=lambda: started.append(subprocess.Popen(["sleep", "30"])))
    thread.start()
    thread.join()
    procs += started
    try:
        deadline = time.monotonic() + 10
        expected: set[int] = set()
        while len(expected) < 5 and time.monotonic() < deadline:  # two shells, two of their sleeps, one more
            expected = {p.pid for p in psutil.Process().children(recursive=True) if p.status() != "zombie"}
            time.sleep(0.02)
        assert {p.pid for p in procs} <= expected and len(expected) >= 5
        assert reaper.descendants() >= expected
        assert reaper._proc_descendants(os.getpid()) >= expected
    finally:
        for proc in procs:
            reaper.kill_tree(proc.pid, grace=0.5)
            proc.wait()


def test_markers_nest_outermost_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(reaper.MARKER_ENV, "outer")
    env = reaper.mark_env({"X": "1"}, "inner")
    assert env[reaper.MARKER_ENV] == "outer inner"
    assert env["X"] == "1"
    code = f"import os; print(os.environ[{reaper.MARKER_ENV!r}])"
    outer, inner = run_process([PY, "-c", code]).stdout.split()
    assert outer == "outer" and inner.startswith("po")


def test_kill_marked_kills_every_process_of_a_run(tmp_path: Path, marker: str) -> None:
    """What a controller does for a dead worker: everything carrying the run marker it gave it is killed."""
    pidfile = tmp_path / "grandchild"
    run_marker = reaper.new_marker()
    env = reaper.mark_env(None, run_marker)
    leader = subprocess.Popen([PY, "-c", SETSID_LEADER, SLEEPER, marker, str(pidfile)], env=env, start_new_session=True)
    try:
        wait_for_file(pidfile, timeout=10)
        killed = reaper.kill_marked(run_marker, grace=0.5)
        assert leader.wait(timeout=5) < 0
    finally:
        if leader.poll() is None:
            leader.kill()
            leader.wait()
    assert sorted(killed) == sorted({leader.pid, int(pidfile.read_text())})
    assert survivors(marker) == []


# -- output floods ---------------------------------------------------------------------------------------------


def test_truncation_says_what_was_dropped() -> None:
    code = "import sys\nfor i in range(200): sys.stdout.write('%09d\\n' % i)"  # 200 lines of 10 bytes
    result = run_process([PY, "-c", code], max_output=1000)
    assert result.stdout_truncated
    assert result.stdout.splitlines() == [f"{i:09d}" for i in range(100, 200)]
    assert (result.stdout_dropped_bytes, result.stdout_dropped_lines) == (1000, 100)
    assert (result.stderr_dropped_bytes, result.stderr_dropped_lines) == (0, 0)
    assert (
        result.describe_truncation("stdout")
        == "(output truncated: first 1,000 B / 100 lines dropped, last 1,000 B kept)"
    )
    assert result.describe_truncation("stderr") == ""


def test_truncation_counts_a_cut_line_as_kept() -> None:
    code = "import sys; sys.stdout.write('a' * 25 + '\\n' + 'b' * 10)"
    result = run_process([PY, "-c", code], max_output=15)
    assert result.stdout == "a" * 4 + "\n" + "b" * 10
    assert (result.stdout_dropped_bytes, result.stdout_dropped_lines) == (21, 0)


def test_describe_truncation_in_megabytes() -> None:
    result = ProcessResult(["x"], 0, "x" * 1_000_000, "", 0.0, 0.0, 0.0, stdout_truncated=True)
    result.stdout_dropped_bytes = 48_700_000
    result.stdout_dropped_lines = 812_345
    assert result.describe_truncation("stdout") == (
        "(output truncated: first 48.7 MB / 812,345 lines dropped, last 1.0 MB kept)"
    )
    assert result.to_dict()["stdout_dropped_lines"] == 812_345
    with pytest.raises(ValueError, match="stream must be"):
        result.describe_truncation("stdin")


def _peak_rss_growth(megabytes: int, max_output: int = 1_000_000) -> tuple[int, ProcessResult]:
    """Peak RSS growth (bytes) of a fresh process while it reads ``megabytes`` MB of stdout through run_process.

    The kernel's high-water mark (VmHWM) is reset to the current RSS just before the run, so the growth is the
    peak during the run minus the RSS when it began.
    """
    driver = textwrap.dedent(
        f"""
        import json, sys
        from pytest_orchestrator.execution.process import run_process

        def status(key):
            with open("/proc/self/status") as fh:
                return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key + ":"))

        writer = "import sys\\nline = b'y' * 999 + b'\\\\n'\\nblock = line * 1000\\n" \\
                 "for _ in range({megabytes}): sys.stdout.buffer.write(block)"
        run_process([sys.executable, "-c", "pass"])  # warm up: imports, the first thread
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak RSS to the current RSS
        before = status("VmRSS")
        result = run_process([sys.executable, "-c", writer], timeout=120, max_output={max_output})
        peak = status("VmHWM")
        print(json.dumps([peak - before, result.returncode, result.stdout_dropped_bytes,
                          result.stdout_dropped_lines, len(result.stdout), result.describe_truncation("stdout")]))
        """
    )
    out = subprocess.run([PY, "-c", driver], capture_output=True, env=_env(), timeout=180, check=True).stdout
    growth, returncode, dropped_bytes, dropped_lines, kept, text = json.loads(out)
    result = ProcessResult(["writer"], returncode, "", "", 0.0, 0.0, 0.0)
    result.stdout_dropped_bytes, result.stdout_dropped_lines = dropped_bytes, dropped_lines
    assert kept == min(max_output, megabytes * 1_000_000), kept
    assert text.startswith("(output truncated: first ") == (kept < megabytes * 1_000_000), text
    return int(growth), result


def test_memory_stays_bounded_while_reading_200_mb() -> None:
    growth, result = _peak_rss_growth(200)
    assert result.returncode == 0
    assert result.stdout_dropped_bytes == 200_000_000 - 1_000_000
    assert result.stdout_dropped_lines == 199_000
    assert growth < 50_000_000, f"peak RSS grew by {growth / 1e6:.1f} MB"


def test_the_rss_measure_sees_a_buffer_that_keeps_everything() -> None:
    """The measure above is not blind: keeping 60 MB of output shows up as at least that much growth."""
    growth, result = _peak_rss_growth(60, max_output=60_000_000)
    assert result.stdout_dropped_bytes == 0
    assert growth > 55_000_000, f"peak RSS grew by {growth / 1e6:.1f} MB only"


def test_psutil_is_imported_on_first_use_and_safely_from_many_threads_at_once() -> None:
    """Importing the reaper does not import psutil (every --orchestrate session imports the reaper); the first use
    may come from several threads at once (scripts run in parallel), and each sees the whole module."""
    code = textwrap.dedent(
        """
        import os, sys, threading
        from pytest_orchestrator.execution import reaper
        assert "psutil" not in sys.modules, "psutil imported with the reaper"
        barrier = threading.Barrier(8)
        errors = []

        def use():
            barrier.wait()
            try:
                reaper.psutil.Process(os.getpid()).status()
            except Exception as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=use) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(errors)
        """
    )
    for _ in range(5):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "[]"
