"""``MetricsCollector``: a listener that turns engine and scheduler events into run metrics.

``collector.attach(workflow | scheduler)`` subscribes it (``collector.add_graph(name, graph)`` when the events of a
run come from elsewhere: the pytest plugin replays a session's items); ``to_dict()`` reads it: ``counts`` by status,
``retries``, ``durations`` (p50/p95/max per task and overall), ``queue_wait`` (ready to started), ``concurrency``
(the number of running tasks over time, and its maximum), ``critical_path`` and, for a scheduler, ``jobs`` (the
same numbers per job, the queue wait being the lag between due and start).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
import dataclasses
import json
import math
import threading
from typing import Any

from pytest_orchestrator.core import events as ev
from pytest_orchestrator.core.graph import critical_path
from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.schedule.jobs import JobFinished
from pytest_orchestrator.schedule.jobs import JobSkipped
from pytest_orchestrator.schedule.scheduler import Scheduler


__all__ = ["MetricsCollector", "summarize"]

STATUSES = ("completed", "failed", "skipped", "cancelled")


def _percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1), nearest rank on the sorted values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summarize(values: list[float]) -> dict[str, float]:
    """``count``, ``sum``, ``p50``, ``p95`` and ``max`` of ``values``."""
    return {
        "count": len(values),
        "sum": sum(values),
        "p50": _percentile(values, 0.5),
        "p95": _percentile(values, 0.95),
        "max": max(values, default=0.0),
    }


@dataclasses.dataclass
class _Run:
    """One workflow run being watched."""

    graph: dict[str, tuple[str, ...]]
    started: float | None = None
    finished_at: dict[str, float] = dataclasses.field(default_factory=dict)
    durations: dict[str, float] = dataclasses.field(default_factory=dict)
    running: set[str] = dataclasses.field(default_factory=set)


class MetricsCollector:
    """Collects metrics from the workflows and schedulers it is attached to (it is itself an event listener).

    Usage::

        collector = MetricsCollector()
        collector.attach(wf)
        asyncio.run(wf.run())
        collector.to_dict()["durations"]["overall"]["p95"]
        collector.to_prometheus()
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._graphs: dict[str, dict[str, tuple[str, ...]]] = {}
        self._runs: dict[str, _Run] = {}
        self.counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        self.retries: dict[str, int] = {}
        self.durations: dict[str, list[float]] = {}
        self.queue_waits: dict[str, list[float]] = {}
        self.timeline: list[tuple[float, int]] = []
        self.workflows = 0
        self.last_critical_path: list[str] = []
        self.last_critical_path_time = 0.0
        self._running = 0
        self._t0: float | None = None
        self.jobs: dict[str, dict[str, Any]] = {}

    # -- attaching ---------------------------------------------------------------------------------------------
    def attach(self, target: Workflow | Scheduler) -> MetricsCollector:
        """Listen to a workflow (or a pipeline workflow) or to a scheduler and every workflow its jobs run."""
        if isinstance(target, Workflow):
            self.add_graph(target.name, target.graph())
            if self not in target.listeners:
                target.add_listener(self)
        elif isinstance(target, Scheduler):
            target.add_listener(self)
            target.add_workflow_hook(self.attach)
        else:
            raise TypeError(f"attach() takes a Workflow or a Scheduler, got {type(target).__name__}")
        return self

    def add_graph(self, name: str, graph: Mapping[str, Iterable[str]]) -> MetricsCollector:
        """Know the dependencies (``{task: [dependencies]}``) of the run ``name``, whose events the collector is
        then called with directly; queue waits and the critical path need them (``attach`` does this for a
        workflow)."""
        with self._lock:
            self._graphs[name] = {task: tuple(deps) for task, deps in graph.items()}
        return self

    # -- listening -----------------------------------------------------------------------------------------------
    def __call__(self, event: Any) -> None:
        with self._lock:
            if isinstance(event, ev.Event):
                self._on_engine(event)
            elif isinstance(event, JobFinished | JobSkipped):
                self._on_job(event)

    def _tick(self, time: float, delta: int) -> None:
        if self._t0 is None:
            self._t0 = time
        self._running += delta
        self.timeline.append((round(time - self._t0, 6), self._running))

    def _on_engine(self, event: ev.Event) -> None:
        name = event.workflow
        if isinstance(event, ev.WorkflowStarted):
            self.workflows += 1
            self._runs[name] = _Run(self._graphs.get(name, {}), started=event.time)
            return
        run = self._runs.setdefault(name, _Run(self._graphs.get(name, {})))
        if isinstance(event, ev.TaskStarted):
            if event.attempt == 1:
                deps = run.graph.get(event.task, ())
                ready = max((run.finished_at.get(d, 0.0) for d in deps), default=0.0) if deps else run.started
                if ready:
                    self.queue_waits.setdefault(event.task, []).append(max(0.0, event.time - ready))
                run.running.add(event.task)
                self._tick(event.time, +1)
        elif isinstance(event, ev.TaskRetrying):
            self.retries[event.task] = self.retries.get(event.task, 0) + 1
        elif isinstance(event, ev.TaskFinished | ev.TaskSkipped | ev.TaskCancelled):
            result = event.result
            status = result.status.value
            self.counts[status] = self.counts.get(status, 0) + 1
            run.finished_at[event.task] = event.time
            if isinstance(event, ev.TaskFinished) or result.attempts:
                self.durations.setdefault(event.task, []).append(result.execution_time)
                run.durations[event.task] = result.execution_time
            if event.task in run.running:
                run.running.discard(event.task)
                self._tick(event.time, -1)
        elif isinstance(event, ev.WorkflowFinished):
            if run.graph:
                try:
                    path = critical_path(run.graph, {n: run.durations.get(n, 0.0) for n in run.graph})
                except Exception:  # a graph that does not validate has no critical path
                    path = []
                self.last_critical_path = list(path)
                self.last_critical_path_time = sum(run.durations.get(n, 0.0) for n in path)
            else:
                self.last_critical_path = list(event.summary.get("critical_path", []))
            self._runs.pop(name, None)

    def _on_job(self, event: JobFinished | JobSkipped) -> None:
        record = event.record
        stats = self.jobs.setdefault(event.job, {"counts": dict.fromkeys(STATUSES, 0), "durations": [], "lag": []})
        status = record.status.value
        stats["counts"][status] = stats["counts"].get(status, 0) + 1
        if isinstance(event, JobFinished):
            stats["durations"].append(record.duration)
            stats["lag"].append(record.lag)

    # -- reading ----------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The metrics as JSON-ready data."""
        with self._lock:
            everything = [d for ds in self.durations.values() for d in ds]
            waits = [w for ws in self.queue_waits.values() for w in ws]
            return {
                "workflows": self.workflows,
                "counts": dict(self.counts),
                "retries": {"total": sum(self.retries.values()), "tasks": dict(self.retries)},
                "durations": {
                    "overall": summarize(everything),
                    "tasks": {name: summarize(ds) for name, ds in self.durations.items()},
                },
                "queue_wait": {
                    "overall": summarize(waits),
                    "tasks": {name: summarize(ws) for name, ws in self.queue_waits.items()},
                },
                "concurrency": {
                    "max": max((n for _, n in self.timeline), default=0),
                    "timeline": [list(point) for point in self.timeline],
                },
                "critical_path": list(self.last_critical_path),
                "critical_path_time": self.last_critical_path_time,
                "jobs": {
                    name: {
                        "counts": dict(stats["counts"]),
                        "durations": summarize(stats["durations"]),
                        "lag": summarize(stats["lag"]),
                    }
                    for name, stats in self.jobs.items()
                },
            }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_prometheus(self, prefix: str = "orchestrate") -> str:
        """The metrics in the Prometheus text exposition format (version 0.0.4)."""
        from pytest_orchestrator.monitors.prometheus import collector_text

        return collector_text(self.to_dict(), prefix)
