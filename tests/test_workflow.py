"""The definition side of a workflow: ``add_task``, ``Task``, the ready-made shapes, and bad input.

Running semantics are in ``test_engine.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import concurrent.futures
import itertools
from typing import Any

import pytest

from pytest_orchestrator import ConcurrencyError
from pytest_orchestrator import CycleError
from pytest_orchestrator import DependencyResolutionError
from pytest_orchestrator import RetryPolicy
from pytest_orchestrator import Task
from pytest_orchestrator import TaskResult
from pytest_orchestrator import TaskStatus
from pytest_orchestrator import Workflow
from pytest_orchestrator import WorkflowError
from pytest_orchestrator import chain
from pytest_orchestrator import fan_out_fan_in
from pytest_orchestrator import parallel


def noop() -> None:
    return None


# -- building ----------------------------------------------------------------------------------------------------


def test_add_task_is_chainable_and_records_the_task() -> None:
    policy = RetryPolicy(max_attempts=2, initial_delay=0)
    wf = Workflow("w")
    assert wf.add_task("a", noop) is wf
    wf.add_task(
        "b",
        "echo hi",
        dependencies=["a"],
        timeout=5,
        retry_policy=policy,
        priority=3,
        tags=("x",),
        metadata={"estimated_duration": 2},
    )
    assert list(wf.tasks) == ["a", "b"]
    task = wf.tasks["b"]
    assert isinstance(task, Task)
    assert task.name == "b"
    assert task.action == "echo hi"
    assert task.dependencies == ("a",)
    assert task.timeout == 5.0
    assert task.retry_policy is policy
    assert task.priority == 3
    assert task.tags == ("x",)
    assert task.status is TaskStatus.PENDING
    assert task.trigger_rule == "all_success"
    assert task.estimated_duration == 2.0
    assert task.is_command
    assert not wf.tasks["a"].is_command
    assert wf.tasks["a"].retry_policy is None
    assert wf.tasks["a"].timeout is None


def test_dependencies_may_be_a_single_string_and_duplicates_collapse() -> None:
    wf = Workflow().add_task("a", noop).add_task("b", noop, dependencies="a").add_task("c", noop, dependencies="ab")
    assert wf.tasks["b"].dependencies == ("a",)
    assert wf.tasks["c"].dependencies == ("ab",)  # a string is one name, not characters
    wf.add_task("d", noop, dependencies=["a", "b", "a"])
    assert wf.tasks["d"].dependencies == ("a", "b")


def test_retry_policy_may_be_an_attempt_count() -> None:
    wf = Workflow().add_task("a", noop, retry_policy=4)
    assert wf.tasks["a"].retry_policy == RetryPolicy(max_attempts=4)


def test_async_functions_and_other_callables_are_accepted() -> None:
    async def coro() -> int:
        return 1

    class Callable_:
        def __call__(self) -> int:
            return 2

    wf = Workflow().add_task("a", coro).add_task("b", Callable_()).add_task("c", len, args=([1],))
    assert set(wf.tasks) == {"a", "b", "c"}


def test_graph_is_in_definition_order() -> None:
    wf = Workflow().add_task("z", noop).add_task("a", noop, dependencies=["z"])
    assert wf.graph() == {"z": (), "a": ("z",)}
    assert list(wf.graph()) == ["z", "a"]


def test_task_status_values() -> None:
    assert [s.name for s in TaskStatus] == [
        "PENDING",
        "RUNNING",
        "RETRYING",
        "COMPLETED",
        "FAILED",
        "SKIPPED",
        "CANCELLED",
    ]
    assert {s for s in TaskStatus if s.finished} == {
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.SKIPPED,
        TaskStatus.CANCELLED,
    }
    assert TaskStatus.COMPLETED == "completed"  # type: ignore[comparison-overlap]  # a StrEnum: equal on purpose
    assert str(TaskStatus.FAILED) == "failed"


def test_task_result_fields_and_to_dict() -> None:
    result = TaskResult(success=True, value=3, error=None, execution_time=0.5, attempts=2)
    assert (result.success, result.value, result.error, result.execution_time, result.attempts) == (
        True,
        3,
        None,
        0.5,
        2,
    )
    assert result.started_at is None and result.finished_at is None
    data = result.to_dict()
    assert data["value"] == 3
    assert data["attempts"] == 2
    assert isinstance(data["status"], str)


def test_workflow_repr_and_fresh_summary() -> None:
    wf = Workflow("fresh").add_task("a", noop).add_task("b", noop, dependencies=["a"])
    assert "fresh" in repr(wf)
    summary = wf.get_summary()
    assert summary["total_tasks"] == 2
    assert summary["pending"] == 2
    assert summary["success"] is False
    assert summary["tasks"]["a"]["status"] == "pending"


def test_cancel_when_not_running_returns_false() -> None:
    assert Workflow().add_task("a", noop).cancel() is False


# -- ready-made shapes -------------------------------------------------------------------------------------------


def fetch() -> int:
    return 2


def double(x: int) -> int:
    return x * 2


def add_one(x: int) -> int:
    return x + 1


def test_chain_passes_each_value_on(run_workflow: Callable[..., Any]) -> None:
    wf = chain(fetch, double, add_one)
    assert list(wf.tasks) == ["fetch", "double", "add_one"]
    assert wf.tasks["double"].dependencies == ("fetch",)
    assert wf.tasks["add_one"].dependencies == ("double",)
    assert run_workflow(wf) == {"fetch": 2, "double": 4, "add_one": 5}


def test_chain_names() -> None:
    wf = chain(fetch, lambda x: x, double, names=None)
    assert list(wf.tasks) == ["fetch", "task_1", "double"]
    wf = chain(fetch, double, names=["one", "two"])
    assert list(wf.tasks) == ["one", "two"]
    with pytest.raises(WorkflowError, match="names"):
        chain(fetch, double, names=["only-one"])
    with pytest.raises(WorkflowError, match="double"):
        chain(double, double)


def test_parallel_has_no_dependencies(run_workflow: Callable[..., Any]) -> None:
    wf = parallel(fetch, lambda: 7, names=["a", "b"])
    assert all(not t.dependencies for t in wf.tasks.values())
    assert run_workflow(wf) == {"a": 2, "b": 7}
    assert list(parallel(fetch, lambda: 1).tasks) == ["fetch", "task_1"]


def test_fan_out_fan_in(run_workflow: Callable[..., Any]) -> None:
    wf = fan_out_fan_in(fetch, [double, add_one], lambda results: sorted(results.items()))
    assert list(wf.tasks) == ["initial", "double", "add_one", "final"]
    assert wf.tasks["double"].dependencies == ("initial",)
    assert wf.tasks["final"].dependencies == ("double", "add_one")
    results = run_workflow(wf)
    assert results["final"] == [("add_one", 3), ("double", 4)]
    named = fan_out_fan_in(fetch, [double], add_one, initial_name="start", final_name="end")
    assert list(named.tasks) == ["start", "double", "end"]


# -- bad input at add_task / Workflow() --------------------------------------------------------------------------


@pytest.mark.parametrize("action", [42, None, b"echo hi", ["echo", "hi"]], ids=repr)
def test_action_must_be_callable_or_a_command_string(action: Any) -> None:
    with pytest.raises(WorkflowError, match="action"):
        Workflow().add_task("t", action)


def test_empty_command_string_is_rejected() -> None:
    with pytest.raises(WorkflowError, match="empty"):
        Workflow().add_task("t", "   ")


def test_shell_needs_a_command_string() -> None:
    with pytest.raises(WorkflowError, match="shell"):
        Workflow().add_task("t", noop, shell=True)


@pytest.mark.parametrize("timeout", [0, -1, -0.5, float("nan"), "10", True], ids=repr)
def test_timeout_must_be_positive(timeout: Any) -> None:
    with pytest.raises(WorkflowError, match="timeout"):
        Workflow().add_task("t", noop, timeout=timeout)


@pytest.mark.parametrize("timeout", [0, -3, float("nan")], ids=repr)
def test_workflow_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(WorkflowError, match="timeout"):
        Workflow("w", timeout=timeout)


def test_max_attempts_below_one() -> None:
    """``RetryPolicy`` itself raises ``ValueError``; ``add_task`` turns a bad value into ``WorkflowError``."""
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(WorkflowError, match="max_attempts") as info:
        Workflow().add_task("t", noop, retry_policy=0)
    assert "'t'" in str(info.value)
    with pytest.raises(WorkflowError):
        Workflow().add_task("t", noop, retry_policy={"max_attempts": -1})
    with pytest.raises(WorkflowError):
        Workflow().add_task("t", noop, retry_policy="3")  # type: ignore[arg-type]


def test_unknown_trigger_rule_lists_the_valid_ones() -> None:
    with pytest.raises(WorkflowError) as info:
        Workflow().add_task("t", noop, trigger_rule="all_sucess")
    text = str(info.value)
    for rule in ("all_success", "all_done", "one_failed"):
        assert rule in text
    assert "all_sucess" in text


def test_duplicate_task_name() -> None:
    wf = Workflow("w").add_task("a", noop)
    with pytest.raises(WorkflowError, match="duplicate") as info:
        wf.add_task("a", noop)
    assert "'a'" in str(info.value)
    assert wf.tasks["a"].action is noop


@pytest.mark.parametrize("name", ["", None, 3])
def test_task_name_must_be_a_non_empty_string(name: Any) -> None:
    with pytest.raises(WorkflowError):
        Workflow().add_task(name, noop)


def test_dependencies_must_be_names() -> None:
    with pytest.raises(WorkflowError, match="dependencies"):
        Workflow().add_task("t", noop, dependencies=[noop])  # type: ignore[list-item]


def test_condition_and_transform_must_be_callable() -> None:
    with pytest.raises(WorkflowError, match="condition"):
        Workflow().add_task("t", noop, condition=True)  # type: ignore[arg-type]
    with pytest.raises(WorkflowError, match="transform_result"):
        Workflow().add_task("t", noop, transform_result="upper")  # type: ignore[arg-type]


def test_priority_must_be_an_integer() -> None:
    with pytest.raises(WorkflowError, match="priority"):
        Workflow().add_task("t", noop, priority=1.5)  # type: ignore[arg-type]


def test_bad_add_task_leaves_the_workflow_unchanged() -> None:
    wf = Workflow().add_task("a", noop)
    with pytest.raises(WorkflowError):
        wf.add_task("b", noop, timeout=-1)
    assert list(wf.tasks) == ["a"]


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_max_concurrency_must_be_a_positive_int(limit: Any) -> None:
    with pytest.raises(ConcurrencyError, match="max_concurrency"):
        Workflow("w", max_concurrency=limit)


@pytest.mark.parametrize("executor", ["threads", "dask", 3])
def test_unknown_executor(executor: Any) -> None:
    with pytest.raises(ConcurrencyError, match="executor"):
        Workflow("w", executor=executor)


def test_executor_choices_are_accepted() -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        for choice in (None, "thread", "process", pool):
            assert Workflow("w", executor=choice).executor is choice


def test_add_listener_needs_a_callable() -> None:
    with pytest.raises(WorkflowError, match="listener"):
        Workflow().add_listener("print")  # type: ignore[arg-type]


# -- validation (raised by validate() and by run() before anything runs) -----------------------------------------


class Spy:
    """An action that records that it was called."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def test_unknown_dependency_is_reported_before_any_task_runs() -> None:
    spy = Spy()
    wf = Workflow("w").add_task("build", spy).add_task("test", spy, dependencies=["biuld"])
    with pytest.raises(DependencyResolutionError) as info:
        wf.validate()
    with pytest.raises(DependencyResolutionError) as info:
        asyncio.run(wf.run())
    err = info.value
    assert err.task_name == "test"
    assert err.missing == "biuld"
    assert "build" in err.suggestions
    text = str(err)
    assert "'test'" in text and "'biuld'" in text and "'build'" in text
    assert spy.calls == 0
    assert all(t.status is TaskStatus.PENDING for t in wf.tasks.values())


