"""Workflows of steps: ``workflow(name) -> Steps``, ``step``, ``condition``, ``StepResult``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from collections.abc import Iterable
import dataclasses
from typing import Any
from typing import overload

from pytest_orchestrator.core import graph as _graph
from pytest_orchestrator.core.limits import check_attempts
from pytest_orchestrator.core.limits import check_seconds
from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.values import jsonable
from pytest_orchestrator.core.workflow import TaskResult
from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.errors import DependencyResolutionError
from pytest_orchestrator.errors import TaskFailedError
from pytest_orchestrator.errors import WorkflowError
from pytest_orchestrator.thin.common import STEP_ATTR
from pytest_orchestrator.thin.common import STEP_RETRY_DELAY
from pytest_orchestrator.thin.common import Action
from pytest_orchestrator.thin.common import Condition
from pytest_orchestrator.thin.common import F


__all__ = ["StepOptions", "StepResult", "Steps", "condition", "step", "workflow"]


# -- workflows of steps ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StepOptions:
    """What ``@step`` and ``@condition`` attach to a function (as ``fn.__orchestrate_step__``)."""

    name: str | None = None
    timeout: float | None = None
    #: attempts in total
    retry: int = 1
    condition: Condition | None = None


def _options(fn: Any) -> StepOptions:
    found = getattr(fn, STEP_ATTR, None)
    return found if isinstance(found, StepOptions) else StepOptions()


def _set_options(fn: F, options: StepOptions) -> F:
    try:
        setattr(fn, STEP_ATTR, options)
    except (AttributeError, TypeError):
        raise TypeError(f"cannot attach step options to {fn!r}; wrap it in a def") from None
    return fn


@overload
def step(name: F) -> F: ...


@overload
def step(name: str | None = None, timeout: float | None = None, retry: int = 1) -> Callable[[F], F]: ...


def step(name: Any = None, timeout: float | None = None, retry: int = 1) -> Any:
    """Attach step options to a function (returned unchanged, so it keeps its kind); ``Steps.add(fn)`` uses them.

    Usage: ``@step``, or ``@step(name="load", timeout=30, retry=3)`` (``retry`` counts attempts in total).
    """
    if callable(name):
        return step()(name)
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"step name must be a non-empty string, got {name!r}")
    if timeout is not None:
        timeout = check_seconds(timeout, "step timeout")
    retry = check_attempts(retry, "step retry")

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@step decorates a function, got {fn!r}")
        options = dataclasses.replace(_options(fn), name=name, timeout=timeout, retry=retry)
        return _set_options(fn, options)

    return decorate


def condition(predicate: Condition) -> Callable[[F], F]:
    """Run the decorated step only when ``predicate(results)`` is true.

    ``results`` is the engine's ``{name: TaskResult}`` of the steps finished so far. A step whose condition is
    false is skipped (``StepResult.skipped``, ``success`` False), and so are the steps that depend on it.
    Combines with ``@step`` in either order.
    """
    if not callable(predicate):
        raise TypeError(f"condition() needs a callable predicate, got {predicate!r}")

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@condition decorates a function, got {fn!r}")
        return _set_options(fn, dataclasses.replace(_options(fn), condition=predicate))

    return decorate


@dataclasses.dataclass
class StepResult:
    """The outcome of one step. A step that did not run has ``success`` False and ``error`` saying why
    (``"skipped: dependency 'x' failed"``, ``"skipped: condition was false"``, ``"cancelled: ..."``);
    ``skipped`` is True when it was skipped (by a condition or a dependency)."""

    success: bool
    value: Any = None
    error: str | None = None
    execution_time: float = 0.0
    skipped: bool = False
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["value"] = jsonable(self.value)
        return data

    @classmethod
    def from_task(cls, result: TaskResult | None) -> StepResult:
        if result is None:
            return cls(success=False, error="did not run")
        error = result.error
        if result.status is TaskStatus.SKIPPED:
            reason = result.reason or "skipped"
            error = "skipped: condition was false" if reason == "condition" else f"skipped: {reason}"
        elif result.status is TaskStatus.CANCELLED:
            reason = result.reason or "cancelled"
            error = reason if reason.startswith("cancelled") else f"cancelled: {reason}"
        elif not result.success and not result.status.finished:
            error = error or f"did not finish ({result.status.value})"
        return cls(
            success=result.success and result.status is TaskStatus.COMPLETED,
            value=result.value,
            error=error,
            execution_time=result.execution_time,
            skipped=result.status is TaskStatus.SKIPPED,
            attempts=result.attempts,
            started_at=result.started_at,
            finished_at=result.finished_at,
        )


StepSpec = tuple[str, Action] | Callable[..., Any]


class Steps:
    """A workflow built step by step; made by ``workflow(name)``.

    ``add`` makes a step depend on the previous one (or on every member of the previous ``add_parallel`` group)
    unless ``depends_on`` says otherwise (``[]`` for none). Result passing is the engine's: a step with one
    free parameter after a single step gets its value, after a parallel group ``{member: value}``; a parameter
    named like a dependency gets that dependency's value. A command string runs through ``/bin/sh -c``.

    ``.workflow`` is the underlying ``Workflow`` (``fail_fast=False``: independent branches finish; dependents
    of a failure are skipped).
    """

    def __init__(self, name: str = "workflow", *, max_concurrency: int | None = None) -> None:
        self.workflow = Workflow(name, fail_fast=False, max_concurrency=max_concurrency)
        self._previous: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.workflow.name

    def __len__(self) -> int:
        return len(self.workflow.tasks)

    def __repr__(self) -> str:
        return f"Steps({self.name!r}, steps={list(self.workflow.tasks)})"

    def _dependencies(self, name: str, depends_on: str | Iterable[str] | None) -> tuple[str, ...]:
        if depends_on is None:
            return self._previous
        deps = (depends_on,) if isinstance(depends_on, str) else tuple(depends_on)
        for dep in deps:
            if dep not in self.workflow.tasks:
                raise DependencyResolutionError(
                    task_name=name, missing=dep, suggestions=_graph.close_matches(str(dep), self.workflow.tasks)
                )
        return deps

    def _add(
        self,
        name_or_step: str | Callable[..., Any],
        action: Action | None,
        deps: tuple[str, ...],
        timeout: float | None,
        retry: int | None,
        condition: Condition | None,
    ) -> str:
        if isinstance(name_or_step, str):
            if action is None:
                raise TypeError(f"step {name_or_step!r} needs an action: add(name, function_or_command)")
            name, fn = name_or_step, action
        elif callable(name_or_step):
            if action is not None:
                raise TypeError("add(function) takes no second action; use add(name, action)")
            fn = name_or_step
            name = _options(fn).name or str(getattr(fn, "__name__", ""))
            if not name or name == "<lambda>":
                raise WorkflowError("this step needs a name: add(name, action) or @step(name=...)")
        else:
            raise TypeError(f"add() takes a name and an action, or a function; got {name_or_step!r}")
        options = _options(fn) if callable(fn) else StepOptions()
        timeout = check_seconds(timeout, "step timeout") if timeout is not None else options.timeout
        attempts = check_attempts(retry, "step retry") if retry is not None else options.retry
        policy = RetryPolicy(max_attempts=attempts, initial_delay=STEP_RETRY_DELAY) if attempts > 1 else None
        self.workflow.add_task(
            name,
            fn,
            dependencies=deps,
            timeout=timeout,
            retry_policy=policy,
            condition=condition or options.condition,
            shell=isinstance(fn, str),
        )
        return name

    def add(
        self,
        name_or_step: str | Callable[..., Any],
        action: Action | None = None,
        depends_on: str | Iterable[str] | None = None,
        timeout: float | None = None,
        retry: int | None = None,
        *,
        condition: Condition | None = None,
    ) -> Steps:
        """Add a step and return ``self`` (calls chain).

        ``add(name, action)`` or ``add(fn)`` (name from ``@step(name=...)``, else the function's name). ``timeout``
        (seconds), ``retry`` (attempts in total) and ``condition`` default to the function's ``@step`` /
        ``@condition`` options, else no timeout, one attempt, no condition.
        """
        label = name_or_step if isinstance(name_or_step, str) else getattr(name_or_step, "__name__", "step")
        deps = self._dependencies(label, depends_on)
        name = self._add(name_or_step, action, deps, timeout, retry, condition)
        self._previous = (name,)
        return self

    def add_parallel(
        self,
        steps: Iterable[StepSpec],
        depends_on: str | Iterable[str] | None = None,
    ) -> Steps:
        """Add a group of steps that run side by side: ``[(name, action), ...]`` or decorated functions.

        Each member depends on the previous step (or ``depends_on``); the next ``add`` depends directly on every
        member (there is no hidden join step).
        """
        specs = list(steps)
        if not specs:
            raise ValueError("add_parallel() needs at least one step")
        deps = self._dependencies("parallel group", depends_on)
        names: list[str] = []
        for spec in specs:
            if isinstance(spec, tuple):
                if len(spec) != 2:
                    raise TypeError(f"a parallel step is (name, action), got {spec!r}")
                names.append(self._add(spec[0], spec[1], deps, None, None, None))
            else:
                names.append(self._add(spec, None, deps, None, None, None))
        self._previous = tuple(names)
        return self

    @property
    def results(self) -> dict[str, StepResult]:
        """``{name: StepResult}`` of the last run (every step, in definition order)."""
        return {name: StepResult.from_task(task.result) for name, task in self.workflow.tasks.items()}

    async def run(self) -> dict[str, StepResult]:
        """Run every step; return ``{name: StepResult}``. Failures are in the results, never raised."""
        try:
            await self.workflow.run()
        except TaskFailedError:
            pass
        return self.results

    def run_sync(self) -> dict[str, StepResult]:
        """``run()`` from synchronous code (not from inside a running event loop: ``await steps.run()`` there)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.run())
        raise RuntimeError("run_sync() was called from a running event loop; use 'await steps.run()'")


def workflow(name: str = "workflow") -> Steps:
    """Start a ``Steps`` builder: ``workflow("etl").add("fetch", fetch).add("load", load).run_sync()``."""
    return Steps(name)
