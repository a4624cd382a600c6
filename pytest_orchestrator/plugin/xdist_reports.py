"""What the xdist controller reports itself under ``--orchestrate -n N`` (see :mod:`.xdist_scheduling`).

Skips. A dependent of an item that did not pass is never sent to a worker: the controller reports it as skipped
itself (logstart, a skipped setup report, a passed teardown report, logfinish), with the reason the rules give.
Its reports carry a ``node`` as a worker's do, so ``-v`` prints them in xdist's layout (``[gw1] [ 50%] SKIPPED
...``): the worker that would have run the item (the one its group is bound to, else the one whose item's end
decided the skip), else :data:`CONTROLLER` (``[controller]``: skips decided before or after every worker).
Items that never ran because no worker was left are reported the same way at the end of the run; after
``-x``/``--maxfail`` one line lists what did not run instead.

Collections. A worker that collected other tests than the first one is reported as a failed collection.

Lines. The header when scheduling starts, and the workflow summary's ``xdist workers busy: ...`` line (with one
more line counting dependency skips and worker crashes).
"""

from __future__ import annotations

from collections.abc import Mapping
import os
import types
from typing import TYPE_CHECKING
from typing import Any

import pytest

from pytest_orchestrator.plugin.compat import collection_diff
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.outcomes import SYNTHETIC_ATTR
from pytest_orchestrator.plugin.summary import DEPENDENCY_SKIP_ATTR
from pytest_orchestrator.plugin.xdist_dispatch import AFFINITY_MODES


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.compat import XdistLog

__all__ = [
    "CONTROLLER",
    "complete_summary",
    "header_line",
    "not_run_line",
    "not_run_reason",
    "plural",
    "report_collection_error",
    "report_skip",
    "say_notes",
    "workers_lines",
    "write_line",
]


class _Controller:
    """The ``node`` of a report the controller makes when no worker would have run the item: what xdist's terminal
    reporter reads of a worker (``node.gateway.id``) and ``workerinput["workerid"]``, which plugins read; hashable
    (junitxml keys the phases of an item by ``(node id, node)``)."""

    def __init__(self, name: str) -> None:
        self.gateway = types.SimpleNamespace(id=name)
        self.workerinput = {"workerid": name}

    def __repr__(self) -> str:
        return f"<{self.gateway.id}>"


CONTROLLER = _Controller("controller")


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def write_line(config: pytest.Config, text: str, *, verbosity: int = 0) -> None:
    """Print ``text`` (when not empty) unless ``-q`` brought the verbosity below ``verbosity``."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if text and reporter is not None and config.option.verbose >= verbosity:
        reporter.ensure_newline()
        reporter.write_line(text)


def say_notes(config: pytest.Config, inbox: object) -> None:
    """Print the lines a worker's collection has for the user (:class:`~.xdist_handoff.Mailbox` ``.notes``), at
    every verbosity as pytest prints a plugin's collection lines; then forget them (they are said once)."""
    notes: list[str] | None = getattr(inbox, "notes", None)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not notes or reporter is None:
        return
    reporter.ensure_newline()
    for line in notes:
        reporter.write_line(line)
    notes.clear()


def header_line(config: pytest.Config, workers: int, graph: ItemGraph) -> str:
    """``orchestrate: DAG scheduling on N workers: I items, D dependencies`` (and what became of ``--dist``); empty
    when it tells nothing: no dependencies and xdist's own ``--dist`` mode."""
    dist = config.getoption("dist", None)
    if not graph.edge_count() and dist in (None, "no", "load"):
        return ""
    text = (
        f"orchestrate: DAG scheduling on {plural(workers, 'worker')}: "
        f"{plural(len(graph), 'item')}, {graph.edge_count()} "
        f"{'dependency' if graph.edge_count() == 1 else 'dependencies'}"
    )
    if dist in AFFINITY_MODES:
        text += f"; --dist={dist} honoured inside the DAG order"
    elif dist not in (None, "no", "load"):
        text += f"; --dist={dist} overridden by the DAG scheduler"
    return text


