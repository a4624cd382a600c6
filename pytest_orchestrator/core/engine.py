"""The engine: the one place workflow tasks run.

The algorithm, in outline::

    run()       validate -> DagScheduler -> _fill() -> wait for the last task to settle -> finish_run / raise
    _fill()     while a slot is free and a task is ready (priority, then longest remaining path): evaluate its
                condition, then start the attempt loop (``run_attempts_async``, core/retry.py) as its asyncio task
    _attempt()  one attempt: the action (async in the loop, sync in the executor, a command as a killable process
                group) under the task's timeout (``within``, core/limits.py), then transform_result; the loop's
                listener (_retrying) emits TaskRetrying, and retry delays are slept on the workflow's clock
    _on_done()  the attempt loop ended (an outcome, a cancellation, a KeyboardInterrupt): _result() builds the
                TaskResult, _settle() records it and tells the scheduler (which returns the dependents its rules
                skip); on a failure with fail_fast, cancels what runs and what waits; then _fill() again

It is event-driven: a task starts the moment its last dependency settles, never level by level. Every
``TaskResult`` is built by ``_result``; every time is read from the workflow's clock (``core/clock.py``). A run's
mutable state lives in the ``Engine``; the workflow gets its results back through ``Workflow.finish_run``, and
``Task.status`` / ``Task.result`` are the live view of each task.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable
from collections.abc import Callable
import concurrent.futures
import contextlib
import functools
import inspect
from typing import TYPE_CHECKING
from typing import Any
import uuid

from pytest_orchestrator.core import events as ev
from pytest_orchestrator.core.graph import check_known
from pytest_orchestrator.core.graph import validate_graph
from pytest_orchestrator.core.limits import within
from pytest_orchestrator.core.recording import RunRecorder
from pytest_orchestrator.core.retry import Attempt
from pytest_orchestrator.core.retry import Attempts
from pytest_orchestrator.core.retry import run_attempts_async
from pytest_orchestrator.core.scheduler import DagScheduler
from pytest_orchestrator.core.workflow import FINISHED
from pytest_orchestrator.core.workflow import SkipTask
from pytest_orchestrator.core.workflow import Task
from pytest_orchestrator.core.workflow import TaskResult
from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.errors import CycleError
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.errors import StepError
from pytest_orchestrator.errors import TaskFailedError
from pytest_orchestrator.execution.cluster import OnCluster
from pytest_orchestrator.execution.cluster import session_active


if TYPE_CHECKING:
    from pytest_orchestrator.execution.cluster import ClusterSession

__all__ = ["Engine", "call_plan"]

# enum members as module constants: a global lookup is ~10x cheaper than Enum attribute access
_PENDING = TaskStatus.PENDING
_RUNNING = TaskStatus.RUNNING
_RETRYING = TaskStatus.RETRYING
_COMPLETED = TaskStatus.COMPLETED
_FAILED = TaskStatus.FAILED
_SKIPPED = TaskStatus.SKIPPED
_CANCELLED = TaskStatus.CANCELLED


class _Signature:
    """What result passing needs to know about an action's parameters (computed once per action)."""

    __slots__ = ("is_coro", "names", "params", "plain", "task_results")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.is_coro = inspect.iscoroutinefunction(fn)
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            self.params: list[inspect.Parameter] = []
            self.names: frozenset[str] = frozenset()
            self.task_results = False
            self.plain = True
            return
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.params = [p for p in sig.parameters.values() if p.kind in (*kinds, inspect.Parameter.KEYWORD_ONLY)]
        self.names = frozenset(p.name for p in self.params if p.kind != inspect.Parameter.POSITIONAL_ONLY)
        self.task_results = "_task_results" in sig.parameters
        #: nothing to pass: no named parameters and no ``_task_results``
        self.plain = not self.params and not self.task_results


_signatures: dict[Any, _Signature] = {}


