"""The definition side of a workflow: ``Task``, ``TaskStatus``, ``TaskResult`` and ``Workflow``.

A ``Workflow`` holds tasks and their dependencies; ``await wf.run()`` hands it to the engine
(``core/engine.py``), the one place tasks run. ``chain``, ``parallel`` and ``fan_out_fan_in`` build common shapes.

Imports point one way: the engine imports this module's types; this module reaches the engine only through the
one seam in ``Workflow.run`` (a function-level import), and the engine hands a run's results back through
``Workflow.finish_run``. Task statuses (``Task.status`` / ``Task.result``) are the live view the engine updates as
each task moves.
"""

from __future__ import annotations

from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import concurrent.futures
import dataclasses
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

from pytest_orchestrator.core import graph as _graph
from pytest_orchestrator.core.clock import SYSTEM_CLOCK
from pytest_orchestrator.core.clock import Clock
from pytest_orchestrator.core.events import Event
from pytest_orchestrator.core.events import progress_adapter
from pytest_orchestrator.core.limits import check_seconds
from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.status import FINISHED
from pytest_orchestrator.core.status import STRATEGIES
from pytest_orchestrator.core.status import TRIGGER_RULES
from pytest_orchestrator.core.status import TaskStatus
from pytest_orchestrator.errors import ConcurrencyError
from pytest_orchestrator.errors import WorkflowError
from pytest_orchestrator.execution.executors import check_executor


if TYPE_CHECKING:
    import networkx as nx

    from pytest_orchestrator.core.recording import RunState

__all__ = [
    "FINISHED",
    "STRATEGIES",
    "TRIGGER_RULES",
    "SkipTask",
    "Task",
    "TaskResult",
    "TaskStatus",
    "Workflow",
    "chain",
    "fan_out_fan_in",
    "parallel",
]


class SkipTask(Exception):
    """Raised by an action to say "skip me": the task ends SKIPPED with this reason, and is not retried.

    Its dependents follow the trigger rules (``all_success`` dependents are skipped too).
    """

    def __init__(self, reason: str = "skipped") -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(slots=True)
class TaskResult:
    """The outcome of one task: its value or error, how long it took and how many attempts it used."""

    success: bool
    value: Any = None
    error: str | None = None
    execution_time: float = 0.0
    attempts: int = 0
    status: TaskStatus = TaskStatus.PENDING
    started_at: float | None = None
    finished_at: float | None = None
    #: why the task was skipped or cancelled
    reason: str | None = None
    #: the exception of the last failed attempt, if any
    exception: BaseException | None = dataclasses.field(default=None, repr=False, compare=False)
    #: the value came from the state store: the task completed in the run this one resumed
    carried_over: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "status": self.status.value,
            "value": self.value,
            "error": self.error,
            "execution_time": self.execution_time,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "reason": self.reason,
            "carried_over": self.carried_over,
        }


@dataclasses.dataclass(eq=False)
class Task:
    """One unit of work and how to run it. Made by ``Workflow.add_task``."""

    name: str
    action: Callable[..., Any] | str
    dependencies: tuple[str, ...] = ()
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    timeout: float | None = None
    retry_policy: RetryPolicy | None = None
    condition: Callable[[dict[str, TaskResult]], Any] | None = None
    transform_result: Callable[[Any], Any] | None = None
    trigger_rule: str = "all_success"
    priority: int = 0
    shell: bool = False
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: what a worker must offer to run this task (``{"GPU": 1}``): Dask worker resources; threads ignore it
    resources: dict[str, float] | None = None
    status: TaskStatus = TaskStatus.PENDING
    result: TaskResult | None = None

    @property
    def estimated_duration(self) -> float | None:
        """Seconds this task is expected to take (``metadata["estimated_duration"]``), if known."""
        value = self.metadata.get("estimated_duration")
        return float(value) if isinstance(value, int | float) else None

    @property
    def is_command(self) -> bool:
        return isinstance(self.action, str)


def _check_timeout(value: Any, what: str) -> float | None:
    if value is None:
        return None
    return check_seconds(value, what, error=lambda message: WorkflowError(message, timeout=value))


