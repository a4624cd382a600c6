"""Property tests of the engine: random DAGs, durations, failures, retries, conditions, trigger rules, limits.

Everything the invariants rely on is recorded by the actions themselves (when each attempt started and ended,
how many attempts ran, how many ran at once) or by a listener (when each task was reported finished), on one
shared sequence counter, so the checks compare the order of events and never depend on wall-clock precision.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
import dataclasses
import itertools
from typing import Any

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from pytest_orchestrator import RetryPolicy
from pytest_orchestrator import TaskFailedError
from pytest_orchestrator import TaskStatus
from pytest_orchestrator import Workflow
from pytest_orchestrator.core import events as ev


ALWAYS = -1  # a task that fails on every attempt
RAISE: str = "raise"  # a condition that raises
FINISHED = {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED}


class Boom(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    deps: tuple[str, ...]
    duration: float
    failures: int  # attempts that fail before one succeeds; ALWAYS for never
    max_attempts: int | None  # RetryPolicy(max_attempts=...) or no policy
    condition: bool | str | None  # None: no condition; RAISE: the condition raises
    rule: str
    priority: int

    @property
    def attempts_allowed(self) -> int:
        return self.max_attempts or 1

    @property
    def succeeds(self) -> bool:
        """Whether the task completes when it runs to the end of its attempts."""
        return self.failures != ALWAYS and self.failures < self.attempts_allowed

    @property
    def attempts_needed(self) -> int:
        return self.attempts_allowed if self.failures == ALWAYS else min(self.failures + 1, self.attempts_allowed)


@dataclasses.dataclass(frozen=True)
class Scenario:
    specs: tuple[Spec, ...]
    max_concurrency: int | None
    fail_fast: bool


@st.composite
def scenarios(draw: st.DrawFn, fail_fast: bool) -> Scenario:
    n = draw(st.integers(1, 25))
    specs = []
    for j in range(n):
        deps = sorted(draw(st.sets(st.integers(0, j - 1), max_size=min(j, 4)))) if j else []
        kind = draw(st.sampled_from(["ok"] * 6 + ["fail", "flaky", "flaky"]))
        failures = 0 if kind == "ok" else ALWAYS if kind == "fail" else draw(st.integers(1, 3))
        max_attempts = draw(st.sampled_from([None, 1, 2, 3])) if kind != "ok" else draw(st.sampled_from([None, 2]))
        specs.append(
            Spec(
                name=f"t{j}",
                deps=tuple(f"t{d}" for d in deps),
                duration=draw(st.integers(0, 5)) / 1000,
                failures=failures,
                max_attempts=max_attempts,
                condition=draw(st.sampled_from([None, None, None, None, None, True, False, RAISE])),
                rule=draw(st.sampled_from(["all_success", "all_success", "all_success", "all_done", "one_failed"])),
                priority=draw(st.sampled_from([0, 0, 0, -1, 1])),
            )
        )
    return Scenario(
        specs=tuple(specs),
        max_concurrency=draw(st.one_of(st.none(), st.integers(1, 4))),
        fail_fast=fail_fast,
    )


class Recorder:
    """What the actions and a listener observed, on one sequence counter."""

    def __init__(self) -> None:
        self.seq = itertools.count()
        self.starts: dict[str, list[int]] = defaultdict(list)
        self.ends: dict[str, list[int]] = defaultdict(list)
        self.running = 0
        self.peak = 0
        self.reported: dict[str, int] = {}  # task -> seq of its terminal event
        self.terminal_events: dict[str, int] = defaultdict(int)
        self.started_events: dict[str, int] = defaultdict(int)
        self.first_failure: int | None = None
        self.condition_saw: dict[str, dict[str, TaskStatus]] = {}
        self.events: list[ev.Event] = []

    def action(self, spec: Spec) -> Callable[[], Any]:
        async def run() -> str:
            self.starts[spec.name].append(next(self.seq))
            attempt = len(self.starts[spec.name])
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                await asyncio.sleep(spec.duration)
                if spec.failures == ALWAYS or attempt <= spec.failures:
                    raise Boom(f"{spec.name} attempt {attempt}")
                return spec.name
            finally:
                self.running -= 1
                self.ends[spec.name].append(next(self.seq))

        return run

    def condition(self, spec: Spec) -> Callable[[dict[str, Any]], bool]:
        def check(results: dict[str, Any]) -> bool:
            self.condition_saw[spec.name] = {name: r.status for name, r in results.items()}
            if spec.condition == RAISE:
                raise Boom(f"condition of {spec.name}")
            return bool(spec.condition)

        return check

    def listener(self, event: ev.Event) -> None:
        self.events.append(event)
        if isinstance(event, ev.TaskStarted):
            self.started_events[event.task] += 1
        if isinstance(event, ev.TaskFinished | ev.TaskSkipped | ev.TaskCancelled):
            self.reported[event.task] = next(self.seq)
            self.terminal_events[event.task] += 1
            if (
                isinstance(event, ev.TaskFinished)
                and event.result.status is TaskStatus.FAILED
                and self.first_failure is None
            ):
                self.first_failure = self.reported[event.task]


def build(scenario: Scenario, rec: Recorder) -> Workflow:
    wf = Workflow("prop", fail_fast=scenario.fail_fast, max_concurrency=scenario.max_concurrency)
    wf.add_listener(rec.listener)
    for spec in scenario.specs:
        wf.add_task(
            spec.name,
            rec.action(spec),
            dependencies=spec.deps,
            retry_policy=RetryPolicy(max_attempts=spec.max_attempts, initial_delay=0) if spec.max_attempts else None,
            condition=rec.condition(spec) if spec.condition is not None else None,
            trigger_rule=spec.rule,
            priority=spec.priority,
        )
    return wf


async def execute(wf: Workflow) -> tuple[dict[str, Any] | None, TaskFailedError | None]:
    try:
        return await asyncio.wait_for(wf.run(), 20), None
    except TaskFailedError as exc:
        return None, exc


@pytest.mark.parametrize("fail_fast", [True, False], ids=["fail_fast", "run_on"])
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_engine_invariants(fail_fast: bool, data: st.DataObject) -> None:
    scenario = data.draw(scenarios(fail_fast), label="scenario")
    rec = Recorder()
    wf = build(scenario, rec)
    values, error = asyncio.run(execute(wf))  # wait_for inside: every run terminates
    specs = {s.name: s for s in scenario.specs}
    status = {name: task.status for name, task in wf.tasks.items()}

    # every task ends in a finished state, reported exactly once
    assert set(status.values()) <= FINISHED, status
    assert dict(rec.terminal_events) == dict.fromkeys(specs, 1)
    assert isinstance(rec.events[0], ev.WorkflowStarted)
    assert isinstance(rec.events[-1], ev.WorkflowFinished)

    # never more than max_concurrency at once, never more than max_attempts attempts
    if scenario.max_concurrency is not None:
        assert rec.peak <= scenario.max_concurrency
    for name, spec in specs.items():
        assert len(rec.starts[name]) <= spec.attempts_allowed, name
        assert len(rec.starts[name]) == len(rec.ends[name]), name

    # no task starts before every dependency has finished (whatever the rule); an action ends before its task
    # is reported finished
    for name, spec in specs.items():
        if rec.ends[name]:
            assert max(rec.ends[name]) < rec.reported[name]
        if not rec.starts[name]:
            continue
        first_start = min(rec.starts[name])
        for dep in spec.deps:
            assert rec.reported[dep] < first_start, f"{name} started before {dep} finished"
            assert all(end < first_start for end in rec.ends[dep])

    # a condition sees only finished tasks, its dependencies among them
    for name, seen in rec.condition_saw.items():
        assert set(seen.values()) <= FINISHED
        assert set(specs[name].deps) <= set(seen)

    # a completed all_success task had only completed dependencies; a task that ran used the attempts it needed
    for name, spec in specs.items():
        if status[name] is TaskStatus.COMPLETED and spec.rule == "all_success":
            assert all(status[d] is TaskStatus.COMPLETED for d in spec.deps), name
        if spec.condition is False or spec.condition == RAISE:
            assert not rec.starts[name]
            assert status[name] is not TaskStatus.COMPLETED
        if name in rec.condition_saw and spec.condition == RAISE:
            assert status[name] is TaskStatus.FAILED, "a raising condition fails its task"
        if status[name] is TaskStatus.COMPLETED:
            assert spec.succeeds
            assert len(rec.starts[name]) == spec.attempts_needed
        result = wf.tasks[name].result
        assert rec.started_events[name] >= len(rec.starts[name]), "every attempt is announced by TaskStarted"
        if status[name] in (TaskStatus.COMPLETED, TaskStatus.FAILED) and rec.starts[name]:
            assert result is not None and result.attempts == len(rec.starts[name])
            assert rec.started_events[name] == len(rec.starts[name])

    if scenario.fail_fast:
        # after the first failure no all_success action starts; cleanup rules are never cancelled
        if rec.first_failure is not None:
            for name, spec in specs.items():
                if spec.rule == "all_success":
                    assert all(start < rec.first_failure for start in rec.starts[name]), name
        for name, spec in specs.items():
            if spec.rule != "all_success":
                assert status[name] is not TaskStatus.CANCELLED, name
    else:
        assert TaskStatus.CANCELLED not in status.values()
        for name, spec in specs.items():
            deps_completed = all(status[d] is TaskStatus.COMPLETED for d in spec.deps)
            some_dep_failed = any(status[d] is TaskStatus.FAILED for d in spec.deps)
            runs = {
                "all_success": deps_completed,
                "all_done": True,
                "one_failed": some_dep_failed or not spec.deps,
            }[spec.rule]
            if not runs:
                assert status[name] is TaskStatus.SKIPPED, name
                assert not rec.starts[name]
            elif spec.condition is False:
                assert status[name] is TaskStatus.SKIPPED, name
                result = wf.tasks[name].result
                assert result is not None and result.reason == "condition"
            elif spec.condition == RAISE:
                assert status[name] is TaskStatus.FAILED, name
            else:
                # it ran, to the end of the attempts it needed
                assert len(rec.starts[name]) == spec.attempts_needed, name
                expected = TaskStatus.COMPLETED if spec.succeeds else TaskStatus.FAILED
                assert status[name] is expected, name

    # TaskFailedError iff some task failed; results hold exactly the completed values
    failed = sorted(n for n, s in status.items() if s is TaskStatus.FAILED)
    completed = {n: n for n, s in status.items() if s is TaskStatus.COMPLETED}
    if failed:
        assert error is not None
        assert sorted(error.failed) == failed
        assert error.task_name in failed
        assert isinstance(error.__cause__, Boom)
        assert error.results == completed
    else:
        assert error is None
        assert values == {n: completed.get(n) for n in specs}
    summary = wf.get_summary()
    assert summary["failed"] == len(failed)
    assert summary["completed"] == len(completed)
    assert summary["success"] == (not failed and TaskStatus.CANCELLED not in status.values())
