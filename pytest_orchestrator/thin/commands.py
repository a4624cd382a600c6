"""Commands and scripts in one line: ``run``, ``run_async``, ``shell``, ``pipe``, ``batch``, ``chain_scripts``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
import concurrent.futures
import dataclasses
import json
import os
from pathlib import Path
import shlex
import threading
import time
from typing import Any
from typing import Literal

from pytest_orchestrator.errors import StepError
from pytest_orchestrator.execution.process import CommandResult
from pytest_orchestrator.execution.process import run_process
from pytest_orchestrator.execution.process import run_process_async
from pytest_orchestrator.runners import ExecutionResult
from pytest_orchestrator.runners import ScriptResult
from pytest_orchestrator.runners import Status
from pytest_orchestrator.runners import run_script
from pytest_orchestrator.thin.common import PREV_RESULT_LIMIT
from pytest_orchestrator.thin.common import SCRIPT_LIKE


__all__ = [
    "ChainResult",
    "PipeResult",
    "ShellResult",
    "batch",
    "chain_scripts",
    "pipe",
    "run",
    "run_async",
    "shell",
]

# -- shell -----------------------------------------------------------------------------------------------------
#: the thin API's name for the one result shape of a command that ran (``success`` is derived, not stored)
ShellResult = CommandResult


def _check_command(command: Any) -> str:
    if not isinstance(command, str):
        raise TypeError(f"a command must be a string, got {type(command).__name__}")
    return command


def _raise_failed(result: CommandResult) -> None:
    tail = "\n".join((result.stderr or result.stdout).splitlines()[-10:])
    raise StepError(
        f"command {result.command!r} failed: {result.error}" + (f"\n{tail}" if tail else ""),
        command=result.command,
        returncode=result.returncode,
    )


def shell(
    command: str,
    timeout: float | None = 60,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    check: bool = False,
) -> CommandResult:
    """Run ``command`` through ``/bin/sh -c``; stdin is empty, ``env`` is merged over ``os.environ``.

    On timeout the command's whole process group is killed and ``success`` is False (``timed_out`` True).
    ``check=True`` raises ``StepError`` (context ``command``, ``returncode``) on a non-zero exit or a timeout.
    """
    command = _check_command(command)
    proc = run_process(command, shell=True, timeout=timeout, env=env, cwd=cwd)
    result = CommandResult.from_process(command, proc)
    if check and not result.success:
        _raise_failed(result)
    return result


async def _shell_async(
    command: str,
    timeout: float | None,
    env: Mapping[str, str] | None,
    cwd: str | os.PathLike[str] | None,
) -> CommandResult:
    proc = await run_process_async(command, shell=True, timeout=timeout, env=env, cwd=cwd)
    return CommandResult.from_process(command, proc)


# -- run -------------------------------------------------------------------------------------------------------
Kind = Literal["script", "missing", "shell", "invalid"]


def _classify(target: Any, cwd: str | os.PathLike[str] | None = None) -> tuple[Kind, Any]:
    """What a target is: ``("script", path)``, ``("missing", path)``, ``("shell", command)`` or
    ``("invalid", message)``. A relative script path is looked for as given, then under ``cwd``."""
    if isinstance(target, os.PathLike):
        path = Path(target)
    elif isinstance(target, str):
        if not target.strip():
            return "invalid", "empty command"
        path = Path(target)
    else:
        return "invalid", f"not a script or a command: {target!r}"
    try:
        if path.is_file():
            return "script", path
        if cwd is not None and not path.is_absolute() and (Path(cwd) / path).is_file():
            return "script", Path(cwd) / path
    except (OSError, ValueError):  # a command string too long or odd to be a path
        pass
    if isinstance(target, str) and not SCRIPT_LIKE.fullmatch(target.strip()):
        return "shell", target
    return "missing", path


def _with_args(command: str, args: Sequence[Any] | None) -> str:
    return f"{command} {shlex.join(str(a) for a in args)}" if args else command


def run(
    target: str | os.PathLike[str],
    timeout: float | None = 60,
    args: Sequence[Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> ScriptResult | CommandResult:
    """Run ``target``: an existing file as a script (``run_script``), any other string as a shell command.

    A string that names a script (``"build.py"``, ``"ci/test.sh"``: no blanks, ending in ``.py`` or ``.sh``) but
    does not exist gives a ``ScriptResult`` with status ``"error"`` ("script not found"), not a shell error.
    ``args`` go to the script, or are appended shell-quoted to the command.
    """
    kind, value = _classify(target, cwd)
    if kind in ("script", "missing"):
        return run_script(value, args=[str(a) for a in args or ()], timeout=timeout, env=env, cwd=cwd)
    if kind == "invalid":
        raise (ValueError if isinstance(target, str) else TypeError)(f"run() needs a script or a command: {value}")
    return shell(_with_args(value, args), timeout=timeout, env=env, cwd=cwd)


async def run_async(
    target: str | os.PathLike[str],
    timeout: float | None = 60,
    args: Sequence[Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> ScriptResult | CommandResult:
    """``run`` without blocking the event loop. Cancelling the awaiting task kills the running process group."""
    kind, value = _classify(target, cwd)
    if kind == "invalid":
        raise (ValueError if isinstance(target, str) else TypeError)(
            f"run_async() needs a script or a command: {value}"
        )
    if kind == "shell":
        return await _shell_async(_with_args(value, args), timeout, env, cwd)
    cancel = threading.Event()
    future = asyncio.ensure_future(
        asyncio.to_thread(
            run_script,
            value,
            args=[str(a) for a in args or ()],
            timeout=timeout,
            env=env,
            cwd=cwd,
            cancel_event=cancel,
        )
    )
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel.set()
        await asyncio.wait([future])  # the kill is quick; do not leave the group behind
        raise


# -- pipe ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class PipeResult:
    """The outcome of ``pipe``. ``completed`` counts the commands that ran (successfully or not);
    ``final_output`` is the stdout of the last command that ran."""

    success: bool
    commands: list[str]
    completed: int
    results: list[CommandResult]
    final_output: str
    execution_time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "commands": list(self.commands),
            "completed": self.completed,
            "results": [r.to_dict() for r in self.results],
            "final_output": self.final_output,
            "execution_time": self.execution_time,
        }


def pipe(
    commands: Sequence[str],
    timeout_per_command: float | None = 30,
    stop_on_error: bool = True,
) -> PipeResult:
    """Run shell commands one after another, each reading the previous one's stdout on its stdin.

    The first command's stdin is empty. With ``stop_on_error`` the first failing command (non-zero exit or
    timeout) ends the pipe; without it a failing command's stdout still feeds the next. Output passes as text
    (UTF-8; undecodable bytes are replaced).
    """
    if isinstance(commands, str):
        raise TypeError("pipe() takes a list of commands, not one string")
    commands = [_check_command(c) for c in commands]
    if not commands:
        raise ValueError("pipe() needs at least one command")
    t0 = time.monotonic()
    results: list[CommandResult] = []
    data: str | None = None
    for command in commands:
        proc = run_process(command, shell=True, timeout=timeout_per_command, input=data)
        result = CommandResult.from_process(command, proc)
        results.append(result)
        data = result.stdout
        if stop_on_error and not result.success:
            break
    return PipeResult(
        success=len(results) == len(commands) and all(r.success for r in results),
        commands=commands,
        completed=len(results),
        results=results,
        final_output=results[-1].stdout,
        execution_time=time.monotonic() - t0,
    )


# -- batch -----------------------------------------------------------------------------------------------------
def _command_result(command: str, result: CommandResult, start: float) -> ScriptResult:
    status: Status
    if result.success:
        status = "passed"
    elif result.timed_out:
        status = "timeout"
    elif result.returncode is None:
        status = "error"
    else:
        status = "failed"
    return ScriptResult(
        script=command,
        name=command,
        status=status,
        exit_code=result.returncode,
        stdout=result.stdout,
        stderr=result.stderr,
        error=result.error,
        start_time=start,
        end_time=time.time(),
        execution_time=result.execution_time,
        attempts=1,
        command=["/bin/sh", "-c", command],
    )


def _run_target(target: Any, timeout: float | None) -> ScriptResult:
    kind, value = _classify(target)
    if kind in ("script", "missing"):
        return run_script(value, timeout=timeout)
    if kind == "invalid":
        now = time.time()
        return ScriptResult(str(target), str(target), "error", error=value, start_time=now, end_time=now)
    start = time.time()
    return _command_result(value, shell(value, timeout=timeout), start)


def batch(
    targets: Sequence[str | os.PathLike[str]],
    workers: int | None = None,
    timeout: float | None = 60,
) -> ExecutionResult:
    """Run every target at once (up to ``workers``), started in the order given; results keep that order.

    Files run as scripts, other strings as shell commands (their row's ``name`` and ``script`` are the command).
    A target that cannot run (a missing script, an empty string, not a string at all) is a row with status
    ``"error"``: nothing is dropped, and ``passed + failed + timeout + skipped == total``.
    """
    if isinstance(targets, str):
        raise TypeError("batch() takes a list of targets, not one string")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    targets = list(targets)
    t0 = time.monotonic()
    if not targets:
        return ExecutionResult.from_results([], 0.0)
    count = min(len(targets), workers or min(32, (os.cpu_count() or 1) * 2))
    with concurrent.futures.ThreadPoolExecutor(count, thread_name_prefix="orchestrate-batch") as pool:
        results = list(pool.map(lambda t: _run_target(t, timeout), targets))
    return ExecutionResult.from_results(results, time.monotonic() - t0)


# -- chain_scripts ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ChainResult:
    """The outcome of ``chain_scripts``: one ``ScriptResult`` per script, in order (iterable and indexable).

    Scripts not run because of an earlier failure are there with status ``"skipped"``.
    """

    results: list[ScriptResult]
    execution_time: float = 0.0

    @property
    def success(self) -> bool:
        """No script failed, timed out or errored (exit-77 skips are fine)."""
        return all(r.status in ("passed", "skipped") for r in self.results)

    @property
    def completed(self) -> int:
        """How many scripts ran."""
        return sum(1 for r in self.results if r.attempts > 0)

    def __iter__(self) -> Iterator[ScriptResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> ScriptResult:
        return self.results[index]

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "completed": self.completed,
            "execution_time": self.execution_time,
            "results": [r.to_dict() for r in self.results],
        }


def _prev_result_json(result: ScriptResult) -> str:
    data: dict[str, Any] = {
        "script": result.script,
        "name": result.name,
        "status": result.status,
        "success": result.success,
        "exit_code": result.exit_code,
        "error": result.error,
        "execution_time": result.execution_time,
        "stdout": result.stdout,
        "stderr": result.stderr,
    }
    keep = max(len(result.stdout), len(result.stderr))
    while True:
        text = json.dumps(data)  # ASCII: its length in characters is its size in bytes
        if len(text) <= PREV_RESULT_LIMIT or keep == 0:
            return text
        keep //= 2
        data["stdout"] = result.stdout[-keep:] if keep else ""
        data["stderr"] = result.stderr[-keep:] if keep else ""
        data["truncated"] = True


def chain_scripts(
    scripts: Sequence[str | os.PathLike[str]],
    timeout_per_script: float | None = 60,
    pass_results: bool = True,
    stop_on_error: bool = True,
) -> ChainResult:
    """Run scripts one after another and return a ``ChainResult``.

    With ``pass_results`` each script after the first gets the previous script's result in its environment:
    ``PREV_RESULT`` (JSON: script, name, status, success, exit_code, error, execution_time, stdout, stderr; the
    output tails are shortened to keep it under 64 KiB) and ``PREV_SUCCESS`` (``"true"`` if it passed, else
    ``"false"``). With ``stop_on_error`` a failed, timed-out or errored script ends the chain: the rest are
    reported as ``"skipped"`` without running. An exit-77 skip does not stop the chain.
    """
    if isinstance(scripts, str):
        raise TypeError("chain_scripts() takes a list of scripts, not one string")
    t0 = time.monotonic()
    results: list[ScriptResult] = []
    previous: ScriptResult | None = None
    stopped_by: str | None = None
    for script in scripts:
        if stopped_by is not None:
            now = time.time()
            results.append(
                ScriptResult(
                    str(script),
                    Path(script).stem,
                    "skipped",
                    error=f"not run: {stopped_by!r} failed and stop_on_error is on",
                    start_time=now,
                    end_time=now,
                )
            )
            continue
        env: dict[str, str] | None = None
        if pass_results and previous is not None:
            env = {"PREV_RESULT": _prev_result_json(previous), "PREV_SUCCESS": "true" if previous.success else "false"}
        result = run_script(script, timeout=timeout_per_script, env=env)
        results.append(result)
        previous = result
        if stop_on_error and result.status in ("failed", "timeout", "error"):
            stopped_by = result.name
    return ChainResult(results, time.monotonic() - t0)
