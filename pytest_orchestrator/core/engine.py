"""The engine: the one place workflow tasks run.

The algorithm, in outline::

    run()      validate -> DagScheduler -> _fill() -> wait for the last task to settle -> summary / raise
    _fill()    while a slot is free and a task is ready (priority, then longest remaining path):
                   evaluate its condition, then start it as an asyncio task (_attempts)
    _attempts  call the action (async in the loop, sync in the executor, a command as a killable process
               group) under the task's timeout; retry per its RetryPolicy
    _settle()  record the result, tell the scheduler; it returns dependents the rules skip; on a failure with
               fail_fast, cancel what runs and what waits; then _fill() again

It is event-driven: a task starts the moment its last dependency settles, never level by level.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from collections.abc import Callable
import concurrent.futures
import functools
import inspect
import time
from typing import TYPE_CHECKING
from typing import Any
import uuid

from pytest_orchestrator.core import events as ev
from pytest_orchestrator.core.graph import check_known
from pytest_orchestrator.core.graph import validate_graph
from pytest_orchestrator.core.scheduler import DagScheduler
from pytest_orchestrator.core.workflow import SkipTask
from pytest_orchestrator.core.workflow import Task
from pytest_orchestrator.core.workflow import TaskResult
from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.errors import CycleError
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.errors import StepError
from pytest_orchestrator.errors import TaskFailedError


if TYPE_CHECKING:
    from pytest_orchestrator.core.workflow import Workflow

__all__ = ["Engine", "call_plan"]

# enum members as module constants: a global lookup is ~10x cheaper than Enum attribute access
_PENDING = TaskStatus.PENDING
_RUNNING = TaskStatus.RUNNING
_RETRYING = TaskStatus.RETRYING
_COMPLETED = TaskStatus.COMPLETED
_FAILED = TaskStatus.FAILED
_SKIPPED = TaskStatus.SKIPPED
_CANCELLED = TaskStatus.CANCELLED

_FINISHED_STATES = frozenset(("completed", "failed", "skipped", "cancelled"))


class _Signature:
    """What result passing needs to know about an action's parameters (computed once per action)."""

    __slots__ = ("is_coro", "names", "params", "plain", "task_results", "var_positional")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.is_coro = inspect.iscoroutinefunction(fn)
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            self.params: list[inspect.Parameter] = []
            self.names: frozenset[str] = frozenset()
            self.task_results = False
            self.var_positional = False
            self.plain = True
            return
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.params = [p for p in sig.parameters.values() if p.kind in (*kinds, inspect.Parameter.KEYWORD_ONLY)]
        self.names = frozenset(p.name for p in self.params if p.kind != inspect.Parameter.POSITIONAL_ONLY)
        self.task_results = "_task_results" in sig.parameters
        self.var_positional = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values())
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


