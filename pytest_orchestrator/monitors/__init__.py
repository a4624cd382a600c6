"""Run metrics: ``MetricsCollector`` (engine and scheduler events), ``get_scheduler_metrics()`` and exports.

- :mod:`.collector`: ``MetricsCollector`` (``attach``, ``to_dict``, ``to_json``, ``to_prometheus``);
- :mod:`.scheduler`: ``get_scheduler_metrics(scheduler=None)``;
- :mod:`.prometheus`: the text exposition format, written directly.
"""

from __future__ import annotations

from pytest_orchestrator.monitors.collector import MetricsCollector
from pytest_orchestrator.monitors.prometheus import collector_text
from pytest_orchestrator.monitors.prometheus import scheduler_text
from pytest_orchestrator.monitors.scheduler import get_scheduler_metrics


__all__ = ["MetricsCollector", "collector_text", "get_scheduler_metrics", "scheduler_text"]
