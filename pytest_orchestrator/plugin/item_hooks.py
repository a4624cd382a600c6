"""The per-item hooks: small plugins registered after collection, and only when some item needs them.

An unused hookimpl still costs a call per item, so :func:`register_item_hooks` registers each one only when an item
of the session needs it:

- :class:`DependencyGate` (``pytest_runtest_setup``, ``tryfirst``): an item the scheduler already skipped is
  skipped before any of its fixtures run; it also hands each item's outcome to the scheduler
  (:meth:`DependencyGate.record`, called by the session plugin as reports arrive);
- :class:`Retries` (``pytest_runtest_protocol``): items with a retry policy run through
  :func:`~.runtest.run_with_retries`;
- :class:`Timeouts` (``pytest_runtest_call`` wrapper): a Python test's call phase is interrupted after its timeout;
- :class:`ReportNotes` (``pytest_runtest_makereport`` wrapper): timeouts, attempt errors and dependency skips are
  noted on the reports, for the summary and JUnit.

What an item needs is decided once, at collection: :func:`item_plan` (its retry policy and call-phase timeout),
kept in the item's stash under :data:`plan_key`.
"""

from __future__ import annotations

from collections.abc import Generator
from collections.abc import Sequence
import os

import pytest

from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.core.scheduler import DagScheduler
from pytest_orchestrator.core.workflow import TaskStatus
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.items import ScriptItem
from pytest_orchestrator.plugin.items import ScriptTimeout
from pytest_orchestrator.plugin.markers import ItemSpec
from pytest_orchestrator.plugin.outcomes import DEPENDENCY_SKIP_ATTR
from pytest_orchestrator.plugin.outcomes import ERROR_ATTR
from pytest_orchestrator.plugin.outcomes import RERUN
from pytest_orchestrator.plugin.outcomes import TIMEOUT_ATTR
from pytest_orchestrator.plugin.outcomes import report_status
from pytest_orchestrator.plugin.outcomes import worst
from pytest_orchestrator.plugin.runtest import ItemTimeout
from pytest_orchestrator.plugin.runtest import alarm
from pytest_orchestrator.plugin.runtest import attempt_error_text
from pytest_orchestrator.plugin.runtest import attempt_key
from pytest_orchestrator.plugin.runtest import error_key
from pytest_orchestrator.plugin.runtest import run_with_retries
from pytest_orchestrator.plugin.runtest import set_property


__all__ = [
    "DependencyGate",
    "Plan",
    "ReportNotes",
    "Retries",
    "Timeouts",
    "dependency_skip_key",
    "item_plan",
    "plan_key",
    "register_item_hooks",
]

#: an item's (retry policy, our call-phase timeout)
Plan = tuple[RetryPolicy | None, float | None]

#: set on an item skipped because a dependency did not complete
dependency_skip_key = pytest.StashKey[str]()
#: an item's :data:`Plan`, decided once at collection
plan_key = pytest.StashKey[Plan]()


def item_plan(
    item: pytest.Item,
    spec: ItemSpec,
    *,
    default_retry: RetryPolicy | None,
    default_timeout: float | None,
    pytest_timeout: bool,
) -> Plan:
    """``(retry policy, our call-phase timeout)`` of an item; the timeout is for Python tests only (a script item
    enforces its own on the subprocess), and not ours when pytest-timeout handles the test's ``timeout`` marker."""
    policy = spec.retry if spec.retry is not None else default_retry
    timeout: float | None = None
    if not isinstance(item, ScriptItem):
        timeout = spec.timeout if spec.timeout is not None else default_timeout
        if timeout and pytest_timeout and item.get_closest_marker("timeout") is not None:
            timeout = None  # pytest-timeout handles a Python test's timeout marker
    return policy, timeout or None


