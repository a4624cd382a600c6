"""Where blocking calls run: threads (default), processes, a cluster, or any ``concurrent.futures.Executor``.

``open_executor`` returns an executor and whether the caller owns it (and so must shut it down). Pools are made
lazily, by the engine, only when a run has a sync action to place.

A ``ClusterExecutor`` (``execution/cluster.py``; ``DaskExecutor`` in ``execution/dask.py``) runs work on other
processes or machines. ``"dask://HOST:PORT"`` names a Dask scheduler; Dask is imported only when such an executor
is used (``pip install 'pytest-orchestrator[dask]'``).
"""

from __future__ import annotations

import concurrent.futures
import os


__all__ = [
    "CLUSTER_SCHEMES",
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
