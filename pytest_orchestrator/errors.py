"""The exceptions raised by pytest-orchestrator.

Every error carries its evidence: the keyword arguments it was raised with are kept in ``.context`` (and as
attributes). ``str()`` is the message alone, as for the standard library's errors; ``repr()`` shows the class, the
message and the context.

The tree::

    WorkflowError
     ├── CycleError                  the dependency graph has a cycle; ``.cycle`` lists it, first == last
     ├── DependencyResolutionError   a dependency names nothing; ``.task_name``, ``.missing``, ``.suggestions``
     ├── TaskFailedError             a run settled with failed tasks; ``.task_name``, ``.failed``, ``.results``
     ├── StepError                   one step (a command, a thin-API step) failed
     ├── OrchestratorTimeoutError    a task or a workflow ran out of time (also a built-in ``TimeoutError``)
     ├── StateError                  persisted state is missing, corrupt or inconsistent
     └── ConcurrencyError            a concurrency limit or executor was misused
"""

from __future__ import annotations

from typing import Any


__all__ = [
    "ConcurrencyError",
    "CycleError",
    "DependencyResolutionError",
    "OrchestratorTimeoutError",
    "StateError",
    "StepError",
    "TaskFailedError",
    "WorkflowError",
]


class WorkflowError(Exception):
    """Base class of every error the package raises on purpose.

    Usage::

        raise StepError("command failed", step_name="load", step_index=2)
        # str(err) == "command failed"
        # repr(err) == "StepError('command failed', step_name='load', step_index=2)"
        # err.context == {"step_name": "load", "step_index": 2}
    """

    def __init__(self, message: str = "", **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = dict(context)
        for key, value in context.items():
            if not hasattr(type(self), key):
                setattr(self, key, value)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        shown = [repr(self.message)]
        shown += [f"{k}={v!r}" for k, v in self.context.items() if k not in self._hidden_context]
        return f"{type(self).__name__}({', '.join(shown)})"

    #: context keys too bulky for ``repr()``; still available in ``.context``.
    _hidden_context: frozenset[str] = frozenset()

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword context survives pickling (process executors, xdist workers).
        return (_rebuild, (type(self), self.message, self.context))


def _rebuild(cls: type[WorkflowError], message: str, context: dict[str, Any]) -> WorkflowError:
    return cls(message, **context)


class CycleError(WorkflowError):
    """The dependency graph has a cycle. ``.cycle`` lists its nodes in order, the first repeated at the end."""

    def __init__(self, message: str = "", *, cycle: list[str] | None = None, **context: Any) -> None:
        cycle = list(cycle or [])
        if not message and cycle:
            message = "dependency cycle: " + " -> ".join(map(str, cycle))
        super().__init__(message, cycle=cycle, **context)
        self.cycle: list[str] = cycle


class DependencyResolutionError(WorkflowError):
    """A dependency names a task (or test, or script) that does not exist."""

    def __init__(
        self,
        message: str = "",
        *,
        task_name: str | None = None,
        missing: str | None = None,
        suggestions: list[str] | None = None,
        **context: Any,
    ) -> None:
        suggestions = list(suggestions or [])
        if not message and missing is not None:
            message = f"task {task_name!r} depends on unknown {missing!r}"
            if suggestions:
                message += "; did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
        super().__init__(message, task_name=task_name, missing=missing, suggestions=suggestions, **context)
        self.task_name = task_name
        self.missing = missing
        self.suggestions: list[str] = suggestions


class TaskFailedError(WorkflowError):
    """A workflow settled with at least one failed task.

    ``.task_name`` is the first failure (its exception is chained as ``__cause__``), ``.failed`` lists every failed
    task and ``.results`` holds the values of the tasks that did complete.
    """

    _hidden_context = frozenset({"results"})

    def __init__(
        self,
        message: str = "",
        *,
        task_name: str | None = None,
        failed: list[str] | None = None,
        results: dict[str, Any] | None = None,
        **context: Any,
    ) -> None:
        failed = list(failed or ([task_name] if task_name else []))
        super().__init__(message, task_name=task_name, failed=failed, results=results or {}, **context)
        self.task_name = task_name
        self.failed: list[str] = failed
        self.results: dict[str, Any] = results or {}


class StepError(WorkflowError):
    """One step of work (a command, a script, a thin-API step) failed."""


class OrchestratorTimeoutError(WorkflowError, TimeoutError):
    """A task or a whole workflow ran out of time."""


class StateError(WorkflowError):
    """Persisted state is missing, corrupt or does not match the workflow."""


class ConcurrencyError(WorkflowError):
    """A concurrency limit or an executor was used in a way that cannot work."""
