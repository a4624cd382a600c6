"""Workflows on a Dask cluster (``DaskExecutor``, ``executor="dask://HOST:PORT"``), on real clusters.

One in-process ``LocalCluster`` (with a ``GPU`` resource) and one with two worker processes are shared by the module;
the worker-loss test starts a cluster of its own (a worker is killed there), and the address test starts a
``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import functools
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest


distributed = pytest.importorskip("distributed")

import cloudpickle  # noqa: E402
import dask  # noqa: E402

from pytest_orchestrator import ConcurrencyError  # noqa: E402
from pytest_orchestrator import RetryPolicy  # noqa: E402
from pytest_orchestrator import TaskFailedError  # noqa: E402
from pytest_orchestrator import Workflow  # noqa: E402
from pytest_orchestrator import WorkflowError  # noqa: E402
from pytest_orchestrator.execution import dask as dask_execution  # noqa: E402
from pytest_orchestrator.execution.dask import DaskExecutor  # noqa: E402
from pytest_orchestrator.execution.dask import scheduler_address  # noqa: E402
from pytest_orchestrator.execution.executors import check_executor  # noqa: E402
from pytest_orchestrator.execution.executors import open_executor  # noqa: E402
from pytest_orchestrator.runners import run_function  # noqa: E402


# worker processes cannot import this test module: its functions travel by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])
# distributed's sampling profiler can race with short tasks in an in-process worker (a KeyError in its thread)
dask.config.set({"distributed.worker.profile.enabled": False})


def run(wf: Workflow, limit: float = 60.0) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(wf.run(), limit)

    return asyncio.run(main())


def run_coro(coro: Any, limit: float = 60.0) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(coro, limit)

    return asyncio.run(main())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return True


def wait_dead(pid: int, limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def read_pid(path: Path, limit: float = 10.0) -> int:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        text = path.read_text().strip() if path.exists() else ""
        if text:
            return int(text)
        time.sleep(0.02)
    raise AssertionError(f"{path} was not written")


def nap_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@pytest.fixture(scope="module")
def inproc() -> Iterator[DaskExecutor]:
    """An in-process cluster whose two workers each offer one GPU."""
    with DaskExecutor(None, processes=False, n_workers=2, threads_per_worker=2, resources={"GPU": 1}) as executor:
        yield executor


@pytest.fixture(scope="module")
def procs() -> Iterator[DaskExecutor]:
    """A cluster of two worker processes, as ``DaskExecutor()`` starts it."""
    with DaskExecutor(None, n_workers=2, threads_per_worker=2) as executor:
        yield executor


# -- choosing the executor -------------------------------------------------------------------------------------------


def test_importing_and_running_never_imports_dask(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """The package, a workflow run and the pytest plugin run without importing dask or distributed."""
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    code = (
        "import asyncio, sys, pytest\n"
        "import pytest_orchestrator as po\n"
        "po.Workflow\n"
        "wf = po.Workflow('w').add_task('a', lambda: 1).add_task('b', 'true')\n"
        "assert asyncio.run(wf.run())['a'] == 1\n"
        f"assert pytest.main(['-q', '-p', 'no:cacheprovider', '--orchestrate', {str(tmp_path)!r}]) == 0\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("spec", "address"),
    [
        ("dask://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
        ("dask://scheduler", "tcp://scheduler:8786"),
        ("dask+tls://h:9000", "tls://h:9000"),
        ("tcp://h:1", "tcp://h:1"),
        ("h:2", "tcp://h:2"),
    ],
)
def test_scheduler_address(spec: str, address: str) -> None:
    assert scheduler_address(spec) == address


@pytest.mark.parametrize("spec", ["dask", "dask://", "dask:/h:1"])
def test_a_dask_executor_needs_an_address(spec: str) -> None:
    with pytest.raises(ConcurrencyError, match="dask://HOST:PORT"):
        Workflow("w", executor=spec)
    with pytest.raises(ValueError, match="dask://HOST:PORT"):
        check_executor(spec)


def test_open_executor_opens_a_dask_executor_from_a_string() -> None:
    executor, owned = open_executor("dask://127.0.0.1:8786")
    assert isinstance(executor, DaskExecutor) and owned
    assert executor.address == "tcp://127.0.0.1:8786"
    executor.shutdown()


def test_resources_must_be_numbers() -> None:
    with pytest.raises(WorkflowError, match="resources"):
        Workflow("w").add_task("t", lambda: 1, resources={"GPU": "one"})  # type: ignore[dict-item]


def test_threads_ignore_resources() -> None:
    assert run(Workflow("w").add_task("t", lambda: 1, resources={"GPU": 1})) == {"t": 1}


def test_an_unreachable_scheduler_is_named_before_any_task_starts() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ran: list[str] = []
    wf = Workflow("w", executor=DaskExecutor(f"tcp://127.0.0.1:{port}", connect_timeout=0.5))
    wf.add_task("a", lambda: ran.append("a"))
    wf.add_task("b", lambda: ran.append("b"))
    with pytest.raises(WorkflowError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"):
        run(wf)
    assert ran == []
    assert all(t.status == "pending" for t in wf.tasks.values())


# -- running on workers ----------------------------------------------------------------------------------------------


def test_sync_actions_and_commands_run_on_worker_processes(procs: DaskExecutor) -> None:
    workers = set(procs.client.run(os.getpid).values())

    async def on_driver(b: tuple[int, int]) -> tuple[int, int]:
        return os.getpid(), b[1] + 1

    wf = Workflow("w", executor=procs)
    wf.add_task("a", lambda: (os.getpid(), 1))
    wf.add_task("b", lambda a: (os.getpid(), a[1] + 1), dependencies=["a"])
    wf.add_task("c", on_driver, dependencies=["b"])
    wf.add_task("cmd", f"{sys.executable} -c 'import os; print(os.getppid())'")
    results = run(wf)
    assert results["a"][0] in workers and results["b"][0] in workers
    assert results["b"][1] == 2
    assert results["c"] == (os.getpid(), 3), "an async action stays on the driver"
    assert int(results["cmd"].stdout) in workers, "the command is a child of a worker"


def test_values_pass_between_worker_processes_and_failures_carry_the_error(procs: DaskExecutor) -> None:
    def boom(x: int) -> None:
        raise ValueError(f"bad {x}")

    wf = Workflow("w", executor=procs, fail_fast=False)
    wf.add_task("x", lambda: 21)
    wf.add_task("double", lambda x: x * 2, dependencies=["x"])
    wf.add_task("boom", boom, dependencies=["x"])
    wf.add_task("after", lambda boom: boom, dependencies=["boom"])
    with pytest.raises(TaskFailedError, match="ValueError: bad 21") as info:
        run(wf)
    assert info.value.results == {"x": 21, "double": 42}
    assert wf.tasks["after"].status == "skipped"


def test_run_function_runs_on_a_worker(procs: DaskExecutor) -> None:
    workers = set(procs.client.run(os.getpid).values())
    wf = Workflow("w", executor=procs).add_task("f", functools.partial(run_function, os.getppid))
    result = run(wf)["f"]
    assert result.status == "passed" and result.value in workers


class Tracked:
    """About 4 MiB whose unpickling appends ``unpickled PID`` to ``log``: which processes received it."""

    def __init__(self, log: str, data: bytes) -> None:
        self.log = log
        self.data = data

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickled, (self.log, self.data))

    def __sizeof__(self) -> int:
        return len(self.data) + 64

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tracked) and other.data == self.data

    __hash__ = None  # type: ignore[assignment]


def _unpickled(log: str, data: bytes) -> Tracked:
    with open(log, "a") as f:
        f.write(f"unpickled {os.getpid()}\n")
    return Tracked(log, data)


def test_values_stay_on_the_cluster_until_the_run_ends(procs: DaskExecutor, tmp_path: Path) -> None:
    """With nothing in the driver reading values during the run, a 4 MiB value goes from its task to its dependent
    worker to worker, and reaches the driver once, after the dependent ran, for run()'s result."""
    log = str(tmp_path / "log")

    def big() -> Tracked:
        return Tracked(log, b"x" * (4 << 20))

    def use(big: Tracked) -> int:
        with open(log, "a") as f:
            f.write(f"dependent {os.getpid()}\n")
        return len(big.data)

    wf = Workflow("w", executor=procs)
    wf.add_task("big", big)
    wf.add_task("use", use, dependencies=["big"])
    results = run(wf)
    assert results == {"big": Tracked(log, b"x" * (4 << 20)), "use": 4 << 20}
    lines = Path(log).read_text().splitlines()
    driver = [i for i, line in enumerate(lines) if line == f"unpickled {os.getpid()}"]
    ran = lines.index(next(line for line in lines if line.startswith("dependent ")))
    assert len(driver) == 1 and driver[0] > ran, lines


