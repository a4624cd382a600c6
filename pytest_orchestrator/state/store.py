"""``StateStore``: the runs of workflows, scripts, pipelines and pytest sessions, in one SQLite file.

One row per run, per task and per task attempt: status, start and end times, attempts, error text, and the task's
value when it is JSON-serialisable (otherwise the task is recorded as "value not stored" and reruns on resume).
The file is opened in WAL mode with ``synchronous=NORMAL``: a committed row survives the death of the process that
wrote it (SIGKILL, a cancelled CI job); only the loss of the machine's power can lose the last commits.

Rules the rest of the package relies on:

* ``record_task`` buffers the row; ``flush()`` commits every buffered row in one transaction. The engine flushes
  before it starts a task whose dependency was recorded since the last flush, so a completed task's row is always
  committed before a dependent starts (``record_task(..., commit=True)`` commits at once).
* One unfinished run per name at a time: ``begin_run`` takes the name's lock, or raises ``ConcurrencyError``
  naming the holder (pid, host, start time). A holder whose pid is gone on this host is taken over with a warning.
* The store is never the reason a run fails: once a write fails (disk full, file removed), the store reports it
  once (a ``RuntimeWarning`` and ``.failure``), records nothing more, and marks the run so that resuming from it
  is refused with a clear message.
* A file that is not a database of ours, or of a newer schema, is a ``StateError`` naming the path and how to
  start fresh; the file is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
import itertools
import json
import os
from pathlib import Path
import socket
import sqlite3
import time
from typing import TYPE_CHECKING
from typing import Any
import uuid
import warnings

from pytest_orchestrator._lazy import lazy_getattr
from pytest_orchestrator.errors import ConcurrencyError
from pytest_orchestrator.errors import StateError


if TYPE_CHECKING:
    from pytest_orchestrator.core.workflow import TaskResult
    from pytest_orchestrator.core.workflow import Workflow
    from pytest_orchestrator.state.recorder import StoreRecorder
    from pytest_orchestrator.state.records import RunInfo
    from pytest_orchestrator.state.records import StoredTask


__all__ = ["DEFAULT_PATH", "SCHEMA_VERSION", "RunInfo", "StateStore", "StoredTask", "TaskRow"]

# what the store reads back loads when it is read (a session that only records never makes one)
__getattr__ = lazy_getattr("pytest_orchestrator.state", {"RunInfo": "records", "StoredTask": "records"}, globals())

#: where the ``orchestrate`` command and ``Workflow(state=StateStore())`` keep their state by default
DEFAULT_PATH = ".orchestrate/state.db"

#: the schema this code writes; older files are migrated forward, newer ones refused
SCHEMA_VERSION = 3

#: the columns of a task row, the same in every schema (version 3 adds only its integer key)
_TASK_COLUMNS = """\
    run_id TEXT NOT NULL,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    fingerprint TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    value TEXT,
    value_stored INTEGER NOT NULL DEFAULT 0,
    carried_over INTEGER NOT NULL DEFAULT 0"""

_SCHEMA_V1 = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    resumed_from TEXT,
    pid INTEGER,
    host TEXT,
    recording_failed TEXT,
    summary TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_name ON runs (name, started_at);
CREATE TABLE IF NOT EXISTS tasks (
{_TASK_COLUMNS},
    PRIMARY KEY (run_id, task)
);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL,
    task TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    PRIMARY KEY (run_id, task, attempt)
);
CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at REAL NOT NULL
);
"""

# version 2: the scheduler's jobs (``Scheduler(state=...)``, read and written by ``state/jobs.py``) and their runs.
# A job's target is an import path ("package.module:function") or a file path; its trigger and options are JSON.
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    target TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    trigger TEXT NOT NULL,
    options TEXT NOT NULL,
    status TEXT NOT NULL,
    runs INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_fire_time TEXT,
    next_fire_time TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_name ON jobs (name);
