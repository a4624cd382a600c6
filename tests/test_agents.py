"""Tests of ``pytest_orchestrator.integration.agents``: sync, async and command agents, limits and routing."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from typing import Any

import pytest

from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.errors import TaskFailedError
from pytest_orchestrator.errors import WorkflowError
from pytest_orchestrator.integration import AgentOrchestrator
from pytest_orchestrator.integration import AgentResult
from pytest_orchestrator.integration import create_agent_workflow
from pytest_orchestrator.integration import default_orchestrator
from pytest_orchestrator.integration import run_agent_task


class Overlap:
    """Counts how many calls are inside at once (thread-safe, for sync and async agents)."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.calls: list[Any] = []
        self._lock = threading.Lock()

    def enter(self, task: Any) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.calls.append(task)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1


class SyncAgent:
    def __init__(self, overlap: Overlap | None = None, delay: float = 0.0) -> None:
        self.overlap = overlap or Overlap()
        self.delay = delay
        self.thread: str | None = None

    def execute(self, task: str) -> str:
        self.overlap.enter(task)
        self.thread = threading.current_thread().name
        try:
            time.sleep(self.delay)
            return f"sync:{task}"
        finally:
            self.overlap.leave()

    def run(self, task: str) -> str:  # never used: execute comes first
        raise AssertionError("run() called although execute() exists")


class AsyncAgent:
    def __init__(self, overlap: Overlap | None = None, delay: float = 0.0) -> None:
        self.overlap = overlap or Overlap()
        self.delay = delay

    async def run(self, task: str) -> str:
        self.overlap.enter(task)
        try:
            await asyncio.sleep(self.delay)
            return f"async:{task}"
        finally:
            self.overlap.leave()


def test_sync_async_and_callable_agents() -> None:
    agents = AgentOrchestrator()
    sync = SyncAgent()
    agents.register_agent("sync", sync)
    agents.register_agent("async", AsyncAgent())
    agents.register_agent("fn", lambda task: task[::-1])

    async def main() -> list[AgentResult]:
        return [
            await agents.run_agent_task("sync", "a"),
            await agents.run_agent_task("async", "b"),
            await agents.run_agent_task("fn", "abc"),
        ]

    sync_r, async_r, fn_r = asyncio.run(main())
    assert (sync_r.success, sync_r.agent, sync_r.result, sync_r.attempts) == (True, "sync", "sync:a", 1)
    assert sync.thread != threading.current_thread().name  # a sync agent runs in a thread
    assert async_r.result == "async:b" and fn_r.result == "cba"
    assert sync_r.execution_time >= 0 and json.dumps(sync_r.to_dict())
    assert AgentResult(True, "x", result=object()).to_dict()["result"].startswith("<object")
    assert [a["name"] for a in agents.list_agents()] == ["sync", "async", "fn"]


def test_command_template_agent() -> None:
    agents = AgentOrchestrator()
    upper = [sys.executable, "-c", "import sys; print(sys.argv[1].upper())", "{task}"]
    agents.register_agent("upper", upper)
    agents.register_agent("stdin", [sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])"])
    agents.register_agent("fails", [sys.executable, "-c", "import sys; print('nope', file=sys.stderr); sys.exit(3)"])
    agents.register_agent("missing", ["definitely-not-a-program-xyz", "{task}"])

    async def main() -> list[AgentResult]:
        return list(
            await asyncio.gather(
                agents.run_agent_task("upper", "it's $HOME; rm -rf /"),
                agents.run_agent_task("stdin", "abc"),
                agents.run_agent_task("fails", "x"),
                agents.run_agent_task("missing", "x"),
            )
        )

    upper_r, stdin_r, fails_r, missing_r = asyncio.run(main())
    assert upper_r.success and upper_r.result == "IT'S $HOME; RM -RF /"  # no shell: nothing expanded
    assert stdin_r.result == "cba"
    assert not fails_r.success and "exited with status 3" in (fails_r.error or "") and "nope" in (fails_r.error or "")
    assert not missing_r.success and "cannot start" in (missing_r.error or "")


def test_unknown_agent_is_a_failed_result() -> None:
    agents = AgentOrchestrator()
    agents.register_agent("summarizer", lambda t: t)
    result = asyncio.run(agents.run_agent_task("x", "task"))
    assert (result.success, result.agent, result.error, result.attempts) == (False, "x", "Agent 'x' not found", 0)
    near = asyncio.run(agents.run_agent_task("sumarizer", "task"))
    assert near.error == "Agent 'sumarizer' not found; did you mean 'summarizer'?"


