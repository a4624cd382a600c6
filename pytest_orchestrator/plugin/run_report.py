"""``--orchestrate-report PATH.json|PATH.html``: the session's run report (schema ``pytest-orchestrator/report/1``).

:class:`ItemTracer` folds test reports into one :class:`TracedItem` per item: each attempt (a retried attempt is
its ``rerun`` call report; the last one spans setup to teardown) with its start, end, outcome and error, the xdist
worker that ran it, the skip cause and, for failures, the tail of what pytest shows (the failure text, then the
captured output). :class:`ReportWriter` is registered where the session ends (serial: the process; ``-n N``: the
controller, which hears every worker's reports): at ``pytest_sessionfinish`` it adds what the item graph knows (kind,
stage, dependencies, the items that never ran) and writes the report with
:func:`~pytest_orchestrator.reporting.report.write_report`. Secrets are masked by
:func:`~pytest_orchestrator.reporting.report.build_report` with the ``orchestrate_secrets`` names.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
import re
import time
from typing import Any

import pytest

from pytest_orchestrator.plugin.outcomes import DEPENDENCY_SKIP_ATTR
from pytest_orchestrator.plugin.outcomes import ERROR_ATTR
from pytest_orchestrator.plugin.outcomes import RERUN
from pytest_orchestrator.plugin.outcomes import SYNTHETIC_ATTR
from pytest_orchestrator.plugin.outcomes import TIMEOUT_ATTR
from pytest_orchestrator.plugin.outcomes import report_outcome
from pytest_orchestrator.plugin.properties import PROPERTIES_PLUGIN_NAME
from pytest_orchestrator.plugin.properties import session_graph


__all__ = ["ItemTracer", "ReportWriter", "TracedItem", "worker_of"]

_FAILED = ("failed", "timeout", "error")


def worker_of(report: pytest.TestReport) -> str | None:
    """The xdist worker (``gwN``) that made ``report``, as xdist's controller tells it; ``None`` when serial, or when
    the controller made it (its ``node`` only says whose line it is under ``-v``)."""
    if getattr(report, SYNTHETIC_ATTR, False):
        return None
    node = getattr(report, "node", None)
    gateway = getattr(node, "gateway", None)
    worker = getattr(gateway, "id", None)
    return worker if isinstance(worker, str) else None


def _skip_text(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
        return text[len("Skipped: ") :] if text.startswith("Skipped: ") else text
    return str(getattr(report, "wasxfail", "") or "")


#: the line xdist puts above a worker's failure text (``[gw0] linux -- Python 3.12.1 /usr/bin/python``)
_WORKER_LINE = re.compile(r"\A\[gw\d+\] [^\n]*\n")


def _output(report: pytest.TestReport) -> str:
    """What pytest shows for a failure: its text (without xdist's worker line), then the captured output."""
    text = _WORKER_LINE.sub("", report.longreprtext).strip("\n").rstrip()
    parts = [text] if text else []
    parts.extend(f"----- {title} -----\n{content.rstrip()}" for title, content in report.sections if content)
    return "\n".join(parts)


def _error_line(report: pytest.TestReport) -> str:
    error = getattr(report, ERROR_ATTR, None)
    if error:
        return str(error)
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if message:
        return str(message).splitlines()[0]
    lines = report.longreprtext.strip().splitlines()
    return lines[-1] if lines else report.outcome


@dataclasses.dataclass
class TracedItem:
    """One item's attempts and facts, as the report wants them."""

    nodeid: str
    status: str = "passed"
    attempts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    start: float | None = None
    stop: float | None = None
    worker: str | None = None
    skip_cause: str | None = None
    dependency_skip: bool = False
    error: str | None = None
    output: list[str] = dataclasses.field(default_factory=list)
    #: when the attempt in progress began (its setup report's start)
    _opened: float | None = None

    def to_item(self) -> dict[str, Any]:
        """The item dict :func:`~pytest_orchestrator.reporting.report.build_report` takes."""
        return {
            "id": self.nodeid,
            "name": self.nodeid,
            "status": self.status,
            "started_at": self.start,
            "finished_at": self.stop,
            "attempts": self.attempts,
            "worker": self.worker,
            "skip_cause": self.skip_cause,
            "error": self.error,
            "output_tail": "\n".join(self.output) or None,
        }


class ItemTracer:
    """Folds reports (setup, call, teardown, reruns) into :class:`TracedItem` s, in the order items started."""

    def __init__(self) -> None:
        self.items: dict[str, TracedItem] = {}

    def add(self, report: pytest.TestReport) -> None:
        item = self.items.get(report.nodeid)
        if item is None:
            item = self.items[report.nodeid] = TracedItem(report.nodeid)
        start, stop = getattr(report, "start", None), getattr(report, "stop", None)
        if not start and not stop:  # made up by the xdist controller (a dependency skip): it happened now
            start = stop = time.time()
        if start and (item.start is None or start < item.start):
            item.start = start
        if stop and (item.stop is None or stop > item.stop):
            item.stop = stop
        item.worker = worker_of(report) or item.worker
        outcome = report_outcome(report)
        if outcome == RERUN:  # a failed call that will be retried: one attempt
            retried = "timeout" if getattr(report, TIMEOUT_ATTR, None) else "failed"
            self._attempt(item, report, retried, _error_line(report))
            item._opened = None
            return
        if report.when == "setup":
            item._opened = start
            if outcome in ("skipped", "xfailed"):
                item.status = outcome
                item.skip_cause = _skip_text(report) or None
                item.dependency_skip = bool(getattr(report, DEPENDENCY_SKIP_ATTR, False))
            elif outcome == "error":
                item.status = "error"
                item.error = _error_line(report)
                item.output.append(_output(report))
                self._attempt(item, report, "error", item.error)
            return
        if report.when == "call":
            item.status = outcome
            error = _error_line(report) if outcome in _FAILED else None
            if outcome in _FAILED:
                item.error = error
                item.output.append(_output(report))
            elif outcome in ("skipped", "xfailed"):
                item.skip_cause = _skip_text(report) or None
            self._attempt(item, report, outcome, error)
            return
        # teardown: it closes the last attempt; a failing teardown makes the item an error
        if item.attempts and stop:
            item.attempts[-1]["end"] = max(item.attempts[-1]["end"] or stop, stop)
        if outcome == "error":
            if item.status not in _FAILED:
                item.status = "error"
                item.error = _error_line(report)
            item.output.append(_output(report))

    @staticmethod
    def _attempt(item: TracedItem, report: pytest.TestReport, outcome: str, error: str | None) -> None:
        start = item._opened or getattr(report, "start", None)
        item.attempts.append(
            {
                "number": len(item.attempts) + 1,
                "start": start,
                "end": getattr(report, "stop", None),
                "outcome": outcome,
                "error": error,
            }
        )


class ReportWriter:
    """Registered on the process that ends the session when ``--orchestrate-report`` (or ``--orchestrate-metrics``,
    which reads its report: ``path`` is then ``None`` and nothing is written) is given."""

    def __init__(self, config: pytest.Config, path: str | None) -> None:
        self.config = config
        #: where the report goes (relative to the invocation folder); ``None``: gathered for the metrics only
        self.path = None if path is None else Path(config.invocation_params.dir, path)
        self.tracer = ItemTracer()
        self.started_at = time.time()
        self.written: Path | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started_at = time.time()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.tracer.add(report)

    def build(self, exitstatus: int = 0) -> dict[str, Any]:
        """The report of the session so far."""
        from pytest_orchestrator.reporting.report import build_report

        graph = session_graph(self.config)
        items = [t.to_item() for t in self.tracer.items.values()]
        nodes = graph.nodes if graph is not None else {}
        seen = set(self.tracer.items)
        items.extend({"id": n, "status": "not_run"} for n in nodes if n not in seen)
        roots = getattr(self.config.pluginmanager.get_plugin(PROPERTIES_PLUGIN_NAME), "roots", {})
        edges: list[dict[str, str]] = []
        for item in items:
            node = nodes.get(item["id"])
            item["kind"] = node.kind if node is not None else "test"
            if item["id"] in roots:  # the rule that skipped it (soft dependencies skip nothing)
                item["root_cause"] = roots[item["id"]]
            if node is not None:
                item["stage"] = node.stage
                for dep in node.deps:
                    if dep in nodes:
                        edges.append({"from": dep, "to": node.nodeid, "kind": "soft" if dep in node.soft else "hard"})
        workers = self.config.getoption("numprocesses", None)
        finished = time.time()
        return build_report(
            kind="pytest",
            name=f"pytest {' '.join(self.config.invocation_params.args)}".strip(),
            items=items,
            edges=edges,
            started_at=self.started_at,
            finished_at=finished,
            wall_time=finished - self.started_at,
            success=int(exitstatus) == 0,
            metadata={
                "args": list(self.config.invocation_params.args),
                "rootdir": str(self.config.rootpath),
                "exitstatus": int(exitstatus),
                "numprocesses": workers if isinstance(workers, int) else None,
            },
            extra_secrets=list(self.config.getini("orchestrate_secrets")),
        )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from pytest_orchestrator.reporting.report import write_report

        if self.path is not None:
            self.written = write_report(self.build(exitstatus), self.path)

    @pytest.hookimpl(trylast=True)
    def pytest_orchestrate_summary(self, config: pytest.Config, summary: dict[str, Any], lines: list[str]) -> None:
        if self.written is not None:
            lines.append(f"report: {self.written}")
