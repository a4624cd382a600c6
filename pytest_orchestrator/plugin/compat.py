"""The one module of the plugin that touches private pytest and pytest-xdist APIs.

Everything else uses public API only; what has no public equivalent is wrapped here, each use with why and the
versions checked. Checked against the oldest supported and the newest installed versions: **pytest 8.0.2 and
9.0.3, pytest-xdist 3.5.0 and 3.8.0** (the xdist tests pass on both pairs). xdist's modules are imported inside the
functions that need them, so importing this module loads nothing beyond pytest (it is on the plugin's import path).

Also here: the shape of the xdist objects the DAG scheduler uses (:class:`WorkerNode`, :class:`XdistLog`). xdist
ships no type information, so these protocols are what mypy checks our code against, and what the scheduler's
simulation in the tests implements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

# No public equivalent: the runtest protocol without logging (pytest's own, so an attempt of a retried item is
# exactly one normal run: setup, call, teardown, with pytest's makereport hooks). Same signature
# ``runtestprotocol(item, log=True, nextitem=None) -> list[TestReport]`` in pytest 8.0.2 and 9.0.3.
from _pytest.runner import runtestprotocol
import pytest


if TYPE_CHECKING:
    # Types only (never imported at run time). ``TerminalRepr`` is what ``Item.repr_failure`` may return; the
    # traceback style is ``TracebackStyle`` in pytest 9.0.3 and was ``_TracebackStyle`` in 8.0.2 (type checking
    # runs against the newest pytest).
    from _pytest._code.code import TerminalRepr as TerminalRepr
    from _pytest._code.code import TracebackStyle as TracebackStyle

    # The class of ``pytest.fail.Exception``; mypy needs the class itself to accept it as a base class.
    from _pytest.outcomes import Failed as Failed
else:
    # Public: ``pytest.fail.Exception`` is ``_pytest.outcomes.Failed`` (pytest 8.0.2 and 9.0.3).
    Failed = pytest.fail.Exception


__all__ = [
    "Failed",
    "WorkerNode",
    "XdistLog",
    "collection_diff",
    "disable_group_suffix",
    "is_crash_report",
    "quiet_log",
    "report_worker",
    "runtestprotocol",
    "should_stop",
    "worker_count",
]


# -- pytest ---------------------------------------------------------------------------------------------------


# -- pytest-xdist ---------------------------------------------------------------------------------------------


class XdistLog(Protocol):
    """xdist's ``Producer`` (``xdist.remote``), the ``log`` of ``pytest_xdist_make_scheduler``."""

    def __call__(self, *args: Any) -> None: ...

    def __getattr__(self, name: str) -> XdistLog: ...


class _QuietLog:
    def __call__(self, *args: Any) -> None:
        pass

    def __getattr__(self, name: str) -> _QuietLog:
        return self


def quiet_log() -> XdistLog:
    """A log that says nothing, for a scheduler made without xdist's (xdist passes one; tests may not)."""
    return _QuietLog()


class _Gateway(Protocol):
    """An execnet ``Gateway``: its id (``gw0``) and ``newchannel()``, both public execnet API."""

    @property
    def id(self) -> str: ...

    def newchannel(self) -> Any: ...


class WorkerNode(Protocol):
    """What the DAG scheduler uses of xdist's ``WorkerController`` (``xdist.workermanage``).

    All public attributes (no underscore), the same ones xdist's own schedulers use; the same in pytest-xdist 3.5.0
    and 3.8.0. ``workerinput`` is the documented way to hand a worker data (``pytest_configure_node``).
    """

    @property
    def gateway(self) -> _Gateway: ...

    @property
    def shutting_down(self) -> bool: ...

    @property
    def workerinput(self) -> dict[str, Any]: ...

    def send_runtest_some(self, indices: list[int]) -> None: ...

    def shutdown(self) -> None: ...


def worker_count(config: pytest.Config) -> int:
    """How many workers xdist starts (``-n`` and ``--tx`` together), as xdist's own schedulers count them."""
    # xdist.workermanage: ``parse_spec_config`` in 3.5.0, renamed ``parse_tx_spec_config`` by 3.8.0.
    from xdist import workermanage

    parse: Callable[[pytest.Config], list[str]] | None = getattr(workermanage, "parse_tx_spec_config", None)
    if parse is None:
        parse = workermanage.parse_spec_config
    return len(parse(config))


def should_stop(config: pytest.Config) -> str | bool:
    """Why xdist's controller is stopping the run (``-x``, ``--maxfail``, a worker's Ctrl-C), else False."""
    # ``DSession.shouldstop`` (the plugin registered as "dsession") is an undocumented attribute; pytest's
    # ``session.shouldstop`` is not set by the controller. Same in pytest-xdist 3.5.0 and 3.8.0.
    dsession = config.pluginmanager.get_plugin("dsession")
    stop: str | bool = getattr(dsession, "shouldstop", False)
    return stop


def pending_by_node(scheduler: Any) -> dict[Any, list[int]]:
    """The collection indices each worker was sent and has not finished, by worker, for xdist's own ``load`` and
    ``worksteal`` schedulers (their ``node2pending``, in xdist 3.5.0 and 3.8.0: not part of xdist's scheduler
    protocol); empty for a scheduler that keeps no such map. A copy: it may be read from another thread."""
    pending = getattr(scheduler, "node2pending", None)
    if not isinstance(pending, dict):
        return {}
    return {node: list(indices) for node, indices in list(pending.items())}


def is_crash_report(report: pytest.TestReport) -> bool:
    """Whether ``report`` is the failed report xdist makes for the item a crashed worker was running."""
    # ``DSession.handle_crashitem`` marks it with ``when="???"`` (pytest-xdist 3.5.0 and 3.8.0); pytest types
    # ``when`` as the three phases, hence the ``str``.
    return str(report.when) == "???"


def report_worker(report: pytest.TestReport) -> WorkerNode | None:
    """The worker a report came from, on xdist's controller (``report.node``, set by xdist 3.5.0 and 3.8.0)."""
    node: WorkerNode | None = getattr(report, "node", None)
    return node


def collection_diff(expected: list[str], got: list[str], from_id: str, to_id: str) -> str | None:
    """xdist's text for two workers that collected different tests (``xdist.report``, 3.5.0 and 3.8.0)."""
    from xdist.report import report_collection_diff

    diff: str | None = report_collection_diff(expected, got, from_id, to_id)
    return diff


def disable_group_suffix(config: pytest.Config) -> bool:
    """Keep xdist's worker from appending ``@group`` to node ids (``--dist loadgroup``), on a worker; whether it
    would have (the worker's only trace of ``--dist loadgroup``: xdist sets the worker's ``dist`` to ``no``).

    The one write into xdist's state, and unavoidable: the worker's collection hook appends the suffix when
    ``config.getvalue("loadgroup")`` is true, which xdist's worker setup (``setup_config`` in ``xdist.remote``)
    sets from ``--dist`` before our ``pytest_configure`` runs; no hook or option turns it off. The DAG scheduler
    keeps the groups itself (the worker hands them over), and the node ids must match the dependency targets. Same
    in pytest-xdist 3.5.0 and 3.8.0.
    """
    loadgroup = bool(getattr(config.option, "loadgroup", False))
    config.option.loadgroup = False
    return loadgroup
