"""The per-item hooks: small plugins registered after collection, and only when some item needs them.

An unused hookimpl still costs a call per item, so :func:`register_item_hooks` registers each one only when an item
of the session needs it:

- :class:`DependencyGate` (``pytest_runtest_setup``, ``tryfirst``): an item whose dependencies could not be
  resolved (an unknown target, a cycle) errors, and an item the scheduler already skipped is
  skipped, before any of its fixtures run; it also hands each item's outcome to the scheduler
  (:meth:`DependencyGate.record`, called by the session plugin as reports arrive);
- :class:`Retries` (``pytest_runtest_protocol``): items with a retry policy run through
  :func:`~.runtest.run_with_retries`;
- :class:`Timeouts` (``pytest_runtest_call`` wrapper): a Python test's call phase is interrupted after its timeout,
  and what the call started is killed when it times out (ours or pytest-timeout's);
- :class:`ReportNotes` (``pytest_runtest_makereport`` wrapper): timeouts, attempt errors and dependency skips are
  noted on the reports, and each attempt's outcome and error on the item (``attempt_N_outcome``,
  ``attempt_N_error`` user properties), for the summary and JUnit.

What an item needs is decided once, at collection: :func:`item_plan` (its retry policy, our call-phase timeout,
and whether pytest-timeout bounds it), kept in the item's stash under :data:`plan_key`.
"""

from __future__ import annotations

from collections.abc import Generator
from collections.abc import Sequence
import os
from typing import TYPE_CHECKING
from typing import NamedTuple

import pytest

from pytest_orchestrator.core.status import TaskStatus
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.kinds import is_script_item
from pytest_orchestrator.plugin.kinds import is_script_timeout
from pytest_orchestrator.plugin.kinds import scripts_collected
from pytest_orchestrator.plugin.markers import NO_SPEC
from pytest_orchestrator.plugin.markers import ItemSpec
from pytest_orchestrator.plugin.markers import broken_key
from pytest_orchestrator.plugin.markers import parse_timeout
from pytest_orchestrator.plugin.markers import spec_key
from pytest_orchestrator.plugin.names import stashed
from pytest_orchestrator.plugin.outcomes import DEPENDENCY_SKIP_ATTR
from pytest_orchestrator.plugin.outcomes import ERROR_ATTR
from pytest_orchestrator.plugin.outcomes import RERUN
from pytest_orchestrator.plugin.outcomes import TIMEOUT_ATTR
from pytest_orchestrator.plugin.outcomes import register_rerun_word
from pytest_orchestrator.plugin.outcomes import report_outcome
from pytest_orchestrator.plugin.outcomes import report_status
from pytest_orchestrator.plugin.outcomes import worst
from pytest_orchestrator.plugin.runtest import ItemTimeout
from pytest_orchestrator.plugin.runtest import alarm
from pytest_orchestrator.plugin.runtest import attempt_error_text
from pytest_orchestrator.plugin.runtest import attempt_key
from pytest_orchestrator.plugin.runtest import error_key
from pytest_orchestrator.plugin.runtest import is_timeout
from pytest_orchestrator.plugin.runtest import run_with_retries
from pytest_orchestrator.plugin.runtest import set_property


if TYPE_CHECKING:
    from pytest_orchestrator.core.retry import RetryPolicy
    from pytest_orchestrator.core.scheduler import DagScheduler


__all__ = [
    "DependencyGate",
    "Plan",
    "ReportNotes",
    "Retries",
    "Timeouts",
    "dependency_skip_key",
    "item_plan",
    "plan_items",
    "plan_key",
    "pytest_timeout_limit",
    "rerunfailures_rule",
    "xfailed_reason",
    "register_item_hooks",
    "report_outcome_of",
]