CREATE TABLE IF NOT EXISTS job_runs (
    job_id TEXT NOT NULL,
    due TEXT NOT NULL,
    status TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    duration REAL NOT NULL DEFAULT 0,
    lag REAL NOT NULL DEFAULT 0,
    error TEXT,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS job_runs_by_job ON job_runs (job_id, due);
"""

#: a run's task keys lie strictly between ``seq << 32`` and ``(seq + 1) << 32``
_RUN_SHIFT = 32

# version 3: a task row's key is one integer, ``(its run's seq << 32) + the task's number in the run``, so the table
# is its own index: a run's rows are one key range, appended in key order. The unique (run_id, task) index it
# replaces was about a third of the cost of recording a task (bench/state.py). Each run's ``seq`` is unique, one
# more than the highest before it.
# Task rows of a run that has no ``runs`` row (none are written so) get one, marked "unknown", rather than be lost.
_SCHEMA_V3 = f"""
INSERT INTO runs (run_id, name, kind, status, started_at)
    SELECT DISTINCT run_id, '(unknown)', 'unknown', 'interrupted', 0 FROM tasks
    WHERE run_id NOT IN (SELECT run_id FROM runs);
ALTER TABLE runs ADD COLUMN seq INTEGER;
UPDATE runs SET seq = rowid;
CREATE UNIQUE INDEX runs_by_seq ON runs (seq);
CREATE TABLE tasks_v3 (
    id INTEGER PRIMARY KEY,
{_TASK_COLUMNS}
);
INSERT INTO tasks_v3
    SELECT ((SELECT seq FROM runs WHERE runs.run_id = tasks.run_id) << {_RUN_SHIFT})
               + row_number() OVER (PARTITION BY run_id ORDER BY rowid),
           tasks.*
    FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_v3 RENAME TO tasks;
"""

#: schema version -> the statements that bring a file of the previous version to it
_MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3}


def _span(base: int) -> tuple[int, int]:
    return base, base + (1 << _RUN_SHIFT)


def _schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else 0


def _migrate_from(conn: sqlite3.Connection, version: int) -> None:
    """Bring a file of schema ``version`` to :data:`SCHEMA_VERSION`, one transaction per step: a migration
    interrupted half way leaves the file at the previous version. A step that fails because another process
    opening the same file took it first (the version was read before its write lock) is skipped."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        try:
            conn.executescript(
                "BEGIN IMMEDIATE;"
                + _MIGRATIONS[target]
                + f"INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', '{target}');"
                + "COMMIT;"
            )
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _schema_version(conn) >= target:
                continue
            raise


def _key_of(base: int, known: dict[str, int], task: str) -> int:
    """The key of ``task``'s row in the run whose keys start after ``base``: the one it has, else the next."""
    key = known.get(task)
    if key is None:
        key = known[task] = base + len(known) + 1
    return key


_RUN_COLUMNS = "run_id, name, kind, status, started_at, finished_at, resumed_from, recording_failed, summary"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


_SCALARS = (str, int, bool, type(None))


def _encode(value: Any) -> tuple[str | None, bool]:
    """``(json text, stored)``: a value that is not JSON-serialisable (or does not round-trip) is not stored."""
    if value is None:
        return "null", True
    if type(value) in _SCALARS:  # the common case: no round trip needed
        return json.dumps(value), True
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None, False
    try:
        if json.loads(text) != value:
            return None, False
    except (ValueError, RecursionError):  # pragma: no cover - dumps gave text loads cannot read
        return None, False
    return text, True


#: a ``tasks`` row, every column given
_INSERT_TASK = "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#: the common row, a task completed in this run without an error: eight values bound instead of twelve (binding is
#: much of an insert's cost); its value is stored when it has JSON text
_INSERT_COMPLETED = (
    "INSERT OR REPLACE INTO tasks VALUES (?1, ?2, ?3, 'completed', ?4, ?5, ?6, ?7, NULL, ?8, ?8 IS NOT NULL, 0)"
)
_INSERTS = {12: _INSERT_TASK, 8: _INSERT_COMPLETED}


#: a task's final row as ``StateStore.record_rows`` takes it: ``(task, status, fingerprint, attempts, started_at,
#: finished_at, error, value, carried_over)``
TaskRow = tuple[str, str, str | None, int, float | None, float | None, str | None, Any, bool]


def _task_row(
    key: int,
    run_id: str,
    task: str,
    status: str,
    fingerprint: str | None,
    attempts: int,
    started_at: float | None,
    finished_at: float | None,
    error: str | None,
    value: Any,
    carried_over: bool,
) -> tuple[Any, ...]:
    """A row of the ``tasks`` table: its twelve columns in order, or the eight of ``_INSERT_COMPLETED`` (the
    statement is told by the length). Only a completed task's value is stored."""
    if status != "completed":
        return (
            key,
            run_id,
            task,
            status,
            fingerprint,
            attempts,
            started_at,
            finished_at,
            error,
            None,
            0,
            int(carried_over),
        )
    text, stored = _encode(value)
    if error is None and not carried_over:
        return (key, run_id, task, fingerprint, attempts, started_at, finished_at, text)
    return (
        key,
        run_id,
        task,
        status,
        fingerprint,
        attempts,
        started_at,
        finished_at,
        error,
        text,
        int(stored),
        int(carried_over),
    )


class StateStore:
    """Runs and their tasks in a SQLite file (standard library ``sqlite3``, WAL mode), created on first use.

    Usage::

        store = StateStore(".orchestrate/state.db")
        wf = Workflow("etl", state=store)
        await wf.run()                 # recorded under a new run id
        await wf.run(resume=True)      # reruns only what did not complete in the last unfinished run
        store.list_runs()              # [RunInfo(...), ...]
    """

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_PATH) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[Any, ...]] = []
        self._pending_attempts: list[tuple[Any, ...]] = []
        #: why recording stopped, once a write failed (``None`` while all is well)
        self.failure: str | None = None
        #: told the failure message once, instead of the ``RuntimeWarning`` (a caller that flushes from a thread,
        #: where a warning cannot be caught safely, reports it itself)
        self.on_failure: Callable[[str], None] | None = None
        self._failed_runs: set[str] = set()
        #: run id -> the first key of its task rows, and the key of each task recorded in it
        self._keys: dict[str, tuple[int, dict[str, int]]] = {}

    def __repr__(self) -> str:
        return f"StateStore({str(self.path)!r})"

    # -- opening ------------------------------------------------------------------------------------------------
    def _fresh_hint(self) -> str:
        return f"move {str(self.path)!r} aside (or delete it) to start with fresh state"

    def connect(self) -> sqlite3.Connection:
        """The open connection; the first call creates the folder and the file, or checks and migrates them."""
        if self._conn is not None:
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create the state folder {str(self.path.parent)!r}: {exc}", path=str(self.path))
        try:
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the state file {str(self.path)!r}: {exc}", path=str(self.path)) from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StateError(
                f"{str(self.path)!r} is not a readable state database ({exc}); {self._fresh_hint()}",
                path=str(self.path),
            ) from None
        except StateError:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise StateError(
                f"{str(self.path)!r} is a SQLite database but not a pytest-orchestrator state file; "
                + self._fresh_hint(),
                path=str(self.path),
            )
        version = _schema_version(conn) if "meta" in tables else 0
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{str(self.path)!r} was written by a newer pytest-orchestrator (state schema {version}, this "
                f"version reads up to {SCHEMA_VERSION}); upgrade, or {self._fresh_hint()}",
                path=str(self.path),
                schema_version=version,
            )
        _migrate_from(conn, version)

    def close(self) -> None:
        """Commit what is buffered and close the file (a closed store reopens on next use)."""
        if self._conn is None:
            return
        self.flush()
        self._conn.close()
        self._conn = None

    def __enter__(self) -> StateStore:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- failure handling -------------------------------------------------------------------------------------------
    def _failed(self, run_id: str | None, exc: BaseException) -> None:
        """A write failed: say so once, stop recording, and mark the run (best effort) so it is not resumed."""
        if self.failure is None:
            self.failure = f"recording state in {str(self.path)!r} failed: {type(exc).__name__}: {exc}"
            if self.on_failure is not None:
                self.on_failure(self.failure)
            else:
                warnings.warn(f"{self.failure}; the run goes on without state", RuntimeWarning, stacklevel=3)
        self._pending.clear()
        self._pending_attempts.clear()
        if run_id is not None:
            self._failed_runs.add(run_id)
            try:
                conn = self._conn
                if conn is not None:
                    conn.execute("UPDATE runs SET recording_failed=? WHERE run_id=?", (self.failure, run_id))
            except (sqlite3.Error, OSError):
                pass

    @property
    def recording(self) -> bool:
        """Whether writes still go through (false once one failed)."""
        return self.failure is None

    # -- runs ---------------------------------------------------------------------------------------------------
    def open_run(
        self, workflow: Workflow, resume: bool | str = False, *, run_id: str | None = None, kind: str = "workflow"
    ) -> StoreRecorder:
        """Begin a recorded run of ``workflow`` (the engine's ``RunRecorder``) under ``run_id`` (default: a new
        id); ``resume`` carries over what the resumed run completed (``True``: the last unfinished run of its name;
        a string: that run id)."""
        from pytest_orchestrator.state.recorder import StoreRecorder

        return StoreRecorder(self, workflow, resume, kind=kind, run_id=run_id)

    def first_run(self, run_id: str) -> str:
        """The run that ``run_id`` resumed, and that one resumed, ...: the first run of the chain."""
        seen = {run_id}
        while True:
            row = self.connect().execute("SELECT resumed_from FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row is None or row[0] is None or row[0] in seen:
                return run_id
            run_id = row[0]
            seen.add(run_id)

    def begin_run(
        self,
        name: str,
        *,
        kind: str = "workflow",
        resumed_from: str | None = None,
        run_id: str | None = None,
        carried: Mapping[str, StoredTask] | None = None,
    ) -> str:
        """Record a new run of ``name`` and take its lock; returns the run id.

        ``carried`` (the tasks a resumed run carries over) are copied into the new run in the same transaction, so
        a run killed at any point still holds every completion it started with.

        Raises ``ConcurrencyError`` naming the holder when another live process runs ``name`` on this store. A
        holder whose process is gone (on this host) is taken over with a ``RuntimeWarning``.
        """
        conn = self.connect()
        run_id = run_id or uuid.uuid4().hex[:12]
        now = time.time()
        pid, host = os.getpid(), socket.gethostname()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT run_id, pid, host, started_at FROM locks WHERE name=?", (name,)).fetchone()
            if row is not None:
                held_run, held_pid, held_host, held_since = row
                gone = held_host == host and (held_pid != pid and not _pid_alive(held_pid))
                if not gone:
                    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(held_since))
                    raise ConcurrencyError(
                        f"{name!r} is already running on {str(self.path)!r}: run {held_run} held by pid "
                        f"{held_pid} on {held_host} since {started}",
                        name=name,
                        holder_pid=held_pid,
                        holder_host=held_host,
                        holder_started_at=held_since,
                        holder_run_id=held_run,
                    )
                warnings.warn(
                    f"state lock of {name!r} was held by pid {held_pid} on {held_host}, which is gone; taking it "
                    f"over (its run {held_run} stays resumable)",
                    RuntimeWarning,
                    stacklevel=2,
                )
                conn.execute("UPDATE runs SET status='interrupted' WHERE run_id=? AND status='running'", (held_run,))
            conn.execute(
                "INSERT OR REPLACE INTO locks (name, run_id, pid, host, started_at) VALUES (?, ?, ?, ?, ?)",
                (name, run_id, pid, host, now),
            )
            conn.execute(
                "INSERT INTO runs (run_id, name, kind, status, started_at, resumed_from, pid, host, seq) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM runs))",
                (run_id, name, kind, now, resumed_from, pid, host),
            )
            (seq,) = conn.execute("SELECT seq FROM runs WHERE run_id=?", (run_id,)).fetchone()
            keys: dict[str, int] = {}
            base = seq << _RUN_SHIFT
            if carried:
                conn.executemany(
                    "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    [
                        (
                            _key_of(base, keys, t.task),
                            run_id,
                            t.task,
                            t.status,
                            t.fingerprint,
                            t.attempts,
                            t.started_at,
                            t.finished_at,
                            t.error,
                            _encode(t.value)[0],
                            int(t.value_stored),
                        )
                        for t in carried.values()
                    ],
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._keys[run_id] = (base, keys)
        return run_id

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any] | None = None) -> None:
        """Commit what is buffered, record the run's final ``status`` (and summary), and release its lock."""
        self.flush(run_id)
        if not self.recording:
            self._release(run_id)
            return
        try:
            conn = self.connect()
            text = json.dumps(summary, default=str) if summary is not None else None
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE runs SET status=?, finished_at=?, summary=? WHERE run_id=?",
                (status, time.time(), text, run_id),
            )
            conn.execute("DELETE FROM locks WHERE run_id=?", (run_id,))
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            self._rollback()
            self._failed(run_id, exc)
            self._release(run_id)

    def _release(self, run_id: str) -> None:
        try:
            if self._conn is not None:
                self._conn.execute("DELETE FROM locks WHERE run_id=?", (run_id,))
        except (sqlite3.Error, OSError):
            pass

    def _rollback(self) -> None:
        try:
            if self._conn is not None and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except (sqlite3.Error, OSError):
            pass

    # -- tasks --------------------------------------------------------------------------------------------------
    def record_attempt(
        self,
        run_id: str,
        task: str,
        attempt: int,
        outcome: str,
        *,
        started_at: float | None = None,
        finished_at: float | None = None,
        error: str | None = None,
    ) -> None:
        """Buffer one attempt's row (committed with the next ``flush``)."""
        if self.recording:
            self._pending_attempts.append((run_id, task, attempt, outcome, started_at, finished_at, error))

    def record_task(
        self,
        run_id: str,
        task: str,
        status: str,
        *,
        fingerprint: str | None = None,
        attempts: int = 0,
        started_at: float | None = None,
        finished_at: float | None = None,
        error: str | None = None,
        value: Any = None,
        carried_over: bool = False,
        commit: bool = False,
    ) -> None:
        """Buffer a task's final row; ``commit=True`` commits it (and everything buffered) at once.

        A value that is not JSON-serialisable is recorded as not stored: the task reruns on resume.
        """
        self.record_rows(
            run_id, ((task, status, fingerprint, attempts, started_at, finished_at, error, value, carried_over),)
        )
        if commit:
            self.flush(run_id)

    def record_results(
        self, run_id: str, finished: Iterable[tuple[str, TaskResult]], fingerprints: Mapping[str, str | None]
    ) -> None:
        """Buffer the final rows of finished workflow tasks (``record_task`` for each, in one go)."""
        self.record_rows(
            run_id,
            (
                (
                    name,
                    result.status,  # a StrEnum: the plain string binds
                    fingerprints.get(name),
                    result.attempts,
                    result.started_at,
                    result.finished_at,
                    result.error or result.reason,
                    result.value,
                    False,
                )
                for name, result in finished
            ),
        )

    def record_rows(self, run_id: str, rows: Iterable[TaskRow]) -> None:
        """Buffer the final rows of tasks of ``run_id``, each ``(task, status, fingerprint, attempts, started_at,
        finished_at, error, value, carried_over)`` (``record_task``'s arguments, in order)."""
        if not self.recording:
            return
        keys = self._task_keys(run_id)
        if keys is None:
            return
        base, known = keys
        self._pending.extend(_task_row(_key_of(base, known, row[0]), run_id, *row) for row in rows)

    def _task_keys(self, run_id: str) -> tuple[int, dict[str, int]] | None:
        """The first task key of ``run_id`` and its tasks' keys (read once, for a run another store began)."""
        keys = self._keys.get(run_id)
        if keys is not None:
            return keys
        try:
            base = self._run_base(run_id)
            if base is None:
                raise StateError(f"no run {run_id!r} in {str(self.path)!r}", run_id=run_id, path=str(self.path))
            rows = self.connect().execute("SELECT task, id FROM tasks WHERE id > ? AND id < ?", _span(base))
            known = dict(rows.fetchall())
        except (sqlite3.Error, OSError) as exc:
            self._failed(run_id, exc)
            return None
        keys = self._keys[run_id] = (base, known)
        return keys

    @property
    def dirty(self) -> bool:
        """Whether rows are buffered and not yet committed."""
        return bool(self._pending or self._pending_attempts)

    def flush(self, run_id: str | None = None) -> None:
        """Commit every buffered row in one transaction (a failure is reported once; the run goes on)."""
        if not (self._pending or self._pending_attempts) or not self.recording:
            return
        tasks, attempts = self._pending, self._pending_attempts
        self._pending, self._pending_attempts = [], []
        try:
            conn = self.connect()
            conn.execute("BEGIN")
            if attempts:
                conn.executemany("INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?)", attempts)
            if tasks:
                # rows of one shape in a row share a statement; the rows keep their order
                for size, rows in itertools.groupby(tasks, len):
                    conn.executemany(_INSERTS[size], rows)
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            self._rollback()
            # the run id: a task row's second value (its key is the first), an attempt row's first
            self._failed(run_id or (tasks[0][1] if tasks else attempts[0][0]), exc)

    # -- reading ------------------------------------------------------------------------------------------------
    def _run_row(self, run_id: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = (
            self.connect()
            .execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id=?",
                (run_id,),
            )
            .fetchone()
        )
        return row

    def _run_base(self, run_id: str) -> int | None:
        """The key after which ``run_id``'s task rows lie; ``None`` for an unknown run."""
        keys = self._keys.get(run_id)
        if keys is not None:
            return keys[0]
        row = self.connect().execute("SELECT seq FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return row[0] << _RUN_SHIFT if row is not None else None

    def _run_span(self, run_id: str) -> tuple[int, int]:
        """The bounds (exclusive) of the keys of ``run_id``'s task rows; an empty span for an unknown run."""
        base = self._run_base(run_id)
        return _span(base) if base is not None else (0, 0)

    def _counts(self, run_id: str) -> dict[str, int]:
        rows = self.connect().execute(
            "SELECT status, COUNT(*) FROM tasks WHERE id > ? AND id < ? GROUP BY status", self._run_span(run_id)
        )
        return {status: count for status, count in rows}

    def _info(self, row: tuple[Any, ...], *, with_summary: bool = False) -> RunInfo:
        from pytest_orchestrator.state.records import RunInfo

        run_id, name, kind, status, started, finished, resumed_from, failed, summary = row
        return RunInfo(
            run_id=run_id,
            name=name,
            kind=kind,
            status=status,
            started_at=started,
            finished_at=finished,
            resumed_from=resumed_from,
            recording_failed=failed,
            counts=self._counts(run_id),
            summary=json.loads(summary) if (with_summary and summary) else None,
        )

    def get_run(self, run_id: str) -> RunInfo:
        """One run, with its summary; ``StateError`` naming close ids when there is no such run."""
        row = self._run_row(run_id)
        if row is None:
            known = [r.run_id for r in self.list_runs(limit=50)]
            close = [k for k in known if k.startswith(run_id[:4])][:3]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise StateError(f"no run {run_id!r} in {str(self.path)!r}{hint}", run_id=run_id, path=str(self.path))
        return self._info(row, with_summary=True)

    def list_runs(self, *, name: str | None = None, limit: int = 20) -> list[RunInfo]:
        """The most recent runs first (of ``name`` only, if given)."""
        query = f"SELECT {_RUN_COLUMNS} FROM runs"
        params: tuple[Any, ...] = ()
        if name is not None:
            query += " WHERE name=?"
            params = (name,)
        query += " ORDER BY started_at DESC, seq DESC LIMIT ?"
        return [self._info(row) for row in self.connect().execute(query, (*params, limit)).fetchall()]

    def last_unfinished_run(self, name: str) -> str | None:
        """The id of the most recent run of ``name`` that did not complete, or ``None``."""
        for info in self.list_runs(name=name, limit=1):
            return info.run_id if info.status != "completed" else None
        return None

    def tasks(self, run_id: str) -> dict[str, StoredTask]:
        from pytest_orchestrator.state.records import StoredTask

        """Every task recorded for ``run_id``, by name (in name order)."""
        rows = self.connect().execute(
            "SELECT task, status, fingerprint, attempts, started_at, finished_at, error, value, value_stored, "
            "carried_over FROM tasks WHERE id > ? AND id < ? ORDER BY task",
            self._run_span(run_id),
        )
        out = {}
        for task, status, fp, attempts, started, finished, error, value, stored, carried in rows:
            out[task] = StoredTask(
                task=task,
                status=status,
                fingerprint=fp,
                attempts=attempts,
                started_at=started,
                finished_at=finished,
                error=error,
                value=json.loads(value) if stored else None,
                value_stored=bool(stored),
                carried_over=bool(carried),
            )
        return out

    def attempts(self, run_id: str, task: str | None = None) -> list[dict[str, Any]]:
        """The attempts recorded for ``run_id`` (of one ``task``), in order: the failed attempts that were retried
        (their own rows) and each task's final attempt (its task row)."""
        one = " AND task=?" if task is not None else ""
        only = (task,) if task is not None else ()
        rows = self.connect().execute(
            f"SELECT task, attempt, outcome, started_at, finished_at, error FROM attempts WHERE run_id=?{one} "
            f"UNION ALL SELECT task, attempts, status, started_at, finished_at, error FROM tasks "
            f"WHERE id > ? AND id < ?{one} AND attempts > 0 AND carried_over = 0 ORDER BY 1, 2",
            (run_id, *only, *self._run_span(run_id), *only),
        )
        keys = ("task", "attempt", "outcome", "started_at", "finished_at", "error")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def resumable(self, name: str, resume: bool | str) -> tuple[str | None, str]:
        """Which run ``resume`` (``True``: the last unfinished one of ``name``; a string: that run id) points to.

        Returns ``(run_id or None, why)``; ``why`` says in words what happens ("nothing to resume: ..."). Raises
        ``StateError`` for an unknown id, a run of another name, or a run whose recording failed.
        """
        if resume is True:
            run_id = self.last_unfinished_run(name)
            if run_id is None:
                last = self.list_runs(name=name, limit=1)
                why = (
                    f"nothing to resume: the last run of {name!r} ({last[0].run_id}) completed"
                    if last
                    else f"nothing to resume: no earlier run of {name!r} in {str(self.path)!r}"
                )
                return None, why + "; running from the start"
        else:
            run_id = str(resume)
        info = self.get_run(run_id)
        if info.name != name:
            raise StateError(f"run {run_id} is a run of {info.name!r}, not of {name!r}", run_id=run_id)
        if info.recording_failed:
            raise StateError(
                f"cannot resume from run {run_id}: its recording failed ({info.recording_failed}), so what it "
                "finished is not known; run from the start",
                run_id=run_id,
            )
        return run_id, f"resuming run {run_id} of {name!r}"
