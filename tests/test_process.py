"""Tests of ``pytest_orchestrator.execution.process``: real subprocesses, no mocks."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import threading
import time

from proc_helpers import live_members
from proc_helpers import wait_for_file
import pytest

from pytest_orchestrator.execution import process as process_mod
from pytest_orchestrator.execution.process import DEFAULT_GRACE
from pytest_orchestrator.execution.process import DEFAULT_MAX_OUTPUT
from pytest_orchestrator.execution.process import ProcessResult
from pytest_orchestrator.execution.process import group_alive
from pytest_orchestrator.execution.process import kill_process_group
from pytest_orchestrator.execution.process import run_process
from pytest_orchestrator.execution.process import run_process_async


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")

PY = sys.executable
REPO_ROOT = Path(__file__).resolve().parents[1]


# -- helpers ---------------------------------------------------------------------------------------------------


def stubborn_script(tmp_path: Path) -> str:
    """A bash script whose backgrounded child ignores SIGTERM (and holds stdout open).

    Writes its pid (== pgid) to ``pgid`` and creates ``ready`` once the TERM-ignoring grandchild is set up.
    """
    pgid_file = tmp_path / "pgid"
    ready = tmp_path / "ready"
    return f"echo $$ > {pgid_file}; (trap '' TERM; echo x > {ready}; exec sleep 60) & wait"


# -- argument handling -----------------------------------------------------------------------------------------


def test_constants() -> None:
    assert DEFAULT_MAX_OUTPUT == 1_000_000
    assert DEFAULT_GRACE == 2.0


def test_argv_list_never_goes_through_a_shell() -> None:
    result = run_process(["echo", "$HOME; ls", "a b", "*", "`id`"])
    assert result.ok, result
    assert result.stdout == "$HOME; ls a b * `id`\n"
    assert result.args == ["echo", "$HOME; ls", "a b", "*", "`id`"]
    assert result.returncode == 0
    assert result.error is None
    assert result.pid is not None


def test_argv_list_ignores_shell_flag() -> None:
    result = run_process(["echo", "$((1+2))"], shell=True)
    assert result.stdout == "$((1+2))\n"


def test_shell_string() -> None:
    result = run_process("echo $((1+2)) | tr 3 x && echo second >&2", shell=True)
    assert result.ok, result
    assert result.stdout == "x\n"
    assert result.stderr == "second\n"
    assert result.args == "echo $((1+2)) | tr 3 x && echo second >&2"


def test_string_without_shell_is_shlex_split() -> None:
    result = run_process(f"{PY} -c 'import sys; print(sys.argv[1:])' 'a b' \"c;d\" $HOME")
    assert result.ok, result
    assert result.stdout == "['a b', 'c;d', '$HOME']\n"
    assert result.args == [PY, "-c", "import sys; print(sys.argv[1:])", "a b", "c;d", "$HOME"]


def test_unparsable_string_does_not_raise() -> None:
    result = run_process("echo 'unbalanced")
    assert result.returncode is None
    assert not result.ok
    assert result.error is not None and "cannot parse command" in result.error


def test_empty_command_does_not_raise() -> None:
    result = run_process([])
    assert result.returncode is None
    assert result.error is not None and "empty command" in result.error


# -- environment, cwd, stdin -----------------------------------------------------------------------------------


def test_env_is_merged_over_os_environ() -> None:
    result = run_process("echo $PO_TEST_VAR; command -v sh", shell=True, env={"PO_TEST_VAR": "hello"})
    assert result.ok, result
    lines = result.stdout.splitlines()
    assert lines[0] == "hello"
    assert lines[1].endswith("/sh")  # PATH still inherited


def test_env_override_and_inherit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PO_TEST_INHERITED", "from-parent")
    code = "import os; print(os.environ.get('PO_TEST_INHERITED'), os.environ.get('PO_TEST_OVERRIDE'))"
    monkeypatch.setenv("PO_TEST_OVERRIDE", "old")
    assert run_process([PY, "-c", code]).stdout == "from-parent old\n"
    assert run_process([PY, "-c", code], env={"PO_TEST_OVERRIDE": "new"}).stdout == "from-parent new\n"
    assert os.environ["PO_TEST_OVERRIDE"] == "old"


def test_cwd(tmp_path: Path) -> None:
    result = run_process([PY, "-c", "import os; print(os.getcwd())"], cwd=tmp_path)
    assert result.ok, result
    assert os.path.realpath(result.stdout.strip()) == os.path.realpath(tmp_path)


def test_input_str_and_bytes() -> None:
    echo = [PY, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())"]
    assert run_process(echo, input="héllo\nworld").stdout == "HÉLLO\nWORLD"
    assert run_process(echo, input=b"bytes").stdout == "BYTES"
    assert run_process(echo, input="").stdout == ""


def test_large_input_and_output_do_not_deadlock() -> None:
    data = "0123456789abcdef" * 131072  # 2 MiB
    code = "import sys; d = sys.stdin.read(); sys.stderr.write(d); sys.stdout.write(d)"
    result = run_process([PY, "-c", code], input=data, max_output=len(data), timeout=20)
    assert result.ok, result.error
    assert result.stdout == data
    assert result.stderr == data
    assert not result.truncated


def test_stdin_is_closed_without_input() -> None:
    start = time.monotonic()
    result = run_process([PY, "-c", "import sys; print(repr(sys.stdin.read()))"], timeout=10)
    assert result.ok, result
    assert result.stdout == "''\n"
    assert time.monotonic() - start < 5


def test_runs_in_its_own_session() -> None:
    code = "import os; print(os.getpid(), os.getpgid(0), os.getsid(0))"
    result = run_process([PY, "-c", code])
    pid, pgid, sid = map(int, result.stdout.split())
    assert pid == pgid == sid == result.pid
    assert pgid != os.getpgid(0)


# -- results ---------------------------------------------------------------------------------------------------


def test_nonzero_exit() -> None:
    result = run_process([PY, "-c", "import sys; print('out'); sys.exit(3)"])
    assert result.returncode == 3
    assert not result.ok
    assert result.error is None
    assert not result.timed_out and not result.cancelled
    assert result.stdout == "out\n"
    assert result.duration >= 0
    assert result.end_time >= result.start_time


def test_death_by_signal_is_negative() -> None:
    result = run_process([PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert result.returncode == -signal.SIGKILL
    assert not result.ok


def test_truncation_keeps_the_tail() -> None:
    code = "import sys; sys.stdout.write('a' * 190000 + 'b' * 9990 + 'END'); sys.stderr.write('small')"
    result = run_process([PY, "-c", code], max_output=10_000)
    assert result.ok, result
    assert len(result.stdout) == 10_000
    assert result.stdout.endswith("b" * 9990 + "END")
    assert result.stdout.startswith("aaaaaaa")
    assert result.stdout_truncated
    assert not result.stderr_truncated
    assert result.stderr == "small"
    assert result.truncated


def test_truncation_on_stderr_only() -> None:
    code = "import sys; sys.stderr.write('x' * 200_000 + 'TAIL')"
    result = run_process([PY, "-c", code], max_output=10_000)
    assert result.stderr_truncated and not result.stdout_truncated
    assert result.stderr.endswith("TAIL") and len(result.stderr) == 10_000


def test_invalid_utf8_is_replaced() -> None:
    result = run_process([PY, "-c", "import sys; sys.stdout.buffer.write(b'ok\\xff\\xfeend')"])
    assert result.ok
    assert result.stdout == "ok\ufffd\ufffdend"


def test_cannot_start_missing_program() -> None:
    result = run_process(["nosuchprog-po-test", "--x"])
    assert result.returncode is None
    assert not result.ok
    assert result.error == "cannot start 'nosuchprog-po-test': No such file or directory"
    assert result.pid is None
    assert result.stdout == result.stderr == ""


def test_cannot_start_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = run_process([str(script)])
    assert result.returncode is None
    assert result.error == f"cannot start {str(script)!r}: Permission denied"


def test_cannot_start_missing_cwd(tmp_path: Path) -> None:
    result = run_process(["echo", "x"], cwd=tmp_path / "missing")
    assert result.returncode is None
    assert result.error is not None and result.error.startswith("cannot start 'echo':")


def test_result_helpers() -> None:
    result = run_process([PY, "-c", "import sys; sys.stderr.write('\\n'.join(map(str, range(30))) + '\\n')"])
    assert result.tail() == "\n".join(str(i) for i in range(10, 30))
    assert result.tail("stderr", 2) == "28\n29"
    assert result.tail("stdout") == ""
    assert result.tail(lines=0) == ""
    with pytest.raises(ValueError):
        result.tail("stdin")
    data = result.to_dict()
    assert data["ok"] is True and data["truncated"] is False
    assert data["returncode"] == 0 and data["pid"] == result.pid
    assert set(data) >= {"args", "stdout", "stderr", "start_time", "end_time", "duration", "error"}


def test_ok_property() -> None:
    base = ProcessResult(["x"], 0, "", "", 0.0, 0.0, 0.0)
    assert base.ok
    assert not ProcessResult(["x"], 0, "", "", 0.0, 0.0, 0.0, timed_out=True).ok
    assert not ProcessResult(["x"], 0, "", "", 0.0, 0.0, 0.0, cancelled=True).ok
    assert not ProcessResult(["x"], 0, "", "", 0.0, 0.0, 0.0, error="boom").ok
    assert not ProcessResult(["x"], None, "", "", 0.0, 0.0, 0.0).ok


# -- timeouts and killing --------------------------------------------------------------------------------------


def test_timeout_kills_group_including_term_ignoring_grandchild(tmp_path: Path) -> None:
    timeout, grace = 0.5, 1.0
    start = time.monotonic()
    result = run_process(["bash", "-c", stubborn_script(tmp_path)], timeout=timeout, grace=grace)
    elapsed = time.monotonic() - start
    assert (tmp_path / "ready").exists()
    assert result.timed_out
    assert not result.ok
    assert result.error == "timed out after 0.5 s"
    assert result.returncode is not None and result.returncode < 0
    assert elapsed < timeout + grace + 1.5
    assert elapsed >= timeout + grace - 0.1  # the grandchild really ignored TERM
    pgid = int((tmp_path / "pgid").read_text())
    assert pgid == result.pid
    assert live_members(pgid) == []
    assert not group_alive(pgid)


def test_timeout_returns_fast_when_group_dies_on_term() -> None:
    start = time.monotonic()
    result = run_process("sleep 30 & sleep 30; wait", shell=True, timeout=0.3, grace=DEFAULT_GRACE)
    elapsed = time.monotonic() - start
    assert result.timed_out
    assert result.returncode == -signal.SIGTERM
    assert elapsed < 0.3 + 0.45
    assert result.pid is not None and live_members(result.pid) == []


def test_timeout_keeps_partial_output() -> None:
    code = "import sys, time; print('before', flush=True); time.sleep(30)"
    result = run_process([PY, "-c", code], timeout=1.0)
    assert result.timed_out
    assert result.stdout == "before\n"


def test_cancel_event_kills_group() -> None:
    event = threading.Event()
    timer = threading.Timer(0.3, event.set)
    timer.start()
    start = time.monotonic()
    try:
        result = run_process("sleep 30 & sleep 30", shell=True, cancel_event=event)
    finally:
        timer.cancel()
    elapsed = time.monotonic() - start
    assert result.cancelled and not result.timed_out
    assert result.error == "cancelled"
    assert not result.ok
    assert elapsed < 1.5
    assert result.pid is not None and live_members(result.pid) == []


def test_cancel_event_already_set() -> None:
    event = threading.Event()
    event.set()
    result = run_process(["sleep", "30"], cancel_event=event)
    assert result.cancelled
    assert result.duration < 1.5


def test_kill_process_group_and_group_alive() -> None:
    proc = subprocess.Popen(["bash", "-c", "sleep 30 & sleep 30"], start_new_session=True)
    try:
        assert group_alive(proc.pid)
        start = time.monotonic()
        kill_process_group(proc.pid, grace=1.0)
        assert time.monotonic() - start < 0.5
        assert not group_alive(proc.pid)
        assert live_members(proc.pid) == []
    finally:
        proc.wait(5)
    kill_process_group(proc.pid, grace=1.0)  # a group that no longer exists: no error
    with pytest.raises(ValueError):
        kill_process_group(0)


def test_group_alive_ignores_zombies() -> None:
    proc = subprocess.Popen([PY, "-c", "pass"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # Exited but not reaped: the group's only member is a zombie.
        with open(f"/proc/{proc.pid}/stat", "rb") as fh:
            assert process_mod._parse_stat(fh.read()) == ("Z", proc.pid)
        os.killpg(proc.pid, 0)  # the kernel still counts it ...
        assert not group_alive(proc.pid)  # ... but we do not
    finally:
        proc.wait()
    assert not group_alive(proc.pid)


def test_parse_stat() -> None:
    with open("/proc/self/stat", "rb") as fh:
        state, pgid = process_mod._parse_stat(fh.read()) or ("?", -1)
    assert state in "RS"
    assert pgid == os.getpgid(0)
    assert process_mod._parse_stat(b"42 (we (ird) na)me) S 1 77 77 0 -1") == ("S", 77)
    assert process_mod._parse_stat(b"garbage") is None
    assert group_alive(os.getpgid(0))


def test_keyboard_interrupt_kills_group_and_reraises(tmp_path: Path) -> None:
    driver = textwrap.dedent(
        f"""
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from pytest_orchestrator.execution.process import run_process
        run_process(["bash", "-c", {stubborn_script(tmp_path)!r}], grace=0.5)
        print("not interrupted")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([PY, "-c", driver], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO_ROOT)
    try:
        pgid = int(wait_for_file(tmp_path / "pgid", timeout=5.0))
        wait_for_file(tmp_path / "ready", timeout=5.0)
        assert live_members(pgid)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"KeyboardInterrupt" in stderr, stderr
    assert b"not interrupted" not in stdout
    assert proc.returncode in (-signal.SIGINT, 1, 130)
    assert live_members(pgid) == []


