"""What a job runs: a function (sync or async), a ``Workflow`` factory, a pipeline YAML file or a scripts folder.

``make_runner(target)`` checks the target once, when it is scheduled, and returns a ``Runner``: an async callable
that does one run and returns its value (or raises, which fails the run).

- a function is called with ``args``/``kwargs`` (sync ones in the scheduler's threads); an event's payload, when
  there is one, comes first; a returned ``Workflow`` is run (so a factory is just a function returning one) and a
  returned awaitable is awaited;
- a ``Workflow`` instance is run again at each fire;
- a ``.yaml``/``.yml`` file is loaded with ``load_pipeline`` and run with ``create_pipeline_workflow``; a payload is
  passed in the environment of its stages (``ORCHESTRATE_PAYLOAD``, JSON; a file change set adds
  ``ORCHESTRATE_CHANGED_FILES``);
- a folder is ``orchestrate run FOLDER -q`` (``run_orchestrator``); a non-zero exit status fails the run.
"""

from __future__ import annotations

from collections.abc import Awaitable
from collections.abc import Callable
import concurrent.futures
import dataclasses
import functools
import inspect
import json
import os
from pathlib import Path
from typing import Any

from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.errors import StepError


__all__ = ["NO_PAYLOAD", "RunContext", "Runner", "describe", "make_runner", "payload_env"]

#: "no payload": the job was fired by time, not by an event
NO_PAYLOAD: Any = object()
PIPELINE_SUFFIXES = (".yaml", ".yml")


@dataclasses.dataclass
class RunContext:
    """What one run needs from its scheduler."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    executor: concurrent.futures.Executor | None
    payload: Any = NO_PAYLOAD
    #: called with every workflow before it runs (metrics collectors attach here)
    on_workflow: Callable[[Workflow], None] | None = None


Runner = Callable[[RunContext], Awaitable[Any]]


def describe(target: Any) -> str:
    """A short human name for ``target``."""
    if isinstance(target, Workflow):
        return f"workflow {target.name!r}"
    if isinstance(target, str | os.PathLike):
        return os.fspath(target)
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    return str(name) if name else repr(target)


def payload_env(payload: Any) -> dict[str, str]:
    """The environment that passes ``payload`` to a pipeline's stages."""
    if payload is NO_PAYLOAD:
        return {}
    to_env = getattr(payload, "to_env", None)
    if callable(to_env):
        return {str(k): str(v) for k, v in to_env().items()}
    return {"ORCHESTRATE_PAYLOAD": json.dumps(payload, default=str)}


async def _run_workflow(wf: Workflow, ctx: RunContext) -> dict[str, Any]:
    if ctx.on_workflow is not None:
        ctx.on_workflow(wf)
    return await wf.run()


def make_runner(target: Any) -> Runner:
    """Check ``target`` and return how to run it; a target that cannot run raises ``TypeError``/``ValueError``."""
    if isinstance(target, Workflow):
        return functools.partial(_run_workflow, target)
    if isinstance(target, str | os.PathLike):
        path = Path(target)
        if path.is_dir():
            return functools.partial(_run_folder, path)
        if path.suffix in PIPELINE_SUFFIXES and path.is_file():
            return functools.partial(_run_pipeline, path)
        if not path.exists():
            raise ValueError(
                f"target {os.fspath(target)!r} does not exist "
                "(a path target is a pipeline YAML file or a scripts folder)"
            )
        raise ValueError(f"target {os.fspath(target)!r} is neither a pipeline YAML file (.yaml, .yml) nor a folder")
    if callable(target):
        return functools.partial(_run_callable, target)
    raise TypeError(
        "a job's target is a function, a Workflow (or a function returning one), a pipeline YAML path or a "
        f"scripts folder, got {type(target).__name__}"
    )


async def _run_callable(fn: Callable[..., Any], ctx: RunContext) -> Any:
    import asyncio

    args = ctx.args if ctx.payload is NO_PAYLOAD else (ctx.payload, *ctx.args)
    if inspect.iscoroutinefunction(fn):
        value = await fn(*args, **ctx.kwargs)
    else:
        loop = asyncio.get_running_loop()
        value = await loop.run_in_executor(ctx.executor, functools.partial(fn, *args, **ctx.kwargs))
    if inspect.isawaitable(value):
        value = await value
    if isinstance(value, Workflow):
        return await _run_workflow(value, ctx)
    return value


async def _run_pipeline(path: Path, ctx: RunContext) -> dict[str, Any]:
    from pytest_orchestrator.pipelines import create_pipeline_workflow
    from pytest_orchestrator.pipelines import load_pipeline

    env = payload_env(ctx.payload)
    wf = create_pipeline_workflow(load_pipeline(path), env=env or None)
    return await _run_workflow(wf, ctx)


async def _run_folder(folder: Path, ctx: RunContext) -> int:
    import asyncio

    from pytest_orchestrator.orchestrator import run_orchestrator

    loop = asyncio.get_running_loop()
    status = await loop.run_in_executor(ctx.executor, run_orchestrator, [os.fspath(folder), "-q"])
    if status != 0:
        raise StepError(
            f"scripts in {os.fspath(folder)} failed: orchestrate run exited with status {status}", status=status
        )
    return status