def test_cycle_is_reported_before_any_task_runs() -> None:
    spy = Spy()
    wf = Workflow("w").add_task("root", spy)
    wf.add_task("a", spy, dependencies=["b"]).add_task("b", spy, dependencies=["a"])
    with pytest.raises(CycleError):
        wf.validate()
    with pytest.raises(CycleError) as info:
        asyncio.run(wf.run())
    cycle = info.value.cycle
    assert cycle in (["a", "b", "a"], ["b", "a", "b"])
    assert " -> ".join(cycle) in str(info.value)
    assert spy.calls == 0


def test_three_node_cycle_message() -> None:
    wf = Workflow("w").add_task("a", noop, dependencies=["c"])
    wf.add_task("b", noop, dependencies=["a"]).add_task("c", noop, dependencies=["b"])
    with pytest.raises(CycleError) as info:
        wf.validate()
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == ["a", "b", "c"]
    for node, dep in itertools.pairwise(cycle):
        assert dep in wf.tasks[node].dependencies
    assert " -> ".join(cycle) in str(info.value)


def test_self_dependency_is_a_cycle() -> None:
    wf = Workflow("w").add_task("a", noop, dependencies=["a"])
    with pytest.raises(CycleError) as info:
        wf.validate()
    assert info.value.cycle == ["a", "a"]


