"""Runners: scripts and functions as units of work, one at a time or in parallel.

- ``run_script`` runs one script as a real subprocess (``execution/process.py``): ``.py`` with this interpreter,
  ``.sh`` with bash, anything else executable directly. Exit status 77 means skipped. It never raises for a failing
  script.
- ``run_function`` runs a function in a separate process, so a timeout can kill it.
- ``ParallelRunner`` / ``run_parallel`` run many scripts at once: threads supervising subprocesses.
- ``BatchRunner`` runs batches one after another.

Every runner returns a dataclass with ``to_dict()``; status words are ``passed | failed | timeout | skipped | error``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import concurrent.futures
import dataclasses
import multiprocessing
import os
from pathlib import Path
import sys
import threading
import time
import traceback as _traceback
from typing import Any
from typing import Literal

from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.retry import run_attempts
from pytest_orchestrator.core.values import jsonable
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.errors import StepError
from pytest_orchestrator.execution.process import ProcessResult
from pytest_orchestrator.execution.process import describe_exit
from pytest_orchestrator.execution.process import kill_process_group
from pytest_orchestrator.execution.process import run_process


__all__ = [
    "SKIP_EXIT_CODE",
    "BatchRunner",
    "ExecutionResult",
    "FunctionResult",
    "ParallelRunner",
    "ScriptResult",
    "run_function",
    "run_parallel",
    "run_parallel_async",
    "run_script",
    "script_command",
]

#: exit status by which a script says "skip me" (the automake / TAP convention)
SKIP_EXIT_CODE = 77

Status = Literal["passed", "failed", "timeout", "skipped", "error"]
ProgressCallback = Callable[[str, str, dict[str, Any]], Any]


@dataclasses.dataclass
class ScriptResult:
    """The outcome of running one script (after its retries)."""

    script: str
    name: str
    status: Status
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    start_time: float = 0.0
    end_time: float = 0.0
    execution_time: float = 0.0
    attempts: int = 0
    command: list[str] = dataclasses.field(default_factory=list)
    truncated: bool = False
    #: what was dropped from the head of stdout / stderr and what was kept, in words ("" when nothing was cut)
    stdout_truncation: str = ""
    stderr_truncation: str = ""
    #: messages of the failed attempts before the last one
    attempt_errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.status == "passed"

    @property
    def skip_reason(self) -> str:
        """For a skipped script: its last stderr line, else a generic reason."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1].strip() if lines else self.error or f"{self.name} {describe_exit(SKIP_EXIT_CODE)}"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["success"] = self.success
        return data


@dataclasses.dataclass
class FunctionResult:
    """The outcome of ``run_function``."""

    name: str
    status: Status
    value: Any = None
    error: str | None = None
    traceback: str | None = None
    exit_code: int | None = None
    start_time: float = 0.0
    end_time: float = 0.0
    execution_time: float = 0.0
    attempts: int = 1

    @property
    def success(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["value"] = jsonable(self.value)
        data["success"] = self.success
        return data


@dataclasses.dataclass
class ExecutionResult:
    """Counts over many scripts: ``passed + failed + timeout + skipped == total`` (errors count as failed)."""

    total: int = 0
    passed: int = 0
    failed: int = 0
    timeout: int = 0
    skipped: int = 0
    execution_time: float = 0.0
    results: list[ScriptResult] = dataclasses.field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.failed == 0 and self.timeout == 0

    @classmethod
    def from_results(cls, results: Sequence[ScriptResult], execution_time: float) -> ExecutionResult:
        out = cls(total=len(results), execution_time=execution_time, results=list(results))
        for r in results:
            if r.status == "passed":
                out.passed += 1
            elif r.status == "timeout":
                out.timeout += 1
            elif r.status == "skipped":
                out.skipped += 1
            else:
                out.failed += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "passed": self.passed,
            "failed": self.failed,
            "timeout": self.timeout,
            "skipped": self.skipped,
            "execution_time": self.execution_time,
            "success": self.success,
            "results": [r.to_dict() for r in self.results],
        }


