"""Running a ``Workflow``: result passing, event-driven dispatch, limits, timeouts, retries, conditions, trigger
rules, failure handling, cancellation, executors, command actions, progress callbacks and listeners.

Timing assertions compare events with each other (or use wide margins), so a loaded machine does not make them
flaky.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import concurrent.futures
import itertools
import json
import logging
import os
import threading
import time
from typing import Any

import pytest

from pytest_orchestrator import ConcurrencyError
from pytest_orchestrator import OrchestratorTimeoutError
from pytest_orchestrator import RetryPolicy
from pytest_orchestrator import StepError
from pytest_orchestrator import TaskFailedError
from pytest_orchestrator import TaskResult
from pytest_orchestrator import TaskStatus
from pytest_orchestrator import Workflow
from pytest_orchestrator.core import events as ev
from pytest_orchestrator.core.clock import SYSTEM_CLOCK
from pytest_orchestrator.core.clock import Clock
from pytest_orchestrator.core.clock import VirtualClock


Run = Callable[..., Any]


# -- module-level (picklable) actions for the process executor ---------------------------------------------------


def pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def process_base() -> int:
    return 7


def process_fail() -> None:
    raise ValueError("raised in a child process")


# -- helpers -----------------------------------------------------------------------------------------------------


def statuses(wf: Workflow) -> dict[str, TaskStatus]:
    return {name: task.status for name, task in wf.tasks.items()}


class Flaky:
    """Fails its first ``failures`` calls with ``exc``, then returns ``value``; records when each call started."""

    def __init__(self, failures: int, exc: type[BaseException] = ValueError, value: Any = "ok") -> None:
        self.failures = failures
        self.exc = exc
        self.value = value
        self.starts: list[float] = []

    def __call__(self) -> Any:
        self.starts.append(time.perf_counter())
        if len(self.starts) <= self.failures:
            raise self.exc(f"failure {len(self.starts)}")
        return self.value


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


# -- result passing ----------------------------------------------------------------------------------------------


def test_parameter_named_like_a_dependency_receives_its_value(run_workflow: Run) -> None:
    def report(clean: list[int], fetch: list[int]) -> tuple[list[int], list[int]]:
        return fetch, clean

    wf = Workflow("w")
    wf.add_task("fetch", lambda: [3, 1, 2])
    wf.add_task("clean", sorted, dependencies=["fetch"])
    wf.add_task("report", report, dependencies=["fetch", "clean"])
    results = run_workflow(wf)
    assert results == {"fetch": [3, 1, 2], "clean": [1, 2, 3], "report": ([3, 1, 2], [1, 2, 3])}


def test_single_dependency_fills_the_single_free_parameter(run_workflow: Run) -> None:
    def transform(data: dict[str, int]) -> dict[str, int]:
        return {k: v * 2 for k, v in data.items()}

    def label(prefix: str, data: dict[str, int], suffix: str = "!") -> str:
        return f"{prefix}{data}{suffix}"

    wf = Workflow("w")
    wf.add_task("fetch", lambda: {"users": 150})
    wf.add_task("transform", transform, dependencies=["fetch"])
    wf.add_task("label", label, dependencies=["transform"], args=("got ",))
    results = run_workflow(wf)
    assert results["transform"] == {"users": 300}
    assert results["label"] == "got {'users': 300}!"


def test_keyword_arguments_are_not_overridden(run_workflow: Run) -> None:
    def use(x: int) -> int:
        return x

    wf = Workflow("w").add_task("a", lambda: 1).add_task("b", use, dependencies=["a"], kwargs={"x": 99})
    assert run_workflow(wf)["b"] == 99


def test_several_dependencies_and_one_free_parameter_get_a_dict(run_workflow: Run) -> None:
    def merge(parts: dict[str, int]) -> dict[str, int]:
        return dict(parts)

    wf = Workflow("w").add_task("x", lambda: 1).add_task("y", lambda: 2)
    wf.add_task("merge", merge, dependencies=["x", "y"])
    assert run_workflow(wf)["merge"] == {"x": 1, "y": 2}


def test_task_results_parameter_receives_finished_results(run_workflow: Run) -> None:
    seen: dict[str, Any] = {}

    def summarize(_task_results: dict[str, TaskResult]) -> int:
        seen.update(_task_results)
        return sum(r.value for r in _task_results.values())

    wf = Workflow("w").add_task("a", lambda: 1).add_task("b", lambda: 2)
    wf.add_task("total", summarize, dependencies=["a", "b"])
    assert run_workflow(wf)["total"] == 3
    assert set(seen) == {"a", "b"}
    assert all(isinstance(r, TaskResult) and r.success for r in seen.values())
    assert seen["b"].value == 2
    assert seen["a"].status is TaskStatus.COMPLETED


def test_async_actions_receive_results_too(run_workflow: Run) -> None:
    async def fetch() -> int:
        await asyncio.sleep(0.01)
        return 20

    async def add(fetch: int) -> int:
        await asyncio.sleep(0)
        return fetch + 1

    wf = Workflow("w").add_task("fetch", fetch).add_task("add", add, dependencies=["fetch"])
    assert run_workflow(wf) == {"fetch": 20, "add": 21}


def test_transform_result_is_what_dependents_receive(run_workflow: Run) -> None:
    wf = Workflow("w")
    wf.add_task("raw", lambda: " Text ", transform_result=str.strip)
    wf.add_task("upper", str.upper, dependencies=["raw"])
    assert run_workflow(wf) == {"raw": "Text", "upper": "TEXT"}


def test_run_returns_every_task_with_none_where_it_did_not_complete(run_workflow: Run) -> None:
    wf = Workflow("w").add_task("ok", lambda: "v").add_task("skip", lambda: 1, condition=lambda r: False)
    wf.add_task("after_skip", lambda: 2, dependencies=["skip"])
    assert run_workflow(wf) == {"ok": "v", "skip": None, "after_skip": None}


def test_an_empty_workflow_runs(run_workflow: Run) -> None:
    wf = Workflow("empty")
    assert run_workflow(wf) == {}
    summary = wf.get_summary()
    assert summary["total_tasks"] == 0
    assert summary["success"] is True


# -- event-driven dispatch, ordering, limits ---------------------------------------------------------------------


def test_a_task_starts_as_soon_as_its_dependencies_finish(run_workflow: Run) -> None:
    """b (after a 50 ms task) starts while an unrelated 0.5 s task is still running: no level-by-level waits."""
    t: dict[str, float] = {}

    async def a() -> None:
        await asyncio.sleep(0.05)
        t["a_end"] = time.perf_counter()

    async def b() -> None:
        t["b_start"] = time.perf_counter()

    async def c() -> None:
        t["c_start"] = time.perf_counter()
        await asyncio.sleep(0.5)
        t["c_end"] = time.perf_counter()

    wf = Workflow("w").add_task("a", a).add_task("c", c).add_task("b", b, dependencies=["a"])
    run_workflow(wf)
    assert t["a_end"] <= t["b_start"] < t["c_end"]
    assert t["b_start"] - t["c_start"] < 0.4


def test_ready_tasks_start_by_priority(run_workflow: Run) -> None:
    order: list[str] = []
    wf = Workflow("w", max_concurrency=1)
    for name, priority in [("low", 0), ("high", 5), ("middle", 1), ("negative", -2), ("low2", 0)]:
        wf.add_task(name, lambda name=name: order.append(name), priority=priority)
    run_workflow(wf)
    assert order == ["high", "middle", "low", "low2", "negative"]


def test_ready_tasks_start_by_longest_remaining_path(run_workflow: Run) -> None:
    """With equal priorities the task with the most work behind it goes first, then definition order."""
    order: list[str] = []

    def rec(name: str) -> Callable[[], None]:
        return lambda: order.append(name)

    wf = Workflow("w", max_concurrency=1)
    wf.add_task("lonely", rec("lonely"))
    wf.add_task("head", rec("head"))
    wf.add_task("middle", rec("middle"), dependencies=["head"])
    wf.add_task("tail", rec("tail"), dependencies=["middle"])
    wf.add_task("lonely2", rec("lonely2"))
    run_workflow(wf)
    assert order[0] == "head"
    assert order.index("middle") < order.index("lonely")
    assert order.index("lonely") < order.index("lonely2")


def test_priority_beats_the_critical_path(run_workflow: Run) -> None:
    order: list[str] = []
    wf = Workflow("w", max_concurrency=1)
    wf.add_task("head", lambda: order.append("head"))
    wf.add_task("tail", lambda: order.append("tail"), dependencies=["head"])
    wf.add_task("urgent", lambda: order.append("urgent"), priority=1)
    run_workflow(wf)
    assert order[0] == "urgent"


def test_estimated_and_remembered_durations_steer_the_order(run_workflow: Run) -> None:
    """Unknown durations count one unit each; ``metadata['estimated_duration']`` and durations measured by an
    earlier run of the same workflow replace them."""
    order: list[str] = []

    async def slow() -> None:
        order.append("slow")
        await asyncio.sleep(0.15)

    wf = Workflow("w", max_concurrency=1)
    wf.add_task("q1", lambda: order.append("q1"))
    wf.add_task("q2", lambda: order.append("q2"), dependencies=["q1"])
    wf.add_task("slow", slow)
    run_workflow(wf)
    assert order[0] == "q1"  # two unknown units beat one
    order.clear()
    run_workflow(wf)  # now the durations are known: slow is the critical path
    assert order[0] == "slow"

    order.clear()
    wf = Workflow("w2", max_concurrency=1)
    wf.add_task("q1", lambda: order.append("q1"), metadata={"estimated_duration": 0.01})
    wf.add_task("q2", lambda: order.append("q2"), dependencies=["q1"], metadata={"estimated_duration": 0.01})
    wf.add_task("big", lambda: order.append("big"), metadata={"estimated_duration": 60})
    run_workflow(wf)
    assert order[0] == "big"


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_max_concurrency_is_never_exceeded_and_is_used(run_workflow: Run, limit: int) -> None:
    running = 0
    peak = 0

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.02)
        finally:
            running -= 1

    wf = Workflow("w", max_concurrency=limit)
    for i in range(8):
        wf.add_task(f"t{i}", work)
    wf.add_task("after", work, dependencies=["t0", "t1"])
    run_workflow(wf)
    assert peak == limit


def test_max_concurrency_holds_for_sync_actions(run_workflow: Run) -> None:
    lock = threading.Lock()
    running = 0
    peak = 0

    def work() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    wf = Workflow("w", max_concurrency=2)
    for i in range(6):
        wf.add_task(f"t{i}", work)
    run_workflow(wf)
    assert peak == 2


def test_without_a_limit_independent_tasks_overlap(run_workflow: Run) -> None:
    lock = threading.Lock()
    running = 0
    peak = 0

    def work() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.1)
        with lock:
            running -= 1

    wf = Workflow("w")
    for i in range(5):
        wf.add_task(f"t{i}", work)
    run_workflow(wf)
    assert peak >= 2


def test_running_twice_at_once_is_refused(run_workflow: Run) -> None:
    async def sleepy() -> None:
        await asyncio.sleep(0.05)

    wf = Workflow("w").add_task("a", sleepy)

    async def main() -> None:
        first = asyncio.ensure_future(wf.run())
        await asyncio.sleep(0)
        with pytest.raises(ConcurrencyError, match="already running"):
            await wf.run()
        assert await first == {"a": None}

    asyncio.run(main())
    assert run_workflow(wf) == {"a": None}  # and it runs again afterwards


def test_a_rerun_starts_from_scratch(run_workflow: Run) -> None:
    flaky = Flaky(failures=1)
    wf = Workflow("w").add_task("f", flaky)
    with pytest.raises(TaskFailedError):
        run_workflow(wf)
    assert wf.tasks["f"].status is TaskStatus.FAILED
    assert run_workflow(wf) == {"f": "ok"}
    assert wf.tasks["f"].status is TaskStatus.COMPLETED  # type: ignore[comparison-overlap]  # a second run
    assert wf.tasks["f"].result is not None and wf.tasks["f"].result.attempts == 1


# -- timeouts ----------------------------------------------------------------------------------------------------


def _assert_timed_out(wf: Workflow, name: str, info: pytest.ExceptionInfo[TaskFailedError]) -> None:
    assert wf.tasks[name].status is TaskStatus.FAILED
    assert isinstance(info.value.__cause__, OrchestratorTimeoutError)
    assert isinstance(info.value.__cause__, TimeoutError)
    result = wf.tasks[name].result
    assert result is not None and result.error is not None and "timed out" in result.error
    assert isinstance(result.exception, OrchestratorTimeoutError)


def test_async_task_timeout(run_workflow: Run) -> None:
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    wf = Workflow("w").add_task("slow", slow, timeout=0.1)
    start = time.perf_counter()
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    assert time.perf_counter() - start < 3
    _assert_timed_out(wf, "slow", info)
    assert cancelled.is_set(), "the async action is cancelled"


def test_sync_task_timeout_fails_on_time(run_workflow: Run) -> None:
    """A sync function in a thread cannot be killed: it is abandoned and the task fails on time."""
    wf = Workflow("w").add_task("slow", lambda: time.sleep(1.0), timeout=0.1)
    start = time.perf_counter()
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    assert time.perf_counter() - start < 0.8
    _assert_timed_out(wf, "slow", info)


def test_an_abandoned_sync_call_does_not_hold_a_slot(run_workflow: Run) -> None:
    """After a sync attempt timed out (its thread abandoned), the retry and the next task really run, even with
    ``max_concurrency=1``: they do not queue behind the abandoned call and time out while waiting."""
    calls: list[str] = []

    def hangs_once() -> str:
        calls.append("attempt")
        if len(calls) == 1:
            time.sleep(0.6)
        return "second attempt"

    policy = RetryPolicy(max_attempts=2, initial_delay=0, retry_on=(TimeoutError,))
    wf = Workflow("w", max_concurrency=1)
    wf.add_task("flaky", hangs_once, timeout=0.2, retry_policy=policy)
    wf.add_task("next", lambda: "next", dependencies=["flaky"], timeout=0.2)
    assert run_workflow(wf) == {"flaky": "second attempt", "next": "next"}
    assert calls == ["attempt", "attempt"]


def test_command_task_timeout(run_workflow: Run) -> None:
    wf = Workflow("w").add_task("slow", "sleep 10", timeout=0.2)
    start = time.perf_counter()
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    assert time.perf_counter() - start < 5
    _assert_timed_out(wf, "slow", info)


def test_a_timeout_is_retried_when_retry_on_matches(run_workflow: Run) -> None:
    calls = 0

    async def slow_twice() -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            await asyncio.sleep(5)
        return calls

    policy = RetryPolicy(max_attempts=3, initial_delay=0, retry_on=(TimeoutError,))
    wf = Workflow("w").add_task("t", slow_twice, timeout=0.1, retry_policy=policy)
    assert run_workflow(wf) == {"t": 3}
    assert wf.tasks["t"].result is not None and wf.tasks["t"].result.attempts == 3


def test_a_timeout_is_not_retried_when_retry_on_does_not_match(run_workflow: Run) -> None:
    calls = 0

    async def slow() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(5)

    policy = RetryPolicy(max_attempts=3, initial_delay=0, retry_on=(ValueError,))
    wf = Workflow("w").add_task("t", slow, timeout=0.1, retry_policy=policy)
    with pytest.raises(TaskFailedError):
        run_workflow(wf)
    assert calls == 1


def test_workflow_timeout_cancels_and_raises(run_workflow: Run) -> None:
    cancelled: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise

    wf = Workflow("w", timeout=0.2)
    wf.add_task("quick", lambda: "done")
    wf.add_task("slow", slow)
    wf.add_task("sync_slow", lambda: time.sleep(0.6))
    wf.add_task("after", lambda: "never", dependencies=["slow"])
    start = time.perf_counter()
    with pytest.raises(OrchestratorTimeoutError) as info:
        run_workflow(wf)
    assert time.perf_counter() - start < 3
    assert isinstance(info.value, TimeoutError)
    assert "timed out" in str(info.value)
    assert cancelled == ["slow"]
    assert statuses(wf) == {
        "quick": TaskStatus.COMPLETED,
        "slow": TaskStatus.CANCELLED,
        "sync_slow": TaskStatus.CANCELLED,
        "after": TaskStatus.CANCELLED,
    }
    assert wf.get_summary()["success"] is False


def test_cancelling_run_itself_cancels_the_tasks() -> None:
    """``asyncio.wait_for(wf.run(), t)`` expiring cancels the run's tasks and marks them CANCELLED."""
    cancelled: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise

    wf = Workflow("w").add_task("slow", slow).add_task("after", slow, dependencies=["slow"])

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(wf.run(), 0.1)

    asyncio.run(main())
    assert cancelled == ["slow"]
    assert set(statuses(wf).values()) == {TaskStatus.CANCELLED}