class DependencyGate:
    """Skips an item the scheduler already skipped, before any of its fixtures run; tells the scheduler how each
    item ended."""

    def __init__(self, sched: DagScheduler[str]) -> None:
        self.sched = sched
        #: the worst status of the phases of each item seen so far
        self._phases: dict[str, TaskStatus] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        sched = self.sched
        if sched.state.get(item.nodeid) == TaskStatus.SKIPPED:
            reason = sched.reasons.get(item.nodeid, "a dependency did not complete")
            item.stash[dependency_skip_key] = reason
            raise pytest.skip.Exception(reason, _use_item_location=True)

    def record(self, report: pytest.TestReport) -> None:
        """Fold a phase report into its item's status; at teardown, the scheduler hears it (and skips dependents)."""
        sched = self.sched
        nodeid = report.nodeid
        if report.outcome == RERUN or nodeid not in sched.state:
            return
        status = worst(self._phases.get(nodeid), report_status(report))
        if report.when != "teardown":
            self._phases[nodeid] = status
            return
        self._phases.pop(nodeid, None)
        if not sched.is_finished(nodeid):
            sched.done(nodeid, status)


class Retries:
    """Runs items that have a retry policy through :func:`~.runtest.run_with_retries`."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        plan = item.stash.get(plan_key, None)
        if plan is None or plan[0] is None:
            return None
        run_with_retries(item, nextitem, plan[0])
        return True


class Timeouts:
    """Interrupts a Python test's call phase after its timeout (SIGALRM), and kills what the call started.

    While the call runs, a marker of its own is in the environment (``PYTEST_ORCHESTRATOR_RUN``); when it times
    out, the test process's descendants that did not exist when the call began, and every process carrying the
    marker (one that left the tree), are killed (:func:`~pytest_orchestrator.execution.reaper.kill_started_since`).
    What existed before the call (a session fixture's server) is left alone.
    """

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None]:
        plan = item.stash.get(plan_key, None)
        if plan is None or plan[1] is None:
            return (yield)
        from pytest_orchestrator.execution import reaper

        before = reaper.descendants()
        marker = reaper.new_marker()
        previous = os.environ.get(reaper.MARKER_ENV)
        os.environ[reaper.MARKER_ENV] = " ".join([*(previous or "").split(), marker])
        try:
            with alarm(plan[1]):
                return (yield)
        except ItemTimeout:
            reaper.kill_started_since(before, marker=marker, grace=1.0)
            raise
        finally:
            if previous is None:
                os.environ.pop(reaper.MARKER_ENV, None)
            else:
                os.environ[reaper.MARKER_ENV] = previous


class ReportNotes:
    """Notes on reports for the summary and JUnit: timeouts, attempt errors, dependency skips."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report: pytest.TestReport = yield
        error = call.excinfo.value if call.excinfo is not None else None
        if call.when == "call":
            item.stash[error_key] = error
            if report.failed:
                text = attempt_error_text(error, report)
                setattr(report, ERROR_ATTR, text)
                if isinstance(error, ItemTimeout):
                    setattr(report, TIMEOUT_ATTR, str(error.msg))
                elif isinstance(error, ScriptTimeout):
                    setattr(report, TIMEOUT_ATTR, error.result.error or "timed out")
                attempt = item.stash.get(attempt_key, None)
                if attempt is not None:
                    set_property(item, f"attempt_{attempt}_error", text)
        elif call.when == "setup" and report.skipped and dependency_skip_key in item.stash:
            setattr(report, DEPENDENCY_SKIP_ATTR, True)
        return report


def register_item_hooks(config: pytest.Config, items: Sequence[pytest.Item], graph: ItemGraph) -> DependencyGate | None:
    """Register the per-item hooks the items need (each once); return the dependency gate, if the graph needs one."""
    plans = [item.stash[plan_key] for item in items]
    gate: DependencyGate | None = None
    wanted: list[tuple[object, str]] = []
    if graph.edge_count() or any(n.blocked for n in graph.nodes.values()):
        gate = DependencyGate(graph.make_scheduler())
        wanted.append((gate, "orchestrate-dependencies"))
    if any(policy is not None for policy, _ in plans):
        wanted.append((Retries(), "orchestrate-retries"))
    if any(timeout is not None for _, timeout in plans):
        wanted.append((Timeouts(), "orchestrate-timeouts"))
    if wanted or any(isinstance(item, ScriptItem) for item in items):
        wanted.append((ReportNotes(), "orchestrate-reports"))
    manager = config.pluginmanager
    for plugin, name in wanted:
        registered = manager.get_plugin(name)
        if registered is None:
            manager.register(plugin, name)
        elif isinstance(registered, DependencyGate) and gate is not None:
            registered.sched, gate = gate.sched, registered  # a second collection: the gate follows the new graph
    return gate
