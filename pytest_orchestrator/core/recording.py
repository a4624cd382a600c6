"""What the engine asks of durable state, and the one rule for what a resumed run carries over.

The engine (core) records a run through the ``RunRecorder`` protocol and never imports the store that implements
it (``pytest_orchestrator.state``, a layer above). ``carry_over`` is the rule every kind of run resumes by (a
workflow, a scripts folder, a pipeline, a pytest session): a unit is carried over when it completed in the run
being resumed, its definition did not change, its value was stored (where values matter), and every unit it
depends on is carried over too; everything else runs again, and the reason is given for each.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
import hashlib
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol


if TYPE_CHECKING:
    from pytest_orchestrator.core.workflow import Task
    from pytest_orchestrator.core.workflow import TaskResult
    from pytest_orchestrator.core.workflow import Workflow

__all__ = ["RunRecorder", "RunState", "StoredUnit", "carry_over", "fingerprint", "task_fingerprint"]


class StoredUnit(Protocol):
    """A unit (task, script, stage, test) as a store recorded it in an earlier run."""

    @property
    def status(self) -> str: ...
    @property
    def fingerprint(self) -> str | None: ...
    @property
    def value(self) -> Any: ...
    @property
    def value_stored(self) -> bool: ...


class RunRecorder(Protocol):
    """One recorded run, as the engine sees it (made by ``RunState.open_run``)."""

    #: the id of this run in the store
    run_id: str
    #: the run this one resumes, or ``None``
    resumed_from: str | None
    #: tasks carried over from ``resumed_from``: name -> stored value
    carried: dict[str, Any]
    #: tasks of ``resumed_from`` that run again, with why ("definition changed", ...)
    rerun_reasons: dict[str, str]
    #: one line for the user about what resuming did ("resuming run ...", "nothing to resume: ...")
    message: str | None

    def attempt_failed(self, name: str, number: int, error: str) -> None:
        """An attempt of ``name`` failed and will be retried."""

    def task_finished(self, name: str, result: TaskResult, *, carried_over: bool = False) -> None:
        """``name`` finished (any status); buffered until ``flush``."""

    def needs_flush(self, dependencies: Iterable[str]) -> bool:
        """Whether one of ``dependencies`` was recorded and not yet committed."""

    def flush(self) -> None:
        """Commit what is buffered (the engine calls this before starting a dependent of a buffered task)."""

    def finish(self, status: str, summary: dict[str, Any]) -> None:
        """The run is over (``completed``, ``failed``, ``cancelled``, ``timed_out`` or ``interrupted``)."""


class RunState(Protocol):
    """Durable state a ``Workflow(state=...)`` records its runs in (``pytest_orchestrator.StateStore``)."""

    def open_run(self, workflow: Workflow, resume: bool | str, *, run_id: str | None = None) -> RunRecorder:
        """Begin a recorded run of ``workflow`` (under ``run_id``, or a new id); with ``resume``, carry over what
        the resumed run completed."""


def fingerprint(*parts: Any) -> str:
    """A short stable digest of the ``repr`` of ``parts`` (give mappings as sorted items)."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()


def task_fingerprint(task: Task, described: dict[Any, Any] | None = None) -> str:
    """What identifies a task's definition: its action (qualified name or command), args, kwargs, dependencies,
    and ``metadata["fingerprint"]`` when the task's maker knows more (a script's content and settings).

    ``described`` (a callable action -> the digest so far of its description with empty args and kwargs) saves
    describing and hashing again an action that many tasks share.
    """
    action = task.action
    # a callable called without arguments is described once per action
    cache = described if not isinstance(action, str) and task.args == () and not task.kwargs else None
    head = None
    if cache is not None:
        try:
            head = cache.get(action)
        except TypeError:  # an unhashable callable object
            cache = None
    if head is None:
        if isinstance(action, str):
            what = f"command {action!r} shell={task.shell}"
        else:
            qualname = getattr(action, "__qualname__", None) or type(action).__qualname__
            what = f"callable {getattr(action, '__module__', None)}.{qualname}"
        kwargs = sorted(task.kwargs.items()) if task.kwargs else ()
        head = hashlib.blake2b(f"{what}|{task.args!r}|{kwargs!r}|".encode(), digest_size=8)
        if cache is not None:
            cache[action] = head
    digest = head.copy()  # the same digest as hashing the whole text at once
    digest.update(f"{sorted(task.dependencies)!r}|{task.metadata.get('fingerprint')!r}".encode())
    return digest.hexdigest()


def carry_over(
    order: Iterable[str],
    dependencies: Mapping[str, Iterable[str]],
    fingerprints: Mapping[str, str | None],
    stored: Mapping[str, StoredUnit],
    *,
    need_values: bool | Mapping[str, bool] = True,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Which units a resumed run carries over, and why each of the others runs again.

    ``order`` is a topological order of the units (dependencies first). Returns ``(carried, reasons)``:
    ``carried`` maps each carried-over unit to its stored value; ``reasons`` maps each unit that the earlier run
    knew and that runs again to why. Units the earlier run never recorded simply run. ``need_values`` (for all,
    or per unit) says whether a unit's value must have been stored for it to be carried over (it must when its
    dependents receive it; scripts and stages hand nothing on).
    """
    carried: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    for name in order:
        unit = stored.get(name)
        if unit is None:
            continue
        if unit.status != "completed":
            reasons[name] = f"it did not complete ({unit.status})"
        elif unit.fingerprint != fingerprints.get(name):
            reasons[name] = "its definition changed"
        elif (need_values if isinstance(need_values, bool) else need_values.get(name, True)) and not unit.value_stored:
            reasons[name] = "its value was not stored (not JSON-serialisable)"
        else:
            rerun = [d for d in dependencies.get(name, ()) if d not in carried]
            if rerun:
                reasons[name] = f"its dependency {rerun[0]!r} runs again"
            else:
                carried[name] = unit.value
    return carried, reasons
