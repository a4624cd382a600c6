"""Ready-made workflows: ``ci_pipeline``, ``etl``, ``fan_out`` and ``retry_until`` (the original's ``workflows``).

Each checks its parameters and returns a ``Workflow`` to run with ``await wf.run()``; a wrong or missing parameter
is a ``TypeError``/``ValueError`` that names it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
import inspect
import math
from typing import Any

from pytest_orchestrator.core.graph import close_matches
from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.workflow import TaskResult
from pytest_orchestrator.core.workflow import Workflow


__all__ = ["CI_STAGES", "ci_pipeline", "etl", "fan_out", "retry_until"]

#: the stages of ``ci_pipeline``, in order; lint and test run side by side, build after both, deploy after build
CI_STAGES = ("lint", "test", "build", "deploy")
_CI_NEEDS = {"lint": (), "test": (), "build": ("lint", "test"), "deploy": ("build", "test", "lint")}


def _unknown(kind: str, given: Iterable[str], allowed: Sequence[str]) -> None:
    for key in given:
        if key not in allowed:
            hints = close_matches(key, allowed)
            raise TypeError(
                f"{kind}: unknown parameter {key!r}; expected {', '.join(allowed)}"
                + (f" (did you mean {hints[0]!r}?)" if hints else "")
            )


def _callable(value: Any, what: str) -> Callable[..., Any]:
    if not callable(value):
        raise TypeError(f"{what} must be callable, got {type(value).__name__}")
    fn: Callable[..., Any] = value
    return fn


def ci_pipeline(*, name: str = "ci", fail_fast: bool = True, **stages: Any) -> Workflow:
    """A CI pipeline of ``lint``, ``test``, ``build`` and ``deploy`` stages (``test`` is required).

    A stage is a command string, a list of command strings (run in order through ``/bin/sh``, stopping at the
    first that fails) or a function. When every stage is commands, the result is a pipeline workflow (as
    ``create_pipeline_workflow``: per-stage logs, retries, ``allow_failure``), else a plain ``Workflow``.
    lint and test run side by side; build waits for both; deploy waits for build.

    Usage::

        wf = ci_pipeline(lint="ruff check .", test="pytest -q", build="python -m build")
    """
    _unknown("ci_pipeline()", stages, CI_STAGES)
    given = {k: v for k, v in stages.items() if v is not None}
    if "test" not in given:
        raise TypeError("ci_pipeline(): missing the 'test' stage (a command, a list of commands or a function)")
    commands: dict[str, list[str]] = {}
    for stage, value in given.items():
        if isinstance(value, str):
            commands[stage] = [value]
        elif isinstance(value, list | tuple) and value and all(isinstance(c, str) for c in value):
            commands[stage] = list(value)
        elif not callable(value):
            raise TypeError(
                f"ci_pipeline(): stage {stage!r} must be a command string, a list of command strings or a function, "
                f"got {value!r}"
            )
    order = [s for s in CI_STAGES if s in given]

    def needs(stage: str) -> list[str]:
        wanted = [d for d in _CI_NEEDS[stage] if d in given]
        return wanted[:1] if stage == "deploy" and "build" in given else wanted

    if len(commands) == len(given):
        from pytest_orchestrator.pipelines import create_pipeline_workflow

        return create_pipeline_workflow(
            [{"name": s, "commands": commands[s], "needs": needs(s)} for s in order], name=name, fail_fast=fail_fast
        )
    wf = Workflow(name, fail_fast=fail_fast)
    for stage in order:
        value = given[stage]
        if stage in commands:
            wf.add_task(stage, " && ".join(commands[stage]), shell=True, dependencies=needs(stage))
        else:
            wf.add_task(stage, _no_result_passing(value), dependencies=needs(stage))
    return wf


def _no_result_passing(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` called without arguments (a stage function does not receive the previous stage's value)."""
    if inspect.iscoroutinefunction(fn):

        async def run_async() -> Any:
            return await fn()

        run_async.__name__ = getattr(fn, "__name__", "stage")
        return run_async

    def run() -> Any:
        return fn()

    run.__name__ = getattr(fn, "__name__", "stage")
    return run


