"""Tests of ``pytest_orchestrator.thin``: real subprocesses and files in ``tmp_path``, no mocks."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import math
import os
from pathlib import Path
import sys
import threading
import time
from typing import Any

from proc_helpers import pid_alive
import pytest
from script_helpers import py

from pytest_orchestrator import thin
from pytest_orchestrator.core.workflow import TaskResult
from pytest_orchestrator.errors import DependencyResolutionError
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.errors import StepError
from pytest_orchestrator.errors import WorkflowError
from pytest_orchestrator.execution.process import CommandResult
from pytest_orchestrator.execution.process import ProcessResult
from pytest_orchestrator.runners import ScriptResult
from pytest_orchestrator.runners import run_function
from pytest_orchestrator.thin import ChainResult
from pytest_orchestrator.thin import PipeResult
from pytest_orchestrator.thin import ShellResult
from pytest_orchestrator.thin import StepResult
from pytest_orchestrator.thin import batch
from pytest_orchestrator.thin import chain_scripts
from pytest_orchestrator.thin import condition
from pytest_orchestrator.thin import pipe
from pytest_orchestrator.thin import retry
from pytest_orchestrator.thin import run
from pytest_orchestrator.thin import run_async
from pytest_orchestrator.thin import shell
from pytest_orchestrator.thin import step
from pytest_orchestrator.thin import timeout
from pytest_orchestrator.thin import workflow


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")


def test_exports() -> None:
    required = {
        "run",
        "run_async",
        "shell",
        "pipe",
        "batch",
        "chain_scripts",
        "workflow",
        "step",
        "Steps",
        "StepResult",
        "ShellResult",
        "PipeResult",
        "python_func",
        "retry",
        "timeout",
        "condition",
    }
    assert required <= set(thin.__all__)
    assert all(hasattr(thin, name) for name in thin.__all__)
    assert thin.python_func is run_function


# -- shell -----------------------------------------------------------------------------------------------------


def test_shell_runs_through_sh() -> None:
    result = shell("echo $((1 + 2)) | tr 3 x && echo err >&2")
    assert isinstance(result, ShellResult)
    assert result.success and result.returncode == 0 and result.error is None
    assert (result.stdout, result.stderr) == ("x\n", "err\n")
    assert result.command == "echo $((1 + 2)) | tr 3 x && echo err >&2"
    assert result.execution_time > 0
    data = result.to_dict()
    assert {"success", "command", "returncode", "stdout", "stderr", "error", "execution_time"} <= set(data)
    json.dumps(data)


def test_shell_result_is_the_one_command_result() -> None:
    assert ShellResult is CommandResult
    result = shell("exit 0")
    assert result.to_dict()["success"] is True
    assert dataclasses.replace(result, timed_out=True).success is False  # derived from the fields, never stored


def test_shell_nonzero_exit() -> None:
    result = shell("echo out; exit 3")
    assert not result.success
    assert result.returncode == 3
    assert result.error == "exited with status 3"
    assert result.stdout == "out\n"


def test_shell_env_and_cwd(tmp_path: Path) -> None:
    result = shell('echo "$THIN_VAR"; pwd', env={"THIN_VAR": "value"}, cwd=tmp_path)
    assert result.stdout == f"value\n{tmp_path}\n"


def test_shell_check_raises_step_error_with_context() -> None:
    assert shell("true", check=True).success
    with pytest.raises(StepError) as info:
        shell("echo oops >&2; exit 4", check=True)
    assert info.value.context == {"command": "echo oops >&2; exit 4", "returncode": 4}
    assert "exited with status 4" in str(info.value) and "oops" in str(info.value)


def test_shell_timeout_kills_quickly() -> None:
    start = time.monotonic()
    result = shell("sleep 5", timeout=0.3)
    assert time.monotonic() - start < 3
    assert not result.success and result.timed_out
    assert result.error == "timed out after 0.3 s"


def test_shell_check_raises_on_timeout() -> None:
    with pytest.raises(StepError) as info:
        shell("sleep 5", timeout=0.3, check=True)
    assert info.value.context["command"] == "sleep 5"
    assert "timed out" in str(info.value)


def test_shell_needs_a_string() -> None:
    with pytest.raises(TypeError):
        shell(["echo", "x"])  # type: ignore[arg-type]


# -- run / run_async -------------------------------------------------------------------------------------------


def test_run_a_script_with_args(tmp_path: Path) -> None:
    script = py(tmp_path, "hello", "print('hello', sys.argv[1:], os.environ['R'])")
    result = run(str(script), args=["a", 1], env={"R": "env"})
    assert isinstance(result, ScriptResult)
    assert result.status == "passed", result.stderr
    assert result.stdout == "hello ['a', '1'] env\n"
    assert isinstance(run(script), ScriptResult)  # a Path works too


def test_run_a_command(tmp_path: Path) -> None:
    result = run("echo hi; pwd", cwd=tmp_path)
    assert isinstance(result, ShellResult)
    assert result.success and result.stdout == f"hi\n{tmp_path}\n"
    quoted = run("printf '%s|'", args=["a b", "$HOME"])
    assert isinstance(quoted, ShellResult) and quoted.stdout == "a b|$HOME|"


def test_run_a_missing_script_is_an_error_not_a_shell_failure() -> None:
    result = run("missing_thin_script.py")
    assert isinstance(result, ScriptResult)
    assert result.status == "error"
    assert result.error == "script not found: missing_thin_script.py"


def test_run_finds_a_relative_script_under_cwd(tmp_path: Path) -> None:
    py(tmp_path, "inside", "print(os.getcwd())")
    result = run("inside.py", cwd=tmp_path)
    assert isinstance(result, ScriptResult) and result.status == "passed", result.error
    assert result.stdout == f"{tmp_path}\n"


def test_run_rejects_what_is_neither() -> None:
    with pytest.raises(ValueError, match="empty command"):
        run("  ")
    with pytest.raises(TypeError):
        run(42)  # type: ignore[arg-type]


def test_run_async_script_and_command_side_by_side(tmp_path: Path) -> None:
    script = py(tmp_path, "nap", "time.sleep(0.5); print('script done')")

    async def main() -> list[ScriptResult | ShellResult]:
        return list(await asyncio.gather(run_async(script), run_async("sleep 0.5; echo shell done")))

    start = time.monotonic()
    script_result, shell_result = asyncio.run(main())
    assert time.monotonic() - start < 2.5  # together, not 1 s + one after the other under load
    assert isinstance(script_result, ScriptResult) and script_result.stdout == "script done\n"
    assert isinstance(shell_result, ShellResult) and shell_result.stdout == "shell done\n"


def test_run_async_cancellation_kills_the_script(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = py(tmp_path, "long", f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(30)")

    async def main() -> None:
        task = asyncio.ensure_future(run_async(script))
        while not (pid_file.exists() and pid_file.read_text()):
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(main(), 20))
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(pid)


# -- pipe ------------------------------------------------------------------------------------------------------


def test_pipe_feeds_stdout_to_the_next_stdin() -> None:
    result = pipe(["echo hello", "tr a-z A-Z"])
    assert isinstance(result, PipeResult)
    assert result.success
    assert result.final_output == "HELLO\n"
    assert result.completed == 2
    assert [r.stdout for r in result.results] == ["hello\n", "HELLO\n"]
    assert result.commands == ["echo hello", "tr a-z A-Z"]
    json.dumps(result.to_dict())


def test_pipe_first_command_reads_empty_stdin() -> None:
    result = pipe(["cat", "wc -c"], timeout_per_command=10)
    assert result.final_output.strip() == "0"


def test_pipe_stops_on_error() -> None:
    result = pipe(["echo a", "cat; exit 3", "tr a-z A-Z"])
    assert not result.success
    assert result.completed == 2
    assert len(result.results) == 2
    assert result.results[1].returncode == 3
    assert result.final_output == "a\n"


def test_pipe_without_stop_on_error_feeds_a_failing_stdout_on() -> None:
    result = pipe(["echo data; exit 1", "tr a-z A-Z"], stop_on_error=False)
    assert not result.success
    assert result.completed == 2
    assert result.final_output == "DATA\n"
    assert [r.success for r in result.results] == [False, True]


def test_pipe_timeout_per_command() -> None:
    start = time.monotonic()
    result = pipe(["echo x", "sleep 5", "cat"], timeout_per_command=0.3)
    assert time.monotonic() - start < 3
    assert not result.success and result.completed == 2
    assert result.results[1].timed_out


def test_pipe_arguments() -> None:
    with pytest.raises(ValueError):
        pipe([])
    with pytest.raises(TypeError):
        pipe("echo x")


# -- batch -----------------------------------------------------------------------------------------------------


def test_batch_never_drops_a_target_and_counts_add_up(tmp_path: Path) -> None:
    good = py(tmp_path, "good", "print('good')")
    bad_sh = tmp_path / "bad.sh"
    bad_sh.write_text("exit 2\n")
    targets: list[Any] = [str(good), bad_sh, "echo shell", "exit 5", "missing_x.py", "", "sleep 60", 42]
    result = batch(targets, workers=8, timeout=3.0)  # room for a loaded machine; only "sleep 60" runs out
    assert result.total == len(targets) == len(result.results)
    assert result.passed + result.failed + result.timeout + result.skipped == result.total
    statuses = [r.status for r in result.results]
    assert statuses == ["passed", "failed", "passed", "failed", "error", "error", "timeout", "error"]
    assert (result.passed, result.failed, result.timeout) == (2, 5, 1)
    rows = result.results
    assert rows[0].stdout == "good\n"
    assert rows[2].name == rows[2].script == "echo shell" and rows[2].stdout == "shell\n"
    assert rows[3].exit_code == 5 and rows[3].error == "exited with status 5"
    assert rows[4].error == "script not found: missing_x.py"
    assert rows[5].error == "empty command"
    assert rows[7].error == "not a script or a command: 42"
    json.dumps(result.to_dict())


def test_batch_runs_in_parallel() -> None:
    start = time.monotonic()
    result = batch(["sleep 0.5"] * 4, workers=4)
    assert result.passed == 4
    assert time.monotonic() - start < 1.6


def test_batch_arguments() -> None:
    with pytest.raises(ValueError):
        batch(["true"], workers=0)
    assert batch([]).total == 0


# -- chain_scripts ---------------------------------------------------------------------------------------------


def recorder(directory: Path, name: str, exit_code: int = 0, extra: str = "") -> Path:
    """A script that writes the PREV_* variables it saw to ``<name>.seen`` and exits with ``exit_code``."""
    seen = directory / f"{name}.seen"
    return py(
        directory,
        name,
        f"""
        json.dump({{"success": os.environ.get("PREV_SUCCESS"), "result": os.environ.get("PREV_RESULT")}},
                  open({str(seen)!r}, "w"))
        print("output of {name}")
        {extra}
        sys.exit({exit_code})
        """,
    )


def seen(directory: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / f"{name}.seen").read_text())
    if data["result"] is not None:
        data["result"] = json.loads(data["result"])
    return data


def test_chain_passes_the_previous_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREV_RESULT", raising=False)
    monkeypatch.delenv("PREV_SUCCESS", raising=False)
    scripts = [recorder(tmp_path, "one"), recorder(tmp_path, "two")]
    result = chain_scripts(scripts)
    assert isinstance(result, ChainResult)
    assert result.success and result.completed == 2 and len(result) == 2
    assert [r.status for r in result] == ["passed", "passed"]
    assert seen(tmp_path, "one") == {"success": None, "result": None}
    second = seen(tmp_path, "two")
    assert second["success"] == "true"
    assert second["result"]["name"] == "one"
    assert second["result"]["status"] == "passed"
    assert second["result"]["stdout"] == "output of one\n"
    json.dumps(result.to_dict())


def test_chain_stops_on_error(tmp_path: Path) -> None:
    scripts = [recorder(tmp_path, "one"), recorder(tmp_path, "fails", exit_code=1), recorder(tmp_path, "after")]
    result = chain_scripts(scripts)
    assert not result.success
    assert [r.status for r in result] == ["passed", "failed", "skipped"]
    assert result[2].error == "not run: 'fails' failed and stop_on_error is on"
    assert result.completed == 2
    assert not (tmp_path / "after.seen").exists()
    assert seen(tmp_path, "fails")["success"] == "true"


def test_chain_without_stop_on_error_reports_the_failure_to_the_next(tmp_path: Path) -> None:
    scripts = [recorder(tmp_path, "fails", exit_code=1), recorder(tmp_path, "after")]
    result = chain_scripts(scripts, stop_on_error=False)
    assert [r.status for r in result] == ["failed", "passed"]
    after = seen(tmp_path, "after")
    assert after["success"] == "false"
    assert after["result"]["status"] == "failed" and after["result"]["exit_code"] == 1
    assert not result.success


def test_chain_without_pass_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREV_RESULT", raising=False)
    monkeypatch.delenv("PREV_SUCCESS", raising=False)
    result = chain_scripts([recorder(tmp_path, "one"), recorder(tmp_path, "two")], pass_results=False)
    assert result.success
    assert seen(tmp_path, "two") == {"success": None, "result": None}


def test_chain_with_huge_output_still_passes_a_result(tmp_path: Path) -> None:
    loud = recorder(tmp_path, "loud", extra="sys.stdout.write('x' * 400_000)")
    result = chain_scripts([loud, recorder(tmp_path, "next")])
    assert [r.status for r in result] == ["passed", "passed"], result[1].error
    prev = seen(tmp_path, "next")["result"]
    assert prev["truncated"] is True and prev["stdout"].endswith("xxx")


def test_chain_timeout_per_script(tmp_path: Path) -> None:
    slow = py(tmp_path, "slow", "time.sleep(10)")
    result = chain_scripts([slow, recorder(tmp_path, "next")], timeout_per_script=0.3)
    assert [r.status for r in result] == ["timeout", "skipped"]


# -- workflow / Steps ------------------------------------------------------------------------------------------


def timed(log: dict[str, tuple[float, float]], name: str, seconds: float, value: Any = None) -> Any:
    def action() -> Any:
        start = time.monotonic()
        time.sleep(seconds)
        log[name] = (start, time.monotonic())
        return value

    action.__name__ = name
    return action


def test_steps_run_in_sequence() -> None:
    log: dict[str, tuple[float, float]] = {}
    steps = workflow("seq").add("one", timed(log, "one", 0.3)).add("two", timed(log, "two", 0.0))
    results = steps.run_sync()
    assert all(r.success for r in results.values())
    assert log["two"][0] >= log["one"][1]
    assert steps.workflow.tasks["two"].dependencies == ("one",)
    assert steps.workflow.fail_fast is False


def test_results_pass_from_step_to_step() -> None:
    results = workflow("pass").add("a", lambda: 2).add("b", lambda x: x * 3).add("c", lambda b: b + 1).run_sync()
    assert [results[n].value for n in "abc"] == [2, 6, 7]
    assert list(results) == ["a", "b", "c"]
    assert isinstance(results["a"], StepResult)
    assert results["a"].attempts == 1 and results["a"].started_at is not None
    json.dumps(results["a"].to_dict())


def test_depends_on() -> None:
    steps = workflow("deps").add("a", lambda: 1).add("b", lambda: 2).add("c", lambda a: a, depends_on="a")
    steps.add("d", lambda: 4, depends_on=[])
    tasks = steps.workflow.tasks
    assert (tasks["b"].dependencies, tasks["c"].dependencies, tasks["d"].dependencies) == (("a",), ("a",), ())
    assert steps.run_sync()["c"].value == 1
    with pytest.raises(DependencyResolutionError) as info:
        steps.add("e", lambda: 5, depends_on=["bb"])
    assert info.value.missing == "bb"


def test_add_parallel_overlaps_and_the_next_step_depends_on_every_member() -> None:
    log: dict[str, tuple[float, float]] = {}
    steps = (
        workflow("par")
        .add("start", lambda: 1)
        .add_parallel([("p1", timed(log, "p1", 0.5, "v1")), ("p2", timed(log, "p2", 0.5, "v2"))])
        .add("join", lambda gathered: gathered)
    )
    assert set(steps.workflow.tasks) == {"start", "p1", "p2", "join"}  # no hidden join step
    assert steps.workflow.tasks["join"].dependencies == ("p1", "p2")
    assert steps.workflow.tasks["p1"].dependencies == steps.workflow.tasks["p2"].dependencies == ("start",)
    results = steps.run_sync()
    assert max(log["p1"][0], log["p2"][0]) < min(log["p1"][1], log["p2"][1])  # they overlapped
    assert results["join"].value == {"p1": "v1", "p2": "v2"}


def test_add_parallel_with_decorated_functions() -> None:
    @step(name="left")
    def one() -> int:
        return 1

    def right() -> int:
        return 2

    steps = workflow("mixed").add_parallel([one, right]).add("sum", lambda values: sum(values.values()))
    assert steps.workflow.tasks["sum"].dependencies == ("left", "right")
    assert steps.run_sync()["sum"].value == 3
    with pytest.raises(ValueError):
        steps.add_parallel([])


def test_failures_are_in_the_results_not_raised() -> None:
    def boom() -> None:
        raise ValueError("boom")

    steps = workflow("fail").add("bad", boom).add("after", lambda x: x).add("other", lambda: "ok", depends_on=[])

    async def main() -> dict[str, StepResult]:
        return await steps.run()

    results = asyncio.run(main())
    assert not results["bad"].success and results["bad"].error == "ValueError: boom"
    assert not results["after"].success and results["after"].skipped
    assert results["after"].error == "skipped: dependency 'bad' failed"
    assert results["other"].success and results["other"].value == "ok"


def test_run_sync_inside_a_loop_is_refused() -> None:
    steps = workflow("x").add("a", lambda: 1)

    async def main() -> None:
        steps.run_sync()

    with pytest.raises(RuntimeError, match=r"await steps\.run"):
        asyncio.run(main())


def test_command_string_steps_run_through_the_shell() -> None:
    results = workflow("cmd").add("up", "echo hi | tr a-z A-Z").add("bad", "exit 3", depends_on=[]).run_sync()
    assert results["up"].success
    assert isinstance(results["up"].value, ProcessResult) and results["up"].value.stdout == "HI\n"
    assert not results["bad"].success and results["bad"].error is not None and "status 3" in results["bad"].error


def test_step_timeout_and_retry() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("flaky")
        return "finally"

    async def slow() -> None:
        await asyncio.sleep(5)

    start = time.monotonic()
    steps = workflow("tr").add("slow", slow, timeout=0.3).add("flaky", flaky, depends_on=[], retry=3)
    results = steps.run_sync()
    assert time.monotonic() - start < 3
    assert not results["slow"].success and results["slow"].error == "task 'slow' timed out after 0.3 s"
    assert results["flaky"].success and results["flaky"].attempts == 3
    policy = steps.workflow.tasks["flaky"].retry_policy
    assert policy is not None and policy.max_attempts == 3 and policy.initial_delay == thin.STEP_RETRY_DELAY
    assert steps.workflow.tasks["slow"].retry_policy is None
    with pytest.raises(ValueError):
        workflow("v").add("a", flaky, retry=0)
    with pytest.raises(ValueError):
        workflow("v").add("a", flaky, timeout=0)


def test_step_decorator_options_are_honoured() -> None:
    @step(name="loader", timeout=0.5, retry=2)
    def load() -> str:
        return "loaded"

    @step
    def bare() -> str:
        return "bare"

    assert load() == "loaded"  # the function itself, unchanged
    assert not inspect.iscoroutinefunction(load)
    assert load.__orchestrate_step__ == thin.StepOptions(name="loader", timeout=0.5, retry=2)  # type: ignore[attr-defined]
    steps = workflow("dec").add(load).add(bare).add("renamed", load, timeout=2.0, retry=1)
    tasks = steps.workflow.tasks
    assert list(tasks) == ["loader", "bare", "renamed"]
    assert tasks["loader"].timeout == 0.5
    assert tasks["loader"].retry_policy is not None and tasks["loader"].retry_policy.max_attempts == 2
    assert tasks["renamed"].timeout == 2.0 and tasks["renamed"].retry_policy is None
    assert tasks["bare"].timeout is None and tasks["bare"].retry_policy is None
    assert steps.run_sync()["bare"].value == "bare"

    @step(name="async_step")
    async def coro() -> int:
        return 1

    assert inspect.iscoroutinefunction(coro)
    with pytest.raises(ValueError):
        step(retry=0)
    with pytest.raises(ValueError):
        step(timeout=-1)
    with pytest.raises(WorkflowError, match="needs a name"):
        workflow("lam").add(lambda: 1)


def test_condition() -> None:
    @condition(lambda results: results["measure"].value > 10)
    def big() -> str:
        return "big"

    @step(name="small")
    @condition(lambda results: results["measure"].value <= 10)
    def small_step() -> str:
        return "small"

    seen_types: list[type] = []

    def check(results: dict[str, TaskResult]) -> bool:
        seen_types.extend(type(r) for r in results.values())
        return True

    steps = (
        workflow("cond")
        .add("measure", lambda: 3)
        .add(big)
        .add("after_big", lambda x: x)
        .add(small_step, depends_on=["measure"])
        .add("checked", lambda: "yes", depends_on=["measure"], condition=check)
    )
    results = steps.run_sync()
    assert results["big"].skipped and not results["big"].success
    assert results["big"].error == "skipped: condition was false"
    assert results["after_big"].skipped and "big" in (results["after_big"].error or "")
    assert results["small"].success and results["small"].value == "small"
    assert results["checked"].success and seen_types and set(seen_types) == {TaskResult}
    with pytest.raises(TypeError):
        condition("not callable")  # type: ignore[arg-type]


def test_condition_and_step_in_either_order() -> None:
    def predicate(results: dict[str, TaskResult]) -> bool:
        return False

    @condition(predicate)
    @step(name="outer", retry=2)
    def f() -> None:
        return None

    options = f.__orchestrate_step__  # type: ignore[attr-defined]
    assert (options.name, options.retry, options.condition) == ("outer", 2, predicate)


# -- retry / timeout decorators --------------------------------------------------------------------------------


def test_retry_sync_keeps_its_kind_and_retries() -> None:
    calls: list[int] = []

    @retry(max_attempts=3, delay=0)
    def flaky(x: int) -> int:
        """Doc."""
        calls.append(x)
        if len(calls) < 3:
            raise OSError("again")
        return x * 2

    assert not inspect.iscoroutinefunction(flaky)
    assert flaky.__name__ == "flaky" and flaky.__doc__ == "Doc."
    assert flaky(5) == 10
    assert calls == [5, 5, 5]


def test_retry_gives_up_with_the_last_exception_and_backs_off() -> None:
    calls: list[float] = []

    @retry(max_attempts=3, delay=0.1, backoff=2.0)
    def always() -> None:
        calls.append(time.monotonic())
        raise ValueError(f"attempt {len(calls)}")

    with pytest.raises(ValueError, match="attempt 3"):
        always()
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.09 and calls[2] - calls[1] >= 0.19


def test_retry_only_retries_retry_on() -> None:
    calls: list[int] = []

    @retry(max_attempts=5, delay=0, retry_on=(ValueError,))
    def wrong() -> None:
        calls.append(1)
        raise TypeError("not retried")

    with pytest.raises(TypeError):
        wrong()
    assert calls == [1]


def test_retry_bare_decorator() -> None:
    @retry
    def fine() -> str:
        return "ok"

    assert fine() == "ok"
    assert not inspect.iscoroutinefunction(fine)
    assert fine.__wrapped__ is not None  # type: ignore[attr-defined]


def test_retry_async_keeps_its_kind() -> None:
    calls: list[int] = []

    @retry(max_attempts=2, delay=0.01)
    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise RuntimeError("once")
        return "async ok"

    assert inspect.iscoroutinefunction(flaky)
    assert asyncio.run(flaky()) == "async ok"
    assert len(calls) == 2


def test_retry_async_only_retries_retry_on() -> None:
    calls: list[str] = []

    @retry(max_attempts=4, delay=0, retry_on=TimeoutError)
    async def fails(kind: str) -> None:
        calls.append(kind)
        raise (TimeoutError if kind == "timeout" else ValueError)(kind)

    with pytest.raises(ValueError, match="other"):
        asyncio.run(fails("other"))
    assert calls == ["other"]
    with pytest.raises(TimeoutError, match="timeout"):
        asyncio.run(fails("timeout"))
    assert calls == ["other"] + ["timeout"] * 4


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"max_attempts": 1.5}, {"delay": -1}, {"backoff": 0.5}, {"retry_on": (42,)}]
)
def test_retry_validates_at_decoration_time(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        retry(**kwargs)


def test_timeout_sync_keeps_its_kind_and_expires() -> None:
    @timeout(0.3)
    def slow(seconds: float) -> str:
        time.sleep(seconds)
        return "done"

    assert not inspect.iscoroutinefunction(slow)
    assert slow.__name__ == "slow"
    assert slow(0) == "done"
    start = time.monotonic()
    with pytest.raises(OrchestratorTimeoutError) as info:
        slow(3)
    assert time.monotonic() - start < 2
    assert isinstance(info.value, TimeoutError)
    assert info.value.context["timeout"] == 0.3


def test_timeout_sync_propagates_exceptions_and_runs_in_a_thread() -> None:
    @timeout(5)
    def fails() -> None:
        raise KeyError("inner")

    @timeout(5)
    def where() -> str:
        return threading.current_thread().name

    with pytest.raises(KeyError, match="inner"):
        fails()
    assert where() != threading.current_thread().name


def test_timeout_async_keeps_its_kind_and_expires() -> None:
    @timeout(0.3)
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    @timeout(5)
    async def own_timeout() -> None:
        raise TimeoutError("from the function itself")

    assert inspect.iscoroutinefunction(slow)
    assert asyncio.run(slow(0)) == "done"
    start = time.monotonic()
    with pytest.raises(OrchestratorTimeoutError):
        asyncio.run(slow(5))
    assert time.monotonic() - start < 2
    with pytest.raises(TimeoutError) as info:
        asyncio.run(own_timeout())
    assert not isinstance(info.value, OrchestratorTimeoutError)


def test_timeout_sync_passes_any_keyword_through() -> None:
    @timeout(5)
    def named(seconds: float, fn: str, expired: bool) -> tuple[float, str, bool]:
        return seconds, fn, expired

    assert named(seconds=1.5, fn="f", expired=False) == (1.5, "f", False)


@pytest.mark.parametrize("seconds", [0, -1, math.nan, True, "1"])
def test_timeout_validates_at_decoration_time(seconds: Any) -> None:
    with pytest.raises(ValueError):
        timeout(seconds)


def test_retry_and_timeout_compose() -> None:
    calls: list[int] = []

    @retry(max_attempts=2, delay=0, retry_on=(TimeoutError,))
    @timeout(0.2)
    def first_slow() -> str:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(1)
        return "second try"

    assert first_slow() == "second try"
    assert len(calls) == 2


def test_decorated_functions_work_as_steps() -> None:
    calls: list[int] = []

    @retry(max_attempts=2, delay=0)
    @timeout(5)
    def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("first")
        return 7

    results = workflow("decorated").add(flaky).add("double", lambda x: x * 2).run_sync()
    assert results["double"].value == 14


def test_python_func_runs_in_another_process() -> None:
    result = thin.python_func(os.getpid)
    assert result.success and result.value != os.getpid()
