"""Durable state of ``pytest --orchestrate``: sessions recorded in the state file, ``--orchestrate-resume`` (also after
a SIGKILL or Ctrl-C, serial and ``-n 2``), ``--lf`` and dependency skips, and a store that fails."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

from plugin_helpers import REPO_ROOT
from plugin_helpers import XDIST_LEAN_ADDOPTS
from plugin_helpers import assert_clean_error
from plugin_helpers import assert_counts
from plugin_helpers import lean_inner_runs
from plugin_helpers import order_of
from plugin_helpers import project
from plugin_helpers import summary_lines
from plugin_helpers import write
import pytest

from pytest_orchestrator.plugin.lastfailed import failed_upstream
from pytest_orchestrator.plugin.state import COMMIT_LATENCY
from pytest_orchestrator.state import StateStore


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_inner_runs(monkeypatch)


def _db(root: Path) -> Path:
    return root / ".pytest_cache" / "d" / "orchestrate" / "state.db"


@pytest.fixture
def store_of() -> Iterator[list[StateStore]]:
    opened: list[StateStore] = []
    yield opened
    for store in opened:
        store.close()


def _open(opened: list[StateStore], path: Path) -> StateStore:
    store = StateStore(path)
    opened.append(store)
    return store


SUITE = """
import os, pytest

def _ran(name):
    with open(os.path.join(os.environ["RAN_DIR"], name), "a") as f:
        f.write("x")

def test_one():
    _ran("one")

@pytest.mark.depends("test_one")
def test_two():
    _ran("two")
    assert not os.path.exists(os.path.join(os.environ["RAN_DIR"], "..", "broken"))

@pytest.mark.depends("test_two")
def test_three():
    _ran("three")

def test_four():
    _ran("four")

@pytest.mark.skip(reason="not today")
def test_five():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    project(pytester)
    ran = pytester.path / "ran"
    ran.mkdir()
    monkeypatch.setenv("RAN_DIR", str(ran))
    write(pytester, "test_suite.py", SUITE)
    return pytester.path


def _ran(root: Path) -> dict[str, int]:
    return {p.name: p.read_text().count("x") for p in (root / "ran").iterdir()}


def test_a_session_is_recorded_by_default(pytester: pytest.Pytester, suite: Path, store_of: list[StateStore]) -> None:
    (suite / "broken").touch()
    result = pytester.runpytest("--orchestrate")
    assert_counts(result, passed=2, failed=1, skipped=2)
    store = _open(store_of, _db(suite))
    [run] = store.list_runs()
    assert run.name == f"pytest:{suite}" and run.kind == "pytest" and run.status == "failed"
    tasks = store.tasks(run.run_id)
    assert {n.split("::")[1]: t.status for n, t in tasks.items()} == {
        "test_one": "completed",
        "test_two": "failed",
        "test_three": "skipped",
        "test_four": "completed",
        "test_five": "skipped",
    }
    assert all(t.fingerprint for t in tasks.values())
    assert "dependency" in (tasks["test_suite.py::test_three"].error or "")


def test_no_state_and_the_ini_path(pytester: pytest.Pytester, suite: Path, store_of: list[StateStore]) -> None:
    assert pytester.runpytest("--orchestrate", "--orchestrate-no-state").ret == 0
    assert not _db(suite).exists()
    project(pytester, "orchestrate_state = state/here.db\n")
    assert pytester.runpytest("--orchestrate", "-p", "no:cacheprovider").ret == 0
    assert not _db(suite).exists()
    assert [r.status for r in _open(store_of, suite / "state" / "here.db").list_runs()] == ["completed"]
    result = pytester.runpytest("--orchestrate", "--orchestrate-no-state", "--orchestrate-resume")
    assert_clean_error(result, "--orchestrate-resume needs state")


def test_without_the_cache_plugin_the_rootdir_cache_folder_is_used(pytester: pytest.Pytester, suite: Path) -> None:
    assert pytester.runpytest("--orchestrate", "-p", "no:cacheprovider").ret == 0
    assert _db(suite).exists()


def test_resume_carries_passed_items_over_and_reports_them_as_passed(pytester: pytest.Pytester, suite: Path) -> None:
    (suite / "broken").touch()
    pytester.runpytest("--orchestrate")
    (suite / "broken").unlink()
    result = pytester.runpytest("--orchestrate", "--orchestrate-resume", "-v", "--junitxml=out.xml")
    assert_counts(result, passed=4, skipped=1)  # as an uninterrupted run: carried items are passed
    assert _ran(suite) == {"one": 1, "two": 2, "three": 1, "four": 1}
    carried = [line for line in result.outlines if "PASSED (carried over)" in line]
    assert [line.split()[0] for line in carried] == ["test_suite.py::test_one", "test_suite.py::test_four"]
    run_id = re.search(r"resuming run (\w+)", result.stdout.str())
    assert run_id is not None
    assert f"2 carried over from run {run_id.group(1)} (passed there, not run again)" in summary_lines(result)
    assert 'name="carried_over_from"' in (suite / "out.xml").read_text()
    # the resumed run completed: nothing left to resume
    again = pytester.runpytest("--orchestrate", "--orchestrate-resume")
    assert "nothing to resume" in again.stdout.str()
    assert _ran(suite)["one"] == 2


