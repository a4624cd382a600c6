"""Markers without ``--orchestrate``: ``retry`` and ``timeout`` act where they are written, and the ordering markers
that need ``--orchestrate`` are counted in one warning line (markers never silently do nothing).

:func:`arrange_inactive` is called by ``plugin/__init__.py``'s ``pytest_collection_modifyitems`` when orchestration
is off. It makes one pass over the items' markers; the per-item hooks of :mod:`.item_hooks` are imported and
registered only when some item carries ``retry`` (or ``timeout``, when pytest-timeout is not there to handle it).
Under xdist the warning line is a worker's, whose terminal nobody sees: :class:`ControllerLine` gives each worker a
channel of its own to hand the line over on, and prints it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest


__all__ = ["ORDERING_MARKERS", "ControllerLine", "arrange_inactive", "hand_over_line", "ignored_key"]

#: markers that only act under --orchestrate (pytest-dependency's and pytest-order's, when those are absent)
ORDERING_MARKERS = ("depends", "stage", "dependency", "order")

#: the warning line, when some items carry ordering markers that nothing acts on
ignored_key = pytest.StashKey[str]()
#: the ``workerinput`` key of the execnet channel a worker hands the line over on (:class:`ControllerLine`)
LINE_CHANNEL_KEY = "orchestrate_inactive_line"


class ControllerLine:
    """On an xdist controller without ``--orchestrate``: prints the workers' warning line once (they all have the
    same), when the first worker that has one finishes its collection."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._lines: dict[Any, str] = {}
        self._said = False

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        channel = node.gateway.newchannel()
        node.workerinput[LINE_CHANNEL_KEY] = channel
        channel.setcallback(lambda line: self._lines.setdefault(node, str(line)))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        # the worker sent its line before xdist's ``collectionfinish``, on the same connection: it is here
        line = self._lines.get(node)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if line and not self._said and reporter is not None:
            self._said = True
            reporter.ensure_newline()
            reporter.write_line(line)


def hand_over_line(config: pytest.Config) -> None:
    """On an xdist worker: send the warning line, if any, to the controller (before xdist says collection ended)."""
    channel = getattr(config, "workerinput", {}).get(LINE_CHANNEL_KEY)
    line = config.stash.get(ignored_key, None)
    if channel is not None and line:
        channel.send(line)


def arrange_inactive(config: pytest.Config, items: Sequence[pytest.Item]) -> None:
    """Give ``retry``/``timeout`` markers their effect and count the ignored ordering markers."""
    manager = config.pluginmanager
    ordering = {name for name in ORDERING_MARKERS}
    if manager.has_plugin("dependency"):
        ordering.discard("dependency")
    if manager.has_plugin("pytest_order"):
        ordering.discard("order")
    acting = {"retry"} if manager.has_plugin("timeout") else {"retry", "timeout"}
    ignored = 0
    marked: list[pytest.Item] = []
    for item in items:
        names = {mark.name for mark in item.iter_markers()}
        if names & ordering:
            ignored += 1
        if names & acting:
            marked.append(item)
    if ignored:
        config.stash[ignored_key] = (
            f"orchestrate: {ignored} item{'s' if ignored != 1 else ''} carry depends/stage/dependency/order "
            "markers, ignored without --orchestrate"
        )
    if marked:
        _register_actions(config, marked, own_timeout="timeout" in acting)


def _register_actions(config: pytest.Config, items: Sequence[pytest.Item], *, own_timeout: bool) -> None:
    from pytest_orchestrator.plugin.item_hooks import Plan
    from pytest_orchestrator.plugin.item_hooks import ReportNotes
    from pytest_orchestrator.plugin.item_hooks import Retries
    from pytest_orchestrator.plugin.item_hooks import Timeouts
    from pytest_orchestrator.plugin.item_hooks import plan_key
    from pytest_orchestrator.plugin.markers import MarkerError
    from pytest_orchestrator.plugin.markers import evaluate_marks

    problems: list[str] = []
    retries = timeouts = False
    for item in items:
        try:
            spec = evaluate_marks(item, own_timeout=own_timeout)
        except MarkerError as exc:
            problems.append(str(exc))
            continue
        timeout = spec.timeout or None
        item.stash[plan_key] = Plan(spec.retry, timeout)
        retries = retries or spec.retry is not None
        timeouts = timeouts or timeout is not None
    if problems:
        raise pytest.UsageError("orchestrate: malformed markers:\n" + "\n".join(problems))
    manager = config.pluginmanager
    for wanted, plugin, name in (
        (retries, Retries(), "orchestrate-retries"),
        (timeouts, Timeouts(), "orchestrate-timeouts"),
        (retries or timeouts, ReportNotes(), "orchestrate-reports"),
    ):
        if wanted and manager.get_plugin(name) is None:
            manager.register(plugin, name)
