"""What the engine needs of an executor that runs work on a cluster: ``ClusterExecutor`` and ``ClusterSession``.

The engine opens one ``ClusterSession`` per run, before any task starts, and hands it sync actions and command
tasks; async actions stay in the engine's loop. While the run lasts, ``active_session()`` gives its session to the
run's async actions, which may place blocking work there themselves (``run_killable``: a scripts run puts each
script on a worker that way). ``DaskExecutor`` (``execution/dask.py``) is the one implementation.

A value the driver does not need while the run lasts may stay on the cluster: the engine says so per call
(``keep=True``), and the session may then return an ``OnCluster`` placeholder instead of the value. The engine
hands placeholders to dependents that run on the cluster as they are (the session turns them back into the cluster's
own reference, so the value goes from worker to worker), and fetches them in one batch (``fetch``) for the run's
result.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
import concurrent.futures
import contextlib
import contextvars
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol


if TYPE_CHECKING:
    from pytest_orchestrator.execution.process import ProcessResult

__all__ = ["ClusterExecutor", "ClusterSession", "OnCluster", "active_session", "session_active"]


class OnCluster:
    """A task's value left on the cluster: ``handle`` is the session's reference to it (a Dask future).

    Made by a session's ``call(..., keep=True)``; the engine keeps it as the task's value while the run lasts and
    replaces it by the value itself (``ClusterSession.fetch``) before ``run()`` returns.
    """

    __slots__ = ("handle",)

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def __repr__(self) -> str:
        return f"<value kept on the cluster: {self.handle!r}>"


class ClusterSession(Protocol):
    """One run's connection to a cluster (``ClusterExecutor.open_session``): where the engine places work."""

    async def call(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        name: str,
        resources: Mapping[str, float] | None = None,
        keep: bool = False,
    ) -> Any:
        """``fn(*args, **kwargs)`` on a worker; cancelling the awaiting task cancels the call. ``args`` and
        ``kwargs`` may hold ``OnCluster`` values of earlier calls (at the top level, or as the values of a dict, list
        or tuple there). With ``keep`` (the driver does not need the value before the run ends) the session may
        return an ``OnCluster`` placeholder instead of the value."""
        ...

    async def fetch(self, values: list[OnCluster]) -> list[Any]:
        """The values that ``values`` stand for, in one batch; a value that cannot be fetched stays a placeholder."""
        ...

    async def run_command(
        self,
        command: str,
        *,
        shell: bool,
        timeout: float | None,
        name: str,
        resources: Mapping[str, float] | None = None,
    ) -> ProcessResult:
        """A command as a subprocess on a worker, its tree killed there on timeout or when the awaiting task is
        cancelled."""
        ...

    async def run_killable(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        name: str,
        resources: Mapping[str, float] | None = None,
    ) -> Any:
        """``fn(*args, cancel_event=EVENT, **kwargs)`` on a worker, ``EVENT`` a ``threading.Event`` there that is set
        when the awaiting task is cancelled (``fn`` kills what it started and returns); the cancellation goes
        through once ``fn`` has returned (bounded). ``fn`` must be importable on the workers."""
        ...

    async def close(self) -> None: ...


class ClusterExecutor(concurrent.futures.Executor):
    """An executor whose work runs on a cluster. ``submit`` works as for any executor; the engine uses
    ``open_session`` instead, once per run, so that a cluster that cannot be reached stops the run before any task
    starts, and resources that no worker has are an error rather than a task that never starts."""

    #: where the cluster is, for messages
    address: str

    def connect(self) -> int:
        """Connect now, from synchronous code (before a run, to fail early), and return how many tasks the cluster
        runs at once (its worker threads). Raises ``ConcurrencyError`` naming the address if it cannot be reached."""
        raise NotImplementedError

    async def open_session(self, requirements: Mapping[str, Mapping[str, float]] | None = None) -> ClusterSession:
        """Connect for one run; ``requirements`` maps task names to the resources each needs."""
        raise NotImplementedError


_ACTIVE: contextvars.ContextVar[ClusterSession | None] = contextvars.ContextVar(
    "pytest_orchestrator_cluster_session", default=None
)


def active_session() -> ClusterSession | None:
    """The cluster session of the workflow run this code is part of (its actions, in the engine's loop), or None."""
    return _ACTIVE.get()


@contextlib.contextmanager
def session_active(session: ClusterSession | None) -> Iterator[None]:
    """Make ``session`` the ``active_session()`` of the current context (the engine, for one run)."""
    token = _ACTIVE.set(session)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
