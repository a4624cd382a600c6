"""``Scheduler``: runs jobs when their triggers say, in a background thread (``start()``) or in asyncio (``serve()``).

The loop, in outline::

    _main()     anchor intervals at the start, start the event sources' listeners, then until stop():
                    fire every job that is due, sleep until the earliest next fire time (or until woken by
                    schedule/cancel/run_now/stop): no polling at a fixed period, so sub-second intervals are kept
    _fire()     a run starts unless one is still going: ``overlap`` says skip, queue or allow
    _run()      waits for a worker slot (``max_workers``), runs the target, records the run (a raised exception
                fails that run and is kept as ``last_error``), then starts a queued run if any

A fire time seen more than ``misfire_grace`` seconds late (the machine slept, the loop was blocked, the scheduler
was stopped) is a misfire: ``misfire="run_once"`` runs the job once to catch up, ``"skip"`` drops the missed fire
times. Either way the job then waits for its next fire time after now. Public methods are safe to call from any
thread.

With a state store (``Scheduler(state=StateStore(...))``) every job is written to the state file when it is
scheduled and whenever its status, counters or fire times change, and each run is recorded. A new scheduler on the
same file restores the jobs (``schedule/persist.py`` says how targets and triggers are stored): one whose target no
longer imports is listed as ``broken`` with the reason in ``last_error`` (and a warning), never dropped silently. A
job scheduled again under the name of a restored job takes its place (same id, counters and, for the same trigger,
the same next fire time), so a program that schedules its jobs at each start does not duplicate them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import concurrent.futures
import dataclasses
import datetime as dt
import itertools
import logging
import os
import threading
from types import TracebackType
from typing import Any
import warnings
import weakref

from pytest_orchestrator.core.graph import close_matches
from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.errors import ConcurrencyError
from pytest_orchestrator.schedule.clock import Clock
from pytest_orchestrator.schedule.clock import SystemClock
from pytest_orchestrator.schedule.jobs import MISFIRE_POLICIES
from pytest_orchestrator.schedule.jobs import OVERLAP_POLICIES
from pytest_orchestrator.schedule.jobs import Job
from pytest_orchestrator.schedule.jobs import JobFinished
from pytest_orchestrator.schedule.jobs import JobSkipped
from pytest_orchestrator.schedule.jobs import JobStarted
from pytest_orchestrator.schedule.jobs import JobStatus
from pytest_orchestrator.schedule.jobs import RunRecord
from pytest_orchestrator.schedule.persist import check_json
from pytest_orchestrator.schedule.persist import from_iso
from pytest_orchestrator.schedule.persist import import_target
from pytest_orchestrator.schedule.persist import iso
from pytest_orchestrator.schedule.persist import target_ref
from pytest_orchestrator.schedule.persist import trigger_from_spec
from pytest_orchestrator.schedule.persist import trigger_spec
from pytest_orchestrator.schedule.targets import NO_PAYLOAD
from pytest_orchestrator.schedule.targets import RunContext
from pytest_orchestrator.schedule.targets import Runner
from pytest_orchestrator.schedule.targets import describe
from pytest_orchestrator.schedule.targets import make_runner
from pytest_orchestrator.schedule.triggers import EventSource
from pytest_orchestrator.schedule.triggers import IntervalTrigger
from pytest_orchestrator.schedule.triggers import resolve_zone
from pytest_orchestrator.state.jobs import JobTable
from pytest_orchestrator.state.jobs import StoredJob
from pytest_orchestrator.state.jobs import StoredJobRun
from pytest_orchestrator.state.store import StateStore


__all__ = ["Scheduler", "last_started"]

log = logging.getLogger("pytest_orchestrator")

#: lags remembered for the metrics
LAG_WINDOW = 1000
_last_started: weakref.ref[Scheduler] | None = None


def last_started() -> Scheduler | None:
    """The scheduler started most recently in this process, if it still exists."""
    return _last_started() if _last_started is not None else None


def _local_zone() -> dt.tzinfo:
    try:
        from dateutil.tz import tzlocal  # croniter's own dependency: DST-aware local time
    except ImportError:  # pragma: no cover - croniter always brings it
        zone = dt.datetime.now().astimezone().tzinfo
        assert zone is not None
        return zone
    local: dt.tzinfo = tzlocal()
    return local


class _Entry:
    """A job and the scheduler's private bookkeeping for it."""

    __slots__ = (
        "fires",
        "job",
        "listener",
        "queued",
        "ref",
        "restored",
        "restored_next",
        "run_now",
        "runner",
        "stored",
        "tasks",
        "trigger",
    )

    def __init__(self, job: Job, runner: Runner | None, ref: tuple[str, str] | None = None) -> None:
        self.job = job
        self.runner = runner
        self.trigger: Any = job.trigger
        self.fires = 0
        self.queued: list[tuple[dt.datetime, Any]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.listener: asyncio.Task[None] | None = None
        self.run_now = False
        #: (kind, reference) the target is stored under (a scheduler with state)
        self.ref = ref
        #: restored from the state file and not scheduled again (yet) in this process
        self.restored = False
        #: the next fire time read from the state file, used when the scheduler starts
        self.restored_next: dt.datetime | None = None
        #: the row of a broken job, written back as it was (only its status changes)
        self.stored: StoredJob | None = None


class Scheduler:
    """Runs functions, workflows, pipelines and script folders on cron, interval, one-off and event triggers.

    Usage::

        with Scheduler(max_workers=4) as scheduler:
            job_id = scheduler.schedule(nightly_etl, cron("0 2 * * *"), name="etl")
            scheduler.schedule("ci/pipeline.yaml", every(minutes=30), overlap="queue")
            ...
        # or, in asyncio: task = asyncio.create_task(scheduler.serve()); ...; scheduler.stop()

    ``tz`` is the zone in which triggers without their own zone are read (default: the local zone). ``clock`` is
    injectable (``schedule.clock``). ``state`` (a ``StateStore``, or the path of its file) keeps the jobs across
    restarts: see the module's docstring.
    """

    def __init__(
        self,
        max_workers: int = 4,
        state: StateStore | str | os.PathLike[str] | None = None,
        tz: dt.tzinfo | str | None = None,
        clock: Clock | None = None,
        *,
        misfire_grace: float = 1.0,
    ) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ConcurrencyError(f"max_workers must be a positive integer, got {max_workers!r}")
        if isinstance(state, str | os.PathLike):
            state = StateStore(state)
        if state is not None and not isinstance(state, StateStore):
            raise TypeError(f"state must be a StateStore, a path or None, got {type(state).__name__}")
        if isinstance(misfire_grace, bool) or not isinstance(misfire_grace, int | float) or not misfire_grace >= 0:
            raise ValueError(f"misfire_grace must be a non-negative number of seconds, got {misfire_grace!r}")
        self.max_workers = max_workers
        self.tz = resolve_zone(tz) or _local_zone()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.misfire_grace = float(misfire_grace)
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._listeners: list[Callable[[Any], Any]] = []
        self._workflow_hooks: list[Callable[[Workflow], Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wake: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._done.set()
        self._stopping = False
        self._stop_wait = True
        self._stop_grace: float | None = None
        self._running = False
        self.started_at: dt.datetime | None = None
        self.total_runs = 0
        self.total_failures = 0
        self.total_skipped = 0
        self._lags: list[float] = []
        #: the state store's job table, when the scheduler has one
        self.state = state
        self._table = JobTable(state) if state is not None else None
        if self._table is not None:
            self._restore(self._table)

    # -- jobs -------------------------------------------------------------------------------------------------
    def schedule(
        self,
        target: Any,
        trigger: Any,
        *,
        name: str | None = None,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        max_runs: int | None = None,
        misfire: str = "run_once",
        overlap: str = "skip",
    ) -> str:
        """Add a job; return its id. Bad arguments raise ``TypeError``/``ValueError`` here, not at the first fire."""
        runner = make_runner(target)
        if not callable(getattr(trigger, "next_fire_time", None)):
            raise TypeError(
                "trigger must have next_fire_time(after) (cron(...), every(...), at(...), OnceTrigger, FileTrigger, "
                f"EventTrigger), got {type(trigger).__name__}"
            )
        _choice(misfire, MISFIRE_POLICIES, "misfire")
        _choice(overlap, OVERLAP_POLICIES, "overlap")
        if max_runs is not None and (isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1):
            raise ValueError(f"max_runs must be a positive integer or None, got {max_runs!r}")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise TypeError(f"kwargs must be a dict, got {type(kwargs).__name__}")
        ref: tuple[str, str] | None = None
        if self._table is not None:  # everything the state file needs is checked now, not at the first save
            ref = target_ref(target)
            spec = trigger_spec(trigger)
            check_json(list(args), "args")
            check_json(dict(kwargs or {}), "kwargs")
        with self._lock:
            name = name or describe(target)
            previous = self._adoptable(name) if self._table is not None else None
            job_id = previous.job.id if previous is not None else self._new_id()
            job = Job(
                id=job_id,
                name=name,
                trigger=trigger,
                target=describe(target),
                args=tuple(args),
                kwargs=dict(kwargs or {}),
                max_runs=max_runs,
                misfire=misfire,
                overlap=overlap,
            )
            entry = _Entry(job, runner, ref)
            if previous is not None:
                self._take_over(entry, previous, spec)
            self._entries[job_id] = entry
            if self._running:
                self._call_in_loop(self._activate, entry, self.clock.now())
            else:
                self._arm(entry, self.clock.now())
            self._persist(entry)
        return job_id

    def _new_id(self) -> str:
        while True:
            job_id = f"job-{next(self._ids)}"
            if job_id not in self._entries:
                return job_id

    def _adoptable(self, name: str) -> _Entry | None:
        """The restored job of that name not scheduled again yet, if any."""
        for entry in self._entries.values():
            if entry.restored and entry.job.name == name:
                return entry
        return None

    def _take_over(self, entry: _Entry, previous: _Entry, spec: dict[str, Any]) -> None:
        """``entry`` replaces the restored job ``previous``: its id, counters, history and (same trigger) timing."""
        old, job = previous.job, entry.job
        for field in ("runs", "failures", "skipped", "last_error", "last_fire_time"):
            setattr(job, field, getattr(old, field))
        job.history.extend(old.history)
        entry.fires = previous.fires
        if previous.stored is not None and _same_trigger(spec, previous.stored.trigger):
            entry.trigger = previous.trigger  # an interval keeps its anchor: the cadence goes on
            entry.restored_next = previous.restored_next
            if old.status is JobStatus.FINISHED:
                job.status = JobStatus.FINISHED
        previous.restored = False

    def cancel(self, job_id: str) -> bool:
        """Cancel a job: no more fires; its running runs are cancelled (a sync function's thread is abandoned).

        Returns False if the job was already finished or cancelled. Never waits, never blocks other jobs.
        """
        with self._lock:
            entry = self._entry(job_id)
            if entry.job.status in (JobStatus.CANCELLED, JobStatus.FINISHED):
                return False
            entry.job.status = JobStatus.CANCELLED
            entry.job.next_fire_time = None
            entry.restored = False
            entry.queued.clear()
            if self._running:
                self._call_in_loop(self._stop_entry, entry)
            self._persist(entry)
        return True

    def remove(self, job_id: str) -> None:
        """Cancel a job and forget it (and, with a state store, delete it and its runs from the file)."""
        self.cancel(job_id)
        with self._lock:
            del self._entries[job_id]
            if self._table is not None:
                self._table.delete(job_id)

    def run_now(self, job_id: str) -> None:
        """Fire the job now (its overlap policy applies); its schedule is unchanged."""
        with self._lock:
            entry = self._entry(job_id)
            if entry.job.status in (JobStatus.CANCELLED, JobStatus.BROKEN):
                raise ValueError(f"job {job_id!r} is {entry.job.status}" + _why(entry.job))
            if not self._running:  # fires as soon as the scheduler starts
                entry.run_now = True
                entry.job.next_fire_time = self.clock.now()
                return
            self._call_in_loop(lambda: self._fire(entry, self.clock.now(), NO_PAYLOAD))

    def get_job(self, job_id: str) -> Job:
        """The live ``Job`` (``name``, ``status``, ``runs``, ``failures``, ``last_error``, ``next_fire_time``, ...)."""
        with self._lock:
            return self._entry(job_id).job

    def list_jobs(self, status: JobStatus | str | None = None) -> list[Job]:
        """All jobs in the order they were scheduled, or those in ``status``."""
        if status is not None:
            status = JobStatus(_choice(str(status), tuple(JobStatus), "status"))
        with self._lock:
            return [e.job for e in self._entries.values() if status is None or e.job.status is status]

    # -- state -------------------------------------------------------------------------------------------------------
    def _restore(self, table: JobTable) -> None:
        """Bring back the jobs of the state file (a target that no longer imports: a ``broken`` job, and a warning)."""
        highest = 0
        for row in table.load():
            number = row.job_id.removeprefix("job-")
            highest = max(highest, int(number) if number.isdigit() else 0)
            entry = self._restored_entry(row)
            entry.restored = True
            entry.stored = row
            for run in table.runs(row.job_id, limit=entry.job.history.maxlen or 100):
                entry.job.history.append(
                    RunRecord(
                        run.job_id,
                        from_iso(run.due) or dt.datetime.min.replace(tzinfo=dt.UTC),
                        TaskStatus(run.status),
                        from_iso(run.started),
                        from_iso(run.finished),
                        run.duration,
                        run.lag,
                        run.error,
                        run.reason,
                    )
                )
            self._entries[row.job_id] = entry
            if entry.job.status is JobStatus.BROKEN:
                warnings.warn(
                    f"scheduled job {row.name!r} ({row.job_id}) in {str(table.store.path)!r} cannot run: "
                    f"{entry.job.last_error}; it is listed with status 'broken' until it is scheduled again or "
                    "removed (Scheduler.remove)",
                    RuntimeWarning,
                    stacklevel=3,
                )
        self._ids = itertools.count(highest + 1)

    def _restored_entry(self, row: StoredJob) -> _Entry:
        options = row.options
        status = JobStatus.SCHEDULED if row.status in ("running", "broken") else JobStatus(row.status)
        error = row.last_error
        runner: Runner | None = None
        trigger: Any = None
        try:
            trigger = trigger_from_spec(row.trigger)
            target = import_target(row.target) if row.target_kind == "import" else row.target
            runner = make_runner(target)
        except Exception as exc:
            what = f"target {row.target!r}" if trigger is not None else "trigger"
            error = f"cannot restore the {what}: {type(exc).__name__}: {exc}"
            status = JobStatus.BROKEN
        job = Job(
            id=row.job_id,
            name=row.name,
            trigger=trigger,
            target=row.target,
            args=tuple(options.get("args", ())),
            kwargs=dict(options.get("kwargs", {})),
            max_runs=options.get("max_runs"),
            misfire=options.get("misfire", "run_once"),
            overlap=options.get("overlap", "skip"),
            status=status,
            runs=row.runs,
            failures=row.failures,
            skipped=row.skipped,
            last_error=error,
            last_fire_time=from_iso(row.last_fire_time),
            next_fire_time=from_iso(row.next_fire_time) if status is JobStatus.SCHEDULED else None,
        )
        entry = _Entry(job, runner, (row.target_kind, row.target))
        entry.fires = row.runs
        entry.restored_next = job.next_fire_time
        return entry

    def _persist(self, entry: _Entry, record: RunRecord | None = None) -> None:
        """Write the job (and one of its runs) to the state file, if the scheduler has one."""
        table = self._table
        if table is None or entry.ref is None:
            return
        job = entry.job
        if entry.runner is None and entry.stored is not None:  # broken: its row is kept as it was, but its status
            status = entry.stored.status if job.status is JobStatus.BROKEN else job.status.value
            table.save(dataclasses.replace(entry.stored, status=status))
        else:
            table.save(self._row(entry))
        if record is not None:
            table.add_run(
                StoredJobRun(
                    job.id,
                    iso(record.due) or "",
                    record.status.value,
                    iso(record.started),
                    iso(record.finished),
                    record.duration,
                    record.lag,
                    record.error,
                    record.reason,
                )
            )

    def _row(self, entry: _Entry) -> StoredJob:
        job = entry.job
        assert entry.ref is not None
        return StoredJob(
            job_id=job.id,
            name=job.name,
            target=entry.ref[1],
            target_kind=entry.ref[0],
            trigger=trigger_spec(entry.trigger),
            options={
                "args": list(job.args),
                "kwargs": job.kwargs,
                "max_runs": job.max_runs,
                "misfire": job.misfire,
                "overlap": job.overlap,
            },
            status=job.status.value,
            runs=job.runs,
            failures=job.failures,
            skipped=job.skipped,
            last_error=job.last_error,
            last_fire_time=iso(job.last_fire_time),
            next_fire_time=iso(job.next_fire_time if job.next_fire_time is not None else entry.restored_next),
        )

    def _entry(self, job_id: str) -> _Entry:
        entry = self._entries.get(job_id)
        if entry is None:
            hints = close_matches(str(job_id), self._entries)
            raise KeyError(f"no job {job_id!r}" + (f"; did you mean {hints[0]!r}?" if hints else ""))
        return entry

    # -- listeners ----------------------------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[Any], Any]) -> None:
        """Subscribe ``listener(event)`` to job events (``schedule.jobs``) and the engine events of job workflows."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Any], Any]) -> None:
        self._listeners.remove(listener)

    def add_workflow_hook(self, hook: Callable[[Workflow], Any]) -> None:
        """Call ``hook(workflow)`` before each workflow a job runs (e.g. ``MetricsCollector.attach``)."""
        self._workflow_hooks.append(hook)

    def _emit(self, event: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("scheduler listener %r raised on %s; ignored", listener, type(event).__name__)

    def _on_workflow(self, wf: Workflow) -> None:
        for listener in self._listeners:
            if listener not in wf.listeners:
                wf.add_listener(listener)
        for hook in self._workflow_hooks:
            hook(wf)

    # -- running ---------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Run the scheduler in a background thread; return once it can fire (and its event sources listen)."""
        with self._lock:
            if self._running or not self._done.is_set():
                raise ConcurrencyError("the scheduler is already running")
            self._done.clear()
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            try:
                asyncio.run(self._main(ready.set))
            except BaseException as exc:  # reported to start() or logged; the thread ends either way
                failure.append(exc)
                log.exception("the scheduler stopped on an error")
            finally:
                ready.set()

        self._thread = threading.Thread(target=main, name="pytest-orchestrator-scheduler", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    async def serve(self) -> None:
        """Run the scheduler in the running event loop until ``stop()``."""
        with self._lock:
            if self._running or not self._done.is_set():
                raise ConcurrencyError("the scheduler is already running")
            self._done.clear()
        await self._main(lambda: None)

    def stop(self, wait: bool = True, *, grace: float | None = None) -> None:
        """Stop firing. ``wait=True``: let running runs finish first (with ``grace``: for at most that many
        seconds, then cancel them); ``wait=False``: cancel them.

        From another thread than the scheduler's, with ``wait=True`` this returns once the scheduler has stopped.
        """
        if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int | float) or not grace >= 0):
            raise ValueError(f"grace must be a non-negative number of seconds, got {grace!r}")
        with self._lock:
            if not self._running:
                return
            self._stopping = True
            self._stop_wait = wait
            self._stop_grace = grace
            wake = self._wake
            if wake is not None:
                self._call_in_loop(wake.set)
        if wait and threading.get_ident() != self._loop_thread:
            self._done.wait()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> Scheduler:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(wait=True)

    def _call_in_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            fn(*args)
            if self._wake is not None:
                self._wake.set()
            return

        def call() -> None:
            fn(*args)
            if self._wake is not None:
                self._wake.set()

        try:
            loop.call_soon_threadsafe(call)
        except RuntimeError:  # the loop has closed meanwhile
            pass

    async def _main(self, ready: Callable[[], None]) -> None:
        global _last_started
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(self.max_workers)
        self._executor = concurrent.futures.ThreadPoolExecutor(self.max_workers, thread_name_prefix="scheduled-job")
        self._stopping = False
        listening: list[asyncio.Event] = []
        try:
            with self._lock:
                self.started_at = now = self.clock.now()
                self._running = True
                for entry in self._entries.values():
                    listening += self._activate(entry, now)
            _last_started = weakref.ref(self)
            for event in listening:  # every watcher is set up before start() returns
                await event.wait()
            ready()
            while not self._stopping:
                self._wake.clear()
                delay = self._fire_due(self.clock.now())
                if self._stopping:
                    break
                await self._wait(delay)
        finally:
            await self._shutdown()

    async def _wait(self, delay: float | None) -> None:
        assert self._wake is not None
        if delay is None:
            await self._wake.wait()
            return
        waker = asyncio.ensure_future(self._wake.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        try:
            await asyncio.wait((waker, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()
            sleeper.cancel()

    async def _shutdown(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._running = False
        listeners = [e.listener for e in entries if e.listener is not None]
        for task in listeners:
            task.cancel()
        runs = [t for e in entries for t in e.tasks]
        abandon = not self._stop_wait
        if self._stop_wait and self._stop_grace is not None and runs:
            _, late = await asyncio.wait(runs, timeout=self._stop_grace)
            abandon = bool(late) or any(e.tasks for e in entries)
            runs = [t for e in entries for t in e.tasks]
        if abandon:
            for e in entries:
                e.queued.clear()
            for task in runs:
                task.cancel()
        while True:  # queued runs start as others finish: wait until none is left
            pending = [t for e in entries for t in e.tasks if not t.done()] + [t for t in listeners if not t.done()]
            if not pending:
                break
            await asyncio.gather(*pending, return_exceptions=True)
        for entry in entries:
            entry.listener = None
            if entry.job.status is JobStatus.RUNNING:
                entry.job.status = JobStatus.SCHEDULED
            self._persist(entry)
        if self._table is not None:
            self._table.close()
        if self._executor is not None:
            self._executor.shutdown(wait=not abandon, cancel_futures=True)
        self._executor = None
        self._loop = None
        self._loop_thread = None
        self._wake = None
        self._stop_grace = None
        self._done.set()

    # -- firing ---------------------------------------------------------------------------------------------------
    def _arm(self, entry: _Entry, now: dt.datetime) -> None:
        """A stopped scheduler's provisional next fire time (intervals are anchored when it starts)."""
        if entry.job.status is JobStatus.SCHEDULED and not entry.run_now:
            restored = entry.restored_next
            entry.job.next_fire_time = restored if restored is not None else self._next(entry, now)

    def _activate(self, entry: _Entry, now: dt.datetime) -> list[asyncio.Event]:
        """Arm a job on the running scheduler; start its listener if its trigger is an event source."""
        job = entry.job
        if job.status is not JobStatus.SCHEDULED:
            return []
        trigger = job.trigger
        if entry.trigger is trigger or not isinstance(entry.trigger, IntervalTrigger):  # a restored anchor is kept
            entry.trigger = trigger.anchored(now) if isinstance(trigger, IntervalTrigger) else trigger
        if entry.run_now:
            job.next_fire_time = now
        elif entry.restored_next is not None:  # the fire time saved before a restart: a missed one is a misfire
            job.next_fire_time = entry.restored_next
        else:
            job.next_fire_time = self._next(entry, now)
        entry.run_now = False
        entry.restored_next = None
        self._persist(entry)
        if isinstance(trigger, EventSource) and entry.listener is None:
            listening = asyncio.Event()
            entry.listener = asyncio.ensure_future(self._listen(entry, listening))
            return [listening]
        return []

    async def _listen(self, entry: _Entry, listening: asyncio.Event) -> None:
        def fire(payload: Any) -> None:
            if self._loop is not None and threading.get_ident() != self._loop_thread:
                self._call_in_loop(self._fire, entry, self.clock.now(), payload)
            else:
                self._fire(entry, self.clock.now(), payload)

        try:
            await entry.trigger.listen(fire, listening.set, self.clock)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("the trigger of job %r failed; the job is cancelled", entry.job.name)
            entry.job.last_error = f"trigger failed: {type(exc).__name__}: {exc}"
            entry.job.last_exception = exc
            entry.job.status = JobStatus.CANCELLED
        finally:
            listening.set()

    def _stop_entry(self, entry: _Entry) -> None:
        if entry.listener is not None:
            entry.listener.cancel()
            entry.listener = None
        for task in entry.tasks:
            task.cancel()

    def _next(self, entry: _Entry, after: dt.datetime) -> dt.datetime | None:
        job = entry.job
        if job.max_runs is not None and entry.fires >= job.max_runs:
            return None
        value = entry.trigger.next_fire_time(after.astimezone(self.tz))
        if value is not None and (not isinstance(value, dt.datetime) or value.tzinfo is None):
            raise TypeError(f"{entry.trigger!r}.next_fire_time() must return an aware datetime or None, got {value!r}")
        return value

    def _fire_due(self, now: dt.datetime) -> float | None:
        """Fire every due job; return the seconds until the earliest next fire time (None: nothing timed)."""
        earliest: dt.datetime | None = None
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            job = entry.job
            due = job.next_fire_time
            if job.status in _IDLE or due is None:
                continue
            if due <= now:
                late = (now - due).total_seconds()
                if late > self.misfire_grace and job.misfire == "skip":
                    self._skip(entry, due, f"misfire: {late:.3f}s late")
                else:
                    self._fire(entry, due, NO_PAYLOAD)
                job.next_fire_time = due = self._next(entry, max(now, due))
                if due is None:
                    self._maybe_finished(entry)
                self._persist(entry)
                if due is None:
                    continue
            earliest = due if earliest is None or due < earliest else earliest
        if earliest is None:
            return None
        return max(0.0, (earliest - self.clock.now()).total_seconds())

    def _fire(self, entry: _Entry, due: dt.datetime, payload: Any) -> None:
        job = entry.job
        if job.status in _IDLE or self._stopping:
            return
        job.last_fire_time = due
        if job.running:
            if job.overlap == "skip":
                self._skip(entry, due, "overlap: the previous run is still going")
                return
            if job.overlap == "queue":
                entry.queued.append((due, payload))
                return
        self._start_run(entry, due, payload)

    def _start_run(self, entry: _Entry, due: dt.datetime, payload: Any) -> None:
        entry.fires += 1
        entry.job.running += 1
        entry.job.status = JobStatus.RUNNING
        task = asyncio.ensure_future(self._run(entry, due, payload))
        entry.tasks.add(task)
        task.add_done_callback(entry.tasks.discard)

    def _skip(self, entry: _Entry, due: dt.datetime, reason: str) -> None:
        entry.job.skipped += 1
        self.total_skipped += 1
        record = RunRecord(entry.job.id, due, TaskStatus.SKIPPED, reason=reason)
        entry.job.history.append(record)
        self._persist(entry, record)
        self._emit(JobSkipped(entry.job.id, entry.job.name, self.clock.now().timestamp(), record))

    async def _run(self, entry: _Entry, due: dt.datetime, payload: Any) -> None:
        job = entry.job
        assert self._slots is not None
        status = TaskStatus.CANCELLED
        error: str | None = None
        started: dt.datetime | None = None
        duration = lag = 0.0
        try:
            async with self._slots:
                started = self.clock.now()
                lag = max(0.0, (started - due).total_seconds())
                self._lags.append(lag)
                del self._lags[:-LAG_WINDOW]
                self._emit(JobStarted(job.id, job.name, started.timestamp(), due, lag))
                t0 = self.clock.monotonic()
                ctx = RunContext(job.args, job.kwargs, self._executor, payload, self._on_workflow)
                assert entry.runner is not None  # a broken job never fires
                try:
                    job.last_result = await entry.runner(ctx)
                    status = TaskStatus.COMPLETED
                except Exception as exc:
                    status = TaskStatus.FAILED
                    error = f"{type(exc).__name__}: {exc}"
                    job.last_exception = exc
                    log.warning("job %r failed: %s", job.name, error)
                finally:
                    duration = self.clock.monotonic() - t0
        finally:
            self._finish(entry, due, status, started, duration, lag, error)

    def _finish(
        self,
        entry: _Entry,
        due: dt.datetime,
        status: TaskStatus,
        started: dt.datetime | None,
        duration: float,
        lag: float,
        error: str | None,
    ) -> None:
        job = entry.job
        job.running -= 1
        job.runs += 1
        self.total_runs += 1
        if status is TaskStatus.FAILED:
            job.failures += 1
            self.total_failures += 1
            job.last_error = error
        record = RunRecord(job.id, due, status, started, self.clock.now(), duration, lag, error)
        job.history.append(record)
        self._emit(JobFinished(job.id, job.name, self.clock.now().timestamp(), record))
        if entry.queued and job.status is not JobStatus.CANCELLED and not (self._stopping and not self._stop_wait):
            next_due, payload = entry.queued.pop(0)
            self._start_run(entry, next_due, payload)
            self._persist(entry, record)
            return
        if job.status is JobStatus.RUNNING and not job.running:
            job.status = JobStatus.SCHEDULED
        self._maybe_finished(entry)
        self._persist(entry, record)

    def _maybe_finished(self, entry: _Entry) -> None:
        job = entry.job
        if job.running or job.status is JobStatus.CANCELLED or isinstance(entry.trigger, EventSource):
            return
        if job.next_fire_time is None and not entry.queued:
            job.status = JobStatus.FINISHED

    # -- numbers ----------------------------------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        """The live numbers: ``runs``, ``failures``, ``skipped``, ``jobs`` (counts by state), ``running``,
        ``next_fire_times`` ({job name: ISO time}) and ``lag`` (seconds between due and actual start)."""
        with self._lock:
            jobs = [e.job for e in self._entries.values()]
            lags = list(self._lags)
        counts = dict.fromkeys((s.value for s in JobStatus), 0)
        for job in jobs:
            counts[job.status.value] += 1
        return {
            "running": self._running,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "runs": self.total_runs,
            "failures": self.total_failures,
            "skipped": self.total_skipped,
            "jobs": counts,
            "active_runs": sum(job.running for job in jobs),
            "next_fire_times": {
                job.name if job.name not in _dupes(jobs) else job.id: job.next_fire_time.isoformat()
                for job in jobs
                if job.next_fire_time is not None
            },
            "lag": {
                "last": lags[-1] if lags else 0.0,
                "mean": sum(lags) / len(lags) if lags else 0.0,
                "max": max(lags, default=0.0),
                "samples": len(lags),
            },
        }

    def __repr__(self) -> str:
        return f"Scheduler(jobs={len(self._entries)}, running={self._running})"


#: statuses in which a job does not fire
_IDLE = (JobStatus.CANCELLED, JobStatus.FINISHED, JobStatus.BROKEN)


def _why(job: Job) -> str:
    return f": {job.last_error}" if job.status is JobStatus.BROKEN and job.last_error else ""


def _same_trigger(new: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Whether a trigger scheduled again is the stored one (an interval without its own start matches the stored
    interval of the same period, which was anchored when it first started)."""
    if new.get("kind") == "interval" == stored.get("kind") and new.get("start_at") is None:
        return bool(new.get("seconds") == stored.get("seconds"))
    return new == stored


def _dupes(jobs: list[Job]) -> set[str]:
    seen: set[str] = set()
    dupes: set[str] = set()
    for job in jobs:
        (dupes if job.name in seen else seen).add(job.name)
    return dupes


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        hints = close_matches(str(value), allowed)
        raise ValueError(
            f"{what} must be one of {', '.join(allowed)}, got {value!r}"
            + (f" (did you mean {hints[0]!r}?)" if hints else "")
        )
    return value