def etl(
    extract: Callable[..., Any],
    transforms: Callable[..., Any] | Sequence[Callable[..., Any]] = (),
    load: Callable[..., Any] | None = None,
    *,
    name: str = "etl",
) -> Workflow:
    """``extract`` -> each of ``transforms`` in order -> ``load``, each step receiving the previous step's value.

    Tasks are named ``extract``, ``transform`` (or ``transform_1``, ``transform_2``, ...) and ``load``; the loaded
    value is ``results["load"]``.
    """
    _callable(extract, "etl(): extract")
    if load is None:
        raise TypeError("etl(): missing the 'load' step (a function receiving the transformed data)")
    _callable(load, "etl(): load")
    steps = [transforms] if callable(transforms) else list(transforms)
    for i, fn in enumerate(steps):
        _callable(fn, f"etl(): transforms[{i}]")
    wf = Workflow(name)
    wf.add_task("extract", extract)
    previous = "extract"
    for i, fn in enumerate(steps, 1):
        task = "transform" if len(steps) == 1 else f"transform_{i}"
        wf.add_task(task, fn, dependencies=[previous])
        previous = task
    wf.add_task("load", load, dependencies=[previous])
    return wf


def fan_out(
    items: Iterable[Any],
    worker: Callable[[Any], Any],
    reduce: Callable[[list[Any]], Any] | None = None,
    max_concurrency: int | None = None,
    *,
    name: str = "fan_out",
) -> Workflow:
    """One task per item (``worker(item)``, named ``worker[i]``), then ``reduce`` once with the workers' values in
    the order of ``items`` (``reduce=sum`` works); its value is ``results["reduce"]``. Without ``reduce`` that is
    the list of values. At most ``max_concurrency`` workers run at once."""
    _callable(worker, "fan_out(): worker")
    if reduce is not None:
        _callable(reduce, "fan_out(): reduce")
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise TypeError(f"fan_out(): items must be an iterable of work items, got {type(items).__name__}")
    work = list(items)
    wf = Workflow(name, max_concurrency=max_concurrency)
    names = [f"worker[{i}]" for i in range(len(work))]
    for task, item in zip(names, work, strict=True):
        wf.add_task(task, worker, args=(item,))
    combine = reduce if reduce is not None else list

    def reduce_values(_task_results: dict[str, TaskResult]) -> Any:
        return combine([_task_results[n].value for n in names])

    wf.add_task("reduce", reduce_values, dependencies=names)
    return wf


class NotReadyError(Exception):
    """``retry_until``'s check returned a false value."""


def retry_until(
    check: Callable[[], Any], every: float | None = None, timeout: float | None = None, *, name: str = "retry_until"
) -> Workflow:
    """Call ``check()`` every ``every`` seconds until it returns a true value, for at most ``timeout`` seconds.

    The value is ``results["check"]``; if ``check`` never passes (or keeps raising), ``run()`` raises
    (``TaskFailedError`` with the last reason, or ``OrchestratorTimeoutError``).
    """
    _callable(check, "retry_until(): check")
    for what, value in (("every", every), ("timeout", timeout)):
        if value is None:
            raise TypeError(f"retry_until(): missing {what!r} (seconds)")
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value <= 0:
            raise ValueError(f"retry_until(): {what} must be a positive number of seconds, got {value!r}")
    assert every is not None and timeout is not None
    attempts = max(1, math.floor(timeout / every) + 1)
    policy = RetryPolicy(max_attempts=attempts, initial_delay=every, max_delay=every, exponential_base=1.0)

    if inspect.iscoroutinefunction(check):

        async def poll_async() -> Any:
            value = await check()
            if not value:
                raise NotReadyError(f"check returned {value!r}")
            return value

        action: Callable[[], Any] = poll_async
    else:

        def poll() -> Any:
            value = check()
            if not value:
                raise NotReadyError(f"check returned {value!r}")
            return value

        action = poll
    wf = Workflow(name, timeout=timeout + every)
    wf.add_task("check", action, retry_policy=policy)
    return wf