class Plan(NamedTuple):
    """What the per-item hooks do to an item."""

    retry: RetryPolicy | None
    #: our call-phase timeout (SIGALRM), if we enforce one
    timeout: float | None
    #: pytest-timeout enforces a limit on it (under ``--orchestrate``): kill what its call started when that fires
    their_timeout: bool = False


#: the plan of an item with no retry and no limit of ours or pytest-timeout's (shared: plans are immutable)
_NO_PLAN = Plan(None, None, False)

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
    timeout_marked: bool = True,
) -> Plan:
    """``(retry policy, our call-phase timeout)`` of an item; the timeout is for Python tests only (a script item
    enforces its own on the subprocess).

    With pytest-timeout active, its guarantee is never weakened: a Python test keeps pytest-timeout's limit (its
    marker, ``--timeout``, ``PYTEST_TIMEOUT`` or ini ``timeout``), and when ``--orchestrate-timeout`` is shorter,
    the test gets a ``timeout`` marker with that shorter limit, which pytest-timeout enforces (fixtures included);
    when its limit fires during the call, what the call started is killed (:class:`Timeouts`).
    ``timeout_marked=False``: no item of the session has a ``timeout`` marker (none is looked for).
    """
    policy = spec.retry if spec.retry is not None else default_retry
    timeout: float | None = None
    theirs: float | None = None
    if not is_script_item(item):
        timeout = spec.timeout if spec.timeout is not None else default_timeout
        if pytest_timeout:
            theirs = pytest_timeout_limit(item, marked=timeout_marked)
            if timeout and (not theirs or timeout < theirs):
                item.add_marker(pytest.mark.timeout(timeout), append=False)
                theirs = timeout
            timeout = None  # pytest-timeout enforces the shorter limit
    if policy is None and not timeout and not theirs:
        return _NO_PLAN
    return Plan(policy, timeout or None, bool(theirs))


def plan_items(
    items: Sequence[pytest.Item],
    *,
    marked: bool,
    default_retry: RetryPolicy | None,
    default_timeout: float | None,
    pytest_timeout: bool,
    timeout_marked: bool,
) -> list[Plan]:
    """Each item's :func:`item_plan`, kept in its stash under :data:`plan_key` when it has one (the hooks read no
    plan as "nothing to do"). Empty when no item can have one: no marker of ours (``marked``), no default, no
    pytest-timeout limit, no script."""
    if not (
        marked
        or default_retry is not None
        or default_timeout is not None
        or scripts_collected()
        or (pytest_timeout and items and _session_limit(items[0].config) is not None)
    ):
        return []
    plans: list[Plan] = []
    for item in items:
        plan = item_plan(
            item,
            stashed(item.stash, spec_key, NO_SPEC),
            default_retry=default_retry,
            default_timeout=default_timeout,
            pytest_timeout=pytest_timeout,
            timeout_marked=timeout_marked,
        )
        if plan is not _NO_PLAN:
            item.stash[plan_key] = plan
        plans.append(plan)
    return plans


def xfailed_reason(reason: str, xfailed: set[str]) -> str:
    """A dependency skip reason that says "xfailed" for the dependencies in ``xfailed`` (the scheduler counts an
    xfail as a skip)."""
    for nodeid in xfailed:
        reason = reason.replace(f"{nodeid!r} was skipped", f"{nodeid!r} was xfailed")
    return reason


def rerunfailures_rule(config: pytest.Config, items: Sequence[pytest.Item]) -> bool:
    """Whether pytest-rerunfailures reruns items here (``--reruns`` or a ``flaky`` marker); then the one rule holds:
    our ``retry`` marker wins on the items that carry it, pytest-rerunfailures handles the rest (the
    ``--orchestrate-retries`` default is not applied), and it is said once."""
    if not config.pluginmanager.hasplugin("rerunfailures"):
        return False
    if not (config.getoption("reruns", 0) or any(item.get_closest_marker("flaky") for item in items)):
        return False
    from pytest_orchestrator.plugin.names import notes_key

    config.stash.setdefault(notes_key, []).append(
        "orchestrate: @pytest.mark.retry wins on the items that carry it; pytest-rerunfailures (--reruns, flaky) "
        "reruns the rest"
    )
    return True