def test_an_edited_file_reruns_its_items_and_their_dependents(pytester: pytest.Pytester, suite: Path) -> None:
    write(pytester, "test_other.py", "import pytest\n\ndef test_base(): pass\n")
    write(
        pytester,
        "test_down.py",
        "import pytest\n\n@pytest.mark.depends('test_other.py::test_base')\ndef test_down(): pass\n\n"
        "def test_alone(): pass\n",
    )
    (suite / "broken").touch()
    pytester.runpytest("--orchestrate")
    (suite / "broken").unlink()
    write(pytester, "test_other.py", "import pytest\n\ndef test_base(): assert 1\n")
    result = pytester.runpytest("--orchestrate", "--orchestrate-resume", "-v")
    carried = {line.split()[0] for line in result.outlines if "PASSED (carried over)" in line}
    assert carried == {"test_suite.py::test_one", "test_suite.py::test_four", "test_down.py::test_alone"}
    assert_counts(result, passed=7, skipped=1)


def test_resume_refuses_an_unknown_run_and_a_path_taken_for_one(pytester: pytest.Pytester, suite: Path) -> None:
    pytester.runpytest("--orchestrate")
    assert_clean_error(pytester.runpytest("--orchestrate", "--orchestrate-resume=nope"), "no run 'nope'")
    result = pytester.runpytest("--orchestrate", "--orchestrate-resume", "test_suite.py")
    assert_clean_error(result, "looks like a path", "--orchestrate-resume=RUN_ID")


def test_a_failing_store_never_fails_the_session_and_its_run_is_not_resumed(
    pytester: pytest.Pytester, suite: Path
) -> None:
    write(
        pytester,
        "test_break.py",
        f"""
        import sqlite3, time

        def test_break_the_store():
            conn = sqlite3.connect({str(_db(suite))!r}, timeout=10)
            conn.execute("CREATE TRIGGER full BEFORE INSERT ON tasks BEGIN SELECT RAISE(FAIL, 'disk full'); END")
            conn.commit()
            conn.close()

        def test_after_a():
            time.sleep(0.25)  # the committer thread tries (and fails) meanwhile

        def test_after_b():
            pass
        """,
    )
    result = pytester.runpytest("--orchestrate", "-p", "no:randomly")
    assert_counts(result, passed=7, skipped=1)
    told = [line for line in result.outlines if "recording state in" in line and "disk full" in line]
    assert len(told) == 2, result.stdout.str()  # once as it happened, once in the workflow summary
    assert "session goes on without state" in told[0]
    assert_clean_error(
        pytester.runpytest("--orchestrate", "--orchestrate-resume"), "cannot resume from run", "recording failed"
    )


def test_an_unreadable_state_file_turns_state_off(pytester: pytest.Pytester, suite: Path) -> None:
    _db(suite).parent.mkdir(parents=True)
    _db(suite).write_bytes(b"this is not a database, not at all" * 100)
    result = pytester.runpytest("--orchestrate")
    assert result.ret == 0
    assert "orchestrate: state is off for this session" in result.stdout.str()
    assert_clean_error(pytester.runpytest("--orchestrate", "--orchestrate-resume"), "--orchestrate-resume:")
    assert _db(suite).read_bytes().startswith(b"this is not")  # left as it was


def test_a_session_holding_the_lock_turns_state_off_for_another(
    pytester: pytest.Pytester, suite: Path, store_of: list[StateStore]
) -> None:
    store = _open(store_of, _db(suite))
    holder = store.begin_run(f"pytest:{suite}", kind="pytest")  # this (live) process holds it
    result = pytester.runpytest("--orchestrate")
    assert result.ret == 0
    assert f"state is off for this session: 'pytest:{suite}' is already running" in result.stdout.str()
    assert holder in result.stdout.str()


def test_lf_reruns_failed_items_and_their_dependency_skipped_dependents(pytester: pytest.Pytester, suite: Path) -> None:
    write(
        pytester,
        "test_marked.py",
        """
        import pytest

        @pytest.mark.skip(reason="by marker")
        def test_skipped(): pass

        @pytest.mark.depends("test_skipped")
        def test_after_skip(): pass
        """,
    )
    (suite / "broken").touch()
    pytester.runpytest("--orchestrate")
    (suite / "broken").unlink()
    result = pytester.runpytest("--orchestrate", "--lf", "-v")
    assert order_of(result) == ["test_suite.py::test_one", "test_suite.py::test_two", "test_suite.py::test_three"]
    assert_counts(result, passed=3)
    # fixed: the next --lf has nothing left to rerun
    assert "no previously failed tests" in pytester.runpytest("--orchestrate", "--lf").stdout.str()