# -- retries -----------------------------------------------------------------------------------------------------


def test_retries_until_success(run_workflow: Run) -> None:
    flaky = Flaky(failures=2, value=42)
    wf = Workflow("w").add_task("f", flaky, retry_policy=RetryPolicy(max_attempts=3, initial_delay=0))
    assert run_workflow(wf) == {"f": 42}
    assert len(flaky.starts) == 3
    result = wf.tasks["f"].result
    assert result is not None and result.attempts == 3 and result.success


def test_retries_give_up_after_max_attempts(run_workflow: Run) -> None:
    flaky = Flaky(failures=10)
    wf = Workflow("w").add_task("f", flaky, retry_policy=RetryPolicy(max_attempts=4, initial_delay=0))
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    assert len(flaky.starts) == 4
    assert wf.tasks["f"].result is not None and wf.tasks["f"].result.attempts == 4
    assert "failure 4" in str(info.value.__cause__)


def test_no_policy_means_one_attempt(run_workflow: Run) -> None:
    flaky = Flaky(failures=1)
    with pytest.raises(TaskFailedError):
        run_workflow(Workflow("w").add_task("f", flaky))
    assert len(flaky.starts) == 1


class ClockedFlaky(Flaky):
    """A ``Flaky`` that reads the start of each call from a (virtual) clock."""

    def __init__(self, clock: VirtualClock, failures: int) -> None:
        super().__init__(failures)
        self.clock = clock

    def __call__(self) -> Any:
        self.starts.append(self.clock.monotonic())
        if len(self.starts) <= self.failures:
            raise self.exc(f"failure {len(self.starts)}")
        return self.value