def _signature(fn: Callable[..., Any]) -> _Signature:
    try:
        sig = _signatures.get(fn)
    except TypeError:  # unhashable callable
        return _Signature(fn)
    if sig is None:
        sig = _signatures[fn] = _Signature(fn)
        if len(_signatures) > 4096:
            _signatures.clear()
    return sig


def call_plan(task: Task, results: dict[str, TaskResult]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The ``(args, kwargs)`` an action is called with, after result passing.

    A parameter named like a dependency receives its value. If none matches, a lone parameter not filled by
    ``args``/``kwargs`` receives the single dependency's value (or, with several dependencies,
    ``{dependency: value}``). A ``_task_results`` parameter receives ``{name: TaskResult}`` of finished tasks.
    """
    args, kwargs = task.args, task.kwargs
    assert callable(task.action)
    sig = _signature(task.action)
    if sig.plain:
        return args, kwargs
    if not task.dependencies:
        if sig.task_results and "_task_results" not in kwargs:
            kwargs = {**kwargs, "_task_results": dict(results)}
        return args, kwargs
    kwargs = dict(kwargs)
    if sig.task_results and "_task_results" not in kwargs:
        kwargs["_task_results"] = dict(results)

    def value(dep: str) -> Any:
        r = results.get(dep)
        return r.value if r is not None and r.success else None

    matched = False
    for dep in task.dependencies:
        if dep in sig.names and dep not in kwargs and dep != "_task_results":
            kwargs[dep] = value(dep)
            matched = True
    if matched:
        return args, kwargs
    free = [p for p in sig.params[len(args) :] if p.name not in kwargs and p.name != "_task_results"]
    required = [p for p in free if p.default is inspect.Parameter.empty]
    target = required[0] if len(required) == 1 else (free[0] if not required and len(free) == 1 else None)
    if target is None:
        return args, kwargs
    passed = (
        value(task.dependencies[0]) if len(task.dependencies) == 1 else {dep: value(dep) for dep in task.dependencies}
    )
    if target.kind == inspect.Parameter.KEYWORD_ONLY:
        kwargs[target.name] = passed
    elif target.kind == inspect.Parameter.POSITIONAL_ONLY or target is sig.params[len(args)]:
        args = (*args, passed)
    else:
        kwargs[target.name] = passed
    return args, kwargs


class _Skipped:
    """What an attempt returns when its action raised ``SkipTask``: a success for the attempt loop (no retry)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Expired(Exception):
    """The workflow's own timeout expired (raised by ``within``, caught in ``run``)."""