def test_failed_upstream_reads_the_dependency_rules_reasons() -> None:
    assert failed_upstream("dependency 'a' failed")
    assert failed_upstream("dependency 'b' was skipped (root cause: 'a' failed)")
    assert not failed_upstream("dependency 'a' was skipped")
    assert not failed_upstream("dependency 'b' was skipped (root cause: 'a' was deselected)")


# -- a real session killed half way, then resumed -----------------------------------------------------------------

KILL_SUITE = """
import os, time, pytest

RAN = os.environ["RAN_DIR"]

def _ran(name):
    with open(os.path.join(RAN, name), "a") as f:
        f.write("x")

@pytest.mark.parametrize("n", range(6))
def test_early(n):
    _ran(f"early{n}")

def test_fails():
    _ran("fails")
    assert False

@pytest.mark.depends("test_fails")
def test_after_failure():
    _ran("after_failure")

@pytest.mark.depends("test_early")
def test_block():
    _ran("block")
    if not os.path.exists(os.path.join(RAN, "..", "release")):
        open(os.path.join(RAN, "..", "blocking"), "w").write("yes")
        time.sleep(600)

@pytest.mark.depends("test_block")
def test_after_block():
    _ran("after_block")

@pytest.mark.parametrize("n", range(4))
def test_late(n):
    _ran(f"late{n}")
"""

TIMEOUT = 120


def _kill_project(root: Path) -> Path:
    return _blocking_project(root, "", KILL_SUITE)


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    env["RAN_DIR"] = str(root / "ran")
    env["PYTEST_ADDOPTS"] = XDIST_LEAN_ADDOPTS
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    return env


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--orchestrate", "-p", "no:timeout", *args],
        cwd=root,
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _start_until_blocking(root: Path, *args: str, what: str = "the blocking test") -> subprocess.Popen[bytes]:
    """A session started in its own process group, once one of its items wrote ``blocking`` (and then runs long)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--orchestrate", "-p", "no:timeout", "-p", "no:randomly", *args],
        cwd=root,
        env=_env(root),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (root / "blocking").exists():
            assert time.monotonic() < deadline and proc.poll() is None, f"{what} never started"
            time.sleep(0.02)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return proc


def _blocking_project(root: Path, conftest: str, tests: str) -> Path:
    root.mkdir()
    (root / "ran").mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")
    if conftest:
        (root / "conftest.py").write_text(textwrap.dedent(conftest))
    (root / "test_blocking.py").write_text(textwrap.dedent(tests))
    return root


def _quiet(root: Path, for_seconds: float = COMMIT_LATENCY + 0.6) -> dict[str, int]:
    """The counters once they stopped changing for ``for_seconds`` (and the last rows had time to be committed)."""
    last, since = _ran(root), time.monotonic()
    deadline = since + TIMEOUT
    while time.monotonic() - since < for_seconds and time.monotonic() < deadline:
        time.sleep(0.05)
        now = _ran(root)
        if now != last:
            last, since = now, time.monotonic()
    return last


def _stats(output: str) -> str:
    return output.strip().splitlines()[-1].split(" in ")[0].strip("= ")


@pytest.mark.parametrize(
    ("workers", "sig"),
    [((), signal.SIGKILL), ((), signal.SIGINT), (("-n", "2"), signal.SIGKILL)],
    ids=["serial-sigkill", "serial-ctrl-c", "xdist-sigkill"],
)
def test_a_killed_session_resumes_without_running_a_passed_item_twice(
    tmp_path: Path, workers: tuple[str, ...], sig: signal.Signals
) -> None:
    reference = _kill_project(tmp_path / "reference")
    (reference / "release").touch()
    uninterrupted = _pytest(reference, "-p", "no:randomly", *workers)
    assert uninterrupted.returncode == 1, uninterrupted.stdout

    root = _kill_project(tmp_path / "killed")
    proc = _start_until_blocking(root, *workers)
    try:
        before = _quiet(root)
        if sig == signal.SIGINT:
            os.kill(proc.pid, sig)
            proc.wait(timeout=TIMEOUT)
        else:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    passed_before = {n for n, count in before.items() if n not in ("fails", "block", "after_failure")}
    assert {"early0", "early5"} <= passed_before

    (root / "release").touch()
    resumed = _pytest(root, "--orchestrate-resume", "-v", *workers)
    assert resumed.returncode == 1, resumed.stdout
    after = _ran(root)
    assert {n: after[n] for n in passed_before} == dict.fromkeys(passed_before, 1), resumed.stdout
    assert after["block"] == 2 and after["after_block"] == 1
    assert set(after) == set(_ran(reference))  # every item ran (or was carried over)
    assert _stats(resumed.stdout) == _stats(uninterrupted.stdout)
    assert f"{len(passed_before)} carried over from run" in resumed.stdout
    assert resumed.stdout.count("PASSED (carried over)") == len(passed_before)
    shutil.rmtree(root / ".pytest_cache", ignore_errors=True)


RERUN_CONFTEST = """
import os, time, pytest

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    # as pytest-rerunfailures logs an attempt whose teardown failed and will be rerun; the next attempt runs long
    if item.name != "test_teardown_rerun":
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for when, outcome in (("setup", "passed"), ("call", "passed"), ("teardown", "rerun")):
        now = time.time()
        report = pytest.TestReport(item.nodeid, item.location, {}, outcome, None, when, start=now, stop=now)
        item.ihook.pytest_runtest_logreport(report=report)
    open(os.path.join(os.environ["RAN_DIR"], "..", "blocking"), "w").write("yes")
    time.sleep(600)