def test_backoff_delays_are_honoured(run_workflow: Run) -> None:
    """The engine sleeps each backoff delay on the workflow's clock: virtual time here, no real waiting."""
    clock = VirtualClock()
    flaky = ClockedFlaky(clock, failures=2)
    policy = RetryPolicy(max_attempts=30, initial_delay=10.0, exponential_base=2.0)
    wf = Workflow("w", clock=clock).add_task("f", flaky, retry_policy=policy)
    started = time.perf_counter()
    run_workflow(wf)
    assert time.perf_counter() - started < 5.0  # 30 s of backoff took no real time
    assert clock.sleeps == [10.0, 20.0]
    assert gaps(flaky.starts) == [10.0, 20.0]
    result = wf.tasks["f"].result
    assert result is not None and result.attempts == 3
    assert result.execution_time == 30.0  # durations come from the same clock
    assert result.finished_at is not None and result.started_at is not None
    assert result.finished_at - result.started_at == pytest.approx(30.0)
    assert wf.elapsed_time == 30.0


def test_backoff_is_capped_by_max_delay(run_workflow: Run) -> None:
    clock = VirtualClock()
    policy = RetryPolicy(max_attempts=4, initial_delay=5.0, exponential_base=100.0, max_delay=60.0)
    wf = Workflow("w", clock=clock).add_task("f", Flaky(failures=3), retry_policy=policy)
    run_workflow(wf)
    assert clock.sleeps == [5.0, 60.0, 60.0]  # uncapped: 5, 500, 50000