# -- async -----------------------------------------------------------------------------------------------------


def test_async_basic() -> None:
    result = asyncio.run(run_process_async([PY, "-c", "print('hi')"], timeout=10))
    assert result.ok, result
    assert result.stdout == "hi\n"


def test_async_cannot_start_and_timeout() -> None:
    async def main() -> tuple[ProcessResult, ProcessResult]:
        return (
            await run_process_async(["nosuchprog-po-test"]),
            await run_process_async("sleep 30", shell=True, timeout=0.2),
        )

    missing, slow = asyncio.run(main())
    assert missing.error == "cannot start 'nosuchprog-po-test': No such file or directory"
    assert slow.timed_out and slow.error == "timed out after 0.2 s"


def test_async_many_concurrent_processes() -> None:
    async def main() -> list[ProcessResult]:
        return await asyncio.gather(*(run_process_async(["sleep", "0.3"]) for _ in range(20)))

    start = time.monotonic()
    results = asyncio.run(main())
    assert time.monotonic() - start < 2.0
    assert len(results) == 20
    assert all(r.ok for r in results)


def test_async_does_not_block_the_loop() -> None:
    async def main() -> int:
        ticks = 0
        task = asyncio.ensure_future(run_process_async(["sleep", "0.5"]))
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.02)
        assert (await task).ok
        return ticks

    assert asyncio.run(main()) >= 10


def test_async_cancellation_kills_group(tmp_path: Path) -> None:
    async def main() -> float:
        task = asyncio.ensure_future(run_process_async(["bash", "-c", stubborn_script(tmp_path)], grace=0.5))
        deadline = time.monotonic() + 5
        while not (tmp_path / "ready").exists():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - start

    elapsed = asyncio.run(main())
    assert elapsed < 0.5 + 1.5
    pgid = int((tmp_path / "pgid").read_text())
    assert live_members(pgid) == []


def test_async_wait_for_timeout_kills_group() -> None:
    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(run_process_async("sleep 30", shell=True), timeout=0.2)

    before = {t.ident for t in threading.enumerate()}
    asyncio.run(main())
    # The supervising thread ended, i.e. the group was killed and reaped.
    deadline = time.monotonic() + 3
    while any(t.name == "pytest-orchestrator-process" and t.ident not in before for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