def test_module_level_run_agent_task_uses_the_default_orchestrator() -> None:
    default = default_orchestrator()
    assert default is default_orchestrator()
    default.register_agent("test_agents-echo", lambda t: f"echo {t}")
    try:
        result = asyncio.run(run_agent_task("test_agents-echo", "hi"))
        assert result.success and result.result == "echo hi"
        own = AgentOrchestrator()
        own.register_agent("only-here", lambda t: 1)
        assert asyncio.run(run_agent_task("only-here", "x", orchestrator=own)).result == 1
        assert not asyncio.run(run_agent_task("only-here", "x")).success
    finally:
        default.unregister_agent("test_agents-echo")


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_concurrency_limit_is_enforced(kind: str) -> None:
    overlap = Overlap()
    agent = AsyncAgent(overlap, 0.1) if kind == "async" else SyncAgent(overlap, 0.1)
    agents = AgentOrchestrator()
    agents.register_agent("worker", agent, max_concurrency=2)

    async def main() -> list[AgentResult]:
        return list(await asyncio.gather(*(agents.run_agent_task("worker", str(i)) for i in range(6))))

    t0 = time.monotonic()
    results = asyncio.run(main())
    assert all(r.success for r in results)
    assert overlap.peak == 2
    assert time.monotonic() - t0 >= 0.29  # three rounds of two


def test_timeout_and_retry_policy() -> None:
    agents = AgentOrchestrator()
    attempts = {"n": 0}

    async def flaky(task: str) -> str:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError("try again")
        return "ok"

    async def slow(task: str) -> str:
        await asyncio.sleep(10)
        return "late"

    agents.register_agent("flaky", flaky)
    agents.register_agent("slow", slow)
    agents.register_agent("slow-command", [sys.executable, "-c", "import time; time.sleep(10)"])
    policy = RetryPolicy(max_attempts=3, initial_delay=0.01)
    result = asyncio.run(agents.run_agent_task("flaky", "x", retry_policy=policy))
    assert (result.success, result.result, result.attempts) == (True, "ok", 3)
    attempts["n"] = 0
    result = asyncio.run(agents.run_agent_task("flaky", "x", retry_policy=RetryPolicy(max_attempts=2, initial_delay=0)))
    assert not result.success and result.attempts == 2 and result.error == "ConnectionError: try again"
    t0 = time.monotonic()
    result = asyncio.run(agents.run_agent_task("slow", "x", timeout=0.2))
    assert not result.success and result.error == "agent 'slow' timed out after 0.2 s"
    result = asyncio.run(agents.run_agent_task("slow-command", "x", timeout=0.2))
    assert not result.success and result.error == "agent 'slow-command' timed out after 0.2 s"
    assert time.monotonic() - t0 < 6


def test_retry_on_is_honoured() -> None:
    agents = AgentOrchestrator()
    calls = {"broken": 0, "slow": 0}

    async def broken(task: str) -> str:
        calls["broken"] += 1
        raise ValueError("not a timeout")

    async def slow(task: str) -> str:
        calls["slow"] += 1
        await asyncio.sleep(10)
        return "late"

    agents.register_agent("broken", broken)
    agents.register_agent("slow", slow)
    only_timeouts = RetryPolicy(max_attempts=3, initial_delay=0, retry_on=(TimeoutError,))
    result = asyncio.run(agents.run_agent_task("broken", "x", retry_policy=only_timeouts))
    assert (result.success, result.attempts, calls["broken"]) == (False, 1, 1)
    assert result.error == "ValueError: not a timeout"
    result = asyncio.run(agents.run_agent_task("slow", "x", timeout=0.1, retry_policy=only_timeouts))
    assert (result.success, result.attempts, calls["slow"]) == (False, 3, 3)
    assert result.error == "agent 'slow' timed out after 0.1 s"