def test_jittered_delay_is_within_bounds_and_honoured(run_workflow: Run) -> None:
    clock = VirtualClock()
    flaky = ClockedFlaky(clock, failures=3)
    delays: list[float] = []
    wf = Workflow("w", clock=clock)
    wf.add_listener(lambda e: delays.append(e.delay) if isinstance(e, ev.TaskRetrying) else None)
    wf.add_task("f", flaky, retry_policy=RetryPolicy(max_attempts=4, initial_delay=10, exponential_base=1, jitter=0.5))
    run_workflow(wf)
    assert len(delays) == 3
    assert all(5.0 - 1e-9 <= d <= 15.0 + 1e-9 for d in delays)
    assert clock.sleeps == delays  # the delay announced is the delay slept
    assert gaps(flaky.starts) == pytest.approx(delays)


def test_retry_events_and_statuses_on_a_virtual_clock(run_workflow: Run) -> None:
    """Each retry: TaskRetrying (status RETRYING) before the wait, TaskStarted (status RUNNING) after it; event
    times come from the clock."""
    clock = VirtualClock(wall=5000.0)
    seen: list[tuple[str, int, float, TaskStatus]] = []
    wf = Workflow("w", clock=clock)

    def listen(event: ev.Event) -> None:
        if isinstance(event, ev.TaskStarted | ev.TaskRetrying):
            seen.append((type(event).__name__, event.attempt, event.time, wf.tasks["f"].status))

    wf.add_listener(listen)
    wf.add_task("f", Flaky(failures=2), retry_policy=RetryPolicy(max_attempts=3, initial_delay=1.0))
    run_workflow(wf)
    assert seen == [
        ("TaskStarted", 1, 5000.0, TaskStatus.RUNNING),
        ("TaskRetrying", 1, 5000.0, TaskStatus.RETRYING),
        ("TaskStarted", 2, 5001.0, TaskStatus.RUNNING),
        ("TaskRetrying", 2, 5001.0, TaskStatus.RETRYING),
        ("TaskStarted", 3, 5003.0, TaskStatus.RUNNING),
    ]
    result = wf.tasks["f"].result
    assert result is not None and (result.started_at, result.finished_at) == (5000.0, 5003.0)


def test_the_default_clock_is_the_system_clock() -> None:
    assert Workflow("w").clock is SYSTEM_CLOCK
    assert isinstance(SYSTEM_CLOCK, Clock) and isinstance(VirtualClock(), Clock)


def test_retry_on_filters_exceptions(run_workflow: Run) -> None:
    """An exception that does not match ``retry_on`` fails the task after one attempt."""
    flaky = Flaky(failures=5, exc=KeyError)
    policy = RetryPolicy(max_attempts=5, initial_delay=0, retry_on=(ValueError,))
    wf = Workflow("w").add_task("f", flaky, retry_policy=policy)
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    assert len(flaky.starts) == 1
    assert isinstance(info.value.__cause__, KeyError)

    matching = Flaky(failures=2, exc=ConnectionRefusedError)  # a subclass of ConnectionError
    wf = Workflow("w2").add_task(
        "f", matching, retry_policy=RetryPolicy(max_attempts=3, initial_delay=0, retry_on=(ConnectionError,))
    )
    assert run_workflow(wf) == {"f": "ok"}
    assert len(matching.starts) == 3