_UNSET = object()
#: pytest-timeout's limit for the session (``--timeout``, ``PYTEST_TIMEOUT``, ini ``timeout``), once read
_session_limit_key = pytest.StashKey[object]()


def pytest_timeout_limit(item: pytest.Item, *, marked: bool = True) -> float | None:
    """The limit pytest-timeout applies to ``item`` (``None`` or 0: none); ``marked=False``: the item has no
    ``timeout`` marker (the session's limit applies)."""
    marker = item.get_closest_marker("timeout") if marked else None
    if marker is not None:
        try:
            return parse_timeout(marker.args, marker.kwargs)
        except ValueError:
            return None
    return _session_limit(item.config)


def _session_limit(config: pytest.Config) -> float | None:
    """pytest-timeout's limit for the session's items without a marker (``None`` or 0: none), read once."""
    limit = config.stash.get(_session_limit_key, _UNSET)
    if limit is _UNSET:
        limit = None
        for value in (config.getoption("timeout", None), os.environ.get("PYTEST_TIMEOUT"), _ini(config, "timeout")):
            if value not in (None, ""):
                try:
                    limit = float(str(value))
                except (TypeError, ValueError):
                    limit = None
                break
        config.stash[_session_limit_key] = limit
    return limit if isinstance(limit, float) else None


def _ini(config: pytest.Config, name: str) -> object:
    try:
        return config.getini(name)
    except ValueError:
        return None


class DependencyGate:
    """Skips an item the scheduler already skipped, before any of its fixtures run; tells the scheduler how each
    item ended."""

    def __init__(self, sched: DagScheduler[str], *, xfail_deps: str = "skip") -> None:
        self.sched = sched
        #: ``--orchestrate-xfail-deps``: an xfailed dependency skips its dependents ("skip") or counts as met ("run")
        self.xfail_deps = xfail_deps
        #: items that ended xfailed (their dependents' skip reason says so)
        self.xfailed: set[str] = set()
        #: the worst status of the phases of each item seen so far
        self._phases: dict[str, TaskStatus] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        problem = stashed(item.stash, broken_key, None)
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        sched = self.sched
        if sched.state.get(item.nodeid) == TaskStatus.SKIPPED:
            reason = sched.reasons.get(item.nodeid, "a dependency did not complete")
            reason = xfailed_reason(reason, self.xfailed)
            item.stash[dependency_skip_key] = reason
            raise pytest.skip.Exception(reason, _use_item_location=True)

    def record(self, report: pytest.TestReport) -> None:
        """Fold a phase report into its item's status; at teardown, the scheduler hears it (and skips dependents)."""
        sched = self.sched
        nodeid = report.nodeid
        if report.outcome == RERUN or nodeid not in sched.state:
            return
        phase = report_status(report)
        if report_outcome(report) == "xfailed":
            self.xfailed.add(nodeid)
            if self.xfail_deps == "run":
                phase = TaskStatus.COMPLETED
        status = worst(self._phases.get(nodeid), phase)
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
        plan = stashed(item.stash, plan_key, None)
        if plan is None or plan.retry is None:
            return None
        run_with_retries(item, nextitem, plan.retry)
        return True


