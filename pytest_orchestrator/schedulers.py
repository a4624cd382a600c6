"""The ready-queue strategies, under the original module's name ``schedulers``: which ready task starts first.

Exists because the original had a ``schedulers`` submodule (ordering strategies); here a strategy is a name given
to ``Workflow(strategy=...)`` and applied by :class:`~pytest_orchestrator.core.scheduler.DagScheduler`, the one
state machine behind the engine, the serial plugin and the xdist scheduler. Time-based scheduling (cron, intervals)
is :mod:`pytest_orchestrator.scheduler`, a different thing.

- ``"critical_path"`` (default): ``priority`` first, then the task with the most work left behind it (by known or
  remembered durations), then definition order; shortest makespan on the benchmark (``bench/engine.py``);
- ``"priority"``: ``priority`` first, then definition order;
- ``"fifo"``: the order in which tasks became ready (``priority`` is ignored).

A strategy only matters when ready tasks queue (``max_concurrency``, or sync actions sharing a bounded pool).
"""

from __future__ import annotations

from pytest_orchestrator.core.scheduler import DagScheduler
from pytest_orchestrator.core.workflow import STRATEGIES


__all__ = ["DEFAULT_STRATEGY", "STRATEGIES", "DagScheduler"]

#: the strategy of a ``Workflow`` that names none
DEFAULT_STRATEGY = "critical_path"