def report_skip(
    config: pytest.Config,
    nodeid: str,
    location: tuple[str, int | None, str],
    reason: str,
    *,
    dependency: bool,
    node: object = CONTROLLER,
) -> None:
    """Report ``nodeid`` (at ``location`` in the item graph) as skipped in setup, as serial mode does; ``node`` is
    the worker whose line it is (xdist's ``report.node``)."""
    rel, lineno, domain = location
    if not rel:
        rel = nodeid.split("::")[0]
        domain = domain or nodeid
    where = (rel, lineno, domain)
    path = os.path.normpath(os.path.join(str(config.rootpath), rel))
    longrepr = (path, (lineno or 0) + 1, f"Skipped: {reason}")
    hook = config.hook
    hook.pytest_runtest_logstart(nodeid=nodeid, location=where)
    setup = pytest.TestReport(nodeid, where, {}, "skipped", longrepr, "setup", user_properties=[])
    setattr(setup, SYNTHETIC_ATTR, True)
    setup.node = node  # type: ignore[attr-defined]  # as xdist sets it on a worker's report
    if dependency:
        setattr(setup, DEPENDENCY_SKIP_ATTR, True)
    hook.pytest_runtest_logreport(report=setup)
    teardown = pytest.TestReport(nodeid, where, {}, "passed", None, "teardown", user_properties=[])
    setattr(teardown, SYNTHETIC_ATTR, True)
    teardown.node = node  # type: ignore[attr-defined]  # the same node: junitxml pairs phases by (node id, node)
    hook.pytest_runtest_logreport(report=teardown)
    hook.pytest_runtest_logfinish(nodeid=nodeid, location=where)


def report_collection_error(
    config: pytest.Config, log: XdistLog, expected: list[str], got: list[str], from_id: str, to_id: str
) -> None:
    """Report that worker ``to_id`` collected ``got``, not the ``expected`` tests of ``from_id``, as a failed
    collection (and to xdist's ``log``)."""
    msg = collection_diff(expected, got, from_id, to_id) or f"{to_id} collected different tests"
    log(msg)
    rep = pytest.CollectReport(nodeid=to_id, outcome="failed", longrepr=msg, result=[])
    config.hook.pytest_collectreport(report=rep)


def not_run_line(missing: list[str], why: str) -> str:
    """The line listing the items a stopped run (``-x``, ``--maxfail``, an interrupt) did not run."""
    shown = ", ".join(missing[:10]) + (f", ... ({len(missing) - 10} more)" if len(missing) > 10 else "")
    return f"orchestrate: {plural(len(missing), 'item')} not run ({why}): {shown}"


def not_run_reason(config: pytest.Config, starved: str | None, crashes: int) -> str:
    """The skip reason of the items that never ran although the run was not stopped."""
    if starved is not None:
        return f"not run: {starved}"
    restart = config.getoption("maxworkerrestart", None)
    reason = f"not run: no xdist worker left ({plural(crashes, 'worker crash')}"
    return reason + (f", --max-worker-restart={restart})" if restart is not None else ")")


def complete_summary(summary: dict[str, Any], graph: ItemGraph) -> bool:
    """Add the item graph's part to a workflow summary built without it; whether that changed anything.

    The controller collects nothing, so the session plugin builds the summary from the reports alone: the scheduler
    holds the graph, and adds the items that never ran and the critical path (the ``pytest_orchestrate_summary``
    keys ``counts.not_run``, ``total_items``, ``critical_path`` and ``critical_path_duration``) as serial mode has
    them, from the summary's own durations.
    """
    items: dict[str, dict[str, Any]] = summary["items"]
    not_run = sum(1 for n in graph if n not in items)
    path: list[str] = []
    if items:
        path = graph.critical_path({n: (items[n]["duration"] if n in items else 0.0) for n in graph})
    if not not_run and not path:
        return False
    summary["counts"]["not_run"] = not_run
    summary["total_items"] = len(items) + not_run
    summary["critical_path"] = path
    summary["critical_path_duration"] = sum(items[n]["duration"] for n in path if n in items)
    return True


def workers_lines(
    busy: Mapping[str, float], span: float, workers: int, dependency_skips: int, crashes: int
) -> list[str]:
    """The workflow summary's lines: busy time per worker (the one parallel efficiency figure is the summary's own,
    over pytest's wall time), skips and crashes."""
    parts = [f"{worker} {busy[worker]:.2f} s" for worker in sorted(busy, key=lambda w: (len(w), w))]
    lines = ["xdist workers busy: " + ", ".join(parts)]
    notes = []
    if dependency_skips:
        notes.append(f"{plural(dependency_skips, 'dependency skip')} reported by the controller")
    if crashes:
        notes.append(plural(crashes, "worker crash"))
    if notes:
        lines.append("xdist: " + ", ".join(notes))
    return lines