def _dag(executor: Any, marker: Path) -> Workflow:
    """Values passed by name, as a lone parameter's ``{dependency: value}``, to a retried task, to an async action
    (on the driver) and through ``transform_result``."""

    def flaky(c: int) -> int:
        if not marker.exists():
            marker.write_text("failed once")
            raise RuntimeError("first attempt")
        return c + 1

    async def on_driver(c: int) -> int:
        return c * 2

    wf = Workflow("w", executor=executor)
    wf.add_task("a", lambda: list(range(5)))
    wf.add_task("b", lambda: b"y" * (2 << 20))
    wf.add_task("c", lambda a, b: sum(a) + len(b), dependencies=["a", "b"])
    wf.add_task("d", lambda x: x["a"][-1] + x["c"], dependencies=["a", "c"])
    wf.add_task("e", flaky, dependencies=["c"], retry_policy=RetryPolicy(max_attempts=2, initial_delay=0))
    wf.add_task("f", on_driver, dependencies=["c"])
    wf.add_task("g", lambda a: a, dependencies=["a"], transform_result=len)
    wf.add_task("h", lambda d, e, f, g: d + e + f + g, dependencies=["d", "e", "f", "g"])
    return wf


def test_values_kept_on_the_cluster_reach_dependents_as_with_threads(procs: DaskExecutor, tmp_path: Path) -> None:
    on_threads = run(_dag(None, tmp_path / "threads"))
    wf = _dag(procs, tmp_path / "dask")
    on_dask = run(wf)
    assert on_dask == on_threads
    assert on_dask["b"] == b"y" * (2 << 20)
    assert {name: t.result.value for name, t in wf.tasks.items() if t.result is not None} == on_threads