"""


def test_an_item_whose_teardown_will_be_rerun_is_not_recorded_until_it_finishes(
    tmp_path: Path, store_of: list[StateStore]
) -> None:
    root = _blocking_project(
        tmp_path / "rerun", RERUN_CONFTEST, "def test_first(): pass\n\ndef test_teardown_rerun(): pass\n"
    )
    proc = _start_until_blocking(root, what="the rerun attempt")
    try:
        time.sleep(COMMIT_LATENCY + 0.5)  # the committer writes what waits
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    store = _open(store_of, _db(root))
    [run] = store.list_runs()
    # the first item's row was committed while the second ran; the second's call passed, yet it never finished
    assert {n: t.status for n, t in store.tasks(run.run_id).items()} == {"test_blocking.py::test_first": "completed"}


def test_item_fingerprints_are_the_digest_of_node_id_file_content_and_dependencies(tmp_path: Path) -> None:
    """The fingerprint's text is pinned: a run recorded by an earlier version still carries its items over."""
    import hashlib

    from pytest_orchestrator.plugin.dag import ItemGraph
    from pytest_orchestrator.plugin.dag import Node
    from pytest_orchestrator.plugin.state import item_fingerprints

    source = tmp_path / "test_x.py"
    source.write_text("def test_a(): pass\ndef test_b(): pass\n")
    graph = ItemGraph([Node("test_x.py::test_a"), Node("test_x.py::test_b", deps=["test_x.py::test_a"])])
    fingerprints = item_fingerprints(graph, dict.fromkeys(graph, str(source)))

    def digest(text: str) -> str:
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    content = hashlib.blake2b(source.read_bytes()).hexdigest()[:16]
    first = digest(repr(("test_x.py::test_a", content, [])))
    assert fingerprints == {
        "test_x.py::test_a": first,
        "test_x.py::test_b": digest(repr(("test_x.py::test_b", content, [first]))),
    }


LATENCY_CONFTEST = """
import pytest_orchestrator.plugin.state as state

state.COMMIT_LATENCY = 1.0  # (the default) long enough to tell one period from two on a busy machine
"""

LATENCY_SUITE = """
import os, time

RAN = os.environ["RAN_DIR"]

def test_first():
    pass

def test_a():
    time.sleep(0.4)
    with open(os.path.join(RAN, "..", "a_done"), "w") as f:
        f.write(repr(time.time()))

def test_b():
    open(os.path.join(RAN, "..", "blocking"), "w").write("yes")
    time.sleep(600)
"""


def test_a_row_is_committed_within_the_commit_latency_while_the_next_item_runs_long(tmp_path: Path) -> None:
    """``test_first`` and ``test_a`` finish before the main thread's write is due (half the latency after
    ``test_first``), and ``test_b`` then runs long: the committer writes ``test_a``'s row at most ``COMMIT_LATENCY``
    after it finished."""
    import sqlite3

    root = _blocking_project(tmp_path / "latency", LATENCY_CONFTEST, LATENCY_SUITE)
    proc = _start_until_blocking(root, what="test_b")
    committed = None
    try:
        finished = float((root / "a_done").read_text())
        while committed is None and time.time() < finished + 5:
            with contextlib.closing(sqlite3.connect(_db(root), timeout=10)) as conn:
                tasks = {row[0] for row in conn.execute("SELECT task FROM tasks")}
            if "test_blocking.py::test_a" in tasks:
                committed = time.time()
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert committed is not None, "test_a's row was never committed"
    assert committed - finished < 1.0, f"committed {committed - finished:.2f} s after test_a finished"