class _Running(Protocol):
    """What a workflow needs of the engine running it: a way to stop it."""

    def cancel(self, reason: str) -> None: ...

    def interrupt(self, reason: str) -> None: ...


class Workflow:
    """A named set of tasks with dependencies, run by an event-driven engine.

    Usage::

        wf = Workflow("etl", fail_fast=True, max_concurrency=4)
        wf.add_task("fetch", action=fetch_data)
        wf.add_task("transform", action=transform, dependencies=["fetch"])   # transform(data) gets fetch's value
        results = asyncio.run(wf.run())
        wf.get_summary()["success"]

    ``executor`` says where sync actions run: ``"thread"`` (default), ``"process"`` (picklable actions), a Dask
    cluster (``"dask://HOST:PORT"`` or a ``DaskExecutor``: command tasks run on its workers too) or any
    ``concurrent.futures.Executor``. ``progress_callback(task_name, status, details)`` observes the run;
    ``add_listener`` receives typed events (``core/events.py``). ``state`` is a ``StateStore``
    (``pytest_orchestrator.state``): each run is recorded there under a run id, and ``run(resume=...)`` carries over
    what an earlier, unfinished run completed.
    ``clock`` (``core/clock.py``) is where the engine reads time and sleeps between retries; tests pass a
    ``VirtualClock`` so that retry delays take no real time.
    ``strategy`` says which ready task starts first when more are ready than may run (``STRATEGIES``):
    ``"critical_path"`` (default), ``"priority"`` or ``"fifo"``.
    """

    def __init__(
        self,
        name: str = "workflow",
        *,
        fail_fast: bool = True,
        timeout: float | None = None,
        max_concurrency: int | None = None,
        executor: str | concurrent.futures.Executor | None = None,
        progress_callback: Callable[[str, str, dict[str, Any]], Any] | None = None,
        state: RunState | None = None,
        clock: Clock | None = None,
        strategy: str = "critical_path",
    ) -> None:
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise ConcurrencyError(
                f"max_concurrency must be a positive integer or None, got {max_concurrency!r}",
                max_concurrency=max_concurrency,
            )
        try:
            check_executor(executor)
        except ValueError as exc:
            raise ConcurrencyError(str(exc), executor=executor) from None
        if state is not None and not callable(getattr(state, "open_run", None)):
            raise WorkflowError(
                f"state must be a StateStore (from pytest_orchestrator import StateStore), got {state!r}",
                workflow=name,
            )
        self.name = name
        self.fail_fast = fail_fast
        self.timeout = _check_timeout(timeout, "workflow timeout")
        self.max_concurrency = max_concurrency
        if strategy not in STRATEGIES:
            raise WorkflowError(
                f"unknown strategy {strategy!r}; use one of {', '.join(repr(x) for x in STRATEGIES)}",
                workflow=name,
            )
        self.executor = executor
        #: the ready-queue strategy (one of ``STRATEGIES``)
        self.strategy = strategy
        self.progress_callback = progress_callback
        self.state = state
        self.clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self.tasks: dict[str, Task] = {}
        self._listeners: list[Callable[[Event], Any]] = []
        if progress_callback is not None:
            self._listeners.append(progress_adapter(progress_callback))
        #: durations of completed tasks in earlier runs, used to estimate the critical path
        self.durations: dict[str, float] = {}
        self.elapsed_time: float = 0.0
        self.run_id: str | None = None
        #: the run the last run resumed (``run(resume=...)``), what resuming said, and why tasks ran again
        self.resumed_from: str | None = None
        self.resume_note: str | None = None
        self.rerun_reasons: dict[str, str] = {}
        self._engine: _Running | None = None

    # -- building ------------------------------------------------------------------------------------------
    def add_task(
        self,
        name: str,
        action: Callable[..., Any] | Callable[..., Awaitable[Any]] | str,
        *,
        dependencies: Iterable[str] | str = (),
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        retry_policy: RetryPolicy | int | dict[str, Any] | None = None,
        condition: Callable[[dict[str, TaskResult]], Any] | None = None,
        transform_result: Callable[[Any], Any] | None = None,
        trigger_rule: str = "all_success",
        priority: int = 0,
        shell: bool = False,
        tags: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        resources: Mapping[str, float] | None = None,
    ) -> Workflow:
        """Add a task; return the workflow so calls chain. Bad arguments raise ``WorkflowError`` here."""
        if not isinstance(name, str) or not name:
            raise WorkflowError(f"task name must be a non-empty string, got {name!r}")
        if name in self.tasks:
            raise WorkflowError(f"duplicate task name {name!r} in workflow {self.name!r}", task_name=name)
        if not (callable(action) or isinstance(action, str)):
            raise WorkflowError(
                f"task {name!r}: action must be a function, an async function or a command string, "
                f"got {type(action).__name__}",
                task_name=name,
            )
        if isinstance(action, str) and not action.strip():
            raise WorkflowError(f"task {name!r}: the command string is empty", task_name=name)
        if shell and not isinstance(action, str):
            raise WorkflowError(f"task {name!r}: shell=True needs a command string action", task_name=name)
        deps = (dependencies,) if isinstance(dependencies, str) else tuple(dependencies)
        if not all(isinstance(d, str) for d in deps):
            raise WorkflowError(f"task {name!r}: dependencies must be task names, got {deps!r}", task_name=name)
        try:
            timeout = _check_timeout(timeout, f"task {name!r}: timeout")
            policy = RetryPolicy.from_value(retry_policy)
        except ValueError as exc:
            raise WorkflowError(f"task {name!r}: {exc}", task_name=name) from None
        if trigger_rule not in TRIGGER_RULES:
            hint = _graph.close_matches(str(trigger_rule), TRIGGER_RULES)
            raise WorkflowError(
                f"task {name!r}: unknown trigger_rule {trigger_rule!r}; expected one of {', '.join(TRIGGER_RULES)}"
                + (f" (did you mean {hint[0]!r}?)" if hint else ""),
                task_name=name,
            )
        for what, fn in (("condition", condition), ("transform_result", transform_result)):
            if fn is not None and not callable(fn):
                raise WorkflowError(f"task {name!r}: {what} must be callable, got {fn!r}", task_name=name)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise WorkflowError(f"task {name!r}: priority must be an integer, got {priority!r}", task_name=name)
        if resources is not None and not (
            isinstance(resources, Mapping)
            and all(
                isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
                for k, v in resources.items()
            )
        ):
            raise WorkflowError(
                f"task {name!r}: resources must map names to non-negative numbers, e.g. {{'GPU': 1}}, "
                f"got {resources!r}",
                task_name=name,
            )
        self.tasks[name] = Task(
            name=name,
            action=action,
            dependencies=tuple(dict.fromkeys(deps)),
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            timeout=timeout,
            retry_policy=policy,
            condition=condition,
            transform_result=transform_result,
            trigger_rule=trigger_rule,
            priority=priority,
            shell=shell,
            tags=tuple(tags),
            metadata=dict(metadata or {}),
            resources=dict(resources) if resources else None,
        )
        return self

    def add_listener(self, listener: Callable[[Event], Any]) -> Workflow:
        """Subscribe ``listener(event)`` to this workflow's lifecycle events (see ``core/events.py``)."""
        if not callable(listener):
            raise WorkflowError(f"listener must be callable, got {listener!r}")
        self._listeners.append(listener)
        return self

    def remove_listener(self, listener: Callable[[Event], Any]) -> None:
        self._listeners.remove(listener)

    @property
    def listeners(self) -> list[Callable[[Event], Any]]:
        return self._listeners

    # -- checking ------------------------------------------------------------------------------------------
    def graph(self) -> dict[str, tuple[str, ...]]:
        """``{task: dependencies}`` in definition order."""
        return {name: task.dependencies for name, task in self.tasks.items()}

    def validate(self) -> None:
        """Raise ``DependencyResolutionError`` or ``CycleError`` if the tasks cannot run."""
        _graph.validate_graph(self.graph())

    def to_networkx(self) -> nx.DiGraph:
        """The task graph as a ``networkx.DiGraph``, for analysis (networkx is imported here, not before).

        Edges go from a dependency to its dependent; each node carries ``status``, ``priority``, ``tags`` and
        ``timeout``. The engine does not use it: it runs on the hand-written graph core (``core/graph.py``).
        """
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        for name, task in self.tasks.items():
            g.add_node(name, status=task.status, priority=task.priority, tags=task.tags, timeout=task.timeout)
        for name, task in self.tasks.items():
            g.add_edges_from((dep, name) for dep in task.dependencies)
        return g

    def estimated_durations(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, task in self.tasks.items():
            estimate = task.estimated_duration if task.metadata else None
            out[name] = estimate if estimate is not None else self.durations.get(name)
        return out

    # -- running -------------------------------------------------------------------------------------------
    async def run(self, resume: bool | str = False, *, run_id: str | None = None) -> dict[str, Any]:
        """Validate, then run every task; return ``{task_name: value}`` (``None`` where it did not complete).

        Raises ``TaskFailedError`` once the run has settled if any task failed, and
        ``OrchestratorTimeoutError`` if the workflow's own timeout expired.

        With a ``state`` store, ``resume=True`` resumes the last unfinished run of this workflow's name (or runs
        from the start when there is none, and says so in ``get_summary()["resume"]``), ``resume="RUN_ID"`` a given
        run: tasks that completed there with the same definition are not run again, their stored values are handed
        to dependents and returned as if they had just run. ``run_id`` names the new run (default: a new id).
        """
        if resume and self.state is None:
            raise WorkflowError(
                f"workflow {self.name!r}: resume needs a state store, e.g. Workflow(..., state=StateStore())",
                workflow=self.name,
            )
        # The one seam from the definition side to the engine: imported here, at run time, so that importing this
        # module never imports the engine (the engine imports this module's types; imports point one way).
        from pytest_orchestrator.core.engine import Engine

        if self._engine is not None:
            raise ConcurrencyError(f"workflow {self.name!r} is already running", workflow=self.name)
        engine = Engine(self)
        self._engine = engine
        try:
            return await engine.run(resume, run_id)
        finally:
            self._engine = None

    def cancel(self, reason: str = "workflow cancelled") -> bool:
        """Stop a running workflow: running tasks are cancelled, pending ones marked CANCELLED.

        ``run()`` then returns what completed. Returns False if the workflow was not running.
        """
        engine = self._engine
        if engine is None:
            return False
        engine.cancel(reason)
        return True

    def interrupt(self, reason: str = "workflow run was interrupted") -> bool:
        """Stop a running workflow but let its cleanup run (Ctrl-C with a grace period): running and pending tasks
        are cancelled except those with ``trigger_rule="all_done"``, which run once their dependencies have
        settled. ``cancel()`` afterwards stops those too. Returns False if the workflow was not running.
        """
        engine = self._engine
        if engine is None:
            return False
        engine.interrupt(reason)
        return True

    def finish_run(
        self,
        *,
        run_id: str,
        elapsed_time: float,
        durations: Mapping[str, float],
        resumed_from: str | None = None,
        resume_note: str | None = None,
        rerun_reasons: Mapping[str, str] | None = None,
    ) -> None:
        """Take a finished run's results from the engine: the one call by which the engine writes to the workflow.

        Public within the package (the engine calls it once per run, before ``WorkflowFinished``); not part of the
        user-facing API. ``durations`` are the completed tasks' execution times, remembered to estimate the
        critical path of later runs.
        """
        self.run_id = run_id
        self.elapsed_time = elapsed_time
        self.durations.update(durations)
        self.resumed_from = resumed_from
        self.resume_note = resume_note
        self.rerun_reasons = dict(rerun_reasons or {})

    @property
    def results(self) -> dict[str, TaskResult]:
        return {name: task.result for name, task in self.tasks.items() if task.result is not None}

    def get_summary(self) -> dict[str, Any]:
        """A JSON-ready account of the last run."""
        counts = dict.fromkeys(("completed", "failed", "skipped", "cancelled", "pending"), 0)
        tasks: dict[str, Any] = {}
        for name, task in self.tasks.items():
            r = task.result
            key = task.status.value if task.status.finished else "pending"
            counts[key] += 1
            tasks[name] = {
                "status": task.status.value,
                "execution_time": r.execution_time if r else 0.0,
                "attempts": r.attempts if r else 0,
                "error": r.error if r else None,
                "reason": r.reason if r else None,
                "started_at": r.started_at if r else None,
                "finished_at": r.finished_at if r else None,
            }
            if r is not None and r.carried_over:
                tasks[name]["carried_over"] = True
        actual = {
            name: (task.result.execution_time if task.result and task.result.attempts else 0.0)
            for name, task in self.tasks.items()
        }
        try:
            path = _graph.critical_path(self.graph(), actual) if self.tasks else []
        except WorkflowError:
            path = []
        return {
            "name": self.name,
            "run_id": self.run_id,
            "total_tasks": len(self.tasks),
            **counts,
            "success": counts["failed"] == 0 and counts["cancelled"] == 0 and counts["pending"] == 0,
            "elapsed_time": self.elapsed_time,
            "total_execution_time": sum(t["execution_time"] for t in tasks.values()),
            "critical_path": path,
            "tasks": tasks,
            "resumed_from": self.resumed_from,
            **({"resume": {"message": self.resume_note, "rerun": self.rerun_reasons}} if self.resume_note else {}),
        }

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, tasks={len(self.tasks)}, fail_fast={self.fail_fast})"


