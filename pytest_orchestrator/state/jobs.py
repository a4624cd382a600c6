"""``JobTable``: the scheduler's jobs and their runs in the state file (the ``jobs`` and ``job_runs`` tables).

The rows are plain data (``StoredJob``): what a job runs (an import path or a file path), its trigger and options as
JSON, its counters and its last and next fire times as ISO-8601 text. Turning them back into jobs is the
scheduler's business (``schedule/persist.py``); this module only reads and writes them.

The table has its own connection to the file (WAL mode lets it write beside the runs a workflow records), used under
a lock, one statement per write. As with the run tables, the store is never the reason a job fails: once a write
fails, it is reported once (a ``RuntimeWarning`` and ``.failure``) and nothing more is written.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import json
import sqlite3
import threading
import time
from typing import Any
import warnings

from pytest_orchestrator.errors import StateError
from pytest_orchestrator.state.store import StateStore


__all__ = ["JobTable", "StoredJob", "StoredJobRun"]

_JOB_COLUMNS = (
    "job_id, name, target, target_kind, trigger, options, status, runs, failures, skipped, last_error, "
    "last_fire_time, next_fire_time"
)
_RUN_COLUMNS = "job_id, due, status, started, finished, duration, lag, error, reason"


@dataclasses.dataclass(frozen=True)
class StoredJob:
    """A job as the state file holds it."""

    job_id: str
    name: str
    #: ``"package.module:function"`` (``target_kind="import"``) or a file or folder path (``"path"``)
    target: str
    target_kind: str
    trigger: dict[str, Any]
    options: dict[str, Any]
    status: str
    runs: int = 0
    failures: int = 0
    skipped: int = 0
    last_error: str | None = None
    last_fire_time: str | None = None
    next_fire_time: str | None = None


@dataclasses.dataclass(frozen=True)
class StoredJobRun:
    """One run of a job (or a fire time that did not run: ``status="skipped"`` with a ``reason``)."""

    job_id: str
    due: str
    status: str
    started: str | None = None
    finished: str | None = None
    duration: float = 0.0
    lag: float = 0.0
    error: str | None = None
    reason: str | None = None


class JobTable:
    """Reads and writes the ``jobs`` and ``job_runs`` tables of ``store``'s file (migrated to them if need be).

    Usage::

        table = JobTable(StateStore(".orchestrate/state.db"))
        table.save(StoredJob("job-1", "nightly", "etl.jobs:nightly", "import", {"kind": "cron", ...}, {}, "scheduled"))
        table.load()            # [StoredJob(...)]
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        #: why writing stopped, once a write failed (``None`` while all is well)
        self.failure: str | None = None

    def __repr__(self) -> str:
        return f"JobTable({str(self.store.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.store.connect()  # creates the file or migrates it; a bad file is a StateError here
            try:
                conn = sqlite3.connect(self.store.path, timeout=10.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StateError(
                    f"cannot open the state file {str(self.store.path)!r}: {exc}", path=str(self.store.path)
                ) from None
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close this table's connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _write(self, sql: str, params: Sequence[Any]) -> None:
        if self.failure is not None:
            return
        with self._lock:
            try:
                self._connect().execute(sql, tuple(params))
            except (sqlite3.Error, OSError) as exc:
                self.failure = f"recording jobs in {str(self.store.path)!r} failed: {type(exc).__name__}: {exc}"
                warnings.warn(f"{self.failure}; the scheduler goes on without state", RuntimeWarning, stacklevel=3)

    # -- writing ----------------------------------------------------------------------------------------------------
    def save(self, job: StoredJob) -> None:
        """Insert or update ``job`` (its creation time is kept)."""
        now = time.time()
        self._write(
            f"INSERT INTO jobs ({_JOB_COLUMNS}, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET name=excluded.name, target=excluded.target, "
            "target_kind=excluded.target_kind, trigger=excluded.trigger, options=excluded.options, "
            "status=excluded.status, runs=excluded.runs, failures=excluded.failures, skipped=excluded.skipped, "
            "last_error=excluded.last_error, last_fire_time=excluded.last_fire_time, "
            "next_fire_time=excluded.next_fire_time, updated_at=excluded.updated_at",
            (
                job.job_id,
                job.name,
                job.target,
                job.target_kind,
                json.dumps(job.trigger, sort_keys=True),
                json.dumps(job.options, sort_keys=True),
                job.status,
                job.runs,
                job.failures,
                job.skipped,
                job.last_error,
                job.last_fire_time,
                job.next_fire_time,
                now,
                now,
            ),
        )

    def add_run(self, run: StoredJobRun) -> None:
        """Record one run of a job."""
        self._write(
            f"INSERT INTO job_runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            dataclasses.astuple(run),
        )

    def delete(self, job_id: str) -> None:
        """Forget a job and its runs."""
        self._write("DELETE FROM job_runs WHERE job_id=?", (job_id,))
        self._write("DELETE FROM jobs WHERE job_id=?", (job_id,))

    # -- reading ----------------------------------------------------------------------------------------------------
    def load(self) -> list[StoredJob]:
        """Every stored job, in the order they were first saved."""
        with self._lock:
            rows = self._connect().execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY created_at, rowid").fetchall()
        out = []
        for row in rows:
            fields = list(row)
            fields[4] = json.loads(fields[4])
            fields[5] = json.loads(fields[5])
            out.append(StoredJob(*fields))
        return out

    def runs(self, job_id: str, *, limit: int = 100) -> list[StoredJobRun]:
        """The last ``limit`` runs of ``job_id``, oldest first."""
        with self._lock:
            rows = (
                self._connect()
                .execute(
                    f"SELECT {_RUN_COLUMNS} FROM job_runs WHERE job_id=? ORDER BY rowid DESC LIMIT ?", (job_id, limit)
                )
                .fetchall()
            )
        return [StoredJobRun(*row) for row in reversed(rows)]
