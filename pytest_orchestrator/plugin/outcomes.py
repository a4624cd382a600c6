"""pytest's outcomes in the library's words: the one table from what a report says to a :class:`TaskStatus`.

:func:`report_outcome` names what one phase report (setup, call or teardown) says: ``passed``, ``failed``,
``timeout``, ``error``, ``skipped``, ``xfailed``, ``xpassed`` or ``rerun``, the words the workflow summary counts.
:data:`OUTCOME_STATUS` maps each word onto :class:`~pytest_orchestrator.core.workflow.TaskStatus`, the library's
vocabulary, which is what the dependency scheduler hears (an xfail does not complete its dependents' dependency; an
error does fail it). :func:`worst` folds an item's phases into one status. Also here: the report attributes the
plugin sets, which travel with xdist's serialised reports. Cheap to import (no pytest objects are made).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from pytest_orchestrator.core.status import TaskStatus


if TYPE_CHECKING:
    import pytest

__all__ = [
    "DEPENDENCY_SKIP_ATTR",
    "ERROR_ATTR",
    "INTERRUPTED",
    "OUTCOME_STATUS",
    "RERUN",
    "RERUN_WORD_PLUGIN_NAME",
    "SYNTHETIC_ATTR",
    "RerunWord",
    "register_rerun_word",
    "TIMEOUT_ATTR",
    "report_outcome",
    "report_status",
    "worst",
]

#: the outcome of a logged attempt that will be retried (letter ``R``, word ``RERUN``)
RERUN = "rerun"

#: an item that started but never finished (the session was interrupted during it): no report says this, the
#: summary does; it is never counted as passed, and pytest's own stats line does not count it either
INTERRUPTED = "interrupted"

#: report attributes set by the plugin: the timeout message, the attempt's one-line error, a dependency skip
TIMEOUT_ATTR = "orchestrate_timeout"
ERROR_ATTR = "orchestrate_error"
DEPENDENCY_SKIP_ATTR = "orchestrate_dependency_skip"
#: set on the reports the xdist controller makes up (dependency skips, items that never ran): no worker ran the item
SYNTHETIC_ATTR = "orchestrate_synthetic"

#: what an item (or one phase of it) did -> the library's status; in the order the summary prints its counts
OUTCOME_STATUS: Mapping[str, TaskStatus] = MappingProxyType(
    {
        "passed": TaskStatus.COMPLETED,
        "failed": TaskStatus.FAILED,
        "timeout": TaskStatus.FAILED,
        # a setup or teardown that failed
        "error": TaskStatus.FAILED,
        "skipped": TaskStatus.SKIPPED,
        # an expected failure did not do its job: its dependents are skipped, as after a skip
        "xfailed": TaskStatus.SKIPPED,
        # a non-strict unexpected pass (a strict one is reported as failed)
        "xpassed": TaskStatus.COMPLETED,
        # an attempt that will be retried: the item is not finished
        RERUN: TaskStatus.RETRYING,
        # cut short by an interrupt (the summary's word; no report says it)
        INTERRUPTED: TaskStatus.CANCELLED,
    }
)

#: how bad a finished phase is, for :func:`worst`
_RANK = {TaskStatus.COMPLETED: 0, TaskStatus.SKIPPED: 1, TaskStatus.FAILED: 2}


def report_outcome(report: pytest.TestReport) -> str:
    """What one phase report says, as a key of :data:`OUTCOME_STATUS`."""
    if report.outcome == RERUN:
        return RERUN
    if report.failed:
        if report.when in ("setup", "teardown"):
            return "error"  # as pytest counts it; a report of no phase (xdist's worker crash) is a failure
        return "timeout" if getattr(report, TIMEOUT_ATTR, None) else "failed"
    xfail = hasattr(report, "wasxfail")
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    return "xpassed" if xfail and report.when == "call" else "passed"


def report_status(report: pytest.TestReport) -> TaskStatus:
    """The library's status of one phase report (``RETRYING`` for an attempt that will be retried)."""
    return OUTCOME_STATUS[report_outcome(report)]


def worst(first: TaskStatus | None, second: TaskStatus) -> TaskStatus:
    """The worse of two phase statuses of one item (failed over skipped over completed); ``first`` may be unset."""
    if first is None or _RANK.get(second, 0) > _RANK.get(first, 0):
        return second
    return first


RERUN_WORD_PLUGIN_NAME = "orchestrate-rerun-word"


class RerunWord:
    """The letter ``R`` and the word ``RERUN`` for an attempt that will be retried. Registered where such reports
    are shown: a session whose items retry (with the retry hooks), and the xdist controller."""

    def pytest_report_teststatus(
        self, report: pytest.TestReport
    ) -> tuple[str, str, tuple[str, Mapping[str, bool]]] | None:
        if report.outcome == RERUN:
            return "rerun", "R", ("RERUN", {"yellow": True})
        return None


def register_rerun_word(config: pytest.Config) -> None:
    """Register :class:`RerunWord` once."""
    if not config.pluginmanager.has_plugin(RERUN_WORD_PLUGIN_NAME):
        config.pluginmanager.register(RerunWord(), RERUN_WORD_PLUGIN_NAME)
