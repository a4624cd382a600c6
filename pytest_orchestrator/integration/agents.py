"""Agents: named workers with capabilities and a concurrency limit, and tasks routed to them.

An agent is either

- an object with an ``execute``, ``run`` or ``__call__`` method (looked up in that order), sync or async, called
  with the task; sync ones run in a thread of their own (on timeout the thread is abandoned, the task fails on
  time); or
- a command template, an argv list such as ``["tool", "--prompt", "{task}"]``: each ``{task}`` is replaced by the
  task text (if no element has ``{task}``, the task is written to the program's stdin); it runs through
  ``run_process_async`` without a shell (own process group, killed on timeout); its stdout, without the trailing
  newline, is the result, and a non-zero exit status is a failure.

``AgentOrchestrator.run_agent_task`` returns an :class:`AgentResult` and never raises for a failing agent.
At most ``max_concurrency`` tasks of one agent run at once (an ``asyncio.Semaphore`` per agent and event loop).
``dispatch`` routes a task to an idle agent that has every required capability.

Usage::

    agents = AgentOrchestrator()
    agents.register_agent("summarizer", ["llm", "-m", "small", "{task}"], capabilities=["text"], max_concurrency=2)
    agents.register_agent("coder", CoderAgent(), capabilities=["code", "text"])
    result = await agents.run_agent_task("summarizer", "Summarize README.md", timeout=60)
    result = await agents.dispatch("Write a test", requires=["code"])
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import inspect
import json
import shlex
import threading
import time
from typing import Any
import weakref

from pytest_orchestrator.core.graph import close_matches
from pytest_orchestrator.core.limits import within
from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.retry import run_attempts_async
from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.errors import StepError
from pytest_orchestrator.errors import WorkflowError
from pytest_orchestrator.execution.process import describe_exit
from pytest_orchestrator.execution.process import run_process_async


__all__ = [
    "AgentInfo",
    "AgentOrchestrator",
    "AgentResult",
    "create_agent_workflow",
    "default_orchestrator",
    "run_agent_task",
]

_METHODS = ("execute", "run", "__call__")
_TASK_KEYS = ("name", "agent", "requires", "task", "depends_on", "timeout", "retry")


@dataclasses.dataclass
class AgentResult:
    """The outcome of one agent task (after its retries)."""

    success: bool
    agent: str
    result: Any = None
    error: str | None = None
    attempts: int = 0
    execution_time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        try:
            json.dumps(self.result)
        except (TypeError, ValueError):
            data["result"] = repr(self.result)
        return data


@dataclasses.dataclass
class AgentInfo:
    """A registered agent. ``command`` is set for a command template, ``call`` for an object's method."""

    name: str
    agent: Any
    capabilities: frozenset[str]
    max_concurrency: int
    command: list[str] | None = None
    call: Callable[..., Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "command" if self.command is not None else "object",
            "command": self.command,
            "capabilities": sorted(self.capabilities),
            "max_concurrency": self.max_concurrency,
        }


