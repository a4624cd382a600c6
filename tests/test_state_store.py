"""``StateStore`` against a real SQLite file: recording, reading, locking between processes, bad files."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from pytest_orchestrator import Workflow
from pytest_orchestrator.core.recording import task_fingerprint
from pytest_orchestrator.errors import ConcurrencyError
from pytest_orchestrator.errors import StateError
from pytest_orchestrator.state import SCHEMA_VERSION
from pytest_orchestrator.state import StateStore
from pytest_orchestrator.state.store import _SCHEMA_V1
from pytest_orchestrator.state.store import _SCHEMA_V2
from pytest_orchestrator.state.store import _migrate_from


def test_created_on_first_use_with_its_folder_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.db"
    store = StateStore(path)
    assert not path.exists()
    store.connect()
    assert path.exists()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    store.close()


def test_a_run_its_tasks_and_attempts_round_trip(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        run = store.begin_run("etl")
        store.record_attempt(run, "a", 1, "failed", started_at=1.0, finished_at=2.0, error="boom")
        store.record_task(run, "a", "completed", fingerprint="f1", attempts=2, value={"rows": [1, 2]})
        store.record_task(run, "b", "completed", value=object())  # not JSON: recorded as not stored
        store.record_task(run, "c", "failed", error="ValueError: x", attempts=1)
        assert store.dirty
        store.flush()
        assert not store.dirty
        store.finish_run(run, "failed", {"success": False})
    again = StateStore(tmp_path / "s.db")
    tasks = again.tasks(run)
    assert tasks["a"].value == {"rows": [1, 2]} and tasks["a"].value_stored and tasks["a"].attempts == 2
    assert tasks["a"].fingerprint == "f1"
    assert tasks["b"].status == "completed" and not tasks["b"].value_stored and tasks["b"].value is None
    assert tasks["c"].error == "ValueError: x"
    assert [a["outcome"] for a in again.attempts(run, "a")] == ["failed", "completed"]
    info = again.get_run(run)
    assert info.status == "failed" and info.summary == {"success": False}
    assert info.counts == {"completed": 2, "failed": 1}
    assert [r.run_id for r in again.list_runs(name="etl")] == [run]
    assert again.last_unfinished_run("etl") == run
    again.close()


def test_resumable_says_what_happens(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    assert store.resumable("etl", True) == (
        None,
        f"nothing to resume: no earlier run of 'etl' in {str(tmp_path / 's.db')!r}; running from the start",
    )
    run = store.begin_run("etl")
    store.finish_run(run, "completed")
    run_id, why = store.resumable("etl", True)
    assert run_id is None and "completed" in why
    second = store.begin_run("etl")
    store.finish_run(second, "failed")
    assert store.resumable("etl", True)[0] == second
    assert store.resumable("etl", run)[0] == run
    with pytest.raises(StateError, match="no run 'nope'"):
        store.resumable("etl", "nope")
    with pytest.raises(StateError, match="is a run of 'etl', not of 'other'"):
        store.resumable("other", second)


HOLD = """
import sys, time
from pytest_orchestrator.state import StateStore
store = StateStore(sys.argv[1])
run = store.begin_run("etl")
print(run, flush=True)
if sys.argv[2] == "hold":
    time.sleep(60)