def test_command_agent_killed_by_a_signal() -> None:
    agents = AgentOrchestrator()
    agents.register_agent("dies", [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    result = asyncio.run(agents.run_agent_task("dies", "x"))
    assert not result.success and "killed by signal 9" in (result.error or "")


def test_dispatch_by_capabilities() -> None:
    agents = AgentOrchestrator()
    writer, coder = AsyncAgent(delay=0.05), AsyncAgent(delay=0.05)
    agents.register_agent("writer", writer, capabilities=["text"])
    agents.register_agent("coder", coder, capabilities=["code", "text"])

    async def main() -> list[AgentResult]:
        return list(await asyncio.gather(*(agents.dispatch(f"code {i}", requires=["code"]) for i in range(3))))

    results = asyncio.run(main())
    assert [r.agent for r in results] == ["coder"] * 3  # waits for the busy coder, never falls back to the writer
    assert coder.overlap.peak == 1 and writer.overlap.calls == []
    with pytest.raises(WorkflowError, match=r"no agent has the capabilities 'code', 'gpu' \(no agent has 'gpu'\)"):
        asyncio.run(agents.dispatch("train", requires=["gpu", "code"]))
    with pytest.raises(WorkflowError, match="no agent is registered"):
        asyncio.run(AgentOrchestrator().dispatch("x", requires="text"))
    assert agents.find_agents("text") == ["writer", "coder"]


def test_dispatch_prefers_idle_agents() -> None:
    agents = AgentOrchestrator()
    a, b = AsyncAgent(delay=0.2), AsyncAgent(delay=0.2)
    agents.register_agent("a", a, capabilities=["text"])
    agents.register_agent("b", b, capabilities=["text"])

    async def main() -> list[AgentResult]:
        return list(await asyncio.gather(agents.dispatch("one", "text"), agents.dispatch("two", "text")))

    t0 = time.monotonic()
    first, second = asyncio.run(main())
    assert {first.agent, second.agent} == {"a", "b"}
    assert time.monotonic() - t0 < 0.39  # side by side, one on each agent


def test_register_agent_validation() -> None:
    agents = AgentOrchestrator()
    agents.register_agent("a", lambda t: t)
    with pytest.raises(WorkflowError, match="already registered"):
        agents.register_agent("a", lambda t: t)
    with pytest.raises(WorkflowError, match="execute, run or __call__"):
        agents.register_agent("b", 42)
    with pytest.raises(WorkflowError, match="max_concurrency"):
        agents.register_agent("c", lambda t: t, max_concurrency=0)
    with pytest.raises(WorkflowError, match="list of strings"):
        agents.register_agent("d", ["tool", 3])


def test_create_agent_workflow_orders_and_passes_results() -> None:
    agents = AgentOrchestrator()
    order: list[str] = []

    async def research(task: str) -> str:
        order.append(task)
        await asyncio.sleep(0.05)
        return "FACTS"

    def write(task: str) -> str:
        order.append(task)
        return f"draft<{task}>"

    agents.register_agent("researcher", research, capabilities=["search"])
    agents.register_agent("writer", write, capabilities=["text"])
    wf = create_agent_workflow(
        [
            {"name": "review", "agent": "writer", "task": "review {draft}", "depends_on": ["draft"]},
            {"name": "draft", "requires": ["text"], "task": "write about {facts}", "depends_on": "facts"},
            {"name": "facts", "agent": "researcher", "task": "find facts"},
        ],
        orchestrator=agents,
    )
    results = asyncio.run(wf.run())
    assert order == ["find facts", "write about FACTS", "review draft<write about FACTS>"]
    assert results == {
        "facts": "FACTS",
        "draft": "draft<write about FACTS>",
        "review": "draft<review draft<write about FACTS>>",
    }
    failing = create_agent_workflow(
        [
            {"name": "a", "agent": "nobody", "task": "x"},
            {"name": "b", "agent": "writer", "task": "y", "depends_on": ["a"]},
        ],
        orchestrator=agents,
        fail_fast=False,
    )
    with pytest.raises(TaskFailedError, match="Agent 'nobody' not found"):
        asyncio.run(failing.run())
    assert failing.get_summary()["tasks"]["b"]["status"] == "skipped"
    with pytest.raises(WorkflowError, match="did you mean 'depends_on'"):
        create_agent_workflow([{"name": "a", "agent": "w", "task": "x", "depends": ["b"]}], orchestrator=agents)
    with pytest.raises(WorkflowError, match="either 'agent' or 'requires'"):
        create_agent_workflow([{"name": "a", "task": "x"}], orchestrator=agents)