def test_a_failed_run_still_gives_the_values_kept_on_the_cluster(procs: DaskExecutor) -> None:
    def boom(a: int) -> None:
        raise ValueError(f"bad {a}")

    wf = Workflow("w", executor=procs, fail_fast=False)
    wf.add_task("a", lambda: 20)
    wf.add_task("b", lambda a: a + 1, dependencies=["a"])
    wf.add_task("boom", boom, dependencies=["a"])
    with pytest.raises(TaskFailedError, match="ValueError: bad 20") as info:
        run(wf)
    assert info.value.results == {"a": 20, "b": 21}
    assert wf.tasks["b"].result is not None and wf.tasks["b"].result.value == 21


def test_what_the_driver_reads_during_the_run_is_never_kept() -> None:
    from pytest_orchestrator.core.engine import Engine

    def make() -> Workflow:
        async def on_driver(c: int) -> int:
            return c

        wf = Workflow("w")
        wf.add_task("a", lambda: 1)
        wf.add_task("b", lambda a: a, dependencies=["a"])
        wf.add_task("c", lambda a: a, dependencies=["a"], transform_result=str)
        wf.add_task("d", on_driver, dependencies=["c"])
        wf.add_task("cmd", "true", dependencies=["b"])
        return wf

    assert Engine(make())._kept_on_cluster() == {"a", "b"}, "not c (transform_result, async dependent), d, cmd"
    assert Engine(make().add_listener(lambda event: None))._kept_on_cluster() == set()
    wf = make().add_task("cond", lambda: 1, condition=lambda results: True)
    assert Engine(wf)._kept_on_cluster() == set()
    wf = make().add_task("all", lambda _task_results: 1)
    assert Engine(wf)._kept_on_cluster() == set()


