"""``pytest --orchestrate --orchestrate-watch``: a real session in a subprocess, real file writes, real reruns, and
Ctrl-C (SIGINT) that ends it cleanly (exit status 130, no traceback, nothing left running). The selection itself
(changed files, what is downstream, new files, what is ignored) is tested on an ``ItemGraph`` directly."""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import queue
import re
import signal
import subprocess
import sys
import threading
import time

from plugin_helpers import lean_xdist_inner_runs
from plugin_helpers import project
import pytest

from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.dag import Node
from pytest_orchestrator.plugin.watch import refresh
from pytest_orchestrator.plugin.watch import rerun_args
from pytest_orchestrator.plugin.watch import select
from pytest_orchestrator.triggers.files import FileChange


#: every wait of these tests is bounded: a watch that misbehaves fails the test, it never hangs CI
STEP_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

A = "def test_a():\n    pass\n"
B = """
import pytest

@pytest.mark.depends("a.py::test_a")
def test_b():
    pass
"""
C = "def test_c():\n    pass\n"


class Session:
    """A ``pytest --orchestrate --orchestrate-watch`` process and the lines it printed."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "--orchestrate", "--orchestrate-watch", "-v", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, needle: str, timeout: float = STEP_TIMEOUT) -> list[str]:
        """The lines printed from now until one containing ``needle`` (that one included)."""
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {needle!r} in {timeout} s:\n" + "\n".join(self.lines)) from None
            if line is None:
                raise AssertionError(f"the session ended before {needle!r}:\n" + "\n".join(self.lines))
            got.append(line)
            self.lines.append(line)
            if needle in line:
                return got

    def interrupt(self, signum: int = signal.SIGINT) -> int:
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        finally:
            self.kill()

    def output(self) -> str:
        """Everything printed (once the process ended)."""
        while True:
            try:
                line = self._queue.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)


def _passed(lines: list[str]) -> set[str]:
    """The node ids ``-v`` reported as passed (``a.py::t PASSED``, or ``[gw0] ... PASSED a.py::t`` under xdist)."""
    return {m for line in lines if "PASSED" in line for m in re.findall(r"[\w/]+\.py::\w+", line)}


def _left_running(folder: Path) -> list[str]:
    """Live processes (no zombies) working in ``folder``: what a rerun would leave behind."""
    psutil = pytest.importorskip("psutil")
    left = []
    for proc in psutil.process_iter(["pid", "cwd", "status", "cmdline"]):
        alive = proc.info["status"] != psutil.STATUS_ZOMBIE and proc.info["pid"] != os.getpid()
        if proc.info["cwd"] == str(folder) and alive:
            left.append(f"{proc.info['pid']}: {' '.join(proc.info['cmdline'] or ())}")
    return left


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_xdist_inner_runs(monkeypatch)  # after pytester, which clears PYTEST_ADDOPTS


@pytest.fixture
def dag(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("PYTEST_ORCHESTRATOR_RUN", raising=False)
    # addopts: a rerun gets the ini's options too, and must not start a watch of its own
    project(pytester, "python_files = *.py\naddopts = --orchestrate-watch\n")
    for name, text in (("a.py", A), ("b.py", B), ("c.py", C)):
        (pytester.path / name).write_text(text)
    yield pytester.path


def _change(path: Path, text: str) -> None:
    path.write_text(text)
    later = time.time() + 1  # a new mtime even on a coarse clock, for the polling fallback
    os.utime(path, (later, later))


@pytest.mark.slow
@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
def test_a_change_reruns_the_file_and_what_depends_on_it(dag: Path, xdist: bool) -> None:
    session = Session(dag, "-p", "no:cacheprovider", *(("-n", "2") if xdist else ()))
    try:
        first = session.until("waiting for changes")
        assert any("3 passed" in line for line in first), "\n".join(first)
        _change(dag / "a.py", A + "\n\ndef test_a2():\n    pass\n")
        rerun = session.until("waiting for changes")
        announced = [line for line in rerun if line.startswith("orchestrate: watch: a.py modified")]
        assert announced == [
            "orchestrate: watch: a.py modified: rerunning a.py and 1 item downstream",
            "orchestrate: watch: a.py modified: 3 items rerun (2 in a.py, 1 downstream)",
        ], "\n".join(rerun)
        assert _passed(rerun) == {"a.py::test_a", "a.py::test_a2", "b.py::test_b"}, "\n".join(rerun)
        assert any("3 passed" in line for line in rerun), "\n".join(rerun)
        # a change that holds no test reruns nothing
        (dag / "notes.txt").write_text("hello")
        _change(dag / "c.py", C + "\n")
        rerun = session.until("waiting for changes")
        assert rerun[0] == "orchestrate: watch: c.py modified: rerunning c.py"
        assert "orchestrate: watch: c.py modified: 1 item rerun (1 in c.py, 0 downstream)" in rerun, "\n".join(rerun)
        assert "notes.txt" not in "\n".join(rerun)
        assert any("1 passed" in line for line in rerun)
        status = session.interrupt()
    finally:
        session.kill()
    text = session.output()
    assert status == 130, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert text.rstrip().endswith("orchestrate: watch: stopped"), text
    assert _left_running(dag) == []


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_during_a_rerun_stops_it(dag: Path, signum: int) -> None:
    session = Session(dag, "-p", "no:cacheprovider")
    try:
        session.until("waiting for changes")
        marker = dag / "started"
        _change(
            dag / "a.py",
            f"import pathlib, time\n\ndef test_a():\n    pathlib.Path({str(marker)!r}).touch()\n    time.sleep(60)\n",
        )
        session.until("rerunning a.py and 1 item downstream")
        deadline = time.monotonic() + STEP_TIMEOUT
        while not marker.exists():  # the rerun is inside test_a
            assert time.monotonic() < deadline, "\n".join(session.lines)
            time.sleep(0.05)
        started = time.monotonic()
        status = session.interrupt(signum)
        took = time.monotonic() - started
    finally:
        session.kill()
    text = session.output()
    assert status == 128 + signum, text
    assert took < STOP_TIMEOUT, took
    assert "Traceback" not in text, text
    assert _passed(text.split("rerunning a.py", 1)[1].splitlines()) == set(), text
    assert "items rerun" not in text  # the rerun was stopped before it could say what it ran
    assert text.rstrip().endswith("orchestrate: watch: stopped"), text
    assert _left_running(dag) == []


def test_without_orchestrate_the_watch_is_ignored_and_said_so(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_t="def test_a(): pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--orchestrate-watch", timeout=60)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["orchestrate: ignored without --orchestrate (*): --orchestrate-watch"])
    assert "waiting for changes" not in result.stdout.str()


def test_a_usage_error_is_not_watched(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_t="def test_a(): pass\n")
    result = pytester.runpytest_subprocess(
        "--orchestrate", "--orchestrate-watch", "--orchestrate-stage", "nosuch", timeout=60
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "waiting for changes" not in result.stdout.str()


def _graph() -> ItemGraph:
    return ItemGraph(
        [
            Node("a.py::test_a"),
            Node("a.py::test_a2"),
            Node("b.py::test_b", deps=["a.py::test_a"]),
            Node("d/d.py::test_d", deps=["b.py::test_b"]),
            Node("c.py::test_c"),
            Node("scripts/seed.py::seed", kind="script"),
            Node("e.py::test_e", deps=["scripts/seed.py::seed", "c.py::test_c"]),
        ]
    )


def test_select_a_changed_file_and_everything_downstream(tmp_path: Path) -> None:
    for rel in ("a.py", "b.py", "c.py", "scripts/seed.py", "notes.txt", "test_new.py", "scripts/new.sh"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")

    def chosen(*changes: tuple[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        got = select(
            _graph(),
            [FileChange(str(tmp_path / p), c) for p, c in changes],
            tmp_path,
            test_globs=["test_*.py"],
            script_globs=["scripts/**/*.sh"],
        )
        return got.files, got.downstream

    assert chosen(("a.py", "modified")) == (("a.py",), ("b.py::test_b", "d/d.py::test_d"))
    # a downstream item in a changed file is rerun with its file
    assert chosen(("a.py", "modified"), ("b.py", "modified")) == (("a.py", "b.py"), ("d/d.py::test_d",))
    assert chosen(("scripts/seed.py", "modified")) == (("scripts/seed.py",), ("e.py::test_e",))
    assert chosen(("c.py", "modified")) == (("c.py",), ("e.py::test_e",))
    # nothing for a file without tests; a new test file or script is rerun whole
    assert chosen(("notes.txt", "modified")) == ((), ())
    assert chosen(("test_new.py", "added"), ("scripts/new.sh", "added")) == (("test_new.py", "scripts/new.sh"), ())
    # a deleted test file: only what depended on it reruns (and says what it misses)
    assert chosen(("c.py", "deleted")) == ((), ("e.py::test_e",))
    chosen_a = select(_graph(), [FileChange(str(tmp_path / "a.py"), "modified")], tmp_path)
    assert chosen_a.describe() == "orchestrate: watch: a.py modified: rerunning a.py and 2 items downstream"
    ran = ItemGraph([Node("a.py::test_a"), Node("a.py::test_a3"), Node("b.py::test_b"), Node("d/d.py::test_d")])
    assert chosen_a.ran(ran) == "orchestrate: watch: a.py modified: 4 items rerun (2 in a.py, 2 downstream)"


def test_refresh_takes_the_changed_files_items_from_the_rerun() -> None:
    ran = ItemGraph([Node("a.py::test_a"), Node("a.py::test_a3", deps=["a.py::test_a"]), Node("b.py::test_b")])
    fresh = refresh(_graph(), ran, ["a.py"])
    assert "a.py::test_a2" not in fresh  # gone from the file
    assert fresh.nodes["a.py::test_a3"].deps == ["a.py::test_a"]  # new, with what the rerun saw
    assert fresh.nodes["b.py::test_b"].deps == ["a.py::test_a"]  # not a changed file: as it was
    assert fresh.nodes["e.py::test_e"].deps == ["scripts/seed.py::seed", "c.py::test_c"]
    assert len(fresh) == len(_graph())


def test_rerun_args_drop_the_watch_and_the_paths() -> None:
    args = ["--orchestrate", "--orchestrate-watch", "-k", "tests", "-n", "2", "tests", "x.py::test_x"]
    assert rerun_args(args, ["tests", "x.py::test_x"]) == ["--orchestrate", "-k", "tests", "-n", "2"]


def test_help_names_the_option(pytester: pytest.Pytester) -> None:
    text = " ".join(pytester.runpytest("--help").stdout.str().split())  # however the terminal wraps it
    assert "--orchestrate-watch After the run, watch the rootdir" in text