"""


def _holder(path: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD), str(path), mode], stdout=subprocess.PIPE, text=True, env=env
    )


def test_a_second_process_gets_a_concurrency_error_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    proc = _holder(path, "hold")
    try:
        assert proc.stdout is not None
        held_run = proc.stdout.readline().strip()
        store = StateStore(path)
        with pytest.raises(ConcurrencyError) as info:
            store.begin_run("etl")
        assert info.value.holder_pid == proc.pid  # type: ignore[attr-defined]
        assert f"pid {proc.pid}" in str(info.value) and held_run in str(info.value)
        assert store.begin_run("other")  # another name is not blocked
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    # the database is intact
    assert StateStore(path).get_run(held_run).status == "running"


def test_a_dead_holder_is_taken_over_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    proc = _holder(path, "exit")
    assert proc.stdout is not None
    dead_run = proc.stdout.readline().strip()
    proc.wait()
    proc.stdout.close()
    store = StateStore(path)
    with pytest.warns(RuntimeWarning, match=f"held by pid {proc.pid}.*which is gone"):
        run = store.begin_run("etl")
    assert run != dead_run
    assert store.get_run(dead_run).status == "interrupted"
    assert store.resumable("etl", dead_run)[0] == dead_run


def test_a_corrupt_file_is_a_state_error_and_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    junk = b"this is not a database\x00" * 100
    path.write_bytes(junk)
    with pytest.raises(StateError, match=r"not a readable state database.*to start with fresh state"):
        StateStore(path).connect()
    assert path.read_bytes() == junk


def test_a_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="not a pytest-orchestrator state file"):
        StateStore(path).connect()
    assert sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall() == [("users",)]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first = StateStore(path)
    first.connect()
    first.close()  # left open, its checkpoint at garbage collection would rewrite the file under the check below
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StateError, match=f"state schema {SCHEMA_VERSION + 1}.*upgrade, or move"):
        StateStore(path).connect()
    assert path.read_bytes() == before


def test_a_failed_write_is_reported_once_and_the_run_is_not_resumable(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = StateStore(path)
    run = store.begin_run("etl")
    store.record_task(run, "a", "completed", value=1, commit=True)
    # another connection takes the write lock and keeps it: our commits fail (as on a full disk)
    blocker = sqlite3.connect(path, isolation_level=None, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    store.connect().execute("PRAGMA busy_timeout=50")
    store.record_task(run, "b", "completed", value=2)
    with pytest.warns(RuntimeWarning, match="recording state in .* failed"):
        store.flush(run)
    assert not store.recording
    store.record_task(run, "c", "completed", value=3, commit=True)  # silently not recorded: no second warning
    blocker.execute("ROLLBACK")
    blocker.close()
    store.finish_run(run, "completed")
    fresh = StateStore(path)
    assert set(fresh.tasks(run)) == {"a"}
    assert run in store._failed_runs


def test_values_that_do_not_round_trip_are_not_stored(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    run = store.begin_run("w")
    store.record_task(run, "tuple", "completed", value=(1, 2))  # JSON gives a list back: not the same value
    store.record_task(run, "nan", "completed", value=float("nan"))
    store.record_task(run, "ok", "completed", value={"a": [1, "x", None, True, 1.5]})
    store.finish_run(run, "completed")
    tasks = store.tasks(run)
    assert not tasks["tuple"].value_stored and not tasks["nan"].value_stored
    assert tasks["ok"].value_stored


def test_timestamps_are_wall_clock(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    before = time.time()
    run = store.begin_run("w")
    store.finish_run(run, "completed")
    info = store.get_run(run)
    assert before <= info.started_at <= (info.finished_at or 0) <= time.time()


def test_a_task_recorded_twice_in_a_run_keeps_one_row_the_last(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    run = store.begin_run("w")
    store.record_task(run, "z", "completed", attempts=1, value=0)
    store.record_task(run, "a", "failed", error="first", attempts=1, commit=True)
    store.record_task(run, "a", "completed", attempts=2, value=5)
    store.finish_run(run, "completed")
    tasks = StateStore(tmp_path / "s.db").tasks(run)
    assert list(tasks) == ["a", "z"]  # one row each, read back in name order
    assert tasks["a"].status == "completed" and tasks["a"].value == 5
    assert store.get_run(run).counts == {"completed": 2}


def test_runs_written_side_by_side_keep_their_own_tasks(tmp_path: Path) -> None:
    """Two workflows of different names record into one file at once, and a second store (as after a restart)
    adds to a run the first began: every row lands in its own run, and a task recorded again replaces its row."""
    path = tmp_path / "s.db"
    first, second = StateStore(path), StateStore(path)
    etl = first.begin_run("etl")
    report = second.begin_run("report")
    for i in range(3):
        first.record_task(etl, f"t{i}", "completed", value=i, commit=True)
        second.record_task(report, f"t{i}", "completed", value=10 + i, commit=True)
    later = StateStore(path)
    later.record_task(etl, "t1", "failed", error="again", attempts=2)
    later.record_task(etl, "t3", "completed", value=3)
    later.flush()
    fresh = StateStore(path)
    assert {n: (t.status, t.value) for n, t in fresh.tasks(etl).items()} == {
        "t0": ("completed", 0),
        "t1": ("failed", None),
        "t2": ("completed", 2),
        "t3": ("completed", 3),
    }
    assert {n: t.value for n, t in fresh.tasks(report).items()} == {"t0": 10, "t1": 11, "t2": 12}
    assert fresh.get_run(report).counts == {"completed": 3}
    for store in (first, second, later, fresh):
        store.close()


def test_a_version_2_file_is_migrated_and_resumes_as_before(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_V1 + _SCHEMA_V2)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    runs = [("r1", "etl", "interrupted", 1.0), ("r2", "other", "completed", 2.0)]
    conn.executemany("INSERT INTO runs (run_id, name, kind, status, started_at) VALUES (?, ?, 'workflow', ?, ?)", runs)
    rows = [
        ("r2", "extract", "completed", None, 1, '"other"', 1),
        ("r1", "extract", "completed", None, 1, '"rows"', 1),
        ("r1", "load", "failed", "boom", 2, None, 0),
        ("ghost", "lost", "completed", None, 1, "1", 1),  # a run without its runs row: kept, under "(unknown)"
    ]
    conn.executemany(
        "INSERT INTO tasks (run_id, task, status, error, attempts, value, value_stored) VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("INSERT INTO attempts VALUES ('r1', 'load', 1, 'failed', 1.0, 2.0, 'first')")
    conn.commit()
    conn.close()

    store = StateStore(path)
    tasks = store.tasks("r1")
    assert {n: (t.status, t.value, t.error) for n, t in tasks.items()} == {
        "extract": ("completed", "rows", None),
        "load": ("failed", None, "boom"),
    }
    assert [a["outcome"] for a in store.attempts("r1", "load")] == ["failed", "failed"]
    assert store.tasks("r2")["extract"].value == "other"
    ghost = store.get_run("ghost")
    assert ghost.name == "(unknown)" and ghost.counts == {"completed": 1}
    store.close()

    # the migrated run resumes: extract is carried over with its stored value, load runs again
    ran: list[str] = []

    def extract() -> str:
        ran.append("extract")
        return "rows"

    def load(extract: str) -> str:
        ran.append("load")
        return extract + " loaded"

    wf = Workflow("etl", state=StateStore(path))
    wf.add_task("extract", extract)
    wf.add_task("load", load, dependencies=["extract"])
    # the old rows carry no fingerprints: give them this workflow's, as a run of this definition had recorded them
    conn = sqlite3.connect(path)
    for name, task in wf.tasks.items():
        conn.execute("UPDATE tasks SET fingerprint=? WHERE run_id='r1' AND task=?", (task_fingerprint(task), name))
    conn.commit()
    conn.close()
    values = asyncio.run(wf.run(resume="r1"))
    assert ran == ["load"] and values == {"extract": "rows", "load": "rows loaded"}
    after = StateStore(path)
    new_run = after.list_runs(name="etl", limit=1)[0]
    assert new_run.run_id not in {"r1", "r2", "ghost"} and new_run.counts == {"completed": 2}
    assert set(after.tasks("r1")) == {"extract", "load"}  # the old run is untouched
    after.close()


def test_a_migration_another_process_made_first_is_not_made_twice(tmp_path: Path) -> None:
    """Two processes open an old file at once: both read its version before either takes the write lock. The one
    that migrates second finds the work done instead of failing on it (the schema 3 step is not idempotent)."""
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_V1 + _SCHEMA_V2)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    conn.execute(
        "INSERT INTO runs (run_id, name, kind, status, started_at) VALUES ('r1', 'etl', 'workflow', 'failed', 1)"
    )
    conn.execute("INSERT INTO tasks (run_id, task, status) VALUES ('r1', 'a', 'completed')")
    conn.commit()
    conn.close()
    first = StateStore(path)
    first.connect()  # migrated to the current schema
    late = sqlite3.connect(path, isolation_level=None)
    _migrate_from(late, 2)  # as the second process would, with the version it read before the first migrated
    late.close()
    assert set(StateStore(path).tasks("r1")) == {"a"}
    first.close()


def test_a_write_failing_at_close_marks_its_run_not_resumable(tmp_path: Path) -> None:
    """``close()`` commits what is buffered without being told the run: a failure there still names that run (its
    id, not a row's key)."""
    path = tmp_path / "s.db"
    store = StateStore(path)
    run = store.begin_run("etl")
    store.record_task(run, "a", "completed", value=1)
    blocker = sqlite3.connect(path, isolation_level=None, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    store.connect().execute("PRAGMA busy_timeout=50")
    with pytest.warns(RuntimeWarning, match="recording state in .* failed"):
        store.close()
    blocker.execute("ROLLBACK")
    blocker.close()
    assert store._failed_runs == {run}  # the run (marked in the file too when the file lets it be written)


def _action() -> None:
    return None


def test_fingerprints_are_the_digest_of_the_definition_text_cached_or_not(tmp_path: Path) -> None:
    """A resume carries over what an earlier version recorded only while the digests stay the same: each task's
    fingerprint is blake2b (8 bytes) of ``what|args|kwargs|deps|fingerprint``, whether its action's description
    was shared with other tasks or made afresh."""
    wf = Workflow("w")
    wf.add_task("a", _action)
    wf.add_task("b", _action, dependencies=["a"])
    wf.add_task("c", _action, args=(1,), kwargs={"k": 2}, dependencies=["b", "a"])
    wf.add_task("d", "echo hi")
    what = f"callable {_action.__module__}.{_action.__qualname__}"
    texts = {
        "a": f"{what}|()|()|[]|None",
        "b": f"{what}|()|()|['a']|None",
        "c": f"{what}|(1,)|[('k', 2)]|['a', 'b']|None",
        "d": "command 'echo hi' shell=False|()|()|[]|None",
    }
    shared: dict[object, object] = {}
    for name, text in texts.items():
        expected = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
        assert task_fingerprint(wf.tasks[name], shared) == expected == task_fingerprint(wf.tasks[name])