def test_a_large_value_the_driver_reads_still_goes_to_its_dependent_as_a_future(
    procs: DaskExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listener reads every result, so values come back as tasks finish; a value over LARGE_VALUE reaches a
    dependent on the cluster from its peer all the same: the task gets its Dask future."""
    submitted: list[tuple[Any, ...]] = []
    submit = dask_execution._DaskSession._submit_batched

    def spy(self: Any, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
        submitted.append((args, kwargs))
        return submit(self, fn, args, kwargs, name)

    monkeypatch.setattr(dask_execution._DaskSession, "_submit_batched", spy)
    seen: list[Any] = []
    wf = Workflow("w", executor=procs).add_listener(seen.append)
    wf.add_task("big", lambda: b"x" * (dask_execution.LARGE_VALUE + 1))
    wf.add_task("small", lambda: b"y")
    wf.add_task("size", lambda big, small: len(big) + len(small), dependencies=["big", "small"])
    results = run(wf)
    assert results["size"] == dask_execution.LARGE_VALUE + 2
    (_args, kwargs) = submitted[-1]
    assert isinstance(kwargs["big"], distributed.Future)
    assert kwargs["small"] == b"y"
    assert seen


def test_calls_made_together_reach_the_scheduler_together_and_a_cancelled_one_never(
    procs: DaskExecutor, tmp_path: Path
) -> None:
    """Calls made in one turn of the loop are submitted as one graph at its end; a call cancelled before that turn
    ends is not submitted at all, and one cancelled after is cancelled on the cluster."""

    marker = tmp_path / "ran"

    def keys(dask_scheduler: Any) -> list[str]:
        return [str(k) for k in dask_scheduler.tasks]

    def touch() -> None:
        marker.write_text("ran")

    async def main() -> tuple[list[Any], list[str]]:
        session = await procs.open_session()
        try:
            calls = [asyncio.ensure_future(session.call(pow, (2, i), {}, name=f"pow{i}")) for i in range(3)]
            never = asyncio.ensure_future(session.call(touch, (), {}, name="never"))
            late = asyncio.ensure_future(session.call(time.sleep, (30,), {}, name="late"))
            await asyncio.sleep(0)
            never.cancel()
            values = await asyncio.gather(*calls)
            late.cancel()
            await asyncio.gather(never, late, return_exceptions=True)
            deadline = time.monotonic() + 10
            while True:  # the cancellation of "late" reaches the scheduler in the background
                seen = await session.client.run_on_scheduler(keys)
                if not any(k.startswith("late-") for k in seen) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
        finally:
            await session.close()
        return values, seen

    values, seen = run_coro(main())
    assert values == [1, 2, 4]
    assert not marker.exists() and not any(k.startswith("never-") for k in seen), seen
    assert not any(k.startswith("late-") for k in seen), "cancelled on the cluster once the call was cancelled"


def test_a_sync_task_that_times_out_on_a_worker_fails_and_its_dependent_is_skipped(procs: DaskExecutor) -> None:
    wf = Workflow("w", executor=procs, fail_fast=False)
    wf.add_task("slow", functools.partial(time.sleep, 5), timeout=0.5)
    wf.add_task("after", lambda slow: slow, dependencies=["slow"])
    wf.add_task("quick", lambda: 7)
    start = time.monotonic()
    with pytest.raises(TaskFailedError, match=r"timed out after 0\.5 s") as info:
        run(wf)
    assert time.monotonic() - start < 4
    assert info.value.results == {"quick": 7}
    assert wf.tasks["after"].status == "skipped"


def test_the_executor_api_submits_to_the_cluster(inproc: DaskExecutor) -> None:
    assert inproc.submit(pow, 2, 10).result(timeout=30) == 1024


# -- timeouts and cancellation kill the command on its worker ---------------------------------------------------------


def test_a_command_that_times_out_is_killed_on_its_worker(procs: DaskExecutor, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    wf = Workflow("w", executor=procs)
    wf.add_task("slow", f"echo $$ > {pidfile}; sleep 30", shell=True, timeout=1.0)
    start = time.monotonic()
    with pytest.raises(TaskFailedError, match="timed out after 1 s"):
        run(wf)
    assert time.monotonic() - start < 10
    assert wait_dead(read_pid(pidfile))


def test_fail_fast_kills_a_running_command_on_its_worker(procs: DaskExecutor, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"

    def fails() -> None:
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        raise RuntimeError("stop")

    wf = Workflow("w", executor=procs)
    wf.add_task("slow", f"echo $$ > {pidfile}; sleep 30", shell=True)
    wf.add_task("fails", fails)
    start = time.monotonic()
    with pytest.raises(TaskFailedError, match="stop"):
        run(wf)
    assert time.monotonic() - start < 15
    assert wf.tasks["slow"].status == "cancelled"
    assert wait_dead(read_pid(pidfile))


# -- resources -------------------------------------------------------------------------------------------------------


def test_resources_map_to_worker_resources(inproc: DaskExecutor) -> None:
    def where() -> str:
        return str(distributed.get_worker().state.available_resources)

    wf = Workflow("w", executor=inproc).add_task("gpu", where, resources={"GPU": 1})
    wf.add_task("gpu_cmd", "true", resources={"GPU": 1})
    results = run(wf)
    assert results["gpu"] == str({"GPU": 0}), "the task held the worker's one GPU while it ran"


@pytest.mark.parametrize("need", [{"GPU": 2}, {"TPU": 1}])
def test_resources_no_worker_has_are_an_error_before_anything_runs(inproc: DaskExecutor, need: dict[str, int]) -> None:
    ran: list[str] = []
    wf = Workflow("w", executor=inproc)
    wf.add_task("first", lambda: ran.append("first"))
    wf.add_task("needy", lambda: ran.append("needy"), resources=need)
    with pytest.raises(ConcurrencyError, match=r"task 'needy' needs resources .* no worker .* GPU=1") as info:
        run(wf, limit=30)
    assert info.value.context["task_name"] == "needy"
    assert ran == []


# -- a lost worker, a cluster by address -----------------------------------------------------------------------------


def test_a_worker_lost_mid_task_is_a_failed_attempt_retried_on_a_survivor(tmp_path: Path) -> None:
    marker = tmp_path / "killed"

    def dies_once() -> int:
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return os.getpid()

    with DaskExecutor(None, n_workers=2, threads_per_worker=1) as executor:
        wf = Workflow("w", executor=executor)
        wf.add_task("t", dies_once, retry_policy=RetryPolicy(max_attempts=2, initial_delay=0))
        assert run(wf)["t"] != int(marker.read_text())
    result = wf.tasks["t"].result
    assert result is not None and result.attempts == 2


@pytest.mark.slow
def test_a_scheduler_and_two_workers_by_address(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    # the workers unpickle this module's actions by name: they need its folder on their path, as pytest has
    here = str(Path(__file__).resolve().parent)
    subprocess_env = {**subprocess_env, "PYTHONPATH": os.pathsep.join((here, subprocess_env["PYTHONPATH"]))}
    dask_cli = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    worker_cli = [sys.executable, "-m", "distributed.cli.dask_worker"]
    started: list[subprocess.Popen[bytes]] = []
    log = (tmp_path / "cluster.log").open("wb")
    try:
        started.append(
            subprocess.Popen(
                [*dask_cli, "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
                env=subprocess_env,
                stdout=log,
                stderr=log,
            )
        )
        for _ in range(2):
            started.append(
                subprocess.Popen(
                    [*worker_cli, address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                    env=subprocess_env,
                    stdout=log,
                    stderr=log,
                )
            )
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            workers = set(client.run(os.getpid).values())
        assert len(workers) == 2
        wf = Workflow("w", executor=f"dask://127.0.0.1:{port}")
        for i in range(4):
            wf.add_task(f"t{i}", functools.partial(nap_pid, 0.2))
        wf.add_task("cmd", "echo hello", dependencies=[f"t{i}" for i in range(4)])
        results = run(wf)
        assert {results[f"t{i}"] for i in range(4)} <= workers
        assert results["cmd"].stdout.strip() == "hello"
    finally:
        for proc in reversed(started):
            proc.terminate()
        for proc in started:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