# -- scripts -------------------------------------------------------------------------------------------------
def script_command(path: Path, args: Sequence[str] = (), *, interpreter: Sequence[str] | None = None) -> list[str]:
    """The argv that runs a script: ``.py`` with ``interpreter`` (default: this Python), ``.sh`` with bash, else
    the file itself. ``interpreter`` is an argv prefix, e.g. ``[python, "-m", "coverage", "run", "-p"]``."""
    suffix = path.suffix.lower()
    if suffix == ".py":
        return [*(interpreter or [sys.executable]), str(path), *args]
    if suffix == ".sh":
        return ["bash", str(path), *args]
    return [str(path), *args]


def _check_script(path: Path) -> str | None:
    if not path.exists():
        return f"script not found: {path}"
    if not path.is_file():
        return f"not a file: {path}"
    if not os.access(path, os.R_OK):
        return f"script is not readable: {path}"
    if path.suffix.lower() not in (".py", ".sh") and not os.access(path, os.X_OK):
        return f"script is not executable (chmod +x, or name it .py or .sh): {path}"
    return None


def run_script(
    path: str | os.PathLike[str],
    *,
    args: Sequence[str] = (),
    timeout: float | None = 60,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    config: Mapping[str, Any] | None = None,
    allowed_exit_codes: Iterable[int] = (0,),
    retry: RetryPolicy | int | None = None,
    cancel_event: threading.Event | None = None,
    sleep: Callable[[float], Any] = time.sleep,
    interpreter: Sequence[str] | None = None,
) -> ScriptResult:
    """Run one script and report what happened; never raises for a failing script.

    ``config`` (a dict from ``get_script_config``) supplies args (before ``args``), env (under ``env``),
    timeout, allowed exit codes and retry. A failed exit (a ``StepError``) or a timeout (an
    ``OrchestratorTimeoutError``, a ``TimeoutError``) is retried when the policy's ``retry_on`` takes it (the
    default, ``Exception``, takes both); a skip (exit 77), an error (missing script) or a cancelled run is not.
    ``cancel_event`` kills a running script and ends the retries.
    ``interpreter`` replaces this Python as the argv prefix of ``.py`` scripts (coverage, a virtualenv).
    """
    script = Path(path)
    name = script.stem
    allowed = tuple(allowed_exit_codes)
    policy = RetryPolicy.from_value(retry)
    if config:
        args = (*config.get("args", ()), *args)
        env = {**(config.get("env") or {}), **(env or {})}
        if config.get("timeout") is not None:
            timeout = config["timeout"]
        if config.get("allowed_exit_codes"):
            allowed = tuple(config["allowed_exit_codes"])
        if policy is None and config.get("retry") is not None:
            policy = RetryPolicy.from_value(config["retry"])
    problem = _check_script(script)
    now = time.time()
    if problem is not None:
        return ScriptResult(str(script), name, "error", error=problem, start_time=now, end_time=now)
    # absolute: a bare name ("tool") would be looked up on PATH, and a relative one would resolve against ``cwd``
    command = script_command(script.absolute(), [str(a) for a in args], interpreter=interpreter)
    start = time.time()
    t0 = time.monotonic()

    def attempt(_number: int) -> ScriptResult:
        proc = run_process(command, timeout=timeout, env=env, cwd=cwd, cancel_event=cancel_event)
        return _script_result(script, proc, allowed, timeout)

    outcome = run_attempts(
        attempt,
        policy,
        judge=_script_failure,
        sleep=sleep,
        stop=None if cancel_event is None else cancel_event.is_set,
    )
    if outcome.value is None:  # the attempt itself raised: not a script's failure, a bug or bad arguments
        assert outcome.error is not None
        raise outcome.error
    result = outcome.value
    result.start_time = start
    result.end_time = time.time()
    result.execution_time = time.monotonic() - t0
    result.attempts = outcome.attempts
    result.attempt_errors = [str(error) for error in outcome.errors]
    return result


def _script_failure(result: ScriptResult) -> Exception | None:
    """What a retry may cure: a failed exit (``StepError``) or a timeout (``OrchestratorTimeoutError``).

    A pass, a skip (exit 77), an error (the script could not be run) and a cancelled run are final: ``None``.
    """
    if result.status == "failed":
        return StepError(result.error or "failed", script=result.script, returncode=result.exit_code)
    if result.status == "timeout":
        return OrchestratorTimeoutError(result.error or "timeout", script=result.script)
    return None