def test_a_failing_transform_result_is_a_failed_attempt(run_workflow: Run) -> None:
    calls = 0

    def transform(value: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("bad transform")
        return value + 1

    wf = Workflow("w").add_task(
        "t", lambda: 1, transform_result=transform, retry_policy=RetryPolicy(max_attempts=2, initial_delay=0)
    )
    assert run_workflow(wf) == {"t": 2}


# -- conditions and trigger rules --------------------------------------------------------------------------------


def test_false_condition_skips_the_task_and_its_dependents(run_workflow: Run) -> None:
    called: list[str] = []
    seen: dict[str, TaskResult] = {}

    def condition(results: dict[str, TaskResult]) -> bool:
        seen.update(results)
        return bool(results["fetch"].value > 100)

    wf = Workflow("w")
    wf.add_task("fetch", lambda: 5)
    wf.add_task("big", lambda: called.append("big"), dependencies=["fetch"], condition=condition)
    wf.add_task("after_big", lambda: called.append("after_big"), dependencies=["big"])
    wf.add_task("later", lambda: called.append("later"), dependencies=["after_big"])
    wf.add_task("other", lambda: called.append("other"), dependencies=["fetch"])
    results = run_workflow(wf)  # a skip is not a failure
    assert called == ["other"]
    assert seen["fetch"].value == 5 and seen["fetch"].status is TaskStatus.COMPLETED
    assert results["big"] is None
    big = wf.tasks["big"].result
    assert wf.tasks["big"].status is TaskStatus.SKIPPED
    assert big is not None and big.reason == "condition"
    after = wf.tasks["after_big"].result
    assert wf.tasks["after_big"].status is TaskStatus.SKIPPED
    assert after is not None and after.reason is not None and "'big'" in after.reason
    later = wf.tasks["later"].result
    assert later is not None and later.reason is not None
    assert "'after_big'" in later.reason and "'big'" in later.reason  # names the root cause
    assert wf.get_summary()["success"] is True


def test_true_condition_runs_the_task(run_workflow: Run) -> None:
    wf = Workflow("w").add_task("a", lambda: 1).add_task("b", lambda: 2, dependencies=["a"], condition=lambda r: True)
    assert run_workflow(wf) == {"a": 1, "b": 2}


def test_a_raising_condition_fails_the_task(run_workflow: Run) -> None:
    called: list[str] = []
    problem = RuntimeError("condition exploded")

    def condition(results: dict[str, TaskResult]) -> bool:
        raise problem

    wf = Workflow("w", fail_fast=False)
    wf.add_task("t", lambda: called.append("t"), condition=condition)
    wf.add_task("dep", lambda: called.append("dep"), dependencies=["t"])
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    assert called == []
    assert wf.tasks["t"].status is TaskStatus.FAILED
    assert wf.tasks["dep"].status is TaskStatus.SKIPPED
    assert info.value.task_name == "t"
    assert info.value.__cause__ is problem
    result = wf.tasks["t"].result
    assert result is not None and result.error is not None and "condition exploded" in result.error


def test_all_done_runs_after_a_failure_even_with_fail_fast(run_workflow: Run) -> None:
    seen: dict[str, Any] = {}

    def teardown(setup: Any, _task_results: dict[str, TaskResult]) -> str:
        seen["setup_value"] = setup
        seen["setup_status"] = _task_results["setup"].status
        return "cleaned"

    wf = Workflow("w", fail_fast=True)
    wf.add_task("setup", lambda: 1 / 0)
    wf.add_task("teardown", teardown, dependencies=["setup"], trigger_rule="all_done")
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    assert wf.tasks["teardown"].status is TaskStatus.COMPLETED
    assert seen == {"setup_value": None, "setup_status": TaskStatus.FAILED}
    assert info.value.results == {"teardown": "cleaned"}


def test_all_done_runs_after_success_too(run_workflow: Run) -> None:
    wf = (
        Workflow("w")
        .add_task("a", lambda: 1)
        .add_task("z", lambda a: a + 1, dependencies=["a"], trigger_rule="all_done")
    )
    assert run_workflow(wf) == {"a": 1, "z": 2}


def test_one_failed_runs_only_when_a_dependency_failed(run_workflow: Run) -> None:
    called: list[str] = []
    wf = Workflow("w", fail_fast=False)
    wf.add_task("ok", lambda: 1)
    wf.add_task("bad", lambda: 1 / 0)
    wf.add_task("alert", lambda: called.append("alert"), dependencies=["ok", "bad"], trigger_rule="one_failed")
    with pytest.raises(TaskFailedError):
        run_workflow(wf)
    assert called == ["alert"]
    assert wf.tasks["alert"].status is TaskStatus.COMPLETED

    called.clear()
    wf = Workflow("w2")
    wf.add_task("ok", lambda: 1)
    wf.add_task("alert", lambda: called.append("alert"), dependencies=["ok"], trigger_rule="one_failed")
    run_workflow(wf)  # nothing failed: no error
    assert called == []
    assert wf.tasks["alert"].status is TaskStatus.SKIPPED
    result = wf.tasks["alert"].result
    assert result is not None and result.reason is not None and "one_failed" in result.reason


def test_one_failed_runs_under_fail_fast(run_workflow: Run) -> None:
    called: list[str] = []
    wf = Workflow("w", fail_fast=True)
    wf.add_task("bad", lambda: 1 / 0)
    wf.add_task("alert", lambda: called.append("alert"), dependencies=["bad"], trigger_rule="one_failed")
    with pytest.raises(TaskFailedError):
        run_workflow(wf)
    assert called == ["alert"]


# -- failures ----------------------------------------------------------------------------------------------------


def test_fail_fast_cancels_running_and_pending_tasks(run_workflow: Run) -> None:
    problem = ValueError("boom")
    cancelled: list[str] = []
    called: list[str] = []

    async def bad() -> None:
        await asyncio.sleep(0.05)
        raise problem

    async def slow() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise
        return "slow"

    wf = Workflow("w", fail_fast=True)
    wf.add_task("done", lambda: "early")
    wf.add_task("bad", bad, dependencies=["done"])
    wf.add_task("slow", slow)
    wf.add_task("after_slow", lambda: called.append("after_slow"), dependencies=["slow"])
    wf.add_task("after_bad", lambda: called.append("after_bad"), dependencies=["bad"])
    start = time.perf_counter()
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    assert time.perf_counter() - start < 3
    err = info.value
    assert err.task_name == "bad"
    assert err.failed == ["bad"]
    assert err.results == {"done": "early"}
    assert err.__cause__ is problem
    assert "bad" in str(err) and "boom" in str(err)
    assert cancelled == ["slow"]
    assert called == []
    assert statuses(wf) == {
        "done": TaskStatus.COMPLETED,
        "bad": TaskStatus.FAILED,
        "slow": TaskStatus.CANCELLED,
        "after_slow": TaskStatus.CANCELLED,
        "after_bad": TaskStatus.CANCELLED,
    }
    result = wf.tasks["after_slow"].result
    assert result is not None and result.reason is not None and "'bad'" in result.reason
    summary = wf.get_summary()
    assert (summary["failed"], summary["cancelled"], summary["completed"]) == (1, 3, 1)
    assert summary["success"] is False


def test_a_failing_condition_stops_tasks_that_were_ready_with_it(run_workflow: Run) -> None:
    """Tasks ready at the same moment as a task whose condition raises do not start under fail_fast (cleanup does)."""
    called: list[str] = []

    def broken(results: dict[str, TaskResult]) -> bool:
        raise RuntimeError("cond")

    async def rec(name: str) -> None:
        called.append(name)

    wf = Workflow("w", fail_fast=True)
    wf.add_task("first", rec, args=("first",), condition=broken)
    wf.add_task("b", rec, args=("b",))
    wf.add_task("c", lambda: called.append("c"))
    wf.add_task("cleanup", rec, args=("cleanup",), trigger_rule="all_done")
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    assert info.value.task_name == "first"
    assert called == ["cleanup"]
    assert statuses(wf) == {
        "first": TaskStatus.FAILED,
        "b": TaskStatus.CANCELLED,
        "c": TaskStatus.CANCELLED,
        "cleanup": TaskStatus.COMPLETED,
    }


def test_without_fail_fast_independent_branches_run_on(run_workflow: Run) -> None:
    first = ValueError("first")

    async def bad() -> None:
        raise first

    async def bad_later() -> None:
        await asyncio.sleep(0.05)
        raise KeyError("second")

    async def slow() -> str:
        await asyncio.sleep(0.1)
        return "slow"

    wf = Workflow("w", fail_fast=False)
    wf.add_task("bad", bad)
    wf.add_task("child", lambda: "never", dependencies=["bad"])
    wf.add_task("grandchild", lambda: "never", dependencies=["child"])
    wf.add_task("slow", slow)
    wf.add_task("after_slow", lambda slow: slow + "!", dependencies=["slow"])
    wf.add_task("bad_later", bad_later)
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    err = info.value
    assert err.task_name == "bad"
    assert err.__cause__ is first
    assert sorted(err.failed) == ["bad", "bad_later"]
    assert err.results == {"slow": "slow", "after_slow": "slow!"}
    assert statuses(wf) == {
        "bad": TaskStatus.FAILED,
        "child": TaskStatus.SKIPPED,
        "grandchild": TaskStatus.SKIPPED,
        "slow": TaskStatus.COMPLETED,
        "after_slow": TaskStatus.COMPLETED,
        "bad_later": TaskStatus.FAILED,
    }
    child = wf.tasks["child"].result
    grandchild = wf.tasks["grandchild"].result
    assert child is not None and child.reason is not None and "'bad'" in child.reason
    assert grandchild is not None and grandchild.reason is not None
    assert "'child'" in grandchild.reason and "'bad'" in grandchild.reason
    summary = wf.get_summary()
    assert (summary["failed"], summary["skipped"], summary["completed"]) == (2, 2, 2)


def test_failed_result_records_the_error(run_workflow: Run) -> None:
    wf = Workflow("w").add_task("bad", lambda: int("x"))
    with pytest.raises(TaskFailedError):
        run_workflow(wf)
    result = wf.tasks["bad"].result
    assert result is not None
    assert result.success is False
    assert result.status is TaskStatus.FAILED
    assert result.error is not None and "ValueError" in result.error
    assert isinstance(result.exception, ValueError)
    assert result.attempts == 1


async def async_two_params(a: int, b: int) -> int:
    return a + b


def sync_two_params(a: int, b: int) -> int:
    return a + b


@pytest.mark.parametrize("action", [async_two_params, sync_two_params], ids=["async", "sync"])
def test_an_action_that_cannot_be_called_fails_its_task(run_workflow: Run, action: Callable[..., Any]) -> None:
    """A wrong call (missing arguments) is a failure of that task, not a crash of the run."""
    wf = Workflow("w", fail_fast=False).add_task("bad", action).add_task("fine", lambda: 1)
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    assert isinstance(info.value.__cause__, TypeError)
    assert statuses(wf) == {"bad": TaskStatus.FAILED, "fine": TaskStatus.COMPLETED}
    assert info.value.results == {"fine": 1}


# -- cancellation ------------------------------------------------------------------------------------------------


def test_cancel_from_inside_a_task(run_workflow: Run) -> None:
    wf = Workflow("w")
    cancelled: list[str] = []

    async def stopper() -> None:
        await asyncio.sleep(0.02)
        assert wf.cancel("stop requested") is True
        await asyncio.sleep(5)

    async def slow() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise

    wf.add_task("first", lambda: "kept")
    wf.add_task("stopper", stopper, dependencies=["first"])
    wf.add_task("slow", slow)
    wf.add_task("after", lambda: "never", dependencies=["stopper"])
    start = time.perf_counter()
    results = run_workflow(wf)  # returns what completed, does not raise
    assert time.perf_counter() - start < 3
    assert results == {"first": "kept", "stopper": None, "slow": None, "after": None}
    assert cancelled == ["slow"]
    assert statuses(wf) == {
        "first": TaskStatus.COMPLETED,
        "stopper": TaskStatus.CANCELLED,
        "slow": TaskStatus.CANCELLED,
        "after": TaskStatus.CANCELLED,
    }
    after = wf.tasks["after"].result
    assert after is not None and after.reason == "stop requested"
    summary = wf.get_summary()
    assert summary["cancelled"] == 3
    assert summary["success"] is False
    assert wf.cancel() is False  # no longer running


def test_cancel_from_another_coroutine() -> None:
    async def slow() -> None:
        await asyncio.sleep(5)

    wf = Workflow("w").add_task("a", slow).add_task("b", slow, dependencies=["a"])

    async def main() -> dict[str, Any]:
        async def later() -> None:
            await asyncio.sleep(0.05)
            assert wf.cancel() is True

        results: dict[str, Any]
        results, _ = await asyncio.wait_for(asyncio.gather(wf.run(), later()), 10)
        return results

    start = time.perf_counter()
    assert asyncio.run(main()) == {"a": None, "b": None}
    assert time.perf_counter() - start < 3
    assert set(statuses(wf).values()) == {TaskStatus.CANCELLED}


def test_cancel_from_a_sync_task_in_a_thread(run_workflow: Run) -> None:
    wf = Workflow("w")

    async def slow() -> None:
        await asyncio.sleep(5)

    def stopper() -> None:
        time.sleep(0.02)
        wf.cancel("from a thread")

    wf.add_task("slow", slow).add_task("stopper", stopper).add_task("after", slow, dependencies=["slow"])
    start = time.perf_counter()
    run_workflow(wf)
    assert time.perf_counter() - start < 3
    assert statuses(wf)["slow"] is TaskStatus.CANCELLED
    assert statuses(wf)["after"] is TaskStatus.CANCELLED


def test_interrupt_cancels_the_work_and_runs_the_cleanup_tasks(run_workflow: Run) -> None:
    """``interrupt()``: running and pending tasks are cancelled, an ``all_done`` task still runs once they settle (a
    running one is left to finish); ``one_failed`` tasks are cancelled with the rest."""
    wf = Workflow("w")
    ran: list[str] = []

    async def stopper() -> None:
        await asyncio.sleep(0.02)
        assert wf.interrupt() is True
        await asyncio.sleep(5)

    async def slow_cleanup() -> str:
        await asyncio.sleep(0.1)  # running when the interrupt comes: finishes
        ran.append("slow_cleanup")
        return "finished"

    wf.add_task("stopper", stopper)
    wf.add_task("slow_cleanup", slow_cleanup, trigger_rule="all_done")
    wf.add_task("after", lambda: ran.append("after"), dependencies=["stopper"])

    def cleanup() -> str:
        ran.append("cleanup")
        return "cleaned"

    wf.add_task("cleanup", cleanup, dependencies=["after"], trigger_rule="all_done")
    wf.add_task("on_failure", lambda: ran.append("on_failure"), dependencies=["after"], trigger_rule="one_failed")
    start = time.perf_counter()
    results = run_workflow(wf)
    assert time.perf_counter() - start < 3
    assert sorted(ran) == ["cleanup", "slow_cleanup"]
    assert results["cleanup"] == "cleaned" and results["slow_cleanup"] == "finished"
    assert statuses(wf) == {
        "stopper": TaskStatus.CANCELLED,
        "slow_cleanup": TaskStatus.COMPLETED,
        "after": TaskStatus.CANCELLED,
        "cleanup": TaskStatus.COMPLETED,
        "on_failure": TaskStatus.CANCELLED,
    }
    after = wf.tasks["after"].result
    assert after is not None and after.reason == "workflow run was interrupted"


def test_cancel_after_interrupt_stops_the_cleanup_too(run_workflow: Run) -> None:
    wf = Workflow("w")

    async def stopper() -> None:
        await asyncio.sleep(0.02)
        wf.interrupt()
        await asyncio.sleep(0.05)
        await asyncio.sleep(5)

    async def hanging_cleanup() -> None:
        await asyncio.sleep(0.05)
        wf.cancel("grace period over")
        await asyncio.sleep(5)

    wf.add_task("stopper", stopper)
    wf.add_task("cleanup", hanging_cleanup, dependencies=["stopper"], trigger_rule="all_done")
    start = time.perf_counter()
    run_workflow(wf)
    assert time.perf_counter() - start < 3
    cleanup = wf.tasks["cleanup"].result
    assert cleanup is not None and cleanup.status is TaskStatus.CANCELLED and cleanup.reason == "grace period over"
    assert wf.interrupt() is False  # no longer running


# -- summary -----------------------------------------------------------------------------------------------------


SUMMARY_KEYS = {
    "name",
    "total_tasks",
    "completed",
    "failed",
    "skipped",
    "cancelled",
    "pending",
    "success",
    "elapsed_time",
    "total_execution_time",
    "critical_path",
    "tasks",
}
TASK_KEYS = {"status", "execution_time", "attempts", "error", "started_at", "finished_at"}


def test_summary_after_a_successful_run(run_workflow: Run) -> None:
    async def slow() -> int:
        await asyncio.sleep(0.1)
        return 1

    wf = Workflow("summary")
    wf.add_task("a", lambda: 0)
    wf.add_task("slow", slow, dependencies=["a"])
    wf.add_task("fast", lambda: 2, dependencies=["a"])
    wf.add_task("end", lambda slow, fast: slow + fast, dependencies=["slow", "fast"])
    wf.add_task("skipped", lambda: 0, condition=lambda r: False)
    run_workflow(wf)
    summary = wf.get_summary()
    assert SUMMARY_KEYS <= set(summary)
    assert summary["name"] == "summary"
    assert summary["total_tasks"] == 5
    assert (summary["completed"], summary["failed"], summary["skipped"]) == (4, 0, 1)
    assert (summary["cancelled"], summary["pending"]) == (0, 0)
    assert summary["success"] is True
    assert summary["critical_path"] == ["a", "slow", "end"]
    assert set(summary["tasks"]) == set(wf.tasks)
    for name, info in summary["tasks"].items():
        assert TASK_KEYS <= set(info)
        assert info["status"] == wf.tasks[name].status.value
    slow_info = summary["tasks"]["slow"]
    assert slow_info["attempts"] == 1
    assert slow_info["error"] is None
    assert slow_info["execution_time"] >= 0.09
    assert slow_info["started_at"] <= slow_info["finished_at"]
    assert summary["tasks"]["a"]["finished_at"] <= slow_info["started_at"]
    assert summary["tasks"]["skipped"]["attempts"] == 0
    assert summary["total_execution_time"] == pytest.approx(sum(t["execution_time"] for t in summary["tasks"].values()))
    assert summary["elapsed_time"] >= slow_info["execution_time"]
    json.dumps(summary)


def test_summary_after_a_failed_run(run_workflow: Run) -> None:
    flaky = Flaky(failures=5)
    wf = Workflow("w", fail_fast=False)
    wf.add_task("bad", flaky, retry_policy=RetryPolicy(max_attempts=2, initial_delay=0))
    wf.add_task("dep", lambda: 1, dependencies=["bad"])
    with pytest.raises(TaskFailedError):
        run_workflow(wf)
    summary = wf.get_summary()
    assert summary["success"] is False
    assert (summary["failed"], summary["skipped"]) == (1, 1)
    bad = summary["tasks"]["bad"]
    assert bad["status"] == "failed"
    assert bad["attempts"] == 2
    assert "failure 2" in bad["error"]
    assert summary["tasks"]["dep"]["status"] == "skipped"
    json.dumps(summary)


# -- executors ---------------------------------------------------------------------------------------------------


def test_sync_actions_run_in_threads_by_default(run_workflow: Run) -> None:
    idents: dict[str, int] = {}

    async def in_loop() -> None:
        idents["async"] = threading.get_ident()

    def blocking() -> None:
        idents["sync"] = threading.get_ident()

    wf = Workflow("w").add_task("async", in_loop).add_task("sync", blocking)
    run_workflow(wf)
    assert idents["async"] == threading.get_ident()  # asyncio.run drives the loop in this thread
    assert idents["sync"] != threading.get_ident()


def test_process_executor(run_workflow: Run) -> None:
    wf = Workflow("w", executor="process")
    wf.add_task("base", process_base)
    wf.add_task("square", pid_and_square, dependencies=["base"])
    results = run_workflow(wf, 60)
    pid, square = results["square"]
    assert pid != os.getpid()
    assert square == 49


def test_process_executor_failure(run_workflow: Run) -> None:
    wf = Workflow("w", executor="process").add_task("bad", process_fail)
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf, 60)
    assert isinstance(info.value.__cause__, ValueError)
    assert "raised in a child process" in str(info.value)


