"""Running one stage: ``run_ci_stage`` (command lines), and ``execute_stage`` for any ``StageConfig``.

Every process goes through ``execution/process.py`` (own process group; the stage's timeout kills the group). A
stage never raises for a failing command: the outcome is a :class:`StageResult` with one ``CommandResult`` (the
package's one result shape of a command that ran, from ``execution/process.py``, importable from here too) per
command that was started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import os
from pathlib import Path
import shlex
import sys
import threading
import time
from typing import Any

from pytest_orchestrator.execution.process import CommandResult
from pytest_orchestrator.execution.process import ProcessResult
from pytest_orchestrator.execution.process import describe_exit
from pytest_orchestrator.execution.process import run_process_async
from pytest_orchestrator.pipelines.config import StageConfig


__all__ = [
    "CommandResult",
    "StageResult",
    "execute_stage",
    "execute_stage_blocking",
    "pytest_command",
    "run_ci_stage",
    "safe_filename",
]


@dataclasses.dataclass
class StageResult:
    """What one run of a stage did.

    ``success`` means the commands succeeded (all exited 0). ``allowed_failure`` means they failed and the stage
    has ``allow_failure``: the pipeline records a warning and goes on, as GitLab's "passed with warnings" (so
    ``success=False, allowed_failure=True`` is a warning, ``success=False, allowed_failure=False`` a failure).
    ``commands_executed`` counts the commands that were started (a failing one stops the stage).
    """

    success: bool
    stage: str
    commands_executed: int = 0
    results: list[CommandResult] = dataclasses.field(default_factory=list)
    allowed_failure: bool = False
    timed_out: bool = False
    #: why the stage failed (the failing command and its status), or a note such as a script's skip
    error: str | None = None
    execution_time: float = 0.0
    attempts: int = 1
    #: the JUnit XML file a ``pytest:`` stage wrote, if any
    junit_xml: str | None = None

    @property
    def stdout(self) -> str:
        return "".join(r.stdout for r in self.results)

    @property
    def stderr(self) -> str:
        return "".join(r.stderr for r in self.results)

    def output_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the failing (else the last) command's stderr, or its stdout if empty."""
        if not self.results:
            return ""
        last = next((r for r in self.results if not r.success), self.results[-1])
        text = last.stderr if last.stderr.strip() else last.stdout
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "stage": self.stage,
            "commands_executed": self.commands_executed,
            "results": [r.to_dict() for r in self.results],
            "allowed_failure": self.allowed_failure,
            "timed_out": self.timed_out,
            "error": self.error,
            "execution_time": self.execution_time,
            "attempts": self.attempts,
            "junit_xml": self.junit_xml,
        }


def _describe(command: str, proc: ProcessResult) -> str | None:
    """Why a command failed, or ``None`` if it exited 0."""
    if proc.timed_out:
        return f"command {command!r} timed out"
    if proc.error is not None:
        return proc.error
    if proc.returncode is None:
        return f"command {command!r} ended without an exit status"
    if proc.returncode != 0:
        return f"command {command!r} {describe_exit(proc.returncode)}"
    return None


async def run_ci_stage(
    name: str,
    commands: Sequence[str] | str,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
    allow_failure: bool = False,
    *,
    shell: bool = True,
    cwd: str | os.PathLike[str] | None = None,
) -> StageResult:
    """Run ``commands`` one after another, each line through ``/bin/sh -c`` (``shell=False``: split with shlex,
    no shell), stopping at the first that fails. ``env`` is added to the inherited environment; ``timeout``
    (seconds) is the budget of the whole stage and kills the running command's process group when spent.

    Never raises for a failing command (one that cannot be started is a failed line too)::

        r = await run_ci_stage("t", ["echo $X", "exit 2", "echo never"], env={"X": "y"})
        r.success, r.commands_executed, r.results[0].stdout   # False, 2, "y\\n"

    With ``allow_failure=True``, ``success`` still says whether the commands succeeded and ``allowed_failure``
    says "failed, allowed" (GitLab's "passed with warnings"): ``run_ci_stage("t", ["exit 1"],
    allow_failure=True)`` gives ``success False, allowed_failure True``; a stage whose commands pass gives
    ``success True, allowed_failure False`` either way.
    """
    lines = [commands] if isinstance(commands, str) else list(commands)
    out = await _run_lines(name, lines, timeout, env, shell=shell, cwd=cwd)
    out.allowed_failure = allow_failure and not out.success
    return out


