"""The controller half of the DAG-aware xdist scheduler (see :mod:`pytest_orchestrator.plugin.xdist`).

:class:`ControllerPlugin` is registered on the xdist controller under ``--orchestrate``: it opens the channel each
worker hands its item graph over on (:mod:`.xdist_handoff`), installs the scheduler and forwards the test reports
to it, accounts for the items that never ran once xdist's loop is over, and completes the workflow summary (the
graph's part, which the session plugin cannot know on a controller, and the workers' lines).

The scheduler is split by job:

- :mod:`.xdist_scheduling`: :class:`DagScheduling`, xdist's scheduler protocol over the item graph (setup, worker
  events, crashes, sending batches);
- :mod:`.xdist_dispatch`: the dispatch policy (which ready item goes to which worker: critical path, module
  locality, batching);
- :mod:`.xdist_reports`: what the controller reports itself (dependency skips, items that never ran) and its lines.

The controller side never imports the worker side (:mod:`.xdist_worker`): what both share is in
:mod:`.xdist_handoff`; xdist's and pytest's private APIs are used only through :mod:`.compat`.
"""

from __future__ import annotations

from collections.abc import Generator
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import pytest

from pytest_orchestrator.plugin.compat import should_stop
from pytest_orchestrator.plugin.compat import worker_count
from pytest_orchestrator.plugin.names import SESSION_PLUGIN_NAME
from pytest_orchestrator.plugin.summary import format_summary
from pytest_orchestrator.plugin.xdist_handoff import CHANNEL_KEY
from pytest_orchestrator.plugin.xdist_handoff import FREE
from pytest_orchestrator.plugin.xdist_handoff import PENDING
from pytest_orchestrator.plugin.xdist_handoff import Mailbox
from pytest_orchestrator.plugin.xdist_reports import complete_summary
from pytest_orchestrator.plugin.xdist_reports import say_notes
from pytest_orchestrator.plugin.xdist_reports import workers_lines
from pytest_orchestrator.plugin.xdist_scheduling import DagScheduling


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.compat import WorkerNode
    from pytest_orchestrator.plugin.compat import XdistLog

__all__ = ["ControllerPlugin", "DagScheduling"]


class ControllerPlugin:
    """Registered on the xdist controller under ``--orchestrate``: installs :class:`DagScheduling`.

    It talks to xdist only through xdist's hooks: a new execnet channel goes to each worker in ``node.workerinput``
    (``pytest_configure_node``), the scheduler is what ``pytest_xdist_make_scheduler`` returns, and the state of
    the run stays in the scheduler (the workflow summary gets the graph's part through
    ``pytest_orchestrate_summary``).
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.scheduler: DagScheduling | None = None
        self._channels: list[Any] = []
        #: the controller's end of each worker's channel
        self.mailboxes: dict[WorkerNode, Mailbox] = {}
        #: another scheduler runs the session (a user's, or ``--dist each``): the workers wait for no verdict
        self.free = False
        self._collected = 0
        self._first: WorkerNode | None = None
        #: items a worker started and has not finished
        self._running: set[str] = set()

    def pytest_configure_node(self, node: WorkerNode) -> None:
        # ``workerinput`` is xdist's documented way to hand a worker data; execnet sends a channel as a channel
        channel = node.gateway.newchannel()
        node.workerinput[CHANNEL_KEY] = channel
        self.mailboxes[node] = Mailbox(channel, lambda nodeids: self.outcomes(nodeids, node))
        self._channels.append(channel)
        if self.free:
            channel.send((FREE,))

    def inbox(self, node: WorkerNode) -> Any:
        """Where the scheduler reads ``node``'s item graph."""
        return self.mailboxes.get(node) or node.workerinput.get(CHANNEL_KEY)

    def outcomes(self, nodeids: Sequence[str], asker: WorkerNode | None = None) -> dict[str, str | None]:
        """How each item ended, as the summary recorded it on this controller; :data:`~.xdist_handoff.PENDING` for
        one that runs on, or waits in the queue of, a worker other than ``asker``; else ``None``. A worker's runtime
        ``depends(request, ...)`` asks (:mod:`.compat_dependency`). Runs in execnet's receiving thread: it only
        reads."""
        plugin = self.config.pluginmanager.get_plugin(SESSION_PLUGIN_NAME)
        records = getattr(getattr(plugin, "recorder", None), "items", {})
        stopping = bool(should_stop(self.config))
        queued: set[str] | None = None
        answer: dict[str, str | None] = {}
        for nodeid in nodeids:
            record = records.get(nodeid)
            if record is not None and record.finished:
                answer[nodeid] = record.status
                continue
            if queued is None:
                queued = set() if stopping or self.scheduler is None else self.scheduler.queued(but=asker)
            answer[nodeid] = PENDING if nodeid in self._running or nodeid in queued else None
        return answer

    def pytest_xdist_node_collection_finished(self, node: WorkerNode, ids: Sequence[str]) -> None:
        # Under another scheduler, what the workers' collection has for the user (the same lines on each) is said
        # here, once the initial workers are all done; ours says it when it starts scheduling.
        if self._first is None:
            self._first = node
        self._collected += 1
        if self.free and self._collected == worker_count(self.config):
            say_notes(self.config, self.mailboxes.get(self._first))

    @pytest.hookimpl(wrapper=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: XdistLog | None) -> Generator[None, Any, Any]:
        # A wrapper, so a conftest's or another plugin's scheduler wins; xdist's own default (``trylast``, the one
        # ``--dist`` chose) is kept as the delegate that runs a session with nothing to schedule.
        inner = yield
        own = inner is None or type(inner).__module__.split(".")[0] == "xdist"
        if not own or config.getoption("dist", None) == "each":
            self.free = True
            for channel in self._channels:
                channel.send((FREE,))
            return inner
        self.scheduler = DagScheduling(config, log, delegate=inner, inbox=self.inbox)
        return self.scheduler

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self._running.add(nodeid)
        if self.scheduler is not None:
            self.scheduler.logstart(nodeid)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self._running.discard(nodeid)
        if self.scheduler is not None:
            self.scheduler.logfinish(nodeid)

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

    @pytest.hookimpl(tryfirst=True)
    def pytest_orchestrate_summary(self, config: pytest.Config, summary: dict[str, Any], lines: list[str]) -> None:
        # tryfirst: the other implementations (the GitHub step summary, conftests) see the completed summary
        sched = self.scheduler
        if sched is None:
            return
        if sched.graph is not None and complete_summary(summary, sched.graph):
            lines[:] = format_summary(summary, verbose=config.option.verbose)
        if sched.busy:
            lines.extend(workers_lines(sched.busy, sched.span(), sched.numnodes, sched.dependency_skips, sched.crashes))