def test_a_failed_validation_does_not_leave_the_workflow_running() -> None:
    """After ``run()`` raised a validation error, the workflow can be fixed and run."""
    wf = Workflow("w").add_task("a", fetch).add_task("b", double, dependencies=["nope"])
    with pytest.raises(DependencyResolutionError):
        asyncio.run(wf.run())
    wf.tasks["b"].dependencies = ("a",)
    assert asyncio.run(wf.run()) == {"a": 2, "b": 4}


def test_timeout_check_message_and_evidence() -> None:
    with pytest.raises(WorkflowError) as info:
        Workflow(timeout=-1)
    assert str(info.value.message) == "workflow timeout must be a positive number of seconds, got -1"
    assert info.value.context["timeout"] == -1
    with pytest.raises(WorkflowError, match="task 't': timeout must be a positive number of seconds, got True"):
        Workflow().add_task("t", lambda: 1, timeout=True)


def test_clock_is_keyword_only() -> None:
    from pytest_orchestrator.core.clock import VirtualClock

    clock = VirtualClock()
    assert Workflow("w", clock=clock).clock is clock
    with pytest.raises(TypeError):
        Workflow("w", True, None, None, None, None, None, clock)  # type: ignore[call-arg]


def test_finish_run_is_how_a_run_reports_back() -> None:
    wf = Workflow("w")
    wf.durations["old"] = 1.0
    wf.finish_run(run_id="abc", elapsed_time=2.5, durations={"a": 0.5})
    assert (wf.run_id, wf.elapsed_time, wf.durations) == ("abc", 2.5, {"old": 1.0, "a": 0.5})
    wf.add_task("a", lambda: 1)
    asyncio.run(wf.run())
    assert wf.run_id != "abc"
    assert wf.get_summary()["run_id"] == wf.run_id


def test_the_definition_side_does_not_import_the_engine(subprocess_env: dict[str, str]) -> None:
    """Importing the workflow (and the scheduler) loads neither the engine nor networkx; running loads the engine
    through the one seam in ``Workflow.run``."""
    import subprocess
    import sys

    code = (
        "import sys, asyncio\n"
        "from pytest_orchestrator.core import scheduler, workflow\n"
        "assert 'pytest_orchestrator.core.engine' not in sys.modules\n"
        "assert 'networkx' not in sys.modules\n"
        "wf = workflow.Workflow('w').add_task('a', lambda: 1)\n"
        "asyncio.run(wf.run())\n"
        "assert 'pytest_orchestrator.core.engine' in sys.modules\n"
        "assert 'networkx' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
