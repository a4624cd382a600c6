"""The Prometheus text exposition format (0.0.4), written directly: no dependency on prometheus-client.

``collector_text(metrics)`` renders ``MetricsCollector.to_dict()``; ``scheduler_text(metrics)`` renders
``get_scheduler_metrics()``. Durations become summaries (quantiles 0.5 and 0.95, ``_sum``, ``_count``).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
import datetime as dt
import math
from typing import Any


__all__ = ["collector_text", "scheduler_text"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _sample(name: str, labels: Mapping[str, str], value: float) -> str:
    shown = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return f"{name}{{{shown}}} {_number(value)}" if shown else f"{name} {_number(value)}"


class _Writer:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> str:
        full = f"{self.prefix}_{name}"
        self.lines.append(f"# HELP {full} {help_text}")
        self.lines.append(f"# TYPE {full} {kind}")
        return full

    def sample(self, name: str, labels: Mapping[str, str], value: float) -> None:
        self.lines.append(_sample(name, labels, value))

    def summary(self, name: str, help_text: str, rows: Iterable[tuple[Mapping[str, str], Mapping[str, float]]]) -> None:
        full = self.family(name, "summary", help_text)
        for labels, stats in rows:
            self.sample(full, {**labels, "quantile": "0.5"}, stats["p50"])
            self.sample(full, {**labels, "quantile": "0.95"}, stats["p95"])
            self.sample(f"{full}_sum", labels, stats["sum"])
            self.sample(f"{full}_count", labels, stats["count"])

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def collector_text(metrics: Mapping[str, Any], prefix: str = "orchestrate") -> str:
    """``MetricsCollector.to_dict()`` as Prometheus text."""
    w = _Writer(prefix)
    name = w.family("tasks_total", "counter", "Tasks that ended, by status.")
    for status, count in sorted(metrics["counts"].items()):
        w.sample(name, {"status": status}, count)
    name = w.family("task_retries_total", "counter", "Retried attempts, by task.")
    for task, count in sorted(metrics["retries"]["tasks"].items()):
        w.sample(name, {"task": task}, count)
    durations = metrics["durations"]
    w.summary(
        "task_duration_seconds",
        "Task run time, by task.",
        [({"task": t}, s) for t, s in sorted(durations["tasks"].items())],
    )
    waits = metrics["queue_wait"]
    w.summary(
        "task_queue_wait_seconds",
        "Time from ready to started, by task.",
        [({"task": t}, s) for t, s in sorted(waits["tasks"].items())],
    )
    name = w.family("max_concurrency", "gauge", "The most tasks running at once.")
    w.sample(name, {}, metrics["concurrency"]["max"])
    name = w.family("critical_path_seconds", "gauge", "Summed run time of the last run's critical path.")
    w.sample(name, {}, metrics["critical_path_time"])
    jobs = metrics.get("jobs", {})
    if jobs:
        name = w.family("job_runs_total", "counter", "Scheduled job runs, by job and status.")
        for job, stats in sorted(jobs.items()):
            for status, count in sorted(stats["counts"].items()):
                w.sample(name, {"job": job, "status": status}, count)
        w.summary(
            "job_duration_seconds",
            "Scheduled job run time, by job.",
            [({"job": j}, s["durations"]) for j, s in sorted(jobs.items())],
        )
        w.summary(
            "job_lag_seconds",
            "Delay between due and start, by job.",
            [({"job": j}, s["lag"]) for j, s in sorted(jobs.items())],
        )
    return w.text()


def scheduler_text(metrics: Mapping[str, Any], prefix: str = "orchestrate_scheduler") -> str:
    """``get_scheduler_metrics()`` as Prometheus text."""
    w = _Writer(prefix)
    w.sample(w.family("runs_total", "counter", "Job runs that ended."), {}, metrics["runs"])
    w.sample(w.family("failures_total", "counter", "Job runs that failed."), {}, metrics["failures"])
    w.sample(w.family("skipped_total", "counter", "Fire times that did not run."), {}, metrics.get("skipped", 0))
    name = w.family("jobs", "gauge", "Jobs, by state.")
    for state, count in sorted(metrics["jobs"].items()):
        w.sample(name, {"state": state}, count)
    name = w.family("next_fire_timestamp_seconds", "gauge", "When each job fires next (Unix time).")
    for job, when in sorted(metrics["next_fire_times"].items()):
        w.sample(name, {"job": job}, dt.datetime.fromisoformat(when).timestamp())
    lag = metrics["lag"]
    w.sample(w.family("lag_seconds", "gauge", "Delay between due and start of the last run."), {}, lag["last"])
    w.sample(w.family("lag_max_seconds", "gauge", "Largest delay between due and start."), {}, lag["max"])
    return w.text()
