"""The exception tree in ``pytest_orchestrator.errors``: hierarchy, carried context, ``str()`` and pickling."""

from __future__ import annotations

import pickle

import pytest

from pytest_orchestrator import errors
from pytest_orchestrator.errors import ConcurrencyError
from pytest_orchestrator.errors import CycleError
from pytest_orchestrator.errors import DependencyResolutionError
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.errors import StateError
from pytest_orchestrator.errors import StepError
from pytest_orchestrator.errors import TaskFailedError
from pytest_orchestrator.errors import WorkflowError


MEMBERS = [
    CycleError,
    TaskFailedError,
    StepError,
    OrchestratorTimeoutError,
    StateError,
    DependencyResolutionError,
    ConcurrencyError,
]


@pytest.mark.parametrize("cls", MEMBERS, ids=lambda c: c.__name__)
def test_every_error_is_a_workflow_error(cls: type[WorkflowError]) -> None:
    """Catching ``WorkflowError`` catches every error of the package."""
    assert issubclass(cls, WorkflowError)
    assert issubclass(cls, Exception)
    with pytest.raises(WorkflowError):
        raise cls("boom")


def test_errors_module_exports_the_tree() -> None:
    """``errors.__all__`` names the whole tree and nothing that does not exist."""
    assert set(errors.__all__) == {c.__name__ for c in [WorkflowError, *MEMBERS]}
    for name in errors.__all__:
        assert getattr(errors, name).__name__ == name


def test_step_error_context_str_and_repr() -> None:
    """Keyword arguments become ``.context`` and attributes; ``str()`` is the message alone, ``repr()`` the evidence."""
    err = StepError("m", step_name="s", step_index=0)
    assert err.context == {"step_name": "s", "step_index": 0}
    assert err.step_name == "s"  # type: ignore[attr-defined]  # set from the keyword arguments
    assert err.step_index == 0  # type: ignore[attr-defined]
    assert err.message == "m"
    assert str(err) == "m"
    assert repr(err) == "StepError('m', step_name='s', step_index=0)"


def test_error_without_context_prints_only_the_message() -> None:
    """With no keyword arguments ``str()`` is the message and ``repr()`` has no trailing context."""
    assert str(StateError("state file is corrupt")) == "state file is corrupt"
    assert repr(StateError("state file is corrupt")) == "StateError('state file is corrupt')"
    assert StateError("x").context == {}


@pytest.mark.parametrize(
    ("cls", "context"),
    [
        (WorkflowError, {"workflow": "etl"}),
        (StepError, {"step_name": "load", "step_index": 2, "returncode": 3}),
        (OrchestratorTimeoutError, {"task_name": "slow", "timeout": 1.5}),
        (StateError, {"path": "/tmp/state.json", "key": "tasks"}),
        (ConcurrencyError, {"max_concurrency": 0}),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_members_record_their_kwargs(cls: type[WorkflowError], context: dict[str, object]) -> None:
    """Every member keeps its keyword arguments in ``.context``, as attributes, and shows them in ``repr()``."""
    err = cls("went wrong", **context)
    assert err.context == context
    for key, value in context.items():
        assert getattr(err, key) == value
        assert f"{key}={value!r}" in repr(err)
    assert str(err) == "went wrong"
    assert repr(err).startswith(f"{cls.__name__}('went wrong'")


def test_timeout_error_is_a_builtin_timeout_error() -> None:
    """``OrchestratorTimeoutError`` is caught by ``except TimeoutError`` as well as ``except WorkflowError``."""
    assert issubclass(OrchestratorTimeoutError, TimeoutError)
    with pytest.raises(TimeoutError):
        raise OrchestratorTimeoutError("late", task_name="t", timeout=1.0)


def test_cycle_error_carries_the_cycle() -> None:
    """``CycleError(cycle=...)`` keeps the cycle and, without a message, prints it as a path."""
    err = CycleError(cycle=["a", "b", "a"])
    assert err.cycle == ["a", "b", "a"]
    assert err.context["cycle"] == ["a", "b", "a"]
    assert "a -> b -> a" in str(err)
    assert CycleError("custom", cycle=["x", "x"]).message == "custom"
    assert CycleError("no cycle given").cycle == []


def test_dependency_resolution_error_carries_its_evidence() -> None:
    """``.task_name``, ``.missing`` and ``.suggestions`` are kept and named in the default message."""
    err = DependencyResolutionError(task_name="test", missing="biuld", suggestions=["build"])
    assert err.task_name == "test"
    assert err.missing == "biuld"
    assert err.suggestions == ["build"]
    text = str(err)
    assert "'test'" in text
    assert "'biuld'" in text
    assert "did you mean 'build'" in text
    bare = DependencyResolutionError(task_name="t", missing="nope")
    assert bare.suggestions == []
    assert "did you mean" not in bare.message


def test_task_failed_error_fields_and_hidden_results() -> None:
    """``TaskFailedError`` keeps ``.task_name``, ``.failed``, ``.results``; results stay out of ``repr()``."""
    err = TaskFailedError("task 'a' failed", task_name="a", failed=["a", "b"], results={"c": "secret-value"})
    assert err.task_name == "a"
    assert err.failed == ["a", "b"]
    assert err.results == {"c": "secret-value"}
    assert err.context["results"] == {"c": "secret-value"}
    assert "secret-value" not in repr(err)
    assert "failed=['a', 'b']" in repr(err)
    assert str(err) == "task 'a' failed"
    # failed defaults to the one task named
    assert TaskFailedError("x", task_name="only").failed == ["only"]


@pytest.mark.parametrize(
    "err",
    [
        WorkflowError("base", workflow="w"),
        StepError("m", step_name="s", step_index=0),
        OrchestratorTimeoutError("late", task_name="t", timeout=0.5),
        StateError("bad state", path="state.json"),
        ConcurrencyError("too many", max_concurrency=0),
        CycleError(cycle=["a", "b", "a"]),
        DependencyResolutionError(task_name="t", missing="bulid", suggestions=["build"]),
        TaskFailedError("t failed", task_name="t", failed=["t"], results={"ok": 1}),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickle(err: WorkflowError) -> None:
    """Errors cross process boundaries (process executors, xdist workers) with their class, message and context."""
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is type(err)
    assert clone.message == err.message
    assert clone.context == err.context
    assert str(clone) == str(err)
    assert repr(clone) == repr(err)
    for key in err.context:
        assert getattr(clone, key) == getattr(err, key)
