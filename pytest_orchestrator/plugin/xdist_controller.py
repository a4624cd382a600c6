"""The controller half of the DAG-aware xdist scheduler (see :mod:`pytest_orchestrator.plugin.xdist`).

:class:`ControllerPlugin` is registered on the xdist controller under ``--orchestrate``: it names the folder the
workers write their item graph to, installs the scheduler and forwards the test reports to it, accounts for the
items that never ran once xdist's loop is over, and adds the workers' lines to the workflow summary.

The scheduler is split by job:

- :mod:`.xdist_scheduling`: :class:`DagScheduling`, xdist's scheduler protocol over the item graph (setup, worker
  events, crashes, sending batches);
- :mod:`.xdist_dispatch`: the dispatch policy (which ready item goes to which worker: critical path, module
  locality, batching);
- :mod:`.xdist_reports`: what the controller reports itself (dependency skips, items that never ran) and its lines.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import TYPE_CHECKING
from typing import Any

import pytest

from pytest_orchestrator.plugin.xdist_reports import SYNTHETIC_ATTR
from pytest_orchestrator.plugin.xdist_reports import workers_lines
from pytest_orchestrator.plugin.xdist_scheduling import DagScheduling
from pytest_orchestrator.plugin.xdist_worker import FLUSH_NAME
from pytest_orchestrator.plugin.xdist_worker import GRAPH_DIR_KEY


if TYPE_CHECKING:
    from xdist.remote import Producer
    from xdist.workermanage import WorkerController

__all__ = ["SYNTHETIC_ATTR", "ControllerPlugin", "DagScheduling"]

FLUSH_SUFFIX = "::" + FLUSH_NAME


class ControllerPlugin:
    """Registered on the xdist controller under ``--orchestrate``: installs :class:`DagScheduling`."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.folder: str | None = None
        self.scheduler: DagScheduling | None = None

    def session_plugin(self) -> Any:
        from pytest_orchestrator.plugin import SESSION_PLUGIN_NAME

        return self.config.pluginmanager.get_plugin(SESSION_PLUGIN_NAME)

    def pytest_configure_node(self, node: WorkerController) -> None:
        if self.folder is None:
            self.folder = tempfile.mkdtemp(prefix="pytest-orchestrate-")
        node.workerinput[GRAPH_DIR_KEY] = self.folder

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Producer) -> DagScheduling:
        self.scheduler = DagScheduling(config, log, self)
        return self.scheduler

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        if self.scheduler is not None:
            self.scheduler.logstart(nodeid)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        if self.scheduler is not None:
            self.scheduler.logfinish(nodeid)

    @pytest.hookimpl(tryfirst=True, specname="pytest_runtest_logreport")
    def pytest_runtest_logreport_flush(self, report: pytest.TestReport) -> None:
        if self.scheduler is not None and report.nodeid.endswith(FLUSH_SUFFIX):
            self.scheduler.adopt_flush_report(report)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # trylast: the terminal and junitxml have shown a crash report before its dependents' skips
        if self.scheduler is not None:
            self.scheduler.logreport(report)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        error: BaseException | None = None
        try:
            return (yield)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if self.scheduler is not None and not isinstance(error, pytest.UsageError):
                self.scheduler.finish_run(error)

    def pytest_orchestrate_summary(self, config: pytest.Config, summary: dict[str, Any], lines: list[str]) -> None:
        sched = self.scheduler
        if sched is None or not sched.busy:
            return
        lines.extend(workers_lines(sched.busy, sched.span(), sched.numnodes, sched.dependency_skips, sched.crashes))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