def test_an_executor_instance_is_used_and_left_open(run_workflow: Run) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="mine") as pool:
        wf = Workflow("w", executor=pool)
        wf.add_task("a", lambda: threading.current_thread().name)
        wf.add_task("b", lambda: threading.current_thread().name)
        results = run_workflow(wf)
        assert results["a"].startswith("mine")
        assert results["b"].startswith("mine")
        assert pool.submit(lambda: "still open").result(timeout=5) == "still open"


# -- command actions ---------------------------------------------------------------------------------------------


def test_command_string_result_is_a_process_result(run_workflow: Run) -> None:
    wf = Workflow("w").add_task("echo", "echo hi")
    result = run_workflow(wf)["echo"]
    assert not isinstance(result, dict)
    assert result.stdout == "hi\n"
    assert result.returncode == 0
    assert result.timed_out is False
    assert result.to_dict()["stdout"] == "hi\n"


def test_command_failure_carries_its_output(run_workflow: Run) -> None:
    wf = Workflow("w").add_task("bad", "sh -c 'echo to-stdout; echo to-stderr >&2; exit 3'")
    with pytest.raises(TaskFailedError) as info:
        run_workflow(wf)
    cause = info.value.__cause__
    assert isinstance(cause, StepError)
    assert "3" in str(cause)
    assert "to-stderr" in str(cause)
    result = wf.tasks["bad"].result
    assert result is not None and result.error is not None
    assert "to-stderr" in result.error