def _script_result(script: Path, proc: ProcessResult, allowed: tuple[int, ...], timeout: float | None) -> ScriptResult:
    status: Status
    error = None
    if proc.cancelled:
        status, error = "skipped", "cancelled"
    elif proc.timed_out:
        status, error = "timeout", f"timed out after {timeout:g} s"
    elif proc.returncode is None:
        status, error = "error", proc.error or "the script could not be run"
    elif proc.returncode == SKIP_EXIT_CODE and SKIP_EXIT_CODE not in allowed:
        status = "skipped"
    elif proc.returncode in allowed:
        status = "passed"
    else:
        status = "failed"
        error = describe_exit(proc.returncode)
    return ScriptResult(
        script=str(script),
        name=script.stem,
        status=status,
        exit_code=proc.returncode,
        stdout=proc.stdout,
        stderr=proc.stderr,
        error=error,
        command=list(proc.args) if isinstance(proc.args, list) else [proc.args],
        truncated=proc.truncated,
        stdout_truncation=proc.describe_truncation("stdout"),
        stderr_truncation=proc.describe_truncation("stderr"),
    )


# -- functions -----------------------------------------------------------------------------------------------
def _function_child(conn: Any, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    os.setsid()  # its own process group, so a timeout kills what it started too
    try:
        value = func(*args, **kwargs)
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        conn.send(("raised", message, _traceback.format_exc()))
        return
    try:
        conn.send(("ok", value))
    except Exception as exc:
        conn.send(("unpicklable", f"the result of type {type(value).__name__} cannot be pickled: {exc}", None))


def run_function(
    func: Callable[..., Any],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    timeout: float | None = 60,
) -> FunctionResult:
    """Run ``func(*args, **kwargs)`` in a separate process, so that a timeout can kill it.

    Exceptions come back as ``status "failed"`` with ``error`` starting with the exception's type name and the
    traceback in ``traceback``; an unpicklable function or result is ``"error"``; expiry is ``"timeout"``.
    """
    name = getattr(func, "__name__", repr(func))
    ctx: Any = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    start = time.time()
    t0 = time.monotonic()

    def done(status: Status, **fields: Any) -> FunctionResult:
        return FunctionResult(
            name, status, start_time=start, end_time=time.time(), execution_time=time.monotonic() - t0, **fields
        )

    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_function_child, args=(sender, func, tuple(args), dict(kwargs or {})), daemon=True)
    try:
        process.start()
    except Exception as exc:
        return done("error", error=f"cannot start a process for {name}: {type(exc).__name__}: {exc}")
    sender.close()
    try:
        if not receiver.poll(timeout):
            kill_process_group(process.pid, grace=0.5) if process.pid else None
            if process.is_alive():  # it had not reached os.setsid() yet, so it was not in that group
                process.kill()
            process.join(1)
            return done("timeout", error=f"timed out after {timeout:g} s", exit_code=process.exitcode)
        try:
            message = receiver.recv()
        except EOFError:
            process.join(1)
            return done(
                "error",
                error=f"the process running {name} died (exit code {process.exitcode})",
                exit_code=process.exitcode,
            )
    finally:
        receiver.close()
    process.join(1)
    if process.is_alive():
        kill_process_group(process.pid, grace=0.5) if process.pid else None
    if message[0] == "ok":
        return done("passed", value=message[1], exit_code=0)
    if message[0] == "raised":
        return done("failed", error=message[1], traceback=message[2], exit_code=process.exitcode)
    return done("error", error=message[1], exit_code=process.exitcode)


