"""``orchestrate run --executor dask://HOST:PORT``: the cluster connected to before anything runs.

``open_cluster`` connects (so that an address that cannot be reached, or a missing ``[dask]`` extra, is a usage
error naming it before any script or stage starts) and returns the executor, which the run's workflow is given:
its engine opens the run's session, and each script or stage runs as a subprocess on a worker
(``ClusterSession.run_killable``), its process group killed there on timeout or cancellation. Script paths, the
working folder and the run folder must be the same paths on the workers (a shared file system, or the same
checkout on every host).
"""

from __future__ import annotations

from pytest_orchestrator.errors import ConcurrencyError
from pytest_orchestrator.execution.cluster import ClusterExecutor


__all__ = ["CONNECT_TIMEOUT", "open_cluster"]

#: seconds to reach the scheduler before the run is refused
CONNECT_TIMEOUT = 10.0


def open_cluster(spec: str) -> tuple[ClusterExecutor, int]:
    """Connect to the Dask scheduler ``spec`` names: ``(executor, worker threads)``; the caller shuts it down.

    Raises ``ConcurrencyError`` naming the address when it cannot be reached or Dask is not installed.
    """
    try:
        from pytest_orchestrator.execution.dask import DaskExecutor

        executor = DaskExecutor(spec, connect_timeout=CONNECT_TIMEOUT)
    except ImportError as exc:
        raise ConcurrencyError(f"--executor {spec}: {exc}", executor=spec) from None
    try:
        threads = executor.connect()
    except BaseException:
        executor.shutdown()
        raise
    if threads < 1:
        executor.shutdown()
        raise ConcurrencyError(f"the Dask scheduler at {executor.address} has no workers", executor=spec)
    return executor, threads
