"""``Scheduler``: runs jobs when their triggers say, in a background thread (``start()``) or in asyncio (``serve()``).

The loop, in outline::

    _main()     anchor intervals at the start, start the event sources' listeners, then until stop():
                    fire every job that is due, sleep until the earliest next fire time (or until woken by
                    schedule/cancel/run_now/stop): no polling at a fixed period, so sub-second intervals are kept
    _fire()     a run starts unless one is still going: ``overlap`` says skip, queue or allow
    _run()      waits for a worker slot (``max_workers``), runs the target, records the run (a raised exception
                fails that run and is kept as ``last_error``), then starts a queued run if any

A fire time seen more than ``misfire_grace`` seconds late (the machine slept, the loop was blocked) is a misfire:
``misfire="run_once"`` runs the job once for every fire time missed, ``"skip"`` drops them. Either way the job then
waits for its next fire time after now. Public methods are safe to call from any thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import concurrent.futures
import datetime as dt
import itertools
import logging
import threading
from types import TracebackType
from typing import Any
import weakref

from pytest_orchestrator.core.graph import close_matches
from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.errors import ConcurrencyError
from pytest_orchestrator.errors import StateError
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
from pytest_orchestrator.schedule.targets import NO_PAYLOAD
from pytest_orchestrator.schedule.targets import RunContext
from pytest_orchestrator.schedule.targets import Runner
from pytest_orchestrator.schedule.targets import describe
from pytest_orchestrator.schedule.targets import make_runner
from pytest_orchestrator.schedule.triggers import EventSource
from pytest_orchestrator.schedule.triggers import IntervalTrigger
from pytest_orchestrator.schedule.triggers import resolve_zone


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

    __slots__ = ("fires", "job", "listener", "queued", "run_now", "runner", "tasks", "trigger")

    def __init__(self, job: Job, runner: Runner) -> None:
        self.job = job
        self.runner = runner
        self.trigger: Any = job.trigger
        self.fires = 0
        self.queued: list[tuple[dt.datetime, Any]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.listener: asyncio.Task[None] | None = None
        self.run_now = False


class Scheduler:
    """Runs functions, workflows, pipelines and script folders on cron, interval, one-off and event triggers.

    Usage::

        with Scheduler(max_workers=4) as scheduler:
            job_id = scheduler.schedule(nightly_etl, cron("0 2 * * *"), name="etl")
            scheduler.schedule("ci/pipeline.yaml", every(minutes=30), overlap="queue")
            ...
        # or, in asyncio: task = asyncio.create_task(scheduler.serve()); ...; scheduler.stop()

    ``tz`` is the zone in which triggers without their own zone are read (default: the local zone). ``clock`` is
    injectable (``schedule.clock``). ``state`` (a state store, for jobs that survive a restart) is not available yet.
    """

    def __init__(
        self,
        max_workers: int = 4,
        state: Any = None,
        tz: dt.tzinfo | str | None = None,
        clock: Clock | None = None,
        *,
        misfire_grace: float = 1.0,
    ) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ConcurrencyError(f"max_workers must be a positive integer, got {max_workers!r}")
        if state is not None:
            raise StateError(
                "Scheduler(state=...): persistent jobs need the state store (not available yet)", state=state
            )
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
        self._running = False
        self.started_at: dt.datetime | None = None
        self.total_runs = 0
        self.total_failures = 0
        self.total_skipped = 0
        self._lags: list[float] = []

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
        with self._lock:
            job_id = f"job-{next(self._ids)}"
            job = Job(
                id=job_id,
                name=name or describe(target),
                trigger=trigger,
                target=describe(target),
                args=tuple(args),
                kwargs=dict(kwargs or {}),
                max_runs=max_runs,
                misfire=misfire,
                overlap=overlap,
            )
            entry = _Entry(job, runner)
            self._entries[job_id] = entry
            if self._running:
                self._call_in_loop(self._activate, entry, self.clock.now())
            else:
                self._arm(entry, self.clock.now())
        return job_id

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
            entry.queued.clear()
            if self._running:
                self._call_in_loop(self._stop_entry, entry)
        return True

    def run_now(self, job_id: str) -> None:
        """Fire the job now (its overlap policy applies); its schedule is unchanged."""
        with self._lock:
            entry = self._entry(job_id)
            if entry.job.status is JobStatus.CANCELLED:
                raise ValueError(f"job {job_id!r} is cancelled")
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

    def stop(self, wait: bool = True) -> None:
        """Stop firing. ``wait=True``: let running runs finish first; ``wait=False``: cancel them.

        From another thread than the scheduler's, with ``wait=True`` this returns once the scheduler has stopped.
        """
        with self._lock:
            if not self._running:
                return
            self._stopping = True
            self._stop_wait = wait
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
        if not self._stop_wait:
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
        if self._executor is not None:
            self._executor.shutdown(wait=self._stop_wait, cancel_futures=True)
        self._executor = None
        self._loop = None
        self._loop_thread = None
        self._wake = None
        self._done.set()

    # -- firing ---------------------------------------------------------------------------------------------------
    def _arm(self, entry: _Entry, now: dt.datetime) -> None:
        """A stopped scheduler's provisional next fire time (intervals are anchored when it starts)."""
        if entry.job.status is JobStatus.SCHEDULED and not entry.run_now:
            entry.job.next_fire_time = self._next(entry, now)

    def _activate(self, entry: _Entry, now: dt.datetime) -> list[asyncio.Event]:
        """Arm a job on the running scheduler; start its listener if its trigger is an event source."""
        job = entry.job
        if job.status is not JobStatus.SCHEDULED:
            return []
        trigger = job.trigger
        entry.trigger = trigger.anchored(now) if isinstance(trigger, IntervalTrigger) else trigger
        job.next_fire_time = now if entry.run_now else self._next(entry, now)
        entry.run_now = False
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
            if job.status in (JobStatus.CANCELLED, JobStatus.FINISHED) or due is None:
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
                    continue
            earliest = due if earliest is None or due < earliest else earliest
        if earliest is None:
            return None
        return max(0.0, (earliest - self.clock.now()).total_seconds())

    def _fire(self, entry: _Entry, due: dt.datetime, payload: Any) -> None:
        job = entry.job
        if job.status in (JobStatus.CANCELLED, JobStatus.FINISHED) or self._stopping:
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
            return
        if job.status is JobStatus.RUNNING and not job.running:
            job.status = JobStatus.SCHEDULED
        self._maybe_finished(entry)

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