# -- many scripts --------------------------------------------------------------------------------------------
class ParallelRunner:
    """Run scripts concurrently: threads supervising subprocesses, started in the order given.

    With ``fail_fast``, after the first failed, timed-out or errored script no new one starts and running ones
    are killed; those killed or never started count as skipped.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        progress_callback: ProgressCallback | None = None,
        default_timeout: float | None = 60,
        fail_fast: bool = False,
    ) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) * 2)
        self.progress_callback = progress_callback
        self.default_timeout = default_timeout
        self.fail_fast = fail_fast

    def _notify(self, name: str, status: str, details: dict[str, Any]) -> None:
        if self.progress_callback is None:
            return
        try:
            self.progress_callback(name, status, details)
        except Exception:
            import logging

            logging.getLogger("pytest_orchestrator").exception("progress callback raised; ignored")

    def run_scripts(
        self,
        scripts: Sequence[str | os.PathLike[str]],
        *,
        args: Sequence[str] = (),
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        configs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> ExecutionResult:
        """Run every script; block until all are done. ``configs`` maps a script path to its config dict."""
        t0 = time.monotonic()
        stop = threading.Event()
        lock = threading.Lock()
        first_failure: list[str] = []
        results: list[ScriptResult | None] = [None] * len(scripts)
        timeout = self.default_timeout if timeout is None else timeout

        def work(i: int, script: str | os.PathLike[str]) -> None:
            name = Path(script).stem
            if stop.is_set():
                results[i] = _not_run(script, f"not started: {first_failure[0]!r} failed and fail_fast is on")
                self._notify(name, "skipped", {"reason": results[i].error})  # type: ignore[union-attr]
                return
            self._notify(name, "running", {"script": str(script)})
            config = (configs or {}).get(str(script))
            result = run_script(script, args=args, timeout=timeout, env=env, cwd=cwd, config=config, cancel_event=stop)
            if result.error == "cancelled":
                result.error = f"killed: {first_failure[0]!r} failed and fail_fast is on"
            results[i] = result
            if self.fail_fast and result.status in ("failed", "timeout", "error"):
                with lock:
                    if not first_failure:
                        first_failure.append(name)
                        stop.set()
            self._notify(name, result.status, {"execution_time": result.execution_time, "error": result.error})

        with concurrent.futures.ThreadPoolExecutor(self.max_workers, thread_name_prefix="orchestrate-script") as pool:
            futures = [pool.submit(work, i, s) for i, s in enumerate(scripts)]
            try:
                for f in futures:
                    f.result()
            except KeyboardInterrupt:
                first_failure.append("KeyboardInterrupt")
                stop.set()
                raise
        final = [r if r is not None else _not_run(s, "not run") for r, s in zip(results, scripts, strict=True)]
        return ExecutionResult.from_results(final, time.monotonic() - t0)

    async def run_scripts_async(self, scripts: Sequence[str | os.PathLike[str]], **kwargs: Any) -> ExecutionResult:
        """``run_scripts`` without blocking the event loop."""
        return await asyncio.to_thread(self.run_scripts, scripts, **kwargs)


def _not_run(script: str | os.PathLike[str], reason: str) -> ScriptResult:
    now = time.time()
    return ScriptResult(str(script), Path(script).stem, "skipped", error=reason, start_time=now, end_time=now)


class BatchRunner(ParallelRunner):
    """Run batches of scripts one after another, each batch in parallel."""

    def run_batches(
        self,
        batches: Sequence[Sequence[str | os.PathLike[str]]],
        stop_on_batch_failure: bool = True,
        **kwargs: Any,
    ) -> list[ExecutionResult]:
        """One ``ExecutionResult`` per batch that ran; with ``stop_on_batch_failure`` a failed batch ends it."""
        out: list[ExecutionResult] = []
        for batch in batches:
            result = self.run_scripts(batch, **kwargs)
            out.append(result)
            if stop_on_batch_failure and not result.success:
                break
        return out


def run_parallel(
    scripts: Sequence[str | os.PathLike[str]],
    max_workers: int | None = None,
    timeout: float | None = 60,
    progress_callback: ProgressCallback | None = None,
    *,
    fail_fast: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    args: Sequence[str] = (),
) -> ExecutionResult:
    """Run scripts in parallel and return the counts."""
    runner = ParallelRunner(max_workers, progress_callback, timeout, fail_fast)
    return runner.run_scripts(scripts, args=args, env=env, cwd=cwd)


async def run_parallel_async(
    scripts: Sequence[str | os.PathLike[str]],
    max_workers: int | None = None,
    timeout: float | None = 60,
    progress_callback: ProgressCallback | None = None,
    *,
    fail_fast: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    args: Sequence[str] = (),
) -> ExecutionResult:
    """``run_parallel`` without blocking the event loop."""
    runner = ParallelRunner(max_workers, progress_callback, timeout, fail_fast)
    return await runner.run_scripts_async(scripts, args=args, env=env, cwd=cwd)