class Timeouts:
    """Interrupts a Python test's call phase after its timeout (SIGALRM), and kills what the call started.

    While the call runs, a marker of its own is in the environment (``PYTEST_ORCHESTRATOR_RUN``); when it times
    out, the test process's descendants that did not exist when the call began, and every process carrying the
    marker (one that left the tree), are killed (:func:`~pytest_orchestrator.execution.reaper.kill_started_since`).
    What existed before the call (a session fixture's server) is left alone. The same happens when the timeout
    is pytest-timeout's (its ``signal`` method fails the test inside the call; its ``thread`` method ends the
    whole process instead).
    """

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None]:
        plan = stashed(item.stash, plan_key, None)
        if plan is None or (plan.timeout is None and not plan.their_timeout):
            return (yield)
        from pytest_orchestrator.execution import reaper

        before = reaper.descendants()
        marker = reaper.new_marker()
        previous = reaper.push_marker(marker)
        try:
            with alarm(plan.timeout):
                return (yield)
        except BaseException as exc:
            if is_timeout(exc):
                reaper.kill_started_since(before, marker=marker, grace=1.0)
            raise
        finally:
            reaper.restore_markers(previous)


class ReportNotes:
    """Notes on reports for the summary and JUnit: timeouts, attempt errors, dependency skips."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report: pytest.TestReport = yield
        error = call.excinfo.value if call.excinfo is not None else None
        attempt = stashed(item.stash, attempt_key, None)
        if call.when == "call":
            item.stash[error_key] = error
            if attempt is not None:  # outcome, then error: each attempt's properties side by side
                set_property(item, f"attempt_{attempt}_outcome", report_outcome_of(report, error))
            if report.failed:
                text = attempt_error_text(error, report)
                setattr(report, ERROR_ATTR, text)
                if isinstance(error, ItemTimeout):
                    setattr(report, TIMEOUT_ATTR, str(error.msg))
                elif is_script_timeout(error):
                    setattr(report, TIMEOUT_ATTR, error.result.error or "timed out")
                if attempt is not None:
                    set_property(item, f"attempt_{attempt}_error", text)
        elif call.when == "setup":
            if report.skipped and dependency_skip_key in item.stash:
                setattr(report, DEPENDENCY_SKIP_ATTR, True)
            if attempt is not None and not report.passed:  # the attempt ends here: its call will not run
                set_property(item, f"attempt_{attempt}_outcome", report_outcome(report))
                if report.failed:
                    set_property(item, f"attempt_{attempt}_error", attempt_error_text(error, report))
        return report


def report_outcome_of(report: pytest.TestReport, error: BaseException | None) -> str:
    """:func:`~.outcomes.report_outcome` of a call report before its timeout note is set: ``timeout`` when the
    error is one of ours."""
    if report.failed and (isinstance(error, ItemTimeout) or is_script_timeout(error)):
        return "timeout"
    return report_outcome(report)


def register_item_hooks(
    config: pytest.Config,
    items: Sequence[pytest.Item],
    graph: ItemGraph,
    plans: Sequence[Plan],
    *,
    xfail_deps: str = "skip",
) -> DependencyGate | None:
    """Register the per-item hooks the items need (each once), given their ``plans`` (:func:`plan_items`); return
    the dependency gate, if the graph needs one."""
    gate: DependencyGate | None = None
    wanted: list[tuple[object, str]] = []
    if (
        graph.has_edges()
        or any(n.blocked for n in graph.nodes.values())
        or any(broken_key in item.stash for item in items)
    ):
        gate = DependencyGate(graph.make_scheduler(), xfail_deps=xfail_deps)
        wanted.append((gate, "orchestrate-dependencies"))
    if any(plan.retry is not None for plan in plans):
        wanted.append((Retries(), "orchestrate-retries"))
        register_rerun_word(config)
    if any(plan.timeout is not None or plan.their_timeout for plan in plans):
        wanted.append((Timeouts(), "orchestrate-timeouts"))
    if wanted or (scripts_collected() and any(is_script_item(item) for item in items)):
        wanted.append((ReportNotes(), "orchestrate-reports"))
    manager = config.pluginmanager
    for plugin, name in wanted:
        registered = manager.get_plugin(name)
        if registered is None:
            manager.register(plugin, name)
        elif isinstance(registered, DependencyGate) and gate is not None:
            registered.sched, gate = gate.sched, registered  # a second collection: the gate follows the new graph
    return gate
