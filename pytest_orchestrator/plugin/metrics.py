"""``--orchestrate-metrics PATH``: the session's metrics, read by the library's :class:`MetricsCollector`.

The session's results are gathered once, the way ``--orchestrate-report`` gathers them: by
:class:`~.run_report.ReportWriter`, registered for either option on the process that ends the session (serial: the
process; ``-n N``: the controller, which hears every worker's reports; a worker writes nothing). At
``pytest_sessionfinish`` :class:`MetricsWriter` takes that report and replays each item as the engine's events
(:func:`session_events`: ``TaskStarted`` per attempt, ``TaskRetrying`` for each attempt that was retried, then one
of ``TaskFinished``, ``TaskSkipped`` or ``TaskCancelled``, in the order of their times) into a
:class:`~pytest_orchestrator.monitors.collector.MetricsCollector` that knows the item graph, so the numbers are the
ones a library workflow gets: counts by status, retries, durations, queue waits, concurrency, the critical path.
An item's status is its outcome word's :class:`~pytest_orchestrator.core.workflow.TaskStatus`
(:data:`~.outcomes.OUTCOME_STATUS`: passed and xpassed are completed; failed, timeout and error are failed; skipped
and xfailed are skipped); an item that never ran is cancelled. ``PATH`` ending in ``.prom`` gets the Prometheus
text exposition, any other path ``collector.to_dict()`` as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_orchestrator.core import events as ev
from pytest_orchestrator.core.workflow import TaskResult
from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.plugin.outcomes import OUTCOME_STATUS
from pytest_orchestrator.plugin.run_report import ReportWriter


__all__ = ["PROMETHEUS_SUFFIX", "MetricsWriter", "session_events"]

#: a metrics path ending in this gets the Prometheus text exposition format; any other, JSON
PROMETHEUS_SUFFIX = ".prom"

#: the report's status of an item in the graph that never ran
_NOT_RUN = "not_run"


def _status(word: str) -> TaskStatus:
    return TaskStatus.CANCELLED if word == _NOT_RUN else OUTCOME_STATUS[word]


def session_events(name: str, items: Sequence[Mapping[str, Any]], *, finished_at: float) -> list[ev.Event]:
    """The engine events of a session whose items are ``items`` (run report items: ``id``, ``status``,
    ``attempts``, ``started_at``, ``finished_at``, ``duration``, ``error``, ``skip_cause``), in time order, between
    ``WorkflowStarted`` (when the first attempt started) and ``WorkflowFinished`` (at ``finished_at``)."""
    timed: list[tuple[float, int, int, ev.Event]] = []

    def add(time: float, rank: int, event: ev.Event) -> None:
        timed.append((time, rank, len(timed), event))

    counts = dict.fromkeys((s.value for s in TaskStatus), 0)
    for item in items:
        task, status = str(item["id"]), _status(str(item["status"]))
        counts[status.value] += 1
        attempts = [a for a in item.get("attempts") or () if a.get("start") is not None]
        last_start = None
        for n, attempt in enumerate(attempts):
            last_start = float(attempt["start"])
            add(last_start, 1, ev.TaskStarted(name, last_start, task, int(attempt["number"])))
            if n + 1 < len(attempts):  # retried: the next attempt began after this one ended
                end = float(attempt.get("end") or last_start)
                delay = max(0.0, float(attempts[n + 1]["start"]) - end)
                add(end, 0, ev.TaskRetrying(name, end, task, int(attempt["number"]), delay, attempt.get("error") or ""))
        end = item.get("finished_at") or finished_at
        if last_start is not None:
            end = max(float(end), last_start)
        result = TaskResult(
            success=status is TaskStatus.COMPLETED,
            error=item.get("error"),
            execution_time=float(item.get("duration") or 0.0),
            attempts=len(attempts),
            status=status,
            started_at=item.get("started_at"),
            finished_at=float(end),
            reason=item.get("skip_cause") or ("it did not run" if status is TaskStatus.CANCELLED else None),
        )
        # the end of an item comes before what starts at the same instant, after its own start
        rank = 2 if end == last_start else 0
        if status is TaskStatus.SKIPPED:
            add(float(end), rank, ev.TaskSkipped(name, float(end), task, result.reason or "", result))
        elif status is TaskStatus.CANCELLED:
            add(float(end), rank, ev.TaskCancelled(name, float(end), task, result.reason or "", result))
        else:
            add(float(end), rank, ev.TaskFinished(name, float(end), task, result))
    timed.sort(key=lambda entry: entry[:3])
    start = timed[0][0] if timed else finished_at
    summary = {"total_tasks": len(items), **counts}
    success = not (counts["failed"] or counts["cancelled"])
    return [
        ev.WorkflowStarted(name, start, len(items), name),
        *(event for *_, event in timed),
        ev.WorkflowFinished(name, max(finished_at, timed[-1][0] if timed else start), success, summary),
    ]


class MetricsWriter:
    """Registered next to :class:`~.run_report.ReportWriter` (whose report it reads) when ``--orchestrate-metrics``
    is given."""

    def __init__(self, config: pytest.Config, path: str, results: ReportWriter) -> None:
        self.config = config
        self.path = Path(config.invocation_params.dir, path)  # an absolute path stays itself
        self.results = results
        self.written: Path | None = None
        #: what was written, as ``collector.to_dict()`` (also for a ``.prom`` path)
        self.metrics: dict[str, Any] | None = None

    def collect(self, exitstatus: int = 0) -> dict[str, Any]:
        """The session's metrics so far (``MetricsCollector.to_dict()``)."""
        from pytest_orchestrator.monitors.collector import MetricsCollector

        report = self.results.build(exitstatus)
        name = str(report["name"])
        collector = MetricsCollector().add_graph(name, {i["id"]: i["dependencies"] for i in report["items"]})
        for event in session_events(name, report["items"], finished_at=float(report["finished_at"] or 0.0)):
            ev.emit([collector], event)
        return collector.to_dict()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from pytest_orchestrator.monitors.prometheus import collector_text
        from pytest_orchestrator.reporting.report import write_text_atomic

        metrics = self.metrics = self.collect(exitstatus)
        if self.path.suffix.lower() == PROMETHEUS_SUFFIX:
            text = collector_text(metrics)
        else:
            text = json.dumps(metrics, indent=2) + "\n"
        self.written = write_text_atomic(self.path, text)

    @pytest.hookimpl(trylast=True)
    def pytest_orchestrate_summary(self, config: pytest.Config, summary: dict[str, Any], lines: list[str]) -> None:
        if self.written is not None:
            lines.append(f"metrics: {self.written}")
