"""The thin API: one-liners over the runners, the process layer and the engine.

Usage::

    from pytest_orchestrator.thin import batch, pipe, run, shell, workflow

    run("scripts/build.py", args=["--fast"])          # an existing file runs as a script -> ScriptResult
    run("make -j4")                                     # any other string is a shell command -> ShellResult
    shell("false", check=True)                          # raises StepError(command=..., returncode=1)
    pipe(["echo hello", "tr a-z A-Z"]).final_output    # "HELLO\\n": each command reads the previous stdout
    batch(["a.py", "b.sh", "echo hi"]).success          # all at once -> ExecutionResult

    steps = workflow("etl").add("fetch", fetch).add("load", load)   # load(data) gets fetch's value
    results = steps.run_sync()                           # {name: StepResult}; never raises TaskFailedError

Everything external runs through ``execution/process.py`` (own process group, timeout kills the group) and every
result is a dataclass with ``to_dict()``.

Decorators keep the kind of what they decorate (a sync function stays sync, an async one async): ``retry``,
``timeout``, ``step`` and ``condition``.
"""

from __future__ import annotations

from pytest_orchestrator.runners import run_function
from pytest_orchestrator.thin.commands import ChainResult
from pytest_orchestrator.thin.commands import PipeResult
from pytest_orchestrator.thin.commands import ShellResult
from pytest_orchestrator.thin.commands import batch
from pytest_orchestrator.thin.commands import chain_scripts
from pytest_orchestrator.thin.commands import pipe
from pytest_orchestrator.thin.commands import run
from pytest_orchestrator.thin.commands import run_async
from pytest_orchestrator.thin.commands import shell
from pytest_orchestrator.thin.common import STEP_RETRY_DELAY as STEP_RETRY_DELAY
from pytest_orchestrator.thin.decorators import retry
from pytest_orchestrator.thin.decorators import timeout
from pytest_orchestrator.thin.steps import StepOptions
from pytest_orchestrator.thin.steps import StepResult
from pytest_orchestrator.thin.steps import Steps
from pytest_orchestrator.thin.steps import condition
from pytest_orchestrator.thin.steps import step
from pytest_orchestrator.thin.steps import workflow


__all__ = [
    "ChainResult",
    "PipeResult",
    "ShellResult",
    "StepOptions",
    "StepResult",
    "Steps",
    "batch",
    "chain_scripts",
    "condition",
    "pipe",
    "python_func",
    "retry",
    "run",
    "run_async",
    "shell",
    "step",
    "timeout",
    "workflow",
]


#: ``run_function`` under its thin-API name: a function in a separate process, so that a timeout can kill it.
python_func = run_function