def test_commands_run_without_a_shell_unless_asked(run_workflow: Run) -> None:
    wf = Workflow("w")
    wf.add_task("plain", "echo a | tr a b")
    wf.add_task("shell", "echo a | tr a b", shell=True)
    wf.add_task("var", "echo $((1+2))", shell=True)
    results = run_workflow(wf)
    assert results["plain"].stdout == "a | tr a b\n"
    assert results["shell"].stdout == "b\n"
    assert results["var"].stdout == "3\n"


def test_missing_program_fails_the_task(run_workflow: Run) -> None:
    wf = Workflow("w").add_task("nope", "definitely-not-a-program-xyz --flag")
    with pytest.raises(TaskFailedError):
        run_workflow(wf)
    assert wf.tasks["nope"].status is TaskStatus.FAILED


# -- progress callback and listeners -----------------------------------------------------------------------------


def test_progress_callback_sees_the_whole_run(run_workflow: Run) -> None:
    calls: list[tuple[str, str, dict[str, Any]]] = []
    flaky = Flaky(failures=1)
    wf = Workflow("w", fail_fast=False, progress_callback=lambda *a: calls.append(a), clock=VirtualClock())
    wf.add_task("flaky", flaky, retry_policy=RetryPolicy(max_attempts=2, initial_delay=0.01))
    wf.add_task("bad", lambda: 1 / 0)
    wf.add_task("skipped", lambda: 1, dependencies=["bad"])
    with pytest.raises(TaskFailedError):
        run_workflow(wf)
    assert calls[0][:2] == ("workflow", "started")
    assert calls[0][2]["total_tasks"] == 3
    assert calls[-1][:2] == ("workflow", "completed")
    assert calls[-1][2]["success"] is False
    by_task: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, status, details in calls[1:-1]:
        by_task.setdefault(name, []).append((status, details))
    assert [s for s, _ in by_task["flaky"]] == ["running", "retrying", "running", "completed"]
    retrying = by_task["flaky"][1][1]
    assert retrying["attempt"] == 1
    assert retrying["delay"] == pytest.approx(0.01)
    assert by_task["flaky"][2][1]["attempt"] == 2
    assert [s for s, _ in by_task["bad"]] == ["running", "failed"]
    assert "ZeroDivisionError" in by_task["bad"][1][1]["error"]
    assert by_task["skipped"] == [("skipped", {"reason": "dependency 'bad' failed"})]


