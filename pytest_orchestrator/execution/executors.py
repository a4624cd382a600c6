"""Where blocking calls run: threads (default), processes, a cluster, or any ``concurrent.futures.Executor``.

``open_executor`` returns an executor and whether the caller owns it (and so must shut it down). Pools are made
lazily, by the engine, only when a run has a sync action to place.

A ``ClusterExecutor`` (``DaskExecutor``, in ``execution/dask.py``) runs work on other processes or machines. The
engine opens one ``ClusterSession`` per run, before any task starts, and hands it sync actions and command tasks;
async actions stay in the engine's loop. ``"dask://HOST:PORT"`` names a Dask scheduler; Dask is imported only when
such an executor is used (``pip install 'pytest-orchestrator[dask]'``).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import concurrent.futures
import os
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol


if TYPE_CHECKING:
    from pytest_orchestrator.execution.process import ProcessResult

__all__ = [
    "CLUSTER_SCHEMES",
    "ClusterExecutor",
    "ClusterSession",
    "check_executor",
    "default_workers",
    "open_executor",
]

#: the executor strings that name a cluster: ``dask://HOST[:PORT]`` (plain TCP) and ``dask+tls://HOST[:PORT]``
CLUSTER_SCHEMES = ("dask://", "dask+tls://")

_CHOICES = "'thread', 'process', 'dask://HOST:PORT' or a concurrent.futures.Executor"


def default_workers() -> int:
    """Threads for sync actions when no limit is given: enough that sleeping I/O tasks do not queue."""
    return max(32, (os.cpu_count() or 1) + 4)


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
    ) -> Any:
        """``fn(*args, **kwargs)`` on a worker; cancelling the awaiting task cancels the call."""
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

    async def close(self) -> None: ...


class ClusterExecutor(concurrent.futures.Executor):
    """An executor whose work runs on a cluster. ``submit`` works as for any executor; the engine uses
    ``open_session`` instead, once per run, so that a cluster that cannot be reached stops the run before any task
    starts, and resources that no worker has are an error rather than a task that never starts."""

    #: where the cluster is, for messages
    address: str

    async def open_session(self, requirements: Mapping[str, Mapping[str, float]] | None = None) -> ClusterSession:
        """Connect for one run; ``requirements`` maps task names to the resources each needs."""
        raise NotImplementedError


def check_executor(spec: object) -> None:
    """Raise ``ValueError`` if ``spec`` names no executor (nothing is started or imported)."""
    if spec is None or isinstance(spec, concurrent.futures.Executor):
        return
    if not isinstance(spec, str):
        raise ValueError(f"executor must be {_CHOICES}, got {spec!r}")
    if spec in ("thread", "process"):
        return
    if spec.startswith(CLUSTER_SCHEMES):
        if not spec.split("://", 1)[1].strip("/"):
            raise ValueError(f"executor {spec!r} names no scheduler; use 'dask://HOST:PORT'")
        return
    hint = " (a Dask scheduler is named 'dask://HOST:PORT', or pass DaskExecutor())" if "dask" in spec else ""
    raise ValueError(f"unknown executor {spec!r}; use {_CHOICES}{hint}")


def open_executor(
    spec: str | concurrent.futures.Executor | None,
    *,
    max_workers: int | None = None,
    name: str = "orchestrate",
) -> tuple[concurrent.futures.Executor, bool]:
    """Resolve an executor spec to ``(executor, owned)``; this is how a command line's ``--executor`` is opened.

    ``"dask://HOST:PORT"`` gives a ``DaskExecutor`` for that scheduler (not connected yet: it connects when first
    used, and says which address it could not reach).
    """
    if isinstance(spec, concurrent.futures.Executor):
        return spec, False
    if spec in (None, "thread"):
        return (
            concurrent.futures.ThreadPoolExecutor(
                max_workers=max_workers or default_workers(), thread_name_prefix=name
            ),
            True,
        )
    if spec == "process":
        return concurrent.futures.ProcessPoolExecutor(max_workers=max_workers), True
    check_executor(spec)
    from pytest_orchestrator.execution.dask import DaskExecutor

    return DaskExecutor(spec), True