async def _run_lines(
    name: str,
    lines: Sequence[str | Sequence[str]],
    timeout: float,
    env: Mapping[str, str] | None,
    *,
    shell: bool,
    cwd: str | os.PathLike[str] | None,
) -> StageResult:
    t0 = time.monotonic()
    deadline = t0 + timeout
    out = StageResult(success=True, stage=name)
    for line in lines:
        command = line if isinstance(line, str) else shlex.join(line)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            out.success, out.timed_out = False, True
            out.error = f"stage {name!r} timed out after {timeout:g} s"
            break
        proc = await run_process_async(line, shell=shell, timeout=remaining, env=env, cwd=cwd)
        error = _describe(command, proc)
        if proc.timed_out:
            error = f"command {command!r} killed: stage {name!r} timed out after {timeout:g} s"
        out.results.append(dataclasses.replace(CommandResult.from_process(command, proc), error=error))
        out.commands_executed += 1
        if error is not None:
            out.success, out.timed_out, out.error = False, proc.timed_out, error
            break
    out.execution_time = time.monotonic() - t0
    return out


def safe_filename(name: str) -> str:
    """A stage name as a file name: anything but letters, digits, ``.``, ``_`` and ``-`` becomes ``_``."""
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).lstrip(".")
    return cleaned or "stage"


def pytest_command(stage: StageConfig, junit_xml: Path | None = None) -> list[str]:
    """``python -m pytest --orchestrate <args> [--junitxml=<file>]`` with this interpreter."""
    argv = [sys.executable, "-m", "pytest", "--orchestrate", *stage.pytest_args]
    if junit_xml is not None:
        argv.append(f"--junitxml={junit_xml}")
    return argv


async def _run_script_stage(
    stage: StageConfig, env: Mapping[str, str] | None, cwd: str | os.PathLike[str] | None
) -> StageResult:
    from pytest_orchestrator.runners import run_script

    assert stage.script is not None
    path, *args = shlex.split(stage.script)
    cancel = threading.Event()
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(
        None,
        lambda: run_script(path, args=args, timeout=stage.timeout, env=env, cwd=cwd, cancel_event=cancel),
    )
    try:
        script = await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel.set()  # kills the script's process group; wait for that before letting the cancellation through
        await asyncio.wait([future])
        raise
    command = shlex.join(script.command) if script.command else stage.script
    result = CommandResult(
        command=command,
        returncode=script.exit_code,
        stdout=script.stdout,
        stderr=script.stderr,
        error=None if script.status in ("passed", "skipped") else script.error or f"script {path} {script.status}",
        execution_time=script.execution_time,
        timed_out=script.status == "timeout",
    )
    if script.status == "skipped":
        result.returncode = 0  # exit status 77: the script asked to be skipped; the stage passes with a note
    out = StageResult(
        success=script.status in ("passed", "skipped"),
        stage=stage.name,
        commands_executed=1,
        results=[result],
        timed_out=result.timed_out,
        execution_time=script.execution_time,
    )
    if script.status == "skipped":
        out.error = f"script skipped itself: {script.skip_reason}"
    elif not out.success:
        out.error = result.error
    return out


_PYTEST_EXIT = {1: "tests failed", 2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}


def _existing(path: Path | None) -> str | None:
    return str(path) if path is not None and path.exists() else None


async def execute_stage(
    stage: StageConfig,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    junit_xml: Path | None = None,
) -> StageResult:
    """Run one attempt of ``stage`` (its commands, script or pytest) under its timeout.

    ``allowed_failure`` is left to the caller (a failing attempt may still be retried).
    """
    if stage.kind == "script":
        return await _run_script_stage(stage, env, cwd)
    if stage.kind == "pytest":
        argv = pytest_command(stage, junit_xml)
        result = await _run_lines(stage.name, [argv], stage.timeout, env, shell=False, cwd=cwd)
        result.junit_xml = _existing(junit_xml)
        last = result.results[-1] if result.results else None
        if last is not None and not result.success and not result.timed_out and last.returncode is not None:
            what = _PYTEST_EXIT.get(last.returncode) or describe_exit(last.returncode)
            lines = [line.strip(" =") for line in last.stdout.splitlines() if line.strip(" =")]
            result.error = f"pytest: {what}" + (f" ({lines[-1]})" if lines else "")
        return result
    return await _run_lines(stage.name, list(stage.commands), stage.timeout, env, shell=stage.shell, cwd=cwd)


#: how often a stage run by ``execute_stage_blocking`` looks at its cancel event (seconds)
_CANCEL_POLL = 0.1


def execute_stage_blocking(
    stage: StageConfig,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    junit_xml: Path | None = None,
    cancel_event: threading.Event | None = None,
) -> StageResult:
    """``execute_stage`` from synchronous code (a Dask worker's thread): setting ``cancel_event`` kills the running
    command's process group and returns a failed ``StageResult`` saying it was cancelled."""

    async def main() -> StageResult:
        attempt = asyncio.ensure_future(execute_stage(stage, env=env, cwd=cwd, junit_xml=junit_xml))
        while not attempt.done():
            await asyncio.wait([attempt], timeout=_CANCEL_POLL)
            if cancel_event is not None and cancel_event.is_set() and not attempt.done():
                attempt.cancel()
                try:
                    await attempt
                except asyncio.CancelledError:
                    pass
                return StageResult(success=False, stage=stage.name, error=f"stage {stage.name!r} was cancelled")
        return attempt.result()

    return asyncio.run(main())