class _LoopState:
    """Per event loop: each agent's semaphore, its load (tasks holding or waiting for it), and dispatch waiters."""

    def __init__(self) -> None:
        self.semaphores: dict[str, asyncio.Semaphore] = {}
        self.load: dict[str, int] = {}
        self.waiters: list[asyncio.Future[None]] = []

    def wake(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.waiters.clear()


def _resolve_call(agent: Any) -> Callable[..., Any] | None:
    for method in _METHODS:
        fn: object = getattr(agent, method, None)
        if callable(fn):
            return fn
    return None


def _thread_call(fn: Callable[..., Any], arg: Any) -> asyncio.Future[Any]:
    """Run ``fn(arg)`` in a daemon thread of its own; the future resolves in the calling loop.

    Not ``asyncio.to_thread``: a call abandoned at its timeout would hold a worker of the loop's default executor,
    and ``asyncio.run`` waits for those at shutdown. The timeout itself is ``core.limits.within``'s.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)

    def work() -> None:
        try:
            value, exc = fn(arg), None
        except BaseException as error:  # handed to the awaiting task
            value, exc = None, error
        try:
            loop.call_soon_threadsafe(settle, value, exc)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    threading.Thread(target=work, name="pytest-orchestrator-agent", daemon=True).start()
    return future


def _timed_out(info: AgentInfo, timeout: float | None) -> OrchestratorTimeoutError:
    return OrchestratorTimeoutError(
        f"agent {info.name!r} timed out after {timeout:g} s", agent=info.name, timeout=timeout
    )


class AgentOrchestrator:
    """Registers agents and runs tasks on them (see the module docstring)."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentInfo] = {}
        self._lock = threading.Lock()
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()

    # -- registry --------------------------------------------------------------------------------------------
    def register_agent(
        self, name: str, agent: Any, capabilities: Iterable[str] | str = (), max_concurrency: int = 1
    ) -> AgentInfo:
        """Register ``agent`` under ``name`` (see the module docstring for what an agent may be)."""
        if not isinstance(name, str) or not name:
            raise WorkflowError(f"an agent needs a non-empty name, got {name!r}")
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise WorkflowError(f"agent {name!r}: max_concurrency must be an integer >= 1, got {max_concurrency!r}")
        caps = (capabilities,) if isinstance(capabilities, str) else tuple(capabilities)
        if not all(isinstance(c, str) and c for c in caps):
            raise WorkflowError(f"agent {name!r}: capabilities must be non-empty strings, got {caps!r}")
        info = AgentInfo(name, agent, frozenset(caps), max_concurrency)
        if isinstance(agent, str):
            info.command = shlex.split(agent)
        elif isinstance(agent, list | tuple):
            if not all(isinstance(part, str) for part in agent):
                raise WorkflowError(f"agent {name!r}: a command template is a list of strings, got {agent!r}")
            info.command = list(agent)
        else:
            info.call = _resolve_call(agent)
            if info.call is None:
                raise WorkflowError(
                    f"agent {name!r}: expected an object with execute, run or __call__, or a command list, "
                    f"got {type(agent).__name__}"
                )
        if info.command is not None and not info.command:
            raise WorkflowError(f"agent {name!r}: the command template is empty")
        with self._lock:
            if name in self._agents:
                raise WorkflowError(f"agent {name!r} is already registered")
            self._agents[name] = info
        return info

    def unregister_agent(self, name: str) -> bool:
        with self._lock:
            return self._agents.pop(name, None) is not None

    @property
    def agents(self) -> dict[str, AgentInfo]:
        with self._lock:
            return dict(self._agents)

    def list_agents(self) -> list[dict[str, Any]]:
        return [info.to_dict() for info in self.agents.values()]

    def find_agents(self, requires: Iterable[str] | str = ()) -> list[str]:
        """Names of the agents that have every capability in ``requires``, in registration order."""
        wanted = frozenset((requires,) if isinstance(requires, str) else requires)
        return [name for name, info in self.agents.items() if wanted <= info.capabilities]

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._loops.get(loop)
            if state is None:
                state = self._loops[loop] = _LoopState()
            return state

    # -- running ---------------------------------------------------------------------------------------------
    async def run_agent_task(
        self,
        agent_name: str,
        task: Any,
        *,
        timeout: float | None = 300,
        retry_policy: RetryPolicy | int | None = None,
    ) -> AgentResult:
        """Run ``task`` on agent ``agent_name``: wait for a free slot (its ``max_concurrency``), then call it,
        each attempt under ``timeout`` seconds, retrying per ``retry_policy``. Never raises for a failing agent;
        an unknown agent is ``AgentResult(success=False, error="Agent 'x' not found ...")``."""
        info = self.agents.get(agent_name)
        if info is None:
            hints = close_matches(str(agent_name), self.agents)
            error = f"Agent {agent_name!r} not found"
            if hints:
                error += "; did you mean " + " or ".join(repr(h) for h in hints) + "?"
            return AgentResult(False, str(agent_name), error=error)
        return await self._run(info, task, timeout, RetryPolicy.from_value(retry_policy), self._state())

    async def _run(
        self, info: AgentInfo, task: Any, timeout: float | None, policy: RetryPolicy | None, state: _LoopState
    ) -> AgentResult:
        # load counts this task from now on, so dispatch() sees it before the first await
        state.load[info.name] = state.load.get(info.name, 0) + 1
        try:
            semaphore = state.semaphores.get(info.name)
            if semaphore is None:
                semaphore = state.semaphores[info.name] = asyncio.Semaphore(info.max_concurrency)
            async with semaphore:
                return await self._attempts(info, task, timeout, policy)
        finally:
            state.load[info.name] -= 1
            state.wake()

    async def _attempts(
        self, info: AgentInfo, task: Any, timeout: float | None, policy: RetryPolicy | None
    ) -> AgentResult:
        t0 = time.perf_counter()
        outcome = await run_attempts_async(lambda _n: self._call(info, task, timeout), policy)
        elapsed = time.perf_counter() - t0
        if outcome.error is not None:
            exc = outcome.error
            error = exc.message if isinstance(exc, WorkflowError) else f"{type(exc).__name__}: {exc}"
            return AgentResult(False, info.name, error=error, attempts=outcome.attempts, execution_time=elapsed)
        return AgentResult(True, info.name, outcome.value, attempts=outcome.attempts, execution_time=elapsed)

    async def _call(self, info: AgentInfo, task: Any, timeout: float | None) -> Any:
        if info.command is not None:
            return await self._command(info, info.command, task, timeout)
        call = info.call
        assert call is not None

        async def invoke() -> Any:
            if inspect.iscoroutinefunction(call):
                return await call(task)
            value = await _thread_call(call, task)
            if inspect.isawaitable(value):
                value = await value
            return value

        return await within(timeout, invoke(), lambda: _timed_out(info, timeout))

    @staticmethod
    async def _command(info: AgentInfo, template: Sequence[str], task: Any, timeout: float | None) -> str:
        text = task if isinstance(task, str) else json.dumps(task, default=str)
        uses_task = any("{task}" in part for part in template)
        argv = [part.replace("{task}", text) for part in template]
        proc = await run_process_async(argv, timeout=timeout, input=None if uses_task else text)
        if proc.timed_out:
            raise _timed_out(info, timeout)
        if proc.error is not None:
            raise StepError(f"agent {info.name!r}: {proc.error}", agent=info.name)
        if proc.returncode != 0:
            tail = proc.tail("stderr", 10) or proc.tail("stdout", 10)
            ended = "ended without an exit status" if proc.returncode is None else describe_exit(proc.returncode)
            raise StepError(
                f"agent {info.name!r}: {shlex.join(argv[:1])} {ended}" + (f"\n{tail}" if tail else ""),
                agent=info.name,
                returncode=proc.returncode,
            )
        return proc.stdout[:-1] if proc.stdout.endswith("\n") else proc.stdout

    async def dispatch(
        self,
        task: Any,
        requires: Iterable[str] | str = (),
        *,
        timeout: float | None = 300,
        retry_policy: RetryPolicy | int | None = None,
    ) -> AgentResult:
        """Run ``task`` on an idle agent that has every capability in ``requires``: the one with the fewest
        tasks, below its limit; if all capable agents are busy, wait for one. Never falls back to an agent that
        lacks a capability: raises ``WorkflowError`` naming the capabilities if no registered agent has them."""
        wanted = frozenset((requires,) if isinstance(requires, str) else requires)
        policy = RetryPolicy.from_value(retry_policy)
        state = self._state()
        loop = asyncio.get_running_loop()
        while True:
            agents = self.agents
            capable = [info for info in agents.values() if wanted <= info.capabilities]
            if not capable:
                raise self._no_agent(wanted, agents)
            idle = [info for info in capable if state.load.get(info.name, 0) < info.max_concurrency]
            if idle:
                chosen = min(idle, key=lambda info: state.load.get(info.name, 0))
                return await self._run(chosen, task, timeout, policy, state)
            waiter: asyncio.Future[None] = loop.create_future()
            state.waiters.append(waiter)
            await waiter

    @staticmethod
    def _no_agent(wanted: frozenset[str], agents: Mapping[str, AgentInfo]) -> WorkflowError:
        names = ", ".join(repr(c) for c in sorted(wanted))
        everywhere = set().union(*(info.capabilities for info in agents.values())) if agents else set()
        missing = sorted(wanted - everywhere)
        if not agents:
            detail = "no agent is registered"
        elif missing:
            detail = "no agent has " + ", ".join(repr(c) for c in missing)
        else:
            detail = "no single agent has them all"
        registered = "; ".join(f"{n}: {', '.join(sorted(i.capabilities)) or '-'}" for n, i in agents.items())
        return WorkflowError(
            f"no agent has the capabilities {names} ({detail})" + (f"; agents: {registered}" if registered else ""),
            requires=sorted(wanted),
            missing=missing,
        )


# -- module level ------------------------------------------------------------------------------------------------
_default: AgentOrchestrator | None = None
_default_lock = threading.Lock()


def default_orchestrator() -> AgentOrchestrator:
    """The module-level orchestrator used when none is given."""
    global _default
    with _default_lock:
        if _default is None:
            _default = AgentOrchestrator()
        return _default


async def run_agent_task(
    agent_name: str, task: Any, orchestrator: AgentOrchestrator | None = None, **kwargs: Any
) -> AgentResult:
    """``(orchestrator or default_orchestrator()).run_agent_task(agent_name, task, **kwargs)``."""
    return await (orchestrator or default_orchestrator()).run_agent_task(agent_name, task, **kwargs)


def _fill_prompt(task: Any, values: Mapping[str, Any]) -> Any:
    if not isinstance(task, str):
        return task
    for dep, value in values.items():
        task = task.replace("{" + dep + "}", str(value))
    return task


def create_agent_workflow(
    tasks: Sequence[Mapping[str, Any]],
    *,
    orchestrator: AgentOrchestrator | None = None,
    name: str = "agents",
    fail_fast: bool = True,
) -> Workflow:
    """A workflow of agent tasks: each ``{name, agent (or requires), task, depends_on: [...], timeout, retry}``.

    A task runs on the named agent, or is dispatched by ``requires`` (capabilities). ``{dep}`` in a task's text
    is replaced by the result of its dependency ``dep``. A task's value is its agent's result; a failing agent
    fails the task (``StepError``), with the workflow's fail_fast and skip rules.
    """
    agents = orchestrator or default_orchestrator()
    wf = Workflow(name, fail_fast=fail_fast)
    for i, spec in enumerate(tasks):
        if not isinstance(spec, Mapping):
            raise WorkflowError(f"agent task #{i + 1} must be a mapping, got {type(spec).__name__}")
        unknown = [k for k in spec if k not in _TASK_KEYS]
        if unknown:
            hints = close_matches(str(unknown[0]), _TASK_KEYS)
            raise WorkflowError(
                f"agent task #{i + 1}: unknown key {unknown[0]!r}" + (f" (did you mean {hints[0]!r}?)" if hints else "")
            )
        task_name = spec.get("name")
        if not isinstance(task_name, str) or not task_name:
            raise WorkflowError(f"agent task #{i + 1} needs a name")
        if "task" not in spec:
            raise WorkflowError(f"agent task {task_name!r} needs a 'task' (the prompt)", task_name=task_name)
        if ("agent" in spec) == ("requires" in spec):
            raise WorkflowError(f"agent task {task_name!r}: give either 'agent' or 'requires'", task_name=task_name)
        depends = spec.get("depends_on") or ()
        depends = (depends,) if isinstance(depends, str) else tuple(depends)
        wf.add_task(task_name, _agent_action(agents, task_name, spec, depends), dependencies=depends)
    return wf


def _agent_action(
    agents: AgentOrchestrator, task_name: str, spec: Mapping[str, Any], depends: tuple[str, ...]
) -> Callable[..., Any]:
    timeout = spec.get("timeout", 300)
    retry = spec.get("retry")

    async def run_agent(_task_results: dict[str, Any]) -> Any:
        values = {d: _task_results[d].value for d in depends if d in _task_results}
        prompt = _fill_prompt(spec["task"], values)
        if "agent" in spec:
            result = await agents.run_agent_task(spec["agent"], prompt, timeout=timeout, retry_policy=retry)
        else:
            result = await agents.dispatch(prompt, spec["requires"], timeout=timeout, retry_policy=retry)
        if not result.success:
            raise StepError(f"agent task {task_name!r} on {result.agent!r}: {result.error}", step_name=task_name)
        return result.result

    return run_agent