def test_progress_callback_reports_cancellations(run_workflow: Run) -> None:
    calls: list[tuple[str, str]] = []
    wf = Workflow("w", progress_callback=lambda name, status, details: calls.append((name, status)))
    wf.add_task("bad", lambda: 1 / 0)
    wf.add_task("never", lambda: 1, dependencies=["bad"])
    with pytest.raises(TaskFailedError):
        run_workflow(wf)
    assert ("never", "cancelled") in calls


def test_a_raising_progress_callback_is_logged_and_ignored(run_workflow: Run, caplog: pytest.LogCaptureFixture) -> None:
    def callback(name: str, status: str, details: dict[str, Any]) -> None:
        raise RuntimeError("callback broke")

    wf = (
        Workflow("w", progress_callback=callback)
        .add_task("a", lambda: 1)
        .add_task("b", lambda a: a + 1, dependencies=["a"])
    )
    with caplog.at_level(logging.ERROR):
        assert run_workflow(wf) == {"a": 1, "b": 2}
    logged = [r for r in caplog.records if r.name == "pytest_orchestrator" and r.exc_info]
    assert logged, "the callback's exception is logged"
    assert all(str(r.exc_info[1]) == "callback broke" for r in logged if r.exc_info)
    assert wf.get_summary()["success"] is True


def test_listeners_receive_typed_events_in_order(run_workflow: Run) -> None:
    events: list[ev.Event] = []
    flaky = Flaky(failures=1)
    wf = Workflow("typed", fail_fast=False).add_listener(events.append)
    wf.add_task("flaky", flaky, retry_policy=RetryPolicy(max_attempts=2, initial_delay=0))
    wf.add_task("bad", lambda: 1 / 0)
    wf.add_task("skipped", lambda: 1, dependencies=["bad"])
    wf.add_task("cond", lambda: 1, condition=lambda r: False)
    wf.add_task("async", asyncio.sleep, args=(0,))
    with pytest.raises(TaskFailedError):
        run_workflow(wf)
    assert isinstance(events[0], ev.WorkflowStarted)
    assert events[0].total_tasks == 5
    assert events[0].workflow == "typed"
    assert isinstance(events[-1], ev.WorkflowFinished)
    assert events[-1].success is False
    assert events[-1].summary["failed"] == 1
    terminal = (ev.TaskFinished, ev.TaskSkipped, ev.TaskCancelled)
    for name in wf.tasks:
        own = [e for e in events if getattr(e, "task", None) == name]
        assert sum(isinstance(e, terminal) for e in own) == 1, name
        assert isinstance(own[-1], terminal)
    flaky_events = [e for e in events if getattr(e, "task", None) == "flaky"]
    assert [type(e) for e in flaky_events] == [ev.TaskStarted, ev.TaskRetrying, ev.TaskStarted, ev.TaskFinished]
    assert [e.attempt for e in flaky_events if isinstance(e, ev.TaskStarted)] == [1, 2]
    finished = flaky_events[-1]
    assert isinstance(finished, ev.TaskFinished) and finished.result.status is TaskStatus.COMPLETED
    async_events = [e for e in events if getattr(e, "task", None) == "async"]
    assert [type(e) for e in async_events] == [ev.TaskStarted, ev.TaskFinished]
    skipped = [e for e in events if isinstance(e, ev.TaskSkipped)]
    assert {e.task: e.reason for e in skipped} == {"skipped": "dependency 'bad' failed", "cond": "condition"}
    times = [e.time for e in events]
    assert times == sorted(times)


def test_a_raising_listener_is_logged_and_ignored(run_workflow: Run, caplog: pytest.LogCaptureFixture) -> None:
    good: list[ev.Event] = []

    def bad_listener(event: ev.Event) -> None:
        raise RuntimeError("listener broke")

    wf = Workflow("w").add_listener(bad_listener).add_listener(good.append).add_task("a", lambda: 1)
    with caplog.at_level(logging.ERROR, logger="pytest_orchestrator"):
        assert run_workflow(wf) == {"a": 1}
    assert caplog.records, "the failure is logged"
    assert any("listener" in r.getMessage() for r in caplog.records)
    assert isinstance(good[-1], ev.WorkflowFinished)  # the other listeners still got everything


def test_remove_listener(run_workflow: Run) -> None:
    events: list[ev.Event] = []
    wf = Workflow("w").add_listener(events.append).add_task("a", lambda: 1)
    wf.remove_listener(events.append)
    run_workflow(wf)
    assert events == []


# -- SkipTask and BaseException from actions -------------------------------------------------------------------
def test_skiptask_skips_the_task_and_its_dependents_without_retry() -> None:
    from pytest_orchestrator import SkipTask

    calls: list[str] = []

    def gate() -> None:
        calls.append("gate")
        raise SkipTask("no data today")

    async def agate() -> None:
        calls.append("agate")
        raise SkipTask("async says skip")

    wf = Workflow("skips", fail_fast=False)
    wf.add_task("gate", gate, retry_policy=RetryPolicy(max_attempts=3, initial_delay=0))
    wf.add_task("agate", agate)
    wf.add_task("child", lambda: calls.append("child"), dependencies=["gate"])
    wf.add_task("grandchild", lambda: calls.append("grandchild"), dependencies=["child"])
    wf.add_task("cleanup", lambda: calls.append("cleanup"), dependencies=["agate"], trigger_rule="all_done")
    asyncio.run(wf.run())  # a skip is not a failure: no TaskFailedError
    summary = wf.get_summary()
    assert summary["success"] is True
    tasks = summary["tasks"]
    assert (tasks["gate"]["status"], tasks["gate"]["reason"], tasks["gate"]["attempts"]) == (
        "skipped",
        "no data today",
        1,
    )
    assert (tasks["agate"]["status"], tasks["agate"]["reason"]) == ("skipped", "async says skip")
    assert tasks["child"]["reason"] == "dependency 'gate' was skipped"
    assert tasks["grandchild"]["reason"] == "dependency 'child' was skipped (root cause: 'gate' was skipped)"
    assert tasks["cleanup"]["status"] == "completed"
    assert sorted(calls) == ["agate", "cleanup", "gate"]


def test_keyboard_interrupt_in_an_action_propagates_out_of_run() -> None:
    async def interrupted() -> None:
        raise KeyboardInterrupt

    wf = Workflow("ki")
    wf.add_task("a", interrupted)
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(wf.run())