class Engine:
    """Runs one ``Workflow`` once. Made by ``Workflow.run()``; not reusable."""

    def __init__(self, workflow: Workflow) -> None:
        self.wf = workflow
        self.tasks = workflow.tasks
        self.listeners = workflow.listeners
        self.limit = workflow.max_concurrency
        self.running: dict[str, asyncio.Task[TaskResult]] = {}
        self.results: dict[str, TaskResult] = {}
        self.first_failure: str | None = None
        self.stopping = False
        self.cancel_reason: str | None = None
        self._executor: concurrent.futures.Executor | None = None
        self._owns_executor = False
        self._finished: asyncio.Future[None] | None = None
        #: tasks started by the direct path: name -> perf counter at start
        self._direct: dict[str, float] = {}
        self._wall0 = time.time()
        self._perf0 = time.perf_counter()
        #: the reason given to cancel(): once set, nothing new starts, cleanup tasks included
        self._hard_stop: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the run ---------------------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        wf = self.wf
        graph = wf.graph()
        check_known(graph)  # unknown dependencies; the scheduler below raises CycleError
        self._loop = loop = asyncio.get_running_loop()
        self._finished = loop.create_future()
        for task in self.tasks.values():
            task.status = _PENDING
            task.result = None
        try:
            self.sched: DagScheduler[str] = DagScheduler(
                graph,
                weights=wf.estimated_durations(),
                priorities={n: t.priority for n, t in self.tasks.items() if t.priority},
                trigger_rules={n: t.trigger_rule for n, t in self.tasks.items() if t.trigger_rule != "all_success"},
                critical_path=self._order_matters(),
            )
        except CycleError:
            validate_graph(graph)  # the same error, with the cycle's path
            raise
        wf.run_id = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        if self.listeners:
            ev.emit(self.listeners, ev.WorkflowStarted(wf.name, time.time(), len(self.tasks), wf.run_id))
        timed_out = False
        try:
            self._fill()
            if not self._finished.done():
                if wf.timeout is None:
                    await asyncio.shield(self._finished)
                else:
                    try:
                        async with asyncio.timeout(wf.timeout):
                            await asyncio.shield(self._finished)
                    except TimeoutError:
                        timed_out = True
                        await self._stop_all(f"workflow timed out after {wf.timeout:g} s")
        except asyncio.CancelledError:
            await self._stop_all("workflow run was cancelled")
            raise
        finally:
            wf.elapsed_time = time.perf_counter() - started
            self._close_executor()
            for name, r in self.results.items():
                if r.status is _COMPLETED:
                    wf.durations[name] = r.execution_time
            if self.listeners:
                ev.emit(self.listeners, ev.WorkflowFinished(wf.name, time.time(), *self._final()))
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
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._cancel(reason)
        else:
            loop.call_soon_threadsafe(self._cancel, reason)

    def _cancel(self, reason: str) -> None:
        if self._finished is None or self._finished.done():
            return
        self.cancel_reason = self._hard_stop = reason
        self.stopping = True
        for node in list(self.running):
            self.running[node].cancel()
        cancelled, _ = self.sched.cancel_pending(reason, keep=lambda n: False)
        for node in cancelled:
            self._record(node, self._unrun(_CANCELLED, reason))
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
        tasks, running, direct, listeners = self.tasks, self.running, self._direct, self.listeners
        on_done = self._on_done
        while sched.has_ready():
            room = None if self.limit is None else self.limit - len(running)
            if room is not None and room <= 0:
                break
            for name in sched.get_ready(room):
                task = tasks[name]
                if self.stopping and (self.cancel_reason == self._hard_stop or task.trigger_rule == "all_success"):
                    # taken in the same batch as a task whose failure or condition just stopped the run
                    self._settle(name, self._unrun(_CANCELLED, self.cancel_reason or "cancelled"))
                    continue
                if task.condition is not None and not self._condition_holds(name, task):
                    continue
                task.status = _RUNNING
                action = task.action
                sig = None if isinstance(action, str) else _signature(action)
                if (
                    sig is not None
                    and callable(action)
                    and sig.is_coro
                    and task.retry_policy is None
                    and task.timeout is None
                    and task.transform_result is None
                ):
                    # The common case runs the action's own coroutine as the asyncio task, with the bookkeeping
                    # in _on_done: one coroutine and one result object per task.
                    direct[name] = time.perf_counter()
                    if listeners:
                        ev.emit(listeners, ev.TaskStarted(self.wf.name, time.time(), name, 1))
                    try:
                        args, kwargs = (task.args, task.kwargs) if sig.plain else call_plan(task, self.results)
                        coro = action(*args, **kwargs)
                    except Exception as exc:
                        self._settle(name, self._direct_result(direct.pop(name), exc=exc))
                        continue
                    atask = loop.create_task(coro, name=name)
                else:
                    atask = loop.create_task(self._attempts(task), name=name)
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
            self._settle(name, self._failed_result(f"condition raised {type(exc).__name__}: {exc}", exc))
            return False
        if not ok:
            self._settle(name, self._unrun(_SKIPPED, "condition"))
            return False
        return True

    def _check_finished(self) -> None:
        if not self.sched.is_active() and not self.running and self._finished and not self._finished.done():
            self._finished.set_result(None)

    def _direct_result(self, t0: float, value: Any = None, exc: Exception | None = None) -> TaskResult:
        """The result of a task run by the direct path (see ``_fill``) that started at perf counter ``t0``."""
        now = time.perf_counter()
        reason = None
        if exc is None:
            status, error = _COMPLETED, None
        elif isinstance(exc, SkipTask):
            status, error, reason, exc = _SKIPPED, None, exc.reason, None
        else:
            status, error = _FAILED, _describe(exc)
        return TaskResult(
            status is _COMPLETED,
            value,
            error,
            now - t0,
            1,
            status,
            self._wall0 + (t0 - self._perf0),
            self._wall0 + (now - self._perf0),
            reason,
            exc,
        )

    def _on_done(self, atask: asyncio.Task[Any]) -> None:
        name = atask.get_name()
        del self.running[name]
        t0 = self._direct.pop(name, None)
        if t0 is None or atask.cancelled() or atask.exception() is not None:
            self._on_done_slow(atask, name, t0)
            return
        # the common case: a direct task completed
        now = time.perf_counter()
        wall0, perf0 = self._wall0, self._perf0
        result = TaskResult(
            True, atask.result(), None, now - t0, 1, _COMPLETED, wall0 + (t0 - perf0), wall0 + (now - perf0)
        )
        task = self.tasks[name]
        task.status = _COMPLETED
        task.result = result
        self.results[name] = result
        if self.listeners:
            ev.emit(self.listeners, ev.TaskFinished(self.wf.name, time.time(), name, result))
        sched = self.sched
        for node, reason in sched.done(name, _COMPLETED):
            self._record(node, self._unrun(_SKIPPED, reason))
        if sched.has_ready():
            self._fill()
        elif not self.running:
            self._check_finished()

    def _on_done_slow(self, atask: asyncio.Task[Any], name: str, t0: float | None) -> None:
        """A task that was not a plain direct success: cancelled, failed, skipped, or run by ``_attempts``."""
        try:
            result = atask.result()
            if t0 is not None:
                result = self._direct_result(t0, result)
        except asyncio.CancelledError:
            if t0 is not None:
                started_at = self._wall0 + (t0 - self._perf0)
                self.tasks[name].result = TaskResult(False, status=_CANCELLED, started_at=started_at, attempts=1)
            result = self.tasks[name].result or self._unrun(_CANCELLED, "")
            result.status = _CANCELLED
            result.success = False
            result.reason = self.cancel_reason or "cancelled"
            result.finished_at = time.time()
            if result.started_at is not None:
                result.execution_time = result.finished_at - result.started_at
        except Exception as exc:  # only the direct path lets an action's exception reach here
            result = self._direct_result(t0, exc=exc) if t0 is not None else self._failed_result(_describe(exc), exc)
        except BaseException as exc:  # from an action: KeyboardInterrupt, SystemExit ...
            if self._finished is not None and not self._finished.done():
                self._finished.set_exception(exc)
            result = self._failed_result(f"{type(exc).__name__}: {exc}", exc)
        sched = self.sched
        if sched.state[name] in _FINISHED_STATES:  # already cancelled by the scheduler (fail_fast / cancel)
            self._record(name, result)
            self._check_finished()
            return
        self._settle(name, result)
        if sched.has_ready():
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
            self._record(node, self._unrun(_SKIPPED, reason))

    def _fail_fast(self, name: str) -> None:
        self.stopping = True
        reason = f"cancelled: task {name!r} failed and fail_fast is on"
        self.cancel_reason = reason
        for node, atask in list(self.running.items()):
            if self.tasks[node].trigger_rule == "all_success":
                atask.cancel()
        cancelled, skipped = self.sched.cancel_pending(reason)
        for node in cancelled:
            self._record(node, self._unrun(_CANCELLED, reason))
        for node, why in skipped:
            self._record(node, self._unrun(_SKIPPED, why))

    def _record(self, name: str, result: TaskResult) -> None:
        task = self.tasks[name]
        if result.status is _CANCELLED and name in self.results:
            # cancelled by the scheduler first, then its asyncio task ended: keep timing of what ran
            prev = self.results[name]
            result.reason = prev.reason or result.reason
        task.status = result.status
        task.result = result
        self.results[name] = result
        if not self.listeners:
            return
        now = time.time()
        if result.status is _SKIPPED:
            ev.emit(self.listeners, ev.TaskSkipped(self.wf.name, now, name, result.reason or "", result))
        elif result.status is _CANCELLED:
            ev.emit(self.listeners, ev.TaskCancelled(self.wf.name, now, name, result.reason or "", result))
        else:
            ev.emit(self.listeners, ev.TaskFinished(self.wf.name, now, name, result))

    @staticmethod
    def _unrun(status: TaskStatus, reason: str) -> TaskResult:
        return TaskResult(success=False, status=status, reason=reason)

    @staticmethod
    def _failed_result(error: str, exc: BaseException | None) -> TaskResult:
        now = time.time()
        return TaskResult(
            success=False,
            error=error,
            status=_FAILED,
            exception=exc,
            started_at=now,
            finished_at=now,
        )

    # -- one task -------------------------------------------------------------------------------------------
    async def _attempts(self, task: Task) -> TaskResult:
        policy = task.retry_policy
        max_attempts = policy.max_attempts if policy else 1
        started_at = time.time()
        t0 = time.perf_counter()
        result = TaskResult(success=False, status=_RUNNING, started_at=started_at)
        task.result = result
        listeners = self.listeners
        results = self.results
        fast = policy is None and task.timeout is None
        attempt = 0
        while True:
            attempt += 1
            result.attempts = attempt
            if listeners:
                ev.emit(listeners, ev.TaskStarted(self.wf.name, time.time(), task.name, attempt))
            try:
                action = task.action
                if fast and not isinstance(action, str):  # the common case, in this frame: no retry, no timeout
                    args, kwargs = call_plan(task, results)
                    value = await action(*args, **kwargs) if _signature(action).is_coro else await self._call(task)
                else:
                    value = await self._call(task)
                if task.transform_result is not None:
                    value = task.transform_result(value)
            except SkipTask as exc:
                result.status = _SKIPPED
                result.reason = exc.reason
                break
            except Exception as exc:
                if policy is not None and attempt < max_attempts and isinstance(exc, policy.retry_on):
                    delay = policy.get_delay(attempt)
                    task.status = _RETRYING
                    if listeners:
                        ev.emit(
                            listeners,
                            ev.TaskRetrying(self.wf.name, time.time(), task.name, attempt, delay, _describe(exc)),
                        )
                    if delay:
                        await asyncio.sleep(delay)
                    task.status = _RUNNING
                    continue
                result.success = False
                result.status = _FAILED
                result.error = _describe(exc)
                result.exception = exc
                break
            result.success = True
            result.status = _COMPLETED
            result.value = value
            break
        result.finished_at = time.time()
        result.execution_time = time.perf_counter() - t0
        return result

    async def _call(self, task: Task) -> Any:
        action = task.action
        if isinstance(action, str):
            return await self._command(task, action)
        args, kwargs = call_plan(task, self.results)
        if _signature(action).is_coro:
            if task.timeout is None:
                return await action(*args, **kwargs)
            return await self._timed(task, action(*args, **kwargs))
        assert self._loop is not None
        future = self._loop.run_in_executor(self._get_executor(), functools.partial(action, *args, **kwargs))
        value = await self._timed(task, future)
        if inspect.isawaitable(value):  # a sync callable that returned a coroutine (partial of async, ...)
            return await self._timed(task, value)
        return value

    @staticmethod
    async def _timed(task: Task, awaitable: Awaitable[Any]) -> Any:
        """Await under the task's timeout; expiry is an ``OrchestratorTimeoutError`` (the work is cancelled)."""
        if task.timeout is None:
            return await awaitable
        scope = asyncio.timeout(task.timeout)
        try:
            async with scope:
                return await awaitable
        except TimeoutError:
            if scope.expired():
                raise _timeout(task) from None
            raise

    async def _command(self, task: Task, command: str) -> Any:
        from pytest_orchestrator.execution.process import run_process_async

        result = await run_process_async(command, shell=task.shell, timeout=task.timeout)
        if result.timed_out:
            raise _timeout(task)
        if result.returncode != 0:
            detail = result.error or f"exited with status {result.returncode}"
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