class Engine:
    """Runs one ``Workflow`` once. Made by ``Workflow.run()``; not reusable.

    It holds the run's mutable state (what runs, the results so far, why the run stops) and hands the workflow its
    results once, through ``Workflow.finish_run``.
    """

    def __init__(self, workflow: Workflow) -> None:
        self.wf = workflow
        self.tasks = workflow.tasks
        self.listeners = workflow.listeners
        self.limit = workflow.max_concurrency
        self.clock = clock = workflow.clock
        self._now = clock.monotonic
        self.running: dict[str, asyncio.Task[Attempts[Any]]] = {}
        self.results: dict[str, TaskResult] = {}
        self.run_id = uuid.uuid4().hex[:12]
        self.first_failure: str | None = None
        self.stopping = False
        self.cancel_reason: str | None = None
        self._executor: concurrent.futures.Executor | None = None
        self._owns_executor = False
        self._finished: asyncio.Future[None] | None = None
        #: tasks in flight: name -> monotonic time they started
        self._started: dict[str, float] = {}
        #: tasks in flight past their first attempt: name -> attempt number
        self._attempt_no: dict[str, int] = {}
        #: the wall time of one monotonic instant: wall(t) = wall0 + (t - mono0), one clock read per timestamp
        self._wall0 = clock.time()
        self._mono0 = clock.monotonic()
        #: the reason given to cancel(): once set, nothing new starts, cleanup tasks included
        self._hard_stop: str | None = None
        #: once the run is stopping (fail_fast, interrupt): the trigger rules of the tasks that may still start
        self._spared: tuple[str, ...] = ()
        #: interrupt() was called: the run stops as cancelled, after its cleanup tasks
        self._interrupted = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sched: DagScheduler[str]
        #: the run's record in the workflow's state store (``Workflow(state=...)``), or ``None``
        self.recorder: RunRecorder | None = None
        #: tasks carried over from the resumed run: name -> stored value
        self._carried: dict[str, Any] = {}
        #: a _fill is scheduled for the next turn of the loop (with state only, see _on_done)
        self._fill_scheduled = False
        #: the run's connection to a cluster (``executor="dask://..."`` or a ``ClusterExecutor``), opened in run()
        self._session: ClusterSession | None = None
        #: tasks whose value may stay on that cluster until the run ends (``_kept_on_cluster``)
        self._kept: frozenset[str] = frozenset()

    # -- the run ---------------------------------------------------------------------------------------------
    async def run(self, resume: bool | str = False, run_id: str | None = None) -> dict[str, Any]:
        wf = self.wf
        graph = wf.graph()
        check_known(graph)  # unknown dependencies; the scheduler below raises CycleError
        self._loop = loop = asyncio.get_running_loop()
        self._finished = loop.create_future()
        for task in self.tasks.values():
            task.status = _PENDING
            task.result = None
        try:
            self.sched = DagScheduler(
                graph,
                weights=wf.estimated_durations(),
                priorities={n: t.priority for n, t in self.tasks.items() if t.priority},
                trigger_rules={n: t.trigger_rule for n, t in self.tasks.items() if t.trigger_rule != "all_success"},
                critical_path=self._order_matters(),
                strategy=wf.strategy,
            )
        except CycleError:
            validate_graph(graph)  # the same error, with the cycle's path
            raise
        await self._open_cluster()  # before anything runs: a cluster that cannot be reached is a clear error
        if wf.state is not None:
            # before anything runs: a state file that cannot be used, or a run of this name in progress elsewhere,
            # stops the run here with a clear error
            try:
                self.recorder = wf.state.open_run(wf, resume, run_id=run_id)
            except BaseException:
                await self._close_session()
                self._close_executor()
                raise
            self.run_id = self.recorder.run_id
            self._carried = self.recorder.carried
        elif run_id is not None:
            self.run_id = run_id
        # the run's async actions may place work on its cluster themselves (execution.cluster.active_session); a
        # run without one, inside an action of a run with one, does not hand its actions the outer run's cluster
        scope = contextlib.ExitStack()
        scope.enter_context(session_active(self._session))
        started = self._now()
        if self.listeners:
            ev.emit(self.listeners, ev.WorkflowStarted(wf.name, self.clock.time(), len(self.tasks), self.run_id))
        timed_out = False
        outcome = "interrupted"  # until the run settles: KeyboardInterrupt, SystemExit ...
        try:
            self._fill()
            if not self._finished.done():
                try:
                    await within(wf.timeout, asyncio.shield(self._finished), _Expired)
                except _Expired:
                    timed_out = True
                    await self._stop_all(f"workflow timed out after {wf.timeout:g} s")
            outcome = "timed_out" if timed_out else "cancelled" if self._hard_stop or self._interrupted else "settled"
        except asyncio.CancelledError:
            outcome = "cancelled"
            await self._stop_all("workflow run was cancelled")
            raise
        finally:
            scope.close()
            await self._fetch_kept()
            elapsed = self._now() - started
            await self._close_session()
            self._close_executor()
            durations = {
                n: r.execution_time for n, r in self.results.items() if r.status is _COMPLETED and not r.carried_over
            }
            recorder = self.recorder
            wf.finish_run(
                run_id=self.run_id,
                elapsed_time=elapsed,
                durations=durations,
                resumed_from=recorder.resumed_from if recorder else None,
                resume_note=recorder.message if recorder else None,
                rerun_reasons=recorder.rerun_reasons if recorder else None,
            )
            if recorder is not None:
                counts = collections.Counter(r.status.value for r in self.results.values())
                if outcome == "settled":
                    done = counts["completed"] + counts["skipped"] == len(self.tasks)
                    outcome = "completed" if done else "failed"
                # the per-task rows are the record; the run keeps its counts (get_summary() costs a critical path)
                recorder.finish(
                    outcome, {"counts": dict(counts), "elapsed_time": elapsed, "total_tasks": len(self.tasks)}
                )
            if self.listeners:
                ev.emit(self.listeners, ev.WorkflowFinished(wf.name, self.clock.time(), *self._final()))
        values = {name: (self.results[name].value if name in self.results else None) for name in self.tasks}
        if timed_out:
            raise OrchestratorTimeoutError(
                f"workflow {wf.name!r} timed out after {wf.timeout:g} s",
                workflow=wf.name,
                timeout=wf.timeout,
            )
        failed = [n for n, r in self.results.items() if r.status is _FAILED]
        if failed:
            first = self.first_failure or failed[0]
            err = TaskFailedError(
                f"task {first!r} failed: {self.results[first].error}",
                task_name=first,
                failed=failed,
                results={n: v for n, v in values.items() if self.results[n].status is _COMPLETED},
            )
            raise err from self.results[first].exception
        return values

    def _order_matters(self) -> bool:
        """Whether ready tasks can queue: a concurrency limit, or sync actions sharing a bounded pool."""
        if self.limit is not None:
            return True
        for task in self.tasks.values():
            if task.priority or not (isinstance(task.action, str) or _signature(task.action).is_coro):
                return True
        return False

    def _final(self) -> tuple[bool, dict[str, Any]]:
        summary = self.wf.get_summary()
        return summary["success"], summary

    def cancel(self, reason: str) -> None:
        """Stop the run from outside (``Workflow.cancel``); safe to call from any thread."""
        self._call_in_loop(self._cancel, reason)

    def _call_in_loop(self, fn: Callable[[str], None], reason: str) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(reason)
        else:
            loop.call_soon_threadsafe(fn, reason)

    def interrupt(self, reason: str) -> None:
        """Stop the run but let its cleanup run (``Workflow.interrupt``); safe to call from any thread."""
        self._call_in_loop(self._interrupt, reason)

    def _interrupt(self, reason: str) -> None:
        if self._finished is None or self._finished.done() or self._hard_stop:
            return
        self._interrupted = True
        self._stop_new_work(reason, spared=("all_done",))
        self._fill_or_finish()  # cleanup tasks whose dependencies were cancelled just now start

    def _cancel(self, reason: str) -> None:
        if self._finished is None or self._finished.done():
            return
        self.cancel_reason = self._hard_stop = reason
        self.stopping = True
        for node in list(self.running):
            self.running[node].cancel()
        cancelled, _ = self.sched.cancel_pending(reason, keep=lambda n: False)
        for node in cancelled:
            self._record(node, self._result(_CANCELLED, reason=reason))
        self._check_finished()

    async def _stop_all(self, reason: str) -> None:
        self._cancel(reason)
        pending = list(self.running.values())
        if pending:
            await asyncio.wait(pending)
        # done callbacks of the cancelled tasks run on the next loop turn
        await asyncio.sleep(0)

    # -- dispatch -------------------------------------------------------------------------------------------
    def _fill(self) -> None:
        sched = self.sched
        loop = self._loop
        assert loop is not None
        tasks, running, on_done, started, now = self.tasks, self.running, self._on_done, self._started, self._now
        attempt, retrying, sleep = self._attempt, self._retrying, self.clock.sleep
        while sched.has_ready():
            room = None if self.limit is None else self.limit - len(running)
            if room is not None and room <= 0:
                break
            for name in sched.get_ready(room):
                task = tasks[name]
                if self.stopping and (self.cancel_reason == self._hard_stop or task.trigger_rule not in self._spared):
                    # taken in the same batch as a task whose failure or condition just stopped the run
                    self._settle(name, self._result(_CANCELLED, reason=self.cancel_reason or "cancelled"))
                    continue
                if name in self._carried:  # completed in the resumed run: its stored value, as if it just ran
                    self._settle(name, self._result(_COMPLETED, value=self._carried[name], carried_over=True))
                    continue
                if task.condition is not None and not self._condition_holds(name, task):
                    continue
                recorder = self.recorder
                if recorder is not None and recorder.needs_flush(task.dependencies):
                    recorder.flush()  # a dependency's row is committed before this task starts
                task.status = _RUNNING
                started[name] = now()
                # A task runs as attempts (_attempt), in the attempt loop, whose outcome _on_done turns into the
                # TaskResult. The loop is the asyncio task itself (no wrapper coroutine around it).
                policy = task.retry_policy
                if policy is None:
                    # No policy, one attempt: nothing for the loop to decide, so the attempt runs without it.
                    # Measured (bench/engine.py --quick, overhead per task vs the graphlib baseline, median), the
                    # loop would cost 4 more objects per task and about 1.5-2.5 us: fanout 1.1x -> 1.4x, random
                    # 1.2x -> 1.5x (the target is <= 1.5).
                    coro = attempt(task, 1)
                else:
                    coro = run_attempts_async(
                        functools.partial(attempt, task),
                        policy,
                        listener=functools.partial(retrying, task),
                        sleep=sleep,
                    )
                atask = loop.create_task(coro, name=name)
                running[name] = atask
                atask.add_done_callback(on_done)
        if not running:
            self._check_finished()

    def _condition_holds(self, name: str, task: Task) -> bool:
        """Evaluate a task's condition; settle the task (skipped or failed) when it does not hold."""
        assert task.condition is not None
        try:
            ok = task.condition(dict(self.results))
        except Exception as exc:
            now = self._now()
            error = f"condition raised {type(exc).__name__}: {exc}"
            self._settle(name, self._result(_FAILED, now, now, error=error, exc=exc))
            return False
        if not ok:
            self._settle(name, self._result(_SKIPPED, reason="condition"))
            return False
        return True

    def _check_finished(self) -> None:
        if not self.sched.is_active() and not self.running and self._finished and not self._finished.done():
            self._finished.set_result(None)

    def _on_done(self, atask: asyncio.Task[Any]) -> None:
        """A task's asyncio task ended: with its outcome, cancelled, or with a ``BaseException`` from its action.

        The outcome is the attempt loop's ``Attempts``, or for a task without a retry policy (run without the loop,
        see ``_fill``) the value or the ``Exception`` of its one attempt.
        """
        name = atask.get_name()
        del self.running[name]
        t0 = self._started.pop(name)
        attempts = self._attempt_no.pop(name, 1) if self._attempt_no else 1
        error: BaseException | None
        if atask.cancelled():
            result = self._result(_CANCELLED, t0, attempts=attempts, reason=self.cancel_reason or "cancelled")
        elif (exc := atask.exception()) is None or isinstance(exc, Exception):
            if self.tasks[name].retry_policy is None:  # one attempt, run without the loop
                value, error = (None, exc) if exc is not None else (atask.result(), None)
            else:
                outcome: Attempts[Any] = atask.result()
                value, error, attempts = outcome.value, outcome.error, outcome.attempts
            if type(value) is _Skipped:
                result = self._result(_SKIPPED, t0, reason=value.reason, attempts=attempts)
            elif error is not None:
                result = self._result(_FAILED, t0, error=_describe(error), exc=error, attempts=attempts)
            else:
                result = self._result(_COMPLETED, t0, value=value, attempts=attempts)
        else:
            # KeyboardInterrupt, SystemExit ...: not an Exception, so no attempt caught it
            if self._finished is not None and not self._finished.done():
                self._finished.set_exception(exc)
            now = self._now()
            result = self._result(_FAILED, now, now, error=f"{type(exc).__name__}: {exc}", exc=exc)
        sched = self.sched
        if sched.state[name] in FINISHED:  # already cancelled by the scheduler (fail_fast / cancel)
            self._record(name, result)
            self._check_finished()
            return
        self._settle(name, result)
        if sched.has_ready():
            if self.recorder is None:
                self._fill()
            elif not self._fill_scheduled:
                # With state, the tasks that finish in this turn of the loop settle first and their dependents start
                # together on the next turn, after one commit (bench/state.py: one commit per task made a 2,000
                # no-op task run about 6x slower; one per turn, about 1.6x).
                self._fill_scheduled = True
                assert self._loop is not None
                self._loop.call_soon(self._deferred_fill)
        elif not self.running:
            self._check_finished()

    def _deferred_fill(self) -> None:
        self._fill_scheduled = False
        self._fill_or_finish()

    def _fill_or_finish(self) -> None:
        """Start what is ready; with nothing ready and nothing running, the run is over."""
        if self.sched.has_ready():
            self._fill()
        elif not self.running:
            self._check_finished()

    def _settle(self, name: str, result: TaskResult) -> None:
        """Record a finished task, apply the rules to its dependents, and stop on a failure if fail_fast."""
        self._record(name, result)
        if result.status is _FAILED:
            if self.first_failure is None:
                self.first_failure = name
            if self.wf.fail_fast and not self.stopping:
                # stop first, so that what waited on this task is cancelled (not skipped), as fail_fast promises
                self._fail_fast(name)
        for node, reason in self.sched.done(name, result.status, result.reason):
            self._record(node, self._result(_SKIPPED, reason=reason))

    def _fail_fast(self, name: str) -> None:
        reason = f"cancelled: task {name!r} failed and fail_fast is on"
        self._stop_new_work(reason, spared=("all_done", "one_failed"))

    def _stop_new_work(self, reason: str, spared: tuple[str, ...]) -> None:
        """Cancel what runs and what waits, except the tasks whose trigger rule is in ``spared`` (cleanup)."""
        self.stopping = True
        self.cancel_reason = reason
        self._spared = spared
        for node, atask in list(self.running.items()):
            if self.tasks[node].trigger_rule not in spared:
                atask.cancel()
        tasks = self.tasks
        cancelled, skipped = self.sched.cancel_pending(reason, keep=lambda n: tasks[n].trigger_rule in spared)
        for node in cancelled:
            self._record(node, self._result(_CANCELLED, reason=reason))
        for node, why in skipped:
            self._record(node, self._result(_SKIPPED, reason=why))

    def _record(self, name: str, result: TaskResult) -> None:
        task = self.tasks[name]
        if result.status is _CANCELLED and name in self.results:
            # cancelled by the scheduler first, then its asyncio task ended: keep timing of what ran
            prev = self.results[name]
            result.reason = prev.reason or result.reason
        task.status = result.status
        task.result = result
        self.results[name] = result
        if self.recorder is not None:
            self.recorder.task_finished(name, result, carried_over=result.carried_over)
        if not self.listeners:
            return
        now = self.clock.time()
        if result.status is _SKIPPED:
            ev.emit(self.listeners, ev.TaskSkipped(self.wf.name, now, name, result.reason or "", result))
        elif result.status is _CANCELLED:
            ev.emit(self.listeners, ev.TaskCancelled(self.wf.name, now, name, result.reason or "", result))
        else:
            ev.emit(self.listeners, ev.TaskFinished(self.wf.name, now, name, result))

    def _result(
        self,
        status: TaskStatus,
        t0: float | None = None,
        t1: float | None = None,
        *,
        value: Any = None,
        error: str | None = None,
        exc: BaseException | None = None,
        reason: str | None = None,
        attempts: int = 0,
        carried_over: bool = False,
    ) -> TaskResult:
        """The one place a ``TaskResult`` is built.

        ``t0`` / ``t1`` are monotonic clock readings (``t1`` defaults to now); without ``t0`` the task never ran
        and has no times (skipped or cancelled before it started).
        """
        if t0 is None:
            return TaskResult(
                status is _COMPLETED, value, error, 0.0, attempts, status, None, None, reason, exc, carried_over
            )
        if t1 is None:
            t1 = self._now()
        wall0, mono0 = self._wall0, self._mono0
        return TaskResult(
            status is _COMPLETED,
            value,
            error,
            t1 - t0,
            attempts,
            status,
            wall0 + (t0 - mono0),
            wall0 + (t1 - mono0),
            reason,
            exc,
        )

    # -- one task -------------------------------------------------------------------------------------------
    async def _attempt(self, task: Task, number: int) -> Any:
        """Attempt ``number`` of ``task``: the action, called once under the task's timeout, then ``transform_result``.

        The action runs in the loop (async), in the executor (sync) or as a killable process group (a command).
        ``SkipTask`` becomes a ``_Skipped`` value: a success for the attempt loop, so it is not retried.
        """
        if number > 1:
            self._attempt_no[task.name] = number
            task.status = _RUNNING
        if self.listeners:
            ev.emit(self.listeners, ev.TaskStarted(self.wf.name, self.clock.time(), task.name, number))
        action = task.action
        timeout = task.timeout
        try:
            if isinstance(action, str):
                value = await self._command(task, action)
            else:
                sig = _signature(action)
                args, kwargs = (task.args, task.kwargs) if sig.plain else call_plan(task, self.results)
                if not sig.is_coro:
                    value = await self._call_sync(task, action, args, kwargs)
                elif timeout is None:
                    value = await action(*args, **kwargs)
                else:
                    value = await within(timeout, action(*args, **kwargs), functools.partial(_timeout, task))
            if task.transform_result is not None:
                value = task.transform_result(value)
        except SkipTask as exc:
            return _Skipped(exc.reason)
        return value

    def _retrying(self, task: Task, attempt: Attempt) -> None:
        """The attempt loop's listener: a failed attempt that will be retried."""
        if not attempt.will_retry:
            return
        task.status = _RETRYING
        if self.recorder is not None:
            assert attempt.error is not None
            self.recorder.attempt_failed(task.name, attempt.number, _describe(attempt.error))
        if self.listeners:
            assert attempt.error is not None
            event = ev.TaskRetrying(
                self.wf.name, self.clock.time(), task.name, attempt.number, attempt.delay, _describe(attempt.error)
            )
            ev.emit(self.listeners, event)

    async def _call_sync(
        self, task: Task, action: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """A sync action, in the executor; a coroutine it returns (a partial of an async function) is awaited."""
        assert self._loop is not None
        expired = functools.partial(_timeout, task)
        future: Awaitable[Any]
        if self._session is not None:
            future = self._session.call(
                action, args, kwargs, name=task.name, resources=task.resources, keep=task.name in self._kept
            )
        else:
            future = self._loop.run_in_executor(self._get_executor(), functools.partial(action, *args, **kwargs))
        value = await within(task.timeout, future, expired)
        if inspect.isawaitable(value):
            return await within(task.timeout, value, expired)
        return value

    async def _command(self, task: Task, command: str) -> Any:
        from pytest_orchestrator.execution.process import describe_exit
        from pytest_orchestrator.execution.process import run_process_async

        if self._session is not None:
            result = await self._session.run_command(
                command, shell=task.shell, timeout=task.timeout, name=task.name, resources=task.resources
            )
        else:
            result = await run_process_async(command, shell=task.shell, timeout=task.timeout)
        if result.timed_out:
            raise _timeout(task)
        if result.returncode != 0:
            detail = result.error or (
                describe_exit(result.returncode) if result.returncode is not None else "ended without an exit status"
            )
            tail = result.tail("stderr", 10) or result.tail("stdout", 10)
            raise StepError(
                f"command {command!r} {detail}" + (f"\n{tail}" if tail else ""),
                step_name=task.name,
                returncode=result.returncode,
            )
        return result

    def _get_executor(self) -> concurrent.futures.Executor:
        if self._executor is None:
            from pytest_orchestrator.execution.executors import default_workers
            from pytest_orchestrator.execution.executors import open_executor

            workers = self.limit
            if workers is not None and self.wf.executor in (None, "thread"):
                # max_concurrency is enforced by _fill. A pool only that large would make the next sync call queue
                # behind a timed-out (abandoned) one, and time out while waiting. Idle threads are not created.
                workers = max(workers, default_workers())
            self._executor, self._owns_executor = open_executor(
                self.wf.executor, max_workers=workers, name=f"orchestrate-{self.wf.name}"
            )
        return self._executor

    async def _open_cluster(self) -> None:
        """Connect to the cluster of a cluster executor, checking that its workers have the resources tasks need."""
        from pytest_orchestrator.execution.cluster import ClusterExecutor
        from pytest_orchestrator.execution.executors import CLUSTER_SCHEMES
        from pytest_orchestrator.execution.executors import open_executor

        spec = self.wf.executor
        if isinstance(spec, str) and spec.startswith(CLUSTER_SCHEMES):
            executor, owned = open_executor(spec)
        elif isinstance(spec, ClusterExecutor):
            executor, owned = spec, False
        else:
            return
        assert isinstance(executor, ClusterExecutor)
        self._executor, self._owns_executor = executor, owned
        needs = {name: task.resources for name, task in self.tasks.items() if task.resources}
        try:
            self._session = await executor.open_session(needs)
        except BaseException:
            self._close_executor()
            raise
        self._kept = self._kept_on_cluster()

    def _kept_on_cluster(self) -> frozenset[str]:
        """The sync actions whose value nothing in the driver reads before the run ends, so it may stay on the
        cluster (dependents there get it from a worker; ``_fetch_kept`` brings it back for ``run()``'s result).

        The driver reads values while the run lasts through conditions and ``_task_results`` (every task's),
        listeners and the state store (each finished task's), async actions (their dependencies') and
        ``transform_result`` (its own task's): with any of the first four, every value comes back as it finishes.
        """
        wf = self.wf
        if self.listeners or wf.state is not None:
            return frozenset()
        kept: set[str] = set()
        for name, task in self.tasks.items():
            action = task.action
            if task.condition is not None or (callable(action) and _signature(action).task_results):
                return frozenset()
            if callable(action) and not _signature(action).is_coro and task.transform_result is None:
                kept.add(name)
        for task in self.tasks.values():
            if callable(task.action) and _signature(task.action).is_coro:
                kept.difference_update(task.dependencies)
        return frozenset(kept)

    async def _fetch_kept(self) -> None:
        """Replace the values left on the cluster by the values themselves, in one batch (before the session
        closes); a value that cannot be fetched stays an ``OnCluster`` placeholder."""
        session = self._session
        if session is None or not self._kept:
            return
        kept = [r for r in self.results.values() if type(r.value) is OnCluster]
        if not kept:
            return
        try:
            values = await session.fetch([r.value for r in kept])
        except (Exception, asyncio.CancelledError):
            return  # the loop is going away (Ctrl-C), or the cluster: the placeholders say where the values were
        for result, value in zip(kept, values, strict=True):
            result.value = value

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                await session.close()
            except (Exception, asyncio.CancelledError):
                pass  # the loop is going away (Ctrl-C): what run() reports is the run's own outcome

    def _close_executor(self) -> None:
        if self._executor is not None and self._owns_executor:
            # abandoned (timed-out) sync calls keep their thread; do not wait for them
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None


def _timeout(task: Task) -> OrchestratorTimeoutError:
    return OrchestratorTimeoutError(
        f"task {task.name!r} timed out after {task.timeout:g} s", task_name=task.name, timeout=task.timeout
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StepError | OrchestratorTimeoutError):
        return exc.message
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