def _task_name(action: Any, names: Sequence[str] | None, i: int) -> str:
    if names is not None:
        if i >= len(names):
            raise WorkflowError(f"names has {len(names)} entries but there are more actions", names=list(names))
        return names[i]
    name = getattr(action, "__name__", None)
    return name if isinstance(name, str) and name != "<lambda>" else f"task_{i}"


def _unique(names: list[str]) -> None:
    seen = set()
    for n in names:
        if n in seen:
            raise WorkflowError(f"two tasks would be named {n!r}; pass names=[...]", task_name=n)
        seen.add(n)


def chain(*actions: Callable[..., Any] | str, names: Sequence[str] | None = None, name: str = "chain") -> Workflow:
    """A workflow running ``actions`` one after another, each receiving the previous one's value."""
    wf = Workflow(name)
    task_names = [_task_name(a, names, i) for i, a in enumerate(actions)]
    _unique(task_names)
    for i, (action, tname) in enumerate(zip(actions, task_names, strict=True)):
        wf.add_task(tname, action, dependencies=[task_names[i - 1]] if i else [])
    return wf


def parallel(
    *actions: Callable[..., Any] | str, names: Sequence[str] | None = None, name: str = "parallel"
) -> Workflow:
    """A workflow running ``actions`` side by side."""
    wf = Workflow(name)
    task_names = [_task_name(a, names, i) for i, a in enumerate(actions)]
    _unique(task_names)
    for action, tname in zip(actions, task_names, strict=True):
        wf.add_task(tname, action)
    return wf


def fan_out_fan_in(
    initial: Callable[..., Any] | str,
    parallel_tasks: Sequence[Callable[..., Any] | str],
    final: Callable[..., Any] | str,
    *,
    names: Sequence[str] | None = None,
    initial_name: str = "initial",
    final_name: str = "final",
    name: str = "fan_out_fan_in",
) -> Workflow:
    """``initial`` -> every one of ``parallel_tasks`` -> ``final``.

    Each parallel task receives ``initial``'s value; ``final`` receives ``{parallel_task_name: value}``.
    """
    wf = Workflow(name)
    middle = [_task_name(a, names, i) for i, a in enumerate(parallel_tasks)]
    _unique([initial_name, *middle, final_name])
    wf.add_task(initial_name, initial)
    for action, tname in zip(parallel_tasks, middle, strict=True):
        wf.add_task(tname, action, dependencies=[initial_name])
    wf.add_task(final_name, final, dependencies=middle)
    return wf
