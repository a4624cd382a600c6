"""Tests of ``pytest_orchestrator.runners``: real scripts in ``tmp_path``, real subprocesses, no mocks."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
import subprocess
import sys
import threading
import time
from typing import Any

from proc_helpers import live_members
from proc_helpers import pid_alive
from proc_helpers import wait_for_file
import pytest
from script_helpers import py
from script_helpers import write

from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.errors import StepError
from pytest_orchestrator.runners import SKIP_EXIT_CODE
from pytest_orchestrator.runners import BatchRunner
from pytest_orchestrator.runners import ExecutionResult
from pytest_orchestrator.runners import ParallelRunner
from pytest_orchestrator.runners import ScriptResult
from pytest_orchestrator.runners import run_function
from pytest_orchestrator.runners import run_parallel
from pytest_orchestrator.runners import run_parallel_async
from pytest_orchestrator.runners import run_script
from pytest_orchestrator.runners import script_command


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")


# -- helpers ---------------------------------------------------------------------------------------------------


def sh(tmp_path: Path, name: str, body: str) -> Path:
    return write(tmp_path / f"{name}.sh", body)


def counts_add_up(result: ExecutionResult) -> None:
    assert result.passed + result.failed + result.timeout + result.skipped == result.total == len(result.results)


# -- run_script: kinds of scripts ------------------------------------------------------------------------------


def test_python_script_passes_with_args(tmp_path: Path) -> None:
    script = py(tmp_path, "hello", "print('args', sys.argv[1:]); sys.stderr.write('note\\n')")
    result = run_script(script, args=["a b", "c"])
    assert result.status == "passed" and result.success
    assert result.exit_code == 0
    assert result.stdout == "args ['a b', 'c']\n"
    assert result.stderr == "note\n"
    assert result.error is None
    assert result.name == "hello" and result.script == str(script)
    assert result.command == [sys.executable, str(script), "a b", "c"]
    assert result.attempts == 1 and result.attempt_errors == []
    assert result.end_time >= result.start_time and result.execution_time > 0
    data = result.to_dict()
    assert data["success"] is True and data["status"] == "passed"
    json.dumps(data)


def test_sh_script_runs_with_bash(tmp_path: Path) -> None:
    script = sh(tmp_path, "bashy", 'arr=(x y z); [[ ${#arr[@]} == 3 ]] && echo "bash ${arr[1]} $1"\n')
    result = run_script(script, args=["arg"])
    assert result.status == "passed", result.stderr
    assert result.stdout == "bash y arg\n"
    assert result.command[:2] == ["bash", str(script)]


def test_executable_without_suffix_by_bare_relative_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "tool", "#!/bin/sh\necho tool ran\n", executable=True)
    monkeypatch.chdir(tmp_path)
    result = run_script("tool")  # a bare name must not be looked up on PATH
    assert result.status == "passed", result.error
    assert result.stdout == "tool ran\n"
    assert result.command == [str(tmp_path / "tool")]


def test_relative_script_with_cwd_runs_the_file_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    py(tmp_path / "scripts", "where", "print(os.getcwd())")
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(tmp_path)
    result = run_script("scripts/where.py", cwd=workdir)
    assert result.status == "passed", result.stderr
    assert result.stdout.strip() == str(workdir)


def test_non_executable_without_suffix_is_an_error(tmp_path: Path) -> None:
    script = write(tmp_path / "tool", "#!/bin/sh\necho never\n")
    result = run_script(script)
    assert result.status == "error" and not result.success
    assert result.error is not None and "not executable" in result.error
    assert result.attempts == 0


def test_missing_script_is_an_error(tmp_path: Path) -> None:
    result = run_script(tmp_path / "nope.py", retry=3)
    assert result.status == "error"
    assert result.error == f"script not found: {tmp_path / 'nope.py'}"
    assert result.exit_code is None
    assert result.attempts == 0


def test_directory_is_an_error(tmp_path: Path) -> None:
    result = run_script(tmp_path)
    assert result.status == "error"
    assert result.error is not None and result.error.startswith("not a file")


def test_script_command() -> None:
    assert script_command(Path("a.py"), ["x"]) == [sys.executable, "a.py", "x"]
    assert script_command(Path("b.SH")) == ["bash", "b.SH"]
    assert script_command(Path("/bin/tool"), ["-v"]) == ["/bin/tool", "-v"]


# -- run_script: exit statuses ---------------------------------------------------------------------------------


def test_nonzero_exit_fails(tmp_path: Path) -> None:
    result = run_script(py(tmp_path, "bad", "print('out'); sys.exit(3)"))
    assert result.status == "failed"
    assert result.exit_code == 3
    assert result.error == "exited with status 3"
    assert result.stdout == "out\n"


def test_death_by_signal_fails(tmp_path: Path) -> None:
    result = run_script(sh(tmp_path, "killed", "kill -9 $$\n"))
    assert result.status == "failed"
    assert result.exit_code == -9
    assert result.error == "killed by signal 9"


def test_exit_77_is_skipped_with_last_stderr_line_as_reason(tmp_path: Path) -> None:
    script = sh(tmp_path, "skipper", "echo first >&2\necho 'no database here' >&2\necho '' >&2\nexit 77\n")
    result = run_script(script, retry=3)
    assert SKIP_EXIT_CODE == 77
    assert result.status == "skipped" and not result.success
    assert result.exit_code == 77
    assert result.skip_reason == "no database here"
    assert result.attempts == 1  # a skip is not retried


def test_exit_77_without_stderr_has_a_generic_reason(tmp_path: Path) -> None:
    result = run_script(sh(tmp_path, "quiet", "exit 77\n"))
    assert result.status == "skipped"
    assert result.skip_reason == "quiet exited with status 77"


def test_allowed_exit_codes(tmp_path: Path) -> None:
    one = sh(tmp_path, "one", "exit 1\n")
    assert run_script(one, allowed_exit_codes=(0, 1)).status == "passed"
    assert run_script(one).status == "failed"
    seventy_seven = sh(tmp_path, "sss", "exit 77\n")
    assert run_script(seventy_seven, allowed_exit_codes=[0, 77]).status == "passed"
    zero = sh(tmp_path, "zero", "exit 0\n")
    assert run_script(zero, allowed_exit_codes=[2]).status == "failed"


# -- run_script: config dict -----------------------------------------------------------------------------------


def test_config_supplies_args_and_env(tmp_path: Path) -> None:
    script = py(tmp_path, "cfg", "print(sys.argv[1:], os.environ['A'], os.environ['B'])")
    config = {"args": ["--from-config"], "env": {"A": "config", "B": "config"}}
    result = run_script(script, args=["--explicit"], env={"B": "explicit"}, config=config)
    assert result.status == "passed", result.stderr
    assert result.stdout == "['--from-config', '--explicit'] config explicit\n"


def test_config_supplies_timeout_and_allowed_exit_codes(tmp_path: Path) -> None:
    slow = sh(tmp_path, "slow", "sleep 10\n")
    start = time.monotonic()
    result = run_script(slow, timeout=60, config={"timeout": 0.3})
    assert result.status == "timeout"
    assert result.error == "timed out after 0.3 s"
    assert time.monotonic() - start < 5
    two = sh(tmp_path, "two", "exit 2\n")
    assert run_script(two, config={"allowed_exit_codes": [2]}).status == "passed"


def test_config_supplies_retry(tmp_path: Path) -> None:
    script = sh(tmp_path, "always", "exit 1\n")
    delays: list[float] = []
    result = run_script(script, config={"retry": {"max_attempts": 3, "initial_delay": 0.5}}, sleep=delays.append)
    assert result.status == "failed"
    assert result.attempts == 3
    assert delays == [0.5, 1.0]
    # an explicit policy wins over the config's
    result = run_script(script, retry=2, config={"retry": 5}, sleep=delays.append)
    assert result.attempts == 2


# -- run_script: retry -----------------------------------------------------------------------------------------


def flaky_script(tmp_path: Path, failures: int) -> tuple[Path, Path]:
    counter = tmp_path / "count"
    script = py(
        tmp_path,
        "flaky",
        f"""
        p = {str(counter)!r}
        n = int(open(p).read()) if os.path.exists(p) else 0
        open(p, 'w').write(str(n + 1))
        print('attempt', n + 1)
        sys.exit(1 if n < {failures} else 0)
        """,
    )
    return script, counter


def test_retry_of_a_flaky_script(tmp_path: Path) -> None:
    script, counter = flaky_script(tmp_path, failures=2)
    delays: list[float] = []
    result = run_script(script, retry=RetryPolicy(max_attempts=4, initial_delay=0.01), sleep=delays.append)
    assert result.status == "passed"
    assert result.attempts == 3
    assert counter.read_text() == "3"
    assert result.attempt_errors == ["exited with status 1", "exited with status 1"]
    assert result.stdout == "attempt 3\n"  # the last attempt's output
    assert delays == [0.01, 0.02]


def test_retry_exhausted_keeps_the_last_failure(tmp_path: Path) -> None:
    script, counter = flaky_script(tmp_path, failures=10)
    result = run_script(script, retry=2, sleep=lambda s: None)
    assert result.status == "failed"
    assert result.attempts == 2
    assert counter.read_text() == "2"
    assert result.attempt_errors == ["exited with status 1"]


def test_timeout_is_retried(tmp_path: Path) -> None:
    script = sh(tmp_path, "slow", "sleep 10\n")
    result = run_script(script, timeout=0.2, retry=2, sleep=lambda s: None)
    assert result.status == "timeout"
    assert result.attempts == 2
    assert result.attempt_errors == ["timed out after 0.2 s"]


def test_retry_on_is_honoured(tmp_path: Path) -> None:
    """A failed exit is a StepError, a timeout an OrchestratorTimeoutError (a TimeoutError): retry_on picks."""
    only_timeouts = RetryPolicy(max_attempts=3, initial_delay=0, retry_on=(TimeoutError,))
    script, counter = flaky_script(tmp_path, failures=10)
    failed = run_script(script, retry=only_timeouts)
    assert (failed.status, failed.attempts, failed.attempt_errors) == ("failed", 1, [])
    assert counter.read_text() == "1"
    slow = sh(tmp_path, "slow", "sleep 10\n")
    timed_out = run_script(slow, timeout=0.2, retry=only_timeouts)
    assert (timed_out.status, timed_out.attempts) == ("timeout", 3)
    assert timed_out.attempt_errors == ["timed out after 0.2 s"] * 2
    only_failures = RetryPolicy(max_attempts=3, initial_delay=0, retry_on=(StepError,))
    assert run_script(slow, timeout=0.2, retry=only_failures).attempts == 1
    counter.unlink()
    assert run_script(script, retry=only_failures).attempts == 3


def test_cancelled_run_is_not_retried(tmp_path: Path) -> None:
    script = sh(tmp_path, "long", "sleep 30\n")
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    result = run_script(script, retry=RetryPolicy(max_attempts=5, initial_delay=0), cancel_event=cancel)
    assert (result.status, result.error, result.attempts) == ("skipped", "cancelled", 1)


# -- run_script: timeout and cancellation ----------------------------------------------------------------------


def test_timeout_kills_the_group_including_a_term_ignoring_grandchild(tmp_path: Path) -> None:
    pgid_file, ready, child_file = tmp_path / "pgid", tmp_path / "ready", tmp_path / "child"
    script = sh(
        tmp_path,
        "stubborn",
        f"""\
        echo $$ > {pgid_file}
        (trap '' TERM; echo $BASHPID > {child_file}; echo x > {ready}; exec sleep 60) &
        wait
        """,
    )
    start = time.monotonic()
    result = run_script(script, timeout=1.0)
    elapsed = time.monotonic() - start
    assert ready.exists()
    assert result.status == "timeout"
    assert result.error == "timed out after 1 s"
    assert elapsed < 10
    pgid = int(pgid_file.read_text())
    assert live_members(pgid) == []
    assert not pid_alive(int(child_file.read_text()))


def test_cancel_event_kills_the_script(tmp_path: Path) -> None:
    started = tmp_path / "started"
    script = sh(tmp_path, "long", f"echo x > {started}\nsleep 30\n")
    event = threading.Event()
    out: list[ScriptResult] = []
    thread = threading.Thread(target=lambda: out.append(run_script(script, cancel_event=event)))
    thread.start()
    wait_for_file(started)
    event.set()
    thread.join(10)
    assert not thread.is_alive()
    assert out[0].status == "skipped"
    assert out[0].error == "cancelled"


# -- run_function ----------------------------------------------------------------------------------------------


def add(a: int, b: int = 0) -> int:
    return a + b


def explode(message: str) -> None:
    raise ValueError(message)


def unpicklable() -> Any:
    return threading.Lock()


def sleeper(seconds: float) -> None:
    time.sleep(seconds)


def hard_exit() -> None:
    os._exit(3)


def spawn_and_sleep(pid_file: str) -> None:
    child = subprocess.Popen(["sleep", "60"])
    Path(pid_file).write_text(str(child.pid))
    time.sleep(60)


def test_run_function_value() -> None:
    result = run_function(add, (2,), {"b": 40})
    assert result.status == "passed" and result.success
    assert result.value == 42
    assert result.name == "add"
    assert result.exit_code == 0
    assert result.to_dict()["value"] == 42


def test_run_function_exception_type_and_traceback() -> None:
    result = run_function(explode, ("bad input",))
    assert result.status == "failed"
    assert result.error == "ValueError: bad input"
    assert result.traceback is not None
    assert "explode" in result.traceback and "ValueError: bad input" in result.traceback


def test_run_function_unpicklable_result_is_an_error() -> None:
    result = run_function(unpicklable)
    assert result.status == "error"
    assert result.error is not None and "cannot be pickled" in result.error and "lock" in result.error


def test_run_function_process_death_is_an_error() -> None:
    result = run_function(hard_exit)
    assert result.status == "error"
    assert result.error is not None and "died" in result.error
    assert result.exit_code == 3


def test_run_function_timeout_within_a_second_of_expiry() -> None:
    start = time.monotonic()
    result = run_function(sleeper, (30,), timeout=0.5)
    elapsed = time.monotonic() - start
    assert result.status == "timeout"
    assert result.error == "timed out after 0.5 s"
    assert 0.5 <= elapsed < 0.5 + 1.5


def test_run_function_timeout_kills_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    result = run_function(spawn_and_sleep, (str(pid_file),), timeout=1.0)
    assert result.status == "timeout"
    pid = int(wait_for_file(pid_file))
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(pid)


def test_run_function_to_dict_reprs_a_non_json_value() -> None:
    result = run_function(set, ([1],))
    assert result.value == {1}
    assert result.to_dict()["value"] == "{1}"


# -- ParallelRunner --------------------------------------------------------------------------------------------


def sleepers(tmp_path: Path, n: int, seconds: float) -> list[Path]:
    return [sh(tmp_path, f"s{i}", f"sleep {seconds}\n") for i in range(n)]


def test_parallel_runner_runs_concurrently_up_to_max_workers(tmp_path: Path) -> None:
    scripts = sleepers(tmp_path, 8, 0.3)
    start = time.monotonic()
    result = ParallelRunner(max_workers=4).run_scripts(scripts)
    elapsed = time.monotonic() - start
    assert result.passed == 8 and result.success
    assert 0.6 <= elapsed < 1.2  # two rounds of four, not eight at once and not one by one
    assert result.execution_time <= elapsed


def test_parallel_runner_starts_in_the_order_given(tmp_path: Path) -> None:
    scripts = [sh(tmp_path, name, "true\n") for name in ("c", "a", "d", "b")]
    calls: list[tuple[str, str]] = []
    result = ParallelRunner(max_workers=1, progress_callback=lambda n, s, d: calls.append((n, s))).run_scripts(scripts)
    assert [n for n, s in calls if s == "running"] == ["c", "a", "d", "b"]
    assert [r.name for r in result.results] == ["c", "a", "d", "b"]


def test_parallel_runner_results_keep_the_order_given(tmp_path: Path) -> None:
    scripts = [sh(tmp_path, f"t{i}", f"sleep 0.{5 - i}\n") for i in range(5)]
    result = run_parallel(scripts, max_workers=5)
    assert [r.name for r in result.results] == [f"t{i}" for i in range(5)]


def test_counts_add_up_over_every_status(tmp_path: Path) -> None:
    scripts = [
        sh(tmp_path, "ok", "true\n"),
        sh(tmp_path, "bad", "exit 1\n"),
        sh(tmp_path, "skip", "exit 77\n"),
        sh(tmp_path, "slow", "sleep 10\n"),
        tmp_path / "missing.py",
    ]
    result = run_parallel(scripts, max_workers=5, timeout=0.5)
    counts_add_up(result)
    assert (result.total, result.passed, result.failed, result.skipped, result.timeout) == (5, 1, 2, 1, 1)
    assert [r.status for r in result.results] == ["passed", "failed", "skipped", "timeout", "error"]
    assert not result.success
    data = result.to_dict()
    assert data["total"] == 5 and len(data["results"]) == 5 and data["success"] is False
    json.dumps(data)


def test_fail_fast_kills_running_and_skips_the_rest(tmp_path: Path) -> None:
    scripts = [
        sh(tmp_path, "fails", "sleep 0.3; exit 1\n"),
        sh(tmp_path, "long", "sleep 30\n"),
        sh(tmp_path, "later1", "true\n"),
        sh(tmp_path, "later2", "true\n"),
    ]
    start = time.monotonic()
    result = ParallelRunner(max_workers=2, fail_fast=True).run_scripts(scripts)
    assert time.monotonic() - start < 10
    counts_add_up(result)
    by_name = {r.name: r for r in result.results}
    assert by_name["fails"].status == "failed"
    assert by_name["long"].status == "skipped"
    assert by_name["long"].error == "killed: 'fails' failed and fail_fast is on"
    for name in ("later1", "later2"):
        assert by_name[name].status == "skipped"
        assert by_name[name].error == "not started: 'fails' failed and fail_fast is on"
    assert (result.failed, result.skipped) == (1, 3)


def test_without_fail_fast_everything_runs(tmp_path: Path) -> None:
    scripts = [sh(tmp_path, "fails", "exit 1\n"), sh(tmp_path, "a", "true\n"), sh(tmp_path, "b", "true\n")]
    result = ParallelRunner(max_workers=1).run_scripts(scripts)
    counts_add_up(result)
    assert (result.failed, result.passed) == (1, 2)


def test_progress_callback_is_called_and_its_errors_ignored(tmp_path: Path) -> None:
    scripts = [sh(tmp_path, "ok", "true\n"), sh(tmp_path, "bad", "exit 2\n")]
    calls: list[tuple[str, str, dict[str, Any]]] = []

    def callback(name: str, status: str, details: dict[str, Any]) -> None:
        calls.append((name, status, details))
        raise RuntimeError("a broken callback must not break the run")

    result = run_parallel(scripts, max_workers=2, progress_callback=callback)
    assert (result.passed, result.failed) == (1, 1)
    assert sorted((n, s) for n, s, _ in calls) == [
        ("bad", "failed"),
        ("bad", "running"),
        ("ok", "passed"),
        ("ok", "running"),
    ]
    final = {n: d for n, s, d in calls if s != "running"}
    assert final["bad"]["error"] == "exited with status 2"
    assert "execution_time" in final["ok"]


def test_max_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        ParallelRunner(max_workers=0)


def test_configs_per_script(tmp_path: Path) -> None:
    a = sh(tmp_path, "a", 'echo "$1 $X"\n')
    b = sh(tmp_path, "b", "exit 3\n")
    configs: dict[str, dict[str, Any]] = {
        str(a): {"args": ["hi"], "env": {"X": "y"}},
        str(b): {"allowed_exit_codes": [3]},
    }
    result = ParallelRunner(max_workers=2).run_scripts([a, b], configs=configs)
    assert result.passed == 2
    assert result.results[0].stdout == "hi y\n"


def test_empty_script_list(tmp_path: Path) -> None:
    result = run_parallel([])
    assert (result.total, result.success) == (0, True)


# -- BatchRunner -----------------------------------------------------------------------------------------------


def test_batch_runner_stops_on_a_failed_batch(tmp_path: Path) -> None:
    ok, bad = sh(tmp_path, "ok", "true\n"), sh(tmp_path, "bad", "exit 1\n")
    marker = tmp_path / "second-ran"
    second = sh(tmp_path, "second", f"touch {marker}\n")
    results = BatchRunner(max_workers=2).run_batches([[ok, bad], [second]])
    assert len(results) == 1
    assert not results[0].success
    assert not marker.exists()


def test_batch_runner_goes_on_without_stop_on_batch_failure(tmp_path: Path) -> None:
    ok, bad = sh(tmp_path, "ok", "true\n"), sh(tmp_path, "bad", "exit 1\n")
    results = BatchRunner(max_workers=2).run_batches([[bad], [ok], [ok, ok]], stop_on_batch_failure=False)
    assert [r.total for r in results] == [1, 1, 2]
    assert [r.success for r in results] == [False, True, True]


def test_batch_runner_passes_run_options(tmp_path: Path) -> None:
    script = sh(tmp_path, "env", 'echo "$BATCH_VAR"\n')
    results = BatchRunner().run_batches([[script], [script]], env={"BATCH_VAR": "set"})
    assert [r.results[0].stdout for r in results] == ["set\n", "set\n"]


# -- run_parallel(_async) --------------------------------------------------------------------------------------


def env_and_cwd_script(tmp_path: Path) -> Path:
    return py(tmp_path, "envcwd", "print(os.environ['PO_VAR'], os.getcwd(), sys.argv[1:])")


def test_run_parallel_with_env_cwd_and_args(tmp_path: Path) -> None:
    script = env_and_cwd_script(tmp_path)
    workdir = tmp_path / "wd"
    workdir.mkdir()
    result = run_parallel([script, script], env={"PO_VAR": "v1"}, cwd=workdir, args=["--x"])
    assert result.passed == 2, [r.stderr for r in result.results]
    assert result.results[0].stdout == f"v1 {workdir} ['--x']\n"


def test_run_parallel_async_with_env_and_cwd(tmp_path: Path) -> None:
    script = env_and_cwd_script(tmp_path)
    workdir = tmp_path / "wd"
    workdir.mkdir()

    async def main() -> ExecutionResult:
        return await run_parallel_async([script], env={"PO_VAR": "v2"}, cwd=workdir)

    result = asyncio.run(main())
    assert result.passed == 1, result.results[0].stderr
    assert result.results[0].stdout == f"v2 {workdir} []\n"


def test_run_parallel_async_does_not_block_the_loop(tmp_path: Path) -> None:
    scripts = sleepers(tmp_path, 2, 0.5)
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(5):
            ticks.append(time.monotonic())
            await asyncio.sleep(0.05)

    async def main() -> ExecutionResult:
        result, _ = await asyncio.gather(run_parallel_async(scripts, max_workers=2), ticker())
        return result

    result = asyncio.run(main())
    assert result.passed == 2
    assert len(ticks) == 5 and ticks[-1] - ticks[0] < 0.45  # the ticker ran while the scripts slept
